//! `hark pbx …`: the command-line contract of SPEC.md §4.

use clap::{Args, Subcommand, ValueEnum};
use hark_pbx::store::{MAX_RETENTION_DAYS, NewUser, RecordingLayout, Role, Store};
use hark_sip::auth::Algorithm;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

// A child of this module (file beside it) so it shares DataArg and open_existing().
#[path = "cdr.rs"]
pub mod cdr;
#[path = "recordings.rs"]
pub mod recordings;
#[path = "trunk.rs"]
pub mod trunk;

#[derive(Subcommand)]
pub enum PbxCommand {
    /// Create a new PBX data directory: database, default tenant and admin account.
    Init(InitArgs),
    /// Run the PBX: SIP registrar on UDP and TCP, HTTP health and metrics.
    Serve(ServeArgs),
    /// Add or change extensions.
    #[command(subcommand)]
    User(UserCommand),
    /// Add tenants or change a tenant's recording switches.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Change system-wide settings.
    #[command(subcommand)]
    System(SystemCommand),
    /// Call detail records.
    #[command(subcommand)]
    Cdr(cdr::CdrCommand),
    /// Call recordings.
    #[command(subcommand)]
    Recordings(recordings::RecordingsCommand),
    /// Trunks to carriers: registration or IP authentication, inbound numbers, outbound
    /// routes.
    #[command(subcommand)]
    Trunk(trunk::TrunkCommand),
}

#[derive(Args)]
pub struct DataArg {
    /// The PBX data directory (database, recordings, config).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
}

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    data: DataArg,
    /// SIP domain of the default tenant; phones register as EXT@DOMAIN. Requests to the
    /// server's IP address also reach this tenant.
    #[arg(long)]
    domain: String,
    /// Name of the default tenant.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Password of the system administrator account `admin` (web console, admin API).
    /// When omitted, a random one is generated and printed once.
    #[arg(long, value_name = "PW")]
    admin_password: Option<String>,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataArg,
    /// Address for SIP over UDP and TCP (port 0 picks a free port, printed at start).
    #[arg(long, default_value = "0.0.0.0:5060", value_name = "ADDR:PORT")]
    sip: SocketAddr,
    /// Address for HTTP: /healthz, /metrics (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    http: SocketAddr,
    /// UDP port range for relayed media.
    #[arg(long, default_value = "20000-29999", value_name = "LO-HI", value_parser = parse_port_range)]
    rtp_ports: (u16, u16),
    /// Log every SIP message sent and received.
    #[arg(long)]
    sip_trace: bool,
    /// Shortest registration interval accepted; shorter requests get 423 Interval Too Brief.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    min_expires: u32,
    /// Longest registration interval granted.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    max_expires: u32,
    /// Failed authentications from one address (within a minute) before it is banned.
    #[arg(long, default_value_t = 10, value_name = "N")]
    auth_ban_after: u32,
    /// How long a banned address gets 403 to everything.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    auth_ban_secs: u64,
    /// Digest algorithms challenged with, in order of preference: MD5, SHA-256 or both
    /// (e.g. `SHA-256,MD5`). MD5 alone by default: deployed clients (baresip 1.0, sipp,
    /// many desk phones) fail outright when any challenge is SHA-256, or read only the
    /// first. `SHA-256` alone refuses MD5 clients.
    #[arg(long, default_value = "MD5", value_name = "LIST", value_parser = parse_algorithms)]
    digest_algorithms: AlgorithmList,
    /// How long a callee's phones ring before the caller gets 480 (no answer).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    ring_timeout: u64,
    /// A call with no RTP from either side for this long is hung up (hold excepted).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    rtp_timeout: u64,
    /// The address put in SDP and Contact, when --sip binds 0.0.0.0 (default: the
    /// address of the interface with the default route).
    #[arg(long, value_name = "IP")]
    advertise: Option<std::net::IpAddr>,
}

#[derive(Clone, Debug)]
pub struct AlgorithmList(Vec<Algorithm>);

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add an extension to a tenant.
    Add(UserAddArgs),
    /// Change an extension's recording switches and call forwarding.
    Set(UserSetArgs),
    /// List a tenant's extensions.
    List(UserListArgs),
    /// Add many extensions at once from a CSV file of `extension,password[,name]` lines.
    Import(UserImportArgs),
}

#[derive(Args)]
pub struct UserImportArgs {
    #[command(flatten)]
    data: DataArg,
    #[arg(long)]
    tenant: String,
    /// CSV file: one `extension,password[,display name]` per line; `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    csv: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl From<OnOff> for bool {
    fn from(v: OnOff) -> bool {
        matches!(v, OnOff::On)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    User,
    TenantAdmin,
}

#[derive(Args)]
pub struct UserAddArgs {
    #[command(flatten)]
    data: DataArg,
    /// Tenant name (see `hark pbx init --tenant`).
    #[arg(long)]
    tenant: String,
    /// Extension number, also the SIP user name.
    #[arg(long)]
    ext: String,
    /// SIP password (stored only as digest hashes).
    #[arg(long)]
    password: String,
    /// Record this user's audio calls (when the tenant's audio recording is on).
    #[arg(long, default_value = "on")]
    record_audio: OnOff,
    /// Record this user's video calls (when the tenant's video recording is on).
    #[arg(long, default_value = "on")]
    record_video: OnOff,
    #[arg(long, default_value = "user")]
    role: RoleArg,
    /// Name shown to other users.
    #[arg(long)]
    name: Option<String>,
}

#[derive(Args)]
pub struct UserSetArgs {
    #[command(flatten)]
    data: DataArg,
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    ext: String,
    #[arg(long)]
    record_audio: Option<OnOff>,
    #[arg(long)]
    record_video: Option<OnOff>,
    // The forwarding options are parsed by the command, not clap, so that a mistake is
    // one line on stderr.
    /// Forward every call to an extension or an external number; `off` stops it.
    #[arg(long, value_name = "NUMBER|off")]
    forward_always: Option<String>,
    /// Forward calls when the user's phones are busy; `off` stops it.
    #[arg(long, value_name = "NUMBER|off")]
    forward_busy: Option<String>,
    /// Forward calls nobody answers within --no-answer-secs; `off` stops it.
    #[arg(long, value_name = "NUMBER|off")]
    forward_no_answer: Option<String>,
    /// How long the user's phones ring before --forward-no-answer takes the call (5-300).
    #[arg(long, value_name = "N")]
    no_answer_secs: Option<String>,
}

/// `--forward-*`: a target, or `off` (`None`).
fn parse_forward(option: &str, s: &str) -> Result<Option<String>, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    hark_pbx::store::validate_forward_target(s).map_err(|e| format!("--{option}: {e}"))?;
    Ok(Some(s.to_owned()))
}

fn parse_no_answer_secs(s: &str) -> Result<u32, String> {
    let range = hark_pbx::store::NO_ANSWER_SECS_RANGE;
    match s.parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!("invalid --no-answer-secs {s:?}: use a number of seconds from {} to {}", range.start(), range.end())),
    }
}

#[derive(Args)]
pub struct UserListArgs {
    #[command(flatten)]
    data: DataArg,
    #[arg(long)]
    tenant: String,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Add a tenant served under its own SIP domain.
    Add(TenantAddArgs),
    /// Change a tenant's recording switches and options.
    Set(TenantSetArgs),
    /// List the tenants with their recording settings.
    List(TenantListArgs),
}

#[derive(Args)]
pub struct TenantAddArgs {
    #[command(flatten)]
    data: DataArg,
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    domain: String,
}

#[derive(Args)]
pub struct TenantSetArgs {
    #[command(flatten)]
    data: DataArg,
    #[arg(long)]
    tenant: String,
    /// "Enable extension audio recording" for every user of the tenant.
    #[arg(long)]
    audio_recording: Option<OnOff>,
    /// "Enable extension video recording" for every user of the tenant.
    #[arg(long)]
    video_recording: Option<OnOff>,
    /// Channels of new recordings: stereo (caller left, callee right) or mono (mixed).
    #[arg(long, value_name = "stereo|mono", value_parser = parse_layout)]
    recording_layout: Option<RecordingLayout>,
    /// Delete recordings older than N days; `off` keeps them forever.
    #[arg(long, value_name = "N|off", value_parser = parse_retention)]
    retention_days: Option<Retention>,
    /// A beep to the parties when a recording starts.
    #[arg(long)]
    start_beep: Option<OnOff>,
    /// A tone confirming pause and resume to the party who asked.
    #[arg(long)]
    pause_tone: Option<OnOff>,
}

/// `--retention-days`: a number of days, or `off` (`None`: keep forever).
#[derive(Clone, Copy, Debug)]
pub struct Retention(Option<u32>);

fn parse_retention(s: &str) -> Result<Retention, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Retention(None));
    }
    match s.parse::<u32>() {
        Ok(days) if (1..=MAX_RETENTION_DAYS).contains(&days) => Ok(Retention(Some(days))),
        _ => Err(format!("use a number of days from 1 to {MAX_RETENTION_DAYS}, or off")),
    }
}

fn parse_layout(s: &str) -> Result<RecordingLayout, String> {
    s.parse().map_err(|e: hark_pbx::store::StoreError| e.to_string())
}

#[derive(Args)]
pub struct TenantListArgs {
    #[command(flatten)]
    data: DataArg,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Change system settings.
    Set(SystemSetArgs),
}

#[derive(Args)]
pub struct SystemSetArgs {
    #[command(flatten)]
    data: DataArg,
    /// Keep recording a call when only external parties remain (after a transfer or forward).
    #[arg(long)]
    record_between_external_numbers: OnOff,
}

fn parse_algorithms(s: &str) -> Result<AlgorithmList, String> {
    let algs: Vec<Algorithm> = s
        .split(',')
        .map(|a| a.trim().parse::<Algorithm>().map_err(|_| format!("unknown digest algorithm {a:?}: use MD5 and/or SHA-256")))
        .collect::<Result<_, _>>()?;
    if algs.is_empty() {
        return Err("give at least one algorithm".into());
    }
    Ok(AlgorithmList(algs))
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s.split_once('-').ok_or("expected LO-HI, e.g. 20000-29999")?;
    let lo: u16 = lo.trim().parse().map_err(|_| format!("bad port {lo}"))?;
    let hi: u16 = hi.trim().parse().map_err(|_| format!("bad port {hi}"))?;
    if lo == 0 || lo > hi || (hi - lo) < 1 {
        return Err(format!("{s}: the range needs LO >= 1 and at least two ports"));
    }
    Ok((lo, hi))
}

pub type CliResult = Result<(), Box<dyn std::error::Error>>;

pub fn run(cmd: PbxCommand) -> CliResult {
    match cmd {
        PbxCommand::Init(a) => init(a),
        PbxCommand::Serve(a) => serve(a),
        PbxCommand::User(UserCommand::Add(a)) => user_add(a),
        PbxCommand::User(UserCommand::Set(a)) => user_set(a),
        PbxCommand::User(UserCommand::List(a)) => user_list(a),
        PbxCommand::User(UserCommand::Import(a)) => user_import(a),
        PbxCommand::Tenant(TenantCommand::Add(a)) => tenant_add(a),
        PbxCommand::Tenant(TenantCommand::Set(a)) => tenant_set(a),
        PbxCommand::Tenant(TenantCommand::List(a)) => tenant_list(a),
        PbxCommand::Cdr(cmd) => cdr::run(cmd),
        PbxCommand::Recordings(cmd) => recordings::run(cmd),
        PbxCommand::Trunk(cmd) => trunk::run(cmd),
        PbxCommand::System(SystemCommand::Set(a)) => {
            let store = open_existing(&a.data.data)?;
            store.set_record_between_external_numbers(a.record_between_external_numbers.into())?;
            Ok(())
        }
    }
}

fn open_existing(dir: &Path) -> Result<Store, Box<dyn std::error::Error>> {
    let db = hark_pbx::serve::database_path(dir);
    if !db.exists() {
        return Err(format!("no PBX data in {}: run `hark pbx init --data {} --domain DOMAIN` first", dir.display(), dir.display()).into());
    }
    Ok(Store::open(&db)?)
}

fn init(a: InitArgs) -> CliResult {
    let dir = &a.data.data;
    let db = hark_pbx::serve::database_path(dir);
    if db.exists() {
        return Err(format!("{} already holds a PBX; use `hark pbx tenant/user/system` to change it", dir.display()).into());
    }
    let domain = hark_pbx::store::normalize_domain(&a.domain)?;
    hark_pbx::store::validate_tenant_name(&a.tenant)?;
    let created_dir = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Build the database under a temporary name and rename it into place, so a failure
    // leaves nothing half-written behind.
    let tmp = dir.join(".hark.db.init");
    let _ = std::fs::remove_file(&tmp);
    let result = (|| -> Result<Option<String>, Box<dyn std::error::Error>> {
        let mut store = Store::open(&tmp)?;
        let tenant = store.create_tenant(&a.tenant, &domain, true)?;
        let (password, generated) = match &a.admin_password {
            Some(p) => (p.clone(), None),
            None => {
                let p = random_password();
                (p.clone(), Some(p))
            }
        };
        store.add_user(NewUser {
            display_name: "Administrator".into(),
            role: Role::SystemAdmin,
            ..NewUser::with_password(tenant, "admin", &domain, &password)
        })?;
        // Closing the last connection folds the WAL into the file we are about to rename.
        drop(store);
        Ok(generated)
    })();
    match result {
        Ok(generated) => {
            std::fs::rename(&tmp, &db).map_err(|e| format!("cannot create {}: {e}", db.display()))?;
            cleanup_sidecars(&tmp);
            std::fs::create_dir_all(dir.join("recordings"))?;
            println!("Initialised PBX in {} for domain {domain} (tenant {}).", dir.display(), a.tenant);
            if let Some(p) = generated {
                println!("Administrator login: admin / {p}  (shown once; keep it)");
            }
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            cleanup_sidecars(&tmp);
            if created_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            Err(e)
        }
    }
}

fn cleanup_sidecars(db: &Path) {
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn user_add(a: UserAddArgs) -> CliResult {
    let store = open_existing(&a.data.data)?;
    let tenant = store
        .tenant_by_name(&a.tenant)?
        .ok_or_else(|| format!("no tenant named {}", a.tenant))?;
    hark_pbx::store::validate_extension(&a.ext)?;
    if a.password.is_empty() {
        return Err("the password must not be empty".into());
    }
    store.add_user(NewUser {
        display_name: a.name.unwrap_or_else(|| a.ext.clone()),
        role: match a.role {
            RoleArg::User => Role::User,
            RoleArg::TenantAdmin => Role::TenantAdmin,
        },
        record_audio: a.record_audio.into(),
        record_video: a.record_video.into(),
        ..NewUser::with_password(tenant.id, &a.ext, &tenant.domain, &a.password)
    })?;
    println!("Added extension {}@{} (tenant {}).", a.ext, tenant.domain, tenant.name);
    Ok(())
}

fn user_import(a: UserImportArgs) -> CliResult {
    let mut store = open_existing(&a.data.data)?;
    let tenant = store
        .tenant_by_name(&a.tenant)?
        .ok_or_else(|| format!("no tenant named {}", a.tenant))?;
    let text = std::fs::read_to_string(&a.csv).map_err(|e| format!("cannot read {}: {e}", a.csv.display()))?;
    // Validate every line before writing any, so a bad file changes nothing.
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, ',').map(str::trim);
        let (Some(ext), Some(password)) = (fields.next(), fields.next()) else {
            return Err(format!("{}:{}: expected extension,password[,name]", a.csv.display(), n + 1).into());
        };
        hark_pbx::store::validate_extension(ext).map_err(|e| format!("{}:{}: {e}", a.csv.display(), n + 1))?;
        if password.is_empty() {
            return Err(format!("{}:{}: empty password", a.csv.display(), n + 1).into());
        }
        let name = fields.next().filter(|s| !s.is_empty()).unwrap_or(ext);
        users.push(NewUser {
            display_name: name.to_owned(),
            ..NewUser::with_password(tenant.id, ext, &tenant.domain, password)
        });
    }
    let count = store.add_users(&users)?;
    println!("Imported {count} extensions into tenant {}.", tenant.name);
    Ok(())
}

fn user_set(a: UserSetArgs) -> CliResult {
    let mut store = open_existing(&a.data.data)?;
    let tenant = store
        .tenant_by_name(&a.tenant)?
        .ok_or_else(|| format!("no tenant named {}", a.tenant))?;
    let forwarding = hark_pbx::store::ForwardingUpdate {
        always: a.forward_always.as_deref().map(|s| parse_forward("forward-always", s)).transpose()?,
        busy: a.forward_busy.as_deref().map(|s| parse_forward("forward-busy", s)).transpose()?,
        no_answer: a.forward_no_answer.as_deref().map(|s| parse_forward("forward-no-answer", s)).transpose()?,
        no_answer_secs: a.no_answer_secs.as_deref().map(parse_no_answer_secs).transpose()?,
    };
    let recording = a.record_audio.is_some() || a.record_video.is_some();
    if !recording && forwarding.is_empty() {
        return Err("nothing to change: give --record-audio, --record-video, --forward-always, --forward-busy, --forward-no-answer and/or --no-answer-secs".into());
    }
    // One transaction: every change, or none when one is refused.
    store.atomically(|store| {
        if recording {
            store.update_user_recording(tenant.id, &a.ext, a.record_audio.map(Into::into), a.record_video.map(Into::into))?;
        }
        if !forwarding.is_empty() {
            store.set_user_forwarding(tenant.id, &a.ext, &forwarding)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The forwarding column of `user list`: "-" when none.
fn forwarding_summary(f: &hark_pbx::store::Forwarding) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &f.always {
        parts.push(format!("always>{t}"));
    }
    if let Some(t) = &f.busy {
        parts.push(format!("busy>{t}"));
    }
    if let Some(t) = &f.no_answer {
        parts.push(format!("no-answer({}s)>{t}", f.no_answer_secs));
    }
    if parts.is_empty() { "-".to_owned() } else { parts.join(",") }
}

fn user_list(a: UserListArgs) -> CliResult {
    let store = open_existing(&a.data.data)?;
    let tenant = store
        .tenant_by_name(&a.tenant)?
        .ok_or_else(|| format!("no tenant named {}", a.tenant))?;
    let users = store.list_users(tenant.id)?;
    let forwarding: std::collections::HashMap<String, hark_pbx::store::Forwarding> =
        store.list_forwarding(tenant.id)?.into_iter().collect();
    let forwarding_of = |ext: &str| forwarding.get(ext).cloned().unwrap_or_default();
    if a.json {
        let rows: Vec<_> = users
            .iter()
            .map(|u| {
                let f = forwarding_of(&u.extension);
                serde_json::json!({
                    "extension": u.extension,
                    "display_name": u.display_name,
                    "role": u.role.to_string(),
                    "record_audio_calls": u.record_audio_calls,
                    "record_video_calls": u.record_video_calls,
                    "forward_always": f.always,
                    "forward_busy": f.busy,
                    "forward_no_answer": f.no_answer,
                    "no_answer_secs": f.no_answer_secs,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        println!("{:<12} {:<8} {:<8} {:<14} {:<40} NAME", "EXTENSION", "AUDIO", "VIDEO", "ROLE", "FORWARD");
        for u in users {
            let on = |b: bool| if b { "on" } else { "off" };
            let f = forwarding_summary(&forwarding_of(&u.extension));
            println!("{:<12} {:<8} {:<8} {:<14} {:<40} {}", u.extension, on(u.record_audio_calls), on(u.record_video_calls), u.role.to_string(), f, u.display_name);
        }
    }
    Ok(())
}

fn tenant_add(a: TenantAddArgs) -> CliResult {
    let mut store = open_existing(&a.data.data)?;
    hark_pbx::store::validate_tenant_name(&a.tenant)?;
    let domain = hark_pbx::store::normalize_domain(&a.domain)?;
    store.create_tenant(&a.tenant, &domain, false)?;
    println!("Added tenant {} for domain {domain}.", a.tenant);
    Ok(())
}

fn tenant_set(a: TenantSetArgs) -> CliResult {
    let store = open_existing(&a.data.data)?;
    let tenant = store
        .tenant_by_name(&a.tenant)?
        .ok_or_else(|| format!("no tenant named {}", a.tenant))?;
    let options = a.recording_layout.is_some() || a.retention_days.is_some() || a.start_beep.is_some() || a.pause_tone.is_some();
    if a.audio_recording.is_none() && a.video_recording.is_none() && !options {
        return Err("nothing to change: give --audio-recording, --video-recording, --recording-layout, --retention-days, --start-beep and/or --pause-tone".into());
    }
    if a.audio_recording.is_some() || a.video_recording.is_some() {
        store.set_tenant_recording(tenant.id, a.audio_recording.map(Into::into), a.video_recording.map(Into::into))?;
    }
    if options {
        store.set_tenant_recording_options(
            tenant.id,
            a.recording_layout,
            a.retention_days.map(|r| r.0),
            a.start_beep.map(Into::into),
            a.pause_tone.map(Into::into),
        )?;
    }
    Ok(())
}

fn tenant_list(a: TenantListArgs) -> CliResult {
    let store = open_existing(&a.data.data)?;
    let mut rows = Vec::new();
    for t in store.list_tenants()? {
        let o = store.tenant_recording_options(t.id)?;
        rows.push((t, o));
    }
    if a.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(t, o)| {
                serde_json::json!({
                    "name": t.name,
                    "domain": t.domain,
                    "is_default": t.is_default,
                    "audio_recording": t.audio_recording,
                    "video_recording": t.video_recording,
                    "recording_layout": o.layout,
                    "retention_days": o.retention_days,
                    "start_beep": o.start_beep,
                    "pause_confirmation_tone": o.pause_confirmation_tone,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        let on = |b: bool| if b { "on" } else { "off" };
        println!("{:<16} {:<24} {:<6} {:<6} {:<7} {:<10} {:<5} PAUSE TONE", "TENANT", "DOMAIN", "AUDIO", "VIDEO", "LAYOUT", "RETENTION", "BEEP");
        for (t, o) in rows {
            let name = if t.is_default { format!("{} *", t.name) } else { t.name.clone() };
            let retention = o.retention_days.map_or_else(|| "forever".to_string(), |d| format!("{d} days"));
            println!("{:<16} {:<24} {:<6} {:<6} {:<7} {:<10} {:<5} {}", name, t.domain, on(t.audio_recording), on(t.video_recording), o.layout.as_str(), retention, on(o.start_beep), on(o.pause_confirmation_tone));
        }
    }
    Ok(())
}

fn serve(a: ServeArgs) -> CliResult {
    init_logging();
    let config = hark_pbx::serve::ServeConfig {
        data_dir: a.data.data,
        sip: a.sip,
        http: a.http,
        rtp_ports: a.rtp_ports,
        sip_trace: a.sip_trace,
        registrar: hark_pbx::registrar::RegistrarConfig {
            min_expires: a.min_expires,
            max_expires: a.max_expires.max(a.min_expires),
            default_expires: a.max_expires.max(a.min_expires),
            ..Default::default()
        },
        guard: hark_pbx::auth_guard::GuardConfig {
            max_failures: a.auth_ban_after.max(1),
            ban: std::time::Duration::from_secs(a.auth_ban_secs),
            ..Default::default()
        },
        digest_algorithms: a.digest_algorithms.0,
        calls: hark_pbx::b2bua::CallConfig { ring_timeout: std::time::Duration::from_secs(a.ring_timeout.max(1)) },
        rtp_timeout: std::time::Duration::from_secs(a.rtp_timeout.max(1)),
        advertise: a.advertise,
    };
    // Two workers: the SIP loop owns one; HTTP and TCP connections share the other.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(hark_pbx::serve::serve(config, shutdown_signal()))?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HARK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
