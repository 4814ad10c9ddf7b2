//! The serve loop's side of media: one hark-media relay task per call stream, started,
//! steered and stopped when the core asks, with their events funnelled back to it.

use crate::b2bua::{CallKey, LegSide, RelayPorts};
use hark_media::relay::{Tone, TonePlayer};
use hark_media::PayloadFormat;
use hark_media::relay::task::{spawn_relay, PortPool, RelayCommand, RelayOptions, RelayTaskEvent, TapPacket};
use hark_media::{RelayConfig, Side};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::mpsc;

pub struct Relays {
    pool: PortPool,
    bind_ip: IpAddr,
    config: RelayConfig,
    calls: HashMap<CallKey, Vec<mpsc::Sender<RelayCommand>>>,
    events_tx: mpsc::UnboundedSender<(CallKey, RelayTaskEvent)>,
    events_rx: mpsc::UnboundedReceiver<(CallKey, RelayTaskEvent)>,
}

fn side(s: LegSide) -> Side {
    match s {
        LegSide::A => Side::A,
        LegSide::B => Side::B,
    }
}

impl Relays {
    pub fn new(ports: (u16, u16), bind_ip: IpAddr, silence_timeout: Duration) -> Result<Self, String> {
        let pool = PortPool::new(ports.0, ports.1).map_err(|e| format!("--rtp-ports {}-{}: {e}", ports.0, ports.1))?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Ok(Self { pool, bind_ip, config: RelayConfig { silence_timeout }, calls: HashMap::new(), events_tx, events_rx })
    }

    /// Binds and starts `streams` relays for a call.
    /// `tap` gets a copy of the first stream's packets (the audio), for a recorder.
    pub fn start(&mut self, call: CallKey, streams: usize, mut tap: Option<mpsc::Sender<TapPacket>>) -> Result<RelayPorts, String> {
        let mut ports = Vec::with_capacity(streams);
        let mut commands = Vec::with_capacity(streams);
        for _ in 0..streams {
            let options = RelayOptions { config: self.config, tap: tap.take() };
            let mut handle = match spawn_relay(&self.pool, self.bind_ip, options) {
                Ok(h) => h,
                Err(e) => {
                    for c in commands {
                        let _ = mpsc::Sender::try_send(&c, RelayCommand::Stop);
                    }
                    return Err(e.to_string());
                }
            };
            ports.push((handle.rtp_port(Side::A), handle.rtp_port(Side::B)));
            commands.push(handle.commands());
            let events = self.events_tx.clone();
            tokio::spawn(async move {
                while let Some(ev) = handle.next_event().await {
                    let stopped = matches!(ev, RelayTaskEvent::Stopped { .. });
                    if events.send((call, ev)).is_err() || stopped {
                        break;
                    }
                }
            });
        }
        self.calls.insert(call, commands);
        Ok(RelayPorts { streams: ports })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn update(&self, call: CallKey, stream: usize, leg: LegSide, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>, source_ip: IpAddr, hold: bool) {
        let Some(cmd) = self.calls.get(&call).and_then(|c| c.get(stream)) else { return };
        // Commands are rare (answer, re-INVITE); a full queue means the task is gone.
        let _ = cmd.try_send(RelayCommand::UpdateRemote { side: side(leg), rtp, rtcp });
        let _ = cmd.try_send(RelayCommand::AllowIp { side: side(leg), ip: Some(source_ip) });
        let _ = cmd.try_send(RelayCommand::SetHold { side: side(leg), hold });
    }

    /// Another party takes `leg` of `call` (every stream).
    pub fn new_party(&self, call: CallKey, leg: LegSide) {
        for cmd in self.calls.get(&call).into_iter().flatten() {
            let _ = cmd.try_send(RelayCommand::NewParty { side: side(leg) });
        }
    }

    /// Plays `tone` to the phone on `leg` of `call` (stream `stream`'s relay).
    pub fn play_tone(&self, call: CallKey, stream: usize, leg: LegSide, tone: Tone, formats: &[PayloadFormat]) {
        let Some(cmd) = self.calls.get(&call).and_then(|c| c.get(stream)) else { return };
        let player = Box::new(TonePlayer::new(tone, formats));
        let _ = cmd.try_send(RelayCommand::PlayTone { side: side(leg), player });
    }

    pub fn stop(&mut self, call: CallKey) {
        for cmd in self.calls.remove(&call).unwrap_or_default() {
            let _ = cmd.try_send(RelayCommand::Stop);
        }
    }

    pub fn stop_all(&mut self) {
        let calls: Vec<CallKey> = self.calls.keys().copied().collect();
        for c in calls {
            self.stop(c);
        }
    }

    pub fn active(&self) -> usize {
        self.calls.len()
    }

    /// The next event of any relay. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<(CallKey, RelayTaskEvent)> {
        self.events_rx.recv().await
    }
}
