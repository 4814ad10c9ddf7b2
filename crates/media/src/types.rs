//! Newtypes for RTP identifiers and 64-bit extended sequence numbers and timestamps.

use std::fmt;

/// An RTP synchronization source identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

/// A 16-bit RTP sequence number as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seq(pub u16);

/// A sequence number extended to 64 bits (wrap count in the high bits), so that it only
/// ever grows over a stream's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtSeq(pub u64);

/// An RTP timestamp extended to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtTimestamp(pub u64);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// Extends `value` (the low `bits` of a counter) to the 64-bit value nearest to `max`,
/// the highest extended value seen so far. Handles wrap in both directions (late packets
/// from before a wrap map below it).
fn extend_nearest(max: u64, value: u64, bits: u32) -> u64 {
    let span = 1u64 << bits;
    let base = max & !(span - 1);
    let candidate = base | value;
    let half = span / 2;
    if candidate > max && candidate - max > half && candidate >= span {
        candidate - span
    } else if candidate < max && max - candidate > half {
        candidate.saturating_add(span)
    } else {
        candidate
    }
}

/// Extends 16-bit sequence numbers of one stream to [`ExtSeq`] (RFC 3550 A.1 in spirit:
/// the value nearest the highest one seen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqExtender {
    max: Option<u64>,
}

impl SeqExtender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `seq`; the highest value seen moves forward only.
    pub fn extend(&mut self, seq: Seq) -> ExtSeq {
        let v = u64::from(seq.0);
        let ext = match self.max {
            None => v,
            Some(max) => extend_nearest(max, v, 16),
        };
        if self.max.is_none_or(|m| ext > m) {
            self.max = Some(ext);
        }
        ExtSeq(ext)
    }

    /// The highest extended sequence number seen, if any.
    pub fn highest(&self) -> Option<ExtSeq> {
        self.max.map(ExtSeq)
    }
}

/// Extends 32-bit RTP timestamps of one stream to [`ExtTimestamp`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimestampExtender {
    max: Option<u64>,
}

impl TimestampExtender {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn extend(&mut self, ts: u32) -> ExtTimestamp {
        let v = u64::from(ts);
        let ext = match self.max {
            None => v,
            Some(max) => extend_nearest(max, v, 32),
        };
        if self.max.is_none_or(|m| ext > m) {
            self.max = Some(ext);
        }
        ExtTimestamp(ext)
    }

    pub fn highest(&self) -> Option<ExtTimestamp> {
        self.max.map(ExtTimestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_wraps_forward() {
        let mut e = SeqExtender::new();
        assert_eq!(e.extend(Seq(65534)), ExtSeq(65534));
        assert_eq!(e.extend(Seq(65535)), ExtSeq(65535));
        assert_eq!(e.extend(Seq(0)), ExtSeq(65536));
        assert_eq!(e.extend(Seq(1)), ExtSeq(65537));
        assert_eq!(e.highest(), Some(ExtSeq(65537)));
    }

    #[test]
    fn late_packet_from_before_wrap_maps_below() {
        let mut e = SeqExtender::new();
        e.extend(Seq(65535));
        e.extend(Seq(0));
        e.extend(Seq(1));
        assert_eq!(e.extend(Seq(65534)), ExtSeq(65534));
        assert_eq!(e.highest(), Some(ExtSeq(65537)));
    }

    #[test]
    fn early_reorder_at_start_does_not_underflow() {
        let mut e = SeqExtender::new();
        assert_eq!(e.extend(Seq(2)), ExtSeq(2));
        assert_eq!(e.extend(Seq(65535)), ExtSeq(65535));
        // Treated as a jump forward rather than a negative number; the max follows.
        assert_eq!(e.extend(Seq(3)), ExtSeq(65539));
    }

    #[test]
    fn many_wraps() {
        let mut e = SeqExtender::new();
        let mut last = ExtSeq(0);
        for i in 0u64..300_000 {
            last = e.extend(Seq((i & 0xffff) as u16));
            assert_eq!(last.0, i);
        }
        assert_eq!(last, ExtSeq(299_999));
    }

    #[test]
    fn timestamps_wrap() {
        let mut e = TimestampExtender::new();
        e.extend(u32::MAX - 159);
        assert_eq!(e.extend(0), ExtTimestamp(1u64 << 32));
        assert_eq!(e.extend(160), ExtTimestamp((1u64 << 32) + 160));
    }
}
