//! RTCP for one call (RFC 3550 §6): a report about every 5 s — a sender report while we
//! send, a receiver report otherwise, each with a reception block for the peer's stream
//! and our CNAME — and a BYE when the call ends. Peers and PBXs use these for call
//! quality (loss, jitter, round-trip time); the reports we receive give us the same.
//! Sans-IO: RTP arrivals and RTCP datagrams in, datagrams to send out.

use hark_media::rtcp;
use hark_media::rtcp::goodbye::Goodbye;
use hark_media::rtcp::packet::Packet;
use hark_media::rtcp::receiver_report::ReceiverReport;
use hark_media::rtcp::reception_report::ReceptionReport;
use hark_media::rtcp::sender_report::SenderReport;
use hark_media::rtcp::source_description::{SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// RFC 3550 §6.2's minimum interval for a two-party call.
const INTERVAL: Duration = Duration::from_secs(5);
/// Seconds from 1900 (NTP's epoch) to 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// What we sent, for the sender report.
#[derive(Clone, Copy, Debug, Default)]
pub struct SenderCounts {
    pub ssrc: u32,
    pub packets: u32,
    pub octets: u32,
    /// The RTP timestamp that corresponds to "now".
    pub rtp_time: u32,
    pub sending: bool,
}

/// The reception statistics of the peer's stream (RFC 3550 Appendix A.1, A.3, A.8).
#[derive(Debug, Default)]
struct Reception {
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter in RTP units.
    jitter: f64,
    transit: Option<i64>,
    /// The middle 32 bits of the last SR's NTP time and when it came.
    last_sr: Option<(u32, Instant)>,
}

impl Reception {
    fn on_rtp(&mut self, ssrc: u32, seq: u16, ts: u32, arrival_units: i64) {
        if self.ssrc != Some(ssrc) {
            // A new source (first packet, or the peer restarted): start over.
            *self = Reception { ssrc: Some(ssrc), base_seq: u32::from(seq), max_seq: seq, ..Default::default() };
        } else if seq.wrapping_sub(self.max_seq) < 0x8000 {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
        }
        self.received += 1;
        let transit = arrival_units - i64::from(ts);
        if let Some(prev) = self.transit {
            let d = (transit - prev).unsigned_abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    fn block(&mut self, now: Instant) -> Option<ReceptionReport> {
        let ssrc = self.ssrc?;
        let extended_max = self.cycles + u32::from(self.max_seq);
        let expected = extended_max.wrapping_sub(self.base_seq) + 1;
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sender_report, delay) = match self.last_sr {
            // The delay since that SR in units of 1/65536 s.
            Some((lsr, at)) => (lsr, (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32),
            None => (0, 0),
        };
        Some(ReceptionReport {
            ssrc,
            fraction_lost,
            // 24 bits, signed (duplicates can make it negative).
            total_lost: (lost.clamp(-0x80_0000, 0x7f_ffff) as i32 as u32) & 0x00ff_ffff,
            last_sequence_number: extended_max,
            jitter: self.jitter as u32,
            last_sender_report,
            delay,
        })
    }
}

/// What the peer's reports said about our stream.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PeerView {
    pub reports: u64,
    pub fraction_lost: u8,
    pub total_lost: u32,
    pub jitter: u32,
    /// Round-trip time from the last report that echoed one of our SRs.
    pub rtt: Option<Duration>,
}

pub struct Rtcp {
    cname: String,
    started: Instant,
    next: Instant,
    reception: Reception,
    /// Our SRs by their middle NTP bits, to time the peer's echo (RTT).
    sent_srs: Vec<(u32, Instant)>,
    pub peer: PeerView,
}

fn ntp_now() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

fn middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// RFC 3550 §6.3.1: the interval randomised over 0.5–1.5 times, so that reports of many
/// phones do not line up.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::random_range(0.5..1.5))
}

impl Rtcp {
    pub fn new(cname: String, now: Instant) -> Self {
        // The first report comes early (half the interval, §6.2), so a short call has one.
        Self {
            cname,
            started: now,
            next: now + jittered(INTERVAL / 2),
            reception: Reception::default(),
            sent_srs: Vec::new(),
            peer: PeerView::default(),
        }
    }

    /// An RTP packet of the peer's stream arrived; `clock_rate` is its RTP clock.
    pub fn on_rtp(&mut self, ssrc: u32, seq: u16, ts: u32, clock_rate: u32, now: Instant) {
        let units = (now.duration_since(self.started).as_secs_f64() * f64::from(clock_rate)) as i64;
        self.reception.on_rtp(ssrc, seq, ts, units);
    }

    /// An RTCP datagram from the peer; malformed ones are ignored.
    pub fn receive(&mut self, datagram: &[u8], our_ssrc: u32, now: Instant) {
        let Ok(packets) = hark_media::packet::parse_rtcp(datagram) else { return };
        for p in packets {
            let any = p.as_any();
            let blocks = if let Some(sr) = any.downcast_ref::<SenderReport>() {
                self.reception.last_sr = Some((middle(sr.ntp_time), now));
                &sr.reports
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                &rr.reports
            } else {
                continue;
            };
            for b in blocks.iter().filter(|b| b.ssrc == our_ssrc) {
                self.peer.reports += 1;
                self.peer.fraction_lost = b.fraction_lost;
                self.peer.total_lost = b.total_lost;
                self.peer.jitter = b.jitter;
                if let Some((_, sent)) = self.sent_srs.iter().find(|(m, _)| *m == b.last_sender_report && b.last_sender_report != 0) {
                    let held = Duration::from_secs_f64(f64::from(b.delay) / 65536.0);
                    self.peer.rtt = Some(now.saturating_duration_since(*sent).saturating_sub(held));
                }
            }
        }
    }

    /// When [`Rtcp::poll_report`] has something to send.
    pub fn next_report(&self) -> Instant {
        self.next
    }

    /// The compound report due at `now`, if any.
    pub fn poll_report(&mut self, now: Instant, us: SenderCounts) -> Option<Vec<u8>> {
        if now < self.next {
            return None;
        }
        self.next = now + jittered(INTERVAL);
        let reports: Vec<ReceptionReport> = self.reception.block(now).into_iter().collect();
        let first: Box<dyn Packet + Send + Sync> = if us.sending {
            let ntp = ntp_now();
            self.sent_srs.push((middle(ntp), now));
            // Echoes come within a few intervals; older SRs cannot be matched any more.
            if self.sent_srs.len() > 8 {
                self.sent_srs.remove(0);
            }
            Box::new(SenderReport {
                ssrc: us.ssrc,
                ntp_time: ntp,
                rtp_time: us.rtp_time,
                packet_count: us.packets,
                octet_count: us.octets,
                reports,
                profile_extensions: Default::default(),
            })
        } else {
            Box::new(ReceiverReport { ssrc: us.ssrc, reports, profile_extensions: Default::default() })
        };
        rtcp::packet::marshal(&[first, self.sdes(us.ssrc)]).ok().map(|b| b.to_vec())
    }

    fn sdes(&self, ssrc: u32) -> Box<dyn Packet + Send + Sync> {
        Box::new(SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: self.cname.clone().into_bytes().into(),
                }],
            }],
        })
    }

    /// The last report and a BYE, for the end of the call (RFC 3550 §6.6).
    pub fn bye(&mut self, now: Instant, us: SenderCounts) -> Vec<u8> {
        self.next = now;
        let mut packets: Vec<Box<dyn Packet + Send + Sync>> = Vec::new();
        let reports: Vec<ReceptionReport> = self.reception.block(now).into_iter().collect();
        packets.push(Box::new(ReceiverReport { ssrc: us.ssrc, reports, profile_extensions: Default::default() }));
        packets.push(self.sdes(us.ssrc));
        packets.push(Box::new(Goodbye { sources: vec![us.ssrc], reason: Default::default() }));
        rtcp::packet::marshal(&packets).map(|b| b.to_vec()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(ssrc: u32) -> SenderCounts {
        SenderCounts { ssrc, packets: 250, octets: 40_000, rtp_time: 1234, sending: true }
    }

    #[test]
    fn reports_count_loss_and_echo_sender_reports_for_the_round_trip() {
        let t0 = Instant::now();
        let (mut a, mut b) = (Rtcp::new("a@h".into(), t0), Rtcp::new("b@h".into(), t0));
        // b receives a's stream, seq 100..=199 with 10 lost.
        for i in 0u16..100 {
            if i % 10 != 3 {
                b.on_rtp(0xaaaa, 100 + i, u32::from(i) * 160, 8000, t0 + Duration::from_millis(u64::from(i) * 20));
            }
        }
        let t1 = t0 + Duration::from_secs(5);
        let sr = a.poll_report(t1, us(0xaaaa)).expect("a report is due after 5 s");
        b.receive(&sr, 0xbbbb, t1 + Duration::from_millis(10));
        let t2 = t1 + Duration::from_millis(500);
        let rr = b.poll_report(t2 + Duration::from_secs(5), SenderCounts { ssrc: 0xbbbb, ..Default::default() }).unwrap();
        a.receive(&rr, 0xaaaa, t2 + Duration::from_secs(5) + Duration::from_millis(10));
        assert_eq!(a.peer.reports, 1);
        assert_eq!(a.peer.total_lost, 10);
        assert_eq!(a.peer.fraction_lost, (10 * 256 / 100) as u8);
        // 10 ms each way; b held the SR for 5.49 s.
        let rtt = a.peer.rtt.expect("the RR echoes the SR");
        assert!(rtt >= Duration::from_millis(15) && rtt <= Duration::from_millis(25), "{rtt:?}");
    }

    #[test]
    fn the_bye_is_a_compound_packet_naming_our_source() {
        let mut a = Rtcp::new("a@h".into(), Instant::now());
        let bye = a.bye(Instant::now(), us(7));
        let packets = hark_media::packet::parse_rtcp(&bye).unwrap();
        assert_eq!(packets.len(), 3);
        let g = packets[2].as_any().downcast_ref::<Goodbye>().unwrap();
        assert_eq!(g.sources, vec![7]);
    }

    #[test]
    fn garbage_is_ignored() {
        let mut a = Rtcp::new("a@h".into(), Instant::now());
        a.receive(&[0x80, 200, 0, 1, 2], 1, Instant::now());
        a.receive(&[], 1, Instant::now());
        assert_eq!(a.peer, PeerView::default());
    }

    #[test]
    fn sequence_wrap_counts_a_cycle_not_a_loss() {
        let t0 = Instant::now();
        let mut b = Rtcp::new("b@h".into(), t0);
        for (i, seq) in (65530u16..=65535).chain(0..10).enumerate() {
            b.on_rtp(1, seq, i as u32 * 160, 8000, t0);
        }
        let block = b.reception.block(t0).unwrap();
        assert_eq!(block.total_lost, 0);
        assert_eq!(block.last_sequence_number, (1 << 16) + 9);
    }
}
