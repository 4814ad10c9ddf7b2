//! A private PulseAudio server with null sinks: a sound card for tests on machines that
//! have none. ALSA programs (cpal) reach it through the ALSA pulse plugin
//! (libasound2-plugins) when `PULSE_SERVER` names its socket; `PULSE_SINK` and
//! `PULSE_SOURCE` pin a client to one device, the way a user picks a headset. Unloading a
//! sink's module is a device being unplugged; loading it again is plugging it back in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::peers::require_peer;
use crate::process::{Proc, TempDir, poll_until};

pub struct PulseServer {
    // Dropped first: the server dies before its directory goes.
    _proc: Proc,
    dir: TempDir,
    socket: PathBuf,
}

impl PulseServer {
    /// Starts the server (no default modules: nothing rescues or moves streams behind
    /// the test's back) and waits until it answers.
    pub fn start() -> PulseServer {
        let bin = require_peer("pulseaudio");
        require_peer("pactl");
        require_peer("parec");
        let dir = TempDir::new("pulse");
        let socket = dir.join("native");
        let mut cmd = Command::new(bin);
        cmd.args(["-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes"])
            .arg("-L")
            .arg(format!("module-native-protocol-unix socket={} auth-anonymous=1", socket.display()))
            .env("HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path())
            .env_remove("PULSE_SERVER");
        let proc = Proc::spawn("pulseaudio", &mut cmd);
        let server = PulseServer { _proc: proc, dir, socket };
        let up = poll_until(Duration::from_secs(20), || server.pactl(&["info"]).ok());
        assert!(up.is_some(), "pulseaudio did not answer within 20 s: {}", server.pactl(&["info"]).unwrap_err());
        server
    }

    /// The value of `PULSE_SERVER` for clients of this server.
    pub fn address(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// The environment a client needs: this server, the sink and source it uses.
    pub fn client_env(&self, sink: &str, source: &str) -> Vec<(String, String)> {
        vec![
            ("PULSE_SERVER".into(), self.address()),
            ("PULSE_SINK".into(), sink.into()),
            ("PULSE_SOURCE".into(), source.into()),
            // The plugin's "is the server running" hook and libpulse look here too.
            ("XDG_RUNTIME_DIR".into(), self.dir.path().display().to_string()),
        ]
    }

    pub fn pactl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("pactl")
            .args(args)
            .env("PULSE_SERVER", self.address())
            .env("HOME", self.dir.path())
            .output()
            .map_err(|e| format!("pactl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!("pactl {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// Adds a null sink (and with it `<name>.monitor`, a source of what it plays);
    /// returns its module index, for [`PulseServer::unplug`].
    pub fn plug(&self, name: &str) -> String {
        self.pactl(&["load-module", "module-null-sink", &format!("sink_name={name}"), "rate=48000"])
            .unwrap_or_else(|e| panic!("adding sink {name}: {e}"))
    }

    /// Removes a sink added by [`PulseServer::plug`]: its streams are cut, as when a
    /// headset is pulled out.
    pub fn unplug(&self, module: &str) {
        self.pactl(&["unload-module", module]).unwrap_or_else(|e| panic!("removing module {module}: {e}"));
    }

    /// Records what `source` hears as raw mono s16le at `rate` into `path` until dropped.
    pub fn record(&self, source: &str, rate: u32, path: &Path) -> Proc {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "exec parec --raw --format=s16le --channels=1 --rate={rate} --latency-msec=20 -d {source} > '{}'",
                path.display()
            ))
            .env("PULSE_SERVER", self.address());
        Proc::spawn(&format!("parec {source}"), &mut cmd)
    }

    /// Plays `wav` into `sink` (looping it is the caller's business: give a long file).
    pub fn play(&self, sink: &str, wav: &Path) -> Proc {
        let mut cmd = Command::new("paplay");
        cmd.arg("-d").arg(sink).arg(wav).env("PULSE_SERVER", self.address());
        Proc::spawn(&format!("paplay {sink}"), &mut cmd)
    }
}

/// Raw mono s16le as written by [`PulseServer::record`], in i16 units like
/// [`crate::audio::read_wav`].
pub fn read_raw(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.chunks_exact(2).map(|b| f64::from(i16::from_le_bytes([b[0], b[1]]))).collect()
}
