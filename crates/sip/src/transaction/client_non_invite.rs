//! The client non-INVITE transaction (RFC 3261 §17.1.2).
//!
//! Trying: the request is retransmitted on Timer E (T1, doubling, capped at T2; UDP only)
//! until Timer F (64*T1) gives up. A provisional moves to Proceeding, where E keeps firing
//! at T2 (a provisional means the request arrived, not that the final will). A final goes
//! to the TU and the transaction waits in Completed for Timer K to absorb retransmissions.

use super::config::TimerConfig;
use super::machine::{ClientOutput, Retransmit, TxState, after, earliest, wire};
use bytes::Bytes;
use rsip::{Request, Response, SipMessage};
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct ClientNonInvite {
    state: TxState,
    /// The encoded request, kept only while Timer E may still retransmit it.
    request: Option<Bytes>,
    timer_e: Option<Retransmit>,
    /// Timer F in Trying and Proceeding, K in Completed.
    deadline: Option<Instant>,
}

impl ClientNonInvite {
    /// Starts the transaction; returns it and the request's bytes to send now.
    pub fn new(now: Instant, cfg: &TimerConfig, reliable: bool, req: Request) -> (Self, Bytes) {
        let bytes = wire(&SipMessage::Request(req));
        let tx = Self {
            state: TxState::Trying,
            request: (!reliable).then(|| bytes.clone()),
            timer_e: (!reliable).then(|| Retransmit::start(now, cfg.t1)),
            deadline: Some(now + cfg.transaction_timeout()),
        };
        (tx, bytes)
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.timer_e.map(|e| e.at()), self.deadline)
    }

    pub fn on_response(
        &mut self,
        now: Instant,
        cfg: &TimerConfig,
        reliable: bool,
        resp: Response,
    ) -> ClientOutput {
        let mut out = ClientOutput::default();
        if !matches!(self.state, TxState::Trying | TxState::Proceeding) {
            // Completed: retransmitted responses are absorbed (§17.1.2.2).
            return out;
        }
        if resp.status_code.code() < 200 {
            self.state = TxState::Proceeding;
        } else {
            self.timer_e = None;
            self.request = None;
            match after(now, cfg.timer_k(reliable)) {
                Some(k) => {
                    self.state = TxState::Completed;
                    self.deadline = Some(k);
                }
                None => self.terminate(),
            }
        }
        out.response = Some(resp);
        out
    }

    pub fn on_timer(&mut self, now: Instant, cfg: &TimerConfig) -> ClientOutput {
        let mut out = ClientOutput::default();
        if self.deadline.is_some_and(|d| d <= now) {
            // Timer F is a failure the TU must hear of; K ends quietly.
            out.timed_out = self.state != TxState::Completed;
            self.terminate();
            return out;
        }
        let proceeding = self.state == TxState::Proceeding;
        if let Some(e) = self.timer_e.as_mut().filter(|e| e.is_due(now)) {
            if proceeding {
                e.reset(now, cfg.t2);
            } else {
                e.double(now, Some(cfg.t2));
            }
            out.transmit = self.request.clone();
        }
        out
    }

    /// The transport could not deliver to our destination (§17.1.2.2).
    pub fn on_transport_error(&mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        self.state = TxState::Terminated;
        self.timer_e = None;
        self.deadline = None;
        self.request = None;
    }
}
