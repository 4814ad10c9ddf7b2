//! One call's state inside the engine: its SIP identifiers, dialog, the SDP it
//! negotiated, and what the PBX told it about recording.

use crate::event::{CallHandle, Direction};
use crate::sdp_offer::Chosen;
use bytes::Bytes;
use hark_media::sdp::MediaSection;
use hark_recorder::{Operation, RecordingState};
use hark_sip::dialog::Dialog;
use hark_sip::rsip::Request;
use hark_sip::transaction::{ClientTxId, ServerTxId};
use hark_sip::transport::Peer;
use hark_sip::{CallId, Tag};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Where a call is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Outgoing: INVITE sent, no final response yet.
    Calling,
    /// Incoming: waiting for the user to answer or reject.
    Ringing,
    /// 2xx sent or received.
    Confirmed,
    /// We sent BYE or CANCEL and wait for its answer.
    Ending,
    Ended,
}

/// The 2xx a UAS retransmits until the ACK comes (RFC 3261 §13.3.1.4).
#[derive(Clone, Debug)]
pub struct Retransmit {
    pub bytes: Bytes,
    pub peer: Peer,
    pub next_at: Instant,
    pub interval: Duration,
    pub give_up_at: Instant,
}

/// A request we sent in the dialog whose answer we wait for.
#[derive(Clone, Debug)]
pub enum Pending {
    Bye,
    /// A re-INVITE (hold/resume) and whether it puts the call on hold.
    ReInvite { hold: bool, request: Request },
    ControlMessage { op: Operation, request: Request, auth_tries: u32 },
    Info,
    Refer,
    /// A NOTIFY reporting a transfer's progress (RFC 3515 §2.4.4).
    Notify,
}

pub struct Call {
    pub handle: CallHandle,
    pub direction: Direction,
    pub state: CallState,
    pub call_id: CallId,
    pub local_tag: Tag,
    /// Where our requests go (the account's server, or a direct peer).
    pub peer: Peer,
    /// Outgoing: the INVITE as last sent (for CANCEL, dialog creation, auth retries).
    pub invite: Option<Request>,
    pub invite_tx: Option<ClientTxId>,
    pub invite_auth_tries: u32,
    /// Incoming: the INVITE and its server transaction.
    pub remote_invite: Option<Request>,
    pub server_tx: Option<ServerTxId>,
    pub dialog: Option<Dialog>,
    /// Outgoing: our ACK for the 2xx, re-sent on each 2xx retransmission.
    pub ack: Option<(Bytes, u32)>,
    /// Incoming: our 2xx until its ACK arrives.
    pub uas_2xx: Option<Retransmit>,
    /// Our RTP port and SDP origin.
    pub rtp_port: u16,
    pub sdp_session: u64,
    pub sdp_version: u64,
    pub chosen: Option<Chosen>,
    pub remote_media: Option<MediaSection>,
    pub local_hold: bool,
    pub remote_hold: bool,
    /// The PBX's X-Session-Id, and the recording state it reported last.
    pub session_id: Option<String>,
    pub recording: RecordingState,
    /// In-dialog transactions in flight.
    pub pending: Vec<(ClientTxId, Pending)>,
    /// DTMF digits still to go by SIP INFO, one transaction at a time.
    pub info_digits: VecDeque<char>,
    pub info_in_flight: bool,
    /// The peer asked us (REFER) to call this URI; waiting for the owner to accept.
    pub transfer_request: Option<String>,
    /// This call follows a REFER received in that call: its outcome is NOTIFYed there.
    pub transfer_of: Option<CallHandle>,
    /// A pause/resume sent as *48/*49, waiting for the PBX's state INFO to confirm it
    /// until the deadline.
    pub dtmf_control: Option<(hark_recorder::Operation, std::time::Instant)>,
}

impl Call {
    pub fn new(handle: CallHandle, direction: Direction, call_id: CallId, local_tag: Tag, peer: Peer, rtp_port: u16) -> Self {
        Self {
            handle,
            direction,
            state: match direction {
                Direction::Outgoing => CallState::Calling,
                Direction::Incoming => CallState::Ringing,
            },
            call_id,
            local_tag,
            peer,
            invite: None,
            invite_tx: None,
            invite_auth_tries: 0,
            remote_invite: None,
            server_tx: None,
            dialog: None,
            ack: None,
            uas_2xx: None,
            rtp_port,
            sdp_session: u64::from(rand::random::<u32>()),
            sdp_version: 1,
            chosen: None,
            remote_media: None,
            local_hold: false,
            remote_hold: false,
            session_id: None,
            recording: RecordingState::OFF,
            pending: Vec::new(),
            info_digits: VecDeque::new(),
            info_in_flight: false,
            transfer_request: None,
            transfer_of: None,
            dtmf_control: None,
        }
    }

    pub fn take_pending(&mut self, tx: ClientTxId) -> Option<Pending> {
        let i = self.pending.iter().position(|(id, _)| *id == tx)?;
        Some(self.pending.remove(i).1)
    }

    pub fn is_live(&self) -> bool {
        !matches!(self.state, CallState::Ended)
    }
}
