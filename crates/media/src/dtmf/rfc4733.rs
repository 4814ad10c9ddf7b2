//! RFC 4733 telephone-events to digits.
//!
//! A sender reports one key press as one event: every packet of it carries the same RTP
//! timestamp (the event's start) and a growing duration; the first packets may be sent
//! several times, and the final one, with the E bit, is sent three times. Packets can
//! be lost or reordered. [`Rfc4733Tracker`] reports each event once, on the first packet
//! of it that arrives, whichever that is.
//!
//! Rules: an event is identified by (RTP timestamp, event code). A packet of an event
//! seen among the last eight is a repeat (also a start retransmitted after its end, or
//! a late packet of an older event). A new timestamp with the same code, following a
//! segment that never ended and ran to the 16-bit duration limit (≥ 0xF000 units), is
//! the next segment of a long event (RFC 4733 §2.5.1.3), not a new key press.
//! Non-key events (16, flash, and codes above) are tracked but give no digit.
//!
//! One tracker per RTP stream: call [`reset`](Rfc4733Tracker::reset) when the SSRC
//! changes.

use crate::packet::TelephoneEvent;

/// Events remembered for de-duplication.
const RECENT: usize = 8;
/// A segment whose duration reached this may be continued by a new segment.
const LONG_EVENT_DURATION: u16 = 0xF000;

/// One event seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    timestamp: u32,
    event: u8,
    ended: bool,
    duration: u16,
}

/// Turns telephone-event payloads into exactly one digit per event. No allocation.
#[derive(Debug, Clone, Default)]
pub struct Rfc4733Tracker {
    recent: [Option<Seen>; RECENT],
    /// Slot of the most recently started event.
    newest: usize,
}

impl Rfc4733Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets all events (for a new SSRC).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Takes one telephone-event payload (the RTP payload, without the header) and its
    /// packet's RTP timestamp. Returns the digit when this packet is the first seen of a
    /// key event; None for repeats, long-event continuations, non-key events and
    /// payloads shorter than 4 bytes.
    pub fn push(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = TelephoneEvent::parse(payload)?;
        if let Some(seen) = self
            .recent
            .iter_mut()
            .flatten()
            .find(|s| s.timestamp == rtp_timestamp && s.event == ev.event)
        {
            seen.ended |= ev.end;
            seen.duration = seen.duration.max(ev.duration);
            return None;
        }
        let continues = self.recent[self.newest % RECENT].is_some_and(|prev| {
            let gap = rtp_timestamp.wrapping_sub(prev.timestamp);
            prev.event == ev.event
                && !prev.ended
                && prev.duration >= LONG_EVENT_DURATION
                && (u32::from(prev.duration)..=0x1_0000).contains(&gap)
        });
        self.newest = (self.newest + 1) % RECENT;
        self.recent[self.newest] = Some(Seen {
            timestamp: rtp_timestamp,
            event: ev.event,
            ended: ev.end,
            duration: ev.duration,
        });
        if continues { None } else { ev.digit() }
    }
}
