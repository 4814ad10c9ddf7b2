//! One call's media task: a 20 ms clock that reads the microphone, sends RTP, plays
//! what the jitter buffer gives, and writes the speaker file and the local recording.

use crate::audio::{AudioConfig, LocalRecording};
use crate::event::{CallHandle, MediaParams, PhoneEvent};
use crate::media::{FRAME_MS, MediaSession, Rtcp};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

#[derive(Debug)]
pub(super) enum MediaControl {
    Update(MediaParams),
    Dtmf { digits: String, payload_type: u8 },
    LocalPaused(bool),
    Muted(bool),
}

pub(super) struct MediaTask {
    pub call: CallHandle,
    pub socket: UdpSocket,
    /// RTCP, on the port after RTP's; reports go to the peer's RTP port + 1.
    pub rtcp_socket: UdpSocket,
    pub cname: String,
    pub params: MediaParams,
    pub audio: AudioConfig,
    pub control: mpsc::UnboundedReceiver<MediaControl>,
    pub events: mpsc::UnboundedSender<PhoneEvent>,
    pub rtp_timeout: Option<Duration>,
    /// Back to the driver, to hang up a call whose audio stopped (weak: the driver ends
    /// when its owner goes, whatever media tasks still run).
    pub commands: mpsc::WeakUnboundedSender<super::DriverCommand>,
}

impl MediaTask {
    pub(super) async fn run(mut self) {
        let call = self.call;
        let fail = |events: &mpsc::UnboundedSender<PhoneEvent>, reason: String| {
            let _ = events.send(PhoneEvent::MediaError { call, reason });
        };
        let mut session = match MediaSession::new(self.params.clone()) {
            Ok(s) => s,
            Err(e) => return fail(&self.events, e.to_string()),
        };
        let rate = session.rate();
        let frame_len = session.frame_len();
        let mut source = match self.audio.source.open(rate, frame_len) {
            Ok(s) => s,
            Err(e) => return fail(&self.events, e.to_string()),
        };
        let mut sink = match self.audio.sink.open(rate, frame_len) {
            Ok(s) => s,
            Err(e) => return fail(&self.events, e.to_string()),
        };
        let mut recording = match &self.audio.local_recording {
            Some(path) => match LocalRecording::create(path, rate) {
                Ok(r) => Some(r),
                Err(e) => return fail(&self.events, e.to_string()),
            },
            None => None,
        };
        let mut clock = tokio::time::interval(Duration::from_millis(u64::from(FRAME_MS)));
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut buf = vec![0u8; 2048];
        let mut mic = vec![0i16; session.frame_len()];
        let mut played = Vec::with_capacity(session.frame_len());
        let mut write_failed = false;
        let mut muted = false;
        let mut last_rtp = tokio::time::Instant::now();
        let mut timed_out = false;
        let mut rtcp = Rtcp::new(std::mem::take(&mut self.cname), std::time::Instant::now());
        let mut rtcp_buf = vec![0u8; 1500];
        let rtcp_to = |session: &MediaSession| {
            session.params().remote.map(|mut a| {
                a.set_port(a.port().wrapping_add(1));
                a
            })
        };
        loop {
            tokio::select! {
                _ = clock.tick() => {
                    mic.resize(session.frame_len(), 0);
                    source.read_frame(&mut mic);
                    if muted {
                        mic.fill(0);
                    }
                    let remote = session.params().remote;
                    for packet in session.send_frame(&mic) {
                        if let Some(to) = remote {
                            let _ = self.socket.try_send_to(&packet, to);
                        }
                    }
                    played.clear();
                    session.play_frame(&mut played);
                    let mut result = sink.write_frame(&played);
                    if let Some(r) = recording.as_mut() {
                        result = result.and(r.write(&mic, &played));
                    }
                    if let Err(e) = result
                        && !write_failed
                    {
                        write_failed = true;
                        fail(&self.events, e.to_string());
                    }
                    while let Some(n) = source.take_notice().or_else(|| sink.take_notice()) {
                        let _ = self.events.send(PhoneEvent::AudioDevice { call, ok: n.ok, detail: n.detail });
                    }
                    let p = session.params();
                    if let Some(limit) = self.rtp_timeout
                        && !timed_out
                        && p.send
                        && p.receive
                        && p.remote.is_some()
                        && last_rtp.elapsed() >= limit
                    {
                        timed_out = true;
                        fail(&self.events, format!("no audio from the other side for {} s: hanging up", limit.as_secs()));
                        if let Some(commands) = self.commands.upgrade() {
                            let _ = commands.send(super::DriverCommand::Hangup { call });
                        }
                    }
                    if let Some(to) = rtcp_to(&session)
                        && let Some(report) = rtcp.poll_report(std::time::Instant::now(), session.sender_counts())
                    {
                        let _ = self.rtcp_socket.try_send_to(&report, to);
                    }
                }
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, _from)) => {
                        if let Some((ssrc, seq, ts)) = session.receive(&buf[..n]) {
                            last_rtp = tokio::time::Instant::now();
                            let clock = session.codec().rtp_clock_rate();
                            rtcp.on_rtp(ssrc, seq, ts, clock, std::time::Instant::now());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(e) => {
                        fail(&self.events, format!("RTP socket: {e}"));
                        break;
                    }
                },
                received = self.rtcp_socket.recv_from(&mut rtcp_buf) => {
                    if let Ok((n, _from)) = received {
                        rtcp.receive(&rtcp_buf[..n], session.sender_counts().ssrc, std::time::Instant::now());
                    }
                }
                ctl = self.control.recv() => match ctl {
                    Some(MediaControl::Update(p)) => {
                        // A new negotiation (off hold, a new address): give it the full time.
                        last_rtp = tokio::time::Instant::now();
                        if let Err(e) = session.update(p) {
                            fail(&self.events, e.to_string());
                        }
                    }
                    Some(MediaControl::Dtmf { digits, payload_type }) => session.queue_dtmf(&digits, payload_type),
                    Some(MediaControl::LocalPaused(p)) => {
                        if let Some(r) = recording.as_mut() {
                            r.set_paused(p);
                        }
                    }
                    Some(MediaControl::Muted(m)) => muted = m,
                    None => break,
                },
            }
        }
        if let Some(to) = rtcp_to(&session) {
            let _ = self.rtcp_socket.try_send_to(&rtcp.bye(std::time::Instant::now(), session.sender_counts()), to);
        }
        let mut result = sink.finish();
        if let Some(r) = recording.as_mut() {
            result = result.and(r.finish());
        }
        if let Err(e) = result {
            fail(&self.events, e.to_string());
        }
        let _ = self.events.send(PhoneEvent::MediaStopped {
            call,
            sent_packets: session.stats.sent_packets,
            received_packets: session.stats.received_packets,
            peer_reports: rtcp.peer.reports,
            peer_lost: rtcp.peer.total_lost,
            rtt_ms: rtcp.peer.rtt.map(|d| d.as_millis() as u64),
        });
    }
}
