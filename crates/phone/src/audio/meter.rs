//! The level of an input device, for the settings' level meter: the user sees that the
//! microphone they chose hears them before they call anyone.

use super::AudioError;
use super::device::{StreamThread, build_input};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// An open input device whose peak level is read from time to time; dropping it closes
/// the device.
pub struct InputMeter {
    /// The highest |sample| (0.0..=1.0) since the last read, as f32 bits.
    peak: Arc<AtomicU32>,
    thread: StreamThread,
}

pub(super) fn raise(peak: &AtomicU32, value: f32) {
    let _ = peak.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        (value > f32::from_bits(old)).then_some(value.to_bits())
    });
}

impl InputMeter {
    /// Opens the default input (`None` or "default") or the one named.
    pub fn open(name: Option<&str>) -> Result<Self, AudioError> {
        let name = name.map(str::to_owned);
        let peak = Arc::new(AtomicU32::new(0));
        let feed = peak.clone();
        let thread = StreamThread::start("microphone", move |health| {
            let feed = feed.clone();
            build_input(name.as_deref(), health, "microphone", move |samples| {
                raise(&feed, samples.fold(0.0f32, |m, s| m.max(s.abs())).min(1.0))
            })
        })?;
        Ok(Self { peak, thread })
    }

    /// True while the device is gone (unplugged): the level reads as silence then, and
    /// the meter reopens the device when it is back.
    pub fn device_lost(&self) -> bool {
        self.thread.health.is_lost()
    }

    /// The peak since the last call, 0.0 (silence) to 1.0 (full scale).
    pub fn take_peak(&self) -> f32 {
        f32::from_bits(self.peak.swap(0, Ordering::Relaxed))
    }

    /// The same peak in dBFS (−96 for silence), what a meter's scale shows.
    pub fn take_peak_dbfs(&self) -> f32 {
        dbfs(self.take_peak())
    }
}

/// A peak (0..=1) in dBFS, −96 for silence.
pub(super) fn dbfs(peak: f32) -> f32 {
    if peak <= 1.0 / 65536.0 { -96.0 } else { 20.0 * peak.log10() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn peaks_only_rise_between_reads() {
        let peak = std::sync::atomic::AtomicU32::new(0);
        super::raise(&peak, 0.5);
        super::raise(&peak, 0.25);
        assert_eq!(f32::from_bits(peak.load(std::sync::atomic::Ordering::Relaxed)), 0.5);
    }

    #[test]
    fn a_missing_device_is_an_error_not_a_panic() {
        let err = super::InputMeter::open(Some("no such device, surely")).err();
        assert!(err.is_some_and(|e| e.to_string().contains("no audio input device named")));
    }
}
