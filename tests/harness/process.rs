//! Child processes, temp dirs and polling: every process is killed (with its process group)
//! on drop, and readiness is observed, never assumed after a fixed sleep.

use std::fs;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Polls `probe` until it returns `Some`, with a short growing interval, or panics after
/// `timeout` with `what` and whatever `context` says at that moment.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    match poll_until(timeout, &mut probe) {
        Some(value) => value,
        None => panic!(
            "timed out after {timeout:?} waiting for {what}\n{}",
            context()
        ),
    }
}

/// Polls `probe` until it returns `Some` or `timeout` passes.
pub fn poll_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(5);
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(Duration::from_millis(100));
    }
}

/// A directory removed on drop (kept, and its path printed, when `HARK_E2E_KEEP` is set).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "hark-e2e-{label}-{}-{}-{nanos:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Writes `contents` to `rel` inside the directory and returns the full path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("HARK_E2E_KEEP").is_some() {
            eprintln!("HARK_E2E_KEEP: kept {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Output captured from a child's stream by a reader thread; waiters are woken on growth.
#[derive(Clone, Default)]
pub struct Captured {
    inner: Arc<(Mutex<CapturedState>, Condvar)>,
}

#[derive(Default)]
struct CapturedState {
    bytes: Vec<u8>,
    eof: bool,
}

impl Captured {
    fn spawn_reader(&self, mut stream: impl Read + Send + 'static) {
        let inner = Arc::clone(&self.inner);
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let (lock, cvar) = &*inner;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        lock.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .bytes
                            .extend_from_slice(&buf[..n]);
                        cvar.notify_all();
                    }
                }
            }
            lock.lock().unwrap_or_else(|p| p.into_inner()).eof = true;
            cvar.notify_all();
        });
    }

    /// Everything so far, lossily decoded, with ANSI colour codes removed.
    pub fn text(&self) -> String {
        let state = self.inner.0.lock().unwrap_or_else(|p| p.into_inner());
        strip_ansi(&String::from_utf8_lossy(&state.bytes))
    }

    /// True once the stream reached end of file (every writer closed it).
    pub fn at_eof(&self) -> bool {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner()).eof
    }

    /// Waits until `probe(text)` answers `Some`, woken whenever output grows.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut probe: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inner;
        let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let text = strip_ansi(&String::from_utf8_lossy(&guard.bytes));
            if let Some(value) = probe(&text) {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // Wake up at least every 200 ms so that probes which also look elsewhere
            // (files, the child's exit) make progress.
            let wait = (deadline - now).min(Duration::from_millis(200));
            guard = cvar
                .wait_timeout(guard, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Removes `ESC [ ... letter` sequences (baresip colours its output).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut out = String::new();
    if start > 0 {
        out.push_str(&format!("[... {start} earlier lines ...]\n"));
    }
    for line in &lines[start..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A spawned child in its own process group, its stdout and stderr captured.
/// Drop kills the whole group (SIGKILL) and reaps the child.
pub struct Proc {
    name: String,
    command_line: String,
    child: Child,
    pub stdout: Captured,
    pub stderr: Captured,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` (stdin null unless the caller set it) with captured stdout/stderr.
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        Self::spawn_with_stdin(name, cmd, false)
    }

    pub fn spawn_with_stdin(name: &str, cmd: &mut Command, piped_stdin: bool) -> Proc {
        let command_line = describe(cmd);
        cmd.stdin(if piped_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
        // If the test process dies without unwinding (killed by a runner's timeout), the
        // kernel kills the child too. (It fires when the spawning *thread* exits: every
        // Proc lives and dies within the test thread that started it.)
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name} ({command_line}): {e}"));
        let stdout = Captured::default();
        let stderr = Captured::default();
        stdout.spawn_reader(child.stdout.take().expect("piped stdout"));
        stderr.spawn_reader(child.stderr.take().expect("piped stderr"));
        Proc {
            name: name.to_string(),
            command_line,
            child,
            stdout,
            stderr,
            exited: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdin(&mut self) -> Option<&mut std::process::ChildStdin> {
        self.child.stdin.as_mut()
    }

    /// `Some(status)` once the child has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Waits for the child to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll_until(timeout, || self.try_exit())
    }

    /// Stdout and stderr, for failure messages (the last `lines` of each).
    pub fn report(&self, lines: usize) -> String {
        format!(
            "--- {} ({}) stdout ---\n{}--- {} stderr ---\n{}",
            self.name,
            self.command_line,
            tail(&self.stdout.text(), lines),
            self.name,
            tail(&self.stderr.text(), lines)
        )
    }

    /// Sends `signal` to the whole process group.
    pub fn signal_group(&self, signal: i32) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid addresses the process group we created.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }

    /// Kills the process group and reaps the child.
    pub fn kill(&mut self) {
        if self.try_exit().is_none() {
            self.signal_group(libc::SIGKILL);
            self.exited = self.child.wait().ok();
        } else {
            // The leader is gone; descendants may not be.
            self.signal_group(libc::SIGKILL);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The command line, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            s.push_str(&format!(" '{}'", arg.replace('\'', "'\\''")));
        } else {
            s.push(' ');
            s.push_str(&arg);
        }
    }
    s
}

/// Runs `cmd` to completion (with a timeout), returning status, stdout and stderr.
pub fn run(name: &str, cmd: &mut Command, timeout: Duration) -> (ExitStatus, String, String) {
    let mut proc = Proc::spawn(name, cmd);
    let status = proc.wait_exit(timeout).unwrap_or_else(|| {
        let report = proc.report(100);
        proc.kill();
        panic!("{name} did not finish within {timeout:?}\n{report}")
    });
    // The reader threads finish shortly after the exit (unless a grandchild keeps the
    // pipes open; then take what there is).
    let _ = poll_until(Duration::from_secs(5), || {
        (proc.stdout.at_eof() && proc.stderr.at_eof()).then_some(())
    });
    (status, proc.stdout.text(), proc.stderr.text())
}

/// Reads a file if it exists (lossy), or explains why not.
pub fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => strip_ansi(&String::from_utf8_lossy(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            format!("({} does not exist)", path.display())
        }
        Err(e) => format!("(reading {}: {e})", path.display()),
    }
}
