//! `hark pbx recordings list` on a PBX that has recorded nothing yet: `--json` prints one
//! empty JSON array, the table only its header, filters are checked. And the tenant
//! recording options of `hark pbx tenant set` round-trip through `hark pbx tenant list`.
//! Recordings of real calls are exercised by the call tests.


use hark_e2e::{hark, hark_ok as ok};
use hark_e2e::process::TempDir;

fn fails(args: &[&str]) -> String {
    let (success, out, err) = hark(args);
    assert!(!success, "`hark {}` succeeded:\n{out}", args.join(" "));
    assert!(out.is_empty(), "nothing on stdout when failing: {out}");
    err
}

#[test]
fn recordings_list_of_a_new_pbx_is_empty() {
    let tmp = TempDir::new("recordings");
    let data = tmp.join("pbx");
    let d = data.to_str().unwrap();

    // Before init: one clear line pointing at `hark pbx init`.
    let err = fails(&["pbx", "recordings", "list", "--data", d, "--json"]);
    assert!(err.lines().count() == 1 && err.contains("hark pbx init"), "{err}");

    ok(&["pbx", "init", "--data", d, "--domain", "pbx.test", "--tenant", "office"]);

    let out = ok(&["pbx", "recordings", "list", "--data", d, "--json"]);
    assert_eq!(out.trim(), "[]", "expected one empty JSON array");
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(parsed, serde_json::json!([]));

    let out = ok(&[
        "pbx", "recordings", "list", "--data", d, "--json", "--tenant", "OFFICE", "--ext", "101",
        "--limit", "5",
    ]);
    assert_eq!(out.trim(), "[]");

    let table = ok(&["pbx", "recordings", "list", "--data", d]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 1, "only the header:\n{table}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS"), "{table}");

    let err = fails(&["pbx", "recordings", "list", "--data", d, "--json", "--tenant", "nosuch"]);
    assert_eq!(err.trim(), "error: no tenant named nosuch");
    // An extension names a user of one tenant.
    let err = fails(&["pbx", "recordings", "list", "--data", d, "--ext", "101"]);
    assert!(err.contains("--tenant"), "{err}");
    let err = fails(&["pbx", "recordings", "list", "--data", d, "--tenant", "office", "--ext", "1 01"]);
    assert!(err.contains("invalid extension"), "{err}");
}

#[test]
fn tenant_recording_options_round_trip() {
    let tmp = TempDir::new("tenant-options");
    let data = tmp.join("pbx");
    let d = data.to_str().unwrap();
    ok(&["pbx", "init", "--data", d, "--domain", "pbx.test", "--tenant", "office"]);

    let tenant = |d: &str| -> serde_json::Value {
        let out = ok(&["pbx", "tenant", "list", "--data", d, "--json"]);
        let rows: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
        rows[0].clone()
    };
    let t = tenant(d);
    assert_eq!(t["name"], "office");
    assert_eq!(t["recording_layout"], "stereo", "defaults: {t}");
    assert!(t["retention_days"].is_null(), "kept forever by default: {t}");
    assert_eq!(t["start_beep"], false);
    assert_eq!(t["pause_confirmation_tone"], true);
    assert_eq!(t["audio_recording"], false);

    ok(&[
        "pbx", "tenant", "set", "--data", d, "--tenant", "office", "--recording-layout", "mono",
        "--retention-days", "30", "--start-beep", "on", "--pause-tone", "off",
    ]);
    let t = tenant(d);
    assert_eq!(t["recording_layout"], "mono", "{t}");
    assert_eq!(t["retention_days"], 30);
    assert_eq!(t["start_beep"], true);
    assert_eq!(t["pause_confirmation_tone"], false);
    assert_eq!(t["audio_recording"], false, "other switches untouched");

    // One option at a time leaves the others; `off` keeps recordings forever again.
    ok(&["pbx", "tenant", "set", "--data", d, "--tenant", "office", "--retention-days", "off", "--audio-recording", "on"]);
    let t = tenant(d);
    assert!(t["retention_days"].is_null(), "{t}");
    assert_eq!(t["recording_layout"], "mono");
    assert_eq!(t["start_beep"], true);
    assert_eq!(t["audio_recording"], true);

    for bad in [
        &["--recording-layout", "quad"][..],
        &["--retention-days", "0"],
        &["--retention-days", "forever"],
        &["--start-beep", "maybe"],
    ] {
        let mut args = vec!["pbx", "tenant", "set", "--data", d, "--tenant", "office"];
        args.extend_from_slice(bad);
        fails(&args);
    }
    let err = fails(&["pbx", "tenant", "set", "--data", d, "--tenant", "office"]);
    assert!(err.contains("nothing to change"), "{err}");
    assert_eq!(tenant(d)["recording_layout"], "mono", "refused changes wrote nothing");
}
