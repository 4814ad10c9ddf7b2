//! Feature codes typed during a call (SPEC §1: `*48` pauses recording, `*49` resumes).
//!
//! [`FeatureCodes`] keeps the last digits typed and reports a code the moment its last
//! digit arrives, wherever the code starts: `*4*48` and `1*48` both match `*48`. A gap
//! longer than the inter-digit timeout (default 3 s) between two digits starts the
//! sequence afresh; a gap of exactly the timeout still counts. After a match the
//! sequence starts afresh, so `*48*49` gives Pause then Resume.

use super::{DtmfError, normalize_digit};

/// Longest feature code.
pub const MAX_CODE_LEN: usize = 8;
/// Default inter-digit timeout.
pub const DEFAULT_INTER_DIGIT_TIMEOUT_MS: u64 = 3_000;

/// What a feature code asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureCode {
    /// Pause all recordings of the call (default `*48`).
    Pause,
    /// Resume them (default `*49`).
    Resume,
}

/// One configured code, as DTMF bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Code {
    digits: [u8; MAX_CODE_LEN],
    len: usize,
    action: FeatureCode,
}

impl Code {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.len.min(MAX_CODE_LEN)]
    }
}

/// A sans-IO matcher for feature codes in a stream of digits. Allocates only when
/// constructed.
#[derive(Debug, Clone)]
pub struct FeatureCodes {
    codes: Vec<Code>,
    timeout_ms: u64,
    typed: [u8; MAX_CODE_LEN],
    len: usize,
    last_at: Option<u64>,
}

impl Default for FeatureCodes {
    /// `*48` → Pause, `*49` → Resume, 3 s inter-digit timeout.
    fn default() -> Self {
        let code = |s: &[u8], action| {
            let mut digits = [0; MAX_CODE_LEN];
            digits[..s.len()].copy_from_slice(s);
            Code {
                digits,
                len: s.len(),
                action,
            }
        };
        FeatureCodes {
            codes: vec![
                code(b"*48", FeatureCode::Pause),
                code(b"*49", FeatureCode::Resume),
            ],
            timeout_ms: DEFAULT_INTER_DIGIT_TIMEOUT_MS,
            typed: [0; MAX_CODE_LEN],
            len: 0,
            last_at: None,
        }
    }
}

impl FeatureCodes {
    /// The default codes (`*48` Pause, `*49` Resume) and timeout (3 s).
    pub fn new() -> Self {
        Self::default()
    }

    /// Custom codes (1–8 DTMF keys each; `a`–`d` are taken as `A`–`D`) and timeout. No
    /// code may equal another or be a prefix of another.
    pub fn with_codes(codes: &[(&str, FeatureCode)], timeout_ms: u64) -> Result<Self, DtmfError> {
        let mut parsed: Vec<Code> = Vec::with_capacity(codes.len());
        for &(text, action) in codes {
            let invalid = || DtmfError::InvalidFeatureCode(text.to_owned());
            let mut digits = [0u8; MAX_CODE_LEN];
            let mut len = 0;
            for c in text.chars() {
                let d = normalize_digit(c).ok_or_else(invalid)?;
                *digits.get_mut(len).ok_or_else(invalid)? = d as u8;
                len += 1;
            }
            if len == 0 {
                return Err(invalid());
            }
            let code = Code {
                digits,
                len,
                action,
            };
            if let Some(other) = parsed.iter().find(|o| {
                o.digits().starts_with(code.digits()) || code.digits().starts_with(o.digits())
            }) {
                let name = |c: &Code| String::from_utf8_lossy(c.digits()).into_owned();
                return Err(DtmfError::OverlappingFeatureCodes(name(other), name(&code)));
            }
            parsed.push(code);
        }
        Ok(FeatureCodes {
            codes: parsed,
            timeout_ms,
            ..Self::default()
        })
    }

    /// The inter-digit timeout.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// Forgets the digits typed so far.
    pub fn reset(&mut self) {
        self.len = 0;
        self.last_at = None;
    }

    /// Takes one digit typed at `at_ms` (any monotonic ms clock of the caller's; a time
    /// earlier than the previous digit's counts as no gap). Returns the code it
    /// completes, if any. A character that is no DTMF key clears the sequence.
    pub fn push(&mut self, digit: char, at_ms: u64) -> Option<FeatureCode> {
        if let Some(last) = self.last_at
            && at_ms.saturating_sub(last) > self.timeout_ms
        {
            self.len = 0;
        }
        self.last_at = Some(at_ms);
        let Some(d) = normalize_digit(digit) else {
            self.len = 0;
            return None;
        };
        if self.len == MAX_CODE_LEN {
            self.typed.copy_within(1.., 0);
            self.len -= 1;
        }
        self.typed[self.len] = d as u8;
        self.len += 1;
        let typed = &self.typed[..self.len];
        let action = self
            .codes
            .iter()
            .filter(|c| typed.ends_with(c.digits()))
            .max_by_key(|c| c.len)
            .map(|c| c.action)?;
        self.len = 0;
        Some(action)
    }
}
