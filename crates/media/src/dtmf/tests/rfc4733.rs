//! RFC 4733: one digit per event, whatever the repeats, losses and reordering.

use crate::dtmf::Rfc4733Tracker;
use crate::packet::{TelephoneEvent, peek_rtp, rtp_payload};

fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
    TelephoneEvent {
        event,
        end,
        volume: 10,
        duration,
    }
    .to_bytes()
}

/// The packets of one key press as a sender emits them: the start three times, updates
/// every 20 ms, the end three times.
fn press(event: u8, ms: u16) -> Vec<[u8; 4]> {
    let mut out = vec![ev(event, false, 160); 3];
    let mut d = 320;
    while d < ms * 8 {
        out.push(ev(event, false, d));
        d += 160;
    }
    out.extend([ev(event, true, ms * 8); 3]);
    out
}

fn feed(t: &mut Rfc4733Tracker, ts: u32, packets: &[[u8; 4]]) -> String {
    packets.iter().filter_map(|p| t.push(ts, p)).collect()
}

#[test]
fn dtmf_start_updates_and_three_ends_give_one_digit() {
    let mut t = Rfc4733Tracker::new();
    assert_eq!(feed(&mut t, 8000, &press(5, 100)), "5");
}

#[test]
fn dtmf_same_key_twice_gives_two_digits() {
    let mut t = Rfc4733Tracker::new();
    assert_eq!(feed(&mut t, 8000, &press(10, 100)), "*");
    assert_eq!(feed(&mut t, 9600, &press(10, 100)), "*");
    assert_eq!(feed(&mut t, 11_200, &press(4, 100)), "4");
    assert_eq!(feed(&mut t, 12_800, &press(8, 100)), "8");
}

#[test]
fn dtmf_retransmitted_start_after_end_is_not_counted() {
    let mut t = Rfc4733Tracker::new();
    assert_eq!(feed(&mut t, 100, &press(1, 80)), "1");
    assert_eq!(t.push(100, &ev(1, false, 160)), None);
    // A late end of the first event after the second began.
    assert_eq!(feed(&mut t, 1700, &press(2, 80)[..2]), "2");
    assert_eq!(t.push(100, &ev(1, true, 640)), None);
    assert_eq!(feed(&mut t, 1700, &press(2, 80)[2..]), "");
}

#[test]
fn dtmf_lost_start_still_gives_the_digit_once() {
    let mut t = Rfc4733Tracker::new();
    assert_eq!(feed(&mut t, 500, &[ev(11, true, 800); 3]), "#");
    assert_eq!(
        feed(&mut t, 2500, &[ev(0, false, 480), ev(0, true, 800)]),
        "0"
    );
}

#[test]
fn dtmf_keys_a_to_d_and_non_key_events() {
    let mut t = Rfc4733Tracker::new();
    let got: String = (12..=15)
        .map(|e| t.push(u32::from(e) * 1000, &ev(e, true, 800)).unwrap())
        .collect();
    assert_eq!(got, "ABCD");
    assert_eq!(t.push(90_000, &ev(16, false, 160)), None, "flash");
    assert_eq!(t.push(91_000, &ev(200, false, 160)), None);
    assert_eq!(t.push(92_000, &[1, 2, 3]), None, "short payload");
    assert_eq!(t.push(93_000, &[]), None);
}

#[test]
fn dtmf_long_event_segments_are_one_digit() {
    let mut t = Rfc4733Tracker::new();
    assert_eq!(t.push(1000, &ev(9, false, 160)), Some('9'));
    assert_eq!(t.push(1000, &ev(9, false, 0xFFFF)), None);
    // RFC 4733 §2.5.1.3: the next segment starts at the old timestamp + 0xFFFF.
    assert_eq!(t.push(1000 + 0xFFFF, &ev(9, false, 160)), None);
    assert_eq!(t.push(1000 + 0xFFFF, &ev(9, true, 4000)), None);
    // A short event that ended is never continued.
    assert_eq!(t.push(200_000, &ev(9, true, 800)), Some('9'));
    assert_eq!(t.push(200_000 + 800, &ev(9, false, 160)), Some('9'));
}

#[test]
fn dtmf_timestamps_wrap() {
    let mut t = Rfc4733Tracker::new();
    assert_eq!(feed(&mut t, u32::MAX - 100, &press(3, 60)), "3");
    assert_eq!(feed(&mut t, 1500, &press(3, 60)), "3");
    t.reset();
    assert_eq!(feed(&mut t, 1500, &press(3, 60)), "3", "after reset");
}

#[test]
fn dtmf_from_raw_rtp_packets() {
    // RTP header (PT 101, marker on the first packet) + event payload, through the
    // relay's in-place peeks.
    let packet = |seq: u16, marker: bool, ts: u32, payload: [u8; 4]| {
        let mut p = vec![0x80, 101 | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(&payload);
        p
    };
    let mut packets = Vec::new();
    let mut seq = 100;
    for (i, key) in [10u8, 4, 8].into_iter().enumerate() {
        let ts = 16_000 + 1600 * i as u32;
        for (j, payload) in press(key, 100).into_iter().enumerate() {
            packets.push(packet(seq, j == 0, ts, payload));
            seq += 1;
        }
    }
    let mut t = Rfc4733Tracker::new();
    let got: String = packets
        .iter()
        .filter_map(|p| t.push(peek_rtp(p)?.timestamp, rtp_payload(p)?))
        .collect();
    assert_eq!(got, "*48");
}
