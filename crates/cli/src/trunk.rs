//! `hark pbx trunk add|list|remove`: trunks to carriers (SPEC §4).

use super::{CliResult, DataArg, open_existing};
use clap::{Args, Subcommand};
use hark_pbx::store::{NewTrunk, Store, Tenant, Trunk};

#[derive(Subcommand)]
pub enum TrunkCommand {
    /// Add a trunk to a carrier: registration with --username/--password, or (without
    /// them) the carrier is recognised by its IP address, from any source port.
    Add(TrunkAddArgs),
    /// List the trunks with their inbound numbers and outbound patterns.
    List(TrunkListArgs),
    /// Remove a trunk with its inbound numbers and outbound patterns.
    Remove(TrunkRemoveArgs),
}

#[derive(Args)]
pub struct TrunkAddArgs {
    #[command(flatten)]
    data: DataArg,
    #[arg(long)]
    tenant: String,
    /// A name for the trunk, unique in the tenant.
    #[arg(long)]
    name: String,
    /// The carrier's SIP address (a host name or IP address, and the port).
    #[arg(long, value_name = "ADDR:PORT")]
    host: String,
    /// User name for registering to the carrier (digest authentication).
    #[arg(long, value_name = "U")]
    username: Option<String>,
    /// Password for registering to the carrier.
    #[arg(long, value_name = "P")]
    password: Option<String>,
    /// An inbound number and the extension its calls ring (repeatable).
    // Parsed by the command, not clap, so that a mistake is one line on stderr.
    #[arg(long = "did", value_name = "NUMBER=EXT")]
    dids: Vec<String>,
    /// Dialled numbers matching REGEX (the whole number) leave through this trunk
    /// (repeatable, tried in order). With a capture group (named `number`, else the first)
    /// only what it matched is sent: `9(\d+)` drops a leading 9.
    #[arg(long = "outbound", value_name = "REGEX")]
    outbound: Vec<String>,
    /// The extension that gets inbound calls to numbers without a --did.
    #[arg(long, value_name = "EXT")]
    default_ext: Option<String>,
    /// The number presented as the caller on outbound calls.
    #[arg(long, value_name = "NUMBER")]
    caller_id: Option<String>,
}

#[derive(Args)]
pub struct TrunkListArgs {
    #[command(flatten)]
    data: DataArg,
    /// Only this tenant's trunks.
    #[arg(long)]
    tenant: Option<String>,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TrunkRemoveArgs {
    #[command(flatten)]
    data: DataArg,
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    name: String,
}

fn parse_did(s: &str) -> Result<(String, String), String> {
    let (number, ext) =
        s.split_once('=').ok_or_else(|| format!("invalid --did {s:?}: expected NUMBER=EXT, e.g. +4930123456=101"))?;
    let (number, ext) = (number.trim(), ext.trim());
    hark_pbx::store::validate_number("DID", number).map_err(|e| e.to_string())?;
    hark_pbx::store::validate_extension(ext).map_err(|e| e.to_string())?;
    Ok((number.to_owned(), ext.to_owned()))
}

pub fn run(cmd: TrunkCommand) -> CliResult {
    match cmd {
        TrunkCommand::Add(a) => add(a),
        TrunkCommand::List(a) => list(a),
        TrunkCommand::Remove(a) => remove(a),
    }
}

fn tenant(store: &Store, name: &str) -> Result<Tenant, Box<dyn std::error::Error>> {
    Ok(store.tenant_by_name(name)?.ok_or_else(|| format!("no tenant named {name}"))?)
}

fn add(a: TrunkAddArgs) -> CliResult {
    let mut store = open_existing(&a.data.data)?;
    let tenant = tenant(&store, &a.tenant)?;
    let dids = a.dids.iter().map(|d| parse_did(d)).collect::<Result<Vec<_>, _>>()?;
    let registers = a.username.is_some();
    let new = NewTrunk {
        username: a.username,
        password: a.password,
        dids,
        outbound: a.outbound,
        default_extension: a.default_ext,
        caller_id: a.caller_id,
        ..NewTrunk::new(tenant.id, a.name.clone(), a.host.clone())
    };
    store.add_trunk(new)?;
    let auth = if registers { "registers with a username and password" } else { "authenticated by IP address" };
    println!("Added trunk {} to {} (tenant {}, {auth}).", a.name, a.host, tenant.name);
    Ok(())
}

fn remove(a: TrunkRemoveArgs) -> CliResult {
    let store = open_existing(&a.data.data)?;
    let tenant = tenant(&store, &a.tenant)?;
    store.remove_trunk(tenant.id, &a.name)?;
    println!("Removed trunk {} (tenant {}).", a.name, tenant.name);
    Ok(())
}

fn list(a: TrunkListArgs) -> CliResult {
    let store = open_existing(&a.data.data)?;
    let tenants = store.list_tenants()?;
    let trunks: Vec<Trunk> = match &a.tenant {
        Some(name) => store.list_trunks(tenant(&store, name)?.id)?,
        None => store.list_all_trunks()?,
    };
    let tenant_name = |t: &Trunk| {
        tenants.iter().find(|x| x.id == t.tenant_id).map(|x| x.name.clone()).unwrap_or_default()
    };
    if a.json {
        let rows: Vec<_> = trunks
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id,
                    "tenant": tenant_name(t),
                    "name": t.name,
                    "host": t.host,
                    "auth": if t.registers() { "register" } else { "ip" },
                    "username": t.username,
                    "dids": t.dids,
                    "default_extension": t.default_extension,
                    "outbound": t.outbound,
                    "caller_id": t.caller_id,
                    "created_at": hark_pbx::store::format_rfc3339_ms(t.created_at.saturating_mul(1000)),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!("{:<12} {:<16} {:<22} {:<18} {:<28} {:<14} OUTBOUND", "TENANT", "TRUNK", "HOST", "AUTH", "DIDS", "CALLER ID");
    for t in &trunks {
        let auth = match &t.username {
            Some(u) if t.registers() => format!("register {u}"),
            _ => "ip".to_owned(),
        };
        let mut dids: Vec<String> = t.dids.iter().map(|d| format!("{}={}", d.number, d.extension)).collect();
        if let Some(ext) = &t.default_extension {
            dids.push(format!("*={ext}"));
        }
        println!(
            "{:<12} {:<16} {:<22} {:<18} {:<28} {:<14} {}",
            tenant_name(t),
            t.name,
            t.host,
            auth,
            if dids.is_empty() { "-".to_owned() } else { dids.join(",") },
            t.caller_id.as_deref().unwrap_or("-"),
            if t.outbound.is_empty() { "-".to_owned() } else { t.outbound.join(" ") },
        );
    }
    Ok(())
}
