//! CallRecorder in simulated time: RTP made with hark-media's encoders, checked by tone
//! content (Goertzel), sample-exact comparisons and WAV files read back with hound.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hark_media::Side;
use hark_media::analysis::{dominant_frequency, read_wav, sine_wave, tone_ratio};
use hark_media::codec::{AudioCodec, Encoder};
use hark_media::packet::TelephoneEvent;
use hark_recorder::{
    CallRecorder, ControlSource, FrameSink, Layout, MemorySink, RecorderConfig, RecorderError,
    RecorderEvent, RecorderState, RecordingSummary, SideCodecs, WavError, WavOptions, WavRecording,
    repair,
};
use proptest::prelude::*;

const SLOT: Duration = Duration::from_millis(20);
/// Side B's packets arrive this long after side A's of the same slot.
const B_OFFSET: Duration = Duration::from_millis(7);
const TE_PT: u8 = 101;

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(pt | if marker { 0x80 } else { 0 });
    p.extend(seq.to_be_bytes());
    p.extend(ts.to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A phone playing a steady tone in 20 ms packets.
struct Talker {
    codec: AudioCodec,
    pt: u8,
    encoder: Encoder,
    pcm: Vec<i16>,
    frame: usize,
    ts_step: u32,
    at: usize,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

impl Talker {
    fn new(codec: AudioCodec, freq: f64, ssrc: u32) -> Self {
        let rate = codec.sample_rate();
        Talker {
            codec,
            pt: codec.static_payload_type().unwrap_or(111),
            encoder: Encoder::new(codec).unwrap(),
            // Enough tone for any test (10 s).
            pcm: sine_wave(rate, freq, 8000.0, rate as usize * 10),
            frame: rate as usize / 50,
            ts_step: codec.rtp_clock_rate() / 50,
            at: 0,
            seq: (ssrc as u16).wrapping_mul(7),
            ts: ssrc.wrapping_mul(2654435761),
            ssrc,
        }
    }

    fn codecs(&self) -> SideCodecs {
        SideCodecs::new()
            .audio(self.pt, self.codec)
            .telephone_event(TE_PT)
    }

    /// The next 20 ms packet.
    fn next(&mut self) -> Vec<u8> {
        let mut payload = Vec::new();
        let pcm = &self.pcm[self.at..self.at + self.frame];
        self.encoder.encode(pcm, &mut payload).unwrap();
        let p = rtp(self.pt, self.seq, self.ts, self.ssrc, false, &payload);
        self.advance();
        self.seq = self.seq.wrapping_add(1);
        p
    }

    /// 20 ms pass without audio being sent (timestamps go on).
    fn advance(&mut self) {
        self.at += self.frame;
        self.ts = self.ts.wrapping_add(self.ts_step);
    }

    /// An RFC 4733 packet for a digit that started at `start_ts`.
    fn dtmf(&mut self, start_ts: u32, duration: u16, end: bool, first: bool) -> Vec<u8> {
        let ev = TelephoneEvent {
            event: 10,
            end,
            volume: 10,
            duration,
        };
        let p = rtp(TE_PT, self.seq, start_ts, self.ssrc, first, &ev.to_bytes());
        self.seq = self.seq.wrapping_add(1);
        p
    }
}

/// Something that happens at a time.
#[derive(Clone)]
enum Input {
    Packet(Side, Vec<u8>),
    Pause,
    Resume,
}

type Schedule = Vec<(Duration, Input)>;

/// A steady two-way call of `slots` 20 ms packets per side; `keep(side, slot)` says
/// which packets are delivered.
fn call(
    slots: usize,
    a: &mut Talker,
    b: &mut Talker,
    keep: impl Fn(Side, usize) -> bool,
) -> Schedule {
    let mut s = Vec::new();
    for k in 0..slots {
        let t = SLOT * k as u32;
        let pa = a.next();
        if keep(Side::A, k) {
            s.push((t, Input::Packet(Side::A, pa)));
        }
        let pb = b.next();
        if keep(Side::B, k) {
            s.push((t + B_OFFSET, Input::Packet(Side::B, pb)));
        }
    }
    s
}

fn g711_pair() -> (Talker, Talker) {
    (
        Talker::new(AudioCodec::Pcmu, 440.0, 0x1111),
        Talker::new(AudioCodec::Pcmu, 660.0, 0x2222),
    )
}

struct Run {
    samples: Vec<i16>,
    channels: u16,
    rate: u32,
    events: Vec<RecorderEvent>,
    summary: RecordingSummary,
}

impl Run {
    fn channel(&self, c: usize) -> Vec<i16> {
        self.samples
            .iter()
            .skip(c)
            .step_by(usize::from(self.channels))
            .copied()
            .collect()
    }

    fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels)
    }
}

/// Drives a recorder like the PBX's task would: inputs in time order (stable), timers
/// when due, finish after the last input.
fn drive<S: FrameSink>(
    rec: &mut CallRecorder<S>,
    t0: Instant,
    schedule: &[(Duration, Input)],
) -> Vec<RecorderEvent> {
    let mut order: Vec<usize> = (0..schedule.len()).collect();
    order.sort_by_key(|&i| schedule[i].0);
    for i in order {
        let (at, input) = &schedule[i];
        let now = t0 + *at;
        while let Some(due) = rec.poll_timeout() {
            if due > now {
                break;
            }
            rec.handle_timeout(due);
        }
        match input {
            Input::Packet(side, p) => rec.handle_packet(now, *side, p),
            Input::Pause => {
                rec.pause(now, ControlSource::Message, "101");
            }
            Input::Resume => {
                rec.resume(now, ControlSource::Dtmf, "102");
            }
        }
    }
    std::iter::from_fn(|| rec.poll_event()).collect()
}

fn run_with(
    config: RecorderConfig,
    a: SideCodecs,
    b: SideCodecs,
    schedule: &[(Duration, Input)],
) -> Run {
    let t0 = Instant::now();
    let mut rec = CallRecorder::new(config, a, b, MemorySink::default(), t0).unwrap();
    let mut events = drive(&mut rec, t0, schedule);
    let end = t0 + schedule.iter().map(|(t, _)| *t).max().unwrap_or_default();
    let summary = rec.finish(end);
    events.extend(std::iter::from_fn(|| rec.poll_event()));
    let (rate, channels) = (rec.rate(), rec.channels());
    let sink = rec.into_sink();
    assert!(sink.finalized);
    Run {
        samples: sink.samples,
        channels,
        rate,
        events,
        summary,
    }
}

fn run(a: &Talker, b: &Talker, schedule: &[(Duration, Input)]) -> Run {
    run_with(RecorderConfig::default(), a.codecs(), b.codecs(), schedule)
}

fn assert_tone(samples: &[i16], rate: u32, freq: f64) {
    let m = dominant_frequency(samples, rate, &[440.0, 660.0, 1000.0]).expect("silence");
    assert_eq!(m.freq, freq, "dominant {m:?}");
    assert!(
        m.ratio > 0.9,
        "tone {freq} only {:.3} of the energy",
        m.ratio
    );
}

fn all_zero(s: &[i16]) -> bool {
    s.iter().all(|&x| x == 0)
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hark-recorder-it-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Frames of a 20 ms slot at 8 kHz.
const F: usize = 160;
/// Side B's anchor: 7 ms at 8 kHz.
const B0: usize = 56;

#[test]
fn stereo_wav_has_caller_left_and_callee_right() {
    let dir = TempDir::new("stereo");
    let path = dir.0.join("call.wav");
    let (mut a, mut b) = g711_pair();
    let schedule = call(150, &mut a, &mut b, |_, _| true);
    let t0 = Instant::now();
    let mut rec = CallRecorder::create_wav(
        &path,
        &WavOptions::default(),
        RecorderConfig::default(),
        a.codecs(),
        b.codecs(),
        t0,
    )
    .unwrap();
    assert_eq!(rec.state(), RecorderState::Waiting);
    assert_eq!(rec.poll_timeout(), None, "no timer before media");
    let events = drive(&mut rec, t0, &schedule);
    assert_eq!(events[0], RecorderEvent::Started { at: t0 });
    assert_eq!(rec.state(), RecorderState::Recording);
    assert!(
        rec.sink().flushed_frames() > 0,
        "header brought up to date during the call"
    );
    let summary = rec.finish(t0 + Duration::from_secs(3));
    assert_eq!(summary.failure, None);
    assert_eq!((summary.rate, summary.channels), (8000, 2));
    // First packet at 0, B's last packet at 2.987 s, lasting 20 ms.
    assert_eq!(summary.frames as usize, B0 + 150 * F);
    assert_eq!(summary.duration_ms, 3007);
    assert_eq!(summary.stats.a.audio_packets, 150);
    assert_eq!(summary.stats.b.audio_packets, 150);

    let wav = read_wav(&path).unwrap();
    assert_eq!((wav.rate, wav.channels), (8000, 2));
    assert_eq!(wav.samples.len(), (B0 + 150 * F) * 2);
    let (left, right) = (wav.channel(0), wav.channel(1));
    assert_tone(&left[..150 * F], 8000, 440.0);
    assert_tone(&right[B0..], 8000, 660.0);
    assert!(
        tone_ratio(&left[..150 * F], 8000, 660.0) < 0.01,
        "no crosstalk"
    );
    assert!(
        all_zero(&right[..B0]),
        "callee silent before its first packet"
    );
    assert!(
        all_zero(&left[150 * F..]),
        "caller silent after its last packet"
    );
}

#[test]
fn packet_loss_keeps_wall_clock_length() {
    let (mut a, mut b) = g711_pair();
    let base = {
        let s = call(150, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };
    let (mut a, mut b) = g711_pair();
    let lossy = {
        let s = call(150, &mut a, &mut b, |s, k| {
            !(s == Side::A && (70..80).contains(&k))
        });
        run(&a, &b, &s)
    };
    assert_eq!(
        lossy.frames(),
        base.frames(),
        "duration equals the wall clock"
    );
    let (bl, ll) = (base.channel(0), lossy.channel(0));
    assert!(all_zero(&ll[70 * F..80 * F]), "lost 200 ms are silence");
    assert_eq!(ll[..70 * F], bl[..70 * F]);
    assert_eq!(ll[80 * F..], bl[80 * F..]);
    assert_eq!(lossy.channel(1), base.channel(1));
}

#[test]
fn silence_from_both_sides_is_wall_clock_silence() {
    let (mut a, mut b) = g711_pair();
    let base = {
        let s = call(250, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };
    let (mut a, mut b) = g711_pair();
    // Nobody sends from 1 s to 3 s.
    let gap = {
        let s = call(250, &mut a, &mut b, |_, k| !(50..150).contains(&k));
        run(&a, &b, &s)
    };
    assert_eq!(gap.frames(), base.frames());
    assert_eq!(gap.frames(), B0 + 250 * F);
    let l = gap.channel(0);
    let r = gap.channel(1);
    assert!(all_zero(&l[50 * F..150 * F]));
    assert!(all_zero(&r[B0 + 50 * F..B0 + 150 * F]));
    assert_tone(&l[150 * F..250 * F], 8000, 440.0);
    assert_tone(&r[B0 + 150 * F..], 8000, 660.0);
}

#[test]
fn reordered_packets_give_identical_output() {
    for codec in [AudioCodec::Pcmu, AudioCodec::G722] {
        let mk = || {
            (
                Talker::new(codec, 440.0, 0x1111),
                Talker::new(AudioCodec::Pcmu, 660.0, 0x2222),
            )
        };
        let (mut a, mut b) = mk();
        let schedule = call(150, &mut a, &mut b, |_, _| true);
        let base = run(&a, &b, &schedule);
        // Swap the arrival times of a few neighbouring pairs (and one triple) per side.
        let mut reordered = schedule.clone();
        let slot_of = |side: Side, k: usize| 2 * k + usize::from(side == Side::B);
        for (side, k) in [
            (Side::A, 20),
            (Side::A, 61),
            (Side::A, 100),
            (Side::B, 33),
            (Side::B, 90),
        ] {
            let (i, j) = (slot_of(side, k), slot_of(side, k + 1));
            let (ti, tj) = (reordered[i].0, reordered[j].0);
            reordered[i].0 = tj;
            reordered[j].0 = ti;
        }
        // Packet 120 of A arrives 60 ms late, after 121..=123.
        reordered[slot_of(Side::A, 120)].0 += Duration::from_millis(60);
        let out = run(&a, &b, &reordered);
        assert_eq!(out.summary.stats.a.late, 0);
        assert_eq!(out.samples, base.samples, "{codec:?}");
    }
}

/// A tiny deterministic generator for jitter.
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

#[test]
fn network_jitter_within_the_window_gives_identical_output() {
    let (mut a, mut b) = g711_pair();
    let schedule = call(200, &mut a, &mut b, |_, _| true);
    let base = run(&a, &b, &schedule);
    let mut rng = 7u64;
    let jittered: Schedule = schedule
        .iter()
        .enumerate()
        .map(|(i, (t, input))| {
            // The first packet of each side on time (it anchors); others up to 50 ms late.
            let d = if i < 2 { 0 } else { lcg(&mut rng) % 50 };
            (*t + Duration::from_millis(d), input.clone())
        })
        .collect();
    let out = run(&a, &b, &jittered);
    assert_eq!(out.summary.stats.a.late + out.summary.stats.b.late, 0);
    assert_eq!(out.samples, base.samples);
}

#[test]
fn a_packet_later_than_the_window_is_dropped_as_late() {
    let (mut a, mut b) = g711_pair();
    let mut schedule = call(150, &mut a, &mut b, |_, _| true);
    let base = run(&a, &b, &schedule);
    // A's packet 60 arrives 300 ms late: its place was written by then.
    schedule[120].0 += Duration::from_millis(300);
    let out = run(&a, &b, &schedule);
    assert_eq!(out.summary.stats.a.late, 1);
    assert_eq!(out.summary.stats.a.resyncs, 0);
    assert_eq!(out.frames(), base.frames());
    let (l, bl) = (out.channel(0), base.channel(0));
    assert!(all_zero(&l[60 * F..61 * F]));
    assert_eq!(l[61 * F..], bl[61 * F..]);
}

#[test]
fn a_stalled_flow_arriving_in_a_burst_is_kept_in_place() {
    let (mut a, mut b) = g711_pair();
    let schedule = call(150, &mut a, &mut b, |_, _| true);
    let base = run(&a, &b, &schedule);
    // A's packets 60..=69 are held up for up to 200 ms (an overloaded host, a Wi-Fi
    // stall) and then arrive at once, in order, with packet 70; likewise B's 100..=124
    // (a 500 ms stall) with a little disorder inside the burst.
    let mut stalled = schedule.clone();
    let slot_of = |side: Side, k: usize| 2 * k + usize::from(side == Side::B);
    for k in 60..70 {
        stalled[slot_of(Side::A, k)].0 = SLOT * 70;
    }
    let burst = SLOT * 125 + B_OFFSET;
    for k in 100..125 {
        stalled[slot_of(Side::B, k)].0 = burst;
    }
    stalled.swap(slot_of(Side::B, 110), slot_of(Side::B, 112));
    let out = run(&a, &b, &stalled);
    let (sa, sb) = (out.summary.stats.a, out.summary.stats.b);
    assert_eq!((sa.late, sa.resyncs, sb.late, sb.resyncs), (0, 0, 0, 0));
    assert_eq!(out.samples, base.samples);

    // Beyond `max_wait` the side is written as silence meanwhile, and the late burst
    // does not shift it: what still fits lands in its place.
    let config = RecorderConfig {
        max_wait: Duration::from_millis(300),
        ..RecorderConfig::default()
    };
    let mut stalled = schedule.clone();
    for k in 60..90 {
        stalled[slot_of(Side::A, k)].0 = SLOT * 90;
    }
    let out = run_with(config, a.codecs(), b.codecs(), &stalled);
    assert_eq!(out.frames(), base.frames());
    let (l, bl) = (out.channel(0), base.channel(0));
    let lost = out.summary.stats.a.late as usize;
    assert!((10..=16).contains(&lost), "{lost} late");
    assert!(all_zero(&l[60 * F..(60 + lost) * F]));
    assert_eq!(l[(60 + lost) * F..], bl[(60 + lost) * F..]);
    assert_eq!(out.channel(1), base.channel(1));
}

#[test]
fn ssrc_change_continues_the_side() {
    let (mut a, mut b) = g711_pair();
    let base = {
        let s = call(150, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };
    let (mut a, mut b) = g711_pair();
    let mut schedule = Vec::new();
    for k in 0..150 {
        if k == 75 {
            // A new source (a transfer, a phone restarting its stream): other SSRC,
            // sequence numbers and timestamps.
            a.ssrc = 0xdead_beef;
            a.seq = 40_000;
            a.ts = 123;
        }
        let t = SLOT * k as u32;
        schedule.push((t, Input::Packet(Side::A, a.next())));
        schedule.push((t + B_OFFSET, Input::Packet(Side::B, b.next())));
    }
    let out = run(&a, &b, &schedule);
    assert_eq!(out.summary.stats.a.ssrc_changes, 1);
    assert_eq!(out.samples, base.samples);

    // A straggler of the old SSRC arriving after the switch still lands in its place.
    let (mut a, mut b) = g711_pair();
    let mut schedule = Vec::new();
    let mut straggler = None;
    for k in 0..150 {
        if k == 75 {
            a.ssrc = 0xdead_beef;
            a.ts = 999;
        }
        let t = SLOT * k as u32;
        let p = a.next();
        if k == 74 {
            straggler = Some(p);
        } else {
            schedule.push((t, Input::Packet(Side::A, p)));
        }
        if k == 75 {
            schedule.push((
                t + Duration::from_millis(1),
                Input::Packet(Side::A, straggler.take().unwrap()),
            ));
        }
        schedule.push((t + B_OFFSET, Input::Packet(Side::B, b.next())));
    }
    let out = run(&a, &b, &schedule);
    assert_eq!(out.summary.stats.a.late, 0);
    assert_eq!(out.samples, base.samples);
}

#[test]
fn timestamp_wrap_and_jumps_keep_alignment() {
    let (mut a, mut b) = g711_pair();
    let base = {
        let s = call(150, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };

    // Timestamps wrap through 2^32 mid-call.
    let (mut a, mut b) = g711_pair();
    a.ts = u32::MAX - 160 * 40 + 1;
    let out = {
        let s = call(150, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };
    assert_eq!(out.summary.stats.a.resyncs, 0);
    assert_eq!(out.samples, base.samples);

    // The sender's timestamps jump 10 s ahead at slot 75 (same SSRC): re-anchored
    // instead of 10 s of silence.
    let (mut a, mut b) = g711_pair();
    let mut schedule = Vec::new();
    for k in 0..150 {
        if k == 75 {
            a.ts = a.ts.wrapping_add(80_000);
        }
        let t = SLOT * k as u32;
        schedule.push((t, Input::Packet(Side::A, a.next())));
        schedule.push((t + B_OFFSET, Input::Packet(Side::B, b.next())));
    }
    let out = run(&a, &b, &schedule);
    assert_eq!(out.summary.stats.a.resyncs, 1);
    assert_eq!(out.samples, base.samples);

    // Timestamps that go on across 2 s without packets (some phones on hold): the
    // stream is caught up with the wall clock, not written over the past.
    let (mut a, mut b) = g711_pair();
    let mut schedule = Vec::new();
    for k in 0..250 {
        let t = SLOT * k as u32;
        if !(50..150).contains(&k) {
            // A's packets carry consecutive timestamps, as if no time had passed.
            schedule.push((t, Input::Packet(Side::A, a.next())));
        }
        schedule.push((t + B_OFFSET, Input::Packet(Side::B, b.next())));
    }
    let out = run(&a, &b, &schedule);
    assert_eq!(out.summary.stats.a.resyncs, 1);
    // Late for 100 ms (5 packets), then caught up with the wall clock.
    assert_eq!(out.summary.stats.a.late, 5);
    assert_eq!(out.frames(), B0 + 250 * F);
    let l = out.channel(0);
    let first = l[50 * F..].iter().position(|&x| x != 0).unwrap() + 50 * F;
    assert!(
        (155 * F - 320..=155 * F).contains(&first),
        "resumed at {first}"
    );
    assert_tone(&l[first..first + 50 * F], 8000, 440.0);
}

#[test]
fn telephone_events_are_not_in_the_audio() {
    let (mut a, mut b) = g711_pair();
    let base = {
        let s = call(150, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };
    let (mut a, mut b) = g711_pair();
    let mut schedule = Vec::new();
    let mut start_ts = 0;
    for k in 0..150 {
        let t = SLOT * k as u32;
        if (50..75).contains(&k) {
            // A sends a digit instead of audio for 500 ms.
            if k == 50 {
                start_ts = a.ts;
            }
            let dur = (k - 49) as u16 * 160;
            let p = a.dtmf(start_ts, dur, k >= 72, k == 50);
            a.advance();
            schedule.push((t, Input::Packet(Side::A, p)));
        } else {
            schedule.push((t, Input::Packet(Side::A, a.next())));
        }
        schedule.push((t + B_OFFSET, Input::Packet(Side::B, b.next())));
    }
    // A second stream of events under another SSRC (some phones do that) changes nothing.
    let mut other = Talker::new(AudioCodec::Pcmu, 1000.0, 0x7777);
    for k in 100..110 {
        let p = other.dtmf(5000, (k - 99) as u16 * 160, false, k == 100);
        schedule.push((
            SLOT * k as u32 + Duration::from_millis(3),
            Input::Packet(Side::A, p),
        ));
    }
    let out = run(&a, &b, &schedule);
    assert_eq!(out.summary.stats.a.telephone_events, 35);
    assert_eq!(out.summary.stats.a.ssrc_changes, 0);
    assert_eq!(out.frames(), base.frames());
    let (l, bl) = (out.channel(0), base.channel(0));
    assert!(
        all_zero(&l[50 * F..75 * F]),
        "no event payload decoded as audio"
    );
    assert_eq!(l[..50 * F], bl[..50 * F]);
    assert_eq!(l[75 * F..], bl[75 * F..]);
    assert_eq!(out.channel(1), base.channel(1));
}

#[test]
fn pause_and_resume_cut_the_paused_time() {
    let (mut a, mut b) = g711_pair();
    let base = {
        let s = call(300, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };
    let (mut a, mut b) = g711_pair();
    let mut schedule = call(300, &mut a, &mut b, |_, _| true);
    schedule.push((Duration::from_secs(2), Input::Pause));
    schedule.push((Duration::from_millis(2500), Input::Pause)); // a no-op
    schedule.push((Duration::from_secs(4), Input::Resume));
    let out = run(&a, &b, &schedule);
    assert_eq!(base.frames(), B0 + 300 * F);
    let expected = base.frames() - 2 * 8000;
    assert!(
        out.frames().abs_diff(expected) <= 160,
        "{} vs {expected}",
        out.frames()
    );
    assert_eq!(out.summary.paused_ms, 2000);
    assert_eq!(out.summary.duration_ms + 2000, base.summary.duration_ms);
    let marks: Vec<_> = out
        .events
        .iter()
        .filter(|e| !matches!(e, RecorderEvent::Started { .. }))
        .cloned()
        .collect();
    assert_eq!(
        marks,
        vec![
            RecorderEvent::Paused {
                offset_ms: 2000,
                call_offset_ms: 2000,
                source: ControlSource::Message,
                actor: "101".into()
            },
            RecorderEvent::Resumed {
                offset_ms: 2000,
                call_offset_ms: 4000,
                paused_ms: 2000,
                source: ControlSource::Dtmf,
                actor: "102".into()
            },
        ]
    );
    // The file is the call before 2 s followed by the call after 4 s.
    let (l, bl) = (out.channel(0), base.channel(0));
    assert_eq!(l[..16_000], bl[..16_000]);
    assert_eq!(l[16_000..], bl[32_000..]);
    assert_eq!(out.channel(1)[16_000..], base.channel(1)[32_000..]);
}

#[test]
fn pause_before_media_and_pause_to_the_end() {
    let (mut a, mut b) = g711_pair();
    let t0 = Instant::now();
    let mut rec = CallRecorder::new(
        RecorderConfig::default(),
        a.codecs(),
        b.codecs(),
        MemorySink::default(),
        t0,
    )
    .unwrap();
    assert!(rec.pause(t0, ControlSource::Policy, "policy"));
    assert!(!rec.pause(t0, ControlSource::Policy, "policy"));
    assert_eq!(rec.state(), RecorderState::Paused);
    let schedule = call(100, &mut a, &mut b, |_, _| true);
    let mut schedule2 = schedule.clone();
    schedule2.push((Duration::from_secs(1), Input::Resume));
    let ev = drive(&mut rec, t0, &schedule2);
    assert!(matches!(ev[0], RecorderEvent::Paused { offset_ms: 0, .. }));
    let s = rec.finish(t0 + Duration::from_secs(2));
    assert_eq!(s.paused_ms, 1000);
    assert_eq!(s.frames as usize, B0 + 100 * F - 8000);

    // Paused until the end: nothing after the pause is written.
    let (mut a, mut b) = g711_pair();
    let mut schedule = call(100, &mut a, &mut b, |_, _| true);
    schedule.push((Duration::from_millis(500), Input::Pause));
    let out = run(&a, &b, &schedule);
    assert_eq!(out.frames(), 4000);
}

#[test]
fn mono_mix_holds_both_parties() {
    let (mut a, mut b) = g711_pair();
    let schedule = call(150, &mut a, &mut b, |_, _| true);
    let config = RecorderConfig {
        layout: Layout::Mono,
        ..RecorderConfig::default()
    };
    let out = run_with(config, a.codecs(), b.codecs(), &schedule);
    assert_eq!(out.channels, 1);
    assert_eq!(out.frames(), B0 + 150 * F);
    let r440 = tone_ratio(&out.samples, 8000, 440.0);
    let r660 = tone_ratio(&out.samples, 8000, 660.0);
    assert!(r440 > 0.4 && r660 > 0.4, "440: {r440:.3}, 660: {r660:.3}");
}

#[test]
fn g722_caller_and_g711_callee_record_at_16k() {
    let mut a = Talker::new(AudioCodec::G722, 440.0, 0x1111);
    let mut b = Talker::new(AudioCodec::Pcma, 660.0, 0x2222);
    let out = {
        let s = call(150, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };
    assert_eq!(out.rate, 16_000);
    assert_eq!(out.frames(), 2 * (B0 + 150 * F));
    let (l, r) = (out.channel(0), out.channel(1));
    assert_tone(&l[..300 * F], 16_000, 440.0);
    assert_tone(&r[2 * B0..], 16_000, 660.0);
    assert_eq!(out.summary.stats.a.decode_errors, 0);
}

#[test]
fn opus_caller_and_g711_callee_record_at_48k() {
    let mut a = Talker::new(AudioCodec::Opus, 440.0, 0x1111);
    let mut b = Talker::new(AudioCodec::Pcmu, 660.0, 0x2222);
    let out = {
        let s = call(150, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };
    assert_eq!(out.rate, 48_000);
    assert_eq!(out.frames(), 6 * (B0 + 150 * F));
    let (l, r) = (out.channel(0), out.channel(1));
    // Skip Opus's start-up (encoder look-ahead and pre-skip).
    assert_tone(&l[4800..900 * F], 48_000, 440.0);
    assert_tone(&r[6 * B0..], 48_000, 660.0);
    assert_eq!(out.summary.stats.a.decode_errors, 0);

    // Both sides Opus.
    let mut a = Talker::new(AudioCodec::Opus, 440.0, 0x1111);
    let mut b = Talker::new(AudioCodec::Opus, 660.0, 0x2222);
    let out = {
        let s = call(100, &mut a, &mut b, |_, _| true);
        run(&a, &b, &s)
    };
    assert_eq!(out.rate, 48_000);
    assert_tone(&out.channel(0)[4800..], 48_000, 440.0);
    assert_tone(&out.channel(1)[4800 + 6 * B0..], 48_000, 660.0);
}

#[test]
fn callee_joining_late_is_silent_until_then() {
    let (mut a, mut b) = g711_pair();
    let out = {
        let s = call(150, &mut a, &mut b, |s, k| s == Side::A || k >= 50);
        run(&a, &b, &s)
    };
    let r = out.channel(1);
    assert!(all_zero(&r[..B0 + 50 * F]));
    assert_tone(&r[B0 + 50 * F..], 8000, 660.0);
    assert_eq!(out.frames(), B0 + 150 * F);
}

#[test]
fn unknown_payloads_rtcp_and_garbage_are_ignored() {
    let (mut a, mut b) = g711_pair();
    let mut schedule = call(100, &mut a, &mut b, |_, _| true);
    let base = run(&a, &b, &schedule);
    let t = Duration::from_millis(501);
    schedule.push((
        t,
        Input::Packet(Side::A, rtp(97, 1, 1, 0x1111, false, &[1, 2, 3])),
    ));
    schedule.push((t, Input::Packet(Side::A, vec![0x81, 200, 0, 6, 0, 0, 0, 1])));
    schedule.push((t, Input::Packet(Side::B, vec![1, 2, 3])));
    schedule.push((
        t,
        Input::Packet(Side::B, rtp(13, 9, 9, 0x2222, false, &[40])),
    ));
    schedule.push((t, Input::Packet(Side::B, rtp(0, 9, 9, 0x2222, false, &[]))));
    let out = run(&a, &b, &schedule);
    assert_eq!(out.samples, base.samples);
    let s = out.summary.stats;
    assert_eq!((s.a.unknown_payload, s.a.malformed), (1, 1));
    assert_eq!((s.b.malformed, s.b.comfort_noise, s.b.empty), (1, 1, 1));
}

/// Fails every write after `budget` samples, like a disk filling up.
struct FillingDisk {
    inner: MemorySink,
    budget: usize,
    abandoned: bool,
}

impl FrameSink for FillingDisk {
    fn write_frames(&mut self, interleaved: &[i16]) -> Result<(), WavError> {
        if self.inner.samples.len() + interleaved.len() > self.budget {
            return Err(WavError::DiskFull(io::Error::from(
                io::ErrorKind::StorageFull,
            )));
        }
        self.inner.write_frames(interleaved)
    }

    fn flush(&mut self) -> Result<(), WavError> {
        self.inner.flush()
    }

    fn finalize(&mut self) -> Result<(), WavError> {
        self.inner.finalize()
    }

    fn abandon(&mut self) {
        self.abandoned = true;
    }
}

#[test]
fn a_full_disk_fails_the_recording_and_the_call_goes_on() {
    let (mut a, mut b) = g711_pair();
    let schedule = call(150, &mut a, &mut b, |_, _| true);
    let t0 = Instant::now();
    let sink = FillingDisk {
        inner: MemorySink::default(),
        budget: 2 * 8000,
        abandoned: false,
    };
    let mut rec =
        CallRecorder::new(RecorderConfig::default(), a.codecs(), b.codecs(), sink, t0).unwrap();
    let events = drive(&mut rec, t0, &schedule);
    assert_eq!(rec.state(), RecorderState::Failed);
    let failed: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, RecorderEvent::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    let RecorderEvent::Failed { offset_ms, error } = failed[0] else {
        unreachable!()
    };
    assert!(*offset_ms <= 1000 && *offset_ms > 900, "{offset_ms}");
    assert!(error.contains("disk full"), "{error}");
    assert!(rec.sink().abandoned);
    assert_eq!(rec.poll_timeout(), None);
    assert!(!rec.pause(t0 + Duration::from_secs(3), ControlSource::Message, "x"));
    // More packets are ignored without a fuss.
    rec.handle_packet(t0 + Duration::from_secs(4), Side::A, &a.next());
    let s = rec.finish(t0 + Duration::from_secs(4));
    assert!(s.failure.unwrap().contains("disk full"));
    assert!(!rec.into_sink().inner.finalized);
}

#[test]
fn header_is_flushed_every_second_and_a_crash_is_recoverable() {
    let dir = TempDir::new("crash");
    let path = dir.0.join("live.wav");
    let (mut a, mut b) = g711_pair();
    let schedule = call(250, &mut a, &mut b, |_, _| true);
    let t0 = Instant::now();
    let mut rec = CallRecorder::create_wav(
        &path,
        &WavOptions::default(),
        RecorderConfig::default(),
        a.codecs(),
        b.codecs(),
        t0,
    )
    .unwrap();
    // Drive 3.5 s of the 5 s call.
    let part: Schedule = schedule
        .iter()
        .filter(|(t, _)| *t < Duration::from_millis(3500))
        .cloned()
        .collect();
    drive(&mut rec, t0, &part);
    let flushed = rec.sink().flushed_frames();
    assert!(flushed >= 2 * 8000, "flushed {flushed}");
    assert!(
        rec.frames_written() - flushed < 8000 + 800,
        "header lags < 1 s"
    );
    // kill -9 now: the file as it is on disk (hound's Drop never runs).
    let crashed = dir.0.join("crashed.wav");
    std::fs::copy(&path, &crashed).unwrap();
    let before = read_wav(&crashed).unwrap();
    assert_eq!(
        before.samples.len() as u64,
        flushed * 2,
        "playable as of the last flush"
    );
    let outcome = repair(&crashed).unwrap();
    assert!(outcome.frames >= flushed);
    let after = read_wav(&crashed).unwrap();
    assert_eq!(after.samples[..before.samples.len()], before.samples[..]);
    assert_tone(&after.channel(0)[..], 8000, 440.0);
    // The real recording goes on and ends cleanly.
    drive(&mut rec, t0, &schedule[part.len()..]);
    let s = rec.finish(t0 + Duration::from_secs(5));
    assert_eq!(s.frames as usize, B0 + 250 * F);
    let full = read_wav(&path).unwrap();
    assert_eq!(full.samples[..after.samples.len()], after.samples[..]);
    assert!(!repair(&path).unwrap().changed);
}

#[test]
fn sink_format_must_match() {
    let dir = TempDir::new("fmt");
    let wav = WavRecording::create(dir.0.join("x.wav"), 16_000, 2).unwrap();
    let e = CallRecorder::new(
        RecorderConfig::default(),
        SideCodecs::single(AudioCodec::Pcmu),
        SideCodecs::single(AudioCodec::Pcma),
        wav,
        Instant::now(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            RecorderError::FormatMismatch {
                rate: 8000,
                sink_rate: 16_000,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn file_rate_follows_the_preferred_codecs() {
    use hark_recorder::file_rate;
    let c = RecorderConfig::default();
    let pcmu = SideCodecs::single(AudioCodec::Pcmu);
    let g722 = SideCodecs::single(AudioCodec::G722);
    let opus = SideCodecs::single(AudioCodec::Opus);
    assert_eq!(file_rate(&c, &pcmu, &pcmu), 8000);
    assert_eq!(file_rate(&c, &pcmu, &g722), 16_000);
    assert_eq!(file_rate(&c, &opus, &g722), 48_000);
    assert_eq!(file_rate(&c, &SideCodecs::new(), &SideCodecs::new()), 8000);
    let forced = RecorderConfig {
        file_rate: Some(16_000),
        ..RecorderConfig::default()
    };
    assert_eq!(file_rate(&forced, &opus, &opus), 16_000);
}

#[test]
fn opus_recorded_at_a_forced_lower_rate() {
    let mut a = Talker::new(AudioCodec::Opus, 440.0, 0x1111);
    let mut b = Talker::new(AudioCodec::G722, 660.0, 0x2222);
    let schedule = call(100, &mut a, &mut b, |_, _| true);
    let config = RecorderConfig {
        file_rate: Some(16_000),
        ..RecorderConfig::default()
    };
    let out = run_with(config, a.codecs(), b.codecs(), &schedule);
    assert_eq!(out.rate, 16_000);
    assert_eq!(out.frames(), 2 * (B0 + 100 * F));
    assert_tone(&out.channel(0)[1600..], 16_000, 440.0);
    assert_tone(&out.channel(1)[1600..], 16_000, 660.0);
}

#[test]
fn sdp_formats_map_to_side_codecs() {
    use hark_media::sdp::PayloadFormat;
    let f = |pt, name: &str, rate, ch| PayloadFormat {
        pt,
        name: name.into(),
        clock_rate: rate,
        channels: ch,
        fmtp: None,
    };
    let codecs = SideCodecs::from_formats(&[
        f(111, "opus", 48_000, 2),
        f(0, "PCMU", 8000, 1),
        f(101, "telephone-event", 48_000, 1),
        f(13, "CN", 8000, 1),
    ]);
    assert_eq!(codecs.primary(), Some(AudioCodec::Opus));
    assert_eq!(
        codecs,
        SideCodecs::new()
            .audio(111, AudioCodec::Opus)
            .audio(0, AudioCodec::Pcmu)
            .telephone_event(101)
            .comfort_noise(13)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_datagrams_never_panic(
        packets in proptest::collection::vec(
            (any::<bool>(), 0u64..5_000, proptest::collection::vec(any::<u8>(), 0..80)),
            0..60,
        )
    ) {
        let t0 = Instant::now();
        let mut rec = CallRecorder::new(
            RecorderConfig::default(),
            SideCodecs::single(AudioCodec::Opus).telephone_event(101),
            SideCodecs::single(AudioCodec::G722),
            MemorySink::default(),
            t0,
        ).unwrap();
        let mut ms = 0;
        for (side, dt, bytes) in packets {
            ms += dt;
            let now = t0 + Duration::from_millis(ms);
            let side = if side { Side::A } else { Side::B };
            rec.handle_packet(now, side, &bytes);
            rec.handle_timeout(now);
        }
        let s = rec.finish(t0 + Duration::from_millis(ms));
        prop_assert!(s.failure.is_none());
    }

    #[test]
    fn arbitrary_rtp_headers_never_panic(
        packets in proptest::collection::vec(
            (any::<bool>(), 0u64..300, prop_oneof![Just(0u8), Just(8u8), Just(9u8), Just(101u8), Just(111u8), any::<u8>()],
             any::<u16>(), any::<u32>(), prop_oneof![Just(1u32), Just(2u32), any::<u32>()],
             proptest::collection::vec(any::<u8>(), 0..200)),
            0..80,
        ),
        pauses in proptest::collection::vec(0usize..80, 0..4),
    ) {
        let t0 = Instant::now();
        let mut rec = CallRecorder::new(
            RecorderConfig::default(),
            SideCodecs::single(AudioCodec::Pcmu).audio(111, AudioCodec::Opus).telephone_event(101),
            SideCodecs::single(AudioCodec::G722),
            MemorySink::default(),
            t0,
        ).unwrap();
        let mut ms = 0;
        for (i, (side, dt, pt, seq, ts, ssrc, payload)) in packets.into_iter().enumerate() {
            ms += dt;
            let now = t0 + Duration::from_millis(ms);
            let side = if side { Side::A } else { Side::B };
            rec.handle_packet(now, side, &rtp(pt & 0x7f, seq, ts, ssrc, false, &payload));
            if pauses.contains(&i) {
                if rec.is_paused() {
                    rec.resume(now, ControlSource::Info, "p");
                } else {
                    rec.pause(now, ControlSource::Info, "p");
                }
            }
        }
        let s = rec.finish(t0 + Duration::from_millis(ms));
        prop_assert!(s.failure.is_none());
        // Never more audio than the wall clock allows (plus one long packet and the window).
        prop_assert!(s.duration_ms <= ms + 5_000 + 200, "{} ms for {} ms of call", s.duration_ms, ms);
    }
}
