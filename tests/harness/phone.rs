//! `hark phone call` / `hark phone answer` under test: spawned in their own process
//! group, their `phone: <event> …` progress lines on stderr waited on (never a sleep).

use std::net::SocketAddr;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::pbx::hark_bin;
use crate::process::{Proc, tail};

/// A running `hark phone …`.
pub struct Phone {
    proc: Proc,
    pub role: String,
}

/// The account flags every phone takes.
pub fn account_args(server: SocketAddr, user: &str, password: &str, domain: &str) -> Vec<String> {
    vec![
        "--server".into(),
        server.to_string(),
        "--user".into(),
        user.into(),
        "--password".into(),
        password.into(),
        "--domain".into(),
        domain.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ]
}

impl Phone {
    /// `hark phone call <account> TARGET <extra…>`.
    pub fn call(account: Vec<String>, target: &str, extra: &[&str]) -> Phone {
        Self::call_env(account, target, extra, &[])
    }

    /// `hark phone answer <account> <extra…>`.
    pub fn answer(account: Vec<String>, extra: &[&str]) -> Phone {
        let mut args = vec!["phone".to_string(), "answer".into()];
        args.extend(account);
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn("answerer", args)
    }

    /// `hark phone call` with extra environment (e.g. the sound server of its devices).
    pub fn call_env(account: Vec<String>, target: &str, extra: &[&str], env: &[(String, String)]) -> Phone {
        let mut args = vec!["phone".to_string(), "call".into()];
        args.extend(account);
        args.push(target.into());
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn_env("caller", args, env)
    }

    pub fn spawn(role: &str, args: Vec<String>) -> Phone {
        Self::spawn_env(role, args, &[])
    }

    pub fn spawn_env(role: &str, args: Vec<String>, env: &[(String, String)]) -> Phone {
        let mut cmd = Command::new(hark_bin());
        cmd.args(&args).envs(env.iter().map(|(k, v)| (k, v)));
        Phone { proc: Proc::spawn(&format!("hark phone ({role})"), &mut cmd), role: role.into() }
    }

    pub fn stderr(&self) -> String {
        self.proc.stderr.text()
    }

    /// The progress lines (`phone: …`) so far.
    pub fn events(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .filter_map(|l| l.strip_prefix("phone: ").map(str::to_owned))
            .collect()
    }

    /// Waits for a progress line starting with `event` (e.g. "registered", "answered")
    /// and returns it; panics with the phone's output on timeout or early exit.
    pub fn wait_event(&mut self, event: &str, timeout: Duration) -> String {
        match self.try_wait_event(event, timeout) {
            Some(line) => line,
            None => panic!("{}: no `{event}` event within {timeout:?}\n{}", self.role, self.report()),
        }
    }

    /// Like [`Phone::wait_event`], None on timeout.
    pub fn try_wait_event(&self, event: &str, timeout: Duration) -> Option<String> {
        self.proc.stderr.wait_for(timeout, |text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("phone: "))
                .find(|l| l.split_whitespace().next() == Some(event))
                .map(str::to_owned)
        })
    }

    /// Waits for the phone to exit; panics on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.proc.wait_exit(timeout) {
            Some(status) => {
                // Let the reader threads catch the last lines.
                let stderr = self.proc.stderr.clone();
                crate::process::poll_until(Duration::from_secs(2), || stderr.at_eof().then_some(()));
                status
            }
            None => panic!("{} did not exit within {timeout:?}\n{}", self.role, self.report()),
        }
    }

    /// Waits for a successful exit; panics with the output otherwise.
    pub fn assert_success(&mut self, timeout: Duration) {
        let status = self.wait_exit(timeout);
        assert!(status.success(), "{} exited with {status}\n{}", self.role, self.report());
    }

    pub fn report(&self) -> String {
        self.proc.report(200)
    }

    /// The last lines of stderr.
    pub fn tail(&self, n: usize) -> String {
        tail(&self.stderr(), n)
    }
}
