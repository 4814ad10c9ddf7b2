//! The desktop app end to end, as a person uses it: the real `hark-desktop` binary under
//! Xvfb, driven through tauri-driver + WebKitWebDriver (W3C WebDriver over HTTP).
//!
//! The app starts in embedded PBX mode on first launch (its own office tenant, extension
//! 100 for its user, the PBX on 127.0.0.1 with a run-time port). A `hark phone answer`
//! peer registers to it as 102; the test turns the company's audio recording on by
//! clicking, dials 102 by clicking it, sees "Recording", clicks Pause and Resume, and the
//! PBX's recording gets both events; hangs up, finds the recording in the library, plays
//! it and opens its CDR. Bad input shows a clear message: a corrupt recording file, a PBX
//! port another program holds.
//!
//! Needs Xvfb, WebKitWebDriver (webkit2gtk-driver) and tauri-driver (scripts/test.sh
//! installs them). Without them the test is skipped, except under CI=true where it fails.
//! HARK_SCREENSHOTS=DIR saves a PNG of each view there (docs/screenshots).

use hark_e2e::pbx::hark_bin;
use hark_e2e::phone::{account_args, Phone};
use hark_e2e::process::{Proc, TempDir};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_secs(30);

fn which(name: &str) -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cargo/bin").join(name);
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

fn desktop_bin() -> PathBuf {
    hark_bin().with_file_name("hark-desktop")
}

/// The tools; a missing one fails the test (in CI and outside it: never a silent skip).
fn tools() -> (PathBuf, PathBuf, PathBuf) {
    let found = (which("Xvfb"), which("tauri-driver"), which("WebKitWebDriver"));
    let app = desktop_bin();
    match found {
        (Some(x), Some(t), Some(w)) if app.is_file() => (x, t, w),
        other => panic!(
            "desktop e2e needs Xvfb, tauri-driver, WebKitWebDriver and {} (found {:?}); scripts/test.sh installs \
             them and builds the app",
            app.display(),
            other
        ),
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A virtual display; its number comes from Xvfb itself (-displayfd).
fn start_xvfb(xvfb: &Path) -> (Proc, String) {
    let mut cmd = Command::new(xvfb);
    cmd.args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"]);
    let proc = Proc::spawn("Xvfb", &mut cmd);
    let n = proc
        .stdout
        .wait_for(STEP, |t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        .unwrap_or_else(|| panic!("Xvfb did not start:\n{}", proc.report(20)));
    (proc, format!(":{n}"))
}

// ---- a minimal W3C WebDriver client over std's TcpStream ----

struct WebDriver {
    addr: SocketAddr,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    // Read the head, then exactly Content-Length bytes (or to EOF without one).
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let len = head.lines().find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()));
            if let Some(len) = len {
                if raw.len() >= end + 4 + len {
                    break;
                }
            } else if head.contains("transfer-encoding: chunked") && raw.ends_with(b"0\r\n\r\n") {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    if std::env::var_os("HARK_WD_TRACE").is_some() {
        eprintln!(">> {method} {path} {body}\n<< {}", text.chars().take(400).collect::<String>());
    }
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| format!("bad HTTP answer: {text}"))?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_owned() };
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("bad JSON ({e}): {body}"))?;
    if status >= 400 {
        return Err(format!("{method} {path} → {status}: {}", v["value"]));
    }
    Ok(v["value"].clone())
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl WebDriver {
    fn start(addr: SocketAddr, app: &Path) -> WebDriver {
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "wry", "tauri:options": {"application": app}}}});
        let deadline = Instant::now() + STEP;
        loop {
            match http(addr, "POST", "/session", Some(&caps)) {
                Ok(v) => {
                    let session = v["sessionId"].as_str().expect("sessionId").to_owned();
                    return WebDriver { addr, session };
                }
                Err(e) if Instant::now() > deadline => panic!("no WebDriver session: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        http(self.addr, method, &format!("/session/{}{path}", self.session), body.as_ref())
    }

    /// Runs JS in the page; returns its value.
    fn js(&self, script: &str) -> Value {
        match self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": []}))) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("script failed: {e}");
                Value::Null
            }
        }
    }

    /// Waits until `script` returns something truthy; returns it.
    fn wait_js(&self, script: &str, what: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let v = self.js(script);
            let truthy = match &v {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let page = self.js("return document.body ? document.body.innerText : ''");
                panic!("timed out waiting for {what}; the page says:\n{}", page.as_str().unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(v) = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css}))) {
                return v[ELEMENT].as_str().expect("element id").to_owned();
            }
            if Instant::now() > deadline {
                let page = self.js("return document.body ? document.body.innerText : ''");
                panic!("no element {css}; the page says:\n{}", page.as_str().unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Clicks like a person: WebDriver's element click (scrolls into view, real events).
    fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({}))).unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/clear"), Some(json!({}))).ok();
        self.cmd("POST", &format!("/element/{id}/value"), Some(json!({"text": text}))).unwrap_or_else(|e| panic!("type {css}: {e}"));
    }

    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.cmd("GET", &format!("/element/{id}/text"), None).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("HARK_SCREENSHOTS") else { return };
        std::thread::sleep(Duration::from_millis(400));
        let v = self.cmd("GET", "/screenshot", None).expect("screenshot");
        let png = base64_decode(v.as_str().unwrap_or_default());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = http(self.addr, "DELETE", &format!("/session/{}", self.session), None);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn recordings(pbx_dir: &Path) -> Vec<Value> {
    let out = Command::new(hark_bin()).args(["pbx", "recordings", "list", "--data"]).arg(pbx_dir).arg("--json").output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// The app under tauri-driver on its own display, with a fresh data directory.
struct App {
    wd: WebDriver,
    driver: Proc,
    data: TempDir,
    _x: Proc,
    /// The virtual display (":N").
    display: String,
}

impl App {
    /// Presses `keys` (xdotool's names, e.g. "ctrl+shift+p") on the app's display, as a
    /// user's keyboard would: global shortcuts see it wherever the focus is.
    fn press(&self, keys: &str) {
        let xdotool = hark_e2e::peers::require_peer("xdotool");
        let out = Command::new(xdotool).args(["key", keys]).env("DISPLAY", &self.display).output().unwrap();
        assert!(out.status.success(), "xdotool key {keys}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn launch(label: &str) -> App {
    launch_env(label, &[])
}

/// The same, with more environment for the app (a sound server).
fn launch_env(label: &str, env: &[(String, String)]) -> App {
    let (xvfb, tauri_driver, webkit_driver) = tools();
    let data = TempDir::new(label);
    let (x, display) = start_xvfb(&xvfb);
    let (port, native_port) = (free_tcp_port(), free_tcp_port());
    let mut cmd = Command::new(&tauri_driver);
    cmd.args(["--port", &port.to_string(), "--native-port", &native_port.to_string(), "--native-driver"])
        .arg(&webkit_driver)
        .env("DISPLAY", display.as_str())
        .env("HARK_DESKTOP_DATA", data.path())
        .env("HARK_SIP", "127.0.0.1:0")
        .env("HARK_AUDIO", "null")
        .env("HARK_EXIT_ON_CLOSE", "1")
        .env("HOME", data.path())
        .env_remove("WAYLAND_DISPLAY")
        .envs(env.iter().map(|(k, v)| (k, v)));
    if std::env::var_os("HARK_SCREENSHOTS").is_some() {
        // WebKitWebDriver's screenshots need WebKit's compositing, which the app turns off.
        cmd.env("HARK_WEBKIT_COMPOSITING", "1");
    }
    let driver = Proc::spawn("tauri-driver", &mut cmd);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let wd = WebDriver::start(addr, &desktop_bin());
    App { wd, driver, data, _x: x, display }
}

/// Waits for registration to the embedded PBX; returns the PBX's SIP address.
fn embedded_pbx(wd: &WebDriver) -> SocketAddr {
    wd.wait_js(
        "const e = document.querySelector('[data-testid=registration]'); return e && e.dataset.state === 'registered' ? e.innerText : null",
        "the phone to register to the embedded PBX",
    );
    let badge = wd.text("[data-testid=pbx-badge]");
    badge.trim().trim_start_matches("PBX on ").parse().unwrap_or_else(|_| panic!("badge: {badge}"))
}

fn add_peer(pbx_dir: &Path, ext: &str, password: &str) {
    let out = Command::new(hark_bin())
        .args(["pbx", "user", "add", "--data"])
        .arg(pbx_dir)
        .args(["--tenant", "office", "--ext", ext, "--password", password])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn quit_during_a_recorded_call_finalizes_the_recording() {
    let app = launch("desktop-quit");
    let wd = &app.wd;
    let sip = embedded_pbx(wd);
    wd.click("[data-testid=nav-pbx]");
    wd.click("[data-testid=company-audio]");
    wd.wait_js("return document.querySelector('[data-testid=company-audio]')?.checked", "the company switch");
    let pbx_dir = app.data.join("pbx");
    add_peer(&pbx_dir, "103", "peer-pw");
    let mut peer = Phone::answer(account_args(sip, "103", "peer-pw", "hark.local"), &["--wait", "90"]);
    peer.wait_event("registered", STEP);
    wd.click("[data-testid=nav-phone]");
    wd.type_into("[data-testid=dial-input]", "103");
    wd.click("[data-testid=dial-button]");
    wd.wait_js("return document.querySelector('[data-testid=recording-indicator]')?.dataset.recording === 'recording'", "Recording");
    std::thread::sleep(Duration::from_millis(1500));
    wd.click("[data-testid=nav-settings]");
    // Quit: the app hangs up, stops its PBX (which closes the file) and exits; the
    // WebDriver session goes with it, so the click's answer may be an error.
    let id = wd.find("[data-testid=quit]");
    let _ = wd.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    peer.wait_exit(STEP);
    let deadline = Instant::now() + STEP;
    loop {
        let all = recordings(&pbx_dir);
        if let Some(r) = all.first().filter(|r| r["status"] != "recording" && r["status"] != "paused") {
            assert!(matches!(r["status"].as_str(), Some("completed" | "stopped")), "{r}");
            assert!(r["duration_ms"].as_u64().unwrap_or(0) >= 1000, "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "the recording was not finalized: {all:?}\n{}", app.driver.report(40));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn desktop_app_calls_pauses_resumes_and_plays_the_recording() {
    // A sound card for the library's playback: a PulseAudio null sink the test listens to.
    let pulse = hark_e2e::pulse::PulseServer::start();
    pulse.plug("speaker");
    let app = launch_env("desktop", &pulse.client_env("speaker", "speaker.monitor"));
    let (wd, driver, data) = (&app.wd, &app.driver, &app.data);
    let fail = |what: &str| format!("{what}\n--- tauri-driver and app:\n{}", driver.report(60));

    // First launch: embedded PBX mode, registered to its own PBX.
    let sip = embedded_pbx(wd);
    wd.screenshot("phone");

    // The PBX view: address, switches; turn the company's audio recording on by clicking.
    wd.click("[data-testid=nav-pbx]");
    let shown = wd.text("[data-testid=pbx-address]");
    assert_eq!(shown.trim(), sip.to_string());
    wd.wait_js("return document.querySelector('[data-testid=user-100] [data-testid=policy]')?.innerText.startsWith('recorded: no')", "policy: not recorded");
    wd.click("[data-testid=company-audio]");
    wd.wait_js(
        "return document.querySelector('[data-testid=user-100] [data-testid=policy]')?.innerText.startsWith('recorded: yes, because')",
        "policy: recorded after the company switch",
    );

    // A peer: extension 102, added with the CLI while the app's PBX runs, answers.
    let pbx_dir = data.join("pbx");
    add_peer(&pbx_dir, "102", "peer-pw");
    let tone = data.join("tone.wav");
    hark_e2e::audio::write_tone_wav(&tone, 440.0, 20.0, 8000);
    let mut peer = Phone::answer(account_args(sip, "102", "peer-pw", "hark.local"), &["--wait", "90", "--play", tone.to_str().unwrap()]);
    peer.wait_event("registered", STEP);
    wd.screenshot("pbx");

    // Dial 102 by clicking it in the office list.
    wd.click("[data-testid=nav-phone]");
    wd.click("[data-testid=ext-102]");
    peer.wait_event("answered", STEP);
    wd.wait_js("return document.querySelector('[data-testid=recording-indicator]')?.dataset.recording === 'recording'", "Recording");
    assert_eq!(wd.text("[data-testid=recording-indicator]").trim(), "Recording");
    wd.screenshot("call");
    std::thread::sleep(Duration::from_millis(800));
    wd.click("[data-testid=btn-pause]");
    wd.wait_js("return document.querySelector('[data-testid=recording-indicator]')?.dataset.recording === 'paused'", "Paused");
    let no_error = wd.js("return document.querySelector('[data-testid=control-error]') === null");
    assert_eq!(no_error, Value::Bool(true), "a pause failure is shown: {}", wd.text("[data-testid=call-screen]"));
    std::thread::sleep(Duration::from_millis(800));
    wd.click("[data-testid=btn-resume]");
    wd.wait_js("return document.querySelector('[data-testid=recording-indicator]')?.dataset.recording === 'recording'", "Recording again");
    std::thread::sleep(Duration::from_millis(800));
    // The agent's global shortcut (Ctrl+Shift+P) pauses and resumes without the mouse.
    app.press("ctrl+shift+p");
    wd.wait_js("return document.querySelector('[data-testid=recording-indicator]')?.dataset.recording === 'paused'", "Paused by the shortcut");
    std::thread::sleep(Duration::from_millis(800));
    app.press("ctrl+shift+p");
    wd.wait_js("return document.querySelector('[data-testid=recording-indicator]')?.dataset.recording === 'recording'", "Resumed by the shortcut");
    std::thread::sleep(Duration::from_millis(800));
    wd.click("[data-testid=btn-hangup]");
    wd.wait_js("return !document.querySelector('[data-testid=call-screen]') && document.querySelector('[data-testid=last-ended]')", "the call to end");
    peer.wait_exit(STEP);

    // The PBX's recording holds the pause and the resume, from the phone's MESSAGE.
    let deadline = Instant::now() + STEP;
    let rec = loop {
        let all = recordings(&pbx_dir);
        if let Some(r) = all.iter().find(|r| r["status"] == "completed") {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "{}", fail(&format!("no completed recording: {all:?}")));
        std::thread::sleep(Duration::from_millis(200));
    };
    let events: Vec<&str> = rec["events"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    let count = |kind| events.iter().filter(|e| **e == kind).count();
    assert!(count("pause") == 2 && count("resume") == 2, "two pauses and resumes (buttons, then shortcut): {events:?}");

    // The library: find it, play it, open its CDR.
    wd.click("[data-testid=nav-recordings]");
    wd.type_into("[data-testid=lib-search]", "102");
    let id = format!("pbx-{}", rec["id"]);
    let row = format!("[data-testid=rec-row][data-id='{id}']");
    wd.find(&row);
    let heard = data.join("speaker.raw");
    let speaker = pulse.record("speaker.monitor", 8000, &heard);
    wd.click(&format!("{row} [data-testid=btn-play]"));
    wd.wait_js("return document.querySelector('[data-testid=player-position]')?.dataset.playing === 'yes'", "playback");
    // Played for real through rodio on the sound card: the peer's 440 Hz comes out.
    let played = hark_e2e::process::poll_until(Duration::from_secs(15), || {
        let pcm = hark_e2e::audio::Pcm { rate: 8000, samples: hark_e2e::pulse::read_raw(&heard), source: "speaker".into() };
        (hark_e2e::audio::analyse(&pcm, 440.0, 660.0, 0.0).expected_secs() >= 0.5).then_some(())
    });
    drop(speaker);
    assert!(played.is_some(), "{}", fail("the library's playback never reached the speaker"));
    wd.wait_js("return document.querySelectorAll('[data-testid=waveform] .mark.pause').length >= 1", "a pause marker on the waveform");
    wd.click(&format!("{row} [data-testid=btn-cdr]"));
    let caller = wd.wait_js("return document.querySelector('[data-testid=cdr-view] [data-field=caller]')?.innerText", "the CDR");
    assert!(caller.as_str().unwrap().contains("100"), "caller {caller}");
    let callee = wd.text("[data-testid=cdr-view] [data-field=callee]");
    assert!(callee.contains("102"), "callee {callee}");
    wd.screenshot("recordings");

    // An incoming call: the phone view comes forward, Answer by clicking; the caller hangs up.
    let mut caller = Phone::call(account_args(sip, "102", "peer-pw", "hark.local"), "100", &["--duration", "2"]);
    wd.wait_js("return document.querySelector('[data-testid=call-screen]')?.dataset.callState === 'incoming'", "the incoming call");
    assert!(wd.text("[data-testid=call-title]").contains("Incoming call from 102"));
    wd.screenshot("incoming");
    wd.click("[data-testid=btn-answer]");
    wd.wait_js("return document.querySelector('[data-testid=call-screen]')?.dataset.callState === 'up'", "the answered call");
    caller.wait_event("answered", STEP);
    wd.wait_js("return document.querySelector('[data-testid=last-ended]')?.innerText", "the caller's hangup");
    caller.wait_exit(STEP);
    // Announced once (a desktop notification when the window is not in front; here,
    // without a window manager, it is in front), however many updates the call had.
    let log = driver.stderr.text() + &driver.stdout.text();
    assert_eq!(log.matches("incoming call announced peer=\"102\"").count(), 1, "{}", fail("the incoming call was not announced once"));
    wd.click("[data-testid=nav-recordings]");

    // Bad input: a corrupt recording file is a clear message, not a crash.
    let wav = pbx_dir.join("recordings").join(rec["path"].as_str().unwrap());
    let wav = if wav.is_file() { wav } else { PathBuf::from(rec["path"].as_str().unwrap()) };
    std::fs::write(&wav, b"RIFF\x24\x00\x00\x00WAVEjunk-not-a-wav").unwrap();
    wd.click("[data-testid=lib-refresh]");
    wd.click(&format!("{row} [data-testid=btn-play]"));
    let err = wd.wait_js("return document.querySelector('[data-testid=lib-error]')?.innerText", "the corrupt-file message");
    assert!(err.as_str().unwrap().contains("not a playable WAV file"), "{err}");
    // …and a deleted one too.
    std::fs::remove_file(&wav).unwrap();
    wd.click(&format!("{row} [data-testid=btn-play]"));
    wd.wait_js(
        "const e = document.querySelector('[data-testid=lib-error]'); return e && e.innerText.includes('missing') ? e.innerText : null",
        "the deleted-file message",
    );

    // Bad input: a PBX port another program holds.
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().port();
    wd.click("[data-testid=nav-settings]");

    // Settings' audio checks: the microphone's level meter shows a level, or (no sound
    // card, as on CI) says why not; the test tone plays or says why not. Neither crashes.
    let meter = wd.wait_js(
        "const m = document.querySelector('[data-testid=mic-meter]'); return m && m.dataset.state !== 'off' ? m.dataset.state : null",
        "the level meter to open or say why not",
    );
    if meter == "error" {
        let msg = wd.text("[data-testid=mic-meter-error]");
        assert!(msg.contains("cannot open the microphone"), "{msg}");
    } else {
        assert_eq!(meter, "on");
        let level = wd.js("return Number(document.querySelector('[data-testid=mic-meter]').dataset.level)");
        assert!(level.as_f64().is_some_and(|l| (-96.0..=0.0).contains(&l)), "level {level}");
    }
    wd.click("[data-testid=btn-test-tone]");
    let tone = wd.wait_js(
        "const e = document.querySelector('[data-testid=test-tone-error]'); const b = document.querySelector('[data-testid=btn-test-tone]'); \
         return e ? 'error: ' + e.innerText : b && b.innerText === 'Playing…' ? 'playing' : null",
        "the test tone to play or say why not",
    );
    let tone = tone.as_str().unwrap_or_default().to_owned();
    assert!(tone == "playing" || tone.contains("speaker"), "{tone}");
    wd.type_into("[data-testid=pbx-port]", &taken.to_string());
    wd.screenshot("settings");
    wd.click("[data-testid=settings-save]");
    let err = wd.wait_js("return document.querySelector('[data-testid=settings-error]')?.innerText", "the port-taken message");
    assert!(err.as_str().unwrap().contains(&format!("SIP port {taken} is taken")), "{err}");
    // Back to an automatic port: the PBX and the phone come back.
    wd.type_into("[data-testid=pbx-port]", "0");
    wd.click("[data-testid=settings-save]");
    wd.wait_js("return document.querySelector('[data-testid=registration]')?.dataset.state === 'registered'", "registration after the fix");
    drop(held);

    // Bad input: an account on another PBX with the wrong password says so.
    let other = hark_e2e::pbx::Pbx::builder().user("201", "right-pw").start();
    wd.click("[data-testid=mode-account]");
    wd.type_into("[data-testid=acct-server]", &other.sip_udp.to_string());
    wd.type_into("[data-testid=acct-user]", "201");
    wd.type_into("[data-testid=acct-password]", "wrong-pw");
    wd.click("[data-testid=settings-save]");
    let shown = wd.wait_js(
        "const e = document.querySelector('[data-testid=registration]'); return e && e.dataset.state === 'failed' ? e.innerText : null",
        "the wrong-password message",
    );
    assert!(shown.as_str().unwrap().contains("wrong user or password"), "{shown}");
    // An unreachable server says so within seconds.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    wd.type_into("[data-testid=acct-server]", &silent.local_addr().unwrap().to_string());
    wd.click("[data-testid=settings-save]");
    let shown = wd.wait_js(
        "const e = document.querySelector('[data-testid=registration]'); return e && e.dataset.state === 'failed' && e.innerText.includes('no answer') ? e.innerText : null",
        "the unreachable-server message",
    );
    assert!(shown.as_str().unwrap().contains("is it running and reachable?"), "{shown}");
    drop(silent);
    // And the right server and password register.
    wd.type_into("[data-testid=acct-server]", &other.sip_udp.to_string());
    wd.type_into("[data-testid=acct-password]", "right-pw");
    wd.click("[data-testid=settings-save]");
    wd.wait_js("return document.querySelector('[data-testid=registration]')?.dataset.state === 'registered'", "registration with the right password");

    // Leaving Settings closes the microphone: the app's meter is no longer running.
    wd.click("[data-testid=nav-phone]");
    wd.js("window.__meter = null; window.__TAURI_INTERNALS__.invoke('meter_level').then(() => { window.__meter = 'still open'; }, (e) => { window.__meter = String(e); }); return true");
    let meter = wd.wait_js("return window.__meter", "the meter's state after leaving Settings");
    assert!(meter.as_str().unwrap_or_default().contains("not running"), "{meter}");
}

/// Attended transfer from the app: in a call with 102, Transfer → Consult first with 103
/// (102 is held), then "Transfer 102 to 103": the PBX joins 102 and 103, the app's two
/// calls end, and the consulted call's CDR lists 102 as the party the transfer brought in.
#[test]
fn attended_transfer_from_the_app_joins_the_two_peers() {
    let app = launch("desktop-attended");
    let wd = &app.wd;
    let sip = embedded_pbx(wd);
    let pbx_dir = app.data.join("pbx");
    add_peer(&pbx_dir, "102", "peer-102");
    add_peer(&pbx_dir, "103", "peer-103");
    // Each peer hangs up 10 s after it answered: that ends the joined call (and writes
    // its CDR) soon after the transfer.
    let mut first = Phone::answer(account_args(sip, "102", "peer-102", "hark.local"), &["--wait", "90", "--duration", "10"]);
    let mut second = Phone::answer(account_args(sip, "103", "peer-103", "hark.local"), &["--wait", "90", "--duration", "10"]);
    first.wait_event("registered", STEP);
    second.wait_event("registered", STEP);
    wd.click("[data-testid=nav-phone]");
    wd.type_into("[data-testid=dial-input]", "102");
    wd.click("[data-testid=dial-button]");
    wd.wait_js("return document.querySelector('[data-testid=call-screen]')?.dataset.callState === 'up'", "the call to 102");
    wd.click("[data-testid=btn-transfer]");
    wd.type_into("[data-testid=transfer-input]", "103");
    wd.click("[data-testid=btn-consult]");
    wd.wait_js("return document.querySelector('[data-testid=btn-complete-transfer]')?.innerText", "the consultation with 103 to be answered");
    assert!(wd.text("[data-testid=btn-complete-transfer]").contains("102"), "{}", wd.text("[data-testid=call-screen]"));
    wd.click("[data-testid=btn-complete-transfer]");
    wd.wait_js("return !document.querySelector('[data-testid=call-screen]')", "both of the app's calls to end");
    // 102 and 103 are now in one call through the PBX: its CDR (written when a peer hangs
    // up) says 102 joined it.
    let deadline = Instant::now() + STEP;
    let joined = loop {
        let out = Command::new(hark_bin()).args(["pbx", "cdr", "list", "--data"]).arg(&pbx_dir).arg("--json").output().unwrap();
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(r) = rows.iter().find(|r| {
            r["parties"].as_array().into_iter().flatten().any(|p| p["role"] == "transfer-target" && p["party"] == "102")
        }) {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "no CDR shows 102 joined to 103: {rows:#?}\n{}", app.driver.report(40));
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(joined["callee"], "103", "{joined:#}");
    first.wait_exit(STEP);
    second.wait_exit(STEP);
}

/// Settings' audio checks on a sound server with a "mic" (a null sink whose monitor is the
/// microphone, fed a tone) and a "speaker": the meter shows the tone's level, the test
/// tone reaches the speaker, and leaving Settings closes the microphone for real (the
/// server has no recording stream left).
#[test]
fn settings_meter_hears_the_microphone_and_closes_it_on_leaving() {
    let pulse = hark_e2e::pulse::PulseServer::start();
    let speaker = pulse.plug("speaker");
    let mic = pulse.plug("mic");
    let env = pulse.client_env("speaker", "mic.monitor");
    let app = launch_env("desktop-meter", &env);
    let (wd, driver) = (&app.wd, &app.driver);
    let fail = |what: &str| format!("{what}\n--- tauri-driver and app:\n{}", driver.report(60));
    let tone = app.data.join("voice.wav");
    hark_e2e::audio::write_tone_wav(&tone, 440.0, 60.0, 8000);
    let _voice = pulse.play("mic", &tone);
    let recording_streams = || pulse.pactl(&["list", "short", "source-outputs"]).unwrap_or_default().lines().count();

    wd.click("[data-testid=nav-settings]");
    // The tone is about -6 dBFS: the bar shows it (a silent or unopened meter reads -96).
    let level = wd.wait_js(
        "const m = document.querySelector('[data-testid=mic-meter]'); return m && m.dataset.state === 'on' && Number(m.dataset.level) > -20 ? m.dataset.level : null",
        "the meter to show the microphone's tone",
    );
    assert!(level.as_str().and_then(|l| l.parse::<f64>().ok()).is_some_and(|l| l <= 0.0), "{level}");
    assert!(recording_streams() >= 1, "{}", fail("the meter shows a level but no stream records"));

    // The headset (its microphone and speaker, the only devices) is pulled out: the view
    // says so (not a dead bar), and shows the level again once it is plugged back in.
    // (With another microphone left, PulseAudio moves the stream to it instead.)
    drop(_voice);
    pulse.unplug(&mic);
    pulse.unplug(&speaker);
    wd.wait_js(
        "return document.querySelector('[data-testid=mic-meter-lost]') ? true : null",
        "the meter to say the microphone is gone",
    );
    pulse.plug("speaker");
    pulse.plug("mic");
    let _voice = pulse.play("mic", &tone);
    wd.wait_js(
        "const m = document.querySelector('[data-testid=mic-meter]'); return !document.querySelector('[data-testid=mic-meter-lost]') && m.dataset.state === 'on' && Number(m.dataset.level) > -20 ? true : null",
        "the meter to show the microphone again after the replug",
    );

    // The test tone reaches the speaker.
    let heard = app.data.join("speaker.raw");
    let rec = pulse.record("speaker.monitor", 8000, &heard);
    std::thread::sleep(Duration::from_millis(300));
    wd.click("[data-testid=btn-test-tone]");
    let said = wd.wait_js(
        "const e = document.querySelector('[data-testid=test-tone-error]'); const b = document.querySelector('[data-testid=btn-test-tone]'); \
         return e ? 'error: ' + e.innerText : b && b.innerText === 'Playing…' ? 'playing' : null",
        "the test tone",
    );
    assert_eq!(said.as_str(), Some("playing"), "{}", fail("the test tone did not play"));
    // The speaker's meter shows what is played: the tone at 0.2 of full scale, −14 dBFS.
    let shown = wd.wait_js(
        "const m = document.querySelector('[data-testid=speaker-meter]'); return m && Number(m.dataset.level) > -20 ? m.dataset.level : null",
        "the speaker's meter to show the tone",
    );
    assert!(shown.as_str().and_then(|l| l.parse::<f64>().ok()).is_some_and(|l| l <= -10.0), "speaker meter {shown}");
    let played = hark_e2e::process::poll_until(Duration::from_secs(10), || {
        let x = hark_e2e::pulse::read_raw(&heard);
        let tone = hark_e2e::audio::goertzel(&x, 8000, 440.0);
        (x.len() > 4000 && tone > 0.25 * hark_e2e::audio::energy(&x) && hark_e2e::audio::energy(&x).sqrt() > hark_e2e::audio::SILENCE_RMS).then_some(())
    });
    drop(rec);
    assert!(played.is_some(), "{}", fail("the speaker never played 440 Hz"));

    // Leaving Settings closes the microphone, at once (well before the app's watchdog).
    wd.click("[data-testid=nav-phone]");
    let closed = hark_e2e::process::poll_until(Duration::from_millis(1500), || (recording_streams() == 0).then_some(()));
    assert!(closed.is_some(), "{}", fail(&format!("the microphone is still open after leaving Settings: {}", pulse.pactl(&["list", "short", "source-outputs"]).unwrap_or_default())));

    // A meter nobody reads (a page that went away without saying so) closes by itself.
    wd.js("window.__TAURI_INTERNALS__.invoke('meter_start', { device: null }); return true");
    let opened = hark_e2e::process::poll_until(Duration::from_secs(10), || (recording_streams() >= 1).then_some(()));
    assert!(opened.is_some(), "{}", fail("meter_start opened no stream"));
    let started = Instant::now();
    let closed = hark_e2e::process::poll_until(Duration::from_secs(6), || (recording_streams() == 0).then_some(()));
    assert!(closed.is_some(), "{}", fail("an unread meter stayed open"));
    assert!(started.elapsed() >= Duration::from_millis(1500), "closed after {:?}: not by the watchdog", started.elapsed());
}

/// Closing the window keeps Hark and its PBX running (in the tray): phones still
/// register to the PBX, and the app's own phone still rings.
#[test]
fn closing_the_window_keeps_the_pbx_and_the_phone_running() {
    let app = launch_env("desktop-tray", &[("HARK_EXIT_ON_CLOSE".into(), "0".into())]);
    let wd = &app.wd;
    let sip = embedded_pbx(wd);
    add_peer(&app.data.join("pbx"), "104", "peer-pw");
    // The window's close request, as the window manager's close button sends it (Xvfb
    // has no window manager; WebDriver's Close Window would end the whole app).
    wd.js("window.__TAURI_INTERNALS__.invoke('plugin:window|close', { label: 'main' }); return true");
    wd.wait_js("return document.visibilityState === 'hidden' ? true : null", "the window to hide");
    let mut caller = Phone::call(account_args(sip, "104", "peer-pw", "hark.local"), "100", &["--answer-timeout", "5"]);
    if caller.try_wait_event("registered", STEP).is_none() {
        panic!("the PBX stopped with the window\n{}\n{}", caller.report(), app.driver.report(80));
    }
    let ringing = caller.wait_event("ringing", STEP);
    assert!(ringing.contains("code=180"), "{ringing}\n{}", app.driver.report(40));
    caller.wait_exit(STEP);
}

