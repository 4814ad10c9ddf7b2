//! SIP Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760): MD5 and SHA-256,
//! qop=auth and RFC 2069 credentials.
//!
//! - Header values: [`DigestChallenge`] and [`DigestCredentials`] parse and print the
//!   four auth headers with a small exact parser, bounded in size.
//! - Server: [`DigestServer`] issues self-validating nonces and verifies credentials
//!   against HA1 values from a caller's lookup, with nonce-count replay protection in
//!   bounded memory. Sans-IO: time is passed in.
//! - Client: [`answer`] for one challenge, [`DigestClient`] for an account's state.

mod algorithm;
mod challenge;
mod client;
mod credentials;
mod nonce;
mod params;
mod replay;
mod server;
mod uri;

#[cfg(test)]
mod tests;

pub use algorithm::{Algorithm, AuthQop, UnknownAlgorithm, ha1, response};
pub use challenge::DigestChallenge;
pub use client::{ClientError, DigestClient, answer};
pub use credentials::DigestCredentials;
pub use params::{HeaderError, MAX_HEADER_VALUE_BYTES, MAX_PARAMS};
pub use server::{AuthError, DEFAULT_MAX_TRACKED_NONCES, DigestServer, Verified};
