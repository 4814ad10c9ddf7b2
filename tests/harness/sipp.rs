//! Running sipp scenarios from tests/sipp/ against the PBX, with the error log, the full
//! message trace and the scenario's `<log>` lines kept for failure messages; in the
//! foreground ([`Sipp::run`]) or, e.g. for a UAS waiting for the PBX's INVITE, in the
//! background ([`Sipp::spawn`]), whose log can be read while it runs.
//!
//! Learned writing the call scenarios (sipp 3.6.1):
//! - `<log>` lines and the `-trace_msg` file are written as they happen: a test can wait
//!   for `relay=PORT` while the call is still up.
//! - ACK to a non-2xx and CANCEL must reuse the INVITE's branch: `[last_Via:]` (the Via
//!   echoed in the last response) does it. `[next_url]` (the Contact of the 200) needs
//!   `rrs="true"` on that `<recv>`.
//! - `<pause/>` without `milliseconds` lasts `-d MS`: one scenario, call lengths chosen
//!   by the test.
//! - A response whose status line is not `SIP/2.0 NNN` is refused when the scenario
//!   loads ("Invalid reply code"): garbage must not start with `SIP/2.0`.
//! - A `<recv>` that times out into `ontimeout` still counts the call as failed (exit 1).
//! - `[last_cseq_number]` gives the CSeq number of the last message (for a 487 to the
//!   INVITE after answering its CANCEL).
//! - ereg on a header (`search_in="hdr" header="X-Session-Id:"`) sees the value with its
//!   leading space; POSIX classes (`[^[:space:]]+`) take the value itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::net::free_port;
use crate::pbx::{DOMAIN, Pbx};
use crate::peers::require_peer;
use crate::process::{self, Proc, TempDir, read_lossy, tail};

/// A scenario file in tests/sipp/.
pub fn scenario_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name);
    assert!(
        path.is_file(),
        "sipp scenario {} is missing",
        path.display()
    );
    path
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SippTransport {
    Udp,
    Tcp,
}

/// One sipp run (one call, `-m 1`) of a scenario against `target`.
#[must_use]
pub struct Sipp {
    scenario: String,
    target: SocketAddr,
    transport: SippTransport,
    keys: Vec<(String, String)>,
    auth: Option<(String, String)>,
    extra: Vec<String>,
    scenario_timeout: Duration,
    local_port: Option<u16>,
    auth_uri: Option<String>,
    media_port: Option<u16>,
}

impl Sipp {
    /// `scenario` is a file name in tests/sipp/. Keys `domain` (pbx.test), `user` (101) and
    /// `expires` (3600) are preset; override them with [`Sipp::key`].
    pub fn new(scenario: &str, target: SocketAddr) -> Sipp {
        Sipp {
            scenario: scenario.to_string(),
            target,
            transport: SippTransport::Udp,
            keys: vec![
                ("domain".into(), DOMAIN.into()),
                ("user".into(), "101".into()),
                ("expires".into(), "3600".into()),
            ],
            auth: None,
            extra: Vec::new(),
            scenario_timeout: Duration::from_secs(20),
            local_port: None,
            auth_uri: None,
            media_port: None,
        }
    }

    /// Against the PBX's UDP (or, after [`Sipp::tcp`], TCP) listener.
    pub fn against(scenario: &str, pbx: &Pbx) -> Sipp {
        Sipp::new(scenario, pbx.sip_udp)
    }

    pub fn tcp(mut self, pbx: &Pbx) -> Sipp {
        self.transport = SippTransport::Tcp;
        self.target = pbx.sip_tcp;
        self
    }

    /// Sets keyword `[name]` (sipp -key).
    pub fn key(mut self, name: &str, value: &str) -> Sipp {
        self.keys.retain(|(k, _)| k != name);
        self.keys.push((name.into(), value.into()));
        self
    }

    /// Credentials for `[authentication]` (-au/-ap); also sets key `user`.
    pub fn auth(self, user: &str, password: &str) -> Sipp {
        let mut s = self.key("user", user);
        s.auth = Some((user.into(), password.into()));
        s
    }

    /// The digest uri sipp puts in its credentials, without "sip:" (default: the domain,
    /// matching the Request-URI).
    pub fn auth_uri(mut self, uri: &str) -> Sipp {
        self.auth_uri = Some(uri.into());
        self
    }

    /// sipp's local port (-p); by default a free one. Reusing a port reuses the Contact.
    pub fn local_port(mut self, port: u16) -> Sipp {
        self.local_port = Some(port);
        self
    }

    pub fn arg(mut self, arg: &str) -> Sipp {
        self.extra.push(arg.into());
        self
    }

    /// sipp's media port (-mp: where it would echo or play RTP). By default sipp takes
    /// 6000, which two parallel runs would share: call scenarios set a free one.
    pub fn media_port(mut self, port: u16) -> Sipp {
        self.media_port = Some(port);
        self
    }

    /// The global timeout (-timeout; the run fails when it hits), default 20 s.
    pub fn timeout(mut self, timeout: Duration) -> Sipp {
        self.scenario_timeout = timeout;
        self
    }

    fn command(&self, dir: &TempDir, local_port: u16) -> Command {
        let sipp = require_peer("sipp");
        let domain = self
            .keys
            .iter()
            .find(|(k, _)| k == "domain")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let mut cmd = Command::new(sipp);
        cmd.current_dir(dir.path())
            .arg("-sf")
            .arg(scenario_path(&self.scenario))
            .arg(self.target.to_string())
            .args([
                "-i",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-p",
                &local_port.to_string(),
            ])
            .args([
                "-t",
                if self.transport == SippTransport::Tcp {
                    "t1"
                } else {
                    "u1"
                },
            ])
            .args(["-m", "1", "-l", "1", "-nostdin"])
            .args([
                "-timeout",
                &format!("{}s", self.scenario_timeout.as_secs()),
                "-timeout_error",
            ])
            .args(["-trace_err", "-error_file"])
            .arg(dir.join("errors.log"))
            .args(["-trace_msg", "-message_file"])
            .arg(dir.join("messages.log"))
            .args(["-trace_logs", "-log_file"])
            .arg(dir.join("log.log"));
        if let Some(port) = self.media_port {
            cmd.args(["-mp", &port.to_string()]);
        }
        if let Some((user, password)) = &self.auth {
            // The digest uri must equal the Request-URI (sip:DOMAIN); sipp's default is
            // the remote address, and it prefixes -auth_uri with "sip:" itself.
            let auth_uri = self.auth_uri.clone().unwrap_or(domain);
            cmd.args(["-au", user, "-ap", password, "-auth_uri", &auth_uri]);
        }
        for (k, v) in &self.keys {
            cmd.args(["-key", k, v]);
        }
        cmd.args(&self.extra);
        cmd
    }

    pub fn run(self) -> SippRun {
        let dir = TempDir::new("sipp");
        let local_port = self.local_port.unwrap_or_else(free_port);
        let mut cmd = self.command(&dir, local_port);
        let command_line = process::describe(&cmd);
        let (status, stdout, stderr) = process::run(
            "sipp",
            &mut cmd,
            self.scenario_timeout + Duration::from_secs(30),
        );
        SippRun {
            scenario: self.scenario,
            command_line,
            status,
            local_port,
            stdout,
            stderr,
            errors: read_lossy(&dir.join("errors.log")),
            messages: read_lossy(&dir.join("messages.log")),
            log: read_lossy(&dir.join("log.log")),
        }
    }

    /// Starts the scenario in the background (e.g. a UAS waiting for the PBX's INVITE)
    /// and returns once sipp holds its SIP port.
    pub fn spawn(self) -> SippBg {
        let dir = TempDir::new("sipp");
        let local_port = self.local_port.unwrap_or_else(free_port);
        let mut cmd = self.command(&dir, local_port);
        let command_line = process::describe(&cmd);
        let proc = Proc::spawn("sipp", &mut cmd);
        let mut bg = SippBg {
            scenario: self.scenario,
            command_line,
            proc: Some(proc),
            dir,
            local_port,
            transport: self.transport,
            scenario_timeout: self.scenario_timeout,
        };
        bg.wait_listening();
        bg
    }
}

/// A sipp scenario running in the background; its log and message trace can be read
/// while it runs (sipp writes them unbuffered).
pub struct SippBg {
    scenario: String,
    command_line: String,
    proc: Option<Proc>,
    dir: TempDir,
    pub local_port: u16,
    transport: SippTransport,
    scenario_timeout: Duration,
}

impl SippBg {
    /// sipp holds its port once it has parsed the scenario and opened its sockets: seen
    /// from outside as the port no longer being bindable.
    fn wait_listening(&mut self) {
        let port = self.local_port;
        let tcp = self.transport == SippTransport::Tcp;
        let held = process::poll_until(Duration::from_secs(10), || {
            let busy = if tcp {
                std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
            } else {
                std::net::UdpSocket::bind(("127.0.0.1", port)).is_err()
            };
            if busy {
                return Some(true);
            }
            let proc = self.proc.as_mut().expect("running");
            proc.try_exit().map(|_| false)
        });
        if held != Some(true) {
            let run = self.finish(Duration::from_secs(5));
            panic!(
                "sipp {} did not open 127.0.0.1:{port} within 10 s\n{}",
                self.scenario,
                run.report()
            );
        }
    }

    /// The scenario's `<log>` lines so far.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.join("log.log"))
    }

    /// The message trace so far.
    pub fn messages(&self) -> String {
        read_lossy(&self.dir.join("messages.log"))
    }

    /// Waits until the scenario has logged `name=VALUE` and returns VALUE (`None` on
    /// timeout or if sipp exits first without logging it).
    pub fn wait_logged(&mut self, name: &str, timeout: Duration) -> Option<String> {
        let prefix = format!("{name}=");
        let path = self.dir.join("log.log");
        let proc = self.proc.as_mut().expect("running");
        let mut exited_checks = 0;
        process::poll_until(timeout, || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let found = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix(&prefix).map(|v| v.trim().to_string()));
            if found.is_some() {
                return found.map(Some);
            }
            if proc.try_exit().is_some() {
                // One more look after the exit, then give up.
                exited_checks += 1;
                if exited_checks > 2 {
                    return Some(None);
                }
            }
            None
        })
        .flatten()
    }

    /// True while sipp runs.
    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| p.try_exit().is_none())
    }

    /// Waits for sipp to end on its own (its scenario finished or its -timeout hit; it is
    /// killed after `grace` more) and returns the run.
    pub fn wait(mut self, grace: Duration) -> SippRun {
        self.finish(self.scenario_timeout + grace)
    }

    fn finish(&mut self, timeout: Duration) -> SippRun {
        let mut proc = self.proc.take().expect("finish once");
        let status = match proc.wait_exit(timeout) {
            Some(s) => s,
            None => {
                proc.kill();
                proc.try_exit().expect("killed")
            }
        };
        let _ = process::poll_until(Duration::from_secs(5), || {
            (proc.stdout.at_eof() && proc.stderr.at_eof()).then_some(())
        });
        SippRun {
            scenario: self.scenario.clone(),
            command_line: self.command_line.clone(),
            status,
            local_port: self.local_port,
            stdout: proc.stdout.text(),
            stderr: proc.stderr.text(),
            errors: read_lossy(&self.dir.join("errors.log")),
            messages: read_lossy(&self.dir.join("messages.log")),
            log: read_lossy(&self.dir.join("log.log")),
        }
    }
}

/// What a sipp run left behind.
#[derive(Debug)]
pub struct SippRun {
    pub scenario: String,
    pub command_line: String,
    pub status: ExitStatus,
    /// sipp's local SIP port (-p).
    pub local_port: u16,
    pub stdout: String,
    pub stderr: String,
    /// -trace_err: unexpected messages and failures.
    pub errors: String,
    /// -trace_msg: every message sent and received.
    pub messages: String,
    /// -trace_logs: the scenario's `<log>` lines.
    pub log: String,
}

impl SippRun {
    /// sipp exits 0 when every call succeeded.
    pub fn success(&self) -> bool {
        self.status.code() == Some(0)
    }

    /// Everything useful for a failure message.
    pub fn report(&self) -> String {
        format!(
            "--- sipp {} ({}) exit {} ---\n{}\n--- sipp error log ---\n{}\n--- sipp <log> lines ---\n{}\n\
             --- sipp message trace ---\n{}\n--- sipp stderr ---\n{}",
            self.scenario,
            self.command_line,
            self.status,
            explain_exit(self.status),
            self.errors,
            self.log,
            self.messages,
            tail(&self.stderr, 40)
        )
    }

    /// Panics with the sipp trace and the PBX's log unless the scenario succeeded.
    pub fn assert_success(&self, pbx: &Pbx) -> &Self {
        if !self.success() {
            panic!(
                "sipp scenario {} failed\n{}\n{}",
                self.scenario,
                self.report(),
                pbx.logs()
            );
        }
        self
    }

    /// The value logged by the scenario as `name=VALUE` (last occurrence).
    pub fn logged(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.log
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(&prefix).map(|v| v.trim().to_string()))
    }

    /// The SIP messages sipp received, in order (text of each).
    pub fn received(&self) -> Vec<String> {
        self.trace_entries()
            .filter(|(dir, _)| dir.contains("received"))
            .map(|(_, m)| m)
            .collect()
    }

    /// The SIP messages sipp sent, in order.
    pub fn sent(&self) -> Vec<String> {
        self.trace_entries()
            .filter(|(dir, _)| dir.contains("sent"))
            .map(|(_, m)| m)
            .collect()
    }

    fn trace_entries(&self) -> impl Iterator<Item = (String, String)> + '_ {
        // Entries look like: "-----...----- TIMESTAMP\nUDP message received [N] bytes :\n\nMESSAGE"
        self.messages
            .split("\n-----------------------------------------------")
            .filter_map(|entry| {
                let entry = entry.trim_start_matches('-');
                let mut lines = entry.splitn(3, '\n');
                let _timestamp = lines.next()?;
                let direction = lines.next()?.to_string();
                let message = lines
                    .next()
                    .unwrap_or("")
                    .trim_start_matches(['\r', '\n'])
                    .to_string();
                (direction.contains("message")).then_some((direction, message))
            })
    }
}

fn explain_exit(status: ExitStatus) -> &'static str {
    match status.code() {
        Some(0) => "all calls succeeded",
        Some(1) => "at least one call failed",
        Some(97) => "exit on internal command",
        Some(99) => "normal exit without calls processed",
        Some(255) | Some(-1) => "fatal error (timeout, or see the error log)",
        Some(254) | Some(-2) => "fatal error binding a socket",
        _ => "killed or unknown exit",
    }
}

/// The first header `name` (case-insensitive, compact forms not handled) of a message text.
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    headers(message, name).into_iter().next()
}

/// Every header `name` of a message text, in order.
pub fn headers<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    message
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .collect()
}
