//! A client for baresip's `ctrl_tcp` module: netstring-framed JSON over one TCP
//! connection. Commands go out as `{"command":…,"params":…,"token":…}`; the answer
//! (`"response":true`, same token) and the events (`"event":true`, e.g.
//! `CALL_ESTABLISHED`, `CALL_CLOSED`) come back on the same connection.
//!
//! baresip 1.0 keeps ONE control connection: a new one replaces the old, whose events then
//! stop. So a phone gets one `Ctrl`, opened right after start-up, that collects every event
//! for the whole test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[derive(Default)]
struct State {
    events: Vec<Value>,
    responses: Vec<Value>,
    /// Bytes that were not a netstring of JSON: kept for failure messages.
    garbage: Vec<String>,
    closed: bool,
}

pub struct Ctrl {
    stream: Mutex<TcpStream>,
    state: Arc<(Mutex<State>, Condvar)>,
    port: u16,
}

impl Ctrl {
    /// Connects to 127.0.0.1:`port`, retrying until `timeout` (the module listens a moment
    /// after baresip prints that it is ready).
    pub fn connect(port: u16, timeout: Duration) -> Result<Ctrl, String> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("connecting to ctrl_tcp on 127.0.0.1:{port}: {e}"));
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_nodelay(true).ok();
        let reader = stream
            .try_clone()
            .map_err(|e| format!("cloning the ctrl_tcp socket: {e}"))?;
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let shared = Arc::clone(&state);
        thread::spawn(move || read_loop(reader, shared));
        Ok(Ctrl {
            stream: Mutex::new(stream),
            state,
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends a command and waits for its response; `Err` on timeout or when baresip
    /// answers `"ok":false` (with its data, e.g. the reason).
    pub fn command(&self, command: &str, params: &str, timeout: Duration) -> Result<Value, String> {
        static TOKEN: AtomicU64 = AtomicU64::new(0);
        let token = format!("e2e-{}", TOKEN.fetch_add(1, Ordering::Relaxed));
        let body = json!({"command": command, "params": params, "token": token}).to_string();
        {
            let mut stream = self.stream.lock().unwrap_or_else(|p| p.into_inner());
            stream
                .write_all(format!("{}:{},", body.len(), body).as_bytes())
                .map_err(|e| format!("writing `{command}` to ctrl_tcp: {e}"))?;
        }
        let (lock, cvar) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(i) = st
                .responses
                .iter()
                .position(|r| r.get("token").and_then(Value::as_str) == Some(&token))
            {
                let r = st.responses.remove(i);
                return if r.get("ok").and_then(Value::as_bool) == Some(true) {
                    Ok(r)
                } else {
                    Err(format!("baresip refused `{command} {params}`: {r}"))
                };
            }
            let now = Instant::now();
            if now >= deadline || st.closed {
                return Err(format!(
                    "no response to `{command} {params}` within {timeout:?} (connection closed: {})",
                    st.closed
                ));
            }
            st = cvar
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        self.state.0.lock().unwrap_or_else(|p| p.into_inner()).events.clone()
    }

    /// The `type` of every event so far, e.g. `["CALL_RINGING", "CALL_ESTABLISHED"]`.
    pub fn event_types(&self) -> Vec<String> {
        self.events().iter().map(|e| event_type(e).to_string()).collect()
    }

    /// Waits until an event satisfies `pred` (earlier events count) and returns it.
    pub fn wait_event(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let (lock, cvar) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(e) = st.events.iter().find(|e| pred(e)) {
                return Some(e.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = cvar
                .wait_timeout(st, (deadline - now).min(Duration::from_millis(200)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits for the `n`-th (1-based) event of type `kind`.
    pub fn wait_event_type(&self, kind: &str, n: usize, timeout: Duration) -> Option<Value> {
        let (lock, cvar) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(e) = st
                .events
                .iter()
                .filter(|e| event_type(e) == kind)
                .nth(n.saturating_sub(1))
            {
                return Some(e.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = cvar
                .wait_timeout(st, (deadline - now).min(Duration::from_millis(200)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Events and stray bytes, for failure messages.
    pub fn report(&self) -> String {
        let st = self.state.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = format!("--- ctrl_tcp 127.0.0.1:{} events ---\n", self.port);
        for e in &st.events {
            // CALL_RTCP events are many and say little: type and stats only.
            s.push_str(&e.to_string());
            s.push('\n');
        }
        if !st.garbage.is_empty() {
            s.push_str(&format!("--- ctrl_tcp unparsed: {:?}\n", st.garbage));
        }
        s
    }
}

/// The `type` of an event (`""` if none).
pub fn event_type(e: &Value) -> &str {
    e.get("type").and_then(Value::as_str).unwrap_or("")
}

fn read_loop(mut stream: TcpStream, state: Arc<(Mutex<State>, Condvar)>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let (lock, cvar) = &*state;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((msg, used)) = next_netstring(&buf) {
            buf.drain(..used);
            match msg {
                Ok(text) => match serde_json::from_str::<Value>(&text) {
                    Ok(v) if v.get("response").and_then(Value::as_bool) == Some(true) => st.responses.push(v),
                    Ok(v) => st.events.push(v),
                    Err(_) => st.garbage.push(text),
                },
                Err(bad) => st.garbage.push(bad),
            }
        }
        cvar.notify_all();
    }
    let (lock, cvar) = &*state;
    lock.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
    cvar.notify_all();
}

/// Splits one netstring (`LEN:BYTES,`) off the front of `buf`: `Some((Ok(text), used))`,
/// `Some((Err(junk), used))` for bytes that are no netstring (skipped up to the next
/// digit), `None` when more bytes are needed.
fn next_netstring(buf: &[u8]) -> Option<(Result<String, String>, usize)> {
    if buf.is_empty() {
        return None;
    }
    let colon = buf.iter().position(|&b| b == b':');
    let digits_ok = |end: usize| end > 0 && buf[..end].iter().all(u8::is_ascii_digit);
    match colon {
        Some(c) if digits_ok(c) => {
            let len: usize = std::str::from_utf8(&buf[..c]).ok()?.parse().ok()?;
            if buf.len() < c + 1 + len + 1 {
                return None;
            }
            let body = String::from_utf8_lossy(&buf[c + 1..c + 1 + len]).into_owned();
            if buf[c + 1 + len] == b',' {
                Some((Ok(body), c + 2 + len))
            } else {
                Some((Err(body), c + 1 + len))
            }
        }
        None if buf.len() < 12 && buf.iter().all(u8::is_ascii_digit) => None,
        _ => {
            let skip = buf
                .iter()
                .skip(1)
                .position(u8::is_ascii_digit)
                .map_or(buf.len(), |p| p + 1);
            Some((Err(String::from_utf8_lossy(&buf[..skip]).into_owned()), skip))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::next_netstring;

    #[test]
    fn netstrings_are_split() {
        let buf = b"5:hello,3:abc,2:x";
        let (a, used) = next_netstring(buf).unwrap();
        assert_eq!((a.unwrap(), used), ("hello".to_string(), 8));
        let (b, used2) = next_netstring(&buf[used..]).unwrap();
        assert_eq!((b.unwrap(), used2), ("abc".to_string(), 6));
        assert!(next_netstring(&buf[used + used2..]).is_none());
        assert!(next_netstring(b"12").is_none());
        let (junk, n) = next_netstring(b"xx5:hello,").unwrap();
        assert!(junk.is_err());
        assert_eq!(n, 2);
    }
}
