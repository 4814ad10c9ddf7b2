//! Settings' audio checks: the chosen microphone's level meter (hark-phone's InputMeter)
//! and a test tone on the chosen speaker (rodio). The meter's device is open only while
//! the Settings view reads it: the view closes it when it goes, and a watchdog closes it
//! when nobody has read it for a while (a hidden window, a reloaded page), so no device
//! stays open and nothing runs when idle.

use hark_phone::audio::device::SampleOutput;
use hark_phone::audio::meter::InputMeter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a meter reads for silence.
const SILENT: f32 = -96.0;

/// Unread for this long, the meter closes itself.
const UNREAD_CLOSE: Duration = Duration::from_secs(2);

#[derive(serde::Serialize, Clone, Copy, Debug, PartialEq)]
pub struct Level {
    pub dbfs: f32,
    /// The microphone went away (unplugged); it is reopened when it is back.
    pub lost: bool,
}

struct Open {
    meter: InputMeter,
    last_read: Instant,
    generation: u64,
}

#[derive(Default)]
pub struct Meter {
    open: Mutex<Option<Open>>,
    generation: Mutex<u64>,
    /// A test tone is playing: another click waits for it.
    tone_playing: AtomicBool,
    /// The speaker's level while the test tone plays (dBFS as f32 bits; 0 bits: none).
    speaker_level: std::sync::atomic::AtomicU32,
}

/// "" (or None) is the system default device.
fn device_name(name: Option<&str>) -> Option<&str> {
    name.filter(|n| !n.is_empty())
}

impl Meter {
    /// Opens the named input (None or "": the default), closing the one open before.
    pub fn start(self: &Arc<Self>, name: Option<&str>) -> Result<(), String> {
        if name == Some("none") {
            self.stop();
            return Err("the microphone is set to None (silent): there is no level to show".into());
        }
        // The old device is closed before the new one opens (some cards allow one reader).
        self.stop();
        let meter = InputMeter::open(device_name(name)).map_err(|e| format!("cannot open the microphone: {e}"))?;
        let generation = {
            let mut g = self.generation.lock().unwrap();
            *g += 1;
            *g
        };
        *self.open.lock().unwrap() = Some(Open { meter, last_read: Instant::now(), generation });
        let watch = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("hark-meter-watch".into())
            .spawn(move || loop {
                std::thread::sleep(UNREAD_CLOSE / 2);
                let Some(me) = watch.upgrade() else { return };
                let mut open = me.open.lock().unwrap();
                match open.as_ref() {
                    Some(o) if o.generation == generation => {
                        if o.last_read.elapsed() >= UNREAD_CLOSE {
                            tracing::info!("level meter unread for {UNREAD_CLOSE:?}: closing the microphone");
                            *open = None;
                            return;
                        }
                    }
                    // Stopped, or replaced by a newer meter with its own watchdog.
                    _ => return,
                }
            })
            .map_err(|e| format!("cannot start the level meter: {e}"))?;
        Ok(())
    }

    /// The peak since the last read, in dBFS (−96: silence), and whether the device is
    /// gone (it is reopened when it comes back).
    pub fn level(&self) -> Result<Level, String> {
        let mut open = self.open.lock().unwrap();
        let o = open.as_mut().ok_or("the level meter is not running")?;
        o.last_read = Instant::now();
        Ok(Level { dbfs: o.meter.take_peak_dbfs(), lost: o.meter.device_lost() })
    }

    /// Closes the device (dropping the InputMeter ends its stream thread).
    pub fn stop(&self) {
        let old = self.open.lock().unwrap().take();
        drop(old);
    }

    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.open.lock().unwrap().is_some()
    }

    /// The speaker's level while the test tone plays, in dBFS (−96 otherwise).
    pub fn speaker_level(&self) -> f32 {
        match self.speaker_level.load(Ordering::Acquire) {
            0 => SILENT,
            bits => f32::from_bits(bits),
        }
    }

    /// A one-second 440 Hz tone on the named output ("": the default). Errors when the
    /// device cannot open; the tone then plays on its own thread, one at a time.
    pub fn test_tone(self: &Arc<Self>, name: &str) -> Result<(), String> {
        if name == "none" {
            return Err("the speaker is set to None (silent)".into());
        }
        if self.tone_playing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let name = device_name(Some(name)).map(str::to_owned);
        let me = self.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let spawned = std::thread::Builder::new().name("hark-test-tone".into()).spawn(move || {
            match SampleOutput::open(name.as_deref()) {
                Ok(out) => {
                    use rodio::Source;
                    let _ = tx.send(Ok(()));
                    // rodio makes the tone; hark-phone's output plays it and measures
                    // what it plays, for the speaker's meter.
                    let (sink, queue) = rodio::Sink::new_idle();
                    sink.append(rodio::source::SineWave::new(440.0).take_duration(Duration::from_secs(1)).amplify(0.2));
                    let (channels, rate) = out.format();
                    out.set_source(Some(Box::new(rodio::source::UniformSourceIterator::<_, f32>::new(queue, channels, rate))));
                    let until = Instant::now() + Duration::from_secs(5);
                    while !sink.empty() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(50));
                        me.speaker_level.store(out.take_peak_dbfs().to_bits(), Ordering::Release);
                    }
                    // What the device still buffers.
                    std::thread::sleep(Duration::from_millis(100));
                    me.speaker_level.store(SILENT.to_bits(), Ordering::Release);
                    me.tone_playing.store(false, Ordering::Release);
                }
                Err(e) => {
                    // Free for the next click before the caller hears of the failure.
                    me.tone_playing.store(false, Ordering::Release);
                    let _ = tx.send(Err(format!("cannot play on the speaker: {e}")));
                }
            }
        });
        if let Err(e) = spawned {
            self.tone_playing.store(false, Ordering::Release);
            return Err(format!("cannot play the test tone: {e}"));
        }
        rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| Err("the speaker did not open within 5 s".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_that_cannot_open_is_an_error_and_nothing_stays_open() {
        let m = Arc::new(Meter::default());
        let err = m.start(Some("no such microphone, surely")).unwrap_err();
        assert!(err.contains("cannot open the microphone"), "{err}");
        assert!(!m.is_open());
        assert!(m.level().unwrap_err().contains("not running"));
        assert!(m.start(Some("none")).unwrap_err().contains("None"));
        let err = m.test_tone("no such speaker, surely").unwrap_err();
        assert!(err.contains("no such speaker"), "{err}");
        // The failed tone does not block the next one.
        assert!(m.test_tone("no such speaker, surely").is_err());
        assert!(m.test_tone("none").unwrap_err().contains("None"));
    }
}
