//! The tokio edge of the relay: one task per call owns four sockets (A RTP/RTCP, B
//! RTP/RTCP) and one [`MediaRelay`], and loops over socket readiness, commands and the
//! dead-call timer. The packet path reuses one buffer: `try_recv_from` into it,
//! `handle_packet`, `try_send_to` out of it — no allocation per packet. An optional tap
//! gets copies of forwarded packets for recording, carved out of a reusable arena.

mod port_pool;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use port_pool::{PortLease, PortPair, PortPool, PortPoolError};

use super::{MediaRelay, PacketKind, RelayAction, RelayConfig, RelayEvent, RelayStats, Side, TonePlayer};

/// Receive buffer: larger than any RTP datagram on an Ethernet path.
const RECV_BUF: usize = 4096;
/// Datagrams read from one socket before the others get a turn.
const BURST: usize = 64;
/// Tap arena chunk.
const TAP_ARENA: usize = 64 * 1024;

/// A forwarded packet for the recorder: raw bytes as received (decode them with
/// [`crate::packet::rtp_payload`] and [`crate::codec::Decoder`]).
#[derive(Debug, Clone)]
pub struct TapPacket {
    /// The side the packet came from (A: the caller speaking).
    pub from_side: Side,
    pub kind: PacketKind,
    pub at: Instant,
    pub data: Bytes,
}

/// Commands to a running relay task.
#[derive(Debug)]
pub enum RelayCommand {
    /// New SDP for `side` (re-INVITE, 183/200 answer); resets the latch.
    UpdateRemote {
        side: Side,
        rtp: Option<SocketAddr>,
        rtcp: Option<SocketAddr>,
    },
    /// See [`MediaRelay::set_hold`].
    SetHold {
        side: Side,
        hold: bool,
    },
    /// See [`MediaRelay::allow_ip`].
    AllowIp {
        side: Side,
        ip: Option<IpAddr>,
    },
    /// See [`MediaRelay::new_party`].
    NewParty { side: Side },
    /// Play a tone to `side`'s phone (see [`MediaRelay::play_tone`]).
    PlayTone { side: Side, player: Box<TonePlayer> },
    /// Current statistics.
    Stats(oneshot::Sender<RelayStats>),
    Stop,
}

/// What a relay task reports.
#[derive(Debug, Clone)]
pub enum RelayTaskEvent {
    Latched {
        side: Side,
        kind: PacketKind,
        from: SocketAddr,
    },
    /// No RTP for `seconds` from either side, none on hold: the call looks dead.
    Silent { seconds: u64 },
    /// The task ended (Stop, or the handle was dropped).
    Stopped { stats: Box<RelayStats> },
}

/// Errors of the tokio edge.
#[derive(Debug, thiserror::Error)]
pub enum RelayTaskError {
    #[error(transparent)]
    Ports(#[from] PortPoolError),
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    #[error("relay task has stopped")]
    Stopped,
}

/// Options of [`spawn_relay`].
#[derive(Debug, Default)]
pub struct RelayOptions {
    pub config: RelayConfig,
    /// Gets a copy of every forwarded packet; full or closed channels drop copies
    /// (`try_send`), never stall the relay.
    pub tap: Option<mpsc::Sender<TapPacket>>,
}

/// Controls one call's relay task.
#[derive(Debug)]
pub struct RelayHandle {
    local_ip: IpAddr,
    ports: [u16; 2],
    commands: mpsc::Sender<RelayCommand>,
    events: mpsc::Receiver<RelayTaskEvent>,
    join: JoinHandle<RelayStats>,
}

impl RelayHandle {
    /// The relay's RTP address on `side` (what goes into the SDP sent to that side).
    pub fn local_rtp(&self, side: Side) -> SocketAddr {
        SocketAddr::new(self.local_ip, self.ports[side.index()])
    }

    /// The relay's RTCP address on `side` (RTP port + 1).
    pub fn local_rtcp(&self, side: Side) -> SocketAddr {
        SocketAddr::new(self.local_ip, self.ports[side.index()] + 1)
    }

    pub fn rtp_port(&self, side: Side) -> u16 {
        self.ports[side.index()]
    }

    pub fn local_ip(&self) -> IpAddr {
        self.local_ip
    }

    async fn send(&self, cmd: RelayCommand) -> Result<(), RelayTaskError> {
        self.commands
            .send(cmd)
            .await
            .map_err(|_| RelayTaskError::Stopped)
    }

    pub async fn update_remote(
        &self,
        side: Side,
        rtp: Option<SocketAddr>,
        rtcp: Option<SocketAddr>,
    ) -> Result<(), RelayTaskError> {
        self.send(RelayCommand::UpdateRemote { side, rtp, rtcp })
            .await
    }

    pub async fn set_hold(&self, side: Side, hold: bool) -> Result<(), RelayTaskError> {
        self.send(RelayCommand::SetHold { side, hold }).await
    }

    pub async fn allow_ip(&self, side: Side, ip: Option<IpAddr>) -> Result<(), RelayTaskError> {
        self.send(RelayCommand::AllowIp { side, ip }).await
    }

    pub async fn stats(&self) -> Result<RelayStats, RelayTaskError> {
        let (tx, rx) = oneshot::channel();
        self.send(RelayCommand::Stats(tx)).await?;
        rx.await.map_err(|_| RelayTaskError::Stopped)
    }

    /// A sender for commands, for other tasks of the call.
    pub fn commands(&self) -> mpsc::Sender<RelayCommand> {
        self.commands.clone()
    }

    /// The next event; None once the task has ended and all events were read.
    pub async fn next_event(&mut self) -> Option<RelayTaskEvent> {
        self.events.recv().await
    }

    /// Stops the task, waits for it, and returns the final statistics. The ports go
    /// back to the pool.
    pub async fn stop(self) -> RelayStats {
        let _ = self.commands.send(RelayCommand::Stop).await;
        self.join.await.unwrap_or_default()
    }
}

/// Binds two port pairs from `pool` on `bind_ip` and starts the call's relay task.
/// Must be called inside a tokio runtime.
pub fn spawn_relay(
    pool: &PortPool,
    bind_ip: IpAddr,
    options: RelayOptions,
) -> Result<RelayHandle, RelayTaskError> {
    let a = pool.allocate(bind_ip)?;
    let b = pool.allocate(bind_ip)?;
    let ports = [a.rtp_port(), b.rtp_port()];
    let (a_rtp, a_rtcp, a_lease) = a.into_parts();
    let (b_rtp, b_rtcp, b_lease) = b.into_parts();
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    let (ev_tx, ev_rx) = mpsc::channel(32);
    let relay = MediaRelay::new(Instant::now(), options.config);
    let worker = Worker {
        relay,
        sockets: [[a_rtp, a_rtcp], [b_rtp, b_rtcp]],
        _leases: [a_lease, b_lease],
        events: ev_tx,
        tap: options.tap,
        tap_arena: BytesMut::new(),
        tap_dropped: 0,
    };
    let join = tokio::spawn(worker.run(cmd_rx));
    Ok(RelayHandle {
        local_ip: bind_ip,
        ports,
        commands: cmd_tx,
        events: ev_rx,
        join,
    })
}

struct Worker {
    relay: MediaRelay,
    /// [side][kind]: [A rtp, A rtcp], [B rtp, B rtcp]. Declared before the leases so
    /// that the sockets close before their ports return to the pool.
    sockets: [[UdpSocket; 2]; 2],
    _leases: [PortLease; 2],
    events: mpsc::Sender<RelayTaskEvent>,
    tap: Option<mpsc::Sender<TapPacket>>,
    tap_arena: BytesMut,
    /// Copies the tap could not take (its queue was full): audio missing from a recording.
    tap_dropped: u64,
}

fn kind_index(kind: PacketKind) -> usize {
    match kind {
        PacketKind::Rtp => 0,
        PacketKind::Rtcp => 1,
    }
}

const SLOTS: [(Side, PacketKind); 4] = [
    (Side::A, PacketKind::Rtp),
    (Side::A, PacketKind::Rtcp),
    (Side::B, PacketKind::Rtp),
    (Side::B, PacketKind::Rtcp),
];

impl Worker {
    async fn run(mut self, mut commands: mpsc::Receiver<RelayCommand>) -> RelayStats {
        let mut buf = vec![0u8; RECV_BUF].into_boxed_slice();
        let far = Duration::from_secs(86_400);
        let deadline = |relay: &MediaRelay| {
            let at = relay.poll_timeout().unwrap_or_else(|| Instant::now() + far);
            tokio::time::Instant::from_std(at)
        };
        let sleep = tokio::time::sleep_until(deadline(&self.relay));
        tokio::pin!(sleep);
        loop {
            let ready = tokio::select! {
                // Commands first: a new remote (the answer's SDP) must be in place before
                // the packets it concerns are relayed, or the call's first packets drop.
                biased;
                cmd = commands.recv() => {
                    match cmd {
                        None | Some(RelayCommand::Stop) => break,
                        Some(cmd) => self.command(cmd),
                    }
                    sleep.as_mut().reset(deadline(&self.relay));
                    None
                }
                r = self.sockets[0][0].readable() => Some((0, r)),
                r = self.sockets[0][1].readable() => Some((1, r)),
                r = self.sockets[1][0].readable() => Some((2, r)),
                r = self.sockets[1][1].readable() => Some((3, r)),
                () = &mut sleep => {
                    self.relay.handle_timeout(Instant::now());
                    sleep.as_mut().reset(deadline(&self.relay));
                    None
                }
            };
            if let Some((slot, Ok(()))) = ready {
                self.drain(slot, &mut buf);
            }
            self.flush_events();
        }
        if self.tap_dropped > 0 {
            tracing::warn!(dropped = self.tap_dropped, "the recording fell behind: packets were left out of it");
        }
        let stats = self.relay.stats();
        let _ = self.events.try_send(RelayTaskEvent::Stopped {
            stats: Box::new(stats),
        });
        stats
    }

    fn command(&mut self, cmd: RelayCommand) {
        let now = Instant::now();
        match cmd {
            RelayCommand::UpdateRemote { side, rtp, rtcp } => {
                self.relay.set_remote(side, rtp, rtcp);
            }
            RelayCommand::SetHold { side, hold } => self.relay.set_hold(now, side, hold),
            RelayCommand::AllowIp { side, ip } => self.relay.allow_ip(side, ip),
            RelayCommand::PlayTone { side, player } => self.relay.play_tone(side, *player),
            RelayCommand::NewParty { side } => self.relay.new_party(side),
            RelayCommand::Stats(reply) => {
                let _ = reply.send(self.relay.stats());
            }
            RelayCommand::Stop => {}
        }
    }

    /// Reads up to [`BURST`] datagrams from one socket and relays them.
    fn drain(&mut self, slot: usize, buf: &mut [u8]) {
        let (side, kind) = SLOTS[slot];
        for _ in 0..BURST {
            let sock = &self.sockets[side.index()][kind_index(kind)];
            let (n, from) = match sock.try_recv_from(buf) {
                Ok(v) => v,
                // WouldBlock clears readiness; other errors (ICMP reports) are skipped.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            let now = Instant::now();
            match self.relay.handle_packet(now, side, kind, from, &buf[..n]) {
                RelayAction::Forward {
                    out_side,
                    kind: out_kind,
                    to,
                } => {
                    // The recording gets what the phone sent, before any tone is
                    // written over it for the other phone.
                    self.tap(side, out_kind, now, &buf[..n]);
                    let n = match out_kind {
                        PacketKind::Rtp => self.relay.rewrite_outgoing(out_side, buf, n),
                        PacketKind::Rtcp => n,
                    };
                    let out = &self.sockets[out_side.index()][kind_index(out_kind)];
                    if out.try_send_to(&buf[..n], to).is_err() {
                        self.relay.note_send_error(out_side);
                    }
                }
                RelayAction::Drop(_) => {}
            }
        }
    }

    fn tap(&mut self, from_side: Side, kind: PacketKind, at: Instant, packet: &[u8]) {
        let Some(tap) = &self.tap else { return };
        if tap.capacity() == 0 {
            self.tap_dropped += 1;
            return; // full: drop the copy rather than stall or allocate
        }
        if self.tap_arena.capacity() < packet.len() {
            // Reclaims the old chunk when every copy of it was dropped; else a new one.
            self.tap_arena.reserve(TAP_ARENA.max(packet.len()));
        }
        self.tap_arena.extend_from_slice(packet);
        let data = self.tap_arena.split().freeze();
        if let Err(mpsc::error::TrySendError::Closed(_)) = tap.try_send(TapPacket {
            from_side,
            kind,
            at,
            data,
        }) {
            self.tap = None;
        }
    }

    fn flush_events(&mut self) {
        while let Some(ev) = self.relay.poll_event() {
            let ev = match ev {
                RelayEvent::Latched { side, kind, from } => {
                    RelayTaskEvent::Latched { side, kind, from }
                }
                RelayEvent::Silent { silent_for } => RelayTaskEvent::Silent {
                    seconds: silent_for.as_secs(),
                },
            };
            let _ = self.events.try_send(ev);
        }
    }
}
