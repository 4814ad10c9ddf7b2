//! One side of a relay: where its peer is, what it latched, what it counted.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::packet::RtpHeaderView;
use crate::types::{ExtSeq, ExtTimestamp, SeqExtender, Ssrc, TimestampExtender};

use super::PacketKind;

/// Counters and stream state of one side. "in" is what the side's peer sent to the PBX;
/// "out" is what the PBX forwarded to the side's peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    pub rtp_packets_in: u64,
    pub rtp_bytes_in: u64,
    pub rtcp_packets_in: u64,
    pub rtcp_bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Dropped: from a source other than the latched one, or not latchable.
    pub dropped_foreign: u64,
    /// Dropped: not RTP/RTCP version 2 or truncated.
    pub dropped_malformed: u64,
    /// Dropped: the other side has no address yet (no SDP, or on hold with 0.0.0.0).
    pub dropped_no_destination: u64,
    /// Forward attempts toward this side that the socket refused (reported by the edge).
    pub send_errors: u64,
    /// When the last accepted RTP packet came in.
    pub last_rtp_at: Option<Instant>,
    /// SSRC of the last accepted RTP packet.
    pub ssrc: Option<Ssrc>,
    /// Times the SSRC changed.
    pub ssrc_changes: u32,
    /// Highest extended sequence number of the current SSRC.
    pub highest_seq: Option<ExtSeq>,
    /// Highest extended RTP timestamp of the current SSRC.
    pub highest_timestamp: Option<ExtTimestamp>,
    /// Packets of the current SSRC accepted (for a loss estimate).
    pub stream_packets: u64,
    /// First extended sequence number of the current SSRC.
    pub first_seq: Option<ExtSeq>,
    pub latched_rtp: Option<SocketAddr>,
    pub latched_rtcp: Option<SocketAddr>,
}

impl LegStats {
    /// RFC 3550-style cumulative loss of the current SSRC (expected − received, ≥ 0).
    pub fn lost(&self) -> u64 {
        match (self.first_seq, self.highest_seq) {
            (Some(first), Some(high)) => (high.0 - first.0 + 1).saturating_sub(self.stream_packets),
            _ => 0,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Leg {
    pub sdp_rtp: Option<SocketAddr>,
    pub sdp_rtcp: Option<SocketAddr>,
    /// Another address the peer may send from (its SIP signalling address, for NAT).
    pub extra_ip: Option<IpAddr>,
    pub hold: bool,
    pub stats: LegStats,
    /// Where the party that left this side sent RTP and RTCP from: a phone that keeps
    /// streaming for a moment after a transfer must not take the side back.
    departed: [Option<SocketAddr>; 2],
    seq: SeqExtender,
    ts: TimestampExtender,
}

impl Leg {
    pub fn set_remote(&mut self, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) {
        self.sdp_rtp = rtp;
        self.sdp_rtcp = rtcp.or_else(|| {
            rtp.and_then(|a| a.port().checked_add(1).map(|p| SocketAddr::new(a.ip(), p)))
        });
        self.stats.latched_rtp = None;
        self.stats.latched_rtcp = None;
    }

    /// Another party takes this side (a transfer): the current sources may not latch
    /// again (unless a new SDP names them exactly), and the next allowed source latches.
    pub fn new_party(&mut self) {
        self.departed = [self.stats.latched_rtp, self.stats.latched_rtcp];
        self.stats.latched_rtp = None;
        self.stats.latched_rtcp = None;
    }

    /// A source of the party that left, not named by the current SDP.
    pub fn is_departed(&self, kind: PacketKind, from: SocketAddr) -> bool {
        let (i, sdp) = match kind {
            PacketKind::Rtp => (0, self.sdp_rtp),
            PacketKind::Rtcp => (1, self.sdp_rtcp),
        };
        self.departed[i] == Some(from) && sdp != Some(from)
    }

    pub fn latched(&self, kind: PacketKind) -> Option<SocketAddr> {
        match kind {
            PacketKind::Rtp => self.stats.latched_rtp,
            PacketKind::Rtcp => self.stats.latched_rtcp,
        }
    }

    /// Whether a first packet from `ip` may latch: the SDP address, the extra
    /// (signalling) address, or — for RTCP — the address RTP latched to.
    pub fn may_latch(&self, kind: PacketKind, ip: IpAddr) -> bool {
        let same = |a: Option<SocketAddr>| a.is_some_and(|a| a.ip() == ip);
        same(self.sdp_rtp)
            || same(self.sdp_rtcp)
            || self.extra_ip == Some(ip)
            || (kind == PacketKind::Rtcp && same(self.stats.latched_rtp))
    }

    pub fn latch(&mut self, kind: PacketKind, from: SocketAddr) {
        match kind {
            PacketKind::Rtp => self.stats.latched_rtp = Some(from),
            PacketKind::Rtcp => self.stats.latched_rtcp = Some(from),
        }
    }

    /// Where to send a packet of `kind` to this side's peer: where it sends from
    /// (symmetric RTP), else what its SDP said.
    pub fn destination(&self, kind: PacketKind) -> Option<SocketAddr> {
        match kind {
            PacketKind::Rtp => self.stats.latched_rtp.or(self.sdp_rtp),
            PacketKind::Rtcp => self.stats.latched_rtcp.or(self.sdp_rtcp),
        }
    }

    pub fn count_rtp_in(&mut self, now: Instant, len: usize, h: &RtpHeaderView) {
        let s = &mut self.stats;
        s.rtp_packets_in += 1;
        s.rtp_bytes_in += len as u64;
        s.last_rtp_at = Some(now);
        if s.ssrc != Some(h.ssrc) {
            if s.ssrc.is_some() {
                s.ssrc_changes = s.ssrc_changes.saturating_add(1);
            }
            s.ssrc = Some(h.ssrc);
            self.seq = SeqExtender::new();
            self.ts = TimestampExtender::new();
            s.stream_packets = 0;
            s.first_seq = None;
        }
        let ext = self.seq.extend(h.seq);
        self.ts.extend(h.timestamp);
        s.first_seq = Some(s.first_seq.map_or(ext, |f| f.min(ext)));
        s.stream_packets += 1;
        s.highest_seq = self.seq.highest();
        s.highest_timestamp = self.ts.highest();
    }

    pub fn count_rtcp_in(&mut self, len: usize) {
        self.stats.rtcp_packets_in += 1;
        self.stats.rtcp_bytes_in += len as u64;
    }

    pub fn count_out(&mut self, len: usize) {
        self.stats.packets_out += 1;
        self.stats.bytes_out += len as u64;
    }
}
