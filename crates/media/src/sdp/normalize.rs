//! A tolerant pre-pass before the `sdp` crate's strict state machine: splits lines on
//! LF or CRLF, drops blank lines, checks that every line is `<letter>=<value>`, puts
//! session- and media-level lines into RFC 8866 order (some phones misorder c=/b=/t=),
//! and supplies a missing `s=` or `t=` (both mandatory, both meaningless to a relay).

use super::error::SdpError;

/// Largest SDP body accepted (a SIP body over UDP is far smaller).
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Most lines accepted.
const MAX_LINES: usize = 2048;

fn session_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'v' => 0,
        b'o' => 1,
        b's' => 2,
        b'i' => 3,
        b'u' => 4,
        b'e' => 5,
        b'p' => 6,
        b'c' => 7,
        b'b' => 8,
        // t= and r= share a rank so each r= stays behind its t=.
        b't' | b'r' => 9,
        b'z' => 10,
        b'k' => 11,
        b'a' => 12,
        _ => return None,
    })
}

fn media_rank(t: u8) -> Option<u8> {
    Some(match t {
        b'm' => 0,
        b'i' => 1,
        b'c' => 2,
        b'b' => 3,
        b'k' => 4,
        b'a' => 5,
        _ => return None,
    })
}

/// Returns the body rewritten with CRLF line ends in canonical order.
pub fn normalize(text: &str) -> Result<String, SdpError> {
    if text.len() > MAX_SDP_LEN {
        return Err(SdpError::malformed("body too large"));
    }
    let mut session: Vec<(u8, &str)> = Vec::new();
    let mut media: Vec<Vec<(u8, &str)>> = Vec::new();
    let mut count = 0usize;
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim_end();
        if line.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_LINES {
            return Err(SdpError::malformed("too many lines"));
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
            return Err(SdpError::malformed(format!(
                "line {} is not type=value",
                n + 1
            )));
        }
        let t = bytes[0];
        if t == b'm' {
            media.push(vec![(0, line)]);
            continue;
        }
        match media.last_mut() {
            None => {
                let rank = session_rank(t).ok_or_else(|| unknown(t))?;
                session.push((rank, line));
            }
            Some(m) => {
                let rank = media_rank(t).ok_or_else(|| misplaced(t))?;
                m.push((rank, line));
            }
        }
    }
    if session.is_empty() || !session.iter().any(|(r, _)| *r == 0) {
        return Err(SdpError::malformed("no v= line"));
    }
    if !session.iter().any(|(r, _)| *r == 1) {
        return Err(SdpError::malformed("no o= line"));
    }
    if !session.iter().any(|(r, _)| *r == 2) {
        session.push((2, "s=-"));
    }
    if !session.iter().any(|(r, _)| *r == 9) {
        session.push((9, "t=0 0"));
    }
    // v=, o=, s= must each appear once.
    for (rank, name) in [(0u8, "v="), (1, "o="), (2, "s=")] {
        if session.iter().filter(|(r, _)| *r == rank).count() > 1 {
            return Err(SdpError::malformed(format!("more than one {name} line")));
        }
    }
    session.sort_by_key(|(r, _)| *r);
    let mut out = String::with_capacity(text.len() + 32);
    for (_, line) in &session {
        out.push_str(line);
        out.push_str("\r\n");
    }
    for m in &mut media {
        m.sort_by_key(|(r, _)| *r);
        for (_, line) in m.iter() {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    Ok(out)
}

fn unknown(t: u8) -> SdpError {
    SdpError::malformed(format!("unknown line type {}=", t as char))
}

fn misplaced(t: u8) -> SdpError {
    SdpError::malformed(format!("{}= line inside a media section", t as char))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_and_fills_in() {
        let out = normalize("v=0\no=- 1 1 IN IP4 1.2.3.4\nt=0 0\nc=IN IP4 1.2.3.4\nm=audio 1 RTP/AVP 0\na=sendrecv\nc=IN IP4 1.2.3.4\n").unwrap();
        assert_eq!(
            out,
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\na=sendrecv\r\n"
        );
    }

    #[test]
    fn rejects_junk() {
        assert!(normalize("hello").is_err());
        assert!(normalize("").is_err());
        assert!(normalize("v=0\r\n").is_err());
        assert!(normalize("v=0\r\no=x\r\nx=1\r\n").is_err());
        assert!(normalize("v=0\r\nv=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n").is_err());
        assert!(
            normalize("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n").is_err()
        );
    }
}
