//! The end-to-end test harness: `hark pbx serve` in a temp data dir on free ports, and
//! real SIP peers (sipp, baresip, linphonec) driven against it, everything on 127.0.0.1.
//!
//! Rules the harness keeps:
//! - every process it starts runs in its own process group, killed on drop;
//! - readiness is observed (output lines, files, HTTP), never assumed after a sleep;
//! - a missing peer or a missing `hark` binary fails loudly, never skips;
//! - failure messages carry the evidence: the server's log, the peer's wire trace.
//!
//! Peer quirks found while writing it are in tests/PEERS.md.

pub mod audio;
pub mod baresip;
pub mod calls;
pub mod ctrl;
pub mod linphone;
pub mod net;
pub mod pbx;
pub mod peers;
pub mod phone;
pub mod process;
pub mod pulse;
pub mod rtp;
pub mod sipp;
pub mod ua;
pub mod wire;

pub use net::{free_port, free_port_range, rtp_port_range};
pub use pbx::{DOMAIN, Pbx, PbxBuilder, TENANT, hark, hark_bin, hark_ok};
pub use peers::require_peer;
pub use process::{Proc, TempDir, poll_until, wait_until};
pub use sipp::{Sipp, SippRun};
