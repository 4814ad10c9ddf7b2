//! Input validators, public so the CLI and admin API can reject bad input with the same
//! words the store would use, before opening a transaction.
//!
//! The schema repeats the cheapest of these rules as CHECK constraints, so rows written by
//! another tool cannot break the invariants the call logic relies on.

use super::StoreError;

/// Longest extension accepted; long enough for "reception2" or E.164-like numbers.
pub const MAX_EXTENSION_LEN: usize = 32;
/// Longest tenant name accepted.
pub const MAX_TENANT_NAME_LEN: usize = 64;
/// Longest display name accepted.
pub const MAX_DISPLAY_NAME_LEN: usize = 128;

/// An extension is 1–32 ASCII letters or digits. It is the user part of SIP URIs, so
/// anything needing escaping (spaces, `@`, `;`) is refused rather than handled everywhere.
pub fn validate_extension(ext: &str) -> Result<(), StoreError> {
    if ext.is_empty()
        || ext.len() > MAX_EXTENSION_LEN
        || !ext.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(StoreError::Invalid(format!(
            "invalid extension {ext:?}: use 1 to {MAX_EXTENSION_LEN} letters or digits"
        )));
    }
    Ok(())
}

/// Checks a SIP domain and returns its canonical form: lower-cased, without a trailing dot.
///
/// Domains are compared case-insensitively (RFC 3261 §19.1.4), so one canonical spelling is
/// stored and looked up. Single-label names ("pbx", "localhost") and IPv4 literals are
/// accepted: a small office may well run `hark pbx init --domain 192.168.1.10`.
pub fn normalize_domain(domain: &str) -> Result<String, StoreError> {
    let d = canonical_domain(domain);
    let bad = |why: &str| StoreError::Invalid(format!("invalid domain {domain:?}: {why}"));
    if d.is_empty() {
        return Err(bad("it is empty"));
    }
    if d.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("each dot-separated label must be 1 to 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad("use letters, digits, '-' and '.' only"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label cannot start or end with '-'"));
        }
    }
    Ok(d)
}

/// Lookup form of a domain taken from a request: no validation (an invalid domain simply
/// matches no tenant), only the same canonicalization that `normalize_domain` applies.
pub(super) fn canonical_domain(domain: &str) -> String {
    let d = domain.trim();
    d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase()
}

/// A tenant name is what admins type after `--tenant`: 1–64 printable characters without
/// leading or trailing spaces.
pub fn validate_tenant_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.chars().count() > MAX_TENANT_NAME_LEN
        || name.trim() != name
        || name.chars().any(char::is_control)
    {
        return Err(StoreError::Invalid(format!(
            "invalid tenant name {name:?}: use 1 to {MAX_TENANT_NAME_LEN} printable characters"
        )));
    }
    Ok(())
}

/// Display names end up in From headers and the console; control characters would allow
/// header injection, so they are refused here.
pub fn validate_display_name(name: &str) -> Result<(), StoreError> {
    if name.chars().count() > MAX_DISPLAY_NAME_LEN || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "invalid display name {name:?}: at most {MAX_DISPLAY_NAME_LEN} printable characters"
        )));
    }
    Ok(())
}

/// HA1 values are hex digests (32 digits for MD5, 64 for SHA-256). Digest auth hashes the
/// lower-case hex text, so the canonical lower-case form is returned and stored.
pub(super) fn normalize_ha1(value: &str, hex_len: usize, algo: &str) -> Result<String, StoreError> {
    if value.len() != hex_len || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Invalid(format!(
            "invalid {algo} HA1: expected {hex_len} hex digits"
        )));
    }
    Ok(value.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        for ok in ["1", "101", "alice", "Reception2", &"9".repeat(32)] {
            assert!(validate_extension(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1 01", "10@1", "a;b", "ü", &"9".repeat(33), "+4930"] {
            assert!(matches!(validate_extension(bad), Err(StoreError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn domains() {
        assert_eq!(normalize_domain("PBX.Example.COM.").unwrap(), "pbx.example.com");
        assert_eq!(normalize_domain("localhost").unwrap(), "localhost");
        assert_eq!(normalize_domain("192.168.1.10").unwrap(), "192.168.1.10");
        for bad in ["", ".", "a..b", "-a.b", "a-.b", "a b", "a_b.c", "[::1]", &"a".repeat(64)] {
            assert!(matches!(normalize_domain(bad), Err(StoreError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn tenant_and_display_names() {
        assert!(validate_tenant_name("Office Berlin").is_ok());
        assert!(validate_tenant_name(" office").is_err());
        assert!(validate_tenant_name("").is_err());
        assert!(validate_tenant_name("a\nb").is_err());
        assert!(validate_display_name("").is_ok());
        assert!(validate_display_name("Alice\r\nX-Evil: 1").is_err());
    }

    #[test]
    fn ha1() {
        assert_eq!(normalize_ha1(&"AB".repeat(16), 32, "MD5").unwrap(), "ab".repeat(16));
        assert!(normalize_ha1("xyz", 32, "MD5").is_err());
        assert!(normalize_ha1(&"a".repeat(63), 64, "SHA-256").is_err());
    }
}
