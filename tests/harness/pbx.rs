//! `hark pbx` under test: a data dir of its own, `init`, users, and `serve` on free ports.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::net::{http_get, metric_value};
use crate::process::{self, Proc, TempDir, tail, wait_until};

/// The SIP domain of the test tenant.
pub const DOMAIN: &str = "pbx.test";
/// The name of the test tenant.
pub const TENANT: &str = "office";

/// How long a `hark pbx` admin command may take on a busy machine.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `serve` may take to say it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `hark` binary: `$HARK_BIN`, else `hark` beside the test executable's directory
/// (tests run from target/<profile>/deps/, the binary is target/<profile>/hark).
pub fn hark_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("HARK_BIN") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "HARK_BIN={} is not a file", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let candidate = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("hark"))
        .expect("the test executable has no grandparent directory");
    assert!(
        candidate.is_file(),
        "the hark binary is missing at {} (test executable {}): build it with \
         `cargo build -p hark-cli`, or point HARK_BIN at it",
        candidate.display(),
        exe.display()
    );
    candidate
}

/// Configures a PBX before it starts.
#[must_use]
pub struct PbxBuilder {
    domain: String,
    tenant: String,
    users: Vec<(String, String)>,
    /// Further tenants (name, domain) and their users (tenant, ext, password).
    tenants: Vec<(String, String)>,
    tenant_users: Vec<(String, String, String)>,
    serve_args: Vec<String>,
}

impl PbxBuilder {
    /// Adds a tenant served under its own SIP `domain` (before `serve` starts).
    pub fn tenant(mut self, name: &str, domain: &str) -> Self {
        self.tenants.push((name.to_string(), domain.to_string()));
        self
    }

    /// Adds extension `ext` to tenant `tenant` (added with [`PbxBuilder::tenant`]).
    pub fn user_in(mut self, tenant: &str, ext: &str, password: &str) -> Self {
        self.tenant_users
            .push((tenant.to_string(), ext.to_string(), password.to_string()));
        self
    }

    /// Adds extension `ext` with `password` (before `serve` starts).
    pub fn user(mut self, ext: &str, password: &str) -> Self {
        self.users.push((ext.to_string(), password.to_string()));
        self
    }

    /// Adds arguments to `hark pbx serve`, e.g. `["--min-expires", "5"]`.
    pub fn serve_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.serve_args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn start(self) -> Pbx {
        let bin = hark_bin();
        let data = TempDir::new("pbx");
        let data_arg = data.path().to_string_lossy().into_owned();
        admin(
            &bin,
            &[
                "pbx",
                "init",
                "--data",
                &data_arg,
                "--domain",
                &self.domain,
                "--tenant",
                &self.tenant,
                "--admin-password",
                "admin-secret",
            ],
        );
        for (name, domain) in &self.tenants {
            admin(
                &bin,
                &["pbx", "tenant", "add", "--data", &data_arg, "--tenant", name, "--domain", domain],
            );
        }
        for (tenant, ext, password) in &self.tenant_users {
            admin(
                &bin,
                &["pbx", "user", "add", "--data", &data_arg, "--tenant", tenant, "--ext", ext, "--password", password],
            );
        }
        for (ext, password) in &self.users {
            admin(
                &bin,
                &[
                    "pbx",
                    "user",
                    "add",
                    "--data",
                    &data_arg,
                    "--tenant",
                    &self.tenant,
                    "--ext",
                    ext,
                    "--password",
                    password,
                ],
            );
        }

        let (proc, (sip_udp, sip_tcp, http)) = spawn_serve(&bin, &data_arg, &self.serve_args);
        let pbx = Pbx {
            bin,
            data,
            proc,
            serve_args: self.serve_args,
            sip_udp,
            sip_tcp,
            http,
            domain: self.domain,
            tenant: self.tenant,
        };
        pbx.wait_healthy();
        pbx
    }
}

/// Starts `hark pbx serve` on free ports and waits for its ready lines.
fn spawn_serve(bin: &PathBuf, data_arg: &str, serve_args: &[String]) -> (Proc, (SocketAddr, SocketAddr, SocketAddr)) {
    let mut cmd = Command::new(bin);
    // --sip-trace: every SIP message in the log, the wire evidence for failure messages.
    cmd.args(["pbx", "serve", "--data", data_arg, "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", "--sip-trace"])
        .args(serve_args)
        .env("RUST_BACKTRACE", "1");
    let mut proc = Proc::spawn("hark pbx serve", &mut cmd);
    let ready = proc.stderr.wait_for(READY_TIMEOUT, parse_ready);
    let Some(addrs) = ready else {
        let exited = proc.try_exit();
        panic!(
            "hark pbx serve was not ready within {READY_TIMEOUT:?} (exit status: {exited:?}); expected \
             stderr lines `SIP listening on udp:ADDR`, `SIP listening on tcp:ADDR` and \
             `HTTP listening on ADDR`\n{}",
            proc.report(200)
        );
    };
    (proc, addrs)
}

/// Finds the three addresses in `serve`'s stderr once all have been printed.
fn parse_ready(stderr: &str) -> Option<(SocketAddr, SocketAddr, SocketAddr)> {
    let (mut udp, mut tcp, mut http) = (None, None, None);
    for line in stderr.lines() {
        if let Some(rest) = line.split_once("SIP listening on").map(|(_, r)| r) {
            for token in rest.split(|c: char| c.is_whitespace() || c == ',') {
                if let Some(addr) = token.strip_prefix("udp:").and_then(|a| a.parse().ok()) {
                    udp = Some(addr);
                }
                if let Some(addr) = token.strip_prefix("tcp:").and_then(|a| a.parse().ok()) {
                    tcp = Some(addr);
                }
            }
        }
        if let Some(rest) = line.split_once("HTTP listening on").map(|(_, r)| r) {
            let token = rest.split_whitespace().next().unwrap_or("");
            let token = token.trim_start_matches("http://").trim_end_matches('/');
            if let Ok(addr) = token.parse() {
                http = Some(addr);
            }
        }
    }
    Some((udp?, tcp?, http?))
}

/// Runs `hark ARGS` to completion: whether it succeeded, its stdout and its stderr.
pub fn hark(args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(hark_bin());
    cmd.args(args);
    let (status, out, err) = process::run("hark", &mut cmd, ADMIN_TIMEOUT);
    (status.success(), out, err)
}

/// `hark ARGS`, which must succeed: its stdout.
pub fn hark_ok(args: &[&str]) -> String {
    let (ok, out, err) = hark(args);
    assert!(ok, "`hark {}` failed:\n{err}", args.join(" "));
    out
}

fn admin(bin: &PathBuf, args: &[&str]) -> (String, String) {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let line = process::describe(&cmd);
    let (status, out, err) = process::run("hark", &mut cmd, ADMIN_TIMEOUT);
    assert!(
        status.success(),
        "`{line}` failed with {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
    (out, err)
}

/// A running `hark pbx serve`; killed (with its process group) and its data dir removed
/// on drop.
pub struct Pbx {
    bin: PathBuf,
    // Field order: the process dies before its data dir is removed.
    proc: Proc,
    data: TempDir,
    serve_args: Vec<String>,
    /// Where SIP over UDP listens.
    pub sip_udp: SocketAddr,
    /// Where SIP over TCP listens.
    pub sip_tcp: SocketAddr,
    /// Where /healthz and /metrics are served.
    pub http: SocketAddr,
    pub domain: String,
    pub tenant: String,
}

impl Pbx {
    /// A PBX for domain `pbx.test` (tenant `office`) without extensions.
    pub fn start() -> Pbx {
        Self::builder().start()
    }

    pub fn builder() -> PbxBuilder {
        PbxBuilder {
            domain: DOMAIN.to_string(),
            tenant: TENANT.to_string(),
            users: Vec::new(),
            tenants: Vec::new(),
            tenant_users: Vec::new(),
            serve_args: Vec::new(),
        }
    }

    /// Runs `hark pbx <args> --data DIR` against this PBX's data dir; panics on failure.
    pub fn admin(&self, args: &[&str]) -> (String, String) {
        let data = self.data.path().to_string_lossy().into_owned();
        let mut all: Vec<&str> = vec!["pbx"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--data", &data]);
        admin(&self.bin, &all)
    }

    /// [`Pbx::admin`], then waits until the running server has reloaded its settings (its
    /// "reloaded" log line), so that the next call sees the change.
    pub fn configure(&self, args: &[&str]) {
        let count = |p: &Pbx| p.stderr().matches("settings changed; reloaded").count();
        let before = count(self);
        self.admin(args);
        if crate::poll_until(Duration::from_secs(5), || (count(self) > before).then_some(())).is_none() {
            self.fail(&format!("`hark pbx {}` did not reach the running server within 5 s (no reload logged)", args.join(" ")));
        }
    }

    fn wait_healthy(&self) {
        wait_until(
            READY_TIMEOUT,
            "GET /healthz to answer 200",
            || http_get(self.http, "/healthz", Duration::from_secs(5)).ok().filter(|r| r.status == 200),
            || self.logs(),
        );
    }

    /// Stops the server with SIGTERM and returns its stderr; panics unless it exits
    /// cleanly (status 0) in time.
    pub fn stop(&mut self) -> String {
        self.proc.signal_group(libc::SIGTERM);
        match self.proc.wait_exit(READY_TIMEOUT) {
            Some(status) if status.success() => self.stderr(),
            Some(status) => panic!("hark pbx serve exited with {status} on SIGTERM\n{}", self.logs()),
            None => panic!("hark pbx serve did not stop within {READY_TIMEOUT:?} of SIGTERM\n{}", self.logs()),
        }
    }

    /// Stops the server cleanly and starts it again on the same data (new ports).
    pub fn restart(&mut self) {
        self.stop();
        let data_arg = self.data.path().to_string_lossy().into_owned();
        let (proc, (sip_udp, sip_tcp, http)) = spawn_serve(&self.bin, &data_arg, &self.serve_args);
        self.proc = proc;
        (self.sip_udp, self.sip_tcp, self.http) = (sip_udp, sip_tcp, http);
        self.wait_healthy();
    }

    /// Adds an extension while the PBX runs.
    pub fn add_user(&self, ext: &str, password: &str) {
        self.admin(&[
            "user",
            "add",
            "--tenant",
            &self.tenant,
            "--ext",
            ext,
            "--password",
            password,
        ]);
    }

    /// Adds a tenant served under its own SIP domain, while the PBX runs.
    pub fn add_tenant(&self, tenant: &str, domain: &str) {
        self.admin(&["tenant", "add", "--tenant", tenant, "--domain", domain]);
    }

    /// Adds extension `ext` to `tenant` (not necessarily this PBX's default tenant).
    pub fn add_user_in(&self, tenant: &str, ext: &str, password: &str) {
        self.admin(&["user", "add", "--tenant", tenant, "--ext", ext, "--password", password]);
    }

    /// `hark pbx cdr list --json`: every CDR row (newest first), parsed. Panics (with the
    /// command's output) unless it prints one JSON array.
    pub fn cdrs(&self) -> Vec<serde_json::Value> {
        let (out, err) = self.admin(&["cdr", "list", "--json"]);
        match serde_json::from_str::<serde_json::Value>(out.trim()) {
            Ok(serde_json::Value::Array(rows)) => rows,
            Ok(other) => self.fail(&format!(
                "`hark pbx cdr list --json` printed JSON that is not one array: {other}\nstderr: {err}"
            )),
            Err(e) => self.fail(&format!(
                "`hark pbx cdr list --json` printed no valid JSON ({e}):\n{out}\nstderr: {err}"
            )),
        }
    }

    /// Polls the CDRs (written asynchronously, after the call ends) until a row satisfies
    /// `pred`; panics with every row seen and the server's log otherwise.
    pub fn wait_cdr(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = Vec::new();
        let found = process::poll_until(timeout, || {
            last = self.cdrs();
            last.iter().find(|r| pred(r)).cloned()
        });
        match found {
            Some(row) => row,
            None => self.fail(&format!(
                "no CDR row for {what} within {timeout:?}; rows:\n{}",
                serde_json::to_string_pretty(&last).unwrap_or_default()
            )),
        }
    }

    /// `hark pbx recordings list --json`: every recording row (newest first), parsed.
    /// Panics (with the command's output) unless it prints one JSON array.
    pub fn recordings(&self) -> Vec<serde_json::Value> {
        let (out, err) = self.admin(&["recordings", "list", "--json"]);
        match serde_json::from_str::<serde_json::Value>(out.trim()) {
            Ok(serde_json::Value::Array(rows)) => rows,
            Ok(other) => self.fail(&format!(
                "`hark pbx recordings list --json` printed JSON that is not one array: {other}\nstderr: {err}"
            )),
            Err(e) => self.fail(&format!(
                "`hark pbx recordings list --json` printed no valid JSON ({e}):\n{out}\nstderr: {err}"
            )),
        }
    }

    /// Polls the recordings until a row satisfies `pred`; panics with every row seen and
    /// the server's log otherwise.
    pub fn wait_recording(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = Vec::new();
        let found = process::poll_until(timeout, || {
            last = self.recordings();
            last.iter().find(|r| pred(r)).cloned()
        });
        match found {
            Some(row) => row,
            None => self.fail(&format!(
                "no recording row for {what} within {timeout:?}; rows:\n{}",
                serde_json::to_string_pretty(&last).unwrap_or_default()
            )),
        }
    }

    /// Kills the server with SIGKILL (no chance to finish anything), then starts it
    /// again on the same data dir (new ports). Returns the killed server's stderr.
    pub fn crash_and_restart(&mut self) -> String {
        self.proc.signal_group(libc::SIGKILL);
        if self.proc.wait_exit(READY_TIMEOUT).is_none() {
            panic!("hark pbx serve did not die of SIGKILL\n{}", self.logs());
        }
        let old = self.stderr();
        let data_arg = self.data.path().to_string_lossy().into_owned();
        let (proc, (sip_udp, sip_tcp, http)) = spawn_serve(&self.bin, &data_arg, &self.serve_args);
        self.proc = proc;
        (self.sip_udp, self.sip_tcp, self.http) = (sip_udp, sip_tcp, http);
        self.wait_healthy();
        old
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    /// The Prometheus exposition at /metrics (panics unless 200).
    pub fn metrics(&self) -> String {
        match http_get(self.http, "/metrics", Duration::from_secs(5)) {
            Ok(r) if r.status == 200 => r.body,
            Ok(r) => self.fail(&format!("GET /metrics answered {}: {}", r.status, r.body)),
            Err(e) => self.fail(&format!("GET /metrics failed: {e}")),
        }
    }

    /// The value of one metric (summed over labels); `None` if absent.
    pub fn metric(&self, name: &str) -> Option<f64> {
        metric_value(&self.metrics(), name)
    }

    /// Polls /metrics until `name` equals `value`; panics with the last exposition.
    pub fn wait_metric(&self, name: &str, value: f64, timeout: Duration) {
        let mut last = String::new();
        let found = process::poll_until(timeout, || {
            last = self.metrics();
            (metric_value(&last, name) == Some(value)).then_some(())
        });
        if found.is_none() {
            self.fail(&format!(
                "metric {name} did not reach {value} within {timeout:?}; it is {:?}. /metrics:\n{}",
                metric_value(&last, name),
                last
            ));
        }
    }

    /// The server's stderr (last lines), for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- hark pbx serve ({}) stderr ---\n{}",
            self.proc.command_line(),
            tail(&self.proc.stderr.text(), 300)
        )
    }

    /// The whole stderr.
    pub fn stderr(&self) -> String {
        self.proc.stderr.text()
    }

    /// Panics unless the server is still running.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.proc.try_exit() {
            panic!("hark pbx serve exited ({status})\n{}", self.logs());
        }
    }

    /// Panics with `msg` and the server's log.
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.logs())
    }

    /// A SIP URI of this PBX's UDP listener, e.g. for an outbound proxy.
    pub fn sip_uri(&self, transport: &str) -> String {
        let addr = if transport.eq_ignore_ascii_case("tcp") {
            self.sip_tcp
        } else {
            self.sip_udp
        };
        format!("sip:{addr};transport={}", transport.to_ascii_lowercase())
    }
}

impl std::fmt::Debug for Pbx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pbx")
            .field("sip_udp", &self.sip_udp)
            .field("sip_tcp", &self.sip_tcp)
            .field("http", &self.http)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ready;

    #[test]
    fn ready_lines_are_found_among_log_lines() {
        let stderr = "2026-01-01T00:00:00Z INFO hark: opening store\n\
                      SIP listening on udp:127.0.0.1:40001\n\
                      SIP listening on tcp:127.0.0.1:40002\n\
                      HTTP listening on http://127.0.0.1:40003/\n";
        let (udp, tcp, http) = parse_ready(stderr).unwrap();
        assert_eq!((udp.port(), tcp.port(), http.port()), (40001, 40002, 40003));
        assert!(parse_ready("SIP listening on udp:127.0.0.1:1, tcp:127.0.0.1:2\n").is_none());
        assert!(
            parse_ready(
                "SIP listening on udp:127.0.0.1:1, tcp:127.0.0.1:2\nHTTP listening on 127.0.0.1:3\n"
            )
            .is_some()
        );
    }
}
