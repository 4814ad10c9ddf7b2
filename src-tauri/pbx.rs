//! The embedded PBX: first-run set-up of the office tenant and this user's extension,
//! start/stop of `hark_pbx::serve` inside the app, and the admin views (users, switches,
//! recordings, CDRs) through `hark_pbx::store`. No SIP and no SQL here.

use crate::settings::Settings;
use hark_pbx::policy::{self, CallState, Party, SystemSwitches, TenantSwitches};
use hark_pbx::serve::{database_path, ServeConfig};
use hark_pbx::store::{NewUser, RecordingFilter, RecordingId, Role, Store};
use hark_sip::auth::Algorithm;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::oneshot;

pub const TENANT: &str = "office";
pub const DOMAIN: &str = "hark.local";
/// The extension the app creates for its own user on first launch.
pub const OWN_EXTENSION: &str = "100";

/// What first-run set-up produced: this user's account on the embedded PBX.
#[derive(Clone, Debug)]
pub struct OwnAccount {
    pub extension: String,
    pub password: String,
    pub domain: String,
}

pub fn pbx_dir(data: &Path) -> PathBuf {
    data.join("pbx")
}

pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn open(data: &Path) -> Result<Store, String> {
    let db = database_path(&pbx_dir(data));
    if !db.exists() {
        return Err("the embedded PBX is not set up yet".into());
    }
    Store::open(&db).map_err(err)
}

fn new_user(tenant: &hark_pbx::store::Tenant, ext: &str, password: &str, name: &str) -> NewUser {
    NewUser { display_name: name.to_owned(), ..NewUser::with_password(tenant.id, ext, &tenant.domain, password) }
}

/// This app's own extension: the person who runs the office's PBX, so its tenant admin.
fn own_user(tenant: &hark_pbx::store::Tenant, password: &str, name: &str) -> NewUser {
    NewUser { role: Role::TenantAdmin, ..new_user(tenant, OWN_EXTENSION, password, name) }
}

/// Creates the office tenant and this user's extension when the PBX data does not exist
/// yet (first launch). Returns the new account, or None when the PBX was already there.
pub fn ensure_initialised(data: &Path, user_name: &str) -> Result<Option<OwnAccount>, String> {
    let dir = pbx_dir(data);
    let db = database_path(&dir);
    if db.exists() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir.join("recordings")).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Built under a temporary name and renamed into place: nothing half-written is left.
    let tmp = dir.join(".hark.db.init");
    let _ = std::fs::remove_file(&tmp);
    let password = random_password();
    let result = (|| -> Result<(), String> {
        let mut store = Store::open(&tmp).map_err(err)?;
        let id = store.create_tenant(TENANT, DOMAIN, true).map_err(err)?;
        let tenant = store.tenant(id).map_err(err)?.ok_or("tenant vanished")?;
        store.add_user(own_user(&tenant, &password, user_name)).map_err(err)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot set up the embedded PBX: {e}"));
    }
    std::fs::rename(&tmp, &db).map_err(|e| format!("cannot create {}: {e}", db.display()))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!(".hark.db.init{suffix}")));
    }
    Ok(Some(OwnAccount { extension: OWN_EXTENSION.into(), password, domain: DOMAIN.into() }))
}

/// True when both UDP and TCP can bind `addr` now.
fn free(addr: SocketAddr) -> bool {
    UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok()
}

/// The SIP address to serve on: `requested` (port 0: a free port on its IP), or
/// 0.0.0.0:5060 and the next free port when `requested` is None.
pub fn choose_sip_addr(requested: Option<SocketAddr>) -> Result<(SocketAddr, Option<String>), String> {
    match requested {
        Some(addr) if addr.port() == 0 => {
            for _ in 0..50 {
                let port = UdpSocket::bind(addr).and_then(|s| s.local_addr()).map_err(err)?.port();
                let candidate = SocketAddr::new(addr.ip(), port);
                if free(candidate) {
                    return Ok((candidate, None));
                }
            }
            Err(format!("no free port on {}", addr.ip()))
        }
        Some(addr) => {
            if free(addr) {
                Ok((addr, None))
            } else {
                Err(format!("SIP port {} is taken by another program; choose another port in Settings", addr.port()))
            }
        }
        None => {
            let ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
            for port in 5060..5160 {
                let addr = SocketAddr::new(ip, port);
                if free(addr) {
                    let note = (port != 5060).then(|| format!("port 5060 is taken; the PBX uses {port}"));
                    return Ok((addr, note));
                }
            }
            Err("no free SIP port between 5060 and 5159".into())
        }
    }
}

/// The address phones on the network register to.
pub fn lan_ip(bound: IpAddr) -> IpAddr {
    if !bound.is_unspecified() {
        return bound;
    }
    hark_phone::driver::route_ip("192.0.2.1:9".parse().unwrap()).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// A PBX running inside the app.
pub struct Running {
    pub sip: SocketAddr,
    pub note: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the PBX: calls end, recordings are finalized, CDRs written.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(format!("the PBX task failed: {e}")),
            Err(_) => Err("the PBX did not stop within 10 s".into()),
        }
    }
}

/// Starts `hark_pbx::serve` on the app's runtime and waits until SIP is bound.
pub async fn start(data: &Path, requested: Option<SocketAddr>) -> Result<Running, String> {
    let (sip, note) = choose_sip_addr(requested)?;
    let config = ServeConfig {
        data_dir: pbx_dir(data),
        sip,
        http: "127.0.0.1:0".parse().unwrap(),
        rtp_ports: (20000, 29999),
        sip_trace: false,
        registrar: Default::default(),
        guard: Default::default(),
        digest_algorithms: vec![Algorithm::Md5],
        calls: Default::default(),
        rtp_timeout: Duration::from_secs(60),
        advertise: None,
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        hark_pbx::serve::serve(config, async move {
            let _ = rx.await;
        })
        .await
        .map_err(err)
    });
    // Ready once the SIP port is held (bind failures end the task first).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if task.is_finished() {
            return match task.await {
                Ok(Err(e)) => Err(format!("the PBX could not start: {e}")),
                Ok(Ok(())) => Err("the PBX stopped at once".into()),
                Err(e) => Err(format!("the PBX could not start: {e}")),
            };
        }
        if UdpSocket::bind(sip).is_err() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = tx.send(());
            return Err("the PBX did not start within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(%sip, "embedded PBX listening");
    eprintln!("hark-desktop: PBX SIP listening on {sip}");
    Ok(Running { sip, note, stop: Some(tx), task })
}

#[derive(Serialize, Clone, Debug)]
pub struct UserView {
    pub extension: String,
    pub name: String,
    pub role: String,
    pub record_audio: bool,
    pub record_video: bool,
    /// The effective policy for this user's calls with another office extension whose
    /// switches are on, and why.
    pub recorded: bool,
    pub explain: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct Switches {
    pub tenant: String,
    pub domain: String,
    pub audio_recording: bool,
    pub video_recording: bool,
    pub record_between_external_numbers: bool,
}

fn default_tenant(store: &Store) -> Result<hark_pbx::store::Tenant, String> {
    store.default_tenant().map_err(err)?.ok_or_else(|| "the PBX has no default tenant".to_string())
}

pub fn switches(data: &Path) -> Result<Switches, String> {
    let store = open(data)?;
    let t = default_tenant(&store)?;
    let s = store.system_settings().map_err(err)?;
    Ok(Switches {
        tenant: t.name,
        domain: t.domain,
        audio_recording: t.audio_recording,
        video_recording: t.video_recording,
        record_between_external_numbers: s.record_between_external_numbers,
    })
}

pub fn users(data: &Path) -> Result<Vec<UserView>, String> {
    let store = open(data)?;
    let t = default_tenant(&store)?;
    let system = SystemSwitches { record_between_external_numbers: store.system_settings().map_err(err)?.record_between_external_numbers };
    let tenant = TenantSwitches { audio_recording: t.audio_recording, video_recording: t.video_recording };
    let users = store.list_users(t.id).map_err(err)?;
    Ok(users
        .into_iter()
        .map(|u| {
            let parties = [Party::Internal {
                extension: u.extension.clone(),
                record_audio: u.record_audio_calls,
                record_video: u.record_video_calls,
            }];
            let d = policy::decide(system, tenant, &parties, CallState { has_video: false, ..Default::default() });
            UserView {
                name: if u.display_name.is_empty() { u.extension.clone() } else { u.display_name.clone() },
                extension: u.extension,
                role: u.role.to_string(),
                record_audio: u.record_audio_calls,
                record_video: u.record_video_calls,
                recorded: d.audio || d.video,
                explain: d.explain(),
            }
        })
        .collect())
}

pub fn set_user(data: &Path, ext: &str, audio: Option<bool>, video: Option<bool>) -> Result<(), String> {
    let store = open(data)?;
    let t = default_tenant(&store)?;
    store.update_user_recording(t.id, ext, audio, video).map_err(err)
}

pub fn add_user(data: &Path, ext: &str, name: &str, password: &str) -> Result<(), String> {
    hark_pbx::store::validate_extension(ext).map_err(err)?;
    if password.is_empty() {
        return Err("the password must not be empty".into());
    }
    let store = open(data)?;
    let t = default_tenant(&store)?;
    store.add_user(new_user(&t, ext, password, if name.is_empty() { ext } else { name })).map(|_| ()).map_err(err)
}

pub fn set_company(data: &Path, audio: Option<bool>, video: Option<bool>) -> Result<(), String> {
    let store = open(data)?;
    let t = default_tenant(&store)?;
    store.set_tenant_recording(t.id, audio, video).map_err(err)
}

pub fn set_system(data: &Path, record_between_external_numbers: bool) -> Result<(), String> {
    open(data)?.set_record_between_external_numbers(record_between_external_numbers).map_err(err)
}

/// Extensions of the office (the phone's directory).
pub fn extensions(data: &Path) -> Result<Vec<(String, String)>, String> {
    let store = open(data)?;
    let t = default_tenant(&store)?;
    Ok(store
        .list_users(t.id)
        .map_err(err)?
        .into_iter()
        .filter(|u| u.role != Role::SystemAdmin)
        .map(|u| (u.extension.clone(), u.display_name.clone()))
        .collect())
}

/// The PBX user this app acts as: its own extension on the embedded PBX. The PBX's
/// access rules apply to it: a tenant admin (as first launch makes it) sees the office's
/// recordings, a plain user only their own calls'.
fn viewer(store: &Store, data: &Path) -> Result<hark_pbx::store::User, String> {
    let ext = Settings::load(data)?
        .map(|s| s.embedded.user)
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| OWN_EXTENSION.to_owned());
    let tenant = default_tenant(store)?;
    store
        .user_by_extension(tenant.id, &ext)
        .map_err(err)?
        .ok_or_else(|| format!("your extension {ext} is not on the embedded PBX any more: no PBX recordings to show"))
}

/// The PBX recordings this app's user may see, newest first.
pub fn recordings(data: &Path) -> Result<Vec<hark_pbx::store::Recording>, String> {
    let store = open(data)?;
    let me = viewer(&store, data)?;
    store.recordings_visible_to(&me, RecordingFilter::default()).map_err(err)
}

/// One PBX recording, if this app's user may see it (else: as if it did not exist).
pub fn recording(data: &Path, id: i64) -> Result<hark_pbx::store::Recording, String> {
    let store = open(data)?;
    let me = viewer(&store, data)?;
    store.recording_visible_to(&me, RecordingId(id)).map_err(err)?.ok_or_else(|| format!("no PBX recording {id}"))
}

pub fn recording_file(data: &Path, r: &hark_pbx::store::Recording) -> PathBuf {
    pbx_dir(data).join("recordings").join(&r.path)
}

pub fn delete_recording(data: &Path, id: i64) -> Result<(), String> {
    let r = recording(data, id)?;
    let path = recording_file(data, &r);
    let mut store = open(data)?;
    store.delete_recording(RecordingId(id)).map_err(err)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot delete {}: {e}", path.display())),
    }
}

/// The CDR of a recording's call (by its CDR id, else its session).
pub fn cdr_of(data: &Path, r: &hark_pbx::store::Recording) -> Result<hark_pbx::store::Cdr, String> {
    let store = open(data)?;
    let found = match r.cdr_id {
        Some(id) => store.cdr(id).map_err(err)?,
        None => store.cdr_by_session(&r.call_session_id).map_err(err)?,
    };
    found.ok_or_else(|| "no CDR yet for this call (it is written when the call ends)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hark-desktop-pbx-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn first_run_creates_tenant_and_own_extension_once() {
        let d = tmp("init");
        let acct = ensure_initialised(&d, "Me").unwrap().expect("created");
        assert_eq!(acct.extension, OWN_EXTENSION);
        assert_eq!(acct.password.len(), 16);
        assert!(ensure_initialised(&d, "Me").unwrap().is_none());
        let users = users(&d).unwrap();
        assert_eq!(users.len(), 1);
        // The tenant's switch is off by default: not recorded, and the UI says why.
        assert!(!users[0].recorded);
        assert!(users[0].explain.contains("tenant"), "{}", users[0].explain);
        set_company(&d, Some(true), None).unwrap();
        let u = &super::users(&d).unwrap()[0];
        assert!(u.recorded, "{}", u.explain);
        set_user(&d, OWN_EXTENSION, Some(false), None).unwrap();
        assert!(!super::users(&d).unwrap()[0].recorded);
        add_user(&d, "101", "Bob", "pw").unwrap();
        assert!(add_user(&d, "x y", "", "pw").is_err());
        assert_eq!(extensions(&d).unwrap().len(), 2);
        assert!(switches(&d).unwrap().audio_recording);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_library_follows_the_pbx_access_rules_for_this_apps_extension() {
        use hark_pbx::store::{NewRecording, RecordingParty};
        let d = tmp("access");
        ensure_initialised(&d, "Me").unwrap();
        add_user(&d, "101", "Bob", "pw").unwrap();
        add_user(&d, "102", "Eve", "pw").unwrap();
        let mut store = open(&d).unwrap();
        let tenant = default_tenant(&store).unwrap().id;
        let mut add = |session: &str, a: &str, b: &str| {
            let parties = vec![RecordingParty::internal(a), RecordingParty::internal(b)];
            store.start_recording(&NewRecording::policy_audio(tenant, session, &format!("{session}.wav"), parties, 8000, 1_700_000_000_000, "test")).unwrap()
        };
        let (mine, theirs) = (add("s1", "101", "100"), add("s2", "101", "102"));
        // First launch makes this app's extension the office's tenant admin: everything.
        assert_eq!(recordings(&d).unwrap().len(), 2);
        // As plain user 102: only the call 102 was in; the other is "not there".
        let mut s = Settings::default();
        s.embedded.user = "102".into();
        s.save(&d).unwrap();
        let seen: Vec<i64> = recordings(&d).unwrap().iter().map(|r| r.id.0).collect();
        assert_eq!(seen, vec![theirs.0]);
        assert!(recording(&d, mine.0).unwrap_err().contains("no PBX recording"));
        assert!(delete_recording(&d, mine.0).is_err(), "nor may 102 delete it");
        assert!(recording(&d, mine.0).is_err() && open(&d).unwrap().recording(mine).unwrap().is_some(), "still there");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_embedded_pbx_starts_holds_its_port_and_stops_cleanly() {
        let d = tmp("serve");
        ensure_initialised(&d, "Me").unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let running = start(&d, Some("127.0.0.1:0".parse().unwrap())).await.unwrap();
            let sip = running.sip;
            assert!(UdpSocket::bind(sip).is_err(), "the PBX holds {sip}");
            // The same port again: a clear message, not a crash.
            let e = start(&d, Some(sip)).await.err().expect("taken");
            assert!(e.contains("taken"), "{e}");
            running.stop().await.unwrap();
            assert!(UdpSocket::bind(sip).is_ok(), "{sip} is free after stop");
        });
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_taken_port_is_a_clear_message_and_auto_moves_on() {
        let held = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let e = choose_sip_addr(Some(addr)).unwrap_err();
        assert!(e.contains("taken"), "{e}");
        let (free_addr, _) = choose_sip_addr(Some("127.0.0.1:0".parse().unwrap())).unwrap();
        assert_ne!(free_addr.port(), 0);
    }
}
