//! linphonec (liblinphone 5.1) as a real softphone: a generated rc file, HOME in a temp
//! dir, stdin kept open for commands, and its log (`-d 6`, on stdout) for evidence and for
//! counting registrations.
//!
//! Found by trying (linphone-cli 5.1.65, Debian 12):
//! - linphonec 5.1 prints nothing when a registration succeeds (its `-S` flag does not
//!   cover it); the log says `Account [...] for identity [sip:101@pbx.test] moving from
//!   state [...] to [LinphoneRegistrationOk]`, once per successful REGISTER (refreshes
//!   included, as Ok -> Ok), and `status register` on stdin answers
//!   `registered, identity=sip:101@pbx.test duration=N`.
//! - Without audio devices it logs "Could not find a suitable soundcard" and carries on.
//! - It wants `$HOME/.local/share/linphone/` to exist (its database), and rewrites the rc
//!   file on exit (replacing `passwd` with `ha1`): the rc is always generated afresh.
//! - With `algorithm=SHA-256` in `[auth_info_0]` it answers the SHA-256 challenge
//!   whatever the order of the challenges; without it, it answers MD5.
//! - It refreshes at 90% of the granted expiry.
//! - Media without a soundcard: `soundcard use files`, then `play F.wav` (sent as the
//!   microphone) and `record F.wav` (what it hears, at the call's rate, finished at the
//!   end of the call), typed before the call; `autoanswer enable` answers incoming calls
//!   (it prints `Auto answer enabled.`).
//! - Call progress is in the `-d 6` log: `CallSession [...] moving from state X to Y`
//!   (`LinphoneCallIncomingReceived`, `LinphoneCallConnected`,
//!   `LinphoneCallStreamsRunning`, `LinphoneCallEnd`, `LinphoneCallReleased`); the SIP
//!   messages it sends and receives are logged whole (CRLF line ends).
//! - Its 200 OK Contact carries `;expires=600;+sip.instance="<urn:uuid:…>"`: a quoted
//!   value with angle brackets inside, which a B2BUA's Contact parser must take.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::net::free_port;
use crate::peers::require_peer;
use crate::process::{Proc, TempDir};

#[derive(Clone, Debug)]
pub struct LinphoneAccount {
    pub user: String,
    pub password: String,
    pub domain: String,
    pub registrar: SocketAddr,
    /// "udp" or "tcp".
    pub transport: String,
    /// The expiry linphonec asks for (`reg_expires`).
    pub expires: u32,
    /// `Some("SHA-256")` makes it answer with SHA-256; `None` leaves linphone's default (MD5).
    pub algorithm: Option<String>,
}

pub struct Linphonec {
    proc: Proc,
    dir: TempDir,
    pub sip_port: u16,
    pub account: LinphoneAccount,
    rc: String,
}

const REGISTRATION_OK: &str = "to [LinphoneRegistrationOk]";

impl Linphonec {
    pub fn start(account: LinphoneAccount) -> Linphonec {
        let bin = require_peer("linphonec");
        let dir = TempDir::new("linphonec");
        std::fs::create_dir_all(dir.join(".local/share/linphone"))
            .expect("creating linphone's data dir");
        std::fs::create_dir_all(dir.join(".config")).expect("creating .config");
        let sip_port = free_port();
        let rc = rc(&account, sip_port, free_port(), free_port());
        let rc_path = dir.write("linphonerc", &rc);
        let mut cmd = Command::new(bin);
        cmd.arg("-c")
            .arg(&rc_path)
            .args(["-d", "6"])
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.join(".config"))
            .env("XDG_DATA_HOME", dir.join(".local/share"))
            .env_remove("DISPLAY");
        let proc = Proc::spawn_with_stdin("linphonec", &mut cmd, true);
        Linphonec {
            proc,
            dir,
            sip_port,
            account,
            rc,
        }
    }

    /// How many times the account reached LinphoneRegistrationOk (first + refreshes).
    pub fn register_oks(&self) -> usize {
        self.output().matches(REGISTRATION_OK).count()
    }

    pub fn wait_register_oks(&self, n: usize, timeout: Duration) -> bool {
        self.proc
            .stdout
            .wait_for(timeout, |out| {
                (out.matches(REGISTRATION_OK).count() >= n).then_some(())
            })
            .is_some()
            || self.register_oks() >= n
    }

    /// stdout (where `-d 6` logs go, and command answers) — stderr gets some too.
    pub fn output(&self) -> String {
        format!("{}{}", self.proc.stdout.text(), self.proc.stderr.text())
    }

    /// Types a command into linphonec's prompt.
    pub fn command(&mut self, line: &str) {
        let stdin = self.proc.stdin().expect("linphonec stdin is piped");
        writeln!(stdin, "{line}").expect("writing to linphonec");
        stdin.flush().ok();
    }

    /// Asks `status register` and waits for the answer line.
    pub fn status_register(&mut self, timeout: Duration) -> Option<String> {
        let before = self.proc.stdout.text().matches("identity=").count()
            + self.proc.stdout.text().matches("registered=").count();
        self.command("status register");
        self.proc.stdout.wait_for(timeout, |out| {
            let now = out.matches("identity=").count() + out.matches("registered=").count();
            (now > before).then(|| {
                out.lines()
                    .rev()
                    .find(|l| l.contains("identity=") || l.contains("registered="))
                    .map(|l| l.trim_start_matches("linphonec> ").to_string())
                    .unwrap_or_default()
            })
        })
    }

    /// The SIP messages from linphonec's log whose first line contains `needle`.
    pub fn logged_messages(&self, needle: &str) -> Vec<String> {
        // belle-sip logs each message after "message sent to ..." / "received message"
        // lines; the message text follows on its own lines, ending with an empty line.
        let out = self.output();
        let mut found = Vec::new();
        let lines: Vec<&str> = out.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("REGISTER ") || line.starts_with("SIP/2.0 ") {
                if !line.contains(needle) {
                    continue;
                }
                let msg: Vec<&str> = lines[i..]
                    .iter()
                    .take_while(|l| !l.trim().is_empty())
                    .copied()
                    .collect();
                found.push(msg.join("\n"));
            }
        }
        found
    }

    /// Media from files instead of a soundcard (`soundcard use files`): `play` is sent as
    /// the microphone, what the phone hears is written to `record` (a WAV at the call's
    /// rate, finished when the call ends). Applies to the next call.
    pub fn use_files(&mut self, play: &std::path::Path, record: &std::path::Path) {
        self.command("soundcard use files");
        self.command(&format!("play {}", play.display()));
        self.command(&format!("record {}", record.display()));
    }

    /// `autoanswer enable`, confirmed by its `Auto answer enabled.` line.
    pub fn enable_autoanswer(&mut self, timeout: Duration) -> bool {
        self.command("autoanswer enable");
        self.proc
            .stdout
            .wait_for(timeout, |out| out.contains("Auto answer enabled.").then_some(()))
            .is_some()
    }

    /// How many times a call reached `state` (e.g. `LinphoneCallStreamsRunning`,
    /// `LinphoneCallEnd`), from the `-d 6` log's `moving from state X to Y` lines.
    pub fn call_state_count(&self, state: &str) -> usize {
        count_call_state(&self.output(), state)
    }

    /// Waits until a call has reached `state` `n` times.
    pub fn wait_call_state(&self, state: &str, n: usize, timeout: Duration) -> bool {
        self.proc
            .stdout
            .wait_for(timeout, |out| (count_call_state(out, state) >= n).then_some(()))
            .is_some()
            || self.call_state_count(state) >= n
    }

    /// The SIP requests of `method` in linphonec's log (sent and received), each from its
    /// request line to the end of its headers and body.
    pub fn logged_requests(&self, method: &str) -> Vec<String> {
        let out = self.output();
        let lines: Vec<&str> = out.lines().collect();
        let start = format!("{method} sip:");
        let mut found = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with(&start) || !line.ends_with("SIP/2.0") {
                continue;
            }
            // Headers up to the blank line, then the body up to the next log line.
            let mut msg = Vec::new();
            let mut in_body = false;
            for l in &lines[i..] {
                if !in_body && l.trim().is_empty() {
                    in_body = true;
                    msg.push("");
                    continue;
                }
                if in_body && (l.trim().is_empty() || l.starts_with("20") && l.contains("-message-")) {
                    break;
                }
                msg.push(l);
            }
            found.push(msg.join("\n"));
        }
        found
    }

    pub fn report(&self) -> String {
        format!(
            "--- linphonec home {} ---\nrc as generated:\n{}\n{}",
            self.dir.path().display(),
            self.rc,
            self.proc.report(600)
        )
    }
}

fn count_call_state(out: &str, state: &str) -> usize {
    let needle = format!(" to {state}");
    out.lines()
        .filter(|l| l.contains("moving from state") && l.trim_end().ends_with(&needle))
        .count()
}

/// The rc file: one proxy, one auth_info, loopback only, no video, no TCP/TLS listeners
/// unless the account uses TCP.
pub fn rc(a: &LinphoneAccount, sip_port: u16, audio_rtp: u16, video_rtp: u16) -> String {
    let (udp_port, tcp_port) = if a.transport == "tcp" {
        (0, sip_port)
    } else {
        (sip_port, 0)
    };
    let algorithm = a
        .algorithm
        .as_deref()
        .map(|alg| format!("algorithm={alg}\n"))
        .unwrap_or_default();
    format!(
        "[sip]\n\
         sip_port={udp_port}\n\
         sip_tcp_port={tcp_port}\n\
         sip_tls_port=0\n\
         default_proxy=0\n\
         register_only_when_network_is_up=0\n\
         ipv6_enabled=0\n\
         guess_hostname=0\n\
         bind_address=127.0.0.1\n\
         \n\
         [net]\n\
         firewall_policy=0\n\
         \n\
         [rtp]\n\
         audio_rtp_port={audio_rtp}\n\
         video_rtp_port={video_rtp}\n\
         \n\
         [video]\n\
         capture=0\n\
         display=0\n\
         enabled=0\n\
         \n\
         [proxy_0]\n\
         reg_proxy=<sip:{registrar};transport={t}>\n\
         reg_identity=sip:{user}@{domain}\n\
         reg_expires={expires}\n\
         reg_sendregister=1\n\
         publish=0\n\
         \n\
         [auth_info_0]\n\
         username={user}\n\
         passwd={password}\n\
         realm={domain}\n\
         domain={domain}\n\
         {algorithm}",
        registrar = a.registrar,
        t = a.transport,
        user = a.user,
        domain = a.domain,
        expires = a.expires,
        password = a.password,
    )
}
