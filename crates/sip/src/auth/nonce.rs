//! Self-validating nonces: nothing is stored when one is issued, so unanswered
//! challenges (a flood of unauthenticated REGISTERs) cost no memory.
//!
//! A nonce is hex(issued || id || tag) where `issued` is whole seconds since the
//! server's base instant (u32), `id` a random u64 that keys the replay record, and
//! `tag` the first 12 bytes of HMAC-SHA256(secret, instance || issued || id).

use hmac::{Hmac, Mac};
use sha2::Sha256;

const TAG_LEN: usize = 12;
const RAW_LEN: usize = 4 + 8 + TAG_LEN;
/// Length of a nonce as printed.
pub(crate) const NONCE_HEX_LEN: usize = RAW_LEN * 2;

/// What a genuine nonce carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NonceStamp {
    pub issued_secs: u32,
    pub id: u64,
}

pub(crate) struct NonceCodec {
    /// Keyed once; cloning a keyed HMAC is cheaper than re-keying per nonce.
    mac: Hmac<Sha256>,
    /// Random per codec. Issue times are relative to an `Instant` that means nothing
    /// to another process, and the replay records die with the process, so a nonce
    /// from before a restart must not validate even when the secret is reused.
    instance: [u8; 8],
}

impl NonceCodec {
    pub fn new(secret: &[u8; 32]) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
        Self { mac, instance: rand::random::<u64>().to_be_bytes() }
    }

    pub fn issue(&self, stamp: NonceStamp) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..4].copy_from_slice(&stamp.issued_secs.to_be_bytes());
        raw[4..12].copy_from_slice(&stamp.id.to_be_bytes());
        let tag = self.keyed(&raw[..12]).finalize().into_bytes();
        raw[12..].copy_from_slice(&tag[..TAG_LEN]);
        hex::encode(raw)
    }

    /// The stamp of a nonce this codec issued; `None` for anything else (malformed,
    /// tampered, or from another instance). The tag check is constant-time.
    pub fn open(&self, nonce: &str) -> Option<NonceStamp> {
        if nonce.len() != NONCE_HEX_LEN {
            return None;
        }
        let mut raw = [0u8; RAW_LEN];
        hex::decode_to_slice(nonce, &mut raw).ok()?;
        self.keyed(&raw[..12]).verify_truncated_left(&raw[12..]).ok()?;
        let issued_secs = u32::from_be_bytes(raw[..4].try_into().ok()?);
        let id = u64::from_be_bytes(raw[4..12].try_into().ok()?);
        Some(NonceStamp { issued_secs, id })
    }

    fn keyed(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(&self.instance);
        mac.update(body);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_issued_and_nothing_else() {
        let codec = NonceCodec::new(&[7; 32]);
        let stamp = NonceStamp { issued_secs: 1234, id: 0xdead_beef_cafe_f00d };
        let nonce = codec.issue(stamp);
        assert_eq!(nonce.len(), NONCE_HEX_LEN);
        assert_eq!(codec.open(&nonce), Some(stamp));
        assert_eq!(codec.open(&nonce.to_uppercase()), Some(stamp));

        // Any single changed digit breaks it.
        for i in 0..nonce.len() {
            let mut bytes = nonce.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            assert_eq!(codec.open(std::str::from_utf8(&bytes).unwrap()), None, "digit {i}");
        }
        assert_eq!(codec.open(""), None);
        assert_eq!(codec.open(&nonce[2..]), None);
        assert_eq!(codec.open(&format!("{}zz", &nonce[2..])), None);

        // Same secret, another instance (a restart): refused.
        assert_eq!(NonceCodec::new(&[7; 32]).open(&nonce), None);
    }
}
