//! Real audio devices through cpal: the default (or a named) input as microphone and
//! output as speaker. cpal's callbacks run on the device's own thread and rate; rings
//! between them and the call's 20 ms clock absorb the jitter, and rubato converts the
//! device rate to the codec's (and back). A cpal stream is not `Send` on every platform,
//! so each lives on a small thread of its own that ends when the source or sink drops.

use super::{AudioError, AudioSink, AudioSource};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use rubato::{FastFixedIn, FastFixedOut, PolynomialDegree, Resampler};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, mpsc};

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

/// Keeps a stream alive on its own thread until dropped.
pub(super) struct StreamThread {
    _stop: mpsc::Sender<()>,
}

impl StreamThread {
    /// Builds and starts the stream on a new thread; `build` runs there.
    pub(super) fn start(
        build: impl FnOnce() -> Result<cpal::Stream, AudioError> + Send + 'static,
    ) -> Result<(Self, ()), AudioError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("hark-audio".into())
            .spawn(move || {
                let stream = match build().and_then(|s| s.play().map(|_| s).map_err(|e| device_error("starting", e))) {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Until the owner drops its sender.
                let _ = stop_rx.recv();
                drop(stream);
            })
            .map_err(|e| device_error("audio thread", e))?;
        let started = ready_rx.recv().map_err(|_| device_error("audio thread", "ended at start"))?;
        started.map(|()| (Self { _stop: stop_tx }, ()))
    }
}

fn push_ring(ring: &Ring, samples: impl Iterator<Item = f32>) {
    let mut r = ring.lock().unwrap_or_else(|p| p.into_inner());
    r.extend(samples);
    let excess = r.len().saturating_sub(RING_MAX);
    r.drain(..excess);
}

/// The microphone: a device's input, mixed to mono, at the call's rate.
pub struct DeviceSource {
    ring: Ring,
    resampler: FastFixedOut<f64>,
    input: Vec<f64>,
    _thread: StreamThread,
}

impl DeviceSource {
    pub fn open(name: Option<&str>, rate: u32, frame_len: usize) -> Result<Self, AudioError> {
        let name = name.map(str::to_owned);
        let ring: Ring = Arc::new(Mutex::new(VecDeque::new()));
        let (cfg_tx, cfg_rx) = mpsc::channel();
        let feed = ring.clone();
        let (thread, ()) = StreamThread::start(move || {
            let device = find(true, name.as_deref())?;
            let supported = device.default_input_config().map_err(|e| device_error("input config", e))?;
            let config: cpal::StreamConfig = supported.config();
            let channels = usize::from(config.channels.max(1));
            let _ = cfg_tx.send(config.sample_rate.0);
            let err = |e| tracing::warn!(error = %e, "audio input error");
            let stream = match supported.sample_format() {
                cpal::SampleFormat::F32 => device.build_input_stream(
                    &config,
                    move |data: &[f32], _: &cpal::InputCallbackInfo| {
                        push_ring(&feed, data.chunks(channels).map(|f| f.iter().sum::<f32>() / f.len() as f32))
                    },
                    err,
                    None,
                ),
                cpal::SampleFormat::I16 => device.build_input_stream(
                    &config,
                    move |data: &[i16], _: &cpal::InputCallbackInfo| {
                        push_ring(
                            &feed,
                            data.chunks(channels)
                                .map(|f| f.iter().map(|s| f32::from(*s) / 32768.0).sum::<f32>() / f.len() as f32),
                        )
                    },
                    err,
                    None,
                ),
                other => return Err(device_error("input", format!("unsupported sample format {other:?}"))),
            };
            stream.map_err(|e| device_error("opening the input", e))
        })?;
        let device_rate = cfg_rx.recv().map_err(|_| device_error("input", "no configuration"))?;
        let resampler =
            FastFixedOut::<f64>::new(f64::from(rate) / f64::from(device_rate), 1.0, PolynomialDegree::Cubic, frame_len, 1)
                .map_err(|e| device_error("resampler", e))?;
        Ok(Self { ring, resampler, input: Vec::new(), _thread: thread })
    }
}

impl AudioSource for DeviceSource {
    fn read_frame(&mut self, out: &mut [i16]) {
        let need = self.resampler.input_frames_next();
        self.input.clear();
        {
            let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            let take = need.min(r.len());
            self.input.extend(r.drain(..take).map(f64::from));
        }
        // An underrun (the device is late) is filled with silence.
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
}

/// The speaker: the call's audio, converted to a device's rate, on every channel.
pub struct DeviceSink {
    ring: Ring,
    resampler: FastFixedIn<f64>,
    frame_len: usize,
    input: Vec<f64>,
    _thread: StreamThread,
}

impl DeviceSink {
    pub fn open(name: Option<&str>, rate: u32, frame_len: usize) -> Result<Self, AudioError> {
        let name = name.map(str::to_owned);
        let ring: Ring = Arc::new(Mutex::new(VecDeque::new()));
        let (cfg_tx, cfg_rx) = mpsc::channel();
        let drain = ring.clone();
        let (thread, ()) = StreamThread::start(move || {
            let device = find(false, name.as_deref())?;
            let supported = device.default_output_config().map_err(|e| device_error("output config", e))?;
            let config: cpal::StreamConfig = supported.config();
            let channels = usize::from(config.channels.max(1));
            let _ = cfg_tx.send(config.sample_rate.0);
            let err = |e| tracing::warn!(error = %e, "audio output error");
            let next = move |frame_count: usize| -> Vec<f32> {
                let mut r = drain.lock().unwrap_or_else(|p| p.into_inner());
                let take = frame_count.min(r.len());
                let mut v: Vec<f32> = r.drain(..take).collect();
                v.resize(frame_count, 0.0);
                v
            };
            let stream = match supported.sample_format() {
                cpal::SampleFormat::F32 => device.build_output_stream(
                    &config,
                    move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                        let mono = next(data.len() / channels);
                        for (frame, s) in data.chunks_mut(channels).zip(mono) {
                            frame.fill(s);
                        }
                    },
                    err,
                    None,
                ),
                cpal::SampleFormat::I16 => device.build_output_stream(
                    &config,
                    move |data: &mut [i16], _: &cpal::OutputCallbackInfo| {
                        let mono = next(data.len() / channels);
                        for (frame, s) in data.chunks_mut(channels).zip(mono) {
                            frame.fill((s * 32767.0).clamp(-32768.0, 32767.0) as i16);
                        }
                    },
                    err,
                    None,
                ),
                other => return Err(device_error("output", format!("unsupported sample format {other:?}"))),
            };
            stream.map_err(|e| device_error("opening the output", e))
        })?;
        let device_rate = cfg_rx.recv().map_err(|_| device_error("output", "no configuration"))?;
        let resampler =
            FastFixedIn::<f64>::new(f64::from(device_rate) / f64::from(rate), 1.0, PolynomialDegree::Cubic, frame_len, 1)
                .map_err(|e| device_error("resampler", e))?;
        Ok(Self { ring, resampler, frame_len, input: Vec::new(), _thread: thread })
    }
}

impl AudioSink for DeviceSink {
    fn write_frame(&mut self, pcm: &[i16]) -> Result<(), AudioError> {
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
