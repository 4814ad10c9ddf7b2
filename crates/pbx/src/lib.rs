//! hark-pbx: the office PBX. Registrar and B2BUA over hark-sip, media relays from
//! hark-media, storage, and the HTTP surface. `core` is sans-IO; `serve` is its tokio edge.

pub mod auth_guard;
pub mod b2bua;
pub mod core;
pub mod directory;
pub mod http;
pub mod persist;
pub mod policy;
pub mod recording;
pub mod registrar;
pub mod relays;
pub mod serve;
pub mod store;
pub mod trunk_registration;
