//! The desktop app's own settings (desktop.json in its data directory): which mode, the
//! SIP account, codecs and the recording-control mode. No SIP here: hark-phone reads them.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the app keeps its PBX, settings and local recordings.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HARK_DESKTOP_DATA") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("hark/desktop")
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The app runs the office's PBX and registers to it.
    Embedded,
    /// The app registers to another PBX.
    Account,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountSettings {
    /// ADDR:PORT of the registrar.
    pub server: String,
    pub user: String,
    pub password: String,
    /// SIP domain; the server's address when empty.
    pub domain: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Settings {
    pub mode: Mode,
    /// The account on another PBX (account mode).
    pub account: AccountSettings,
    /// This user's extension on the embedded PBX, made on first launch.
    pub embedded: AccountSettings,
    /// Codecs in order of preference: pcmu, pcma, g722, opus.
    pub codecs: Vec<String>,
    /// in-dialog, out-of-dialog or dtmf.
    pub control: String,
    /// Audio devices by name ("" = the system default).
    pub input_device: String,
    pub output_device: String,
    /// The embedded PBX's SIP port: 0 = 5060 or the next free one.
    pub pbx_port: u16,
    /// Start the embedded PBX when the app starts.
    pub pbx_autostart: bool,
    /// Global shortcut that pauses/resumes recording.
    pub shortcut: String,
    /// Record each call on this machine too (stereo WAV in the library).
    pub local_recording: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Embedded,
            account: AccountSettings::default(),
            embedded: AccountSettings::default(),
            codecs: vec!["pcmu".into(), "pcma".into(), "g722".into(), "opus".into()],
            control: "in-dialog".into(),
            input_device: String::new(),
            output_device: String::new(),
            pbx_port: 0,
            pbx_autostart: true,
            shortcut: "CommandOrControl+Shift+P".into(),
            local_recording: false,
        }
    }
}

impl Settings {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("desktop.json")
    }

    /// The saved settings; None on first launch.
    pub fn load(dir: &Path) -> Result<Option<Settings>, String> {
        let path = Self::path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| format!("{} is damaged: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes atomically (temp file + rename).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = Self::path(dir);
        let tmp = dir.join(".desktop.json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.codecs.is_empty() {
            return Err("choose at least one codec".into());
        }
        for c in &self.codecs {
            if !matches!(c.as_str(), "pcmu" | "pcma" | "g722" | "opus") {
                return Err(format!("unknown codec {c}"));
            }
        }
        if !matches!(self.control.as_str(), "in-dialog" | "out-of-dialog" | "dtmf") {
            return Err(format!("unknown recording-control mode {}", self.control));
        }
        if self.mode == Mode::Account {
            let a = &self.account;
            if a.server.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!("server must be ADDR:PORT, e.g. 192.168.1.10:5060 (got \"{}\")", a.server));
            }
            if a.user.trim().is_empty() {
                return Err("the user (extension) is empty".into());
            }
            if a.password.is_empty() {
                return Err("the password is empty".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_first_launch() {
        let dir = std::env::temp_dir().join(format!("hark-desktop-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(Settings::load(&dir).unwrap(), None);
        let s = Settings { control: "dtmf".into(), ..Settings::default() };
        s.save(&dir).unwrap();
        assert_eq!(Settings::load(&dir).unwrap(), Some(s));
        std::fs::write(Settings::path(&dir), "{not json").unwrap();
        assert!(Settings::load(&dir).unwrap_err().contains("damaged"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn account_mode_needs_a_server_address() {
        let mut s = Settings { mode: Mode::Account, ..Settings::default() };
        s.account = AccountSettings { server: "pbx.example".into(), user: "101".into(), password: "x".into(), domain: String::new() };
        assert!(s.validate().unwrap_err().contains("ADDR:PORT"));
        s.account.server = "10.0.0.1:5060".into();
        assert!(s.validate().is_ok());
        s.codecs.clear();
        assert!(s.validate().is_err());
    }
}
