//! The B2BUA: every call is two dialogs, the caller's (A, where we are UAS) and the
//! callee's (B, where we are UAC), with media anchored on the PBX's relay so it can be
//! recorded. Signalling lives here, sans-IO, as methods of `PbxCore`; the relays are
//! tokio tasks the serve loop starts and stops when the core asks (`CoreEvent`).

pub mod call;
pub mod cdr;
mod control;
mod in_dialog;
mod invite;
mod media;
mod outcome;
mod repolicy;
mod route;
mod transfer;

pub use call::{CallKey, LegSide, RelayPorts, SessionId};
pub use cdr::{CallRecord, Disposition, HangupBy};

use call::Call;
use hark_sip::dialog::DialogId;
use hark_sip::transaction::{ClientTxId, ServerTxId};
use hark_sip::transport::Transport;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Settings of the B2BUA part of the core.
#[derive(Clone, Debug)]
pub struct CallConfig {
    /// How long the callee's phones ring before the caller gets 480.
    pub ring_timeout: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self { ring_timeout: Duration::from_secs(30) }
    }
}

/// Where the PBX is reachable, for Via, Contact and SDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddrs {
    /// The address phones can reach us at (never 0.0.0.0).
    pub ip: IpAddr,
    pub udp_port: u16,
    pub tcp_port: u16,
}

impl LocalAddrs {
    /// Our address as a Via sent-by for `transport`.
    pub(crate) fn sent_by(&self, transport: Transport) -> hark_sip::rsip::HostWithPort {
        let port = match transport {
            Transport::Udp => self.udp_port,
            Transport::Tcp | Transport::Tls => self.tcp_port,
        };
        hark_sip::rsip::HostWithPort::from(std::net::SocketAddr::new(self.ip, port))
    }

    /// Our Contact header value for `transport`.
    pub(crate) fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:hark@{}>", std::net::SocketAddr::new(self.ip, self.udp_port)),
            t => format!(
                "<sip:hark@{};transport={}>",
                std::net::SocketAddr::new(self.ip, self.tcp_port),
                t.via_name().to_ascii_lowercase()
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    Ring,
    AckWait,
    /// A transfer target rang too long.
    TransferRing,
}

/// The B2BUA's tables.
#[derive(Debug, Default)]
pub struct Calls {
    pub(crate) calls: HashMap<CallKey, Call>,
    pub(crate) by_a_tx: HashMap<ServerTxId, CallKey>,
    pub(crate) by_client_tx: HashMap<ClientTxId, CallKey>,
    pub(crate) by_dialog: HashMap<DialogId, (CallKey, LegSide)>,
    pub(crate) by_session: HashMap<SessionId, CallKey>,
    pub(crate) timers: BinaryHeap<Reverse<(Instant, CallKey, TimerKind)>>,
    /// Late answers already hung up (Call-ID + To tag): their retransmissions get an
    /// ACK, not another BYE.
    pub(crate) stray: std::collections::VecDeque<String>,
    next_key: u64,
}

impl Calls {
    pub(crate) fn next_key(&mut self) -> CallKey {
        self.next_key += 1;
        CallKey(self.next_key)
    }

    /// Calls ringing or answered.
    pub fn active(&self) -> usize {
        self.calls.len()
    }

    pub fn session_ids(&self) -> impl Iterator<Item = &SessionId> {
        self.calls.values().map(|c| &c.session)
    }

    pub(crate) fn schedule(&mut self, at: Instant, key: CallKey, kind: TimerKind) {
        self.timers.push(Reverse((at, key, kind)));
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes a call and the index entries pointing at it (its own keys, no scan).
    pub(crate) fn remove(&mut self, key: CallKey) -> Option<Call> {
        let call = self.calls.remove(&key)?;
        self.by_a_tx.remove(&call.a_tx);
        self.by_session.remove(&call.session);
        for f in &call.forks {
            self.by_client_tx.remove(&f.tx);
        }
        for (tx, ..) in &call.in_dialog_tx {
            self.by_client_tx.remove(tx);
        }
        if let Some(t) = &call.transfer {
            self.by_client_tx.remove(&t.tx);
        }
        for dialog in [&call.a_dialog, &call.b_dialog].into_iter().flatten() {
            self.by_dialog.remove(dialog.id());
        }
        Some(call)
    }
}

#[cfg(test)]
mod tests;
