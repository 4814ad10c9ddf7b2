//! The softphone's media cost and delay, per codec: CPU time for one second of a call
//! (encode 50 frames, packetize, receive them through the jitter buffer, decode or
//! conceal, with 2% loss), and the delay the pipeline adds (jitter prefetch plus one
//! frame). Run with `cargo bench -p hark-phone --bench media`.

use hark_phone::media::{FRAME_MS, MediaSession};
use hark_phone::{AudioCodec, MediaParams};
use std::time::{Duration, Instant};

const SECONDS: u32 = 60;

fn params(codec: AudioCodec, pt: u8) -> MediaParams {
    MediaParams {
        remote: Some("127.0.0.1:4000".parse().unwrap()),
        codec,
        payload_type: pt,
        telephone_event_pt: Some(101),
        send: true,
        receive: true,
    }
}

fn main() {
    println!("codec  cpu_us_per_call_second  first_audio_delay_ms  concealed_frames");
    for (codec, pt) in [(AudioCodec::Pcmu, 0), (AudioCodec::Pcma, 8), (AudioCodec::G722, 9), (AudioCodec::Opus, 111)] {
        let mut a = MediaSession::new(params(codec, pt)).expect("codec");
        let mut b = MediaSession::new(params(codec, pt)).expect("codec");
        let n = a.frame_len();
        let rate = a.rate() as f64;
        let tone: Vec<i16> =
            (0..n * 50).map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / rate).sin() * 8000.0) as i16).collect();
        let mut heard = Vec::with_capacity(n);
        let frames = SECONDS * 1000 / FRAME_MS;
        let mut first_audio = None;
        let started = Instant::now();
        for f in 0..frames {
            let at = (f as usize % 50) * n;
            for (i, p) in a.send_frame(&tone[at..at + n]).into_iter().enumerate() {
                // 2% loss, deterministic.
                if (f as usize + i) % 50 != 7 {
                    b.receive(&p);
                }
            }
            heard.clear();
            b.play_frame(&mut heard);
            if first_audio.is_none() && heard.iter().any(|s| s.abs() > 1000) {
                first_audio = Some(f);
            }
        }
        let cpu: Duration = started.elapsed();
        let per_second = cpu.as_secs_f64() * 1e6 / f64::from(SECONDS);
        let delay_ms = first_audio.map(|f| (f + 1) * FRAME_MS).unwrap_or(0);
        println!("{:<6} {:>23.1} {:>21} {:>17}", format!("{codec:?}"), per_second, delay_ms, b.stats.concealed_frames);
    }
}
