//! RFC 4733 telephone-events out: each digit 100 ms of event packets (duration rising),
//! three end packets, then a 60 ms pause before the next digit.

use hark_media::packet::TelephoneEvent;
use std::collections::VecDeque;

/// Frames (20 ms) of one digit's tone, and of the pause after it.
const TONE_FRAMES: u32 = 5;
const GAP_FRAMES: u32 = 3;
const END_REPEATS: u32 = 3;

#[derive(Debug, Clone, Copy)]
struct Active {
    event: u8,
    start_ts: u32,
    /// Frames sent so far (tone, then end repeats, then gap).
    frame: u32,
}

/// One payload to send this frame in place of audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPacket {
    pub marker: bool,
    pub timestamp: u32,
    pub payload: [u8; 4],
}

#[derive(Debug, Default)]
pub struct DtmfSender {
    queue: VecDeque<u8>,
    active: Option<Active>,
}

fn event_of(digit: char) -> Option<u8> {
    Some(match digit {
        '0'..='9' => digit as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => digit as u8 - b'A' + 12,
        _ => return None,
    })
}

impl DtmfSender {
    pub fn queue(&mut self, digits: &str) {
        self.queue.extend(digits.chars().filter_map(|c| event_of(c.to_ascii_uppercase())));
    }

    pub fn busy(&self) -> bool {
        self.active.is_some() || !self.queue.is_empty()
    }

    /// This frame's work: `Some(packets)` (possibly none, during the gap) while DTMF
    /// owns the stream, None when audio may go. `ts` is the stream clock now and
    /// `frame_units` one frame in RTP clock units.
    pub fn tick(&mut self, ts: u32, frame_units: u32) -> Option<Vec<EventPacket>> {
        if self.active.is_none() {
            let event = self.queue.pop_front()?;
            self.active = Some(Active { event, start_ts: ts, frame: 0 });
        }
        let a = self.active.as_mut()?;
        a.frame += 1;
        let duration = |frames: u32| (frames * frame_units).min(u32::from(u16::MAX)) as u16;
        let out = if a.frame <= TONE_FRAMES {
            vec![EventPacket {
                marker: a.frame == 1,
                timestamp: a.start_ts,
                payload: TelephoneEvent { event: a.event, end: false, volume: 10, duration: duration(a.frame) }.to_bytes(),
            }]
        } else if a.frame == TONE_FRAMES + 1 {
            let end = TelephoneEvent { event: a.event, end: true, volume: 10, duration: duration(TONE_FRAMES) }.to_bytes();
            (0..END_REPEATS).map(|_| EventPacket { marker: false, timestamp: a.start_ts, payload: end }).collect()
        } else {
            Vec::new()
        };
        if a.frame >= TONE_FRAMES + 1 + GAP_FRAMES {
            self.active = None;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digit_is_five_rising_packets_three_ends_and_a_gap() {
        let mut d = DtmfSender::default();
        d.queue("*4");
        let mut ts = 1000;
        let mut packets = Vec::new();
        while let Some(p) = d.tick(ts, 160) {
            packets.extend(p);
            ts += 160;
        }
        assert_eq!(packets.len(), 16);
        let first = TelephoneEvent::parse(&packets[0].payload).unwrap();
        assert_eq!((first.event, first.end, first.duration), (10, false, 160));
        assert!(packets[0].marker);
        let end = TelephoneEvent::parse(&packets[5].payload).unwrap();
        assert!(end.end && end.duration == 800);
        assert_eq!(packets[8].timestamp, 1000 + 9 * 160);
        assert!(!d.busy());
    }
}
