//! baresip 1.0 as a real softphone: a generated config dir, headless (no audio device,
//! no stdin UI), its SIP trace (`-s`) on stdout for evidence and for counting
//! registrations, and ctrl_tcp for commands.
//!
//! Found by trying (baresip 1.0.0, Debian 12):
//! - `sip_listen 127.0.0.1:P` also opens TLS on P+1: both must be free.
//! - `net_interface 127.0.0.1` keeps it (and its SDP) on loopback.
//! - It prints `101@pbx.test: {0/UDP/v4} 200 OK () [1 binding]` only for the first
//!   successful REGISTER; refreshes show only in the SIP trace (and as ctrl_tcp
//!   REGISTER_OK events, which a client connecting after start-up misses).
//! - It refreshes at 90% of the expiry the registrar granted (the `expires` parameter of
//!   its own Contact in the 200 OK); `regint` is the expiry it asks for.
//! - Its digest code (libre) handles MD5 only, and gives up ("Register: Function not
//!   implemented") when *any* WWW-Authenticate of the 401 carries another algorithm, in
//!   whatever order: against a PBX offering MD5 and SHA-256 it never registers. Serve it
//!   with `--digest-algorithms MD5`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::net::{free_port, free_port_range};
use crate::peers::require_peer;
use crate::process::{Proc, TempDir, tail};

/// The account baresip registers.
#[derive(Clone, Debug)]
pub struct BaresipAccount {
    pub user: String,
    pub password: String,
    pub domain: String,
    /// Where REGISTERs go (the account's outbound proxy).
    pub registrar: SocketAddr,
    /// "udp" or "tcp".
    pub transport: String,
    /// The expiry baresip asks for (seconds).
    pub regint: u32,
}

pub struct Baresip {
    proc: Proc,
    dir: TempDir,
    pub sip_port: u16,
    pub ctrl_port: u16,
    pub account: BaresipAccount,
}

impl Baresip {
    pub fn start(account: BaresipAccount) -> Baresip {
        let bin = require_peer("baresip");
        let dir = TempDir::new("baresip");
        let sip_port = free_port_range(2);
        let ctrl_port = free_port();
        dir.write("config", config(sip_port, ctrl_port));
        dir.write("accounts", format!("{}\n", account_line(&account)));
        dir.write("contacts", "");
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg(dir.path())
            .arg("-s")
            .env("HOME", dir.path());
        let proc = Proc::spawn("baresip", &mut cmd);
        let b = Baresip {
            proc,
            dir,
            sip_port,
            ctrl_port,
            account,
        };
        let ready = b.proc.stdout.wait_for(Duration::from_secs(30), |out| {
            out.contains("baresip is ready.").then_some(())
        });
        if ready.is_none() {
            panic!("baresip did not become ready within 30 s\n{}", b.report());
        }
        b
    }

    /// The SIP messages in baresip's trace, in order.
    pub fn trace(&self) -> Vec<TracedMessage> {
        parse_trace(&self.proc.stdout.text())
    }

    /// How many 2xx responses to REGISTER baresip has received.
    pub fn register_oks(&self) -> usize {
        count_register_oks(&self.proc.stdout.text())
    }

    /// Waits until baresip has received `n` 2xx responses to REGISTER.
    pub fn wait_register_oks(&self, n: usize, timeout: Duration) -> bool {
        self.proc
            .stdout
            .wait_for(timeout, |out| (count_register_oks(out) >= n).then_some(()))
            .is_some()
    }

    /// baresip's own summary line of the first registration, e.g.
    /// `101@pbx.test: {0/UDP/v4} 200 OK () [1 binding]`.
    /// Waits for it: baresip prints it just after handling the 200 (after the trace).
    pub fn registration_line(&self, timeout: Duration) -> Option<String> {
        let needle = format!("{}@{}: {{", self.account.user, self.account.domain);
        self.proc.stdout.wait_for(timeout, |out| {
            out.lines()
                .find(|l| l.starts_with(&needle))
                .map(str::to_string)
        })
    }

    /// Sends one ctrl_tcp command (netstring JSON) and returns the raw reply.
    pub fn command(&self, command: &str, params: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.ctrl_port))
            .expect("connecting to baresip ctrl_tcp");
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let json = format!(
            "{{\"command\":\"{command}\",\"params\":\"{}\",\"token\":\"e2e\"}}",
            params.replace('\\', "\\\\").replace('"', "\\\"")
        );
        write!(stream, "{}:{},", json.len(), json).expect("writing to ctrl_tcp");
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until a response (not an event) netstring arrives or the timeout hits.
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&reply).contains("\"response\":true") {
                break;
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// Config dir, stdout/stderr (the SIP trace), for failure messages.
    pub fn report(&self) -> String {
        format!(
            "--- baresip config dir {} ---\naccounts: {}\n{}",
            self.dir.path().display(),
            account_line(&self.account),
            self.proc.report(400)
        )
    }

    /// The last lines of baresip's output.
    pub fn output_tail(&self, lines: usize) -> String {
        tail(&self.proc.stdout.text(), lines)
    }

    pub fn proc_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

/// The accounts line, e.g.
/// `<sip:101@pbx.test;transport=udp>;auth_pass=secret;outbound="sip:127.0.0.1:5060;transport=udp";regint=6`.
pub fn account_line(a: &BaresipAccount) -> String {
    format!(
        "<sip:{user}@{domain};transport={t}>;auth_pass={pw};outbound=\"sip:{addr};transport={t}\";regint={regint};\
         answermode=manual;mwi=no;call_transfer=no",
        user = a.user,
        domain = a.domain,
        t = a.transport,
        pw = a.password,
        addr = a.registrar,
        regint = a.regint
    )
}

/// A headless config: loopback only, no audio device, SIP trace, ctrl_tcp.
pub fn config(sip_port: u16, ctrl_port: u16) -> String {
    format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{sip_port}\n\
         net_interface\t\t127.0.0.1\n\
         call_local_timeout\t120\n\
         call_max_calls\t\t4\n\
         audio_buffer\t\t20-160\n\
         module_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\n\
         module\t\t\taufile.so\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         module_app\t\tctrl_tcp.so\n\
         ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n",
    )
}

/// One message of baresip's `-s` trace.
#[derive(Clone, Debug)]
pub struct TracedMessage {
    /// e.g. `UDP 127.0.0.1:40000 -> 127.0.0.1:5060`
    pub route: String,
    pub text: String,
}

impl TracedMessage {
    pub fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    pub fn is_response(&self) -> bool {
        self.first_line().starts_with("SIP/2.0 ")
    }

    pub fn status(&self) -> Option<u16> {
        self.first_line()
            .strip_prefix("SIP/2.0 ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    pub fn cseq_method(&self) -> Option<&str> {
        self.text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("cseq:"))
            .and_then(|l| l.split_whitespace().nth(2))
    }
}

/// Splits the trace: each message follows a line `#` and a line `PROTO SRC -> DST`.
pub fn parse_trace(out: &str) -> Vec<TracedMessage> {
    let mut messages = Vec::new();
    let mut lines = out.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() != "#" {
            continue;
        }
        let Some(route) = lines.next_if(|l| l.contains(" -> ")) else {
            continue;
        };
        // Headers up to the empty line, then Content-Length bytes of body.
        let mut text = String::new();
        let mut content_length = 0usize;
        while let Some(l) = lines.next_if(|l| l.trim() != "#") {
            if l.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                if name == "content-length" || name == "l" {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
            text.push_str(l);
            text.push('\n');
        }
        if content_length > 0 {
            text.push('\n');
            let mut body = 0usize;
            while body < content_length {
                let Some(l) = lines.next_if(|l| l.trim() != "#") else {
                    break;
                };
                body += l.len() + 2;
                text.push_str(l);
                text.push('\n');
            }
        }
        messages.push(TracedMessage {
            route: route.to_string(),
            text,
        });
    }
    messages
}

fn count_register_oks(out: &str) -> usize {
    parse_trace(out)
        .iter()
        .filter(|m| {
            m.status().is_some_and(|s| (200..300).contains(&s))
                && m.cseq_method() == Some("REGISTER")
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sip_trace_is_split_into_messages() {
        let out = "baresip is ready.\n#\nUDP 127.0.0.1:1 -> 127.0.0.1:2\nREGISTER sip:pbx.test SIP/2.0\nCSeq: 1 REGISTER\n\n\
                   #\nUDP 127.0.0.1:2 -> 127.0.0.1:1\nSIP/2.0 200 OK\nCSeq: 1 REGISTER\n\n\
                   101@pbx.test: {0/UDP/v4} 200 OK () [1 binding]\n";
        let trace = parse_trace(out);
        assert_eq!(trace.len(), 2);
        assert_eq!(trace[1].status(), Some(200));
        assert_eq!(count_register_oks(out), 1);
        assert!(!trace[1].text.contains("binding"), "{:?}", trace[1].text);
    }
}
