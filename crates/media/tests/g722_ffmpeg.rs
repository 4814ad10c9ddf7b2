//! G.722 interoperability with an independent implementation (ffmpeg's), both ways.
//! Skipped when ffmpeg is not installed (Debian: ffmpeg).

use std::path::{Path, PathBuf};
use std::process::Command;

use hark_media::analysis::{sine_wave, tone_ratio};
use hark_media::codec::{G722Decoder, G722Encoder};

fn ffmpeg() -> Option<PathBuf> {
    let out = Command::new("ffmpeg").arg("-version").output().ok()?;
    out.status.success().then(|| PathBuf::from("ffmpeg"))
}

fn run(ffmpeg: &Path, args: &[&str]) {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn to_bytes(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Vec<i16> {
    b.chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn g722_interoperates_with_ffmpeg() {
    let Some(ffmpeg) = ffmpeg() else {
        eprintln!("ffmpeg not installed: skipping G.722 interop");
        return;
    };
    let dir = std::env::temp_dir().join(format!("hark-media-g722-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();

    for freq in [440.0, 1000.0, 5000.0] {
        let pcm = sine_wave(16_000, freq, 10_000.0, 16_000);
        std::fs::write(p("in.raw"), to_bytes(&pcm)).unwrap();

        // ffmpeg encodes, we decode.
        run(
            &ffmpeg,
            &[
                "-f",
                "s16le",
                "-ar",
                "16000",
                "-ac",
                "1",
                "-i",
                &p("in.raw"),
                "-c:a",
                "g722",
                "-f",
                "g722",
                &p("ff.g722"),
            ],
        );
        let ff_codes = std::fs::read(p("ff.g722")).unwrap();
        let mut ours = Vec::new();
        G722Decoder::new().decode(&ff_codes, &mut ours);
        let ratio = tone_ratio(&ours[4000..], 16_000, freq);
        assert!(ratio > 0.9, "{freq} Hz, ffmpeg → us: ratio {ratio}");

        // ffmpeg decodes the same codes: our decoder should match it closely.
        run(
            &ffmpeg,
            &[
                "-f",
                "g722",
                "-i",
                &p("ff.g722"),
                "-f",
                "s16le",
                "-ar",
                "16000",
                &p("ff_dec.raw"),
            ],
        );
        let theirs = from_bytes(&std::fs::read(p("ff_dec.raw")).unwrap());
        let n = ours.len().min(theirs.len());
        let diff: f64 = ours[..n]
            .iter()
            .zip(&theirs[..n])
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum::<f64>()
            / n as f64;
        let power: f64 = theirs[..n]
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            / n as f64;
        let snr = 10.0 * (power / diff.max(1e-9)).log10();
        // Bit-exact in practice (both follow the recommendation's integer arithmetic).
        assert!(
            snr > 60.0,
            "{freq} Hz: our decode vs ffmpeg's, SNR {snr:.1} dB"
        );

        // We encode, ffmpeg decodes.
        let mut codes = Vec::new();
        G722Encoder::new().encode(&pcm, &mut codes);
        let same = codes.iter().zip(&ff_codes).filter(|(a, b)| a == b).count();
        assert!(
            same * 100 >= codes.len() * 99,
            "{freq} Hz: {same}/{} codes equal ffmpeg's",
            codes.len()
        );
        std::fs::write(p("ours.g722"), &codes).unwrap();
        run(
            &ffmpeg,
            &[
                "-f",
                "g722",
                "-i",
                &p("ours.g722"),
                "-f",
                "s16le",
                "-ar",
                "16000",
                &p("ours_dec.raw"),
            ],
        );
        let decoded = from_bytes(&std::fs::read(p("ours_dec.raw")).unwrap());
        let ratio = tone_ratio(&decoded[4000..], 16_000, freq);
        assert!(ratio > 0.9, "{freq} Hz, us → ffmpeg: ratio {ratio}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
