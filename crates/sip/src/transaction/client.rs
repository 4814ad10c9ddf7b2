//! The layer's record of one client transaction: its machine, key and destination.

use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::config::TimerConfig;
use super::key::ClientKey;
use super::machine::{ClientOutput, TxState};
use crate::transport::Peer;
use rsip::Response;
use std::time::Instant;

#[derive(Debug)]
pub(crate) enum ClientMachine {
    // Boxed: INVITE transactions are few and larger; the enum stays the size of the common one.
    Invite(Box<ClientInvite>),
    NonInvite(ClientNonInvite),
}

#[derive(Debug)]
pub(crate) struct ClientEntry {
    pub key: ClientKey,
    pub peer: Peer,
    pub machine: ClientMachine,
    /// The deadline of this transaction's live timer-heap entry.
    pub scheduled: Option<Instant>,
}

impl ClientEntry {
    pub fn reliable(&self) -> bool {
        self.peer.transport.is_reliable()
    }

    pub fn state(&self) -> TxState {
        match &self.machine {
            ClientMachine::Invite(m) => m.state(),
            ClientMachine::NonInvite(m) => m.state(),
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.machine {
            ClientMachine::Invite(m) => m.next_deadline(),
            ClientMachine::NonInvite(m) => m.next_deadline(),
        }
    }

    pub fn on_response(&mut self, now: Instant, cfg: &TimerConfig, resp: Response) -> ClientOutput {
        let reliable = self.reliable();
        match &mut self.machine {
            ClientMachine::Invite(m) => m.on_response(now, cfg, reliable, resp),
            ClientMachine::NonInvite(m) => m.on_response(now, cfg, reliable, resp),
        }
    }

    pub fn on_timer(&mut self, now: Instant, cfg: &TimerConfig) -> ClientOutput {
        match &mut self.machine {
            ClientMachine::Invite(m) => m.on_timer(now),
            ClientMachine::NonInvite(m) => m.on_timer(now, cfg),
        }
    }

    pub fn on_transport_error(&mut self) {
        match &mut self.machine {
            ClientMachine::Invite(m) => m.on_transport_error(),
            ClientMachine::NonInvite(m) => m.on_transport_error(),
        }
    }
}
