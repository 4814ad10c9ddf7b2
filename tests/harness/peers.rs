//! Real SIP peers installed from Debian packages. A missing peer fails the test: never a
//! silent skip.

use std::path::PathBuf;

/// The Debian package that ships `binary`.
pub fn package_of(binary: &str) -> &'static str {
    match binary {
        "sipp" => "sip-tester",
        "baresip" => "baresip-core",
        "linphonec" | "linphonecsh" => "linphone-cli",
        "kamailio" => "kamailio",
        "ffmpeg" | "ffprobe" => "ffmpeg",
        "sox" => "sox",
        "xdotool" => "xdotool",
        "pulseaudio" => "pulseaudio",
        "pactl" | "parec" | "paplay" => "pulseaudio-utils",
        _ => "(unknown package)",
    }
}

/// The path of peer `binary` on PATH; panics when it is missing (in CI and outside it).
pub fn require_peer(binary: &str) -> PathBuf {
    if let Some(path) = which(binary) {
        return path;
    }
    let package = package_of(binary);
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "{binary} missing: install {package} (CI=true: the end-to-end tests need every peer)"
        );
    }
    panic!(
        "{binary} missing: install {package} (`sudo apt-get install -y {package}`, or run scripts/test.sh, \
         which installs it); the end-to-end tests never skip a missing peer"
    );
}

/// Looks `binary` up on PATH.
pub fn which(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
