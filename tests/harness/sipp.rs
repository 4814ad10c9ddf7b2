//! Running sipp scenarios from tests/sipp/ as a UAC against the PBX, with the error log,
//! the full message trace and the scenario's `<log>` lines kept for failure messages.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::net::free_port;
use crate::pbx::{DOMAIN, Pbx};
use crate::peers::require_peer;
use crate::process::{self, TempDir, read_lossy, tail};

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

    pub fn run(self) -> SippRun {
        let sipp = require_peer("sipp");
        let dir = TempDir::new("sipp");
        let local_port = self.local_port.unwrap_or_else(free_port);
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
