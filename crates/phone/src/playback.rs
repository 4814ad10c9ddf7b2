//! Playback of recordings through rodio (DESIGN.md): play, pause, seek, a position the
//! UI can poll, and a waveform for the library.
//! rodio's output stream lives on its own thread (it is not Send); the UI asks for the
//! position, which is kept by a clock that pauses and seeks with the sink. Without an
//! audio output device (a server, Xvfb in CI) playback still runs on that clock, silent,
//! and the UI says so.

use crate::audio::device::SampleOutput;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Waveform {
    pub duration_ms: u64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Peak level per bucket, 0..=1.
    pub peaks: Vec<f32>,
}

/// Reads a WAV and reduces it to `buckets` peaks. A damaged file is a clear error.
pub fn waveform(path: &Path, buckets: usize) -> Result<Waveform, String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bad = |e: &dyn std::fmt::Display| format!("cannot play {name}: not a playable WAV file ({e})");
    let mut reader = hound::WavReader::open(path).map_err(|e| match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::NotFound => format!("cannot play {name}: the file is missing"),
        e => bad(&e),
    })?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(bad(&"no channels or no sample rate"));
    }
    let frames = reader.duration() as usize;
    let buckets = buckets.max(1);
    let per = frames.div_ceil(buckets).max(1);
    let mut peaks = vec![0f32; frames.div_ceil(per).max(1)];
    let ch = spec.channels as usize;
    let scale = match spec.sample_format {
        hound::SampleFormat::Float => 1.0,
        hound::SampleFormat::Int => (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32,
    };
    let mut i = 0usize;
    let mut push = |v: f32| {
        let b = (i / ch) / per;
        if let Some(p) = peaks.get_mut(b) {
            *p = p.max((v / scale).abs().min(1.0));
        }
        i += 1;
    };
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for s in reader.samples::<f32>() {
                push(s.map_err(|e| bad(&e))?);
            }
        }
        hound::SampleFormat::Int => {
            for s in reader.samples::<i32>() {
                push(s.map_err(|e| bad(&e))? as f32);
            }
        }
    }
    Ok(Waveform {
        duration_ms: frames as u64 * 1000 / spec.sample_rate as u64,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        peaks,
    })
}

#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// The library id of what is loaded.
    pub id: Option<String>,
    pub playing: bool,
    pub position_ms: u64,
    pub duration_ms: u64,
    /// False when there is no audio output device: playback runs silent.
    pub device: bool,
    pub message: Option<String>,
}

#[derive(Default)]
struct Clock {
    id: Option<String>,
    duration_ms: u64,
    base_ms: u64,
    since: Option<Instant>,
    device: bool,
    message: Option<String>,
}

impl Clock {
    fn position(&self) -> u64 {
        let extra = self.since.map(|t| t.elapsed().as_millis() as u64).unwrap_or(0);
        (self.base_ms + extra).min(self.duration_ms)
    }
}

enum Cmd {
    Load { path: PathBuf, reply: mpsc::Sender<Result<(), String>> },
    Play,
    Pause,
    Seek(u64),
    Stop,
}

pub struct Player {
    tx: Mutex<mpsc::Sender<Cmd>>,
    clock: Arc<Mutex<Clock>>,
}

impl Player {
    pub fn new() -> Player {
        let (tx, rx) = mpsc::channel();
        let clock = Arc::new(Mutex::new(Clock::default()));
        let c = clock.clone();
        std::thread::Builder::new().name("hark-player".into()).spawn(move || run(rx, c)).expect("player thread");
        Player { tx: Mutex::new(tx), clock }
    }

    fn send(&self, cmd: Cmd) {
        let _ = self.tx.lock().unwrap().send(cmd);
    }

    /// Loads a WAV (checked first) and starts playing it.
    pub fn load(&self, id: &str, path: &Path, duration_ms: u64) -> Result<(), String> {
        self.load_from(id, path, duration_ms, 0)
    }

    /// Loads a WAV and starts playing it `from_ms` in (seeking first, so nothing before
    /// that is heard).
    pub fn load_from(&self, id: &str, path: &Path, duration_ms: u64, from_ms: u64) -> Result<(), String> {
        let (reply, rx) = mpsc::channel();
        self.send(Cmd::Load { path: path.to_owned(), reply });
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| "the player did not answer".to_string())??;
        let mut c = self.clock.lock().unwrap();
        c.id = Some(id.to_owned());
        c.duration_ms = duration_ms;
        c.base_ms = from_ms.min(duration_ms);
        c.since = None;
        drop(c);
        if from_ms > 0 {
            self.send(Cmd::Seek(from_ms));
        }
        self.play();
        Ok(())
    }

    pub fn play(&self) {
        let mut c = self.clock.lock().unwrap();
        if c.id.is_none() {
            return;
        }
        if c.position() >= c.duration_ms {
            c.base_ms = 0;
            drop(c);
            self.send(Cmd::Seek(0));
            c = self.clock.lock().unwrap();
        }
        if c.since.is_none() {
            c.since = Some(Instant::now());
        }
        drop(c);
        self.send(Cmd::Play);
    }

    pub fn pause(&self) {
        let mut c = self.clock.lock().unwrap();
        c.base_ms = c.position();
        c.since = None;
        drop(c);
        self.send(Cmd::Pause);
    }

    pub fn seek(&self, ms: u64) {
        let mut c = self.clock.lock().unwrap();
        c.base_ms = ms.min(c.duration_ms);
        if c.since.is_some() {
            c.since = Some(Instant::now());
        }
        drop(c);
        self.send(Cmd::Seek(ms));
    }

    pub fn stop(&self) {
        *self.clock.lock().unwrap() = Clock::default();
        self.send(Cmd::Stop);
    }

    pub fn status(&self) -> Status {
        let mut c = self.clock.lock().unwrap();
        let position = c.position();
        if c.since.is_some() && position >= c.duration_ms {
            c.base_ms = c.duration_ms;
            c.since = None;
        }
        Status {
            id: c.id.clone(),
            playing: c.since.is_some(),
            position_ms: position,
            duration_ms: c.duration_ms,
            device: c.device,
            message: c.message.clone(),
        }
    }
}

impl Default for Player {
    fn default() -> Self {
        Player::new()
    }
}

fn run(rx: mpsc::Receiver<Cmd>, clock: Arc<Mutex<Clock>>) {
    // Opened on first use: no sound device is touched until something plays.
    let mut output: Option<SampleOutput> = None;
    let mut tried = false;
    let mut sink: Option<rodio::Sink> = None;
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Cmd::Load { path, reply } => {
                if let Some(s) = sink.take() {
                    s.stop();
                }
                if !tried {
                    tried = true;
                    output = SampleOutput::open(None).inspect_err(|e| tracing::info!(error = %e, "no audio output for playback")).ok();
                }
                let result = (|| -> Result<(), String> {
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    let file = std::fs::File::open(&path).map_err(|e| format!("cannot play {name}: {e}"))?;
                    let decoder = rodio::Decoder::new_wav(std::io::BufReader::new(file))
                        .map_err(|e| format!("cannot play {name}: not a playable WAV file ({e})"))?;
                    let mut c = clock.lock().unwrap();
                    match &output {
                        Some(out) => {
                            // rodio's sink (play, pause, seek) feeds our device stream,
                            // converted to the device's format.
                            let (s, queue) = rodio::Sink::new_idle();
                            s.pause();
                            s.append(decoder);
                            let (channels, rate) = out.format();
                            out.set_source(Some(Box::new(rodio::source::UniformSourceIterator::<_, f32>::new(queue, channels, rate))));
                            sink = Some(s);
                            c.device = true;
                            c.message = None;
                        }
                        None => {
                            c.device = false;
                            c.message = Some("no audio output device; playing silently".into());
                        }
                    }
                    Ok(())
                })();
                let _ = reply.send(result);
            }
            Cmd::Play => {
                if let Some(s) = &sink {
                    s.play();
                }
            }
            Cmd::Pause => {
                if let Some(s) = &sink {
                    s.pause();
                }
            }
            Cmd::Seek(ms) => {
                if let Some(s) = &sink {
                    let _ = s.try_seek(Duration::from_millis(ms));
                }
            }
            Cmd::Stop => {
                if let Some(s) = sink.take() {
                    s.stop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(path: &Path, secs: u32) {
        let spec = hound::WavSpec { channels: 2, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..8000 * secs {
            let v = if i < 8000 { 16000 } else { 0 };
            w.write_sample(v as i16).unwrap();
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn waveform_of_a_wav_and_a_clear_error_for_a_corrupt_one() {
        let dir = std::env::temp_dir().join(format!("hark-phone-player-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.wav");
        wav(&good, 2);
        let w = waveform(&good, 100).unwrap();
        assert_eq!(w.duration_ms, 2000);
        assert_eq!(w.peaks.len(), 100);
        assert!(w.peaks[10] > 0.4 && w.peaks[90] < 0.01, "{:?}", &w.peaks[..3]);
        let bad = dir.join("bad.wav");
        std::fs::write(&bad, b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk").unwrap();
        let e = waveform(&bad, 100).unwrap_err();
        assert!(e.contains("cannot play bad.wav: not a playable WAV file"), "{e}");
        assert!(waveform(&dir.join("missing.wav"), 10).unwrap_err().contains("missing"));

        let p = Player::new();
        assert!(p.load("x", &bad, 0).is_err());
        p.load("good", &good, 2000).unwrap();
        assert!(p.status().playing);
        p.pause();
        let at = p.status().position_ms;
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(p.status().position_ms, at);
        p.seek(1500);
        assert_eq!(p.status().position_ms, 1500);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
