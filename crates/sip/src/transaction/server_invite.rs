//! The server INVITE transaction (RFC 3261 §17.2.1, with RFC 6026's Accepted state).
//!
//! Proceeding: the layer has sent 100 Trying; each INVITE retransmission gets the latest
//! provisional again. A 300-699 final from the TU moves to Completed, where Timer G (T1,
//! doubling, capped at T2; UDP only) retransmits it until the ACK arrives (→ Confirmed,
//! absorbing ACKs for Timer I) or Timer H (64*T1) gives up and tells the TU. A 2xx moves to
//! Accepted: the TU retransmits its 2xx itself and gets the ACK; the transaction only
//! absorbs INVITE retransmissions until Timer L.

use super::config::TimerConfig;
use super::error::TxError;
use super::machine::{Matched, Retransmit, ServerOutput, TxState, after, earliest};
use crate::ids::Tag;
use bytes::Bytes;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct ServerInvite {
    state: TxState,
    reliable: bool,
    /// The last response sent: re-sent on INVITE retransmissions and on Timer G.
    last: Option<Bytes>,
    /// The To tag of our responses, for the 200 to a CANCEL (§9.2).
    to_tag: Option<Tag>,
    timer_g: Option<Retransmit>,
    /// Timer H in Completed, I in Confirmed, L in Accepted.
    deadline: Option<Instant>,
}

impl ServerInvite {
    /// A transaction that has just sent `trying`, the 100 Trying.
    pub fn new(reliable: bool, trying: Bytes) -> Self {
        Self {
            state: TxState::Proceeding,
            reliable,
            last: Some(trying),
            to_tag: None,
            timer_g: None,
            deadline: None,
        }
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    pub fn to_tag(&self) -> Option<&Tag> {
        self.to_tag.as_ref()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.timer_g.map(|g| g.at()), self.deadline)
    }

    /// An INVITE retransmission (`is_ack` false) or an ACK that matched this transaction.
    pub fn on_request(&mut self, now: Instant, cfg: &TimerConfig, is_ack: bool) -> Matched {
        match (self.state, is_ack) {
            (TxState::Proceeding | TxState::Completed, false) => self
                .last
                .clone()
                .map_or(Matched::Absorb, Matched::Retransmit),
            (TxState::Completed, true) => {
                self.timer_g = None;
                self.last = None;
                match after(now, cfg.timer_i(self.reliable)) {
                    Some(i) => {
                        self.state = TxState::Confirmed;
                        self.deadline = Some(i);
                    }
                    None => self.terminate(),
                }
                Matched::Absorb
            }
            (TxState::Accepted, true) => Matched::AckToTu,
            // Confirmed absorbs ACK retransmissions; Accepted absorbs INVITE retransmissions
            // (RFC 6026: the TU, not the transaction, retransmits the 2xx); an ACK before
            // any final is bogus.
            _ => Matched::Absorb,
        }
    }

    /// The TU sends a response with status `code`, encoded as `bytes`; returns what to send.
    pub fn send_response(
        &mut self,
        now: Instant,
        cfg: &TimerConfig,
        code: u16,
        bytes: Bytes,
        to_tag: Option<Tag>,
    ) -> Result<Bytes, TxError> {
        match (self.state, code) {
            (TxState::Proceeding, _) => {
                if to_tag.is_some() {
                    self.to_tag = to_tag;
                }
                if code < 200 {
                    self.last = Some(bytes.clone());
                } else if code < 300 {
                    self.last = None;
                    self.enter(TxState::Accepted, after(now, cfg.transaction_timeout()));
                } else {
                    self.last = Some(bytes.clone());
                    self.timer_g = (!self.reliable).then(|| Retransmit::start(now, cfg.t1));
                    // Timer H runs on every transport: it waits for the ACK, not the network.
                    self.enter(TxState::Completed, after(now, cfg.transaction_timeout()));
                }
                Ok(bytes)
            }
            // RFC 6026 §8.5: the TU's own 2xx retransmissions pass through.
            (TxState::Accepted, 200..=299) => Ok(bytes),
            _ => Err(TxError::FinalAlreadySent { status: code }),
        }
    }

    pub fn on_timer(&mut self, now: Instant, cfg: &TimerConfig) -> ServerOutput {
        let mut out = ServerOutput::default();
        if self.deadline.is_some_and(|d| d <= now) {
            // Timer H is a failure the TU must hear of; I and L end quietly.
            out.timed_out = self.state == TxState::Completed;
            self.terminate();
            return out;
        }
        if let Some(g) = self.timer_g.as_mut().filter(|g| g.is_due(now)) {
            g.double(now, Some(cfg.t2));
            out.transmit = self.last.clone();
        }
        out
    }

    fn enter(&mut self, state: TxState, deadline: Option<Instant>) {
        match deadline {
            Some(d) => {
                self.state = state;
                self.deadline = Some(d);
            }
            None => self.terminate(),
        }
    }

    fn terminate(&mut self) {
        self.state = TxState::Terminated;
        self.timer_g = None;
        self.deadline = None;
        self.last = None;
    }
}
