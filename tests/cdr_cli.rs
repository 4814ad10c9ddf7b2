//! `hark pbx cdr list` on a PBX that has carried no calls yet: `--json` prints one empty
//! JSON array, the table only its header, filters are checked. Calls that fill the CDR
//! table are exercised by the call tests.


use hark_e2e::{hark, hark_ok as ok};
use hark_e2e::process::TempDir;

#[test]
fn cdr_list_of_a_new_pbx_is_empty() {
    let tmp = TempDir::new("cdr");
    let data = tmp.join("pbx");
    let d = data.to_str().unwrap();

    // Before init: one clear line pointing at `hark pbx init`.
    let (success, _, err) = hark(&["pbx", "cdr", "list", "--data", d, "--json"]);
    assert!(!success, "listing a missing PBX succeeded");
    assert!(err.lines().count() == 1 && err.contains("hark pbx init"), "{err}");

    ok(&["pbx", "init", "--data", d, "--domain", "pbx.test", "--tenant", "office"]);

    let out = ok(&["pbx", "cdr", "list", "--data", d, "--json"]);
    assert_eq!(out.trim(), "[]", "expected one empty JSON array");
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(parsed, serde_json::json!([]));

    let out =
        ok(&["pbx", "cdr", "list", "--data", d, "--json", "--tenant", "OFFICE", "--limit", "5"]);
    assert_eq!(out.trim(), "[]");

    let table = ok(&["pbx", "cdr", "list", "--data", d]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 1, "only the header:\n{table}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("DISPOSITION"), "{table}");

    let (success, out, err) =
        hark(&["pbx", "cdr", "list", "--data", d, "--json", "--tenant", "nosuch"]);
    assert!(!success, "an unknown tenant was accepted:\n{out}");
    assert_eq!(err.trim(), "error: no tenant named nosuch");
    assert!(out.is_empty(), "nothing on stdout when failing: {out}");
}
