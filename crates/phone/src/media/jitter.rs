//! A fixed-delay jitter buffer: packets in by sequence number, out one per tick in
//! order. Holes come out as losses (for concealment); a stream that stops for long, or
//! a new SSRC, starts over with a fresh prefetch.

use hark_media::{ExtSeq, Seq, SeqExtender};
use std::collections::BTreeMap;

/// What the buffer hands the decoder on a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Nothing to play yet (filling) or the stream stopped: play silence.
    Idle,
    /// The next packet's payload and payload type.
    Packet { pt: u8, payload: Vec<u8> },
    /// The next packet is missing: conceal it.
    Lost,
}

#[derive(Debug)]
pub struct JitterBuffer {
    /// Packets held before playout starts.
    prefetch: usize,
    /// More than this many held: drop the oldest down to `prefetch` (clock drift, bursts).
    max_held: usize,
    /// Consecutive losses after which the stream counts as stopped.
    max_lost_run: u32,
    extender: SeqExtender,
    ssrc: Option<u32>,
    packets: BTreeMap<u64, (u8, Vec<u8>)>,
    next: Option<u64>,
    lost_run: u32,
    pub late: u64,
    pub lost: u64,
    pub dropped_overflow: u64,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new(3, 25)
    }
}

impl JitterBuffer {
    /// `prefetch` packets of delay; at most `max_held` held.
    pub fn new(prefetch: usize, max_held: usize) -> Self {
        Self {
            prefetch: prefetch.max(1),
            max_held: max_held.max(prefetch + 1),
            max_lost_run: 10,
            extender: SeqExtender::new(),
            ssrc: None,
            packets: BTreeMap::new(),
            next: None,
            lost_run: 0,
            late: 0,
            lost: 0,
            dropped_overflow: 0,
        }
    }

    fn restart(&mut self) {
        self.extender = SeqExtender::new();
        self.packets.clear();
        self.next = None;
        self.lost_run = 0;
    }

    /// A received packet.
    pub fn push(&mut self, ssrc: u32, seq: u16, pt: u8, payload: &[u8]) {
        if self.ssrc != Some(ssrc) {
            self.ssrc = Some(ssrc);
            self.restart();
        }
        let ExtSeq(ext) = self.extender.extend(Seq(seq));
        if self.next.is_some_and(|n| ext < n) {
            self.late += 1;
            return;
        }
        self.packets.entry(ext).or_insert_with(|| (pt, payload.to_vec()));
        while self.packets.len() > self.max_held {
            // Too far behind: skip ahead so the delay stays bounded.
            while self.packets.len() > self.prefetch {
                self.packets.pop_first();
                self.dropped_overflow += 1;
            }
            self.next = self.packets.keys().next().copied();
        }
    }

    /// The next thing to play, one call per packet interval.
    pub fn pop(&mut self) -> Playout {
        let next = match self.next {
            Some(n) => n,
            None => {
                if self.packets.len() < self.prefetch {
                    return Playout::Idle;
                }
                match self.packets.keys().next() {
                    Some(&first) => first,
                    None => return Playout::Idle,
                }
            }
        };
        self.next = Some(next + 1);
        match self.packets.remove(&next) {
            Some((pt, payload)) => {
                self.lost_run = 0;
                Playout::Packet { pt, payload }
            }
            None => {
                self.lost_run += 1;
                if self.packets.is_empty() && self.lost_run > self.max_lost_run {
                    // The sender stopped (hold, end of call): fill up again before playing.
                    self.next = None;
                    self.lost_run = 0;
                    return Playout::Idle;
                }
                self.lost += 1;
                Playout::Lost
            }
        }
    }

    pub fn held(&self) -> usize {
        self.packets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(j: &mut JitterBuffer, n: usize) -> Vec<Option<u8>> {
        (0..n)
            .map(|_| match j.pop() {
                Playout::Packet { payload, .. } => Some(payload[0]),
                Playout::Lost => None,
                Playout::Idle => Some(255),
            })
            .collect()
    }

    #[test]
    fn reordered_packets_come_out_in_order_and_holes_as_losses() {
        let mut j = JitterBuffer::new(3, 25);
        for s in [1u16, 3, 2, 5] {
            j.push(7, s, 0, &[s as u8]);
        }
        assert_eq!(seqs(&mut j, 5), vec![Some(1), Some(2), Some(3), None, Some(5)]);
        j.push(7, 2, 0, &[2]);
        assert_eq!(j.late, 1);
    }

    #[test]
    fn nothing_plays_until_the_prefetch_is_held() {
        let mut j = JitterBuffer::new(3, 25);
        j.push(1, 10, 0, &[10]);
        assert_eq!(j.pop(), Playout::Idle);
        j.push(1, 11, 0, &[11]);
        j.push(1, 12, 0, &[12]);
        assert_eq!(seqs(&mut j, 3), vec![Some(10), Some(11), Some(12)]);
    }

    #[test]
    fn wrap_around_and_overflow_keep_the_delay_bounded() {
        let mut j = JitterBuffer::new(2, 5);
        for i in 0..20u16 {
            j.push(1, 65530u16.wrapping_add(i), 0, &[i as u8]);
        }
        assert!(j.held() <= 5);
        assert!(matches!(j.pop(), Playout::Packet { .. }));
    }
}
