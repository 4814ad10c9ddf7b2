//! Newtypes for SIP protocol identifiers, so a Call-ID is never passed where a tag is meant.

use rand::Rng;
use std::fmt;

/// RFC 3261 §8.1.1.7: branches that start with this cookie are globally unique.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

string_id!(
    /// The Call-ID header value.
    CallId
);
string_id!(
    /// A From or To tag.
    Tag
);
string_id!(
    /// A Via branch parameter.
    Branch
);

impl CallId {
    pub fn random() -> Self {
        Self(random_token(24))
    }
}

impl Tag {
    pub fn random() -> Self {
        Self(random_token(12))
    }
}

impl Branch {
    /// A new RFC 3261 branch, magic cookie first.
    pub fn random() -> Self {
        Self(format!("{MAGIC_COOKIE}{}", random_token(16)))
    }

    pub fn is_rfc3261(&self) -> bool {
        self.0.starts_with(MAGIC_COOKIE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_differ_and_branches_carry_the_cookie() {
        assert_ne!(CallId::random(), CallId::random());
        assert_ne!(Tag::random(), Tag::random());
        let b = Branch::random();
        assert!(b.is_rfc3261(), "{b}");
        assert!(!Branch::new("abc").is_rfc3261());
    }
}
