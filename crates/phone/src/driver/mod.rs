//! The tokio edge of the phone: one task owns the [`Phone`] engine and its SIP sockets;
//! one task per call owns that call's RTP socket, media clock and audio files. The owner
//! talks to it through a [`PhoneHandle`]: commands in, [`PhoneEvent`]s out.

mod media_task;

use crate::audio::AudioConfig;
use crate::config::PhoneConfig;
use crate::engine::{Command, Phone};
use crate::error::PhoneError;
use crate::event::{CallHandle, PhoneEvent};
use hark_recorder::{Media, Operation};
use hark_sip::transport::{Inbound, SipTransports, Transport, TransportConfig};
use media_task::{MediaControl, MediaTask};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;

/// How the driver is set up.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub phone: PhoneConfig,
    /// The SIP socket; port 0 picks a free port. An unspecified IP (0.0.0.0) is replaced
    /// by the address that routes to the server.
    pub listen: SocketAddr,
    pub audio: AudioConfig,
    /// RTP ports to bind from (inclusive); None lets the system pick.
    pub rtp_ports: Option<(u16, u16)>,
}

/// Commands the owner sends; the driver binds RTP sockets itself.
#[derive(Debug)]
pub enum DriverCommand {
    Dial { target: String, reply: oneshot::Sender<Result<CallHandle, PhoneError>> },
    Answer { call: CallHandle },
    Reject { call: CallHandle, code: u16 },
    Hangup { call: CallHandle },
    Hold { call: CallHandle },
    Resume { call: CallHandle },
    SendDtmf { call: CallHandle, digits: String },
    /// Mutes (or unmutes) our microphone on the call: silence is sent (and recorded
    /// locally) instead; the call and its RTP stream go on.
    Mute { call: CallHandle, on: bool },
    /// Pauses the PBX's recording (the configured way) and the local recording.
    /// Pause or resume the PBX's recording of the call's audio or video; an audio pause
    /// also pauses the local recording.
    RecordingControl { call: CallHandle, op: Operation },
    BlindTransfer { call: CallHandle, target: String },
    AttendedTransfer { call: CallHandle, target: CallHandle },
    Unregister,
    /// Stops every call's media (files finalized) and ends the driver.
    Shutdown,
}

/// The owner's end of a running phone.
pub struct PhoneHandle {
    pub commands: mpsc::UnboundedSender<DriverCommand>,
    pub events: mpsc::UnboundedReceiver<PhoneEvent>,
    /// Where SIP listens.
    pub local_sip: SocketAddr,
    pub task: JoinHandle<()>,
}

impl PhoneHandle {
    pub fn send(&self, cmd: DriverCommand) {
        let _ = self.commands.send(cmd);
    }

    /// Places a call.
    pub async fn dial(&self, target: &str) -> Result<CallHandle, PhoneError> {
        let (reply, rx) = oneshot::channel();
        self.send(DriverCommand::Dial { target: target.to_owned(), reply });
        rx.await.map_err(|_| PhoneError::Send("the phone stopped".into()))?
    }

    /// Stops the phone and waits until every file is complete.
    pub async fn shutdown(self) {
        self.send(DriverCommand::Shutdown);
        let _ = self.task.await;
    }
}

/// The local address that routes to `server` (no packet is sent).
pub fn route_ip(server: SocketAddr) -> io::Result<IpAddr> {
    let probe = std::net::UdpSocket::bind(if server.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" })?;
    probe.connect(server)?;
    Ok(probe.local_addr()?.ip())
}

/// Binds the SIP socket and starts the phone's task.
pub async fn start(config: DriverConfig) -> io::Result<PhoneHandle> {
    let mut listen = config.listen;
    if listen.ip().is_unspecified() {
        listen.set_ip(route_ip(config.phone.account.server)?);
    }
    let tcp = config.phone.account.transport == Transport::Tcp;
    let transports = SipTransports::bind(TransportConfig {
        udp: Some(listen),
        tcp: tcp.then_some(listen),
        limits: Default::default(),
    })
    .await?;
    let local = transports
        .local_addr(config.phone.account.transport)
        .ok_or_else(|| io::Error::other("no SIP socket for the transport"))?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let phone = Phone::new(std::time::Instant::now(), config.phone.clone(), local, local.ip());
    let driver = Driver {
        phone,
        transports,
        media_ip: local.ip(),
        audio: config.audio,
        rtp_ports: config.rtp_ports,
        cname: format!("{}@{}", config.phone.account.user, local.ip()),
        commands: cmd_tx.downgrade(),
        sockets: HashMap::new(),
        media: HashMap::new(),
        finished: Vec::new(),
        events: ev_tx,
    };
    let task = tokio::spawn(driver.run(cmd_rx));
    Ok(PhoneHandle { commands: cmd_tx, events: ev_rx, local_sip: local, task })
}

/// A call's RTP socket and the RTCP socket on the next port.
struct MediaSockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

struct Driver {
    phone: Phone,
    transports: SipTransports,
    media_ip: IpAddr,
    audio: AudioConfig,
    rtp_ports: Option<(u16, u16)>,
    /// Our RTCP CNAME (RFC 3550 §6.5.1): user@address.
    cname: String,
    /// Our own command channel, for media tasks that must end their call.
    commands: mpsc::WeakUnboundedSender<DriverCommand>,
    /// RTP sockets bound for calls whose media has not started yet.
    sockets: HashMap<CallHandle, MediaSockets>,
    media: HashMap<CallHandle, mpsc::UnboundedSender<MediaControl>>,
    finished: Vec<JoinHandle<()>>,
    events: mpsc::UnboundedSender<PhoneEvent>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<DriverCommand>) {
        loop {
            self.flush();
            let deadline = self.phone.next_timeout().map(TokioInstant::from_std);
            tokio::select! {
                inbound = self.transports.recv() => match inbound {
                    Ok(Inbound::Message { peer, msg }) => self.phone.handle_message(std::time::Instant::now(), peer, msg),
                    Ok(Inbound::Ping { .. }) | Ok(Inbound::Malformed { .. }) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "SIP socket failed");
                        break;
                    }
                },
                cmd = commands.recv() => match cmd {
                    None | Some(DriverCommand::Shutdown) => break,
                    Some(cmd) => self.command(cmd).await,
                },
                _ = sleep_until(deadline) => self.phone.handle_timeout(std::time::Instant::now()),
            }
        }
        self.flush();
        self.media.clear();
        for task in self.finished.drain(..) {
            let _ = task.await;
        }
    }

    /// An RTP socket on an even port and its RTCP socket on the next (RFC 3550 §11), in
    /// `--rtp-ports` when given.
    fn bind_rtp(&self) -> Result<(MediaSockets, u16), PhoneError> {
        let bind = |port: u16| {
            let s = std::net::UdpSocket::bind(SocketAddr::new(self.media_ip, port))?;
            s.set_nonblocking(true)?;
            Ok::<_, io::Error>(s)
        };
        let pair = |rtp: std::net::UdpSocket| -> Option<(std::net::UdpSocket, std::net::UdpSocket)> {
            let port = rtp.local_addr().ok()?.port();
            if port % 2 != 0 || port == u16::MAX {
                return None;
            }
            bind(port + 1).ok().map(|rtcp| (rtp, rtcp))
        };
        let found = match self.rtp_ports {
            // The system's choice, until it is even with a free odd neighbour.
            None => (0..64).find_map(|_| bind(0).ok().and_then(pair)),
            Some((lo, hi)) => (lo + lo % 2..hi).step_by(2).find_map(|port| bind(port).ok().and_then(pair)),
        };
        let Some((rtp, rtcp)) = found else {
            return Err(PhoneError::Send(match self.rtp_ports {
                None => "no free RTP/RTCP port pair".into(),
                Some((lo, hi)) => format!("no free RTP/RTCP port pair in {lo}-{hi}"),
            }));
        };
        let port = rtp.local_addr().map_err(|e| PhoneError::Send(e.to_string()))?.port();
        let to_tokio = |s| UdpSocket::from_std(s).map_err(|e| PhoneError::Send(format!("RTP socket: {e}")));
        Ok((MediaSockets { rtp: to_tokio(rtp)?, rtcp: to_tokio(rtcp)? }, port))
    }

    async fn command(&mut self, cmd: DriverCommand) {
        let now = std::time::Instant::now();
        let result = match cmd {
            DriverCommand::Dial { target, reply } => {
                let r = match self.bind_rtp() {
                    Ok((socket, port)) => {
                        let r = self.phone.handle_command(now, Command::Dial { target, rtp_port: port });
                        if let Ok(Some(call)) = &r {
                            self.sockets.insert(*call, socket);
                        }
                        r.map(|c| c.unwrap_or(CallHandle(0)))
                    }
                    Err(e) => Err(e),
                };
                let _ = reply.send(r);
                return;
            }
            DriverCommand::Answer { call } => match self.bind_rtp() {
                Ok((socket, port)) => {
                    self.sockets.insert(call, socket);
                    self.phone.handle_command(now, Command::Answer { call, rtp_port: port })
                }
                Err(e) => Err(e),
            },
            DriverCommand::Reject { call, code } => self.phone.handle_command(now, Command::Reject { call, code }),
            DriverCommand::Hangup { call } => self.phone.handle_command(now, Command::Hangup { call }),
            DriverCommand::Hold { call } => self.phone.handle_command(now, Command::Hold { call }),
            DriverCommand::Resume { call } => self.phone.handle_command(now, Command::Resume { call }),
            DriverCommand::SendDtmf { call, digits } => self.phone.handle_command(now, Command::SendDtmf { call, digits }),
            DriverCommand::Mute { call, on } => {
                self.to_media(call, MediaControl::Muted(on));
                Ok(None)
            }
            DriverCommand::RecordingControl { call, op } => {
                if op.media() == Media::Audio {
                    self.to_media(call, MediaControl::LocalPaused(op.is_pause()));
                }
                self.phone.handle_command(now, Command::RecordingControl { call, op })
            }
            DriverCommand::BlindTransfer { call, target } => {
                self.phone.handle_command(now, Command::BlindTransfer { call, target })
            }
            DriverCommand::AttendedTransfer { call, target } => {
                self.phone.handle_command(now, Command::AttendedTransfer { call, target })
            }
            DriverCommand::Unregister => self.phone.handle_command(now, Command::Unregister),
            DriverCommand::Shutdown => Ok(None),
        };
        match result {
            // The call ended as the command came (the peer hung up, a transfer took it):
            // a race, not a fault.
            Err(e @ PhoneError::NoSuchCall(_)) => tracing::debug!(error = %e, "command for a call that has ended"),
            Err(e) => tracing::warn!(error = %e, "command failed"),
            Ok(_) => {}
        }
    }

    /// The peer of `call` asked us (REFER) to call `target`: a phone follows at once.
    fn follow_transfer(&mut self, call: CallHandle, target: &str) {
        let (socket, port) = match self.bind_rtp() {
            Ok(bound) => bound,
            Err(e) => return tracing::warn!(%call, error = %e, "no RTP socket to follow a transfer"),
        };
        let now = std::time::Instant::now();
        match self.phone.handle_command(now, Command::AcceptTransfer { call, rtp_port: port }) {
            Ok(Some(new)) => {
                tracing::info!(%call, %new, target, "following a transfer");
                self.sockets.insert(new, socket);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%call, error = %e, "transfer not followed"),
        }
    }

    fn to_media(&self, call: CallHandle, ctl: MediaControl) {
        if let Some(tx) = self.media.get(&call) {
            let _ = tx.send(ctl);
        }
    }

    /// Sends what the engine wants sent and acts on its events before passing them on.
    fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.phone.poll_transmit() {
                self.transports.send(t);
                progressed = true;
            }
            while let Some(ev) = self.phone.poll_event() {
                progressed = true;
                self.on_event(&ev);
                let _ = self.events.send(ev);
            }
            while let Some((call, target)) = self.phone.poll_transfer_request() {
                progressed = true;
                self.follow_transfer(call, &target);
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_event(&mut self, ev: &PhoneEvent) {
        match ev {
            PhoneEvent::Media { call, params } => {
                if let Some(tx) = self.media.get(call) {
                    let _ = tx.send(MediaControl::Update(params.clone()));
                    return;
                }
                let Some(socket) = self.sockets.remove(call) else { return };
                let (tx, rx) = mpsc::unbounded_channel();
                let task = MediaTask {
                    call: *call,
                    socket: socket.rtp,
                    rtcp_socket: socket.rtcp,
                    cname: self.cname.clone(),
                    params: params.clone(),
                    audio: self.audio.clone(),
                    control: rx,
                    events: self.events.clone(),
                    rtp_timeout: self.phone.config().rtp_timeout,
                    commands: self.commands.clone(),
                };
                self.media.insert(*call, tx);
                self.finished.push(tokio::spawn(task.run()));
            }
            PhoneEvent::SendRtpDtmf { call, digits, payload_type } => {
                self.to_media(*call, MediaControl::Dtmf { digits: digits.clone(), payload_type: *payload_type })
            }
            PhoneEvent::Ended { call, .. } => {
                self.sockets.remove(call);
                // Dropping the sender stops the media task; it finishes its files.
                self.media.remove(call);
            }
            _ => {}
        }
    }
}

async fn sleep_until(deadline: Option<TokioInstant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
