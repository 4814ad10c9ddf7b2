//! Packet-loss concealment for codecs without their own: the last good frame again,
//! fading by half each time, then silence.

#[derive(Debug, Default)]
pub struct Concealer {
    last: Vec<i16>,
    run: u32,
}

impl Concealer {
    /// Frames after which a loss is plain silence.
    const MAX_RUN: u32 = 4;

    /// Remembers a frame that really arrived.
    pub fn good(&mut self, frame: &[i16]) {
        self.last.clear();
        self.last.extend_from_slice(frame);
        self.run = 0;
    }

    /// Fills `out` with `len` samples standing in for a lost frame.
    pub fn conceal(&mut self, len: usize, out: &mut Vec<i16>) {
        self.run += 1;
        if self.run > Self::MAX_RUN || self.last.is_empty() {
            out.extend(std::iter::repeat_n(0, len));
            return;
        }
        let shift = self.run;
        out.extend((0..len).map(|i| self.last.get(i % self.last.len()).map_or(0, |s| s >> shift)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_fade_to_silence() {
        let mut c = Concealer::default();
        c.good(&[1000; 160]);
        let mut out = Vec::new();
        c.conceal(160, &mut out);
        assert_eq!(out[0], 500);
        for _ in 0..5 {
            out.clear();
            c.conceal(160, &mut out);
        }
        assert!(out.iter().all(|s| *s == 0));
    }
}
