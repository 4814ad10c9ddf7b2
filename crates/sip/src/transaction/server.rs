//! The layer's record of one server transaction: its machine, key and response target.

use super::config::TimerConfig;
use super::error::TxError;
use super::key::ServerKey;
use super::machine::{Matched, ServerOutput, TxState};
use super::server_invite::ServerInvite;
use super::server_non_invite::ServerNonInvite;
use crate::ids::Tag;
use crate::message::SipHeaders;
use crate::transport::Peer;
use bytes::Bytes;
use rsip::Response;
use std::time::Instant;

#[derive(Debug)]
pub(crate) enum ServerMachine {
    // Boxed: the non-INVITE variant is the one hundreds of thousands of REGISTERs use, so
    // the enum stays its size.
    Invite(Box<ServerInvite>),
    NonInvite(ServerNonInvite),
}

#[derive(Debug)]
pub(crate) struct ServerEntry {
    pub key: ServerKey,
    /// Where responses go, fixed when the request arrived (§18.2.2).
    pub peer: Peer,
    pub machine: ServerMachine,
    /// The deadline of this transaction's live timer-heap entry.
    pub scheduled: Option<Instant>,
}

impl ServerEntry {
    pub fn state(&self) -> TxState {
        match &self.machine {
            ServerMachine::Invite(m) => m.state(),
            ServerMachine::NonInvite(m) => m.state(),
        }
    }

    pub fn to_tag(&self) -> Option<&Tag> {
        match &self.machine {
            ServerMachine::Invite(m) => m.to_tag(),
            ServerMachine::NonInvite(_) => None,
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.machine {
            ServerMachine::Invite(m) => m.next_deadline(),
            ServerMachine::NonInvite(m) => m.next_deadline(),
        }
    }

    /// A request (retransmission or ACK) that matched this transaction.
    pub fn on_request(&mut self, now: Instant, cfg: &TimerConfig, is_ack: bool) -> Matched {
        match &mut self.machine {
            ServerMachine::Invite(m) => m.on_request(now, cfg, is_ack),
            ServerMachine::NonInvite(m) => m.on_request(),
        }
    }

    /// Encodes the TU's response once and hands it to the machine; returns what to send.
    pub fn send_response(
        &mut self,
        now: Instant,
        cfg: &TimerConfig,
        resp: Response,
    ) -> Result<Bytes, TxError> {
        let code = resp.status_code.code();
        match &mut self.machine {
            ServerMachine::Invite(m) => {
                let to_tag = resp.to_tag().ok().flatten();
                m.send_response(now, cfg, code, super::machine::wire(&resp.into()), to_tag)
            }
            ServerMachine::NonInvite(m) => {
                m.send_response(now, cfg, code, super::machine::wire(&resp.into()))
            }
        }
    }

    pub fn on_timer(&mut self, now: Instant, cfg: &TimerConfig) -> ServerOutput {
        match &mut self.machine {
            ServerMachine::Invite(m) => m.on_timer(now, cfg),
            ServerMachine::NonInvite(m) => m.on_timer(now),
        }
    }
}
