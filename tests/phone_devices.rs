//! `hark phone` on real audio devices (cpal, through ALSA's pulse plugin into a private
//! PulseAudio server with null sinks, as no sound card is here), issue 6:
//! - the caller's microphone is a device: the callee hears what is played into it;
//! - the caller's speaker is a device: what it plays is the callee's tone;
//! - the headset is pulled out mid-call (its sink and source vanish): the call goes on,
//!   the phone reports the loss; plugged back in, the phone reopens it by itself,
//!   reports it, and audio flows both ways again.

use std::time::{Duration, Instant};

use hark_e2e::audio::{Pcm, analyse, read_wav};
use hark_e2e::calls::{CALLEE_HZ, CALLER_HZ, CallPbx, Tones, password};
use hark_e2e::phone::{Phone, account_args};
use hark_e2e::process::poll_until;
use hark_e2e::pulse::{PulseServer, read_raw};
use hark_e2e::{DOMAIN, Pbx};

const REGISTER: Duration = Duration::from_secs(20);
const ANSWER: Duration = Duration::from_secs(30);
const EXIT: Duration = Duration::from_secs(60);
/// How long after a device is back its audio must be there (reopen every second, plus
/// scheduling noise on a busy machine).
const BACK: Duration = Duration::from_secs(15);
const RATE: u32 = 16_000;

fn account(pbx: &Pbx, ext: &str) -> Vec<String> {
    account_args(pbx.sip_udp, ext, &password(ext), DOMAIN)
}

/// Seconds of `hz` (dominating `other`) in raw speaker audio recorded from the monitor.
fn tone_secs(samples: Vec<f64>, hz: f64, other: f64) -> f64 {
    let pcm = Pcm { rate: RATE, samples, source: "speaker monitor".into() };
    analyse(&pcm, hz, other, 0.0).expected_secs()
}

#[test]
fn a_call_on_real_devices_survives_the_headset_being_unplugged_and_plugged_back() {
    let pulse = PulseServer::start();
    // The headset: a speaker sink, and a "mic" sink whose monitor is the microphone.
    let speaker = pulse.plug("headset");
    let mic = pulse.plug("headset_mic");
    let env = pulse.client_env("headset", "headset_mic.monitor");

    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let heard_by_callee = tones.out("callee-heard.wav");
    let (callee_play, callee_rec) = (tones.callee().display().to_string(), heard_by_callee.display().to_string());
    let mut callee = Phone::answer(account(&pbx, "102"), &["--play", &callee_play, "--record", &callee_rec]);
    callee.wait_event("registered", REGISTER);

    // The caller speaks into the headset.
    let mut voice = Some(pulse.play("headset_mic", &tones.caller()));
    let before = tones.out("speaker-before.raw");
    let mut rec = Some(pulse.record("headset.monitor", RATE, &before));
    let mut caller = Phone::call_env(
        account(&pbx, "101"),
        "102",
        &["--input-device", "default", "--output-device", "default", "--duration", "20"],
        &env,
    );
    caller.wait_event("answered", ANSWER);
    let answered = Instant::now();
    let ctx = |caller: &Phone, callee: &Phone| format!("{}\n{}\n{}", caller.report(), callee.report(), pbx.logs());

    // The speaker plays the callee's tone.
    let heard = poll_until(BACK, || (tone_secs(read_raw(&before), CALLEE_HZ, CALLER_HZ) >= 2.0).then_some(()));
    assert!(heard.is_some(), "the caller's speaker never played the callee's tone\n{}", ctx(&caller, &callee));

    // Pull the headset out: its sink and its microphone vanish together.
    rec.take();
    voice.take();
    pulse.unplug(speaker.as_str());
    pulse.unplug(mic.as_str());
    let lost = caller.wait_event("audio-device", Duration::from_secs(10));
    assert!(lost.contains("ok=false"), "the loss must be reported: {lost}\n{}", ctx(&caller, &callee));
    // Still unplugged a while later: the call is up, nothing else opened the device.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(caller.try_wait_event("ended", Duration::ZERO).is_none(), "the call ended with the headset\n{}", ctx(&caller, &callee));

    // Plug it back in.
    let _speaker = pulse.plug("headset");
    let _mic = pulse.plug("headset_mic");
    let replugged = answered.elapsed().as_secs_f64();
    let _voice = pulse.play("headset_mic", &tones.caller());
    let after = tones.out("speaker-after.raw");
    let _rec = pulse.record("headset.monitor", RATE, &after);
    let back = poll_until(BACK, || {
        let events = caller.events();
        (events.iter().filter(|e| e.starts_with("audio-device") && e.contains("ok=true")).count() >= 2).then_some(())
    });
    assert!(back.is_some(), "speaker and microphone must both be reported back\n{}", ctx(&caller, &callee));
    let played = poll_until(BACK, || (tone_secs(read_raw(&after), CALLEE_HZ, CALLER_HZ) >= 2.0).then_some(()));
    assert!(played.is_some(), "after the replug the speaker never played the callee's tone again\n{}", ctx(&caller, &callee));

    caller.assert_success(EXIT);
    callee.assert_success(EXIT);
    // The callee heard the caller's voice through the device microphone before the unplug
    // and again after the replug.
    let pcm = read_wav(&heard_by_callee).unwrap_or_else(|e| panic!("{e}\n{}", ctx(&caller, &callee)));
    let early = analyse(&pcm.slice_secs(0.5, 3.0), CALLER_HZ, CALLEE_HZ, 0.0);
    assert!(early.expected_secs() >= 1.0, "the callee did not hear the device microphone: {}\n{}", early.describe(), ctx(&caller, &callee));
    let late = analyse(&pcm.slice_secs(replugged + 3.0, pcm.duration_secs()), CALLER_HZ, CALLEE_HZ, 0.0);
    assert!(late.expected_secs() >= 2.0, "after the replug the callee did not hear the microphone: {}\n{}", late.describe(), ctx(&caller, &callee));
}

/// A WAV of three 1 s tones one after the other.
fn three_tones(path: &std::path::Path, hz: [f64; 3]) {
    let rate = 16_000u32;
    let mut bytes = Vec::new();
    for f in hz {
        for i in 0..rate {
            let v = (8000.0 * (2.0 * std::f64::consts::PI * f * f64::from(i) / f64::from(rate)).sin()) as i16;
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + bytes.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for v in [16u32, 1 | (1 << 16), rate, rate * 2, 2 | (16 << 16)] {
        wav.extend_from_slice(&v.to_le_bytes());
    }
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    wav.extend_from_slice(&bytes);
    std::fs::write(path, wav).unwrap();
}

#[test]
fn phone_play_sounds_on_the_speaker_from_a_position_with_a_pause() {
    use hark_e2e::audio::Heard;
    let pulse = PulseServer::start();
    let _speaker = pulse.plug("speaker");
    let tones = Tones::new();
    let wav = tones.out("three.wav");
    three_tones(&wav, [440.0, 660.0, 880.0]);
    let heard = tones.out("heard.raw");
    let _rec = pulse.record("speaker.monitor", RATE, &heard);
    // From 1 s (so the 440 Hz second is skipped), paused 0.5 s after the start for 1 s.
    let args = ["phone", "play", wav.to_str().unwrap(), "--from", "1", "--pause-at", "0.5", "--resume-at", "1.5"];
    let mut player = Phone::spawn_env("player", args.iter().map(|s| s.to_string()).collect(), &pulse.client_env("speaker", "speaker.monitor"));
    player.assert_success(Duration::from_secs(30));
    // parec writes in blocks: wait until it holds half a second of the silence after the
    // playback, so the whole playback is in.
    let complete = |samples: &Vec<f64>| {
        let last = samples.iter().rposition(|s| s.abs() > 1000.0);
        last.is_some_and(|i| samples.len() - i >= (RATE / 2) as usize)
    };
    let samples = poll_until(Duration::from_secs(15), || Some(read_raw(&heard)).filter(complete)).unwrap_or_else(|| read_raw(&heard));
    let pcm = Pcm { rate: RATE, samples, source: "speaker monitor".into() };
    let skipped = analyse(&pcm, 440.0, 660.0, 0.0);
    let second = analyse(&pcm, 660.0, 880.0, 0.0);
    let third = analyse(&pcm, 880.0, 660.0, 0.0);
    let report = || format!("{}\n{}\n{}", second.describe(), third.describe(), player.report());
    assert_eq!(skipped.count(Heard::Expected), 0, "--from 1 must skip the first second\n{}", report());
    assert!((0.6..=1.3).contains(&second.expected_secs()), "the 660 Hz second, split by the pause\n{}", report());
    assert!((0.7..=1.3).contains(&third.expected_secs()), "the 880 Hz second after the resume\n{}", report());
    // The pause: a silent stretch of about 1 s between the two halves of the 660 Hz tone.
    let kinds: Vec<Heard> = second.windows.iter().map(|w| w.heard).collect();
    let first_tone = kinds.iter().position(|k| *k == Heard::Expected).expect("660 Hz heard");
    let last_tone = kinds.iter().rposition(|k| *k == Heard::Expected).unwrap();
    let silent = kinds[first_tone..last_tone].iter().filter(|k| **k == Heard::Silence).count() as f64 * 0.1;
    assert!((0.7..=1.4).contains(&silent), "the pause should be about 1 s of silence inside the 660 Hz tone, was {silent:.1} s\n{}", report());
}
