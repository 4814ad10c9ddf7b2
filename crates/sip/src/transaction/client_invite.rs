//! The client INVITE transaction (RFC 3261 §17.1.1, with RFC 6026's Accepted state).
//!
//! Calling: the INVITE is retransmitted on Timer A (T1, doubling, UDP only) until a
//! response arrives or Timer B (64*T1) gives up. A provisional moves to Proceeding, where
//! nothing is retransmitted and no timer runs: a ringing phone may take minutes, and the
//! TU decides when to CANCEL. A 300-699 final is ACKed here and the transaction waits in
//! Completed for Timer D to re-ACK retransmissions of it. A 2xx goes to the TU, which ACKs
//! it itself; in Accepted every further 2xx (retransmissions, forks) goes to the TU too,
//! until Timer M.

use super::ack::AckTemplate;
use super::config::TimerConfig;
use super::machine::{ClientOutput, Retransmit, TxState, after, earliest, wire};
use crate::message::MessageError;
use bytes::Bytes;
use rsip::{Request, Response, SipMessage};
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct ClientInvite {
    state: TxState,
    /// The encoded INVITE, kept only while Timer A may still retransmit it.
    request: Option<Bytes>,
    /// What the non-2xx ACK copies from the INVITE, until a final arrives.
    ack_template: Option<AckTemplate>,
    /// The ACK sent for our non-2xx final, re-sent for each retransmission of that final.
    ack: Option<Bytes>,
    timer_a: Option<Retransmit>,
    /// Timer B in Calling, D in Completed, M in Accepted: when this state ends.
    deadline: Option<Instant>,
}

impl ClientInvite {
    /// Starts the transaction; returns it and the INVITE's bytes to send now.
    pub fn new(
        now: Instant,
        cfg: &TimerConfig,
        reliable: bool,
        req: Request,
    ) -> Result<(Self, Bytes), MessageError> {
        let ack_template = AckTemplate::from_invite(&req)?;
        let bytes = wire(&SipMessage::Request(req));
        let tx = Self {
            state: TxState::Calling,
            request: (!reliable).then(|| bytes.clone()),
            ack_template: Some(ack_template),
            ack: None,
            timer_a: (!reliable).then(|| Retransmit::start(now, cfg.t1)),
            deadline: Some(now + cfg.transaction_timeout()),
        };
        Ok((tx, bytes))
    }

    pub fn state(&self) -> TxState {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest(self.timer_a.map(|a| a.at()), self.deadline)
    }

    pub fn on_response(
        &mut self,
        now: Instant,
        cfg: &TimerConfig,
        reliable: bool,
        resp: Response,
    ) -> ClientOutput {
        let code = resp.status_code.code();
        let mut out = ClientOutput::default();
        match (self.state, code) {
            (TxState::Calling | TxState::Proceeding, 100..=199) => {
                self.stop_calling();
                self.state = TxState::Proceeding;
                self.deadline = None;
                out.response = Some(resp);
            }
            (TxState::Calling | TxState::Proceeding, 200..=299) => {
                self.stop_calling();
                self.ack_template = None;
                self.enter(TxState::Accepted, after(now, cfg.transaction_timeout()));
                out.response = Some(resp);
            }
            (TxState::Calling | TxState::Proceeding, _) => {
                self.stop_calling();
                if let Some(template) = self.ack_template.take() {
                    let ack = wire(&SipMessage::Request(template.ack_for(&resp)));
                    out.transmit = Some(ack.clone());
                    self.ack = Some(ack);
                }
                self.enter(TxState::Completed, after(now, cfg.timer_d(reliable)));
                out.response = Some(resp);
            }
            (TxState::Accepted, 200..=299) => out.response = Some(resp),
            // §17.1.1.2: a retransmitted final is re-ACKed, not passed up again.
            (TxState::Completed, 300..) => out.transmit = self.ack.clone(),
            _ => {}
        }
        out
    }

    pub fn on_timer(&mut self, now: Instant) -> ClientOutput {
        let mut out = ClientOutput::default();
        if self.deadline.is_some_and(|d| d <= now) {
            // Timer B is a failure the TU must hear of; D and M end quietly.
            out.timed_out = self.state == TxState::Calling;
            self.terminate();
            return out;
        }
        if let Some(a) = self.timer_a.as_mut().filter(|a| a.is_due(now)) {
            a.double(now, None);
            out.transmit = self.request.clone();
        }
        out
    }

    /// The transport could not deliver to our destination (§17.1.1.2).
    pub fn on_transport_error(&mut self) {
        self.terminate();
    }

    fn stop_calling(&mut self) {
        self.timer_a = None;
        self.request = None;
    }

    /// Enters a waiting state; a zero timer (reliable transports) ends the transaction.
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
        self.timer_a = None;
        self.deadline = None;
        self.request = None;
        self.ack_template = None;
        self.ack = None;
    }
}
