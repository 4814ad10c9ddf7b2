//! Pieces the four state machines share: their states, what one step produces, the
//! doubling retransmission timer, and encoding for keeps.

use bytes::Bytes;
use rsip::{Response, SipMessage};
use std::time::{Duration, Instant};

/// The states of RFC 3261 §17's four machines, plus RFC 6026's Accepted. Each machine
/// uses a subset: client INVITE Calling/Proceeding/Completed/Accepted, client non-INVITE
/// Trying/Proceeding/Completed, server INVITE Proceeding/Completed/Confirmed/Accepted,
/// server non-INVITE Trying/Proceeding/Completed; all end in Terminated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxState {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// What a client machine produces for one input: at most one message to send, one response
/// for the TU, and whether it timed out (Timer B or F).
#[derive(Debug, Default)]
pub(crate) struct ClientOutput {
    pub transmit: Option<Bytes>,
    pub response: Option<Response>,
    pub timed_out: bool,
}

/// What a server machine produces for a timer: a retransmitted response, or Timer H.
#[derive(Debug, Default)]
pub(crate) struct ServerOutput {
    pub transmit: Option<Bytes>,
    pub timed_out: bool,
}

/// What a server machine does with a request that matched it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Matched {
    /// A retransmitted request: send the last response again.
    Retransmit(Bytes),
    /// Nothing to send and nothing for the TU.
    Absorb,
    /// An ACK in RFC 6026's Accepted state: it acknowledges the TU's 2xx, so the TU gets it.
    AckToTu,
}

/// Retransmission intervals never drop below this, so a zero T1 in a config cannot make
/// a timer fire again at the instant it fired.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// A retransmission timer whose interval doubles each time it fires, up to an optional
/// cap: Timer A (no cap), E and G (capped at T2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retransmit {
    at: Instant,
    interval: Duration,
}

impl Retransmit {
    /// Starts at T1 (§17.1.1.2, §17.1.2.2, §17.2.1).
    pub fn start(now: Instant, t1: Duration) -> Self {
        let interval = t1.max(MIN_INTERVAL);
        Self {
            at: now + interval,
            interval,
        }
    }

    pub fn at(&self) -> Instant {
        self.at
    }

    pub fn is_due(&self, now: Instant) -> bool {
        self.at <= now
    }

    /// After firing at `now`: the next interval is double the last, at most `cap`.
    pub fn double(&mut self, now: Instant, cap: Option<Duration>) {
        let doubled = self.interval.saturating_mul(2);
        self.reset(now, cap.map_or(doubled, |c| doubled.min(c)));
    }

    /// After firing at `now`: the next interval is `interval` (Timer E in Proceeding: T2).
    pub fn reset(&mut self, now: Instant, interval: Duration) {
        self.interval = interval.max(MIN_INTERVAL);
        self.at = now + self.interval;
    }
}

/// The earlier of two optional deadlines.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Encodes a message for the wire and for keeping. The buffer is shrunk to its length
/// first: a kept final response lives for Timer J's 32 s in each of hundreds of thousands
/// of transactions, and `Bytes::from(Vec)` would otherwise keep the spare capacity too.
pub(crate) fn wire(msg: &SipMessage) -> Bytes {
    Bytes::from(crate::serialize::encode(msg).into_boxed_slice())
}

/// A deadline `after` from now, or None when the timer is zero: a zero timer (reliable
/// transports) means "terminate at once", which needs no heap entry.
pub(crate) fn after(now: Instant, after: Duration) -> Option<Instant> {
    (!after.is_zero()).then(|| now + after)
}
