//! Crash-safe WAV recordings over hound, and repair of files left unfinished.
//!
//! # Where the file lives while it is written
//!
//! A recording is written directly under its final name; there is no `.partial` temp
//! file that gets renamed at the end. The header's sizes are brought up to date (hound's
//! `flush`, which rewrites the RIFF and `data` sizes and flushes the buffer to the OS) at
//! least every [`WavOptions::flush_interval`], driven by the caller's clock
//! ([`WavRecording::handle_timeout`]). A process killed with `kill -9` therefore leaves
//! a file that any player opens, holding everything up to the last flush; the bytes
//! written after it are recovered by [`repair`], which recomputes the sizes from the
//! file length. Writing under the final name also means the store's row and the file
//! agree on the path from the first second, a crash needs no rename to recover, and
//! the crash case is testable by copying the file mid-recording. Whether a file is
//! unfinished is the store's knowledge (a row still `recording`), not the name's.
//!
//! With [`WavOptions::fsync`] each header flush also `fdatasync`s the file, so a power
//! loss keeps what was flushed; it costs a disk sync per second per recording, so it
//! is off by default (a process crash never needs it).
//!
//! # Errors
//!
//! Every I/O failure is a [`WavError`]; nothing panics. After a write or flush error the
//! recording is *failed*: further writes are refused, and [`WavRecording::finalize`]
//! (or [`WavRecording::abandon`]) makes the bytes that reached the disk playable.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Size of hound's RIFF + fmt + data headers for 16-bit PCM with 1 or 2 channels.
const HEADER_LEN: u64 = 44;
/// Samples handed to hound per batch.
const CHUNK_SAMPLES: usize = 4096;
/// Write buffer in front of the file.
const BUF_CAPACITY: usize = 32 * 1024;
/// Largest `data` chunk hound can describe: RIFF size (data + 36) must fit in 32 bits.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - 36;

/// WAV errors.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file could not be created (missing directory, no permission, exists, disk
    /// full at the first header write…).
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// No space left on the device (or quota exceeded).
    #[error("disk full: {0}")]
    DiskFull(#[source] io::Error),
    /// Any other I/O error.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    /// A hound format error (should not happen with the specs this module writes).
    #[error("WAV format error: {0}")]
    Format(String),
    /// Sample rate or channel count unusable.
    #[error("invalid WAV spec: {0}")]
    InvalidSpec(String),
    /// `write_frames` got a sample count that is not a whole number of frames.
    #[error("{samples} samples are not a whole number of {channels}-channel frames")]
    PartialFrame { samples: usize, channels: u16 },
    /// The file reached its size limit (4 GiB, or [`WavOptions::max_bytes`]).
    #[error("size limit reached: {limit} bytes of audio")]
    TooLarge { limit: u64 },
    /// The recording failed earlier; it takes no more writes.
    #[error("recording failed earlier: {0}")]
    AlreadyFailed(String),
    /// The recording was finalized; it takes no more writes.
    #[error("recording already finalized")]
    Finalized,
}

impl WavError {
    /// Whether the error means the disk (or quota) is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            WavError::DiskFull(_) => true,
            WavError::Create { source, .. } | WavError::Io(source) => io_is_disk_full(source),
            _ => false,
        }
    }
}

fn io_is_disk_full(e: &io::Error) -> bool {
    // ENOSPC (28) and EDQUOT (122) on Linux, for kernels/libc combinations whose
    // errors do not map to the ErrorKinds.
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || (cfg!(target_os = "linux") && matches!(e.raw_os_error(), Some(28 | 122)))
}

fn from_io(e: io::Error) -> WavError {
    if io_is_disk_full(&e) {
        WavError::DiskFull(e)
    } else {
        WavError::Io(e)
    }
}

fn from_hound(e: hound::Error) -> WavError {
    match e {
        hound::Error::IoError(e) => from_io(e),
        other => WavError::Format(other.to_string()),
    }
}

/// How a recording file is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavOptions {
    /// Replace an existing file (default: refuse, so a recording never clobbers another).
    pub overwrite: bool,
    /// `fdatasync` on every header flush and at the end (default off; see module docs).
    pub fsync: bool,
    /// Longest time the header may lag behind the samples (default 1 s).
    pub flush_interval: Duration,
    /// Cap on the audio bytes (default: the 4 GiB the WAV header can describe).
    pub max_bytes: Option<u64>,
}

impl Default for WavOptions {
    fn default() -> Self {
        WavOptions {
            overwrite: false,
            fsync: false,
            flush_interval: Duration::from_secs(1),
            max_bytes: None,
        }
    }
}

/// The file under hound's buffer: `flush` optionally syncs to the disk.
struct DurableFile {
    file: File,
    fsync: bool,
}

impl Write for DurableFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.fsync {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

impl Seek for DurableFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

type Writer = hound::WavWriter<BufWriter<DurableFile>>;

/// What a finished recording holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    pub rate: u32,
    pub channels: u16,
    pub frames: u64,
}

impl WavInfo {
    pub fn duration_ms(&self) -> u64 {
        frames_to_ms(self.frames, self.rate)
    }
}

fn frames_to_ms(frames: u64, rate: u32) -> u64 {
    if rate == 0 {
        0
    } else {
        frames * 1000 / u64::from(rate)
    }
}

/// A 16-bit PCM WAV file being recorded. See the module docs for crash safety.
pub struct WavRecording {
    path: PathBuf,
    writer: Option<Writer>,
    rate: u32,
    channels: u16,
    frames: u64,
    flushed_frames: u64,
    max_bytes: u64,
    flush_interval: Duration,
    last_flush: Option<Instant>,
    failed: Option<String>,
}

impl std::fmt::Debug for WavRecording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecording")
            .field("path", &self.path)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("frames", &self.frames)
            .field("flushed_frames", &self.flushed_frames)
            .field("failed", &self.failed)
            .field("finalized", &self.writer.is_none())
            .finish()
    }
}

impl WavRecording {
    /// Creates a new 16-bit PCM WAV file with default [`WavOptions`] (refuses to replace
    /// an existing file). The header is on disk when this returns.
    pub fn create(path: impl AsRef<Path>, rate: u32, channels: u16) -> Result<Self, WavError> {
        Self::create_with(path, rate, channels, &WavOptions::default())
    }

    /// Creates a recording with explicit options.
    pub fn create_with(
        path: impl AsRef<Path>,
        rate: u32,
        channels: u16,
        options: &WavOptions,
    ) -> Result<Self, WavError> {
        let path = path.as_ref().to_path_buf();
        if rate == 0 || rate > 384_000 {
            return Err(WavError::InvalidSpec(format!("sample rate {rate}")));
        }
        if channels == 0 || channels > 2 {
            return Err(WavError::InvalidSpec(format!(
                "{channels} channels (1 or 2)"
            )));
        }
        let create_err = |source: io::Error| WavError::Create {
            path: path.clone(),
            source,
        };
        let mut open = OpenOptions::new();
        open.write(true);
        if options.overwrite {
            open.create(true).truncate(true);
        } else {
            open.create_new(true);
        }
        let file = open.open(&path).map_err(create_err)?;
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let sink = BufWriter::with_capacity(
            BUF_CAPACITY,
            DurableFile {
                file,
                fsync: options.fsync,
            },
        );
        let header = |e: hound::Error| match e {
            hound::Error::IoError(e) => create_err(e),
            other => WavError::Format(other.to_string()),
        };
        let mut writer = hound::WavWriter::new(sink, spec).map_err(header)?;
        writer.flush().map_err(header)?;
        if options.fsync {
            sync_parent_dir(&path);
        }
        let block = u64::from(channels) * 2;
        let max_bytes = options
            .max_bytes
            .unwrap_or(MAX_DATA_BYTES)
            .min(MAX_DATA_BYTES);
        Ok(WavRecording {
            path,
            writer: Some(writer),
            rate,
            channels,
            frames: 0,
            flushed_frames: 0,
            max_bytes: max_bytes / block * block,
            flush_interval: options.flush_interval,
            last_flush: None,
            failed: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Frames written so far (a frame is one sample per channel).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames the on-disk header describes (as of the last flush).
    pub fn flushed_frames(&self) -> u64 {
        self.flushed_frames
    }

    pub fn duration_ms(&self) -> u64 {
        frames_to_ms(self.frames, self.rate)
    }

    /// The error that failed the recording, if one did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub fn is_finalized(&self) -> bool {
        self.writer.is_none()
    }

    fn writer(&mut self) -> Result<&mut Writer, WavError> {
        if let Some(msg) = &self.failed {
            return Err(WavError::AlreadyFailed(msg.clone()));
        }
        self.writer.as_mut().ok_or(WavError::Finalized)
    }

    fn fail(&mut self, e: WavError) -> WavError {
        self.failed = Some(e.to_string());
        e
    }

    /// Appends interleaved frames (`channels` samples each).
    pub fn write_frames(&mut self, interleaved: &[i16]) -> Result<(), WavError> {
        let channels = self.channels;
        self.writer()?;
        if !interleaved.len().is_multiple_of(usize::from(channels)) {
            return Err(WavError::PartialFrame {
                samples: interleaved.len(),
                channels,
            });
        }
        let bytes = self.frames * u64::from(channels) * 2 + interleaved.len() as u64 * 2;
        if bytes > self.max_bytes {
            let limit = self.max_bytes;
            return Err(self.fail(WavError::TooLarge { limit }));
        }
        let writer = self.writer()?;
        let mut result = Ok(());
        for chunk in interleaved.chunks(CHUNK_SAMPLES) {
            // chunk.len() <= CHUNK_SAMPLES, so the cast is exact.
            let mut w = writer.get_i16_writer(chunk.len() as u32);
            for &s in chunk {
                w.write_sample(s);
            }
            if let Err(e) = w.flush() {
                result = Err(from_hound(e));
                break;
            }
        }
        match result {
            Ok(()) => {
                self.frames += (interleaved.len() / usize::from(channels)) as u64;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Brings the header's sizes up to date and hands the buffered bytes to the OS (and
    /// the disk, with [`WavOptions::fsync`]).
    pub fn flush_header(&mut self) -> Result<(), WavError> {
        let frames = self.frames;
        let writer = self.writer()?;
        match writer.flush() {
            Ok(()) => {
                self.flushed_frames = frames;
                Ok(())
            }
            Err(e) => {
                let e = from_hound(e);
                Err(self.fail(e))
            }
        }
    }

    /// Whether the header lags behind the samples and the flush interval has passed
    /// since the last flush (or there was none yet).
    pub fn needs_flush(&self, now: Instant) -> bool {
        self.writer.is_some()
            && self.failed.is_none()
            && self.frames != self.flushed_frames
            && self
                .last_flush
                .is_none_or(|t| now.saturating_duration_since(t) >= self.flush_interval)
    }

    /// When [`WavRecording::handle_timeout`] should next run: one flush interval after
    /// the last flush (None before the first call, or once finalized or failed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.writer.is_none() || self.failed.is_some() {
            return None;
        }
        self.last_flush.map(|t| t + self.flush_interval)
    }

    /// Flushes the header if [`WavRecording::needs_flush`]; returns whether it did. The
    /// first call starts the flush clock.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<bool, WavError> {
        if self.needs_flush(now) {
            self.flush_header()?;
            self.last_flush = Some(now);
            Ok(true)
        } else {
            if self.last_flush.is_none() {
                self.last_flush = Some(now);
            }
            Ok(false)
        }
    }

    /// Writes the final header and closes the file. Calling it again returns the same
    /// info. On a failed recording it makes what reached the disk playable
    /// ([`WavRecording::abandon`]) and returns [`WavError::AlreadyFailed`].
    pub fn finalize(&mut self) -> Result<WavInfo, WavError> {
        if let Some(msg) = self.failed.clone() {
            self.abandon();
            return Err(WavError::AlreadyFailed(msg));
        }
        if let Some(writer) = self.writer.take() {
            if let Err(e) = writer.finalize() {
                let e = self.fail(from_hound(e));
                // The writer is gone; fix the header from what is on disk.
                let _ = repair(&self.path);
                return Err(e);
            }
            self.flushed_frames = self.frames;
        }
        Ok(self.info())
    }

    /// After a failure: closes the file and recomputes its header from what reached the
    /// disk, so it stays playable. Best effort; returns the repair outcome if it worked.
    pub fn abandon(&mut self) -> Option<RepairOutcome> {
        if self.writer.is_none() && self.failed.is_none() {
            return None;
        }
        // Dropping hound's writer tries a last header update and ignores its errors.
        drop(self.writer.take());
        if self.failed.is_none() {
            self.failed = Some("abandoned".to_owned());
        }
        repair(&self.path).ok()
    }

    pub fn info(&self) -> WavInfo {
        WavInfo {
            rate: self.rate,
            channels: self.channels,
            frames: self.frames,
        }
    }
}

impl Drop for WavRecording {
    fn drop(&mut self) {
        // hound's own Drop updates the header (ignoring errors); a failed recording is
        // additionally repaired.
        if self.failed.is_some() && self.writer.is_some() {
            self.abandon();
        }
    }
}

/// Best effort: makes the new directory entry durable.
fn sync_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Errors of [`repair`].
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// Not a RIFF/WAVE file, or too damaged to find the format and data (e.g. a crash
    /// before the header reached the disk).
    #[error("not a repairable WAV file: {0}")]
    NotWav(String),
}

/// What [`repair`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairOutcome {
    /// Whether the file was changed (its header was stale, or it ended in a partial
    /// frame). False for a cleanly finalized file.
    pub changed: bool,
    pub rate: u32,
    pub channels: u16,
    pub bits_per_sample: u16,
    /// Whole frames in the repaired file.
    pub frames: u64,
    /// The `data` size the header gave before the repair.
    pub header_data_bytes: u32,
    /// The `data` size now.
    pub data_bytes: u32,
    /// Bytes cut off the end (a partial last frame).
    pub trimmed_bytes: u64,
}

impl RepairOutcome {
    pub fn duration_ms(&self) -> u64 {
        frames_to_ms(self.frames, self.rate)
    }
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn read_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

/// Chunk ids that may legitimately follow `data` in a finished WAV file.
fn is_trailing_chunk_id(id: &[u8]) -> bool {
    matches!(
        id,
        b"LIST" | b"id3 " | b"ID3 " | b"cue " | b"smpl" | b"inst" | b"fact" | b"PEAK" | b"bext"
    )
}

/// Repairs a WAV file left unfinished (the process was killed, the machine lost power,
/// the disk filled): recomputes the RIFF and `data` sizes from the file length, cutting
/// off a partial last frame, so hound, ffprobe and players open it with every whole
/// frame that reached the disk. A file whose header already matches is left untouched
/// (`changed == false`). The file must be a RIFF/WAVE file with its `data` chunk last,
/// as [`WavRecording`] writes them.
pub fn repair(path: impl AsRef<Path>) -> Result<RepairOutcome, RepairError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let not_wav = |m: &str| RepairError::NotWav(m.to_owned());
    if len < 12 {
        return Err(not_wav("shorter than a RIFF header"));
    }
    let mut head = [0u8; 12];
    file.read_exact(&mut head)?;
    if &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(not_wav("no RIFF/WAVE signature"));
    }
    let riff_size = read_u32(&head[4..8]);

    let mut pos = 12u64;
    let mut fmt: Option<(u16, u32, u16, u16)> = None; // channels, rate, block align, bits
    let mut data: Option<(u64, u32)> = None; // payload start, declared size
    for _ in 0..64 {
        if pos + 8 > len {
            break;
        }
        let mut ch = [0u8; 8];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut ch)?;
        let size = read_u32(&ch[4..8]);
        match &ch[0..4] {
            b"data" => {
                data = Some((pos + 8, size));
                break;
            }
            b"fmt " => {
                if size < 16 || pos + 8 + 16 > len {
                    return Err(not_wav("short fmt chunk"));
                }
                let mut f = [0u8; 16];
                file.read_exact(&mut f)?;
                let channels = read_u16(&f[2..4]);
                let rate = read_u32(&f[4..8]);
                let block_align = read_u16(&f[12..14]);
                let bits = read_u16(&f[14..16]);
                if channels == 0 || rate == 0 || block_align == 0 {
                    return Err(not_wav("fmt chunk with zero channels, rate or block size"));
                }
                fmt = Some((channels, rate, block_align, bits));
            }
            _ => {}
        }
        pos += 8 + u64::from(size) + u64::from(size & 1);
    }
    let (channels, rate, block_align, bits) = fmt.ok_or_else(|| not_wav("no fmt chunk"))?;
    let (data_start, declared) = data.ok_or_else(|| not_wav("no data chunk"))?;
    let block = u64::from(block_align);
    let available = len.saturating_sub(data_start);
    let declared64 = u64::from(declared);

    let outcome = |changed, data_bytes: u64, trimmed| RepairOutcome {
        changed,
        rate,
        channels,
        bits_per_sample: bits,
        frames: data_bytes / block,
        header_data_bytes: declared,
        data_bytes: data_bytes as u32,
        trimmed_bytes: trimmed,
    };

    // A consistent header: data ends at the end of the file, or is followed by a
    // known trailing chunk that fits.
    if declared > 0 && declared64 <= available && declared64 % block == 0 {
        let data_end = data_start + declared64 + (declared64 & 1);
        let complete = if data_end >= len {
            true
        } else if data_end + 8 <= len {
            let mut ch = [0u8; 8];
            file.seek(SeekFrom::Start(data_end))?;
            file.read_exact(&mut ch)?;
            is_trailing_chunk_id(&ch[0..4]) && data_end + 8 + u64::from(read_u32(&ch[4..8])) <= len
        } else {
            false
        };
        if complete {
            let riff_ok = u64::from(riff_size) == len - 8;
            if !riff_ok {
                file.seek(SeekFrom::Start(4))?;
                file.write_all(&((len - 8).min(u64::from(u32::MAX)) as u32).to_le_bytes())?;
                file.sync_all()?;
            }
            return Ok(outcome(!riff_ok, declared64, 0));
        }
    }

    // Stale or damaged sizes: everything after the data header is audio.
    let max = (u64::from(u32::MAX) - (data_start - 8)) / block * block;
    let data_bytes = (available / block * block).min(max);
    let trimmed = available - data_bytes;
    if trimmed > 0 {
        file.set_len(data_start + data_bytes)?;
    }
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&((data_start - 8 + data_bytes) as u32).to_le_bytes())?;
    file.seek(SeekFrom::Start(data_start - 4))?;
    file.write_all(&(data_bytes as u32).to_le_bytes())?;
    file.sync_all()?;
    let changed =
        trimmed > 0 || declared64 != data_bytes || u64::from(riff_size) != len - trimmed - 8;
    Ok(outcome(changed, data_bytes, trimmed))
}

/// Whether a path's header describes fewer bytes than the file holds (or is otherwise
/// inconsistent): a cheap check that reads 44 bytes, for listing files that need
/// [`repair`]. Files with chunks other than `fmt ` before `data` are reported as
/// needing repair; [`repair`] leaves them unchanged if they are fine.
pub fn looks_unfinished(path: impl AsRef<Path>) -> io::Result<bool> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len < HEADER_LEN {
        return Ok(true);
    }
    let mut h = [0u8; HEADER_LEN as usize];
    file.read_exact(&mut h)?;
    if &h[36..40] != b"data" {
        return Ok(true);
    }
    let riff = u64::from(read_u32(&h[4..8]));
    let data = u64::from(read_u32(&h[40..44]));
    Ok(riff != len - 8 || data != len - HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A unique scratch directory, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let dir = std::env::temp_dir().join(format!(
                "hark-recorder-{tag}-{}-{}-{nanos}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        pub(crate) fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ramp(frames: usize, channels: u16) -> Vec<i16> {
        (0..frames * usize::from(channels))
            .map(|i| (i as i32 * 37 % 65_536 - 32_768) as i16)
            .collect()
    }

    fn read_all(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        let s = r.samples::<i16>().collect::<Result<Vec<_>, _>>().unwrap();
        (spec, s)
    }

    #[test]
    fn write_and_read_back() {
        let dir = TempDir::new("wav-rt");
        let path = dir.join("a.wav");
        let mut w = WavRecording::create(&path, 8000, 2).unwrap();
        let frames = ramp(12_345, 2);
        w.write_frames(&frames[..1000]).unwrap();
        w.write_frames(&frames[1000..]).unwrap();
        let info = w.finalize().unwrap();
        assert_eq!(info.frames, 12_345);
        assert_eq!(info.duration_ms(), 1543);
        assert_eq!(w.finalize().unwrap(), info, "finalize is idempotent");
        assert!(matches!(w.write_frames(&[0, 0]), Err(WavError::Finalized)));
        let (spec, samples) = read_all(&path);
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (8000, 2, 16)
        );
        assert_eq!(samples, frames);
        assert!(!looks_unfinished(&path).unwrap());
        let r = repair(&path).unwrap();
        assert!(!r.changed);
        assert_eq!(r.frames, 12_345);
    }

    #[test]
    fn partial_frames_and_bad_specs_are_typed_errors() {
        let dir = TempDir::new("wav-spec");
        let mut w = WavRecording::create(dir.join("s.wav"), 16_000, 2).unwrap();
        assert!(matches!(
            w.write_frames(&[1, 2, 3]),
            Err(WavError::PartialFrame {
                samples: 3,
                channels: 2
            })
        ));
        w.write_frames(&[1, 2]).unwrap(); // still usable
        assert_eq!(w.finalize().unwrap().frames, 1);
        assert!(matches!(
            WavRecording::create(dir.join("z.wav"), 0, 1),
            Err(WavError::InvalidSpec(_))
        ));
        assert!(matches!(
            WavRecording::create(dir.join("z.wav"), 8000, 3),
            Err(WavError::InvalidSpec(_))
        ));
        // Refuses to clobber an existing file unless asked to.
        let e = WavRecording::create(dir.join("s.wav"), 8000, 1).unwrap_err();
        assert!(
            matches!(&e, WavError::Create { source, .. } if source.kind() == io::ErrorKind::AlreadyExists)
        );
        let opts = WavOptions {
            overwrite: true,
            ..WavOptions::default()
        };
        let mut w = WavRecording::create_with(dir.join("s.wav"), 8000, 1, &opts).unwrap();
        assert_eq!(w.finalize().unwrap().frames, 0);
        let (spec, samples) = read_all(&dir.join("s.wav"));
        assert_eq!((spec.channels, samples.len()), (1, 0));
    }

    #[test]
    fn flush_then_crash_then_repair() {
        let dir = TempDir::new("wav-crash");
        let path = dir.join("live.wav");
        let t0 = Instant::now();
        let mut w = WavRecording::create(&path, 8000, 2).unwrap();
        assert!(!w.handle_timeout(t0).unwrap(), "starts the clock");
        assert_eq!(w.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        let frames = ramp(20_000, 2);
        // 1.25 s of audio in 20 ms steps, header driven by simulated time.
        let mut flushes = 0;
        for (i, chunk) in frames[..2 * 10_000].chunks(320).enumerate() {
            w.write_frames(chunk).unwrap();
            let now = t0 + Duration::from_millis(20 * (i as u64 + 1));
            if w.handle_timeout(now).unwrap() {
                flushes += 1;
            }
        }
        assert_eq!(flushes, 1, "one flush per second of simulated time");
        assert!(w.flushed_frames() > 0 && w.flushed_frames() <= w.frames());
        let flushed = w.flushed_frames() as usize;
        w.flush_header().unwrap();
        let at_flush = w.frames() as usize;
        assert_eq!(at_flush, 10_000);
        // More frames after the flush, some of them reaching the file unflushed.
        w.write_frames(&frames[2 * 10_000..]).unwrap();
        // kill -9: the file as it is now, without hound's Drop fixing the header.
        let crashed = dir.join("crashed.wav");
        std::fs::copy(&path, &crashed).unwrap();
        assert!(flushed <= at_flush);
        // A player opens the crashed file as of the last flush…
        let (_, before) = read_all(&crashed);
        assert_eq!(before, frames[..2 * at_flush]);
        // …and the repair recovers every whole frame that reached the disk.
        let r = repair(&crashed).unwrap();
        assert!(r.frames as usize >= at_flush);
        let (spec, after) = read_all(&crashed);
        assert_eq!(spec.channels, 2);
        assert_eq!(after, frames[..after.len()]);
        assert_eq!(after.len() as u64, r.frames * 2);
        assert!(!looks_unfinished(&crashed).unwrap());
        w.finalize().unwrap();
        let (_, full) = read_all(&path);
        assert_eq!(full, frames);
    }

    #[test]
    fn repair_cuts_a_partial_trailing_frame() {
        let dir = TempDir::new("wav-partial");
        let path = dir.join("p.wav");
        let mut w = WavRecording::create(&path, 8000, 2).unwrap();
        let frames = ramp(1001, 2);
        w.write_frames(&frames).unwrap();
        w.finalize().unwrap();
        // Header as left by a crash before any flush (sizes 0), plus 3 stray bytes.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[4..8].copy_from_slice(&36u32.to_le_bytes());
        bytes[40..44].copy_from_slice(&0u32.to_le_bytes());
        bytes.extend([1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        assert!(looks_unfinished(&path).unwrap());
        let r = repair(&path).unwrap();
        assert!(r.changed);
        assert_eq!(
            (r.frames, r.trimmed_bytes, r.header_data_bytes),
            (1001, 3, 0)
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 44 + 1001 * 4);
        let (_, samples) = read_all(&path);
        assert_eq!(samples, frames);
        // Repairing again changes nothing.
        assert!(!repair(&path).unwrap().changed);

        // A header that claims more than the file holds is shrunk.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40..44].copy_from_slice(&100_000u32.to_le_bytes());
        bytes.truncate(44 + 500 * 4 + 1);
        std::fs::write(&path, &bytes).unwrap();
        let r = repair(&path).unwrap();
        assert_eq!((r.frames, r.trimmed_bytes), (500, 1));
        assert_eq!(read_all(&path).1, frames[..1000]);
    }

    #[test]
    fn repair_refuses_non_wav_files() {
        let dir = TempDir::new("wav-notwav");
        let empty = dir.join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(repair(&empty), Err(RepairError::NotWav(_))));
        let text = dir.join("text.wav");
        std::fs::write(&text, b"this is not a wave file at all, really").unwrap();
        assert!(matches!(repair(&text), Err(RepairError::NotWav(_))));
        let header_only = dir.join("h.wav");
        std::fs::write(&header_only, b"RIFF\0\0\0\0WAVEfmt ").unwrap();
        assert!(matches!(repair(&header_only), Err(RepairError::NotWav(_))));
        assert!(matches!(
            repair(dir.join("missing.wav")),
            Err(RepairError::Io(_))
        ));
    }

    #[test]
    fn repair_keeps_a_finished_file_with_trailing_chunks() {
        let dir = TempDir::new("wav-list");
        let path = dir.join("l.wav");
        let mut w = WavRecording::create(&path, 8000, 1).unwrap();
        w.write_frames(&ramp(100, 1)).unwrap();
        w.finalize().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(b"LIST\x04\0\0\0INFO");
        let riff = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let r = repair(&path).unwrap();
        assert!(!r.changed);
        assert_eq!(r.frames, 100);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn creation_errors_are_typed() {
        let dir = TempDir::new("wav-create");
        let e = WavRecording::create(dir.join("no/such/dir/x.wav"), 8000, 2).unwrap_err();
        assert!(
            matches!(&e, WavError::Create { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{e}"
        );
        assert!(e.to_string().contains("no/such/dir/x.wav"));
        // A path under a regular file.
        let file = dir.join("plain");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            WavRecording::create(file.join("x.wav"), 8000, 2),
            Err(WavError::Create { .. })
        ));
        // A read-only directory (root bypasses permissions: then there is nothing to test).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let ro = dir.join("ro");
            std::fs::create_dir(&ro).unwrap();
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
            let probe = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(ro.join("probe"));
            if probe.is_err() {
                let e = WavRecording::create(ro.join("x.wav"), 8000, 2).unwrap_err();
                assert!(
                    matches!(&e, WavError::Create { source, .. } if source.kind() == io::ErrorKind::PermissionDenied),
                    "{e}"
                );
            }
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn full_disk_is_a_typed_error() {
        // /dev/full fails every write with ENOSPC.
        if !Path::new("/dev/full").exists() {
            return;
        }
        let opts = WavOptions {
            overwrite: true,
            ..WavOptions::default()
        };
        match WavRecording::create_with("/dev/full", 8000, 2, &opts) {
            Err(e) => assert!(e.is_disk_full(), "{e}"),
            Ok(_) => panic!("writing to /dev/full succeeded"),
        }
    }

    #[test]
    fn size_limit_fails_the_recording_but_keeps_the_file() {
        let dir = TempDir::new("wav-limit");
        let path = dir.join("cap.wav");
        let opts = WavOptions {
            max_bytes: Some(4000),
            ..WavOptions::default()
        };
        let mut w = WavRecording::create_with(&path, 8000, 2, &opts).unwrap();
        w.write_frames(&ramp(900, 2)).unwrap();
        let e = w.write_frames(&ramp(200, 2)).unwrap_err();
        assert!(matches!(e, WavError::TooLarge { limit: 4000 }));
        assert!(w.failure().is_some());
        assert!(matches!(
            w.write_frames(&[0, 0]),
            Err(WavError::AlreadyFailed(_))
        ));
        assert!(matches!(w.finalize(), Err(WavError::AlreadyFailed(_))));
        let (_, samples) = read_all(&path);
        assert_eq!(samples.len(), 1800);
    }
}
