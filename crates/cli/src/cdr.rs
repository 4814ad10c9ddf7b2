//! `hark pbx cdr …`: call detail records (SPEC §3, §4).
//!
//! `--json` prints one JSON array (`[]` when there are none), newest call first; each row
//! is the store's `Cdr` as serde writes it: times as RFC 3339 UTC strings with
//! milliseconds (`answered_at` null when unanswered), `duration_s` in seconds to the
//! millisecond, `billsec` in whole seconds, and the call's `parties`.

use clap::{Args, Subcommand};
use hark_pbx::store::{Cdr, CdrFilter, format_rfc3339_ms};

use super::{CliResult, DataArg, open_existing};

#[derive(Subcommand)]
pub enum CdrCommand {
    /// List call detail records, newest first.
    List(CdrListArgs),
}

#[derive(Args)]
pub struct CdrListArgs {
    #[command(flatten)]
    data: DataArg,
    /// Only this tenant's calls.
    #[arg(long)]
    tenant: Option<String>,
    /// At most N records (the newest).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: CdrCommand) -> CliResult {
    match cmd {
        CdrCommand::List(a) => list(a),
    }
}

fn list(a: CdrListArgs) -> CliResult {
    let store = open_existing(&a.data.data)?;
    let tenant = match &a.tenant {
        Some(name) => Some(store.tenant_by_name(name)?.ok_or_else(|| format!("no tenant named {name}"))?.id),
        None => None,
    };
    let cdrs = store.list_cdrs(CdrFilter { tenant, limit: a.limit, ..Default::default() })?;
    if a.json {
        println!("{}", render_json(&cdrs)?);
    } else {
        print!("{}", render_table(&cdrs));
    }
    Ok(())
}

fn render_json(cdrs: &[Cdr]) -> Result<String, serde_json::Error> {
    serde_json::to_string(cdrs)
}

fn render_table(cdrs: &[Cdr]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:<20} {:<12} {:<16} {:<16} {:<9} {:<11} {:>9} {:>7}  HANGUP",
        "ID", "STARTED (UTC)", "TENANT", "CALLER", "CALLEE", "DIRECTION", "DISPOSITION", "DURATION", "BILLSEC"
    );
    for c in cdrs {
        // Whole seconds are enough to find a call; --json has the milliseconds.
        let started = format_rfc3339_ms(c.started_at);
        let started = format!("{}Z", &started[..started.len() - 5]);
        let hangup = if c.hangup_cause.is_empty() {
            c.hangup_by.to_string()
        } else {
            format!("{} ({})", c.hangup_by, c.hangup_cause)
        };
        let _ = writeln!(
            out,
            "{:<6} {:<20} {:<12} {:<16} {:<16} {:<9} {:<11} {:>9.1} {:>7}  {hangup}",
            c.id,
            started,
            c.tenant,
            c.caller,
            c.callee,
            c.direction.as_str(),
            c.disposition.as_str(),
            c.duration_s,
            c.billsec,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hark_pbx::store::{Direction, Disposition, HangupBy, NewCdr, PartyKind, Store};

    const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20.000Z

    fn stored() -> Vec<Cdr> {
        let mut store = Store::open_in_memory().unwrap();
        let t = store.create_tenant("office", "office.example", true).unwrap();
        let call = |session: &str, started_at: i64, answered: bool| NewCdr {
            call_session_id: session.into(),
            tenant_id: t,
            caller: "101".into(),
            caller_kind: PartyKind::Internal,
            callee: "+4930123456".into(),
            callee_kind: PartyKind::External,
            direction: Direction::Outbound,
            started_at,
            answered_at: answered.then_some(started_at + 3_000),
            ended_at: started_at + 8_400,
            disposition: if answered { Disposition::Answered } else { Disposition::Busy },
            hangup_by: if answered { HangupBy::Caller } else { HangupBy::Callee },
            hangup_cause: if answered { "BYE".into() } else { "486 Busy Here".into() },
            sip_call_id_a: format!("a-{session}"),
            sip_call_id_b: Some(format!("b-{session}")),
            codec: answered.then(|| "PCMA".into()),
            recording: None,
            parties: Vec::new(),
        };
        store.insert_cdrs(&[call("s1", T0, true), call("s2", T0 + 60_000, false)]).unwrap();
        store.list_cdrs(CdrFilter::default()).unwrap()
    }

    #[test]
    fn json_is_one_array_with_the_spec_fields() {
        assert_eq!(render_json(&[]).unwrap(), "[]");
        let json: serde_json::Value = serde_json::from_str(&render_json(&stored()).unwrap()).unwrap();
        let rows = json.as_array().unwrap();
        assert_eq!(rows.len(), 2);
        let (busy, answered) = (&rows[0], &rows[1]);
        for key in [
            "id", "call_session_id", "tenant", "caller", "callee", "direction", "started_at",
            "answered_at", "ended_at", "duration_s", "billsec", "disposition", "hangup_by",
            "hangup_cause", "parties",
        ] {
            assert!(answered.get(key).is_some(), "no {key} in {answered}");
        }
        assert_eq!(answered["call_session_id"], "s1");
        assert_eq!(answered["tenant"], "office");
        assert_eq!(answered["direction"], "outbound");
        assert_eq!(answered["started_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(answered["answered_at"], "2023-11-14T22:13:23.000Z");
        assert_eq!(answered["ended_at"], "2023-11-14T22:13:28.400Z");
        assert_eq!(answered["duration_s"], 8.4);
        assert_eq!(answered["billsec"], 5);
        assert_eq!(answered["disposition"], "answered");
        assert_eq!(answered["hangup_by"], "caller");
        assert_eq!(answered["parties"][1]["party"], "+4930123456");
        assert_eq!(answered["parties"][1]["kind"], "external");
        assert_eq!(busy["disposition"], "busy");
        assert!(busy["answered_at"].is_null());
        assert_eq!(busy["billsec"], 0);
        assert_eq!(busy["hangup_cause"], "486 Busy Here");
    }

    #[test]
    fn table_has_a_header_and_one_line_per_call() {
        assert_eq!(render_table(&[]).lines().count(), 1);
        let table = render_table(&stored());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("ID") && lines[0].ends_with("HANGUP"), "{table}");
        assert!(lines[1].contains("2023-11-14T22:14:20Z") && lines[1].contains("busy"), "{table}");
        assert!(lines[1].ends_with("callee (486 Busy Here)"), "{table}");
        assert!(lines[2].contains("answered") && lines[2].contains("8.4"), "{table}");
        assert!(lines[2].ends_with("caller (BYE)"), "{table}");
    }
}
