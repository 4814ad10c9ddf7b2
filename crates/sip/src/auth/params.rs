//! The `Digest` auth-param list shared by all four auth headers (RFC 3261 §25.1):
//! `Digest name=token, name="quoted \"string\"", ...`, and the quoting used to print it.
//!
//! Strict where laxness would be dangerous (control characters, which would allow header
//! injection when a value is printed again), lenient where real peers differ harmlessly
//! (quoted or unquoted values for any parameter, empty list elements per RFC 7230 §7).

use std::borrow::Cow;

/// Longest header value accepted, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
/// Most auth-params accepted in one header value.
pub const MAX_PARAMS: usize = 32;

/// Why a Digest header value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header value of {0} bytes exceeds the limit of {MAX_HEADER_VALUE_BYTES}")]
    TooLong(usize),
    #[error("more than {MAX_PARAMS} parameters")]
    TooManyParams,
    #[error("authentication scheme is not Digest")]
    NotDigest,
    #[error("syntax error at byte {0}")]
    Syntax(usize),
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("parameter {0:?} appears more than once")]
    DuplicateParam(String),
    #[error("missing parameter {0}")]
    MissingParam(&'static str),
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("invalid nonce count {0:?} (must be 8 hex digits)")]
    BadNonceCount(String),
}

/// One auth-param; the value is unquoted and unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Param<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

/// Parses `Digest` followed by its parameter list. Never panics; every index used for
/// slicing sits on an ASCII byte, hence on a char boundary.
pub(crate) fn parse_digest_params(input: &str) -> Result<Vec<Param<'_>>, HeaderError> {
    if input.len() > MAX_HEADER_VALUE_BYTES {
        return Err(HeaderError::TooLong(input.len()));
    }
    let b = input.as_bytes();
    let start = skip_ws(b, 0);
    let scheme_end = scan_token(b, start);
    if !input[start..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(HeaderError::NotDigest);
    }
    let mut i = skip_ws(b, scheme_end);
    if i == scheme_end && i < b.len() {
        return Err(HeaderError::Syntax(i));
    }

    let mut params: Vec<Param<'_>> = Vec::new();
    loop {
        // Empty list elements ("a=1,,b=2") are allowed by the #rule.
        loop {
            i = skip_ws(b, i);
            if i < b.len() && b[i] == b',' {
                i += 1;
            } else {
                break;
            }
        }
        if i == b.len() {
            return Ok(params);
        }

        let name_end = scan_token(b, i);
        if name_end == i {
            return Err(HeaderError::Syntax(i));
        }
        let name = &input[i..name_end];
        i = skip_ws(b, name_end);
        if b.get(i) != Some(&b'=') {
            return Err(HeaderError::Syntax(i));
        }
        i = skip_ws(b, i + 1);
        let (value, next) = if b.get(i) == Some(&b'"') {
            parse_quoted(input, i)?
        } else {
            let end = scan_token(b, i);
            if end == i {
                return Err(HeaderError::Syntax(i));
            }
            (Cow::Borrowed(&input[i..end]), end)
        };

        if params.len() == MAX_PARAMS {
            return Err(HeaderError::TooManyParams);
        }
        if params.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
            return Err(HeaderError::DuplicateParam(name.to_ascii_lowercase()));
        }
        params.push(Param { name, value });

        i = skip_ws(b, next);
        if i < b.len() && b[i] != b',' {
            return Err(HeaderError::Syntax(i));
        }
    }
}

/// Parses the quoted-string whose opening quote is at `open`; returns the unescaped
/// content and the index after the closing quote.
fn parse_quoted(input: &str, open: usize) -> Result<(Cow<'_, str>, usize), HeaderError> {
    let b = input.as_bytes();
    // Unescaped content borrows; only a value with quoted-pairs allocates.
    let mut owned: Option<String> = None;
    let mut segment = open + 1;
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let value = match owned {
                    None => Cow::Borrowed(&input[segment..i]),
                    Some(mut s) => {
                        s.push_str(&input[segment..i]);
                        Cow::Owned(s)
                    }
                };
                return Ok((value, i + 1));
            }
            b'\\' => {
                let escaped = *b.get(i + 1).ok_or(HeaderError::UnterminatedQuote)?;
                // RFC 3261's quoted-pair is ASCII only; escaped controls are refused
                // for the same reason as bare ones.
                if !(escaped == b'\t' || (0x20..0x7f).contains(&escaped)) {
                    return Err(HeaderError::Syntax(i + 1));
                }
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&input[segment..i]);
                s.push(char::from(escaped));
                i += 2;
                segment = i;
            }
            c if is_forbidden_control(c) => return Err(HeaderError::Syntax(i)),
            _ => i += 1,
        }
    }
    Err(HeaderError::UnterminatedQuote)
}

/// ASCII controls other than HTAB cannot appear in a quoted-string.
fn is_forbidden_control(c: u8) -> bool {
    (c < 0x20 && c != b'\t') || c == 0x7f
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

fn scan_token(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_token_char(b[i]) {
        i += 1;
    }
    i
}

/// RFC 3261 §25.1 token characters.
fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

/// Appends `value` as a quoted-string. ASCII controls other than HTAB have no
/// representation there; they are dropped rather than let through, since a CR or LF
/// would split the header. A value that loses characters no longer matches its digest,
/// which fails safe.
pub(crate) fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for ch in value.chars() {
        match ch {
            '"' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            c if c.is_ascii() && is_forbidden_control(c as u8) => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `value` bare if it is a token, else quoted: for parameters whose grammar is
/// a token but whose value came from a caller.
pub(crate) fn push_token(out: &mut String, value: &str) {
    if !value.is_empty() && value.bytes().all(is_token_char) {
        out.push_str(value);
    } else {
        push_quoted(out, value);
    }
}

/// Builds `Digest a="..", b=..` one parameter at a time.
pub(crate) struct ParamWriter {
    out: String,
    first: bool,
}

impl ParamWriter {
    pub fn new() -> Self {
        Self { out: String::from("Digest "), first: true }
    }

    fn name(&mut self, name: &str) {
        if !self.first {
            self.out.push_str(", ");
        }
        self.first = false;
        self.out.push_str(name);
        self.out.push('=');
    }

    pub fn quoted(&mut self, name: &str, value: &str) {
        self.name(name);
        push_quoted(&mut self.out, value);
    }

    pub fn token(&mut self, name: &str, value: &str) {
        self.name(name);
        push_token(&mut self.out, value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(input: &str) -> Result<Vec<(String, String)>, HeaderError> {
        parse_digest_params(input)
            .map(|ps| ps.into_iter().map(|p| (p.name.to_owned(), p.value.into_owned())).collect())
    }

    #[test]
    fn parses_tokens_quoted_strings_and_escapes() {
        let got = pairs(r#"Digest a=b, c="d, e", f = "x \"y\" \\z",g=h"#).unwrap();
        let want = [("a", "b"), ("c", "d, e"), ("f", r#"x "y" \z"#), ("g", "h")];
        assert_eq!(got, want.map(|(n, v)| (n.to_owned(), v.to_owned())));
    }

    #[test]
    fn scheme_is_case_insensitive_and_required() {
        assert!(pairs("dIgEsT a=b").is_ok());
        assert_eq!(pairs("Basic a=b"), Err(HeaderError::NotDigest));
        assert_eq!(pairs("Digesta=b"), Err(HeaderError::NotDigest));
        assert_eq!(pairs(""), Err(HeaderError::NotDigest));
        assert_eq!(pairs("Digest"), Ok(vec![]));
    }

    #[test]
    fn tolerates_empty_list_elements() {
        assert_eq!(pairs("Digest ,a=1,, ,b=2,").unwrap().len(), 2);
    }

    #[test]
    fn refuses_malformed_input() {
        assert_eq!(pairs("Digest a"), Err(HeaderError::Syntax(8)));
        assert_eq!(pairs("Digest a="), Err(HeaderError::Syntax(9)));
        assert_eq!(pairs("Digest a=b c=d"), Err(HeaderError::Syntax(11)));
        assert_eq!(pairs(r#"Digest a="b"#), Err(HeaderError::UnterminatedQuote));
        assert_eq!(pairs(r#"Digest a="b\"#), Err(HeaderError::UnterminatedQuote));
        assert_eq!(pairs("Digest a=\"b\r\nX: y\""), Err(HeaderError::Syntax(11)));
        assert_eq!(pairs("Digest a=\"b\\\n\""), Err(HeaderError::Syntax(12)));
        assert_eq!(pairs("Digest a=1, A=2"), Err(HeaderError::DuplicateParam("a".into())));
        assert_eq!(pairs("Digest a=<b>"), Err(HeaderError::Syntax(9)));
    }

    #[test]
    fn enforces_size_limits() {
        let long = format!("Digest a=\"{}\"", "x".repeat(MAX_HEADER_VALUE_BYTES));
        assert_eq!(pairs(&long), Err(HeaderError::TooLong(long.len())));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|n| format!("p{n}=1")).collect();
        assert_eq!(pairs(&format!("Digest {}", many.join(","))), Err(HeaderError::TooManyParams));
        let enough = &many[..MAX_PARAMS];
        assert!(pairs(&format!("Digest {}", enough.join(","))).is_ok());
    }

    #[test]
    fn printing_drops_controls_and_quotes_non_tokens() {
        let mut w = ParamWriter::new();
        w.quoted("u", "a\r\nb\"c");
        w.token("t", "auth");
        w.token("q", "not a token");
        assert_eq!(w.finish(), r#"Digest u="ab\"c", t=auth, q="not a token""#);
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in any::<String>()) {
            let _ = parse_digest_params(&s);
            let _ = parse_digest_params(&format!("Digest {s}"));
        }

        #[test]
        fn digest_like_input_never_panics(s in r#"Digest[ ,a-z=\\"\t\r\né]{0,80}"#) {
            let _ = parse_digest_params(&s);
        }

        #[test]
        fn quoted_strings_round_trip(v in any::<String>().prop_filter(
            "no ASCII controls except HTAB",
            |v| !v.bytes().any(is_forbidden_control),
        )) {
            let mut w = ParamWriter::new();
            w.quoted("v", &v);
            let printed = w.finish();
            let parsed = parse_digest_params(&printed).unwrap();
            prop_assert_eq!(parsed.len(), 1);
            prop_assert_eq!(parsed[0].value.as_ref(), v.as_str());
        }
    }
}
