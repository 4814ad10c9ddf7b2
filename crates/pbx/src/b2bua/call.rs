//! One call as the B2BUA sees it: the caller's leg (A), the forks towards the callee's
//! registered contacts (B candidates), the answered B leg, and what the CDR needs.

use crate::registrar::UserKey;
use bytes::Bytes;
use hark_sip::dialog::Dialog;
use hark_sip::rsip::Request;
use hark_sip::transaction::{ClientTxId, ServerTxId};
use hark_sip::transport::Peer;
use rand::Rng;
use std::fmt;
use std::time::Instant;

/// The PBX's id for a call session, sent as X-Session-Id (SPEC §1) and used by phones to
/// address the session out of dialog. Decimal, like the documented example.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    pub fn random() -> Self {
        Self(rand::rng().random_range(1_000_000_000_000u64..10_000_000_000_000).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Internal handle of a call in the B2BUA's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum LegSide {
    /// The caller's leg: we are its UAS.
    A,
    /// The callee's leg: we are its UAC.
    B,
}

impl LegSide {
    pub fn other(self) -> LegSide {
        match self {
            LegSide::A => LegSide::B,
            LegSide::B => LegSide::A,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// The caller's INVITE is accepted; relay ports are being set up.
    Setup,
    /// INVITEs are out to the callee's contacts.
    Ringing,
    /// A contact answered; both dialogs are up.
    Answered,
    /// BYE sent or received; waiting for the last transactions.
    Ending,
}

/// An INVITE sent to one registered contact of the callee.
#[derive(Debug)]
pub struct Fork {
    pub tx: ClientTxId,
    pub request: Request,
    pub peer: Peer,
    /// The best provisional seen (for early media SDP, dialog creation).
    pub early: bool,
    pub done: bool,
    /// A carrier's Digest challenge to this INVITE was answered already.
    pub authenticated: bool,
}

/// A re-INVITE (or other in-dialog request) relayed from one leg to the other, waiting
/// for the other side's final answer.
#[derive(Debug)]
pub struct Relayed {
    pub from_side: LegSide,
    pub server_tx: ServerTxId,
    pub request: Request,
}

#[derive(Debug)]
pub struct Call {
    pub key: CallKey,
    pub session: SessionId,
    pub state: CallState,
    pub tenant_id: i64,
    pub caller: UserKey,
    pub callee: UserKey,
    pub caller_display: Option<String>,
    /// The caller's INVITE and its server transaction (until answered or failed).
    pub a_invite: Request,
    pub a_tx: ServerTxId,
    pub a_peer: Peer,
    /// Our To tag towards the caller, fixed for every response.
    pub a_tag: hark_sip::Tag,
    pub a_dialog: Option<Dialog>,
    pub forks: Vec<Fork>,
    pub b_dialog: Option<Dialog>,
    pub b_peer: Option<Peer>,
    /// CSeq of the INVITE that created the B dialog (for its ACK).
    pub b_invite_cseq: u32,
    /// The caller's SDP offer, as received.
    pub a_offer: Vec<u8>,
    /// The answering callee's SDP (empty until answered).
    pub b_answer: Vec<u8>,
    /// The offer as sent towards the callee (anchored on the relay's B ports).
    pub b_offer: Vec<u8>,
    /// Relay ports facing A and B, once allocated (one pair per media section).
    pub relay: Option<RelayPorts>,
    /// Our 200 to the caller, retransmitted until the ACK (RFC 3261 §13.3.1.4).
    pub a_ok: Option<Bytes>,
    pub a_ok_next: Option<(Instant, std::time::Duration)>,
    pub a_ok_deadline: Option<Instant>,
    pub ring_deadline: Option<Instant>,
    /// Client transactions of in-dialog requests we sent: the leg they went to, and the
    /// request they relay (None for our own, e.g. a BYE or a state INFO).
    pub in_dialog_tx: Vec<(ClientTxId, LegSide, Option<Relayed>)>,
    /// What the policy said when the call was set up (re-evaluated on party changes).
    pub decision: crate::policy::Decision,
    /// The recording's state as phones are told it (X-Recording-State, state INFO).
    pub recording: hark_recorder::RecordingState,
    /// Legs that answered a state INFO with 415 or 469: they get no more.
    pub info_refused: [bool; 2],
    /// Feature codes typed as SIP INFO digits, per leg.
    pub info_codes: [hark_media::dtmf::FeatureCodes; 2],
    pub cdr: CdrDraft,
    /// The trunk each leg's party is reached over ([A, B]); None for an extension.
    pub trunks: [Option<i64>; 2],
    /// Forwarding still possible while the callee's phones ring (busy, no answer).
    pub forward: Option<PendingForward>,
    /// A transfer (REFER) whose target is being called.
    pub transfer: Option<Transfer>,
    /// Recordings started for this session so far (a policy change may start another).
    pub recordings: u32,
    /// The caller's offer carries video.
    pub has_video: bool,
}

/// A call to the target of a blind transfer, on behalf of the party who sent REFER.
#[derive(Debug)]
pub struct Transfer {
    /// The leg of the party who transferred: it is replaced by the target's.
    pub side: LegSide,
    pub target: UserKey,
    pub target_trunk: Option<i64>,
    pub tx: ClientTxId,
    pub request: Request,
    pub peer: Peer,
    /// Digest answer to a carrier's challenge already sent.
    pub authenticated: bool,
    /// When the target has rung long enough: the transfer fails, the call stays.
    pub deadline: Instant,
}

/// Where an unanswered call goes next if the callee is busy or does not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingForward {
    pub busy: Option<String>,
    pub no_answer: Option<String>,
}

/// Someone who took part in the call, for the CDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyLog {
    pub role: PartyRole,
    pub party: String,
    pub external: bool,
    pub joined_at: std::time::SystemTime,
    pub left_at: Option<std::time::SystemTime>,
}

/// Why a party is in the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyRole {
    Caller,
    Callee,
    TransferTarget,
    ForwardTarget,
}

/// Relay ports (on the PBX) of one call's media sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayPorts {
    /// Per media section: the RTP port facing A and the one facing B (RTCP is +1).
    pub streams: Vec<(u16, u16)>,
}

impl RelayPorts {
    /// The RTP port of each media section facing `side`: what SDP sent to that side names.
    pub fn facing(&self, side: LegSide) -> Vec<u16> {
        self.streams.iter().map(|&(a, b)| if side == LegSide::A { a } else { b }).collect()
    }
}

/// What the CDR row will say, filled in as the call goes.
#[derive(Clone, Debug, Default)]
pub struct CdrDraft {
    pub started_at: Option<std::time::SystemTime>,
    pub answered_at: Option<std::time::SystemTime>,
    pub ended_at: Option<std::time::SystemTime>,
    pub disposition: Option<super::cdr::Disposition>,
    pub hangup_by: Option<super::cdr::HangupBy>,
    pub hangup_cause: Option<String>,
    pub a_call_id: String,
    pub b_call_id: Option<String>,
    pub codec: Option<String>,
    /// Everyone in the call so far, in order of joining.
    pub parties: Vec<PartyLog>,
}

impl Call {
    /// One leg's dialog and where its phone is (None before the callee answered).
    pub fn leg_mut(&mut self, side: LegSide) -> (Option<&mut Dialog>, Option<Peer>) {
        match side {
            LegSide::A => (self.a_dialog.as_mut(), Some(self.a_peer)),
            LegSide::B => (self.b_dialog.as_mut(), self.b_peer),
        }
    }

    /// Where one leg's phone is; the callee's falls back to the caller's before it answered.
    pub fn peer(&self, side: LegSide) -> Peer {
        match side {
            LegSide::A => self.a_peer,
            LegSide::B => self.b_peer.unwrap_or(self.a_peer),
        }
    }

    /// The extension (or, over a trunk, the number) on one leg.
    pub fn party(&self, side: LegSide) -> &UserKey {
        match side {
            LegSide::A => &self.caller,
            LegSide::B => &self.callee,
        }
    }

    /// Another party takes `side` (a transfer): its dialog, where its phone is, who it
    /// is, over which trunk, and its media description when known.
    pub fn take_over(&mut self, side: LegSide, dialog: Dialog, peer: Peer, party: UserKey, trunk: Option<i64>, sdp: Option<Vec<u8>>) {
        match side {
            LegSide::A => {
                self.a_dialog = Some(dialog);
                self.a_peer = peer;
                self.caller = party;
                // Our first 200 is no longer retransmitted to anyone.
                self.a_ok = None;
                self.a_ok_next = None;
            }
            LegSide::B => {
                self.b_dialog = Some(dialog);
                self.b_peer = Some(peer);
                self.callee = party;
            }
        }
        if let Some(sdp) = sdp {
            self.set_sdp(side, sdp);
        }
        self.trunks[side as usize] = trunk;
        self.info_refused[side as usize] = false;
    }

    /// The media description `side`'s phone gave last (its offer, answer or re-INVITE).
    pub fn sdp(&self, side: LegSide) -> &[u8] {
        match side {
            LegSide::A => &self.a_offer,
            LegSide::B => &self.b_answer,
        }
    }

    pub fn set_sdp(&mut self, side: LegSide, sdp: Vec<u8>) {
        match side {
            LegSide::A => self.a_offer = sdp,
            LegSide::B => self.b_answer = sdp,
        }
    }

    /// Whether one leg's party is reached over a trunk.
    pub fn is_external(&self, side: LegSide) -> bool {
        self.trunks[side as usize].is_some()
    }

    /// Marks the party on `side` as gone from the call at `at` (CDR).
    pub fn party_left(&mut self, side: LegSide, at: std::time::SystemTime) {
        let who = self.party(side).extension.clone();
        let external = self.is_external(side);
        if let Some(p) = self.cdr.parties.iter_mut().rev().find(|p| p.party == who && p.external == external && p.left_at.is_none()) {
            p.left_at = Some(at);
        }
    }
}
