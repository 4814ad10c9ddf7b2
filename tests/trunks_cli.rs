//! `hark pbx trunk add|list|remove` and `hark pbx user set --forward-*` (SPEC §4): what
//! they store, what `list` shows, and their errors (one line on stderr, non-zero exit,
//! nothing changed).


use hark_e2e::{hark, hark_ok as ok};
use hark_e2e::process::TempDir;

/// Runs a command that must fail; returns its one stderr line.
fn fails(args: &[&str]) -> String {
    let (ok, out, err) = hark(args);
    assert!(!ok, "`hark {}` succeeded:\n{out}", args.join(" "));
    assert_eq!(err.trim().lines().count(), 1, "one line on stderr for `hark {}`:\n{err}", args.join(" "));
    assert!(err.starts_with("error: "), "{err}");
    err.trim().to_string()
}

/// A PBX data dir with tenant office and extensions 101, 102.
fn pbx(tmp: &TempDir) -> String {
    let data = tmp.join("pbx");
    let d = data.to_str().unwrap().to_string();
    ok(&["pbx", "init", "--data", &d, "--domain", "pbx.test", "--tenant", "office"]);
    for ext in ["101", "102"] {
        ok(&["pbx", "user", "add", "--data", &d, "--tenant", "office", "--ext", ext, "--password", "pw"]);
    }
    d
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn trunks_json(d: &str) -> Vec<serde_json::Value> {
    let out = ok(&["pbx", "trunk", "list", "--data", d, "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).expect("JSON").as_array().expect("an array").clone()
}

fn users_json(d: &str) -> Vec<serde_json::Value> {
    let out = ok(&["pbx", "user", "list", "--data", d, "--tenant", "office", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).expect("JSON").as_array().expect("an array").clone()
}

#[test]
fn trunk_add_list_remove() {
    let tmp = TempDir::new("trunks");
    let d = pbx(&tmp);
    assert_eq!(trunks_json(&d), Vec::<serde_json::Value>::new());

    // The invocation of SPEC §4, with the optional extras.
    let out = ok(&[
        "pbx", "trunk", "add", "--data", &d, "--tenant", "office", "--name", "carrier",
        "--host", "127.0.0.2:5070", "--username", "trunkuser", "--password", "trunk-s3cret",
        "--did", "+4930123456=101", "--did", "4930123457=102", "--outbound", r"9(\d+)",
        "--outbound", r"\+\d{6,15}", "--default-ext", "101", "--caller-id", "+4930123450",
    ]);
    assert!(out.contains("Added trunk carrier"), "{out}");
    // IP-authenticated: no credentials.
    ok(&["pbx", "trunk", "add", "--data", &d, "--tenant", "office", "--name", "peer", "--host", "127.0.0.3:5060", "--outbound", r"0\d+"]);

    let trunks = trunks_json(&d);
    assert_eq!(trunks.len(), 2, "{trunks:#?}");
    let c = &trunks[0];
    assert_eq!(c["name"], "carrier");
    assert_eq!(c["tenant"], "office");
    assert_eq!(c["host"], "127.0.0.2:5070");
    assert_eq!(c["auth"], "register");
    assert_eq!(c["username"], "trunkuser");
    assert_eq!(
        c["dids"],
        serde_json::json!([{"number": "+4930123456", "extension": "101"}, {"number": "4930123457", "extension": "102"}])
    );
    assert_eq!(c["outbound"], serde_json::json!([r"9(\d+)", r"\+\d{6,15}"]));
    assert_eq!(c["default_extension"], "101");
    assert_eq!(c["caller_id"], "+4930123450");
    assert_eq!(trunks[1]["auth"], "ip");
    assert_eq!(trunks[1]["username"], serde_json::Value::Null);
    let everything = ok(&["pbx", "trunk", "list", "--data", &d, "--json"]) + &ok(&["pbx", "trunk", "list", "--data", &d]);
    assert!(!everything.contains("trunk-s3cret"), "the password is never shown:\n{everything}");

    let table = ok(&["pbx", "trunk", "list", "--data", &d]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("TENANT") && lines[0].contains("OUTBOUND"), "{table}");
    assert!(lines[1].contains("carrier") && lines[1].contains("register trunkuser") && lines[1].contains("+4930123456=101"), "{table}");
    assert!(lines[2].contains("peer") && lines[2].contains(" ip "), "{table}");
    let only_office = ok(&["pbx", "trunk", "list", "--data", &d, "--tenant", "OFFICE", "--json"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&only_office).unwrap().as_array().unwrap().len(), 2);

    let out = ok(&["pbx", "trunk", "remove", "--data", &d, "--tenant", "office", "--name", "carrier"]);
    assert!(out.contains("Removed trunk carrier"), "{out}");
    let trunks = trunks_json(&d);
    assert_eq!(trunks.len(), 1);
    assert_eq!(trunks[0]["name"], "peer");
    // The name is free again.
    ok(&["pbx", "trunk", "add", "--data", &d, "--tenant", "office", "--name", "carrier", "--host", "carrier.example:5060"]);
}

#[test]
fn trunk_errors_change_nothing() {
    let tmp = TempDir::new("trunks");
    let d = pbx(&tmp);
    ok(&["pbx", "trunk", "add", "--data", &d, "--tenant", "office", "--name", "carrier", "--host", "127.0.0.2:5070"]);
    let before = trunks_json(&d);
    let add = |extra: &[&str]| {
        let mut args = vec!["pbx", "trunk", "add", "--data", &d, "--tenant", "office"];
        args.extend_from_slice(extra);
        fails(&args)
    };
    assert_eq!(
        add(&["--name", "carrier", "--host", "127.0.0.9:5060"]),
        "error: trunk carrier already exists in tenant office"
    );
    let e = add(&["--name", "b", "--host", "127.0.0.9:5060", "--outbound", r"9(\d+"]);
    assert!(e.starts_with(r#"error: invalid outbound pattern "9(\\d+""#), "{e}");
    let e = add(&["--name", "b", "--host", "127.0.0.9:5060", "--did", "4930=999"]);
    assert!(e.contains("extension 999") && e.contains("tenant office"), "{e}");
    let e = add(&["--name", "b", "--host", "127.0.0.9:5060", "--default-ext", "999"]);
    assert!(e.contains("default extension 999"), "{e}");
    let e = add(&["--name", "b", "--host", "127.0.0.9:5060", "--username", "u"]);
    assert!(e.contains("--username and --password"), "{e}");
    let e = add(&["--name", "b", "--host", "127.0.0.9:5060", "--did", "4930"]);
    assert!(e.contains("NUMBER=EXT"), "{e}");
    let e = add(&["--name", "b", "--host", "127.0.0.9:5060", "--did", "49x0=101"]);
    assert!(e.contains("invalid DID"), "{e}");
    let e = add(&["--name", "b", "--host", "127.0.0.9:99999"]);
    assert!(e.contains("invalid trunk host"), "{e}");
    let e = add(&["--name", "b", "--host", "127.0.0.9:5060", "--caller-id", "office"]);
    assert!(e.contains("invalid caller id"), "{e}");
    // A good DID next to a bad one: nothing of the trunk is written.
    let e = add(&["--name", "b", "--host", "127.0.0.9:5060", "--did", "4930=101", "--did", "4931=999"]);
    assert!(e.contains("extension 999"), "{e}");
    assert_eq!(
        fails(&["pbx", "trunk", "add", "--data", &d, "--tenant", "nosuch", "--name", "b", "--host", "127.0.0.9:5060"]),
        "error: no tenant named nosuch"
    );
    assert_eq!(
        fails(&["pbx", "trunk", "remove", "--data", &d, "--tenant", "office", "--name", "nosuch"]),
        "error: no trunk named nosuch in tenant office"
    );
    assert_eq!(trunks_json(&d), before, "nothing changed");

    let missing = tmp.join("missing");
    let e = fails(&["pbx", "trunk", "list", "--data", missing.to_str().unwrap()]);
    assert!(e.contains("hark pbx init"), "{e}");
}

#[test]
fn user_forwarding_set_list_and_errors() {
    let tmp = TempDir::new("forwarding");
    let d = pbx(&tmp);
    let set = |extra: &[&str]| {
        let mut args = vec!["pbx", "user", "set", "--data", &d, "--tenant", "office", "--ext", "101"];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };

    let u = &users_json(&d)[0];
    assert_eq!(
        (&u["forward_always"], &u["forward_busy"], &u["forward_no_answer"], &u["no_answer_secs"]),
        (&serde_json::Value::Null, &serde_json::Value::Null, &serde_json::Value::Null, &serde_json::json!(20))
    );

    // The invocation of SPEC §4.
    let args = set(&["--forward-busy", "102", "--forward-no-answer", "+4917012345678", "--no-answer-secs", "15"]);
    ok(&refs(&args));
    let u = &users_json(&d)[0];
    assert_eq!(u["extension"], "101");
    assert_eq!(u["forward_busy"], "102");
    assert_eq!(u["forward_no_answer"], "+4917012345678");
    assert_eq!(u["no_answer_secs"], 15);
    assert_eq!(u["forward_always"], serde_json::Value::Null);

    let table = ok(&["pbx", "user", "list", "--data", &d, "--tenant", "office"]);
    let row = table.lines().find(|l| l.starts_with("101 ")).expect("a row for 101");
    assert!(row.contains("busy>102") && row.contains("no-answer(15s)>+4917012345678"), "{table}");
    assert!(table.lines().next().unwrap().contains("FORWARD"), "{table}");

    // Forward-always together with a recording switch, then off again.
    let args = set(&["--forward-always", "0301234567", "--record-audio", "off"]);
    ok(&refs(&args));
    let u = &users_json(&d)[0];
    assert_eq!((&u["forward_always"], &u["record_audio_calls"]), (&serde_json::json!("0301234567"), &serde_json::json!(false)));
    let args = set(&["--forward-always", "off", "--forward-busy", "off"]);
    ok(&refs(&args));
    let u = &users_json(&d)[0];
    assert_eq!((&u["forward_always"], &u["forward_busy"]), (&serde_json::Value::Null, &serde_json::Value::Null));
    assert_eq!(u["forward_no_answer"], "+4917012345678", "untouched");

    let before = users_json(&d);
    for (extra, expect) in [
        (vec!["--forward-always", "101"], "cannot forward to itself"),
        (vec!["--forward-busy", "10 2"], "invalid forwarding target"),
        (vec!["--forward-no-answer", "+49x"], "invalid forwarding number"),
        (vec!["--no-answer-secs", "4"], "--no-answer-secs"),
        (vec!["--no-answer-secs", "301"], "--no-answer-secs"),
        (vec!["--no-answer-secs", "soon"], "--no-answer-secs"),
        // A valid change next to an invalid one: neither is written.
        (vec!["--record-video", "off", "--forward-always", "101"], "cannot forward to itself"),
    ] {
        let args = set(&extra);
        let e = fails(&refs(&args));
        assert!(e.contains(expect), "{extra:?}: {e}");
    }
    let e = fails(&["pbx", "user", "set", "--data", &d, "--tenant", "office", "--ext", "999", "--forward-busy", "102"]);
    assert_eq!(e, "error: extension 999 not found in tenant office");
    let e = fails(&["pbx", "user", "set", "--data", &d, "--tenant", "office", "--ext", "101"]);
    assert!(e.contains("nothing to change"), "{e}");
    assert_eq!(users_json(&d), before, "nothing changed");
}
