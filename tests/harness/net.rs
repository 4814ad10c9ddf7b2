//! Loopback ports, a minimal HTTP GET (for /healthz and /metrics) and the Prometheus text
//! format. Everything here talks to 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A port that is free on 127.0.0.1 for both UDP and TCP at the moment of the call
/// (bound to port 0, read, closed). A race with another process remains possible.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind((LOOPBACK, 0)).expect("binding 127.0.0.1:0/tcp");
        let port = tcp.local_addr().expect("local_addr").port();
        if UdpSocket::bind((LOOPBACK, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1 after 100 tries");
}

/// `count` consecutive free ports (UDP and TCP), e.g. baresip's SIP port and the TLS
/// port it always opens one above it.
pub fn free_port_range(count: u16) -> u16 {
    'outer: for _ in 0..200 {
        let first = free_port();
        if first.checked_add(count).is_none() {
            continue;
        }
        let mut held = Vec::new();
        for port in first..first + count {
            match (
                TcpListener::bind((LOOPBACK, port)),
                UdpSocket::bind((LOOPBACK, port)),
            ) {
                (Ok(t), Ok(u)) => held.push((t, u)),
                _ => continue 'outer,
            }
        }
        return first;
    }
    panic!("no {count} consecutive free ports on 127.0.0.1");
}

/// A block of `len` consecutive UDP ports for a PBX's `--rtp-ports LO-HI`, below the
/// kernel's ephemeral range (32768 and up, where every `free_port` and every peer's own
/// sockets land) so that nothing else in the test grabs one, below `hark pbx serve`'s
/// default range 20000-29999, which any PBX run with defaults on this machine (a
/// benchmark, a manual run) takes ports from between this check and the test's call, and
/// above baresip's RTP ports (10000-14999, see `baresip::config_with`); the blocks of
/// parallel tests (and test processes) start at different offsets, and each is checked
/// free when taken.
pub fn rtp_port_range(len: u16) -> (u16, u16) {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 15_000;
    const HIGH: u32 = 20_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let len = u32::from(len.max(2));
    let blocks = (HIGH - LOW) / len;
    let seed = std::process::id().wrapping_mul(2_654_435_761) % blocks;
    for _ in 0..blocks {
        let block = (seed + NEXT.fetch_add(1, Ordering::Relaxed)) % blocks;
        let lo = LOW + block * len;
        let hi = lo + len - 1;
        if (lo..=hi).all(|p| UdpSocket::bind((LOOPBACK, p as u16)).is_ok()) {
            return (lo as u16, hi as u16);
        }
    }
    panic!("no block of {len} free UDP ports between {LOW} and {HIGH}");
}

/// An HTTP response: status code and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// `GET path` over HTTP/1.0 (no chunking, the server closes), with a timeout.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// The sum of every sample of metric `name` (all label sets) in a Prometheus text
/// exposition, or `None` when the metric has no sample.
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in exposition.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // The name must end here: a space or a label set follows.
        let rest = if let Some(labels) = rest.strip_prefix('{') {
            match labels.split_once('}') {
                Some((_, after)) => after,
                None => continue,
            }
        } else if rest.starts_with(' ') || rest.starts_with('\t') {
            rest
        } else {
            continue;
        };
        if let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *total.get_or_insert(0.0) += value;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_are_summed_over_labels() {
        let text = "# HELP hark_registrations live bindings\n# TYPE hark_registrations gauge\n\
                    hark_registrations{tenant=\"a\"} 2\nhark_registrations{tenant=\"b\"} 1\n\
                    hark_registrations_total 9\n";
        assert_eq!(metric_value(text, "hark_registrations"), Some(3.0));
        assert_eq!(
            metric_value("hark_registrations 0\n", "hark_registrations"),
            Some(0.0)
        );
        assert_eq!(metric_value("other 1\n", "hark_registrations"), None);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
