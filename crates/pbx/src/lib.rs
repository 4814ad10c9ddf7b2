//! hark-pbx: the office PBX. Registrar (and, next, the B2BUA) over hark-sip, storage,
//! and the HTTP surface. `core` is sans-IO; `serve` is its tokio edge.

pub mod auth_guard;
pub mod core;
pub mod directory;
pub mod http;
pub mod persist;
pub mod registrar;
pub mod serve;
pub mod store;
