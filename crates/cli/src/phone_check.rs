//! What `hark phone` checks before it registers or rings anyone: a server given by name,
//! audio files that can really be read and written, and times that make sense together.
//! A mistake found after the other phone has answered costs that person a call.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

/// `--server`: an address, or a host name with an optional port (5060 by default).
#[derive(Clone, Debug)]
pub struct Server {
    pub addr: SocketAddr,
    /// What the user typed before the port: the SIP domain when none is given.
    pub host: String,
}

pub fn parse_server(s: &str) -> Result<Server, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Server { addr, host: addr.ip().to_string() });
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse::<u16>().map_err(|_| format!("bad port in {s:?}"))?),
        _ => (s, 5060),
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    let mut addrs: Vec<SocketAddr> =
        (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
    // IPv4 first: most PBXs and phones on an office LAN are IPv4 only.
    addrs.sort_by_key(|a| !a.is_ipv4());
    let addr = addrs.first().copied().ok_or_else(|| format!("{host} has no address"))?;
    Ok(Server { addr, host: host.trim_start_matches('[').trim_end_matches(']').to_owned() })
}

/// `--play`: a WAV the phone can decode (checked by opening it as the call would).
pub fn check_playable(flag: &str, path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err(format!("{flag} {}: no such file", path.display()));
    }
    hark_phone::audio::WavSource::open(path, 8000, 160).map(|_| ()).map_err(|e| format!("{flag}: {e}"))
}

/// `--record` and friends: a file that can be created where the user asked.
pub fn check_writable(flag: &str, path: &Path) -> Result<(), String> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("{flag} {}: cannot write there: {e}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Times in seconds after the answer: each a number ≥ 0, before `--duration` ends, and
/// each pair's second after its first.
pub fn check_times(
    duration: Option<f64>,
    times: &[(&str, Option<f64>)],
    pairs: &[((&str, Option<f64>), (&str, Option<f64>))],
) -> Result<(), String> {
    if let Some(d) = duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(format!("--duration {d}: give a number of seconds above 0"));
    }
    for (flag, t) in times.iter().copied().chain(pairs.iter().flat_map(|(a, b)| [*a, *b])) {
        let Some(t) = t else { continue };
        if !(t.is_finite() && t >= 0.0) {
            return Err(format!("{flag} {t}: give a number of seconds from 0 up"));
        }
        if let Some(d) = duration
            && t >= d
        {
            return Err(format!("{flag} {t} is not before the call ends (--duration {d})"));
        }
    }
    for ((first, a), (second, b)) in pairs {
        if let (Some(a), Some(b)) = (a, b)
            && b <= a
        {
            return Err(format!("{second} {b} must come after {first} {a}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_by_address_or_name() {
        let s = parse_server("127.0.0.1:5070").unwrap();
        assert_eq!((s.addr.port(), s.host.as_str()), (5070, "127.0.0.1"));
        let s = parse_server("localhost:5080").unwrap();
        assert_eq!((s.addr, s.host.as_str()), ("127.0.0.1:5080".parse().unwrap(), "localhost"));
        assert_eq!(parse_server("localhost").unwrap().addr.port(), 5060);
        assert!(parse_server("localhost:notaport").is_err());
        assert!(parse_server(":5060").is_err());
        assert!(parse_server("no-such-host.invalid:5060").unwrap_err().contains("cannot resolve"));
    }

    #[test]
    fn times_must_fit_the_call_and_come_in_order() {
        let pause = ("--pause-at", Some(1.0));
        let resume = ("--resume-at", Some(2.0));
        assert!(check_times(Some(3.0), &[], &[(pause, resume)]).is_ok());
        assert!(check_times(Some(3.0), &[], &[(("--pause-at", Some(5.0)), ("--resume-at", None))]).unwrap_err().contains("not before the call ends"));
        assert!(check_times(None, &[], &[(("--pause-at", Some(3.0)), ("--resume-at", Some(1.0)))]).unwrap_err().contains("must come after"));
        assert!(check_times(Some(0.0), &[], &[]).is_err());
        assert!(check_times(None, &[("--dtmf-at", Some(-1.0))], &[]).is_err());
        assert!(check_times(None, &[("--dtmf-at", Some(f64::NAN))], &[]).is_err());
    }

    #[test]
    fn unreadable_audio_and_unwritable_places_are_named() {
        let dir = std::env::temp_dir().join(format!("hark-cli-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.wav");
        std::fs::write(&junk, b"not a wav at all").unwrap();
        assert!(check_playable("--play", &junk).unwrap_err().starts_with("--play"));
        assert!(check_playable("--play", &dir.join("missing.wav")).unwrap_err().contains("no such file"));
        assert!(check_writable("--record", &dir.join("no/such/dir/x.wav")).unwrap_err().contains("cannot write there"));
        let ok = dir.join("fine.wav");
        check_writable("--record", &ok).unwrap();
        assert!(!ok.exists(), "the check leaves nothing behind");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
