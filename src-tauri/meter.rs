//! Settings' audio checks: the chosen microphone's level meter (hark-phone's InputMeter)
//! and a test tone on the chosen speaker (rodio). The meter's device is open only while
//! the Settings view reads it: the view closes it when it goes, and a watchdog closes it
//! when nobody has read it for a while (a hidden window, a reloaded page), so no device
//! stays open and nothing runs when idle.

use hark_phone::audio::meter::InputMeter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
            // rodio's OutputStream is not Send: it is made, used and dropped here.
            let opened = open_output(name.as_deref())
                .and_then(|(stream, handle)| rodio::Sink::try_new(&handle).map(|s| (stream, s)).map_err(|e| format!("cannot play on the speaker: {e}")));
            match opened {
                Ok((_stream, sink)) => {
                    use rodio::Source;
                    let _ = tx.send(Ok(()));
                    sink.append(rodio::source::SineWave::new(440.0).take_duration(Duration::from_secs(1)).amplify(0.2));
                    sink.sleep_until_end();
                    me.tone_playing.store(false, Ordering::Release);
                }
                Err(e) => {
                    // Free for the next click before the caller hears of the failure.
                    me.tone_playing.store(false, Ordering::Release);
                    let _ = tx.send(Err(e));
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

fn open_output(name: Option<&str>) -> Result<(rodio::OutputStream, rodio::OutputStreamHandle), String> {
    use rodio::cpal::traits::{DeviceTrait, HostTrait};
    match name {
        None => rodio::OutputStream::try_default().map_err(|e| format!("cannot open the default speaker: {e}")),
        Some(wanted) => {
            let host = rodio::cpal::default_host();
            let device = host
                .output_devices()
                .map_err(|e| format!("cannot list the speakers: {e}"))?
                .find(|d| d.name().is_ok_and(|n| n == wanted))
                .ok_or_else(|| format!("no speaker named {wanted:?} (unplugged?)"))?;
            rodio::OutputStream::try_from_device(&device).map_err(|e| format!("cannot open the speaker {wanted:?}: {e}"))
        }
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
