//! ITU-T G.722 sub-band ADPCM at 64 kbit/s: 16 kHz 16-bit PCM ↔ one byte per two
//! samples. The input is split by a 24-tap QMF into a low band (6-bit ADPCM) and a high
//! band (2-bit ADPCM); each band has an adaptive quantizer scale and a pole-zero
//! predictor (the recommendation's blocks 1–6). Written from the algorithm; the tables are
//! the recommendation's constants.
//!
//! RTP note (RFC 3551 §4.5.2): G.722's RTP clock rate is 8000 although it samples at
//! 16 kHz, so a 20 ms packet has 160 bytes, 320 samples, and advances the RTP timestamp by
//! 160.

/// QMF coefficients (the recommendation's 24-tap filter, symmetric halves).
const QMF_COEFFS: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Low band: quantizer decision levels (6-bit), scaled by the step size.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
/// Low band: codes for negative / positive differences by decision interval.
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
/// Low band: log scale factor increments, and the 4-bit code → increment index map.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Inverse log table for the scale factor.
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Low band inverse quantizers: 4-bit (predictor path) and 6-bit (output path).
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// High band: 2-bit codes, inverse quantizer, log scale factor increments.
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];

fn saturate(v: i32) -> i32 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// Adaptive predictor and scale state of one sub-band.
#[derive(Debug, Clone, Default)]
struct Band {
    /// Predicted signal, pole and zero parts.
    s: i32,
    sp: i32,
    sz: i32,
    /// Reconstructed signal history.
    r: [i32; 3],
    /// Pole coefficients (and their updates).
    a: [i32; 3],
    ap: [i32; 3],
    /// Partial reconstruction history.
    p: [i32; 3],
    /// Quantized difference history.
    d: [i32; 7],
    /// Zero coefficients (and their updates).
    b: [i32; 7],
    bp: [i32; 7],
    sg: [i32; 7],
    /// Log scale factor and step size.
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Band {
            det,
            ..Band::default()
        }
    }

    /// Block 4: reconstruct, adapt the pole (UPPOL1/2) and zero (UPZERO) predictor
    /// coefficients, shift the delay lines, and compute the next prediction.
    fn update(&mut self, d: i32) {
        // RECONS, PARREC
        self.d[0] = d;
        self.r[0] = saturate(self.s + d);
        self.p[0] = saturate(self.sz + d);

        // UPPOL2
        for i in 0..3 {
            self.sg[i] = self.p[i] >> 15;
        }
        let wd1 = saturate(self.a[1] << 2);
        let mut wd2 = if self.sg[0] == self.sg[1] { -wd1 } else { wd1 };
        wd2 = wd2.min(32767);
        let mut wd3 = (wd2 >> 7) + if self.sg[0] == self.sg[2] { 128 } else { -128 };
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);

        // UPPOL1
        self.sg[0] = self.p[0] >> 15;
        self.sg[1] = self.p[1] >> 15;
        let wd1 = if self.sg[0] == self.sg[1] { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        self.ap[1] = saturate(wd1 + wd2);
        let limit = saturate(15360 - self.ap[2]);
        self.ap[1] = self.ap[1].clamp(-limit, limit);

        // UPZERO
        let step = if d == 0 { 0 } else { 128 };
        self.sg[0] = d >> 15;
        for i in 1..7 {
            self.sg[i] = self.d[i] >> 15;
            let wd2 = if self.sg[i] == self.sg[0] {
                step
            } else {
                -step
            };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.bp[i] = saturate(wd2 + wd3);
        }

        // DELAYA
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }

        // FILTEP
        let wd1 = (self.a[1] * saturate(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * saturate(self.r[2] + self.r[2])) >> 15;
        self.sp = saturate(wd1 + wd2);

        // FILTEZ
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = saturate(sz);

        // PREDIC
        self.s = saturate(self.sp + self.sz);
    }

    /// LOGSCL/SCALEL (low band): adapt the step size from the 4-bit code.
    fn scale_low(&mut self, ril: usize) {
        let wd = (self.nb * 127) >> 7;
        self.nb = (wd + WL[RL42[ril] as usize]).clamp(0, 18432);
        self.det = scale(self.nb, 8);
    }

    /// LOGSCH/SCALEH (high band).
    fn scale_high(&mut self, ihigh: usize) {
        let wd = (self.nb * 127) >> 7;
        self.nb = (wd + WH[RH2[ihigh] as usize]).clamp(0, 22528);
        self.det = scale(self.nb, 10);
    }
}

/// Step size from the log scale factor: `ILB[(nb >> 6) & 31]` shifted by `base - nb/2048`.
fn scale(nb: i32, base: i32) -> i32 {
    let wd1 = ((nb >> 6) & 31) as usize;
    let shift = base - (nb >> 11);
    let wd3 = if shift < 0 {
        ILB[wd1] << -shift
    } else {
        ILB[wd1] >> shift
    };
    wd3 << 2
}

/// G.722 encoder: 16 kHz PCM in, 64 kbit/s codes out.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    band: [Band; 2],
    x: [i32; 24],
    /// An odd sample left over from the previous call.
    pending: Option<i16>,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    pub fn new() -> Self {
        G722Encoder {
            band: [Band::new(32), Band::new(8)],
            x: [0; 24],
            pending: None,
        }
    }

    /// Encodes 16 kHz samples, appending one byte per two samples to `out`. An odd last
    /// sample is kept for the next call.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        let mut samples = pcm.iter().copied();
        if let Some(first) = self.pending.take() {
            match samples.next() {
                Some(second) => out.push(self.encode_pair(first, second)),
                None => {
                    self.pending = Some(first);
                    return;
                }
            }
        }
        loop {
            match (samples.next(), samples.next()) {
                (Some(a), Some(b)) => out.push(self.encode_pair(a, b)),
                (Some(a), None) => {
                    self.pending = Some(a);
                    break;
                }
                _ => break,
            }
        }
    }

    fn encode_pair(&mut self, s0: i16, s1: i16) -> u8 {
        // Transmit QMF: split into low and high band at 8 kHz.
        self.x.copy_within(2.., 0);
        self.x[22] = i32::from(s0);
        self.x[23] = i32::from(s1);
        let mut sumodd = 0i32;
        let mut sumeven = 0i32;
        for i in 0..12 {
            sumodd += self.x[2 * i] * QMF_COEFFS[i];
            sumeven += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
        }
        let xlow = (sumeven + sumodd) >> 14;
        let xhigh = (sumeven - sumodd) >> 14;

        // Low band: SUBTRA, QUANTL
        let low = &mut self.band[0];
        let el = saturate(xlow - low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 {
            if wd < (Q6[i] * low.det) >> 12 {
                break;
            }
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        // INVQAL, LOGSCL/SCALEL, block 4
        let ril = (ilow >> 2) as usize;
        let dlow = (low.det * QM4[ril]) >> 15;
        low.scale_low(ril);
        low.update(dlow);

        // High band: SUBTRA, QUANTH
        let high = &mut self.band[1];
        let eh = saturate(xhigh - high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * high.det) >> 12 { 2 } else { 1 };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] } as usize;
        // INVQAH, LOGSCH/SCALEH, block 4
        let dhigh = (high.det * QM2[ihigh]) >> 15;
        high.scale_high(ihigh);
        high.update(dhigh);

        (((ihigh as i32) << 6) | ilow) as u8
    }
}

/// G.722 decoder: 64 kbit/s codes in, 16 kHz PCM out (two samples per byte).
#[derive(Debug, Clone)]
pub struct G722Decoder {
    band: [Band; 2],
    x: [i32; 24],
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    pub fn new() -> Self {
        G722Decoder {
            band: [Band::new(32), Band::new(8)],
            x: [0; 24],
        }
    }

    /// Decodes `codes`, appending two 16 kHz samples per byte to `out`.
    pub fn decode(&mut self, codes: &[u8], out: &mut Vec<i16>) {
        out.reserve(codes.len() * 2);
        for &code in codes {
            let (a, b) = self.decode_byte(code);
            out.push(a);
            out.push(b);
        }
    }

    fn decode_byte(&mut self, code: u8) -> (i16, i16) {
        let ilow6 = usize::from(code & 0x3f);
        let ihigh = usize::from(code >> 6);

        // Low band: INVQBL, RECONS, LIMIT (output path, 6-bit).
        let low = &mut self.band[0];
        let rlow = (low.s + ((low.det * QM6[ilow6]) >> 15)).clamp(-16384, 16383);
        // INVQAL (predictor path, 4-bit), LOGSCL/SCALEL, block 4.
        let ril = ilow6 >> 2;
        let dlow = (low.det * QM4[ril]) >> 15;
        low.scale_low(ril);
        low.update(dlow);

        // High band: INVQAH, RECONS, LIMIT, LOGSCH/SCALEH, block 4.
        let high = &mut self.band[1];
        let dhigh = (high.det * QM2[ihigh]) >> 15;
        let rhigh = (dhigh + high.s).clamp(-16384, 16383);
        high.scale_high(ihigh);
        high.update(dhigh);

        // Receive QMF: recombine the bands at 16 kHz.
        self.x.copy_within(2.., 0);
        self.x[22] = rlow + rhigh;
        self.x[23] = rlow - rhigh;
        let mut xout1 = 0i32;
        let mut xout2 = 0i32;
        for i in 0..12 {
            xout2 += self.x[2 * i] * QMF_COEFFS[i];
            xout1 += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
        }
        (saturate(xout1 >> 11) as i16, saturate(xout2 >> 11) as i16)
    }
}
