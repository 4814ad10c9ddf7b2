//! The null device: silence in, nothing out.

use super::{AudioError, AudioSink, AudioSource};

pub struct NullSource;

impl AudioSource for NullSource {
    fn read_frame(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
}

pub struct NullSink;

impl AudioSink for NullSink {
    fn write_frame(&mut self, _pcm: &[i16]) -> Result<(), AudioError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        Ok(())
    }
}
