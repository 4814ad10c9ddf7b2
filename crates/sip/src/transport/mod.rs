//! Where messages come from and go to. The types here are plain data shared by the
//! sans-IO cores; `udp` and `tcp` hold the tokio drivers that own the sockets.

use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;

/// A SIP transport protocol (RFC 3261 §18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Reliable transports need no retransmissions (timers A, E, G are not run).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_name())
    }
}

/// The other end of a message: transport plus address. On TCP/TLS the driver keeps one
/// connection per remote address, so the pair names the connection too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Peer {
    pub fn udp(addr: SocketAddr) -> Self {
        Self { transport: Transport::Udp, addr }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

/// Bytes to send, as polled from a sans-IO core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub bytes: Bytes,
}

mod hub;
mod tcp;
mod udp;

pub use hub::{Inbound, SipTransports, TransportConfig};
