//! Real audio devices through cpal: the default (or a named) input as microphone and
//! output as speaker. cpal's callbacks run on the device's own thread and rate; rings
//! between them and the call's 20 ms clock absorb the jitter, and rubato converts the
//! device rate to the codec's (and back). A cpal stream is not `Send` on every platform,
//! so each lives on a small thread of its own that ends when the source or sink drops.

use super::{AudioError, AudioSink, AudioSource, DeviceNotice};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use rubato::{FastFixedIn, FastFixedOut, PolynomialDegree, Resampler};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// At most this much audio waits in a ring (then the oldest goes): 200 ms at 48 kHz.
const RING_MAX: usize = 9_600;

type Ring = Arc<Mutex<VecDeque<f32>>>;

pub(super) fn device_error(what: &str, reason: impl std::fmt::Display) -> AudioError {
    AudioError::Device(format!("{what}: {reason}"))
}

/// The names of the input and output devices of the default host.
pub fn list_devices() -> Result<(Vec<String>, Vec<String>), AudioError> {
    let host = cpal::default_host();
    let inputs = host.input_devices().map_err(|e| device_error("listing devices", e))?;
    let inputs = inputs.filter_map(|d| d.name().ok()).collect();
    let outputs = host.output_devices().map_err(|e| device_error("listing devices", e))?;
    let outputs = outputs.filter_map(|d| d.name().ok()).collect();
    Ok((inputs, outputs))
}

pub(super) fn find(input: bool, name: Option<&str>) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let kind = if input { "input" } else { "output" };
    match name {
        None | Some("default") => {
            let d = if input { host.default_input_device() } else { host.default_output_device() };
            d.ok_or_else(|| device_error(&format!("no default audio {kind} device"), "is a sound card present?"))
        }
        Some(wanted) => {
            let mut devices = if input { host.input_devices() } else { host.output_devices() }
                .map_err(|e| device_error("listing devices", e))?;
            devices
                .find(|d| d.name().is_ok_and(|n| n == wanted))
                .ok_or_else(|| device_error(&format!("no audio {kind} device named {wanted:?}"), "see `hark phone devices`"))
        }
    }
}

/// What the stream thread and the owner share: whether the device failed, its current
/// rate, and the losses and returns the owner has not reported yet.
#[derive(Default)]
pub(super) struct Health {
    /// The current stream reported an error (cleared before each reopening attempt).
    failed: AtomicBool,
    /// From the failure until a stream is open again.
    lost: AtomicBool,
    /// Data callbacks so far: a stream whose count stops has stalled.
    beats: AtomicU64,
    rate: AtomicU32,
    notices: Mutex<VecDeque<DeviceNotice>>,
}

impl Health {
    /// Called from every data callback: the stream is alive.
    pub(super) fn beat(&self) {
        self.beats.fetch_add(1, Ordering::Relaxed);
    }

    /// cpal's error callback: the first error marks the stream failed (cpal's ALSA
    /// worker keeps calling back while the device is gone; one warning is enough).
    pub(super) fn on_error(self: &Arc<Self>, what: &'static str) -> impl FnMut(cpal::StreamError) + Send + 'static {
        let health = self.clone();
        move |e| {
            if !health.failed.swap(true, Ordering::AcqRel) {
                tracing::warn!(error = %e, "audio {what} failed");
                health.notice(false, format!("{what} lost: {e}; reopening"));
            }
        }
    }

    pub(super) fn set_rate(&self, rate: u32) {
        self.rate.store(rate, Ordering::Release);
    }

    pub(super) fn rate(&self) -> u32 {
        self.rate.load(Ordering::Acquire)
    }

    fn notice(&self, ok: bool, detail: String) {
        self.notices.lock().unwrap_or_else(|p| p.into_inner()).push_back(DeviceNotice { ok, detail });
    }

    /// The device failed and is being looked for again.
    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire) || self.failed.load(Ordering::Acquire)
    }

    pub(super) fn take_notice(&self) -> Option<DeviceNotice> {
        self.notices.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
    }
}

/// How often a lost device is looked for again.
const REOPEN_EVERY: Duration = Duration::from_secs(1);
/// A stream without a data callback for this long has stalled. Longer than a sound
/// server takes to start a stream (PulseAudio here: about 0.9 s).
const STALL: Duration = Duration::from_secs(2);
/// How often the stream thread checks its stream's health.
const HEALTH_CHECK: Duration = Duration::from_millis(100);

/// Keeps a stream alive on its own thread until dropped. When the device fails (it was
/// unplugged, the sound server went away) the thread drops the stream and builds it
/// again every second until the device is back, so a call survives a headset being
/// pulled out and plugged in again.
pub(super) struct StreamThread {
    _stop: mpsc::Sender<()>,
    pub(super) health: Arc<Health>,
}

impl StreamThread {
    /// Builds and starts the stream on a new thread; `build` runs there, again after each
    /// failure. The first build's error is returned; later ones are retried.
    pub(super) fn start(
        what: &'static str,
        build: impl Fn(&Arc<Health>) -> Result<cpal::Stream, AudioError> + Send + 'static,
    ) -> Result<Self, AudioError> {
        let health = Arc::new(Health::default());
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let shared = health.clone();
        let open = move || build(&shared).and_then(|s| s.play().map(|()| s).map_err(|e| device_error("starting", e)));
        let health_in = health.clone();
        std::thread::Builder::new()
            .name("hark-audio".into())
            .spawn(move || {
                let health = health_in;
                let mut stream = match open() {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let (mut seen, mut quiet_since) = (health.beats.load(Ordering::Relaxed), std::time::Instant::now());
                loop {
                    // Until the owner drops its sender.
                    match stop_rx.recv_timeout(HEALTH_CHECK) {
                        Err(mpsc::RecvTimeoutError::Timeout) if !health.failed.load(Ordering::Acquire) => {
                            // A sound server may end a stream without an error (PulseAudio
                            // does for a capture whose source went away): no callbacks
                            // for a while is a failure too.
                            let beats = health.beats.load(Ordering::Relaxed);
                            if beats != seen {
                                (seen, quiet_since) = (beats, std::time::Instant::now());
                                continue;
                            }
                            if quiet_since.elapsed() < STALL {
                                continue;
                            }
                            tracing::warn!("audio {what} stalled");
                            health.notice(false, format!("{what} lost: no audio from the device; reopening"));
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    health.lost.store(true, Ordering::Release);
                    drop(stream);
                    let mut last_error = String::new();
                    stream = loop {
                        if !matches!(stop_rx.recv_timeout(REOPEN_EVERY), Err(mpsc::RecvTimeoutError::Timeout)) {
                            return;
                        }
                        // Cleared first: the new stream's own first error must count.
                        health.failed.store(false, Ordering::Release);
                        match open() {
                            Ok(s) => break s,
                            Err(e) => {
                                let e = e.to_string();
                                if e != last_error {
                                    tracing::info!(error = %e, "audio {what} still missing");
                                    last_error = e;
                                }
                            }
                        }
                    };
                    health.lost.store(false, Ordering::Release);
                    (seen, quiet_since) = (health.beats.load(Ordering::Relaxed), std::time::Instant::now());
                    tracing::info!("audio {what} back");
                    health.notice(true, format!("{what} back"));
                }
            })
            .map_err(|e| device_error("audio thread", e))?;
        let started = ready_rx.recv().map_err(|_| device_error("audio thread", "ended at start"))?;
        started.map(|()| Self { _stop: stop_tx, health })
    }
}

fn push_ring(ring: &Ring, samples: impl Iterator<Item = f32>) {
    let mut r = ring.lock().unwrap_or_else(|p| p.into_inner());
    r.extend(samples);
    let excess = r.len().saturating_sub(RING_MAX);
    r.drain(..excess);
}

/// How much audio a device may buffer. A call cannot wait: left to the device's default,
/// a sound server may choose a buffer far longer than a conversation tolerates.
const DEVICE_BUFFER_MS: u32 = 40;

/// The device's own format with a buffer of [`DEVICE_BUFFER_MS`] (within what the device
/// allows; its default where it does not say).
pub fn low_latency(supported: &cpal::SupportedStreamConfig) -> cpal::StreamConfig {
    let mut config = supported.config();
    if let cpal::SupportedBufferSize::Range { min, max } = supported.buffer_size() {
        let want = config.sample_rate.0 * DEVICE_BUFFER_MS / 1000;
        config.buffer_size = cpal::BufferSize::Fixed(want.clamp(*min, (*max).max(*min)));
    }
    config
}

fn mono_f32(data: &[f32], channels: usize) -> impl Iterator<Item = f32> + '_ {
    data.chunks(channels).map(|f| f.iter().sum::<f32>() / f.len() as f32)
}

fn mono_i16(data: &[i16], channels: usize) -> impl Iterator<Item = f32> + '_ {
    data.chunks(channels).map(|f| f.iter().map(|s| f32::from(*s) / 32768.0).sum::<f32>() / f.len() as f32)
}

/// Builds an input stream on `name` that hands mono f32 samples to `feed`; the device's
/// rate goes to `health`.
pub(super) fn build_input(
    name: Option<&str>,
    health: &Arc<Health>,
    what: &'static str,
    feed: impl Fn(&mut dyn Iterator<Item = f32>) + Send + Clone + 'static,
) -> Result<cpal::Stream, AudioError> {
    let device = find(true, name)?;
    let supported = device.default_input_config().map_err(|e| device_error("input config", e))?;
    let config = low_latency(&supported);
    let channels = usize::from(config.channels.max(1));
    health.set_rate(config.sample_rate.0);
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => {
            let (feed, alive) = (feed.clone(), health.clone());
            device.build_input_stream(
                &config,
                move |data: &[f32], _: &cpal::InputCallbackInfo| {
                    alive.beat();
                    feed(&mut mono_f32(data, channels))
                },
                health.on_error(what),
                None,
            )
        }
        cpal::SampleFormat::I16 => device.build_input_stream(
            &config,
            {
                let alive = health.clone();
                move |data: &[i16], _: &cpal::InputCallbackInfo| {
                    alive.beat();
                    feed(&mut mono_i16(data, channels))
                }
            },
            health.on_error(what),
            None,
        ),
        other => return Err(device_error("input", format!("unsupported sample format {other:?}"))),
    };
    stream.map_err(|e| device_error("opening the input", e))
}

fn input_resampler(rate: u32, device_rate: u32, frame_len: usize) -> Result<FastFixedOut<f64>, AudioError> {
    FastFixedOut::<f64>::new(f64::from(rate) / f64::from(device_rate.max(1)), 1.0, PolynomialDegree::Cubic, frame_len, 1)
        .map_err(|e| device_error("resampler", e))
}

fn output_resampler(rate: u32, device_rate: u32, frame_len: usize) -> Result<FastFixedIn<f64>, AudioError> {
    FastFixedIn::<f64>::new(f64::from(device_rate.max(1)) / f64::from(rate), 1.0, PolynomialDegree::Cubic, frame_len, 1)
        .map_err(|e| device_error("resampler", e))
}

/// The microphone: a device's input, mixed to mono, at the call's rate.
pub struct DeviceSource {
    ring: Ring,
    rate: u32,
    frame_len: usize,
    /// The device rate the resampler converts from; a reopened device may have another.
    device_rate: u32,
    resampler: FastFixedOut<f64>,
    input: Vec<f64>,
    thread: StreamThread,
}

impl DeviceSource {
    pub fn open(name: Option<&str>, rate: u32, frame_len: usize) -> Result<Self, AudioError> {
        let name = name.map(str::to_owned);
        let ring: Ring = Arc::new(Mutex::new(VecDeque::new()));
        let feed = ring.clone();
        let thread = StreamThread::start("microphone", move |health| {
            let feed = feed.clone();
            build_input(name.as_deref(), health, "microphone", move |samples| push_ring(&feed, samples))
        })?;
        let device_rate = thread.health.rate();
        let resampler = input_resampler(rate, device_rate, frame_len)?;
        Ok(Self { ring, rate, frame_len, device_rate, resampler, input: Vec::new(), thread })
    }
}

impl AudioSource for DeviceSource {
    fn read_frame(&mut self, out: &mut [i16]) {
        let device_rate = self.thread.health.rate();
        if device_rate != self.device_rate
            && let Ok(r) = input_resampler(self.rate, device_rate, self.frame_len)
        {
            self.resampler = r;
            self.device_rate = device_rate;
        }
        let need = self.resampler.input_frames_next();
        self.input.clear();
        {
            let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            let take = need.min(r.len());
            self.input.extend(r.drain(..take).map(f64::from));
        }
        // An underrun (the device is late, or gone) is filled with silence.
        self.input.resize(need, 0.0);
        match self.resampler.process(&[&self.input], None) {
            Ok(frames) => {
                for (o, s) in out.iter_mut().zip(frames[0].iter().chain(std::iter::repeat(&0.0))) {
                    *o = (s * 32767.0).clamp(-32768.0, 32767.0) as i16;
                }
            }
            Err(_) => out.fill(0),
        }
    }

    fn take_notice(&mut self) -> Option<DeviceNotice> {
        self.thread.health.take_notice()
    }
}

/// The speaker: the call's audio, converted to a device's rate, on every channel.
pub struct DeviceSink {
    ring: Ring,
    rate: u32,
    frame_len: usize,
    device_rate: u32,
    resampler: FastFixedIn<f64>,
    input: Vec<f64>,
    thread: StreamThread,
}

impl DeviceSink {
    pub fn open(name: Option<&str>, rate: u32, frame_len: usize) -> Result<Self, AudioError> {
        let name = name.map(str::to_owned);
        let ring: Ring = Arc::new(Mutex::new(VecDeque::new()));
        let drain = ring.clone();
        let thread = StreamThread::start("speaker", move |health| {
            let drain = drain.clone();
            // Each mono sample on every channel; silence when the call is late.
            let fill = move |data: &mut [f32], channels: usize| {
                let mut r = drain.lock().unwrap_or_else(|p| p.into_inner());
                for frame in data.chunks_mut(channels) {
                    frame.fill(r.pop_front().unwrap_or(0.0));
                }
            };
            build_output(name.as_deref(), health, "speaker", fill).map(|(stream, _)| stream)
        })?;
        let device_rate = thread.health.rate();
        let resampler = output_resampler(rate, device_rate, frame_len)?;
        Ok(Self { ring, rate, frame_len, device_rate, resampler, input: Vec::new(), thread })
    }
}

impl AudioSink for DeviceSink {
    fn write_frame(&mut self, pcm: &[i16]) -> Result<(), AudioError> {
        let device_rate = self.thread.health.rate();
        if device_rate != self.device_rate {
            self.resampler = output_resampler(self.rate, device_rate, self.frame_len)?;
            self.device_rate = device_rate;
        }
        self.input.clear();
        self.input.extend(pcm.iter().map(|s| f64::from(*s) / 32768.0));
        self.input.resize(self.frame_len, 0.0);
        let out = self.resampler.process(&[&self.input], None).map_err(|e| device_error("resampling", e))?;
        push_ring(&self.ring, out[0].iter().map(|s| *s as f32));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        Ok(())
    }

    fn take_notice(&mut self) -> Option<DeviceNotice> {
        self.thread.health.take_notice()
    }
}

/// Samples (f32, interleaved) an output pulls from; None plays silence.
pub type OutputFeed = Arc<Mutex<Option<Box<dyn Iterator<Item = f32> + Send>>>>;

/// The default output device playing whatever [`SampleOutput::set_source`] gives it, with
/// the low-latency buffer of a call (so pause and seek are heard at once) and the same
/// reopening after an unplug. Playback of recordings goes through it.
pub struct SampleOutput {
    feed: OutputFeed,
    /// The highest |sample| written since the last read (f32 bits): the output meter.
    peak: Arc<AtomicU32>,
    /// The device's channels; its rate is in the thread's health.
    channels: Arc<AtomicU32>,
    thread: StreamThread,
}

/// Builds an output stream on `name` that asks `fill` for interleaved f32 samples in the
/// device's channel count (returned with the stream); the device's rate goes to
/// `health`, and every callback counts as a sign of life.
fn build_output(
    name: Option<&str>,
    health: &Arc<Health>,
    what: &'static str,
    fill: impl FnMut(&mut [f32], usize) + Send + Clone + 'static,
) -> Result<(cpal::Stream, u16), AudioError> {
    let device = find(false, name)?;
    let supported = device.default_output_config().map_err(|e| device_error("output config", e))?;
    let config = low_latency(&supported);
    let channels = config.channels.max(1);
    health.set_rate(config.sample_rate.0);
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => {
            let (mut fill, alive) = (fill.clone(), health.clone());
            device.build_output_stream(
                &config,
                move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                    alive.beat();
                    fill(data, usize::from(channels))
                },
                health.on_error(what),
                None,
            )
        }
        cpal::SampleFormat::I16 => {
            let (mut fill, alive, mut scratch) = (fill, health.clone(), Vec::new());
            device.build_output_stream(
                &config,
                move |data: &mut [i16], _: &cpal::OutputCallbackInfo| {
                    alive.beat();
                    scratch.resize(data.len(), 0.0);
                    fill(&mut scratch, usize::from(channels));
                    for (d, s) in data.iter_mut().zip(&scratch) {
                        *d = (s * 32767.0).clamp(-32768.0, 32767.0) as i16;
                    }
                },
                health.on_error(what),
                None,
            )
        }
        other => return Err(device_error("output", format!("unsupported sample format {other:?}"))),
    };
    Ok((stream.map_err(|e| device_error("opening the output", e))?, channels))
}

impl SampleOutput {
    /// Opens the default output (`None` or "default") or the one named.
    pub fn open(name: Option<&str>) -> Result<Self, AudioError> {
        let name = name.map(str::to_owned);
        let feed: OutputFeed = Arc::new(Mutex::new(None));
        let channels = Arc::new(AtomicU32::new(2));
        let pulls = Arc::new(AtomicU32::new(0));
        let peak = Arc::new(AtomicU32::new(0));
        let (pull, chans, counter, peaks) = (feed.clone(), channels.clone(), pulls.clone(), peak.clone());
        let thread = StreamThread::start("speaker", move |health| {
            let (pull, counter, peaks) = (pull.clone(), counter.clone(), peaks.clone());
            // The source's samples, and their peak for the output meter.
            let fill = move |data: &mut [f32], _channels: usize| {
                counter.fetch_add(1, Ordering::AcqRel);
                let mut source = pull.lock().unwrap_or_else(|p| p.into_inner());
                match source.as_mut() {
                    Some(it) => {
                        let mut peak = 0.0f32;
                        for d in data.iter_mut() {
                            *d = it.next().unwrap_or(0.0);
                            peak = peak.max(d.abs());
                        }
                        super::meter::raise(&peaks, peak.min(1.0));
                    }
                    None => data.fill(0.0),
                }
            };
            let (stream, channels) = build_output(name.as_deref(), health, "speaker", fill)?;
            chans.store(u32::from(channels), Ordering::Release);
            Ok(stream)
        })?;
        // A sound server may take a good while to start the stream after the first
        // buffer is filled (PulseAudio here: most of a second). Until the device asks for
        // more, playing would start a position clock ahead of what is heard.
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while pulls.load(Ordering::Acquire) < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Self { feed, peak, channels, thread })
    }

    /// The device's channel count and rate, which a source must be converted to.
    pub fn format(&self) -> (u16, u32) {
        (self.channels.load(Ordering::Acquire) as u16, self.thread.health.rate())
    }

    /// The peak played since the last read, in dBFS (−96: silence): the output meter.
    pub fn take_peak_dbfs(&self) -> f32 {
        super::meter::dbfs(f32::from_bits(self.peak.swap(0, Ordering::Relaxed)))
    }

    /// Plays `source` (interleaved, in [`SampleOutput::format`]) from now on.
    pub fn set_source(&self, source: Option<Box<dyn Iterator<Item = f32> + Send>>) {
        *self.feed.lock().unwrap_or_else(|p| p.into_inner()) = source;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn listing_devices_never_panics_even_without_a_sound_card() {
        match super::list_devices() {
            Ok((inputs, outputs)) => eprintln!("inputs {inputs:?}, outputs {outputs:?}"),
            Err(e) => eprintln!("no devices: {e}"),
        }
        // A device that cannot exist is a clear error, not a panic.
        let err = super::DeviceSource::open(Some("no such device, surely"), 8000, 160).err();
        assert!(err.is_some_and(|e| e.to_string().contains("no audio input device named")));
    }
}
