//! Turning bytes from a transport into SIP messages, with limits and typed errors.
//!
//! rsip does the grammar of start lines and header values; this module does what it does
//! not: size limits, line folding, compact header names, comma-separated header lists,
//! the RFC 3261 §18.3 Content-Length rules for datagrams and streams, and the check of
//! mandatory headers. A message that passes here can be answered without further errors.

use rsip::headers::UntypedHeader;
use rsip::message::HeadersExt;
use crate::nameaddr::NameAddr;
use rsip::SipMessage;

/// Bounds on what a peer may make us buffer or parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_headers: usize,
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_message_bytes: 65_535, max_headers: 128, max_line_bytes: 8_192 }
    }
}

/// How the transport delimits messages; it changes the Content-Length rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// UDP: one message per datagram. A missing Content-Length means "the rest of the
    /// datagram"; a shorter one truncates the body; a longer one is an error.
    Datagram,
    /// TCP/TLS: Content-Length is mandatory and delimits the message.
    Stream,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("more than {limit} header lines")]
    TooManyHeaders { limit: usize },
    #[error("a line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("no empty line ends the header section")]
    NoHeaderEnd,
    #[error("header section is not valid UTF-8")]
    NotUtf8,
    #[error("malformed start line")]
    BadStartLine,
    #[error("malformed header line")]
    BadHeaderLine,
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("Content-Length {declared} is larger than the {available} body bytes received")]
    ContentLengthTooLong { declared: usize, available: usize },
    #[error("Content-Length is mandatory on stream transports")]
    MissingContentLength,
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    #[error("unparsable message: {0}")]
    Model(String),
}

/// Parses one datagram (UDP) into a message.
pub fn parse_datagram(buf: &[u8], limits: &Limits) -> Result<SipMessage, ParseError> {
    parse_message(buf, Framing::Datagram, limits)
}

/// Parses one complete message whose end the transport already knows.
pub fn parse_message(buf: &[u8], framing: Framing, limits: &Limits) -> Result<SipMessage, ParseError> {
    if buf.len() > limits.max_message_bytes {
        return Err(ParseError::TooLarge { size: buf.len(), limit: limits.max_message_bytes });
    }
    let buf = skip_leading_crlf(buf);
    if buf.is_empty() {
        return Err(ParseError::Empty);
    }
    let head_end = find(buf, b"\r\n\r\n").ok_or(ParseError::NoHeaderEnd)?;
    let head = Head::parse(&buf[..head_end], limits)?;
    let available = &buf[head_end + 4..];
    let body = match (head.content_length, framing) {
        (Some(declared), _) if declared > available.len() => {
            return Err(ParseError::ContentLengthTooLong { declared, available: available.len() });
        }
        (Some(declared), _) => &available[..declared],
        (None, Framing::Datagram) => available,
        (None, Framing::Stream) => return Err(ParseError::MissingContentLength),
    };
    head.into_message(body)
}

fn skip_leading_crlf(mut buf: &[u8]) -> &[u8] {
    while let [b'\r', b'\n', rest @ ..] = buf {
        buf = rest;
    }
    buf
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// RFC 3261 §7.3.3 compact forms, plus the common extensions'.
fn expand_compact(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'e' => "Content-Encoding",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'f' => "From",
        b's' => "Subject",
        b'k' => "Supported",
        b't' => "To",
        b'v' => "Via",
        b'o' => "Event",
        b'u' => "Allow-Events",
        b'r' => "Refer-To",
        b'b' => "Referred-By",
        b'x' => "Session-Expires",
        _ => name,
    }
}

/// Headers whose comma-separated values rsip expects one per line.
fn is_list_header(name: &str) -> bool {
    ["Via", "Route", "Record-Route", "Contact"].iter().any(|h| h.eq_ignore_ascii_case(name))
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// Splits a header value at top-level commas: not inside quotes or angle brackets.
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_quotes, mut in_angle, mut escaped) = (0, false, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_quotes && !in_angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// A validated header section before rsip builds its model.
struct Head {
    start_line: String,
    headers: Vec<(String, String)>,
    content_length: Option<usize>,
}

impl Head {
    fn parse(head: &[u8], limits: &Limits) -> Result<Self, ParseError> {
        let text = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
        let mut lines = text.split("\r\n");
        let start_line = lines.next().ok_or(ParseError::BadStartLine)?;
        check_line(start_line, limits)?;
        if start_line.is_empty() || start_line.split(' ').count() < 3 {
            return Err(ParseError::BadStartLine);
        }
        if let Some(rest) = start_line.strip_prefix("SIP/2.0 ") {
            // §7.2: exactly three digits, 100–699 (rsip would take "038" as 38).
            let code = rest.split(' ').next().unwrap_or_default();
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || !(b'1'..=b'6').contains(&code.as_bytes()[0]) {
                return Err(ParseError::BadStartLine);
            }
        }
        let mut raw: Vec<(String, String)> = Vec::new();
        for line in lines {
            check_line(line, limits)?;
            if line.starts_with([' ', '\t']) {
                // §7.3.1 folding: a continuation line belongs to the previous header.
                let (_, value) = raw.last_mut().ok_or(ParseError::BadHeaderLine)?;
                let more = line.trim();
                if !more.is_empty() {
                    value.push(' ');
                    value.push_str(more);
                }
                continue;
            }
            let (name, value) = line.split_once(':').ok_or(ParseError::BadHeaderLine)?;
            let name = name.trim_end();
            if name.is_empty() || !name.bytes().all(is_token_char) {
                return Err(ParseError::BadHeaderLine);
            }
            raw.push((expand_compact(name).to_owned(), value.trim().to_owned()));
            if raw.len() > limits.max_headers {
                return Err(ParseError::TooManyHeaders { limit: limits.max_headers });
            }
        }
        let mut headers = Vec::with_capacity(raw.len());
        let mut content_length: Option<usize> = None;
        for (name, value) in raw {
            if name.eq_ignore_ascii_case("Content-Length") {
                let n: usize = value.parse().map_err(|_| ParseError::BadContentLength)?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(ParseError::BadContentLength);
                }
                content_length = Some(n);
                headers.push((name, value));
            } else if is_list_header(&name) && value != "*" {
                for part in split_list(&value) {
                    headers.push((name.clone(), part.to_owned()));
                }
            } else {
                headers.push((name, value));
            }
        }
        Ok(Self { start_line: start_line.to_owned(), headers, content_length })
    }

    fn into_message(self, body: &[u8]) -> Result<SipMessage, ParseError> {
        let mut text = String::with_capacity(self.start_line.len() + 64 * self.headers.len());
        text.push_str(&self.start_line);
        text.push_str("\r\n");
        for (name, value) in &self.headers {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        let mut msg = SipMessage::try_from(text.as_bytes()).map_err(|e| {
            if self.start_line.ends_with("SIP/2.0") || self.start_line.starts_with("SIP/2.0 ") {
                ParseError::Model(first_line(&e.to_string()))
            } else {
                ParseError::BadStartLine
            }
        })?;
        *msg.body_mut() = body.to_vec();
        validate(&msg)?;
        Ok(msg)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().chars().take(120).collect()
}

fn check_line(line: &str, limits: &Limits) -> Result<(), ParseError> {
    if line.len() > limits.max_line_bytes {
        return Err(ParseError::LineTooLong { limit: limits.max_line_bytes });
    }
    // A bare CR or LF, or any other control character but HT, could smuggle a header.
    if line.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ParseError::BadHeaderLine);
    }
    Ok(())
}

/// RFC 3261 §8.1.1: the headers every request and response carries, in a form we can use.
fn validate(msg: &SipMessage) -> Result<(), ParseError> {
    use rsip::headers::ToTypedHeader;
    let via = msg.via_header().map_err(|_| ParseError::MissingHeader("Via"))?;
    via.typed().map_err(|_| ParseError::BadHeader("Via"))?;
    let from = msg.from_header().map_err(|_| ParseError::MissingHeader("From"))?;
    NameAddr::parse(from.value()).map_err(|_| ParseError::BadHeader("From"))?;
    let to = msg.to_header().map_err(|_| ParseError::MissingHeader("To"))?;
    NameAddr::parse(to.value()).map_err(|_| ParseError::BadHeader("To"))?;
    let call_id = msg.call_id_header().map_err(|_| ParseError::MissingHeader("Call-ID"))?;
    if call_id.value().trim().is_empty() {
        return Err(ParseError::BadHeader("Call-ID"));
    }
    let cseq = msg.cseq_header().map_err(|_| ParseError::MissingHeader("CSeq"))?;
    let cseq = cseq.typed().map_err(|_| ParseError::BadHeader("CSeq"))?;
    if let SipMessage::Request(req) = msg {
        if cseq.method != req.method {
            return Err(ParseError::CSeqMethodMismatch);
        }
        if let Some(mf) = req.headers.iter().find_map(|h| match h {
            rsip::Header::MaxForwards(mf) => Some(mf),
            _ => None,
        }) {
            mf.value().trim().parse::<u32>().map_err(|_| ParseError::BadHeader("Max-Forwards"))?;
        }
    }
    Ok(())
}

/// Builds a 400 for a request we could not parse, from its raw header lines.
pub fn bad_request_reply(buf: &[u8], reason: &str) -> Option<Vec<u8>> {
    error_reply(buf, 400, reason)
}

/// Builds an error response for a request we could not parse, echoing the raw Via,
/// From, To, Call-ID and CSeq lines it has (RFC 3261 §8.2.6; §21.4.1's own example is a
/// 400 for a missing Call-ID). A Via is the least it needs, to be routed back. Returns
/// None for responses, ACKs and anything too broken to answer: those are dropped.
pub fn error_reply(buf: &[u8], code: u16, reason: &str) -> Option<Vec<u8>> {
    let buf = skip_leading_crlf(buf);
    let head_end = find(buf, b"\r\n\r\n").unwrap_or(buf.len().min(65_535));
    let text = std::str::from_utf8(&buf[..head_end]).ok()?;
    let mut lines = text.split("\r\n");
    let start = lines.next()?;
    let method = start.split(' ').next()?;
    if start.starts_with("SIP/") || method == "ACK" || !start.ends_with(" SIP/2.0") {
        return None;
    }
    let wanted = ["Via", "From", "To", "Call-ID", "CSeq"];
    let mut echoed: Vec<(&str, &str)> = Vec::new();
    for line in lines {
        if line.bytes().any(|b| b < 0x20 && b != b'\t') || line.len() > 8_192 {
            return None;
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        let full = expand_compact(name.trim());
        if let Some(w) = wanted.iter().find(|w| w.eq_ignore_ascii_case(full)) {
            echoed.push((w, value.trim()));
        }
    }
    if !echoed.iter().any(|(n, _)| *n == "Via") {
        return None;
    }
    let reason: String = reason.chars().filter(|c| !c.is_control()).take(100).collect();
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for (name, value) in echoed {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// A Content-Length read from raw header lines, for framing past a header section that
/// failed to parse. Err when present but not a number.
fn raw_content_length(head: &[u8]) -> Result<Option<usize>, ()> {
    let text = String::from_utf8_lossy(head);
    for line in text.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l") {
                return value.trim().parse().map(Some).map_err(|_| ());
            }
        }
    }
    Ok(None)
}

/// What a stream transport's framer hands up.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamItem {
    Message(SipMessage),
    /// RFC 5626 keep-alive "ping" (a double CRLF); answer with a single CRLF "pong".
    Ping,
    /// Bytes that could not be parsed were skipped; the raw head is kept for a 400.
    /// Framing is intact: the next message can be read.
    Error { error: ParseError, raw: Vec<u8> },
    /// The stream cannot be framed any more (no usable Content-Length, or too large):
    /// answer if possible and close the connection. The framer takes no more input.
    Fatal { error: ParseError, raw: Vec<u8> },
}

/// Frames SIP messages out of a TCP/TLS byte stream (§18.3). A message that fails to
/// parse is skipped when its length is still known; when it is not, the stream is done:
/// guessing where the next message starts would let a body smuggle requests.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limits: Limits,
    /// Body bytes of a skipped message still to be dropped as they arrive.
    discard: usize,
    poisoned: bool,
}

impl StreamFramer {
    pub fn new(limits: Limits) -> Self {
        Self { buf: Vec::new(), limits, discard: 0, poisoned: false }
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.poisoned {
            return;
        }
        let skipped = self.discard.min(data.len());
        self.discard -= skipped;
        self.buf.extend_from_slice(&data[skipped..]);
    }

    /// Bytes held waiting for the rest of a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn fatal(&mut self, error: ParseError, raw_len: usize) -> Option<StreamItem> {
        self.poisoned = true;
        let raw = self.buf[..raw_len.min(self.buf.len())].to_vec();
        self.buf = Vec::new();
        Some(StreamItem::Fatal { error, raw })
    }

    pub fn next_item(&mut self) -> Option<StreamItem> {
        if self.poisoned {
            return None;
        }
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Some(StreamItem::Ping);
        }
        if b"\r\n\r\n".starts_with(&self.buf) {
            return None; // maybe a ping split across segments; wait for the rest
        }
        let skip = self.buf.len() - skip_leading_crlf(&self.buf).len();
        if skip > 0 && self.buf.len() > skip {
            self.buf.drain(..skip);
        } else if skip > 0 {
            return None; // maybe the start of a ping; wait
        }
        let max = self.limits.max_message_bytes;
        let Some(head_end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > max {
                let size = self.buf.len();
                return self.fatal(ParseError::TooLarge { size, limit: max }, max);
            }
            return None;
        };
        let consumed_head = head_end + 4;
        let head = match Head::parse(&self.buf[..head_end], &self.limits) {
            Ok(head) => head,
            Err(error) => {
                // Garbage without a Content-Length has no body for anyone to frame
                // differently: skip its head and read on (resynchronise).
                let len = match raw_content_length(&self.buf[..head_end]) {
                    Ok(len) => len.unwrap_or(0),
                    Err(()) => return self.fatal(ParseError::BadContentLength, consumed_head),
                };
                if consumed_head + len > max {
                    return self.fatal(ParseError::TooLarge { size: consumed_head + len, limit: max }, consumed_head);
                }
                let raw: Vec<u8> = self.buf.drain(..consumed_head).collect();
                let drop_now = len.min(self.buf.len());
                self.buf.drain(..drop_now);
                self.discard = len - drop_now;
                return Some(StreamItem::Error { error, raw });
            }
        };
        let Some(len) = head.content_length else {
            return self.fatal(ParseError::MissingContentLength, consumed_head);
        };
        if consumed_head + len > max {
            return self.fatal(ParseError::TooLarge { size: consumed_head + len, limit: max }, consumed_head);
        }
        if self.buf.len() < consumed_head + len {
            return None;
        }
        let body: Vec<u8> = self.buf[consumed_head..consumed_head + len].to_vec();
        let raw_head: Vec<u8> = self.buf.drain(..consumed_head + len).take(consumed_head).collect();
        match head.into_message(&body) {
            Ok(msg) => Some(StreamItem::Message(msg)),
            Err(error) => Some(StreamItem::Error { error, raw: raw_head }),
        }
    }
}

#[cfg(test)]
mod tests;
