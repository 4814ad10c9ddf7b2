//! `hark phone play`: a recording through the default audio output with rodio, as the
//! desktop app's library plays it — from a position, with pause and resume — so a
//! headless user (or a test) can listen to a local recording.

use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct PlayArgs {
    /// The WAV file to play.
    wav: PathBuf,
    /// Start this many seconds into the file.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    from: f64,
    /// Pause this many seconds after playback starts…
    #[arg(long, value_name = "SECS", requires = "resume_at")]
    pause_at: Option<f64>,
    /// …and resume this many seconds after playback starts.
    #[arg(long, value_name = "SECS")]
    resume_at: Option<f64>,
}

#[cfg(feature = "audio-devices")]
pub fn play(a: PlayArgs) -> Result<(), Box<dyn std::error::Error>> {
    use hark_phone::playback::{Player, waveform};
    let secs = |s: f64, what: &str| -> Result<Duration, String> {
        Duration::try_from_secs_f64(s).map_err(|_| format!("{what} {s}: not a number of seconds"))
    };
    let from = secs(a.from, "--from")?;
    let pause = a.pause_at.map(|s| secs(s, "--pause-at")).transpose()?;
    let resume = a.resume_at.map(|s| secs(s, "--resume-at")).transpose()?;
    if let (Some(p), Some(r)) = (pause, resume)
        && r <= p
    {
        return Err("--resume-at must come after --pause-at".into());
    }
    // The waveform read checks the file: a damaged WAV is a clear error before any sound.
    let duration_ms = waveform(&a.wav, 1)?.duration_ms;
    let player = Player::new();
    // Opening the output probes ALSA's plugins, each printing its own failure.
    crate::phone::with_stderr_hushed(|| player.load_from("cli", &a.wav, duration_ms, from.as_millis() as u64))?;
    let status = player.status();
    if !status.device {
        player.stop();
        // The desktop app plays on silently (its position still moves); here there would
        // be nothing to hear.
        return Err("no audio output device (no sound card or sound server found)".into());
    }
    eprintln!("phone: playing position-ms={} duration-ms={duration_ms}", player.status().position_ms);
    let started = Instant::now();
    let (mut paused, mut resumed) = (false, false);
    loop {
        let elapsed = started.elapsed();
        if !paused && pause.is_some_and(|p| elapsed >= p) {
            player.pause();
            paused = true;
            eprintln!("phone: paused position-ms={}", player.status().position_ms);
        }
        if paused && !resumed && resume.is_some_and(|r| elapsed >= r) {
            player.play();
            resumed = true;
            eprintln!("phone: resumed position-ms={}", player.status().position_ms);
        }
        let s = player.status();
        if !s.playing && (!paused || resumed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // rodio's sink may still hold the last few milliseconds when the clock ends.
    std::thread::sleep(Duration::from_millis(200));
    player.stop();
    eprintln!("phone: finished position-ms={duration_ms}");
    Ok(())
}

#[cfg(not(feature = "audio-devices"))]
pub fn play(_: PlayArgs) -> Result<(), Box<dyn std::error::Error>> {
    Err("this build of hark has no audio device support".into())
}
