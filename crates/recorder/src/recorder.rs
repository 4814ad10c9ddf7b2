//! The sans-IO recorder of one call's audio.
//!
//! [`CallRecorder`] takes the raw RTP packets the relay forwarded (both sides), decodes
//! them, lays each side's samples on the call's timeline by RTP timestamp, and writes
//! frames in timeline order to a [`FrameSink`] (a [`WavRecording`] in the PBX): stereo
//! with the caller (side A) left and the callee (side B) right, or a mono mix. It reads
//! no clock: every input carries `now`, and [`CallRecorder::poll_timeout`] says when to
//! call [`CallRecorder::handle_timeout`].
//!
//! # Timeline
//!
//! Position 0 is the first media packet from either side after the recorder was made
//! (made at the answer, so nothing of the first syllable is lost); the file rate ticks
//! with the wall clock from there. Each side's RTP stream (one SSRC) is *anchored* at the
//! wall-clock position of its first packet; later packets go where their (64-bit
//! extended) timestamp puts them relative to the anchor. Hence:
//! - lost packets leave silence of exactly their duration, and a stretch with no packets
//!   from anyone is silence of its wall-clock length: both channels stay aligned with
//!   the call's time (a silent side is a channel of zeros);
//! - reordering is undone by a jitter buffer of [`RecorderConfig::jitter`]: packets are
//!   kept encoded and decoded in timestamp order once the timeline is `jitter` behind
//!   the wall clock, so stateful decoders (G.722, Opus) see them in order; a packet that
//!   arrives after its place was written is dropped and counted as late;
//! - a side whose packets stop coming is waited for, up to [`RecorderConfig::max_wait`]
//!   behind the wall clock: the timeline is written only up to `jitter` before the end
//!   of its newest packet, so a stalled flow that arrives in a burst (an overloaded
//!   host, a Wi-Fi hiccup) still lands in its place, without loss or shift; after
//!   `max_wait` the side is taken as silent (DTX, hold, one-way audio);
//! - a new SSRC starts a new stream anchored where the side's audio currently ends (never
//!   before the wall clock), with fresh decoders; a straggler of the previous SSRC still
//!   goes to its old place;
//! - timestamps that run ahead of the wall clock by more than a second (a jump) re-anchor
//!   the stream at the current position at once; packets that keep arriving after their
//!   place was written for 100 ms (timestamps continued across a pause in sending, went
//!   back, or drifted beyond `max_wait`) re-anchor it half a jitter window behind the
//!   wall clock; shorter runs of late packets (the tail of a burst) are dropped;
//! - RFC 4733 telephone-events and comfort noise are never decoded into the audio.
//!
//! Sides may use different codecs: the file rate is the higher natural rate of the two
//! sides' preferred codecs (8 kHz G.711, 16 kHz G.722, 48 kHz Opus) and the other side is
//! converted to it (see `resample`).
//!
//! # Pause and resume
//!
//! While paused, the timeline goes on but its frames are not written: the file is
//! shorter by the paused time. [`RecorderEvent::Paused`] and [`RecorderEvent::Resumed`]
//! carry the position in the file where the cut is (the same for both) and the position
//! on the call's timeline.
//!
//! # Failures
//!
//! A sink error (disk full, I/O error, size limit) ends the recording: a
//! [`RecorderEvent::Failed`] with the error, the sink is asked to make what it has
//! playable, and later packets are ignored. Nothing panics; the call goes on.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use hark_media::codec::{AudioCodec, Decoder};
use hark_media::packet::{RtpHeaderView, looks_like_rtcp, peek_rtp};
use hark_media::sdp::{PayloadFormat, SupportedCodec};
use hark_media::{SeqExtender, Side, TimestampExtender};

use crate::resample;
use crate::wav::{WavError, WavOptions, WavRecording};

/// Timestamps more than this ahead of the wall clock re-anchor a stream.
const MAX_AHEAD: Duration = Duration::from_secs(1);
/// How long packets of the current stream must keep arriving too late before the stream
/// is re-anchored (shorter runs of late packets are a burst after a stall: dropped).
const LATE_PERSIST: Duration = Duration::from_millis(100);
/// Audio is never placed further than this ahead of the wall clock.
const MAX_BUFFER: Duration = Duration::from_secs(5);
/// Largest write handed to the sink at once.
const MAX_WRITE: Duration = Duration::from_secs(1);

/// Channel layout of the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// Two channels: the caller (side A) left, the callee (side B) right.
    #[default]
    Stereo,
    /// One channel: both sides mixed (a tenant option).
    Mono,
}

impl Layout {
    pub fn channels(self) -> u16 {
        match self {
            Layout::Stereo => 2,
            Layout::Mono => 1,
        }
    }
}

/// Recorder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfig {
    pub layout: Layout,
    /// Reordering window: audio is written this long after it arrives (default 80 ms).
    pub jitter: Duration,
    /// Longest time the file's header may lag behind its samples (default 1 s).
    pub flush_interval: Duration,
    /// How long a side whose packets stopped is waited for before its channel is
    /// written as silence (default 1 s; see the module docs).
    pub max_wait: Duration,
    /// Force a file rate instead of the codecs' natural one.
    pub file_rate: Option<u32>,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            layout: Layout::Stereo,
            jitter: Duration::from_millis(80),
            flush_interval: Duration::from_secs(1),
            max_wait: Duration::from_secs(1),
            file_rate: None,
        }
    }
}

/// What a payload type of one side carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayloadKind {
    Audio(AudioCodec),
    TelephoneEvent,
    ComfortNoise,
    Unknown,
}

/// The payload types one side sends, from its negotiated SDP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideCodecs {
    audio: Vec<(u8, AudioCodec)>,
    telephone_event: Vec<u8>,
    comfort_noise: Vec<u8>,
}

impl SideCodecs {
    pub fn new() -> Self {
        Self::default()
    }

    /// One audio codec on its static payload type (Opus, which has none, on 111).
    pub fn single(codec: AudioCodec) -> Self {
        Self::new().audio(codec.static_payload_type().unwrap_or(111), codec)
    }

    /// Adds an audio payload type. The first one added is the side's preferred codec.
    pub fn audio(mut self, pt: u8, codec: AudioCodec) -> Self {
        self.audio.retain(|(p, _)| *p != pt);
        self.audio.push((pt, codec));
        self
    }

    /// Adds an RFC 4733 telephone-event payload type.
    pub fn telephone_event(mut self, pt: u8) -> Self {
        self.telephone_event.push(pt);
        self
    }

    /// Adds a comfort-noise payload type (13 and 19 are always treated as CN unless
    /// given as audio).
    pub fn comfort_noise(mut self, pt: u8) -> Self {
        self.comfort_noise.push(pt);
        self
    }

    /// From an SDP media section's formats, in their order of preference.
    pub fn from_formats(formats: &[PayloadFormat]) -> Self {
        let mut s = Self::new();
        for f in formats {
            match f.codec() {
                Some(SupportedCodec::TelephoneEvent) => s = s.telephone_event(f.pt),
                Some(_) => {
                    if let Some(codec) = AudioCodec::from_format(f) {
                        s = s.audio(f.pt, codec);
                    }
                }
                None if f.name.eq_ignore_ascii_case("CN") => s = s.comfort_noise(f.pt),
                None => {}
            }
        }
        s
    }

    /// The preferred (first) audio codec.
    pub fn primary(&self) -> Option<AudioCodec> {
        self.audio.first().map(|&(_, c)| c)
    }

    fn classify(&self, pt: u8) -> PayloadKind {
        if let Some(&(_, c)) = self.audio.iter().find(|(p, _)| *p == pt) {
            PayloadKind::Audio(c)
        } else if self.telephone_event.contains(&pt) {
            PayloadKind::TelephoneEvent
        } else if self.comfort_noise.contains(&pt) || pt == 13 || pt == 19 {
            PayloadKind::ComfortNoise
        } else {
            // Static payload types mean the same everywhere: decode them even when the
            // SDP did not list them (some phones switch without a re-offer).
            match pt {
                0 => PayloadKind::Audio(AudioCodec::Pcmu),
                8 => PayloadKind::Audio(AudioCodec::Pcma),
                9 => PayloadKind::Audio(AudioCodec::G722),
                _ => PayloadKind::Unknown,
            }
        }
    }
}

/// The file rate for a call: [`RecorderConfig::file_rate`], or the higher natural rate of
/// the two sides' preferred codecs (8000 if neither has one).
pub fn file_rate(config: &RecorderConfig, a: &SideCodecs, b: &SideCodecs) -> u32 {
    config.file_rate.unwrap_or_else(|| {
        [a.primary(), b.primary()]
            .into_iter()
            .flatten()
            .map(AudioCodec::sample_rate)
            .max()
            .unwrap_or(8000)
    })
}

/// Who or what paused or resumed a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlSource {
    /// Feature code as RFC 4733 telephone-events.
    Dtmf,
    /// Feature code as SIP INFO.
    Info,
    /// Feature code as in-band tones.
    Inband,
    /// A media-control MESSAGE.
    Message,
    /// The recording policy.
    Policy,
}

impl ControlSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlSource::Dtmf => "dtmf",
            ControlSource::Info => "info",
            ControlSource::Inband => "inband",
            ControlSource::Message => "message",
            ControlSource::Policy => "policy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ControlSource::Dtmf,
            ControlSource::Info,
            ControlSource::Inband,
            ControlSource::Message,
            ControlSource::Policy,
        ]
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for ControlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the recording's owner stores or acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecorderEvent {
    /// The first media arrived: the recording's position 0.
    Started { at: Instant },
    Paused {
        /// Position in the file, in ms, where the paused stretch is left out.
        offset_ms: u64,
        /// Position on the call's timeline (since `Started`), in ms.
        call_offset_ms: u64,
        source: ControlSource,
        actor: String,
    },
    Resumed {
        /// Position in the file, in ms (equal to the pause's: the gap is cut out).
        offset_ms: u64,
        call_offset_ms: u64,
        /// How much of the call was left out.
        paused_ms: u64,
        source: ControlSource,
        actor: String,
    },
    /// Writing failed; the recording ended with what was written (`offset_ms` of it).
    Failed { offset_ms: u64, error: String },
}

/// Where frames go.
pub trait FrameSink {
    /// Appends interleaved frames.
    fn write_frames(&mut self, interleaved: &[i16]) -> Result<(), WavError>;
    /// Makes what was written durable and readable (a WAV header update).
    fn flush(&mut self) -> Result<(), WavError>;
    /// Completes the file.
    fn finalize(&mut self) -> Result<(), WavError>;
    /// After a failure: keep what was written usable, best effort.
    fn abandon(&mut self) {}
    /// The (rate, channels) the sink was made for, if it knows.
    fn format(&self) -> Option<(u32, u16)> {
        None
    }
}

impl FrameSink for WavRecording {
    fn write_frames(&mut self, interleaved: &[i16]) -> Result<(), WavError> {
        WavRecording::write_frames(self, interleaved)
    }

    fn flush(&mut self) -> Result<(), WavError> {
        self.flush_header()
    }

    fn finalize(&mut self) -> Result<(), WavError> {
        WavRecording::finalize(self).map(|_| ())
    }

    fn abandon(&mut self) {
        WavRecording::abandon(self);
    }

    fn format(&self) -> Option<(u32, u16)> {
        Some((self.rate(), self.channels()))
    }
}

/// Frames kept in memory (tests, previews).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySink {
    pub samples: Vec<i16>,
    pub flushes: u32,
    pub finalized: bool,
}

impl FrameSink for MemorySink {
    fn write_frames(&mut self, interleaved: &[i16]) -> Result<(), WavError> {
        self.samples.extend_from_slice(interleaved);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WavError> {
        self.flushes += 1;
        Ok(())
    }

    fn finalize(&mut self) -> Result<(), WavError> {
        self.finalized = true;
        Ok(())
    }
}

/// Recorder construction errors.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("the sink is {sink_rate} Hz × {sink_channels}, the recording {rate} Hz × {channels}")]
    FormatMismatch {
        rate: u32,
        channels: u16,
        sink_rate: u32,
        sink_channels: u16,
    },
    #[error(transparent)]
    Wav(#[from] WavError),
}

/// Per-side counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideStats {
    /// Every datagram handed in.
    pub packets: u64,
    /// Audio packets accepted into the jitter buffer.
    pub audio_packets: u64,
    pub telephone_events: u64,
    pub comfort_noise: u64,
    /// RTCP, not RTP, or truncated.
    pub malformed: u64,
    /// Payload types the side did not negotiate.
    pub unknown_payload: u64,
    /// Audio payloads of zero length.
    pub empty: u64,
    /// Arrived after their place in the file was written.
    pub late: u64,
    pub duplicates: u64,
    pub decode_errors: u64,
    pub ssrc_changes: u64,
    /// Streams re-anchored (timestamp jumps, drift, restarts).
    pub resyncs: u64,
}

/// Counters of a recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub a: SideStats,
    pub b: SideStats,
    pub frames_written: u64,
    /// Frames of the call's timeline left out while paused.
    pub frames_paused: u64,
}

impl RecorderStats {
    pub fn side(&self, side: Side) -> &SideStats {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
}

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecorderState {
    /// Made, no media yet.
    Waiting,
    Recording,
    Paused,
    Failed,
    Finished,
}

/// The result of [`CallRecorder::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    pub rate: u32,
    pub channels: u16,
    /// Frames in the file.
    pub frames: u64,
    pub duration_ms: u64,
    pub paused_ms: u64,
    /// The first media (None: no media came; the file is empty).
    pub started_at: Option<Instant>,
    /// The error that ended the recording early, if any.
    pub failure: Option<String>,
    pub stats: RecorderStats,
}

/// One RTP stream (SSRC) of a side, mapped onto the timeline.
#[derive(Debug)]
struct Stream {
    ssrc: u32,
    clock: u32,
    ts: TimestampExtender,
    seq: SeqExtender,
    highest_seq: Option<u64>,
    anchor_ts: u64,
    anchor_pos: i64,
}

impl Stream {
    fn new(h: &RtpHeaderView, clock: u32, anchor_pos: u64) -> Self {
        let mut ts = TimestampExtender::new();
        let anchor_ts = ts.extend(h.timestamp).0;
        Stream {
            ssrc: h.ssrc.0,
            clock,
            ts,
            seq: SeqExtender::new(),
            highest_seq: None,
            anchor_ts,
            anchor_pos: anchor_pos as i64,
        }
    }

    /// Timeline position (in file frames at `rate`) of extended timestamp `ts`.
    fn pos(&self, ts: u64, rate: u32) -> i64 {
        let delta = i128::from(ts) - i128::from(self.anchor_ts);
        let frames = (delta * i128::from(rate)).div_euclid(i128::from(self.clock.max(1)));
        (i128::from(self.anchor_pos) + frames).clamp(i128::from(i64::MIN), i128::from(i64::MAX))
            as i64
    }

    fn reanchor(&mut self, ts: u64, pos: i64) {
        self.anchor_ts = ts;
        self.anchor_pos = pos;
    }
}

/// An encoded packet waiting in the jitter buffer.
#[derive(Debug)]
struct Pending {
    pt: u8,
    codec: AudioCodec,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Current,
    Previous,
}

/// One side's decoding state.
struct SideState {
    codecs: SideCodecs,
    decoders: Vec<(u8, Decoder)>,
    current: Option<Stream>,
    previous: Option<Stream>,
    /// Encoded packets by (timeline position, arrival number).
    pending: BTreeMap<(u64, u64), Pending>,
    /// End of the furthest pending packet (estimated from the last packet's length).
    pending_end: u64,
    /// End of the current stream's newest packet (by sequence number).
    recv_end: Option<u64>,
    /// Decoded samples at the file rate, starting at the recorder's `written`.
    buf: VecDeque<i16>,
    /// End position and last input sample of the last decoded packet (interpolation).
    interp: Option<(u64, i16)>,
    /// Length of the last decoded packet at the file rate.
    last_len: u64,
    /// Wall position of the first of a run of late packets.
    late_since: Option<u64>,
    stats: SideStats,
    pcm: Vec<i16>,
    conv: Vec<i16>,
    spare: Vec<Vec<u8>>,
}

impl SideState {
    fn new(codecs: SideCodecs, rate: u32) -> Self {
        SideState {
            codecs,
            decoders: Vec::new(),
            current: None,
            previous: None,
            pending: BTreeMap::new(),
            pending_end: 0,
            recv_end: None,
            buf: VecDeque::new(),
            interp: None,
            last_len: u64::from(rate / 50),
            late_since: None,
            stats: SideStats::default(),
            pcm: Vec::new(),
            conv: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Where this side's audio currently ends (placed or pending).
    fn audio_end(&self, written: u64) -> u64 {
        self.pending_end.max(written + self.buf.len() as u64)
    }

    fn new_stream(&mut self, h: &RtpHeaderView, clock: u32, anchor: u64) {
        self.decoders.clear();
        self.interp = None;
        self.current = Some(Stream::new(h, clock, anchor));
    }

    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        h: &RtpHeaderView,
        codec: AudioCodec,
        payload: &[u8],
        wall: u64,
        written: u64,
        jitter: u64,
        rate: u32,
        arrival: u64,
    ) {
        let clock = codec.rtp_clock_rate();
        let here = wall.max(written);
        // Where a re-anchored stream goes: half the jitter window behind the wall clock,
        // so that it keeps some reordering margin, but never over written frames.
        let catch_up = wall.saturating_sub(jitter / 2).max(written);
        let which = match (&self.current, &self.previous) {
            (Some(c), _) if c.ssrc == h.ssrc.0 => {
                if c.clock != clock {
                    // Same source, other clock (a codec switch): a new mapping.
                    self.stats.resyncs += 1;
                    let anchor = self.audio_end(written).max(here);
                    self.new_stream(h, clock, anchor);
                }
                Which::Current
            }
            (_, Some(p)) if p.ssrc == h.ssrc.0 && p.clock == clock => Which::Previous,
            _ => {
                if self.current.is_some() {
                    self.stats.ssrc_changes += 1;
                }
                let anchor = self.audio_end(written).max(here);
                self.previous = self.current.take();
                self.new_stream(h, clock, anchor);
                Which::Current
            }
        };
        let stream = match which {
            Which::Current => self.current.as_mut(),
            Which::Previous => self.previous.as_mut(),
        };
        let Some(stream) = stream else { return };
        let ext_ts = stream.ts.extend(h.timestamp).0;
        let ext_seq = stream.seq.extend(h.seq).0;
        let is_new = stream.highest_seq.is_none_or(|m| ext_seq > m);
        if is_new {
            stream.highest_seq = Some(ext_seq);
        }
        let mut pos = stream.pos(ext_ts, rate);
        let (wall_i, written_i) = (wall as i64, written as i64);
        let max_ahead = frames_of(MAX_AHEAD, rate) as i64;
        let mut newest = is_new && which == Which::Current;
        if newest && pos > wall_i + max_ahead {
            // Timestamps jumped forward.
            stream.reanchor(ext_ts, here as i64);
            pos = here as i64;
            self.stats.resyncs += 1;
        }
        if pos < written_i {
            // Too late for its place. A burst after a stall (its packets arrive at
            // once) is the usual cause: drop what no longer fits and keep the stream's
            // timing. Only when packets of the current stream stay late for a while
            // did its timing change — timestamps went on across a pause in sending,
            // went back, or drifted beyond `max_wait` — and the stream is caught up
            // with the wall clock.
            let since = *self.late_since.get_or_insert(wall);
            if which == Which::Previous
                || wall.saturating_sub(since) < frames_of(LATE_PERSIST, rate)
            {
                self.stats.late += 1;
                return;
            }
            self.stats.resyncs += 1;
            if is_new {
                stream.reanchor(ext_ts, catch_up as i64);
            } else {
                // Sequence numbers went back too: a restart under the same SSRC.
                self.new_stream(h, clock, catch_up);
                if let Some(s) = self.current.as_mut() {
                    s.highest_seq = Some(s.seq.extend(h.seq).0);
                }
            }
            pos = catch_up as i64;
            newest = true;
        }
        self.late_since = None;
        let pos = pos as u64;
        if pos > here + frames_of(MAX_BUFFER, rate) {
            self.stats.late += 1;
            return;
        }
        if self
            .pending
            .range((pos, 0)..=(pos, u64::MAX))
            .next()
            .is_some()
        {
            self.stats.duplicates += 1;
            return;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(payload);
        self.pending.insert(
            (pos, arrival),
            Pending {
                pt: h.payload_type,
                codec,
                payload: buf,
            },
        );
        self.pending_end = self.pending_end.max(pos + self.last_len);
        if newest {
            self.recv_end = Some(pos + self.last_len);
        }
        self.stats.audio_packets += 1;
    }

    /// Decodes the pending packets that start before `target` into `buf`.
    fn decode_until(&mut self, target: u64, written: u64, rate: u32) {
        while let Some(entry) = self.pending.first_entry() {
            let (pos, _) = *entry.key();
            if pos >= target {
                break;
            }
            let p = entry.remove();
            self.decode_one(pos, &p, written, rate);
            self.spare.push(p.payload);
        }
    }

    fn decode_one(&mut self, pos: u64, p: &Pending, written: u64, rate: u32) {
        let idx = match self
            .decoders
            .iter()
            .position(|(pt, d)| *pt == p.pt && d.codec() == p.codec)
        {
            Some(i) => i,
            None => match Decoder::new(p.codec) {
                Ok(d) => {
                    self.decoders.retain(|(pt, _)| *pt != p.pt);
                    self.decoders.push((p.pt, d));
                    self.decoders.len() - 1
                }
                Err(e) => {
                    tracing::debug!(error = %e, "recorder: no decoder");
                    self.stats.decode_errors += 1;
                    return;
                }
            },
        };
        self.pcm.clear();
        if self.decoders[idx]
            .1
            .decode(&p.payload, &mut self.pcm)
            .is_err()
        {
            self.stats.decode_errors += 1;
            return;
        }
        let from = p.codec.sample_rate();
        let prev = match self.interp {
            Some((end, s)) if end == pos => Some(s),
            _ => None,
        };
        self.conv.clear();
        resample::convert(&self.pcm, from, rate, prev, &mut self.conv);
        let len = self.conv.len() as u64;
        self.interp = self.pcm.last().map(|&s| (pos + len, s));
        if len > 0 {
            self.last_len = len;
        }
        let (mut at, mut src) = (pos, &self.conv[..]);
        if at < written {
            let skip = (written - at) as usize;
            if skip >= src.len() {
                return;
            }
            src = &src[skip..];
            at = written;
        }
        let off = (at - written) as usize;
        if self.buf.len() < off + src.len() {
            self.buf.resize(off + src.len(), 0);
        }
        for (slot, &s) in self.buf.range_mut(off..off + src.len()).zip(src) {
            *slot = s;
        }
    }

    /// Moves `n` samples from the front of `buf` into `dst` (zeros where there are none).
    fn take(&mut self, n: usize, dst: &mut Vec<i16>) {
        dst.clear();
        let k = n.min(self.buf.len());
        dst.extend(self.buf.drain(..k));
        dst.resize(n, 0);
    }

    fn discard(&mut self, n: usize) {
        let k = n.min(self.buf.len());
        self.buf.drain(..k);
    }

    fn clear(&mut self) {
        self.pending.clear();
        self.buf = VecDeque::new();
    }
}

fn frames_of(d: Duration, rate: u32) -> u64 {
    (d.as_nanos() * u128::from(rate) / 1_000_000_000) as u64
}

fn ms_of(frames: u64, rate: u32) -> u64 {
    frames * 1000 / u64::from(rate.max(1))
}

/// A paused stretch of the timeline: `[start, end)`, open while paused.
#[derive(Debug, Clone, Copy)]
struct Skip {
    start: u64,
    end: Option<u64>,
}

/// The recorder of one call (see the module docs).
pub struct CallRecorder<S: FrameSink = WavRecording> {
    config: RecorderConfig,
    rate: u32,
    channels: u16,
    sink: S,
    sides: [SideState; 2],
    start: Option<Instant>,
    /// Timeline position of the next frame to emit.
    written: u64,
    jitter_frames: u64,
    max_wait_frames: u64,
    min_chunk: u64,
    paused: bool,
    skips: Vec<Skip>,
    /// Total length of closed skips.
    skipped_closed: u64,
    frames_written: u64,
    frames_skipped: u64,
    last_flush: Instant,
    dirty: bool,
    failure: Option<String>,
    finished: bool,
    events: VecDeque<RecorderEvent>,
    arrivals: u64,
    scratch_a: Vec<i16>,
    scratch_b: Vec<i16>,
    out: Vec<i16>,
}

impl<S: FrameSink> fmt::Debug for CallRecorder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallRecorder")
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("state", &self.state())
            .field("frames_written", &self.frames_written)
            .finish_non_exhaustive()
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

impl CallRecorder<WavRecording> {
    /// Creates the WAV file at the rate and layout the call needs (see [`file_rate`]) and
    /// a recorder writing it.
    pub fn create_wav(
        path: impl AsRef<Path>,
        options: &WavOptions,
        config: RecorderConfig,
        a: SideCodecs,
        b: SideCodecs,
        now: Instant,
    ) -> Result<Self, RecorderError> {
        let rate = file_rate(&config, &a, &b);
        let wav = WavRecording::create_with(path, rate, config.layout.channels(), options)?;
        CallRecorder::new(config, a, b, wav, now)
    }
}

impl<S: FrameSink> CallRecorder<S> {
    /// A recorder for a call just answered. `a` and `b` are the payload types each side
    /// sends; `sink` must take [`file_rate`] Hz × [`Layout::channels`] frames.
    pub fn new(
        config: RecorderConfig,
        a: SideCodecs,
        b: SideCodecs,
        sink: S,
        now: Instant,
    ) -> Result<Self, RecorderError> {
        let rate = file_rate(&config, &a, &b);
        let channels = config.layout.channels();
        if let Some((sink_rate, sink_channels)) = sink.format()
            && (sink_rate, sink_channels) != (rate, channels)
        {
            return Err(RecorderError::FormatMismatch {
                rate,
                channels,
                sink_rate,
                sink_channels,
            });
        }
        Ok(CallRecorder {
            jitter_frames: frames_of(config.jitter, rate),
            max_wait_frames: frames_of(config.max_wait.max(config.jitter), rate),
            min_chunk: u64::from(rate / 50).max(1),
            config,
            rate,
            channels,
            sink,
            sides: [SideState::new(a, rate), SideState::new(b, rate)],
            start: None,
            written: 0,
            paused: false,
            skips: Vec::new(),
            skipped_closed: 0,
            frames_written: 0,
            frames_skipped: 0,
            last_flush: now,
            dirty: false,
            failure: None,
            finished: false,
            events: VecDeque::new(),
            arrivals: 0,
            scratch_a: Vec::new(),
            scratch_b: Vec::new(),
            out: Vec::new(),
        })
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    pub fn config(&self) -> &RecorderConfig {
        &self.config
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    pub fn into_sink(self) -> S {
        self.sink
    }

    /// When the first media arrived.
    pub fn started_at(&self) -> Option<Instant> {
        self.start
    }

    /// Frames in the file so far.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    pub fn duration_ms(&self) -> u64 {
        ms_of(self.frames_written, self.rate)
    }

    pub fn stats(&self) -> RecorderStats {
        RecorderStats {
            a: self.sides[0].stats,
            b: self.sides[1].stats,
            frames_written: self.frames_written,
            frames_paused: self.frames_skipped,
        }
    }

    pub fn state(&self) -> RecorderState {
        if self.failure.is_some() {
            RecorderState::Failed
        } else if self.finished {
            RecorderState::Finished
        } else if self.paused {
            RecorderState::Paused
        } else if self.start.is_none() {
            RecorderState::Waiting
        } else {
            RecorderState::Recording
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The error that ended the recording, if one did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn active(&self) -> bool {
        !self.finished && self.failure.is_none()
    }

    /// Timeline position of `now`.
    fn wall_pos(&self, now: Instant) -> u64 {
        self.start.map_or(0, |t0| {
            frames_of(now.saturating_duration_since(t0), self.rate)
        })
    }

    /// New payload types for a side (after a re-INVITE). The file rate stays; other
    /// rates are converted.
    pub fn set_codecs(&mut self, side: Side, codecs: SideCodecs) {
        let s = &mut self.sides[side_index(side)];
        s.codecs = codecs;
        s.decoders.clear();
    }

    /// One datagram from `side` (A: the caller speaking, B: the callee), as received.
    pub fn handle_packet(&mut self, now: Instant, side: Side, packet: &[u8]) {
        if !self.active() {
            return;
        }
        let i = side_index(side);
        self.sides[i].stats.packets += 1;
        if looks_like_rtcp(packet) {
            self.sides[i].stats.malformed += 1;
            return;
        }
        let Some(h) = peek_rtp(packet) else {
            self.sides[i].stats.malformed += 1;
            return;
        };
        let kind = self.sides[i].codecs.classify(h.payload_type);
        if kind == PayloadKind::Unknown {
            self.sides[i].stats.unknown_payload += 1;
            return;
        }
        if self.start.is_none() {
            self.begin(now);
        }
        match kind {
            PayloadKind::TelephoneEvent => self.sides[i].stats.telephone_events += 1,
            PayloadKind::ComfortNoise => self.sides[i].stats.comfort_noise += 1,
            PayloadKind::Unknown => {}
            PayloadKind::Audio(codec) => {
                let payload = &packet[h.payload_offset..h.payload_offset + h.payload_len];
                if payload.is_empty() {
                    self.sides[i].stats.empty += 1;
                } else {
                    let wall = self.wall_pos(now);
                    self.arrivals += 1;
                    let (written, jitter, rate, arrival) =
                        (self.written, self.jitter_frames, self.rate, self.arrivals);
                    self.sides[i].place(&h, codec, payload, wall, written, jitter, rate, arrival);
                }
            }
        }
        let target = self.horizon(now);
        if target >= self.written + self.min_chunk {
            self.emit_to(target);
        }
        self.maybe_flush(now);
    }

    /// When to call [`CallRecorder::handle_timeout`]: once per flush interval while the
    /// recording runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.active() && self.start.is_some())
            .then(|| self.last_flush + self.config.flush_interval)
    }

    /// Brings the header up to date when due, and writes a stretch with no packets (as
    /// silence) once it is `jitter + max_wait` behind the wall clock.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.active() || self.start.is_none() {
            return;
        }
        // Only as far as no packet still on its way to the recorder (stamped before
        // `now`, queued behind this timer) could land.
        let target = self
            .wall_pos(now)
            .saturating_sub(self.jitter_frames + self.max_wait_frames);
        if target > self.written {
            self.emit_to(target);
        }
        self.maybe_flush(now);
    }

    /// Stops writing until [`CallRecorder::resume`]. Returns false (and does nothing)
    /// when already paused, finished or failed.
    pub fn pause(&mut self, now: Instant, source: ControlSource, actor: &str) -> bool {
        if !self.active() || self.paused {
            return false;
        }
        self.paused = true;
        // Never before what was written or an earlier pause's end (keeps skips sorted).
        let last_end = self.skips.last().and_then(|s| s.end).unwrap_or(0);
        let pos = if self.start.is_some() {
            self.wall_pos(now).max(self.written).max(last_end)
        } else {
            0
        };
        self.skips.push(Skip {
            start: pos,
            end: None,
        });
        self.events.push_back(RecorderEvent::Paused {
            offset_ms: ms_of(pos.saturating_sub(self.skipped_closed), self.rate),
            call_offset_ms: ms_of(pos, self.rate),
            source,
            actor: actor.to_owned(),
        });
        true
    }

    /// Writes again from now on. Returns false when not paused.
    pub fn resume(&mut self, now: Instant, source: ControlSource, actor: &str) -> bool {
        if !self.active() || !self.paused {
            return false;
        }
        self.paused = false;
        let wall = self.start.map(|_| self.wall_pos(now));
        let Some(skip) = self.skips.iter_mut().rev().find(|s| s.end.is_none()) else {
            return false;
        };
        let end = wall.map_or(skip.start, |w| w.max(skip.start));
        skip.end = Some(end);
        let start = skip.start;
        let file_pos = start.saturating_sub(self.skipped_closed);
        self.skipped_closed += end - start;
        self.events.push_back(RecorderEvent::Resumed {
            offset_ms: ms_of(file_pos, self.rate),
            call_offset_ms: ms_of(end, self.rate),
            paused_ms: ms_of(end - start, self.rate),
            source,
            actor: actor.to_owned(),
        });
        true
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<RecorderEvent> {
        self.events.pop_front()
    }

    /// Ends the recording: writes what the jitter buffer holds (up to the end of the last
    /// audio received, not beyond) and finalizes the sink. Further calls return the
    /// same summary.
    pub fn finish(&mut self, _now: Instant) -> RecordingSummary {
        if self.active() {
            if self.start.is_some() {
                let (written, rate) = (self.written, self.rate);
                for s in &mut self.sides {
                    s.decode_until(u64::MAX, written, rate);
                }
                let end = self
                    .sides
                    .iter()
                    .map(|s| written + s.buf.len() as u64)
                    .max()
                    .unwrap_or(written);
                self.emit_to(end);
            }
            if self.failure.is_none()
                && let Err(e) = self.sink.finalize()
            {
                self.fail(e);
            }
            self.finished = true;
        }
        self.finished = true;
        RecordingSummary {
            rate: self.rate,
            channels: self.channels,
            frames: self.frames_written,
            duration_ms: ms_of(self.frames_written, self.rate),
            paused_ms: ms_of(self.frames_skipped, self.rate),
            started_at: self.start,
            failure: self.failure.clone(),
            stats: self.stats(),
        }
    }

    fn begin(&mut self, now: Instant) {
        self.start = Some(now);
        self.last_flush = now;
        self.events.push_back(RecorderEvent::Started { at: now });
    }

    fn maybe_flush(&mut self, now: Instant) {
        if !self.active() || now < self.last_flush + self.config.flush_interval {
            return;
        }
        self.last_flush = now;
        if self.dirty {
            self.dirty = false;
            if let Err(e) = self.sink.flush() {
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, e: WavError) {
        if self.failure.is_some() {
            return;
        }
        let error = e.to_string();
        tracing::warn!(%error, "recording failed");
        self.failure = Some(error.clone());
        self.events.push_back(RecorderEvent::Failed {
            offset_ms: ms_of(self.frames_written, self.rate),
            error,
        });
        self.sink.abandon();
        for s in &mut self.sides {
            s.clear();
        }
    }

    /// How far the timeline can be written at `now`: `jitter` behind the wall clock, and
    /// `jitter` behind the newest packet of a side that lags, but never more than
    /// `max_wait` behind the wall clock.
    fn horizon(&self, now: Instant) -> u64 {
        let wall = self.wall_pos(now);
        let mut t = wall;
        for s in &self.sides {
            if let Some(end) = s.recv_end {
                t = t.min(end);
            }
        }
        t.saturating_sub(self.jitter_frames)
            .max(wall.saturating_sub(self.max_wait_frames))
    }

    /// The stretch from `pos` (before `target`) that is uniformly paused or not.
    fn segment(&self, pos: u64, target: u64) -> (u64, bool) {
        for s in &self.skips {
            if s.end.is_some_and(|e| e <= pos) {
                continue;
            }
            if s.start <= pos {
                return (s.end.unwrap_or(u64::MAX).min(target), true);
            }
            return (s.start.min(target), false);
        }
        (target, false)
    }

    /// Decodes and writes the timeline up to `target`.
    fn emit_to(&mut self, target: u64) {
        if target <= self.written || !self.active() {
            return;
        }
        let (written, rate) = (self.written, self.rate);
        for s in &mut self.sides {
            s.decode_until(target, written, rate);
        }
        let max_write = frames_of(MAX_WRITE, rate).max(1);
        let mut pos = self.written;
        while pos < target {
            let (end, paused) = self.segment(pos, target);
            let end = end.min(pos + max_write).max(pos + 1);
            let n = (end - pos) as usize;
            if paused {
                for s in &mut self.sides {
                    s.discard(n);
                }
                self.frames_skipped += n as u64;
            } else {
                self.sides[0].take(n, &mut self.scratch_a);
                self.sides[1].take(n, &mut self.scratch_b);
                self.out.clear();
                match self.config.layout {
                    Layout::Stereo => {
                        self.out.reserve(2 * n);
                        for (&a, &b) in self.scratch_a.iter().zip(&self.scratch_b) {
                            self.out.push(a);
                            self.out.push(b);
                        }
                    }
                    Layout::Mono => self.out.extend(
                        self.scratch_a
                            .iter()
                            .zip(&self.scratch_b)
                            .map(|(&a, &b)| a.saturating_add(b)),
                    ),
                }
                if let Err(e) = self.sink.write_frames(&self.out) {
                    self.written = end;
                    self.fail(e);
                    return;
                }
                self.frames_written += n as u64;
                self.dirty = true;
            }
            pos = end;
        }
        self.written = target;
        self.skips.retain(|s| s.end.is_none_or(|e| e > target));
    }
}
