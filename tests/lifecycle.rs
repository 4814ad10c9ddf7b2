//! The PBX as an operator runs it: registrations survive a restart, admin commands take
//! effect while it serves, SIGTERM stops it cleanly, and the CLI's errors are one clear
//! line with a non-zero exit that leaves nothing half-written.

use std::time::Duration;

use hark_e2e::process::TempDir;
use hark_e2e::sipp::headers;
use hark_e2e::{hark, Pbx, Sipp};

const EXT: &str = "101";
const PASSWORD: &str = "s3cret-101";
const METRIC: &str = "hark_registrations";
const SETTLE: Duration = Duration::from_secs(10);

#[test]
fn registrations_survive_a_restart() {
    let mut pbx = Pbx::builder().user(EXT, PASSWORD).start();
    Sipp::against("register_auth.xml", &pbx).auth(EXT, PASSWORD).run().assert_success(&pbx);
    pbx.wait_metric(METRIC, 1.0, SETTLE);

    let log = pbx.stop();
    assert!(log.contains("flushing registrations") && log.contains("stopped"), "no clean shutdown:\n{log}");
    pbx.restart();
    assert_eq!(pbx.metric(METRIC), Some(1.0), "the binding was not restored\n{}", pbx.logs());

    // The restored binding answers a query (REGISTER without Contact) with its remaining time.
    let run = Sipp::against("query_bindings.xml", &pbx).auth(EXT, PASSWORD).run();
    run.assert_success(&pbx);
    let ok = run
        .received()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .unwrap_or_else(|| pbx.fail("no 200 to the query"));
    let contacts = headers(&ok, "Contact");
    assert_eq!(contacts.len(), 1, "{ok}");
    let expires: u64 = contacts[0]
        .rsplit_once("expires=")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or_else(|| pbx.fail(&format!("no expires in {}", contacts[0])));
    assert!((3000..=3600).contains(&expires), "expiry not carried over: {expires}");
}

#[test]
fn users_added_while_serving_can_register_at_once() {
    let pbx = Pbx::start();
    pbx.add_user(EXT, PASSWORD);
    // The server notices the change within a quarter second; allow for a busy machine.
    let registered = hark_e2e::poll_until(SETTLE, || {
        let run = Sipp::against("register_auth.xml", &pbx).auth(EXT, PASSWORD).run();
        run.success().then_some(())
    });
    assert!(registered.is_some(), "a user added while serving could not register\n{}", pbx.logs());
    pbx.wait_metric(METRIC, 1.0, SETTLE);
}

/// A failing command: non-zero exit and exactly one line on stderr, mentioning `needle`.
fn fails_with(args: &[&str], needle: &str) {
    let (ok, out, err) = hark(args);
    assert!(!ok, "`hark {}` succeeded:\n{out}", args.join(" "));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr for `hark {}`:\n{err}", args.join(" "));
    assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "`hark {}`: {err}", args.join(" "));
}

#[test]
fn cli_errors_are_one_clear_line_and_leave_nothing_behind() {
    let tmp = TempDir::new("cli");
    let data = tmp.join("pbx");
    let d = data.to_str().unwrap();

    fails_with(&["pbx", "user", "add", "--data", d, "--tenant", "default", "--ext", "1", "--password", "x"], "hark pbx init");
    fails_with(&["pbx", "init", "--data", d, "--domain", "bad domain!"], "domain");
    assert!(!data.exists(), "a failed init left {} behind", data.display());

    let (ok, out, err) = hark(&["pbx", "init", "--data", d, "--domain", "pbx.test", "--admin-password", "pw"]);
    assert!(ok, "{out}{err}");
    fails_with(&["pbx", "init", "--data", d, "--domain", "pbx.test"], "already");
    fails_with(&["pbx", "user", "add", "--data", d, "--tenant", "nope", "--ext", "101", "--password", "x"], "no tenant named nope");
    fails_with(&["pbx", "user", "add", "--data", d, "--tenant", "default", "--ext", "1 01", "--password", "x"], "extension");
    let (ok, _, err) = hark(&["pbx", "user", "add", "--data", d, "--tenant", "default", "--ext", "101", "--password", "x"]);
    assert!(ok, "{err}");
    fails_with(&["pbx", "user", "add", "--data", d, "--tenant", "default", "--ext", "101", "--password", "y"], "already exists");
    fails_with(&["pbx", "user", "set", "--data", d, "--tenant", "default", "--ext", "999", "--record-audio", "off"], "999");

    // A CSV import with one bad line imports nothing.
    let csv = tmp.write("users.csv", "201,pw201\n202,\n203,pw203\n");
    fails_with(&["pbx", "user", "import", "--data", d, "--tenant", "default", "--csv", csv.to_str().unwrap()], "users.csv:2");
    let (_, out, _) = hark(&["pbx", "user", "list", "--data", d, "--tenant", "default", "--json"]);
    let users: serde_json::Value = serde_json::from_str(&out).expect("user list --json is JSON");
    let exts: Vec<&str> = users.as_array().unwrap().iter().filter_map(|u| u["extension"].as_str()).collect();
    assert_eq!(exts, vec!["101", "admin"], "a failed import changed the users");

    // Settings round-trip through the CLI.
    let (ok, _, err) = hark(&["pbx", "tenant", "set", "--data", d, "--tenant", "default", "--audio-recording", "on"]);
    assert!(ok, "{err}");
    let (ok, _, err) = hark(&["pbx", "system", "set", "--data", d, "--record-between-external-numbers", "off"]);
    assert!(ok, "{err}");
    let (ok, _, err) = hark(&["pbx", "user", "set", "--data", d, "--tenant", "default", "--ext", "101", "--record-audio", "off"]);
    assert!(ok, "{err}");
    let (_, out, _) = hark(&["pbx", "user", "list", "--data", d, "--tenant", "default", "--json"]);
    assert!(out.contains("\"record_audio_calls\":false"), "{out}");

    // serve on a port that is taken: a clear error, not a panic.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    // (serve logs as it starts; the error is its last line.)
    let (ok, _, err) = hark(&["pbx", "serve", "--data", d, "--sip", &addr, "--http", "127.0.0.1:0"]);
    assert!(!ok, "serve started on a taken port");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: cannot listen for SIP on") && !err.contains("panicked"), "{err}");
}
