//! `hark phone` against a registrar that is not Hark: Kamailio 5.6 with the digest
//! registrar of bench/kamailio/kamailio.cfg (user N, password "pwN"; anything but
//! REGISTER and OPTIONS gets 501). The phone registers with digest, and a call the
//! server refuses ends in one clear error line and a failing exit.

use std::process::Command;
use std::time::Duration;

use hark_e2e::phone::{Phone, account_args};
use hark_e2e::process::{Proc, TempDir};
use hark_e2e::wire::UdpPeer;
use hark_e2e::{free_port, poll_until, require_peer};

struct Kamailio {
    proc: Proc,
    _dir: TempDir,
    addr: std::net::SocketAddr,
}

impl Kamailio {
    fn start() -> Kamailio {
        let bin = require_peer("kamailio");
        let dir = TempDir::new("kamailio");
        std::fs::create_dir_all(dir.join("run")).expect("run dir");
        let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/kamailio/kamailio.cfg");
        assert!(cfg.is_file(), "{} is missing", cfg.display());
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-l", &format!("udp:127.0.0.1:{port}"), "-n", "1", "-m", "64"])
            .arg("-Y")
            .arg(dir.join("run"))
            .arg("-P")
            .arg(dir.join("run/kamailio.pid"))
            .arg("-w")
            .arg(dir.path());
        let proc = Proc::spawn("kamailio", &mut cmd);
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let peer = UdpPeer::new(addr);
        let ready = poll_until(Duration::from_secs(20), || peer.options(Duration::from_millis(300)).ok());
        assert!(ready.is_some(), "kamailio did not answer OPTIONS within 20 s\n{}", proc.report(100));
        Kamailio { proc, _dir: dir, addr }
    }
}

#[test]
fn phone_registers_at_kamailio_and_reports_a_refused_call_clearly() {
    let k = Kamailio::start();
    let mut phone = Phone::call(
        account_args(k.addr, "10001", "pw10001", "127.0.0.1"),
        "10002",
        &["--answer-timeout", "10", "--register-timeout", "10"],
    );
    let status = phone.wait_exit(Duration::from_secs(40));
    let ctx = || format!("{}\n{}", phone.report(), k.proc.report(100));
    assert!(phone.events().iter().any(|e| e.starts_with("registered")), "no registration\n{}", ctx());
    assert!(!status.success(), "the call must fail\n{}", ctx());
    let errors: Vec<String> = phone.stderr().lines().filter(|l| l.starts_with("error: ")).map(str::to_owned).collect();
    assert_eq!(errors.len(), 1, "{}", ctx());
    assert!(errors[0].contains("call to 10002 failed: 501"), "{}\n{}", errors[0], ctx());
    assert!(phone.events().iter().any(|e| e.starts_with("unregistered")), "it unregisters on the way out\n{}", ctx());
}

#[test]
fn a_wrong_password_at_kamailio_is_one_clear_error() {
    let k = Kamailio::start();
    let mut phone = Phone::call(account_args(k.addr, "10001", "wrong", "127.0.0.1"), "10002", &[]);
    let status = phone.wait_exit(Duration::from_secs(40));
    let ctx = || format!("{}\n{}", phone.report(), k.proc.report(100));
    assert!(!status.success(), "{}", ctx());
    let stderr = phone.stderr();
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_default();
    assert!(error.contains("wrong user or password"), "{error}\n{}", ctx());
}
