//! The server non-INVITE transaction (RFC 3261 §17.2.2).
//!
//! Trying: retransmissions are absorbed until the TU answers. After a provisional
//! (Proceeding) each retransmission gets it again. After the final (Completed) each gets
//! the final again until Timer J (64*T1 on UDP, zero on reliable transports).
//!
//! Beyond the RFC: a transaction whose TU never answers is dropped after 64*T1, when the
//! client's Timer F has given up anyway, so a TU bug cannot pile up transactions forever.

use super::config::TimerConfig;
use super::error::TxError;
use super::machine::{Matched, ServerOutput, TxState, after};
use bytes::Bytes;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct ServerNonInvite {
    state: TxState,
    reliable: bool,
    /// The last response sent, re-sent on request retransmissions.
    last: Option<Bytes>,
    /// The unanswered-request guard in Trying and Proceeding, Timer J in Completed.
    deadline: Option<Instant>,
}

impl ServerNonInvite {
    pub fn new(now: Instant, cfg: &TimerConfig, reliable: bool) -> Self {
        Self {
            state: TxState::Trying,
            reliable,
            last: None,
            deadline: after(now, cfg.transaction_timeout()),
        }
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A retransmission of the request.
    pub fn on_request(&mut self) -> Matched {
        match self.state {
            TxState::Proceeding | TxState::Completed => self
                .last
                .clone()
                .map_or(Matched::Absorb, Matched::Retransmit),
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
    ) -> Result<Bytes, TxError> {
        if !matches!(self.state, TxState::Trying | TxState::Proceeding) {
            return Err(TxError::FinalAlreadySent { status: code });
        }
        if code < 200 {
            self.state = TxState::Proceeding;
            self.last = Some(bytes.clone());
            return Ok(bytes);
        }
        match after(now, cfg.timer_j(self.reliable)) {
            Some(j) => {
                self.state = TxState::Completed;
                self.last = Some(bytes.clone());
                self.deadline = Some(j);
            }
            None => self.terminate(),
        }
        Ok(bytes)
    }

    pub fn on_timer(&mut self, now: Instant) -> ServerOutput {
        if self.deadline.is_some_and(|d| d <= now) {
            if self.state != TxState::Completed {
                tracing::debug!("server non-INVITE transaction dropped: the TU never answered");
            }
            self.terminate();
        }
        ServerOutput::default()
    }

    fn terminate(&mut self) {
        self.state = TxState::Terminated;
        self.deadline = None;
        self.last = None;
    }
}
