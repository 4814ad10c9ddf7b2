//! The sans-IO softphone engine: commands and datagrams in, transmits and events out.
//!
//! [`Phone`] owns the SIP transaction layer, the digest client, the registration and
//! every call. It reads no clock and owns no socket: the driver passes `now` in, feeds
//! received messages to [`Phone::handle_input`], calls [`Phone::handle_timeout`] at
//! [`Phone::next_timeout`], and drains [`Phone::poll_transmit`] and
//! [`Phone::poll_event`] after each call.

mod build;
mod control;
mod in_dialog;
mod incoming;
mod outgoing;
mod register;
mod transferee;

use crate::call::{Call, CallState};
use crate::config::PhoneConfig;
use crate::error::PhoneError;
use crate::event::{CallHandle, EndReason, PhoneEvent};
use hark_recorder::Operation;
use hark_sip::auth::DigestClient;
use hark_sip::parse::{parse_datagram, Limits};
use hark_sip::rsip::{Request, SipMessage};
use hark_sip::transaction::{ClientTxId, Incoming, TimerConfig, TransactionLayer, TxEvent};
use hark_sip::transport::{Peer, Transmit};
use register::Registration;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// What a client transaction of ours is for.
#[derive(Clone, Debug)]
enum TxPurpose {
    Register,
    Invite(CallHandle),
    Cancel(CallHandle),
    /// An in-dialog request; the call's `pending` list says which.
    InDialog(CallHandle),
    /// An out-of-dialog media-control MESSAGE and the request, for a digest retry.
    ControlMessage { call: CallHandle, op: Operation, request: Box<Request>, auth_tries: u32 },
}

/// A command from the owner (UI, CLI). Each is also a method of [`Phone`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Call `target` (an extension or a sip: URI); the driver has bound `rtp_port`.
    Dial { target: String, rtp_port: u16 },
    Answer { call: CallHandle, rtp_port: u16 },
    Reject { call: CallHandle, code: u16 },
    Hangup { call: CallHandle },
    Hold { call: CallHandle },
    Resume { call: CallHandle },
    SendDtmf { call: CallHandle, digits: String },
    /// Pause or resume the PBX's recording of the call's audio or video.
    RecordingControl { call: CallHandle, op: Operation },
    BlindTransfer { call: CallHandle, target: String },
    /// Transfer the peer of `call` to the peer of `target` (both ours, established).
    AttendedTransfer { call: CallHandle, target: CallHandle },
    /// Follow the transfer the peer of `call` asked for: call its target (media on
    /// `rtp_port`); returns the new call.
    AcceptTransfer { call: CallHandle, rtp_port: u16 },
    Unregister,
}

pub struct Phone {
    config: PhoneConfig,
    /// Our SIP address as peers should see it (Via sent-by, Contact).
    local: SocketAddr,
    media_ip: IpAddr,
    tx: TransactionLayer,
    auth: DigestClient,
    reg: Registration,
    calls: BTreeMap<CallHandle, Call>,
    next_call: u64,
    purposes: HashMap<ClientTxId, TxPurpose>,
    events: VecDeque<PhoneEvent>,
    /// REFERs the peers sent (call, target), for the owner to follow.
    transfer_requests: VecDeque<(CallHandle, String)>,
    limits: Limits,
}

impl Phone {
    /// A phone whose SIP socket is `local` (a real address, not 0.0.0.0) and whose RTP
    /// sockets live on `media_ip`. With `config.register`, registration starts at once.
    pub fn new(now: Instant, config: PhoneConfig, local: SocketAddr, media_ip: IpAddr) -> Self {
        let auth = DigestClient::new(config.account.user.clone(), config.account.password.clone());
        let mut phone = Self {
            reg: Registration::new(config.registration),
            config,
            local,
            media_ip,
            tx: TransactionLayer::new(TimerConfig::default()),
            auth,
            calls: BTreeMap::new(),
            next_call: 1,
            purposes: HashMap::new(),
            events: VecDeque::new(),
            transfer_requests: VecDeque::new(),
            limits: Limits::default(),
        };
        if phone.config.register {
            phone.send_register(now, phone.config.registration.expires);
        }
        phone
    }

    pub fn config(&self) -> &PhoneConfig {
        &self.config
    }

    fn server_peer(&self) -> Peer {
        Peer { transport: self.config.account.transport, addr: self.config.account.server }
    }

    /// Bytes received from `peer` on the SIP socket (a datagram, or one framed message
    /// of a stream). Garbage is dropped; nothing here panics.
    pub fn handle_input(&mut self, now: Instant, peer: Peer, bytes: &[u8]) {
        match parse_datagram(bytes, &self.limits) {
            Ok(msg) => self.handle_message(now, peer, msg),
            Err(e) => tracing::debug!(%peer, error = %e, "unparsable SIP message dropped"),
        }
    }

    /// A message already parsed by the transport.
    pub fn handle_message(&mut self, now: Instant, peer: Peer, msg: SipMessage) {
        match msg {
            SipMessage::Request(req) => match self.tx.handle_request(now, req, peer) {
                Some(Incoming::Request { id, req, from }) => self.on_request(now, id, req, from),
                Some(Incoming::Ack { req, .. }) => self.on_ack(req),
                Some(Incoming::Cancel { invite, .. }) => self.on_cancel(now, invite),
                None => {}
            },
            SipMessage::Response(resp) => {
                if let Some(ev) = self.tx.handle_response(now, resp, peer) {
                    self.on_response(now, ev.id, ev.response);
                }
            }
        }
        self.drain_tx_events(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drain_tx_events(now);
        self.reg_timeout(now);
        self.retransmit_2xx(now);
        self.dtmf_control_timeouts(now);
        self.prune();
    }

    /// Forgets finished transactions, and ended calls none of them still serves (a
    /// long-running phone keeps no history here; its owner keeps what it wants).
    fn prune(&mut self) {
        let tx = &self.tx;
        self.purposes.retain(|id, _| tx.client_state(id).is_some());
        let purposes = &self.purposes;
        self.calls.retain(|handle, call| {
            call.is_live()
                || purposes.values().any(|p| match p {
                    TxPurpose::Invite(h) | TxPurpose::Cancel(h) | TxPurpose::InDialog(h) => h == handle,
                    TxPurpose::ControlMessage { call, .. } => call == handle,
                    TxPurpose::Register => false,
                })
        });
    }

    /// Calls the engine still holds (live ones, and ended ones with transactions left).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The driver could not deliver to `peer`.
    pub fn handle_transport_error(&mut self, now: Instant, peer: Peer) {
        self.tx.handle_transport_error(peer);
        self.drain_tx_events(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<PhoneEvent> {
        self.events.pop_front()
    }

    /// A transfer the peer of a call asked for (REFER): the call and the target to
    /// call. Follow it with `Command::AcceptTransfer` (the driver does so at once); the
    /// new call then reports like any other, and the referrer hears how it went.
    pub fn poll_transfer_request(&mut self) -> Option<(CallHandle, String)> {
        self.transfer_requests.pop_front()
    }

    /// When [`Phone::handle_timeout`] should next run.
    pub fn next_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(|c| c.uas_2xx.as_ref().map(|r| r.next_at));
        [self.tx.poll_timeout(), self.reg.deadline(), self.dtmf_control_deadline()].into_iter().flatten().chain(calls).min()
    }

    /// Runs a command; `Dial` returns the new call's handle.
    pub fn handle_command(&mut self, now: Instant, cmd: Command) -> Result<Option<CallHandle>, PhoneError> {
        match cmd {
            Command::Dial { target, rtp_port } => return self.dial(now, &target, rtp_port).map(Some),
            Command::AcceptTransfer { call, rtp_port } => return self.accept_transfer(now, call, rtp_port).map(Some),
            Command::Answer { call, rtp_port } => self.answer(now, call, rtp_port)?,
            Command::Reject { call, code } => self.reject(now, call, code)?,
            Command::Hangup { call } => self.hangup(now, call)?,
            Command::Hold { call } => self.set_hold(now, call, true)?,
            Command::Resume { call } => self.set_hold(now, call, false)?,
            Command::SendDtmf { call, digits } => self.send_dtmf(now, call, &digits)?,
            Command::RecordingControl { call, op } => self.recording_control(now, call, op)?,
            Command::BlindTransfer { call, target } => self.blind_transfer(now, call, &target)?,
            Command::AttendedTransfer { call, target } => self.attended_transfer(now, call, target)?,
            Command::Unregister => self.unregister(now),
        }
        Ok(None)
    }

    fn call_mut(&mut self, call: CallHandle) -> Result<&mut Call, PhoneError> {
        self.calls.get_mut(&call).filter(|c| c.is_live()).ok_or(PhoneError::NoSuchCall(call))
    }

    fn new_handle(&mut self) -> CallHandle {
        let h = CallHandle(self.next_call);
        self.next_call += 1;
        h
    }

    fn end_call(&mut self, call: CallHandle, reason: EndReason) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.state == CallState::Ended {
            return;
        }
        c.state = CallState::Ended;
        c.uas_2xx = None;
        if let Some(d) = c.dialog.as_mut() {
            d.terminate();
        }
        self.events.push_back(PhoneEvent::Ended { call, reason });
    }

    fn drain_tx_events(&mut self, now: Instant) {
        while let Some(ev) = self.tx.poll_event() {
            match ev {
                TxEvent::ClientTimeout { id } | TxEvent::TransportError { id } => self.on_client_failure(now, id),
                TxEvent::ServerTimeout { .. } => {}
            }
        }
    }

    fn on_response(&mut self, now: Instant, id: ClientTxId, resp: hark_sip::rsip::Response) {
        let final_response = resp.status_code.code() >= 200;
        let Some(purpose) = self.purposes.get(&id).cloned() else { return };
        // INVITE transactions pass every 2xx (retransmissions too): keep them mapped.
        if final_response && !matches!(purpose, TxPurpose::Invite(_)) {
            self.purposes.remove(&id);
        }
        match purpose {
            TxPurpose::Register => self.on_register_response(now, resp),
            TxPurpose::Invite(call) => self.on_invite_response(now, call, id, resp),
            TxPurpose::Cancel(_) => {}
            TxPurpose::InDialog(call) => self.on_in_dialog_response(now, call, id, resp),
            TxPurpose::ControlMessage { call, op, request, auth_tries } => {
                self.on_control_message_response(now, call, op, *request, auth_tries, resp)
            }
        }
    }

    /// A client transaction ended without a final response: treat it as a 408.
    fn on_client_failure(&mut self, now: Instant, id: ClientTxId) {
        let Some(purpose) = self.purposes.remove(&id) else { return };
        let timeout = "no answer in time (transaction timeout)".to_owned();
        match purpose {
            TxPurpose::Register => self.on_register_timeout(now),
            TxPurpose::Invite(call) => self.end_call(call, EndReason::Timeout),
            TxPurpose::Cancel(call) => self.end_call(call, EndReason::Timeout),
            TxPurpose::InDialog(call) => self.on_in_dialog_timeout(now, call, id),
            TxPurpose::ControlMessage { call, op, .. } => self.control_failed(call, op, crate::event::ControlVia::MessageOutOfDialog, timeout),
        }
    }
}
