//! Raw SIP over plain std sockets: hand-built requests (valid or deliberately broken),
//! and just enough response parsing to judge the server's answer.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::pbx::DOMAIN;

/// A fresh token for branches, tags and Call-IDs.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A valid OPTIONS from `local` (whose Via names `transport`), with its branch and Call-ID.
pub fn options(local: SocketAddr, transport: &str) -> (String, String, String) {
    let branch = format!("z9hG4bK{}", unique("e2e"));
    let call_id = unique("opt");
    let msg = format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{DOMAIN}>;tag={tag}\r\n\
         To: <sip:{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n",
        tag = unique("t"),
    );
    (msg, branch, call_id)
}

/// A parsed SIP response (only what the tests judge).
#[derive(Clone, Debug)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub raw: Vec<u8>,
}

impl Response {
    pub fn parse(raw: &[u8]) -> Option<Response> {
        let text = String::from_utf8_lossy(raw);
        let first = text.lines().next()?;
        let rest = first.strip_prefix("SIP/2.0 ")?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(Response {
            code: code.trim().parse().ok()?,
            reason: reason.trim().to_string(),
            raw: raw.to_vec(),
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The first value of header `name` (long or compact form given by the caller).
    pub fn header(&self, names: &[&str]) -> Option<String> {
        let text = self.text();
        text.lines()
            .skip(1)
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                names
                    .iter()
                    .any(|want| n.trim().eq_ignore_ascii_case(want))
                    .then(|| v.trim().to_string())
            })
    }
}

/// Shows bytes readably: printable ASCII as is, the rest escaped.
pub fn escape(bytes: &[u8], limit: usize) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(limit) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n\n"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > limit {
        out.push_str(&format!("... ({} bytes in all)", bytes.len()));
    }
    out
}

/// A UDP socket on 127.0.0.1 talking to one server.
pub struct UdpPeer {
    pub socket: UdpSocket,
    pub server: SocketAddr,
}

impl UdpPeer {
    pub fn new(server: SocketAddr) -> UdpPeer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP socket on 127.0.0.1");
        UdpPeer { socket, server }
    }

    pub fn local(&self) -> SocketAddr {
        self.socket.local_addr().expect("local_addr")
    }

    pub fn send(&self, bytes: &[u8]) -> std::io::Result<usize> {
        self.socket.send_to(bytes, self.server)
    }

    /// Every datagram from the server within `window` (other senders are ignored).
    pub fn recv_all_within(&self, window: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 70_000];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return got;
            }
            self.socket
                .set_read_timeout(Some(deadline - now))
                .expect("set_read_timeout");
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => got.push(buf[..n].to_vec()),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return got;
                }
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    }

    /// The first datagram from the server within `timeout`.
    pub fn recv_within(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 70_000];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            self.socket
                .set_read_timeout(Some(deadline - now))
                .expect("set_read_timeout");
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => return Some(buf[..n].to_vec()),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    }

    /// Sends a valid OPTIONS and returns the final response to it (matching branch),
    /// retransmitting like a UAC would (500 ms, 1 s, 2 s) within `timeout`.
    pub fn options(&self, timeout: Duration) -> Result<Response, String> {
        let (msg, branch, _) = options(self.local(), "UDP");
        let deadline = Instant::now() + timeout;
        let mut interval = Duration::from_millis(500);
        let mut seen = Vec::new();
        loop {
            self.send(msg.as_bytes())
                .map_err(|e| format!("send: {e}"))?;
            let until = (Instant::now() + interval).min(deadline);
            while Instant::now() < until {
                let Some(raw) = self.recv_within(until - Instant::now()) else {
                    break;
                };
                match Response::parse(&raw) {
                    Some(r) if r.code >= 200 && r.text().contains(&branch) => return Ok(r),
                    _ => seen.push(escape(&raw, 600)),
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no final response to OPTIONS (branch {branch}) within {timeout:?}; other datagrams: {seen:?}\nsent:\n{}",
                    escape(msg.as_bytes(), 2000)
                ));
            }
            interval = (interval * 2).min(Duration::from_secs(4));
        }
    }
}

/// A TCP connection to the server, reading responses framed by Content-Length.
pub struct TcpPeer {
    pub stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
    /// Messages read while looking for another one.
    stash: Vec<Vec<u8>>,
}

impl TcpPeer {
    pub fn connect(server: SocketAddr) -> TcpPeer {
        let stream = TcpStream::connect_timeout(&server, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connecting to {server}: {e}"));
        stream.set_nodelay(true).ok();
        TcpPeer {
            stream,
            buf: Vec::new(),
            closed: false,
            stash: Vec::new(),
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.stream.local_addr().expect("local_addr")
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// True once the server closed the connection (seen by a read).
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The next complete message (headers + Content-Length body) within `timeout`;
    /// `None` on timeout or when the server closes.
    pub fn recv_message(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            // Skip keep-alive CRLFs (RFC 5626 pongs) before a message.
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        let n = n.trim();
                        (n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l"))
                            .then(|| v.trim().parse::<usize>().ok())
                            .flatten()
                    })
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    return Some(self.buf.drain(..end + 4 + length).collect());
                }
            }
            if self.closed {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            self.stream
                .set_read_timeout(Some(deadline - now))
                .expect("set_read_timeout");
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                Err(_) => self.closed = true,
            }
        }
    }

    /// The first message (stashed earlier, or read now) that satisfies `wanted`; others
    /// read meanwhile are stashed for later calls.
    pub fn recv_where(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        if let Some(i) = self.stash.iter().position(|m| wanted(m)) {
            return Some(self.stash.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let raw = self.recv_message(deadline.saturating_duration_since(Instant::now()))?;
            if wanted(&raw) {
                return Some(raw);
            }
            self.stash.push(raw);
        }
    }

    /// Messages read but not yet taken.
    pub fn stashed(&self) -> &[Vec<u8>] {
        &self.stash
    }

    /// Bytes received but not (yet) forming a message.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse() {
        let r = Response::parse(
            b"SIP/2.0 400 Missing Call-ID\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\ni: abc\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.code, 400);
        assert_eq!(r.reason, "Missing Call-ID");
        assert_eq!(r.header(&["Call-ID", "i"]).as_deref(), Some("abc"));
        assert!(Response::parse(b"OPTIONS sip:x SIP/2.0\r\n\r\n").is_none());
    }
}
