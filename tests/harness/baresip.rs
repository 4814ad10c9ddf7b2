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
//!
//! Audio, headless (see [`BaresipOptions`]):
//! - `audio_source aufile,FILE.wav` plays an 8 kHz mono WAV as the microphone (`ausine`
//!   works only at 48 kHz); it stops at the end of the file, so tones outlast the call.
//! - `module sndfile.so` + `snd_path DIR` writes `dump-<YYYY-MM-DD-hh-mm-ss>-dec.wav`
//!   (what the phone decoded from the network) and `-enc.wav` (what it sent), 16-bit at
//!   the codec rate, written as packets arrive (nothing is written while no RTP comes).
//! - No audio player is needed: without one (`(play)` in its rx pipeline line) it still
//!   decodes into the filters. No ALSA, no device.
//! - Its first hold (a re-INVITE whose direction is not sendrecv, sent or received)
//!   resets the receive side: `audio_decoder_set` flushes the rx filter list and
//!   `aufilt_setup` does not rebuild it while the tx filters exist, so `*-dec.wav` ends at
//!   the first hold, on both phones, and nothing after a resume is recorded. Media after
//!   a resume has to be observed elsewhere (an RTP socket the test owns).
//! - On hold it stops sending RTP itself (`stream_send` returns while `s->hold`).
//! - `answermode=auto` answers at once; `audio_codecs=PCMA` keeps the offer to one codec.
//! - ctrl_tcp: `dial URI`, `hangup`, `hold`, `resume` answer `{"response":true,"ok":…}`;
//!   events (`CALL_RINGING`, `CALL_ESTABLISHED`, `CALL_CLOSED` with the reason in
//!   `param`, …) arrive on the same connection, and only on the latest one (see
//!   [`crate::ctrl`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::ctrl::{Ctrl, event_type};
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

/// Media and call handling of a baresip instance (the default: no audio at all, manual
/// answer, registering through the account's registrar).
#[derive(Clone, Debug, Default)]
pub struct BaresipOptions {
    /// `answermode=auto`: incoming calls are answered at once.
    pub auto_answer: bool,
    /// A WAV played as the microphone (`aufile`); 8 kHz mono 16-bit for G.711.
    pub play: Option<PathBuf>,
    /// Record what the phone hears and sends (`sndfile`, into `CONFDIR/snd`:
    /// `dump-<time>-dec.wav` is the decoded received audio, `-enc.wav` what it sent).
    pub record: bool,
    /// The account's `audio_codecs`, e.g. `PCMA` (default: every loaded codec).
    pub codecs: Option<String>,
    /// No registrar: the account is `sip:USER@127.0.0.1:SIPPORT` with `regint=0`, for
    /// direct peer-to-peer calls that prove the harness without the PBX.
    pub no_registrar: bool,
}

pub struct Baresip {
    // Field order: the control connection closes before the process dies.
    ctrl: Ctrl,
    proc: Proc,
    dir: TempDir,
    pub sip_port: u16,
    pub ctrl_port: u16,
    pub account: BaresipAccount,
    pub options: BaresipOptions,
}

/// How long a ctrl_tcp command may take to be answered.
const CTRL_TIMEOUT: Duration = Duration::from_secs(10);

impl Baresip {
    pub fn start(account: BaresipAccount) -> Baresip {
        Self::start_with(account, BaresipOptions::default())
    }

    pub fn start_with(account: BaresipAccount, options: BaresipOptions) -> Baresip {
        let bin = require_peer("baresip");
        let dir = TempDir::new("baresip");
        let sip_port = free_port_range(2);
        let ctrl_port = free_port();
        if options.record {
            std::fs::create_dir_all(dir.join("snd")).expect("creating the sndfile dir");
        }
        dir.write("config", config_with(sip_port, ctrl_port, &options, &dir.join("snd")));
        dir.write(
            "accounts",
            format!("{}\n", account_line_with(&account, &options, sip_port)),
        );
        dir.write("contacts", "");
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg(dir.path())
            .arg("-s")
            .env("HOME", dir.path());
        let mut proc = Proc::spawn("baresip", &mut cmd);
        let ready = proc.stdout.wait_for(Duration::from_secs(30), |out| {
            out.contains("baresip is ready.").then_some(())
        });
        if ready.is_none() {
            let exited = proc.try_exit();
            panic!(
                "baresip did not become ready within 30 s (exit: {exited:?})\n--- config ---\n{}\n{}",
                crate::process::read_lossy(&dir.join("config")),
                proc.report(400)
            );
        }
        let ctrl = match Ctrl::connect(ctrl_port, Duration::from_secs(10)) {
            Ok(c) => c,
            Err(e) => panic!("{e}\n{}", proc.report(400)),
        };
        Baresip {
            ctrl,
            proc,
            dir,
            sip_port,
            ctrl_port,
            account,
            options,
        }
    }

    /// This phone's own SIP URI when it runs without a registrar.
    pub fn direct_uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{};transport=udp", self.account.user, self.sip_port)
    }

    /// The control connection (events since start-up).
    pub fn ctrl(&self) -> &Ctrl {
        &self.ctrl
    }

    /// Runs a ctrl_tcp command; panics with the phone's report if baresip refuses it or
    /// does not answer.
    pub fn must(&self, command: &str, params: &str) -> Value {
        self.ctrl
            .command(command, params, CTRL_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.report()))
    }

    /// `dial URI` (a new outgoing call).
    pub fn dial(&self, uri: &str) {
        self.must("dial", uri);
    }

    /// `hangup` (the current call).
    pub fn hangup(&self) {
        self.must("hangup", "");
    }

    /// `hold` (re-INVITE with a=sendonly).
    pub fn hold(&self) {
        self.must("hold", "");
    }

    /// `resume` (re-INVITE with a=sendrecv).
    pub fn resume(&self) {
        self.must("resume", "");
    }

    /// Waits for the `n`-th (1-based) ctrl_tcp event of type `kind` (e.g.
    /// `CALL_ESTABLISHED`, `CALL_CLOSED`, `CALL_INCOMING`).
    pub fn wait_event(&self, kind: &str, n: usize, timeout: Duration) -> Option<Value> {
        self.ctrl.wait_event_type(kind, n, timeout)
    }

    /// How many events of type `kind` arrived so far.
    pub fn event_count(&self, kind: &str) -> usize {
        self.ctrl.events().iter().filter(|e| event_type(e) == kind).count()
    }

    /// The sndfile directory (what the phone heard and sent, when `record` is on).
    pub fn snd_dir(&self) -> PathBuf {
        self.dir.join("snd")
    }

    /// The newest `*-dec.wav` (decoded received audio) in the sndfile directory.
    pub fn received_audio(&self) -> Option<PathBuf> {
        newest_with_suffix(&self.snd_dir(), "-dec.wav")
    }

    /// The newest `*-enc.wav` (the audio the phone encoded and sent).
    pub fn sent_audio(&self) -> Option<PathBuf> {
        newest_with_suffix(&self.snd_dir(), "-enc.wav")
    }

    /// The SIP requests of method `method` that baresip received (its `-s` trace).
    pub fn received_requests(&self, method: &str) -> Vec<TracedMessage> {
        let me = format!("-> 127.0.0.1:{}", self.sip_port);
        self.trace()
            .into_iter()
            .filter(|m| m.route.trim_end().ends_with(&me) && m.first_line().starts_with(&format!("{method} ")))
            .collect()
    }

    /// The SIP responses baresip received whose CSeq method is `method`.
    pub fn received_responses(&self, method: &str) -> Vec<TracedMessage> {
        let me = format!("-> 127.0.0.1:{}", self.sip_port);
        self.trace()
            .into_iter()
            .filter(|m| m.route.trim_end().ends_with(&me) && m.is_response() && m.cseq_method() == Some(method))
            .collect()
    }

    /// The SIP responses baresip sent whose CSeq method is `method`.
    pub fn sent_responses(&self, method: &str) -> Vec<TracedMessage> {
        let me = format!("127.0.0.1:{} ->", self.sip_port);
        self.trace()
            .into_iter()
            .filter(|m| m.route.contains(&me) && m.is_response() && m.cseq_method() == Some(method))
            .collect()
    }

    /// The SIP requests baresip sent of method `method`.
    pub fn sent_requests(&self, method: &str) -> Vec<TracedMessage> {
        let me = format!("127.0.0.1:{} ->", self.sip_port);
        self.trace()
            .into_iter()
            .filter(|m| m.route.contains(&me) && m.first_line().starts_with(&format!("{method} ")))
            .collect()
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

    /// Sends one ctrl_tcp command (netstring JSON) on the phone's control connection and
    /// returns the response as JSON text (or the error).
    pub fn command(&self, command: &str, params: &str) -> String {
        match self.ctrl.command(command, params, CTRL_TIMEOUT) {
            Ok(v) => v.to_string(),
            Err(e) => e,
        }
    }

    /// Config dir, stdout/stderr (the SIP trace), ctrl_tcp events, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "--- baresip config dir {} ---\naccounts: {}\n{}\n{}",
            self.dir.path().display(),
            account_line_with(&self.account, &self.options, self.sip_port),
            self.proc.report(400),
            self.ctrl.report()
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

/// The accounts line for `options`: answer mode, codecs, and without a registrar a
/// direct account on the phone's own address.
pub fn account_line_with(a: &BaresipAccount, options: &BaresipOptions, sip_port: u16) -> String {
    let answermode = if options.auto_answer { "auto" } else { "manual" };
    let mut line = if options.no_registrar {
        format!(
            "<sip:{user}@127.0.0.1:{sip_port};transport=udp>;regint=0;answermode={answermode};mwi=no;\
             call_transfer=no",
            user = a.user
        )
    } else {
        account_line(a).replace("answermode=manual", &format!("answermode={answermode}"))
    };
    if let Some(codecs) = &options.codecs {
        line.push_str(&format!(";audio_codecs={codecs}"));
    }
    line
}

/// [`config`] plus the audio modules `options` need: `aufile` as the microphone and
/// `sndfile` recording into `snd_path`. No audio player: baresip 1.0 then decodes into
/// the filters (sndfile) and drops the samples, which is all a headless test needs.
pub fn config_with(sip_port: u16, ctrl_port: u16, options: &BaresipOptions, snd_path: &Path) -> String {
    let mut c = config(sip_port, ctrl_port);
    if options.play.is_some() || options.record {
        // Its own RTP ports (random in 1024-49152 by default) below the PBXes' relay
        // blocks (`rtp_port_range`: 15000-19999), the default range of any other PBX on
        // the machine (20000-29999) and the kernel's ephemeral range (where `free_port`
        // picks every other peer's ports).
        c.push_str("rtp_ports\t\t10000-14999\n");
    }
    if let Some(wav) = &options.play {
        c.push_str(&format!("audio_source\t\taufile,{}\n", wav.display()));
    }
    if options.record {
        c.push_str("module\t\t\tsndfile.so\n");
        c.push_str(&format!("snd_path\t\t{}\n", snd_path.display()));
    }
    c
}

fn newest_with_suffix(dir: &Path, suffix: &str) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
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
