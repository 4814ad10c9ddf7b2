//! The media relay of one call, sans-IO.
//!
//! Two sides: A faces the caller, B the callee; each has an RTP and an RTCP socket on the
//! PBX (owned by the tokio edge in [`task`]). A packet that arrives on side S's socket
//! comes from S's peer and is forwarded out of the other side's socket of the same kind.
//!
//! Symmetric RTP (RFC 4961 / "comedia"): the SDP gives each side's expected address, but
//! phones behind NAT send from elsewhere. The first packet of a kind from the SDP's IP
//! (any port), from the IP given with [`MediaRelay::allow_ip`] (the SIP signalling source)
//! or, for RTCP, from the IP RTP latched to, *latches* that source; afterwards packets of
//! that kind from any other source are dropped and counted, and the side's peer is sent
//! to where it sends from. [`MediaRelay::set_remote`] (a new SDP, e.g. a re-INVITE)
//! resets the latch. RFC 4733 events are RTP like any other and are forwarded as such.
//!
//! Early media works because nothing waits for an answer: once side B's address is known
//! (the 183's SDP, or `allow_ip` with the callee's address) its packets go A-ward.
//!
//! [`MediaRelay::handle_packet`] allocates nothing; it reads the fixed headers in place.

mod leg;
pub mod task;
mod tone;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use leg::Leg;
pub use leg::LegStats;
pub use tone::{Tone, TonePlayer};

use crate::packet::{looks_like_rtcp, peek_rtcp, peek_rtp};

/// A side of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg.
    A,
    /// The callee's leg.
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// RTP or RTCP (which socket a packet came in on, or goes out of).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    Rtp,
    Rtcp,
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not RTP/RTCP version 2, or truncated.
    Malformed,
    /// From a source other than the latched one, or from an address that may not latch.
    ForeignSource,
    /// The other side has no address yet (no SDP, or held with 0.0.0.0).
    NoDestination,
}

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayAction {
    /// Send the same bytes out of `out_side`'s socket of `kind` to `to`.
    Forward {
        out_side: Side,
        kind: PacketKind,
        to: SocketAddr,
    },
    Drop(DropReason),
}

/// Something worth telling the call's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEvent {
    /// A side's source was latched.
    Latched {
        side: Side,
        kind: PacketKind,
        from: SocketAddr,
    },
    /// No RTP from either side for `silent_for` while neither is on hold (once per
    /// silent stretch).
    Silent { silent_for: Duration },
}

/// Relay settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// No RTP from either side for this long (and no hold) makes the call dead.
    pub silence_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            silence_timeout: Duration::from_secs(60),
        }
    }
}

/// Both sides' statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub a: LegStats,
    pub b: LegStats,
}

impl RelayStats {
    pub fn side(&self, side: Side) -> &LegStats {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
}

/// Most undrained events kept (the oldest go first beyond that).
const MAX_EVENTS: usize = 16;

/// The relay core of one call. See the module docs.
#[derive(Debug)]
pub struct MediaRelay {
    config: RelayConfig,
    legs: [Leg; 2],
    /// Silence is measured from the latest of: creation, end of a hold, last RTP.
    activity_floor: Instant,
    silent_reported: bool,
    events: VecDeque<RelayEvent>,
    /// A tone being played to each side's phone (indexed by the side that hears it).
    tones: [Option<TonePlayer>; 2],
}

impl MediaRelay {
    pub fn new(now: Instant, config: RelayConfig) -> Self {
        MediaRelay {
            config,
            legs: [Leg::default(), Leg::default()],
            activity_floor: now,
            silent_reported: false,
            events: VecDeque::with_capacity(MAX_EVENTS),
            tones: [None, None],
        }
    }

    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    fn leg(&self, side: Side) -> &Leg {
        &self.legs[side.index()]
    }

    fn leg_mut(&mut self, side: Side) -> &mut Leg {
        &mut self.legs[side.index()]
    }

    /// The peer addresses from `side`'s SDP (None for port 0 or 0.0.0.0). RTCP defaults
    /// to RTP port + 1. Resets the side's latch: the next packet from an allowed IP
    /// latches anew.
    pub fn set_remote(&mut self, side: Side, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) {
        self.leg_mut(side).set_remote(rtp, rtcp);
    }

    /// Another IP `side`'s peer may latch from (its SIP signalling source address, for
    /// phones behind NAT that write a private address into their SDP; or the callee's
    /// address before its SDP arrives). Kept across `set_remote`.
    pub fn allow_ip(&mut self, side: Side, ip: Option<IpAddr>) {
        self.leg_mut(side).extra_ip = ip;
    }

    /// Marks `side` as holding (its SDP is sendonly/inactive/0.0.0.0, or it was held by
    /// the other): silence is then expected and does not make the call dead. Leaving hold
    /// restarts the silence clock at `now`.
    pub fn set_hold(&mut self, now: Instant, side: Side, hold: bool) {
        let leg = self.leg_mut(side);
        let was = leg.hold;
        leg.hold = hold;
        if was && !hold {
            self.activity_floor = self.activity_floor.max(now);
            self.silent_reported = false;
        }
    }

    pub fn is_hold(&self, side: Side) -> bool {
        self.leg(side).hold
    }

    /// Handles a datagram that arrived on `side`'s socket of `kind` from `from`.
    /// Never allocates and never panics.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        side: Side,
        kind: PacketKind,
        from: SocketAddr,
        packet: &[u8],
    ) -> RelayAction {
        // RFC 5761: RTCP may arrive on the RTP port; it goes on as RTCP.
        let kind = if kind == PacketKind::Rtp && looks_like_rtcp(packet) {
            PacketKind::Rtcp
        } else {
            kind
        };
        let rtp = match kind {
            PacketKind::Rtp => match peek_rtp(packet) {
                Some(h) => Some(h),
                None => return self.drop(side, DropReason::Malformed),
            },
            PacketKind::Rtcp => {
                if peek_rtcp(packet).is_none() {
                    return self.drop(side, DropReason::Malformed);
                }
                None
            }
        };

        let leg = self.leg_mut(side);
        match leg.latched(kind) {
            Some(latched) if latched == from => {}
            Some(_) => return self.drop(side, DropReason::ForeignSource),
            None => {
                if leg.is_departed(kind, from) || !leg.may_latch(kind, from.ip()) {
                    return self.drop(side, DropReason::ForeignSource);
                }
                leg.latch(kind, from);
                self.push_event(RelayEvent::Latched { side, kind, from });
            }
        }

        let leg = self.leg_mut(side);
        match &rtp {
            Some(h) => leg.count_rtp_in(now, packet.len(), h),
            None => leg.count_rtcp_in(packet.len()),
        }
        if rtp.is_some() {
            self.silent_reported = false;
        }

        let out_side = side.other();
        let out = self.leg_mut(out_side);
        match out.destination(kind) {
            Some(to) => {
                out.count_out(packet.len());
                RelayAction::Forward { out_side, kind, to }
            }
            None => self.drop(side, DropReason::NoDestination),
        }
    }

    /// Plays a tone to `side`'s phone in the packets forwarded to it (see [`TonePlayer`]);
    /// replaces a tone still playing there.
    pub fn play_tone(&mut self, side: Side, player: TonePlayer) {
        self.tones[side.index()] = Some(player);
    }

    /// Another party takes `side` (a transfer): the sources latched so far belong to the
    /// party that left and may not latch again; the new party's first packet latches.
    pub fn new_party(&mut self, side: Side) {
        self.leg_mut(side).new_party();
    }

    /// Whether a tone is playing to `side`'s phone.
    pub fn is_playing(&self, side: Side) -> bool {
        self.tones[side.index()].is_some()
    }

    /// Called by the edge for an RTP packet about to be forwarded to `out_side` (after
    /// [`MediaRelay::handle_packet`] said so): writes the tone playing there into
    /// `buf[..len]` and returns the length to send. Allocates nothing.
    pub fn rewrite_outgoing(&mut self, out_side: Side, buf: &mut [u8], len: usize) -> usize {
        let slot = &mut self.tones[out_side.index()];
        let Some(player) = slot else { return len };
        let n = player.rewrite(buf, len);
        if player.is_done() {
            *slot = None;
        }
        n
    }

    fn drop(&mut self, side: Side, reason: DropReason) -> RelayAction {
        let s = &mut self.leg_mut(side).stats;
        match reason {
            DropReason::Malformed => s.dropped_malformed += 1,
            DropReason::ForeignSource => s.dropped_foreign += 1,
            DropReason::NoDestination => s.dropped_no_destination += 1,
        }
        RelayAction::Drop(reason)
    }

    /// The edge reports that a forward toward `side` failed at the socket.
    pub fn note_send_error(&mut self, side: Side) {
        let s = &mut self.leg_mut(side).stats;
        s.send_errors += 1;
        s.packets_out = s.packets_out.saturating_sub(1);
    }

    fn push_event(&mut self, ev: RelayEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    /// When RTP last came from either side, or the silence clock's start.
    fn last_activity(&self) -> Instant {
        let mut t = self.activity_floor;
        for leg in &self.legs {
            if let Some(at) = leg.stats.last_rtp_at {
                t = t.max(at);
            }
        }
        t
    }

    /// No RTP from either side for `timeout`, and neither side on hold.
    pub fn is_silent(&self, now: Instant, timeout: Duration) -> bool {
        if self.legs.iter().any(|l| l.hold) {
            return false;
        }
        now.saturating_duration_since(self.last_activity()) >= timeout
    }

    /// When [`MediaRelay::handle_timeout`] should next run: the moment the call would
    /// turn silent. None while on hold or after silence was reported (until RTP returns).
    /// RTP moves this later; firing early is harmless.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.silent_reported || self.legs.iter().any(|l| l.hold) {
            return None;
        }
        Some(self.last_activity() + self.config.silence_timeout)
    }

    /// Checks for silence; queues [`RelayEvent::Silent`] once per silent stretch.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.silent_reported && self.is_silent(now, self.config.silence_timeout) {
            self.silent_reported = true;
            let silent_for = now.saturating_duration_since(self.last_activity());
            self.push_event(RelayEvent::Silent { silent_for });
        }
    }

    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    pub fn stats(&self) -> RelayStats {
        RelayStats {
            a: self.legs[0].stats,
            b: self.legs[1].stats,
        }
    }

    pub fn side_stats(&self, side: Side) -> &LegStats {
        &self.leg(side).stats
    }

    /// The address `side`'s peer is sent RTP/RTCP to now (latched, else from SDP).
    pub fn destination(&self, side: Side, kind: PacketKind) -> Option<SocketAddr> {
        self.leg(side).destination(kind)
    }
}
