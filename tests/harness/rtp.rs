//! RTP sockets the test owns: the "phone's" media port named in a sipp scenario's SDP, so
//! that the test sends and observes RTP exactly (what arrives, from where, when).
//!
//! An [`RtpEndpoint`] binds one UDP socket, records every datagram it receives (with its
//! source and arrival time) on a thread of its own, and can run senders: 20 ms packets of
//! G.711 A-law (PT 8) carrying a tone, or marked payloads that identify the sender.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::audio::{AlawTone, Pcm, UlawTone, alaw_to_linear, ulaw_to_linear};

/// One datagram received.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub from: SocketAddr,
    pub bytes: Vec<u8>,
}

impl Received {
    /// The parsed RTP header and payload, if it is RTP version 2.
    pub fn rtp(&self) -> Option<Rtp<'_>> {
        Rtp::parse(&self.bytes)
    }
}

/// A parsed RTP packet (RFC 3550 §5.1), borrowing the datagram.
#[derive(Clone, Copy, Debug)]
pub struct Rtp<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

impl<'a> Rtp<'a> {
    pub fn parse(b: &'a [u8]) -> Option<Rtp<'a>> {
        if b.len() < 12 || b[0] >> 6 != 2 {
            return None;
        }
        let cc = usize::from(b[0] & 0x0f);
        let mut off = 12 + 4 * cc;
        if b[0] & 0x10 != 0 {
            if b.len() < off + 4 {
                return None;
            }
            let words = usize::from(u16::from_be_bytes([b[off + 2], b[off + 3]]));
            off += 4 + 4 * words;
        }
        let mut end = b.len();
        if b[0] & 0x20 != 0 {
            let pad = usize::from(*b.last()?);
            end = end.checked_sub(pad)?;
        }
        if off > end {
            return None;
        }
        Some(Rtp {
            payload_type: b[1] & 0x7f,
            marker: b[1] & 0x80 != 0,
            seq: u16::from_be_bytes([b[2], b[3]]),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            payload: &b[off..end],
        })
    }
}

/// Builds an RTP packet.
pub fn rtp_packet(pt: u8, seq: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(pt & 0x7f);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// What a sender puts in its packets.
#[derive(Clone, Debug)]
pub enum Payload {
    /// A sine at this frequency, G.711 A-law, PT 8.
    AlawTone(f64),
    /// A sine at this frequency, G.711 µ-law, PT 0.
    UlawTone(f64),
    /// PT 8, 160 bytes: `tag` (e.g. `b"LEGA"`), then the sequence number, then A-law
    /// silence (0xD5): recognisable wherever it arrives, harmless if played.
    Marked(&'static [u8; 4]),
}

/// The tag of a [`Payload::Marked`] packet.
pub fn marker_of(payload: &[u8]) -> Option<[u8; 4]> {
    (payload.len() >= 4).then(|| [payload[0], payload[1], payload[2], payload[3]])
}

/// How a sender types DTMF digits into its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfMode {
    /// RFC 4733 telephone-events with this payload type, in place of the audio: a
    /// marked first packet, 100 ms of growing durations, the end packet sent 3 times.
    Rfc4733 { pt: u8 },
    /// The digit's two tones (ITU-T Q.23) encoded in the stream's own G.711 for 100 ms.
    InBand,
}

/// Frames (20 ms) a digit's tone or event lasts, then frames of plain audio after it.
const DIGIT_FRAMES: u32 = 5;
const INTER_DIGIT_FRAMES: u32 = 4;

#[derive(Default)]
struct DtmfShared {
    queue: std::collections::VecDeque<(char, DtmfMode)>,
    /// When each queued digit's first packet went out.
    started: Vec<Instant>,
    busy: bool,
}

/// The RFC 4733 event code of a keypad digit.
pub fn dtmf_event_code(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        _ => None,
    }
}

/// The (row, column) frequencies of a keypad digit.
pub fn dtmf_tones(digit: char) -> Option<(f64, f64)> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    KEYS.iter().enumerate().find_map(|(r, row)| row.find(digit).map(|c| (ROWS[r], COLS[c])))
}

/// One digit being sent, frame by frame.
struct Typing {
    digit: char,
    mode: DtmfMode,
    frame: u32,
    /// The RTP timestamp of the event (its first packet's).
    timestamp: u32,
}

impl Typing {
    /// The packet for this frame, or None once the digit and its pause are over.
    fn next(&mut self, seq: u16, ts: u32, ssrc: u32, audio_pt: u8) -> Option<Option<Vec<u8>>> {
        let f = self.frame;
        self.frame += 1;
        match self.mode {
            DtmfMode::Rfc4733 { pt } => {
                // DIGIT_FRAMES updates, the last one ends the event; two retransmissions of
                // the end, then plain audio until the pause is over.
                if f >= DIGIT_FRAMES + 2 + INTER_DIGIT_FRAMES {
                    return None;
                }
                if f >= DIGIT_FRAMES + 2 {
                    return Some(None);
                }
                let last = f + 1 >= DIGIT_FRAMES;
                let duration = (f.min(DIGIT_FRAMES - 1) + 1) * 160;
                let code = dtmf_event_code(self.digit).unwrap_or(0);
                let body = [code, if last { 0x80 } else { 0 } | 10, (duration >> 8) as u8, duration as u8];
                let mut p = rtp_packet(pt, seq, self.timestamp, ssrc, &body);
                if f == 0 {
                    p[1] |= 0x80; // marker: a new event
                }
                Some(Some(p))
            }
            DtmfMode::InBand => {
                if f >= DIGIT_FRAMES + INTER_DIGIT_FRAMES {
                    return None;
                }
                if f >= DIGIT_FRAMES {
                    return Some(None);
                }
                let (lo, hi) = dtmf_tones(self.digit).unwrap_or((697.0, 1209.0));
                let body: Vec<u8> = (0..160u32)
                    .map(|i| {
                        let t = f64::from(f * 160 + i) / 8000.0;
                        let x = 7000.0 * ((2.0 * std::f64::consts::PI * lo * t).sin()
                            + (2.0 * std::f64::consts::PI * hi * t).sin());
                        let x = x as i16;
                        if audio_pt == 0 { crate::audio::linear_to_ulaw(x) } else { crate::audio::linear_to_alaw(x) }
                    })
                    .collect();
                Some(Some(rtp_packet(audio_pt, seq, ts, ssrc, &body)))
            }
        }
    }
}

struct Sender {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
    dtmf: Arc<Mutex<DtmfShared>>,
}

/// A UDP socket on `ip` (port chosen by the kernel) that records what it receives.
pub struct RtpEndpoint {
    socket: Arc<UdpSocket>,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    receiver: Option<JoinHandle<()>>,
    senders: Vec<Sender>,
}

impl RtpEndpoint {
    /// Binds `ip:0` and starts recording.
    pub fn bind(ip: IpAddr) -> RtpEndpoint {
        let socket = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("binding {ip}:0/udp: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set_read_timeout");
        let socket = Arc::new(socket);
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let receiver = {
            let (socket, received, stop) = (Arc::clone(&socket), Arc::clone(&received), Arc::clone(&stop));
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = socket.recv_from(&mut buf) {
                        received.lock().unwrap_or_else(|p| p.into_inner()).push(Received {
                            at: Instant::now(),
                            from,
                            bytes: buf[..n].to_vec(),
                        });
                    }
                }
            })
        };
        RtpEndpoint {
            socket,
            received,
            stop,
            receiver: Some(receiver),
            senders: Vec::new(),
        }
    }

    /// On 127.0.0.1.
    pub fn loopback() -> RtpEndpoint {
        Self::bind(IpAddr::from([127, 0, 0, 1]))
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local_addr")
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// Sends one datagram now.
    pub fn send_to(&self, bytes: &[u8], to: SocketAddr) {
        let _ = self.socket.send_to(bytes, to);
    }

    /// Starts sending a packet every 20 ms to `to` until [`RtpEndpoint::stop_sending`]
    /// (or drop).
    pub fn start_sending(&mut self, to: SocketAddr, payload: Payload, ssrc: u32) {
        let socket = Arc::clone(&self.socket);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let dtmf: Arc<Mutex<DtmfShared>> = Arc::default();
        let keys = Arc::clone(&dtmf);
        let handle = thread::spawn(move || {
            let mut typing: Option<Typing> = None;
            let mut tone = match payload {
                Payload::AlawTone(f) => Some(AlawTone::new(f)),
                Payload::Marked(_) | Payload::UlawTone(_) => None,
            };
            let mut ulaw = match payload {
                Payload::UlawTone(f) => Some(UlawTone::new(f)),
                _ => None,
            };
            let pt = if ulaw.is_some() { 0 } else { 8 };
            let start = Instant::now();
            let mut n: u64 = 0;
            while !flag.load(Ordering::Relaxed) {
                let seq = (n & 0xffff) as u16;
                let ts = (n as u32).wrapping_mul(160);
                let typed = {
                    let mut k = keys.lock().unwrap_or_else(|p| p.into_inner());
                    if typing.is_none()
                        && let Some((digit, mode)) = k.queue.pop_front()
                    {
                        k.started.push(Instant::now());
                        typing = Some(Typing { digit, mode, frame: 0, timestamp: ts });
                    }
                    let out = typing.as_mut().and_then(|t| t.next(seq, ts, ssrc, pt));
                    if out.is_none() {
                        typing = None;
                    }
                    k.busy = typing.is_some() || !k.queue.is_empty();
                    out.flatten()
                };
                if let Some(p) = typed {
                    let _ = socket.send_to(&p, to);
                    n += 1;
                    let next = start + Duration::from_millis(20 * n);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                    continue;
                }
                let body = match (&payload, tone.as_mut()) {
                    (_, Some(t)) => t.next_frame(),
                    (Payload::UlawTone(_), None) => ulaw.as_mut().expect("µ-law tone").next_frame(),
                    (Payload::Marked(tag), None) => {
                        let mut b = Vec::with_capacity(160);
                        b.extend_from_slice(&tag[..]);
                        b.extend_from_slice(&seq.to_be_bytes());
                        b.resize(160, 0xD5);
                        b
                    }
                    _ => unreachable!(),
                };
                let _ = socket.send_to(&rtp_packet(pt, seq, ts, ssrc, &body), to);
                n += 1;
                // Paced on the wall clock so that a late wake-up does not slow the stream.
                let next = start + Duration::from_millis(20 * n);
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
            }
            n
        });
        self.senders.push(Sender {
            stop,
            handle: Some(handle),
            dtmf,
        });
    }

    /// Types `digits` into the first sender's stream the `mode` way, and returns once
    /// they are all sent, with the time each digit's first packet went out.
    pub fn send_dtmf(&self, digits: &str, mode: DtmfMode) -> Vec<Instant> {
        let sender = self.senders.first().expect("send_dtmf needs a running sender");
        {
            let mut k = sender.dtmf.lock().unwrap_or_else(|p| p.into_inner());
            k.started.clear();
            k.queue.extend(digits.chars().map(|d| (d, mode)));
            k.busy = true;
        }
        let deadline = Instant::now() + Duration::from_secs(10) + Duration::from_millis(200) * digits.len() as u32;
        loop {
            {
                let mut k = sender.dtmf.lock().unwrap_or_else(|p| p.into_inner());
                if !k.busy && k.queue.is_empty() {
                    return std::mem::take(&mut k.started);
                }
            }
            assert!(Instant::now() < deadline, "the RTP sender did not send the digits {digits:?}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops every sender; returns how many packets each sent.
    pub fn stop_sending(&mut self) -> Vec<u64> {
        let mut counts = Vec::new();
        for s in &mut self.senders {
            s.stop.store(true, Ordering::Relaxed);
            if let Some(h) = s.handle.take() {
                counts.push(h.join().unwrap_or(0));
            }
        }
        self.senders.clear();
        counts
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The A-law audio received from `from` between `since` and `until`, decoded, in
    /// arrival order (PT 8 packets only).
    pub fn alaw_audio(&self, from: Option<SocketAddr>, since: Instant, until: Instant, label: &str) -> Pcm {
        let samples = self
            .received()
            .iter()
            .filter(|r| r.at >= since && r.at < until && from.is_none_or(|f| r.from == f))
            .filter_map(|r| r.rtp().filter(|p| p.payload_type == 8).map(|p| p.payload.to_vec()))
            .flatten()
            .map(|b| f64::from(alaw_to_linear(b)))
            .collect();
        Pcm {
            rate: 8000,
            samples,
            source: label.to_string(),
        }
    }

    /// Like [`RtpEndpoint::alaw_audio`] for G.711 µ-law (PT 0 packets only).
    pub fn ulaw_audio(&self, from: Option<SocketAddr>, since: Instant, until: Instant, label: &str) -> Pcm {
        let samples = self
            .received()
            .iter()
            .filter(|r| r.at >= since && r.at < until && from.is_none_or(|f| r.from == f))
            .filter_map(|r| r.rtp().filter(|p| p.payload_type == 0).map(|p| p.payload.to_vec()))
            .flatten()
            .map(|b| f64::from(ulaw_to_linear(b)))
            .collect();
        Pcm {
            rate: 8000,
            samples,
            source: label.to_string(),
        }
    }

    /// A one-line summary of what arrived: per source, packets, payload types and tags.
    pub fn summary(&self) -> String {
        use std::collections::BTreeMap;
        let mut by: BTreeMap<String, (usize, BTreeMap<String, usize>)> = BTreeMap::new();
        for r in self.received() {
            let e = by.entry(r.from.to_string()).or_default();
            e.0 += 1;
            let kind = match r.rtp() {
                Some(p) => match marker_of(p.payload) {
                    Some(m) if m.iter().all(u8::is_ascii_uppercase) => {
                        format!("PT{} {}", p.payload_type, String::from_utf8_lossy(&m))
                    }
                    _ => format!("PT{} ssrc {:08x}", p.payload_type, p.ssrc),
                },
                None => format!("non-RTP ({} bytes)", r.bytes.len()),
            };
            *e.1.entry(kind).or_default() += 1;
        }
        let mut s = format!("{} received:", self.addr());
        if by.is_empty() {
            s.push_str(" nothing");
        }
        for (from, (n, kinds)) in by {
            s.push_str(&format!(" [from {from}: {n} datagrams {kinds:?}]"));
        }
        s
    }
}

impl Drop for RtpEndpoint {
    fn drop(&mut self) {
        self.stop_sending();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.receiver.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip() {
        let p = rtp_packet(8, 7, 1120, 0xdead_beef, b"LEGA..");
        let r = Rtp::parse(&p).unwrap();
        assert_eq!((r.payload_type, r.seq, r.timestamp, r.ssrc), (8, 7, 1120, 0xdead_beef));
        assert_eq!(marker_of(r.payload), Some(*b"LEGA"));
        assert!(Rtp::parse(b"\x00\x08").is_none());
    }

    #[test]
    fn an_endpoint_hears_another() {
        let a = RtpEndpoint::loopback();
        let mut b = RtpEndpoint::loopback();
        let t0 = Instant::now();
        b.start_sending(a.addr(), Payload::AlawTone(440.0), 1);
        let got = crate::process::poll_until(Duration::from_secs(5), || (a.received().len() >= 25).then_some(()));
        b.stop_sending();
        assert!(got.is_some(), "{}", a.summary());
        let pcm = a.alaw_audio(Some(b.addr()), t0, Instant::now(), "b->a");
        let report = crate::audio::analyse(&pcm, 440.0, 660.0, 0.0);
        report.assert_hears(0.4, 0.9, "loopback RTP");
    }
}
