//! The recording path: decode + write of stereo recordings (issue 4).
//!
//! Each iteration records one whole call into a real WAV file in a temporary directory: a
//! [`CallRecorder`] made with [`CallRecorder::create_wav`] (the PBX's defaults: 80 ms
//! jitter, header flushed every second) is fed both sides' RTP, 20 ms packets on a
//! simulated clock (side B 7 ms after side A, as two phones are never in step),
//! `handle_timeout` when due, then `finish`. The audio is real encoded audio made once
//! in the setup: a steady tone per side (caller 400 Hz, callee 1 kHz) through the
//! codecs' own encoders, so the decoders do their real work.
//!
//! Codecs: G.711 A-law (8 kHz file), G.722 (16 kHz file), Opus (48 kHz file).
//!
//! Time is the bench thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, user + system, so the
//! `write`s into the page cache count; the kernel's writeback later does not), not the
//! wall clock: a shared machine's other load then inflates the figures less. Criterion's
//! throughput is in "elements" = recorded call-seconds, so its `elem/s` is call-seconds
//! of stereo recording per CPU-second: how many concurrent real-time recordings one core
//! could keep up with ("recordings per core"). A one-line summary per codec is printed
//! at the end as well.
//!
//!   cargo bench -p hark-recorder --bench recording            # ~30 s
//!   cargo bench -p hark-recorder --bench recording -- --quick # a few seconds
//!   cargo bench -p hark-recorder --bench recording -- opus    # one codec

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use hark_media::Side;
use hark_media::codec::{AudioCodec, Encoder};
use hark_recorder::{CallRecorder, RecorderConfig, SideCodecs, WavOptions};

/// Length of the recorded call.
const CALL_SECONDS: u64 = 10;
/// Packet interval.
const PTIME: Duration = Duration::from_millis(20);
/// Side B's packets arrive this long after side A's.
const B_OFFSET: Duration = Duration::from_millis(7);

/// One side's packets, in sending order.
struct Stream {
    packets: Vec<Vec<u8>>,
}

/// A whole call: both sides' RTP.
struct Call {
    codec: AudioCodec,
    a: Stream,
    b: Stream,
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(pt | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn payload_type(codec: AudioCodec) -> u8 {
    codec.static_payload_type().unwrap_or(111)
}

/// `CALL_SECONDS` of a steady `freq` Hz tone at -12 dBFS, encoded in 20 ms packets.
fn tone_stream(codec: AudioCodec, freq: f64, ssrc: u32, seq0: u16, ts0: u32) -> Stream {
    let rate = codec.sample_rate();
    let per_packet = (rate / 50) as usize;
    let ts_step = codec.rtp_clock_rate() / 50;
    let n = (CALL_SECONDS * 50) as usize;
    let mut enc = Encoder::new(codec).expect("encoder");
    let mut pcm = Vec::with_capacity(per_packet);
    let mut payload = Vec::new();
    let mut packets = Vec::with_capacity(n);
    for i in 0..n {
        pcm.clear();
        pcm.extend((0..per_packet).map(|k| {
            let t = (i * per_packet + k) as f64 / f64::from(rate);
            (8192.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        }));
        payload.clear();
        enc.encode(&pcm, &mut payload).expect("encode");
        packets.push(rtp(
            payload_type(codec),
            seq0.wrapping_add(i as u16),
            ts0.wrapping_add(ts_step * i as u32),
            ssrc,
            i == 0,
            &payload,
        ));
    }
    Stream { packets }
}

fn make_call(codec: AudioCodec) -> Call {
    Call {
        codec,
        a: tone_stream(codec, 400.0, 0x1111_1111, 1000, 123_456),
        b: tone_stream(codec, 1000.0, 0x2222_2222, 60_000, 4_000_000_000),
    }
}

/// Records `call` into `path` (replacing it); returns the frames written.
fn record(call: &Call, path: &Path) -> u64 {
    let codecs = SideCodecs::single(call.codec);
    let options = WavOptions {
        overwrite: true,
        ..WavOptions::default()
    };
    let t0 = Instant::now();
    let mut rec = CallRecorder::create_wav(
        path,
        &options,
        RecorderConfig::default(),
        codecs.clone(),
        codecs,
        t0,
    )
    .expect("create the recording");
    for (i, (a, b)) in call.a.packets.iter().zip(&call.b.packets).enumerate() {
        let at = t0 + PTIME * i as u32;
        rec.handle_packet(at, Side::A, a);
        let bt = at + B_OFFSET;
        rec.handle_packet(bt, Side::B, b);
        if rec.poll_timeout().is_some_and(|due| due <= bt) {
            rec.handle_timeout(bt);
        }
    }
    let end = t0 + PTIME * call.a.packets.len() as u32 + B_OFFSET;
    let summary = rec.finish(end);
    assert!(summary.failure.is_none(), "recording failed: {summary:?}");
    summary.frames
}

/// CPU time of the calling thread (user + system).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

const CODECS: [(AudioCodec, &str); 3] = [
    (AudioCodec::Pcma, "pcma_8k"),
    (AudioCodec::G722, "g722_16k"),
    (AudioCodec::Opus, "opus_48k"),
];

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("hark-recorder-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks once that a recording has the call's length, both channels carrying sound.
fn sanity_check(call: &Call, path: &Path, name: &str) {
    let frames = record(call, path);
    let mut reader = hound::WavReader::open(path).expect("read back the WAV");
    let spec = reader.spec();
    assert_eq!(spec.channels, 2, "{name}: stereo");
    assert_eq!(
        spec.sample_rate,
        call.codec.sample_rate(),
        "{name}: file rate"
    );
    let want = CALL_SECONDS * u64::from(spec.sample_rate);
    assert!(
        frames.abs_diff(want) <= u64::from(spec.sample_rate) / 10,
        "{name}: {frames} frames for a {CALL_SECONDS} s call"
    );
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    assert_eq!(
        samples.len() as u64,
        2 * frames,
        "{name}: header and data agree"
    );
    // Middle second: both channels hold the tone (RMS well above silence).
    let mid = &samples[samples.len() / 2..samples.len() / 2 + 2 * spec.sample_rate as usize];
    for ch in 0..2 {
        let energy: f64 = mid
            .iter()
            .skip(ch)
            .step_by(2)
            .map(|&s| f64::from(s).powi(2))
            .sum();
        let rms = (energy / (mid.len() / 2) as f64).sqrt();
        assert!(rms > 1000.0, "{name}: channel {ch} RMS {rms:.0}");
    }
}

fn recording(c: &mut Criterion) {
    let scratch = Scratch::new();
    let mut group = c.benchmark_group("record_stereo_wav");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(CALL_SECONDS));
    for (codec, name) in CODECS {
        let call = make_call(codec);
        let path = scratch.0.join(format!("{name}.wav"));
        sanity_check(&call, &path, name);
        group.bench_function(format!("{name}_{CALL_SECONDS}s_call"), |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu();
                for _ in 0..iters {
                    black_box(record(&call, &path));
                }
                thread_cpu() - start
            })
        });
    }
    group.finish();
}

/// After criterion: one line per codec, from a fixed number of whole recordings.
fn summary() {
    let args: Vec<String> = std::env::args().collect();
    // Not under `cargo test --benches` / `--list`, nor when a filter left codecs out.
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    let scratch = Scratch::new();
    for (codec, name) in CODECS {
        if filter.is_some_and(|f| {
            !name.contains(f.as_str()) && !"record_stereo_wav".contains(f.as_str())
        }) {
            continue;
        }
        let call = make_call(codec);
        let path = scratch.0.join(format!("{name}.wav"));
        record(&call, &path);
        let runs = 5;
        let start = thread_cpu();
        for _ in 0..runs {
            black_box(record(&call, &path));
        }
        let cpu = (thread_cpu() - start).as_secs_f64();
        let call_s = (runs * CALL_SECONDS) as f64;
        println!(
            "recording {name}: {:.1} µs CPU per recorded call-second, {:.0} recordings per core \
             (stereo WAV, decode + write, {runs} × {CALL_SECONDS} s calls)",
            cpu * 1e6 / call_s,
            call_s / cpu
        );
    }
}

criterion_group!(benches, recording);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
