//! Store tests: schema lifecycle, SPEC §1 defaults, typed errors, bindings, cross-process
//! change detection and write-behind batch size.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use super::*;

/// A database file in the temp dir, removed (with its -wal and -shm) when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let file = format!("hark-store-{}-{name}-{n}.db", std::process::id());
        let db = TempDb(std::env::temp_dir().join(file));
        db.remove();
        db
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

const DOMAIN: &str = "office.example";

fn md5_hex(seed: u8) -> String {
    hex::encode([seed; 16])
}

fn sha_hex(seed: u8) -> String {
    hex::encode([seed; 32])
}

fn new_user(tenant: TenantId, ext: &str) -> NewUser {
    NewUser::new(tenant, ext, md5_hex(1), sha_hex(2), DOMAIN)
}

fn office(store: &mut Store) -> TenantId {
    store.create_tenant("office", DOMAIN, true).unwrap()
}

fn binding(user_id: UserId, contact: &str, expires_at: i64) -> Binding {
    Binding {
        user_id,
        aor: format!("sip:{user_id}@{DOMAIN}"),
        contact_uri: contact.to_string(),
        expires_at,
        q: Some(0.5),
        call_id: format!("cid-{contact}"),
        cseq: 7,
        source: "udp:192.0.2.10:5060".into(),
        user_agent: Some("Test/1.0".into()),
        instance_id: None,
        updated_at: 1_000,
    }
}

#[test]
fn store_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
}

#[test]
fn fresh_file_migrates_and_reopen_is_a_no_op() {
    let db = TempDb::new("migrate");
    let secret = {
        let store = Store::open(&db.0).unwrap();
        assert_eq!(store.schema_version().unwrap(), migrations::latest_version());
        let mode: String =
            store.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let fk: bool = store.conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert!(fk);
        let sync: i64 = store.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 1, "synchronous=NORMAL");
        store.system_settings().unwrap().nonce_secret
    };
    assert_ne!(secret, [0u8; 32]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&db.0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let store = Store::open(&db.0).unwrap();
    let applied: i64 =
        store.conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    assert_eq!(applied as usize, migrations::MIGRATIONS.len());
    assert_eq!(store.system_settings().unwrap().nonce_secret, secret, "secret must survive");
    let rows: i64 =
        store.conn.query_row("SELECT COUNT(*) FROM system_settings", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn newer_schema_is_refused() {
    let db = TempDb::new("too-new");
    drop(Store::open(&db.0).unwrap());
    let raw = rusqlite::Connection::open(&db.0).unwrap();
    raw.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')", [])
        .unwrap();
    drop(raw);
    match Store::open(&db.0) {
        Err(StoreError::SchemaTooNew { found: 999, supported }) => {
            assert_eq!(supported, migrations::latest_version())
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn open_errors_name_the_file() {
    let db = TempDb::new("garbage");
    std::fs::write(&db.0, vec![b'x'; 4096]).unwrap();
    let err = Store::open(&db.0).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains(&db.0.display().to_string()), "{err}");

    let dir = std::env::temp_dir();
    let err = Store::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains(&dir.display().to_string()), "{err}");
}

#[test]
fn defaults_match_spec_section_1() {
    let mut store = Store::open_in_memory().unwrap();
    assert!(store.system_settings().unwrap().record_between_external_numbers);

    let t = office(&mut store);
    let tenant = store.tenant(t).unwrap().unwrap();
    assert!(!tenant.audio_recording, "tenant audio_recording defaults off");
    assert!(!tenant.video_recording, "tenant video_recording defaults off");

    let u = store.add_user(new_user(t, "101")).unwrap();
    let user = store.user(u).unwrap().unwrap();
    assert!(user.record_audio_calls, "user record_audio_calls defaults on");
    assert!(user.record_video_calls, "user record_video_calls defaults on");
    assert_eq!(user.role, Role::User);

    // The schema's own defaults agree with NewUser::new (a row written by other SQL).
    store
        .conn
        .execute(
            "INSERT INTO users (tenant_id, extension, ha1_md5, ha1_sha256, ha1_realm)
             VALUES (?1, '102', ?2, ?3, ?4)",
            (t.0, md5_hex(1), sha_hex(2), DOMAIN),
        )
        .unwrap();
    let raw = store.user_by_extension(t, "102").unwrap().unwrap();
    assert!(raw.record_audio_calls && raw.record_video_calls && raw.role == Role::User);
}

#[test]
fn system_setting_toggles_and_secret_is_redacted() {
    let store = Store::open_in_memory().unwrap();
    store.set_record_between_external_numbers(false).unwrap();
    assert!(!store.system_settings().unwrap().record_between_external_numbers);
    store.set_record_between_external_numbers(true).unwrap();
    let s = store.system_settings().unwrap();
    assert!(s.record_between_external_numbers);
    assert!(!format!("{s:?}").contains(&hex::encode(s.nonce_secret)));
}

#[test]
fn tenants_default_domain_and_duplicates() {
    let mut store = Store::open_in_memory().unwrap();
    assert!(store.default_tenant().unwrap().is_none());

    // The first tenant is the default even if not asked, so IP-literal requests land.
    let a = store.create_tenant("office", "Office.Example.", false).unwrap();
    let ta = store.default_tenant().unwrap().unwrap();
    assert_eq!((ta.id, ta.domain.as_str()), (a, "office.example"));

    let b = store.create_tenant("branch", "branch.example", false).unwrap();
    assert_eq!(store.default_tenant().unwrap().unwrap().id, a);
    let c = store.create_tenant("lab", "lab.example", true).unwrap();
    assert_eq!(store.default_tenant().unwrap().unwrap().id, c, "default moves");
    store.set_default_tenant(a).unwrap();
    let defaults = store.list_tenants().unwrap().iter().filter(|t| t.is_default).count();
    assert_eq!(defaults, 1);
    assert!(matches!(store.set_default_tenant(TenantId(999)), Err(StoreError::NotFound(_))));
    assert_eq!(store.default_tenant().unwrap().unwrap().id, a, "failed move rolled back");

    assert_eq!(store.tenant_by_domain("BRANCH.example").unwrap().unwrap().id, b);
    assert_eq!(store.tenant_by_name("Branch").unwrap().unwrap().id, b);
    assert!(store.tenant_by_domain("nowhere.example").unwrap().is_none());
    assert_eq!(store.tenant_for_host("lab.example").unwrap().unwrap().id, c);
    assert_eq!(store.tenant_for_host("192.0.2.1").unwrap().unwrap().id, a);
    assert_eq!(store.tenant_for_host("[2001:db8::1]").unwrap().unwrap().id, a);
    assert!(store.tenant_for_host("evil.example").unwrap().is_none());

    let names: Vec<_> = store.list_tenants().unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["branch", "lab", "office"]);

    match store.create_tenant("OFFICE", "other.example", false) {
        Err(StoreError::Duplicate(m)) => assert_eq!(m, "tenant office already exists"),
        other => panic!("{other:?}"),
    }
    match store.create_tenant("other", "LAB.example", false) {
        Err(StoreError::Duplicate(m)) => assert_eq!(m, "domain lab.example is already used by tenant lab"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(store.create_tenant("x", "bad domain", false), Err(StoreError::Invalid(_))));
    assert_eq!(store.list_tenants().unwrap().len(), 3);
}

#[test]
fn tenant_recording_switches() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    store.set_tenant_recording(t, Some(true), None).unwrap();
    let x = store.tenant(t).unwrap().unwrap();
    assert!(x.audio_recording && !x.video_recording);
    store.set_tenant_recording(t, None, Some(true)).unwrap();
    store.set_tenant_recording(t, Some(false), None).unwrap();
    let x = store.tenant(t).unwrap().unwrap();
    assert!(!x.audio_recording && x.video_recording);
    assert!(matches!(
        store.set_tenant_recording(TenantId(42), Some(true), None),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn duplicate_extension_is_a_typed_error() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    store.add_user(new_user(t, "101")).unwrap();
    match store.add_user(new_user(t, "101")) {
        Err(StoreError::Duplicate(m)) => {
            assert_eq!(m, "extension 101 already exists in tenant office")
        }
        other => panic!("expected Duplicate, got {other:?}"),
    }
    // Same extension in another tenant is fine.
    let other = store.create_tenant("branch", "branch.example", false).unwrap();
    let mut u = new_user(other, "101");
    u.realm = "branch.example".into();
    store.add_user(u).unwrap();
}

#[test]
fn add_user_rejects_bad_input() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let invalid = |r: Result<UserId, StoreError>| matches!(r, Err(StoreError::Invalid(_)));
    assert!(invalid(store.add_user(new_user(t, "1 01"))));
    let mut u = new_user(t, "101");
    u.realm = "other.example".into();
    assert!(invalid(store.add_user(u)), "HA1 for another realm would never verify");
    let mut u = new_user(t, "101");
    u.ha1_md5 = "secret".into();
    assert!(invalid(store.add_user(u)), "plain password instead of HA1");
    let mut u = new_user(t, "101");
    u.display_name = "A\r\nB".into();
    assert!(invalid(store.add_user(u)));
    assert!(matches!(
        store.add_user(new_user(TenantId(77), "101")),
        Err(StoreError::NotFound(_))
    ));

    // Upper-case hex is stored canonical; fields round-trip.
    let mut u = new_user(t, "alice");
    u.ha1_md5 = md5_hex(0xAB).to_uppercase();
    u.display_name = "Alice".into();
    u.role = Role::TenantAdmin;
    u.record_video = false;
    let id = store.add_user(u).unwrap();
    let got = store.user_by_extension(t, "alice").unwrap().unwrap();
    assert_eq!(got.id, id);
    assert_eq!(got.ha1_md5, md5_hex(0xAB));
    assert_eq!(got.ha1_sha256, sha_hex(2));
    assert_eq!((got.display_name.as_str(), got.role), ("Alice", Role::TenantAdmin));
    assert!(got.record_audio_calls && !got.record_video_calls);
    assert!(got.ha1_matches_realm(DOMAIN));
    assert!(!format!("{got:?}").contains(&md5_hex(0xAB)), "HA1 redacted in Debug");
    assert!(store.user_by_extension(t, "Alice").unwrap().is_none(), "case-sensitive");
}

#[test]
fn user_recording_switches_and_listing() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    for ext in ["100", "99", "101", "alice"] {
        store.add_user(new_user(t, ext)).unwrap();
    }
    let exts: Vec<_> = store.list_users(t).unwrap().into_iter().map(|u| u.extension).collect();
    assert_eq!(exts, ["99", "100", "101", "alice"]);

    store.update_user_recording(t, "101", Some(false), None).unwrap();
    let u = store.user_by_extension(t, "101").unwrap().unwrap();
    assert!(!u.record_audio_calls && u.record_video_calls);
    store.update_user_recording(t, "101", None, Some(false)).unwrap();
    let u = store.user_by_extension(t, "101").unwrap().unwrap();
    assert!(!u.record_audio_calls && !u.record_video_calls);

    match store.update_user_recording(t, "555", Some(true), None) {
        Err(StoreError::NotFound(m)) => assert_eq!(m, "extension 555 not found in tenant office"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn role_text_round_trips() {
    for r in [Role::User, Role::TenantAdmin, Role::SystemAdmin] {
        assert_eq!(r.to_string().parse::<Role>().unwrap(), r);
        assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
    }
    assert!(matches!("admin".parse::<Role>(), Err(StoreError::Invalid(_))));
}

#[test]
fn bindings_round_trip_and_expiry_purge() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let u1 = store.add_user(new_user(t, "101")).unwrap();
    let u2 = store.add_user(new_user(t, "102")).unwrap();

    let mut a = binding(u1, "sip:101@192.0.2.10:5060", 2_000);
    a.instance_id = Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".into());
    let b = binding(u1, "sip:101@192.0.2.11:5060;transport=tcp", 1_500);
    let mut c = binding(u2, "sip:102@192.0.2.12:5060", 3_000);
    c.q = None;
    c.user_agent = None;
    assert_eq!(store.upsert_bindings(&[a.clone(), b.clone(), c.clone()]).unwrap(), 3);

    // A re-REGISTER refreshes the same (user, contact) row instead of adding one.
    let mut a2 = a.clone();
    a2.expires_at = 2_500;
    a2.cseq = 8;
    a2.source = "udp:198.51.100.7:40000".into();
    a2.updated_at = 1_100;
    assert_eq!(store.upsert_bindings(std::slice::from_ref(&a2)).unwrap(), 1);

    let live = store.load_live_bindings(1_000).unwrap();
    assert_eq!(live, vec![a2.clone(), b.clone(), c.clone()]);

    // At 1_500 `b` has expired (expires_at <= now): not returned, and gone from the table.
    let live = store.load_live_bindings(1_500).unwrap();
    assert_eq!(live, vec![a2.clone(), c.clone()]);
    let rows: i64 =
        store.conn.query_row("SELECT COUNT(*) FROM registrations", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 2, "expired binding purged");

    assert!(store.delete_binding(u1, &a.contact_uri).unwrap());
    assert!(!store.delete_binding(u1, &a.contact_uri).unwrap());
    store.upsert_bindings(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(store.delete_user_bindings(u1).unwrap(), 2);
    assert_eq!(store.load_live_bindings(1_000).unwrap(), vec![c.clone()]);

    // Deleting a user removes its bindings (ON DELETE CASCADE, foreign keys on).
    store.conn.execute("DELETE FROM users WHERE id = ?1", [u2.0]).unwrap();
    assert!(store.load_live_bindings(1_000).unwrap().is_empty());

    // Out-of-range q is refused before anything is written.
    let mut bad = binding(u1, "sip:x@192.0.2.1", 9_000);
    bad.q = Some(1.5);
    assert!(matches!(store.upsert_bindings(&[a, bad]), Err(StoreError::Invalid(_))));
    assert!(store.load_live_bindings(1_000).unwrap().is_empty(), "batch is all or nothing");
}

#[test]
fn batch_ops_apply_in_order_and_skip_vanished_users() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let u = store.add_user(new_user(t, "101")).unwrap();
    let old = binding(u, "sip:101@192.0.2.10:5060", 5_000);
    let new = binding(u, "sip:101@192.0.2.10:5062", 5_000);
    store.upsert_bindings(std::slice::from_ref(&old)).unwrap();

    let ops = [
        BindingOp::Delete { user_id: u, contact_uri: old.contact_uri.clone() },
        BindingOp::Upsert(new.clone()),
        BindingOp::Upsert(binding(UserId(4242), "sip:ghost@192.0.2.99", 5_000)),
    ];
    let out = store.apply_binding_ops(&ops).unwrap();
    assert_eq!(out, BatchOutcome { upserted: 1, skipped: 1, deleted: 1 });
    assert_eq!(store.load_live_bindings(0).unwrap(), vec![new]);

    let out = store.apply_binding_ops(&[BindingOp::DeleteUser(u)]).unwrap();
    assert_eq!(out.deleted, 1);
}

#[test]
fn data_version_sees_another_connections_commit() {
    let db = TempDb::new("data-version");
    let mut server = Store::open(&db.0).unwrap();
    let t = office(&mut server);
    let cli = Store::open(&db.0).unwrap();

    let before = server.data_version().unwrap();
    assert_eq!(server.data_version().unwrap(), before, "stable without writes");
    // Own writes do not move it: the server must update its caches itself when it writes.
    server.set_tenant_recording(t, Some(true), None).unwrap();
    assert_eq!(server.data_version().unwrap(), before);

    cli.set_record_between_external_numbers(false).unwrap();
    let after = server.data_version().unwrap();
    assert_ne!(after, before, "another connection's commit must be visible");
    assert!(!server.system_settings().unwrap().record_between_external_numbers);

    cli.update_user_recording(t, "404", Some(true), None).unwrap_err();
    assert_eq!(server.data_version().unwrap(), after, "a failed write changes nothing");

    // The server's own registration writer is another connection: data_version moves,
    // config_version does not, so the server can skip the reload.
    let u = server.add_user(new_user(t, "101")).unwrap();
    let (dv, cv) = (server.data_version().unwrap(), server.config_version().unwrap());
    let mut writer = Store::open(&db.0).unwrap();
    writer.upsert_bindings(&[binding(u, "sip:101@192.0.2.1", 9_000)]).unwrap();
    assert_ne!(server.data_version().unwrap(), dv);
    assert_eq!(server.config_version().unwrap(), cv);
}

#[test]
fn config_version_moves_for_configuration_only() {
    let mut store = Store::open_in_memory().unwrap();
    let v0 = store.config_version().unwrap();
    let t = office(&mut store);
    let v1 = store.config_version().unwrap();
    assert!(v1 > v0, "tenant insert");
    let u = store.add_user(new_user(t, "101")).unwrap();
    let v2 = store.config_version().unwrap();
    assert!(v2 > v1, "user insert");

    store.upsert_bindings(&[binding(u, "sip:101@192.0.2.1", 9_000)]).unwrap();
    store.apply_binding_ops(&[BindingOp::DeleteUser(u)]).unwrap();
    store.load_live_bindings(10_000).unwrap();
    assert_eq!(store.config_version().unwrap(), v2, "bindings are not configuration");

    store.update_user_recording(t, "101", Some(false), None).unwrap();
    let v3 = store.config_version().unwrap();
    assert!(v3 > v2, "user update");
    store.set_tenant_recording(t, Some(true), None).unwrap();
    let v4 = store.config_version().unwrap();
    assert!(v4 > v3, "tenant update");
    store.set_record_between_external_numbers(false).unwrap();
    assert!(store.config_version().unwrap() > v4, "system update");
}

#[test]
fn write_behind_batch_of_10000_bindings_in_one_transaction() {
    let db = TempDb::new("batch");
    let mut store = Store::open(&db.0).unwrap();
    let t = office(&mut store);
    let users: Vec<UserId> = (0..1_000)
        .map(|i| store.add_user(new_user(t, &format!("{}", 1000 + i))).unwrap())
        .collect();

    let mut ops: Vec<BindingOp> = Vec::with_capacity(10_000);
    for (i, u) in users.iter().enumerate() {
        for port in 0..10 {
            let contact = format!("sip:{}@192.0.2.{}:{}", 1000 + i, i % 250, 5060 + port);
            ops.push(BindingOp::Upsert(binding(*u, &contact, 10_000)));
        }
    }
    let started = Instant::now();
    let out = store.apply_binding_ops(&ops).unwrap();
    let insert_time = started.elapsed();
    assert_eq!(out, BatchOutcome { upserted: 10_000, skipped: 0, deleted: 0 });

    // The refresh path (every binding already present) goes through ON CONFLICT.
    for op in &mut ops {
        if let BindingOp::Upsert(b) = op {
            b.expires_at = 20_000;
            b.cseq += 1;
        }
    }
    let started = Instant::now();
    store.apply_binding_ops(&ops).unwrap();
    let refresh_time = started.elapsed();

    // A second process sees the whole batch after reopening.
    drop(store);
    let mut store = Store::open(&db.0).unwrap();
    let live = store.load_live_bindings(10_000).unwrap();
    assert_eq!(live.len(), 10_000);
    assert!(live.iter().all(|b| b.expires_at == 20_000 && b.cseq == 8));

    let started = Instant::now();
    for i in 0..10_000 {
        let ext = format!("{}", 1000 + i % 1_000);
        assert!(store.user_by_extension(t, &ext).unwrap().is_some());
    }
    let lookup_time = started.elapsed();
    eprintln!(
        "10,000 bindings: insert {insert_time:?}, refresh {refresh_time:?}; \
         10,000 user lookups {lookup_time:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Call detail records (migration 2)

const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20.000Z

/// An answered internal call 101 -> 102 starting at `started_at`: rings 2 s, talks 10.4 s.
fn new_cdr(tenant: TenantId, session: &str, started_at: i64) -> NewCdr {
    NewCdr {
        call_session_id: session.to_string(),
        tenant_id: tenant,
        caller: "101".into(),
        caller_kind: PartyKind::Internal,
        callee: "102".into(),
        callee_kind: PartyKind::Internal,
        direction: Direction::Internal,
        started_at,
        answered_at: Some(started_at + 2_000),
        ended_at: started_at + 12_400,
        disposition: Disposition::Answered,
        hangup_by: HangupBy::Caller,
        hangup_cause: "BYE".into(),
        sip_call_id_a: format!("a-{session}"),
        sip_call_id_b: Some(format!("b-{session}")),
        codec: Some("PCMU".into()),
        recording: None,
        parties: Vec::new(),
    }
}

fn count(store: &Store, table: &str) -> i64 {
    store.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

fn cdr_schema(store: &Store) -> Vec<String> {
    let mut stmt = store
        .conn
        .prepare("SELECT name, sql FROM sqlite_schema WHERE tbl_name LIKE 'cdr%' ORDER BY name")
        .unwrap();
    // Automatic (UNIQUE) indexes have no SQL text.
    stmt.query_map([], |r| {
        Ok(format!(
            "{}: {}",
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?.unwrap_or_default()
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn migration_2_upgrades_a_version_1_database() {
    let db = TempDb::new("v1");
    {
        // The database as release 1 left it, with some configuration in it.
        let mut raw = rusqlite::Connection::open(&db.0).unwrap();
        raw.pragma_update(None, "foreign_keys", true).unwrap();
        assert_eq!(migrations::run_until(&mut raw, 1).unwrap(), 1);
        raw.execute(
            "INSERT INTO tenants (name, domain, is_default) VALUES ('office', ?1, 1)",
            [DOMAIN],
        )
        .unwrap();
        let tables: i64 = raw
            .query_row("SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'cdr%'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(tables, 0, "version 1 has no CDR tables");
    }
    let config_before = {
        let raw = rusqlite::Connection::open(&db.0).unwrap();
        raw.query_row("SELECT version FROM config_version", [], |r| r.get::<_, i64>(0)).unwrap()
    };

    let mut store = Store::open(&db.0).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::latest_version());
    assert_eq!(count(&store, "schema_migrations") as usize, migrations::MIGRATIONS.len());
    assert_eq!(
        store.config_version().unwrap(),
        config_before,
        "the migration is not configuration"
    );
    let t = store.tenant_by_name("office").unwrap().expect("data kept");
    let id = store.insert_cdr(&new_cdr(t.id, "s1", T0)).unwrap();
    assert_eq!(store.cdr_by_session("s1").unwrap().unwrap().id, id);

    // The upgraded schema is the one a fresh database gets.
    let fresh = Store::open_in_memory().unwrap();
    assert_eq!(cdr_schema(&store), cdr_schema(&fresh));
    assert_eq!(
        cdr_schema(&fresh).len(),
        8,
        "2 tables, 4 indexes, 1 unique, and migration 3's trigger linking recordings: {:?}",
        cdr_schema(&fresh)
    );

    drop(store);
    let store = Store::open(&db.0).unwrap();
    assert_eq!(
        count(&store, "schema_migrations") as usize,
        migrations::MIGRATIONS.len(),
        "reopening applies nothing"
    );
    assert_eq!(count(&store, "cdr"), 1);
}

#[test]
fn cdr_round_trip() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);

    // Answered, then transferred by the callee to an external number.
    let mut c = new_cdr(t, "sess-1", T0);
    c.caller_kind = PartyKind::Internal;
    c.parties = vec![
        CdrParty {
            role: PartyRole::Caller,
            party: "101".into(),
            kind: PartyKind::Internal,
            joined_at: T0,
            left_at: T0 + 12_400,
        },
        CdrParty {
            role: PartyRole::Callee,
            party: "102".into(),
            kind: PartyKind::Internal,
            joined_at: T0,
            left_at: T0 + 5_000,
        },
        CdrParty {
            role: PartyRole::TransferTarget,
            party: "+4930123456".into(),
            kind: PartyKind::External,
            joined_at: T0 + 5_000,
            left_at: T0 + 12_400,
        },
    ];
    let id = store.insert_cdr(&c).unwrap();
    let got = store.cdr_by_session("sess-1").unwrap().unwrap();
    assert_eq!(got.id, id);
    assert_eq!(store.cdr(id).unwrap().as_ref(), Some(&got));
    assert_eq!(got.tenant, "office");
    assert_eq!(got.tenant_id, t);
    assert_eq!((got.caller.as_str(), got.callee.as_str()), ("101", "102"));
    assert_eq!((got.caller_kind, got.callee_kind), (PartyKind::Internal, PartyKind::Internal));
    assert_eq!(got.direction, Direction::Internal);
    assert_eq!(
        (got.started_at, got.answered_at, got.ended_at),
        (T0, Some(T0 + 2_000), T0 + 12_400)
    );
    assert_eq!(got.duration_s, 12.4);
    assert_eq!(got.billsec, 10, "10.4 s rounds to 10");
    assert_eq!((got.disposition, got.hangup_by), (Disposition::Answered, HangupBy::Caller));
    assert_eq!(got.hangup_cause, "BYE");
    assert_eq!(got.sip_call_id_a, "a-sess-1");
    assert_eq!(got.sip_call_id_b.as_deref(), Some("b-sess-1"));
    assert_eq!(got.codec.as_deref(), Some("PCMU"));
    assert_eq!(got.parties, c.parties);
    assert!(store.cdr_by_session("nope").unwrap().is_none());
    assert!(store.cdr(CdrId(999)).unwrap().is_none());

    // The JSON form: SPEC §4 fields, RFC 3339 times, lower-case words.
    let json = serde_json::to_value(&got).unwrap();
    for key in [
        "id",
        "call_session_id",
        "tenant",
        "caller",
        "callee",
        "direction",
        "started_at",
        "answered_at",
        "ended_at",
        "duration_s",
        "billsec",
        "disposition",
        "hangup_by",
        "hangup_cause",
        "parties",
    ] {
        assert!(json.get(key).is_some(), "no {key} in {json}");
    }
    assert_eq!(json["id"], id.0);
    assert_eq!(json["tenant"], "office");
    assert_eq!(json["started_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(json["answered_at"], "2023-11-14T22:13:22.000Z");
    assert_eq!(json["ended_at"], "2023-11-14T22:13:32.400Z");
    assert_eq!(json["duration_s"], 12.4);
    assert_eq!(json["billsec"], 10);
    assert_eq!(json["disposition"], "answered");
    assert_eq!(json["parties"][2]["role"], "transfer-target");
    assert_eq!(json["parties"][2]["kind"], "external");
    assert_eq!(json["parties"][2]["joined_at"], "2023-11-14T22:13:25.000Z");

    // Unanswered: no answer time (null in JSON), billsec 0; default parties are the ends.
    let mut busy = new_cdr(t, "sess-2", T0);
    busy.answered_at = None;
    busy.ended_at = T0 + 1_499;
    busy.disposition = Disposition::NoAnswer;
    busy.hangup_by = HangupBy::Pbx;
    busy.hangup_cause = "480 Temporarily Unavailable".into();
    busy.sip_call_id_b = None;
    busy.codec = None;
    store.insert_cdr(&busy).unwrap();
    let got = store.cdr_by_session("sess-2").unwrap().unwrap();
    assert_eq!((got.answered_at, got.billsec, got.duration_s), (None, 0, 1.499));
    assert!(got.sip_call_id_b.is_none() && got.codec.is_none());
    let roles: Vec<_> =
        got.parties.iter().map(|p| (p.role, p.party.as_str(), p.joined_at, p.left_at)).collect();
    assert_eq!(
        roles,
        [(PartyRole::Caller, "101", T0, T0 + 1_499), (PartyRole::Callee, "102", T0, T0 + 1_499)]
    );
    let json = serde_json::to_value(&got).unwrap();
    assert!(json["answered_at"].is_null() && json["codec"].is_null());
    assert_eq!(json["disposition"], "no-answer");
    assert_eq!(json["hangup_by"], "pbx");

    // billsec rounds half up.
    let mut half = new_cdr(t, "sess-3", T0);
    half.answered_at = Some(T0);
    half.ended_at = T0 + 2_500;
    store.insert_cdr(&half).unwrap();
    assert_eq!(store.cdr_by_session("sess-3").unwrap().unwrap().billsec, 3);
}

#[test]
fn cdr_insert_is_idempotent_on_session() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let first = new_cdr(t, "same", T0);
    let id = store.insert_cdr(&first).unwrap();
    assert_eq!(store.insert_cdr(&first).unwrap(), id, "the very same CDR again");

    let mut second = first.clone();
    second.ended_at = T0 + 60_000;
    second.hangup_by = HangupBy::Callee;
    second.hangup_cause = "rtp-timeout".into();
    second.parties = vec![CdrParty {
        role: PartyRole::Caller,
        party: "101".into(),
        kind: PartyKind::Internal,
        joined_at: T0,
        left_at: T0 + 60_000,
    }];
    assert_eq!(store.insert_cdr(&second).unwrap(), id, "same session, same id");
    assert_eq!(count(&store, "cdr"), 1);
    assert_eq!(count(&store, "cdr_parties"), 1, "parties replaced, not appended");
    let got = store.cdr_by_session("same").unwrap().unwrap();
    assert_eq!(
        (got.ended_at, got.hangup_by, got.hangup_cause.as_str()),
        (T0 + 60_000, HangupBy::Callee, "rtp-timeout")
    );
    assert_eq!(got.parties, second.parties);

    // Within one batch, the later write wins.
    let mut third = first.clone();
    third.hangup_cause = "third".into();
    let ids = store.insert_cdrs(&[first.clone(), third, new_cdr(t, "other", T0)]).unwrap();
    assert_eq!(ids[0], id);
    assert_eq!(ids[1], id);
    assert_ne!(ids[2], id);
    assert_eq!(store.cdr_by_session("same").unwrap().unwrap().hangup_cause, "third");
    assert_eq!(count(&store, "cdr"), 2);
    assert_eq!(count(&store, "cdr_parties"), 4);
}

#[test]
fn cdr_list_is_newest_first_and_filters() {
    let mut store = Store::open_in_memory().unwrap();
    let office = office(&mut store);
    let branch = store.create_tenant("branch", "branch.example", false).unwrap();
    assert!(store.list_cdrs(CdrFilter::default()).unwrap().is_empty());

    let batch = [
        new_cdr(office, "o1", T0),
        new_cdr(office, "o2", T0 + 10_000),
        new_cdr(branch, "b1", T0 + 5_000),
        new_cdr(office, "o3", T0 + 10_000), // same start as o2: the later id first
        new_cdr(branch, "b2", T0 + 20_000),
    ];
    store.insert_cdrs(&batch).unwrap();
    let sessions = |f: CdrFilter| -> Vec<String> {
        store.list_cdrs(f).unwrap().into_iter().map(|c| c.call_session_id).collect()
    };
    assert_eq!(sessions(CdrFilter::default()), ["b2", "o3", "o2", "b1", "o1"]);
    assert_eq!(
        sessions(CdrFilter { tenant: Some(office), ..Default::default() }),
        ["o3", "o2", "o1"]
    );
    assert_eq!(sessions(CdrFilter { tenant: Some(branch), ..Default::default() }), ["b2", "b1"]);
    assert!(sessions(CdrFilter { tenant: Some(TenantId(99)), ..Default::default() }).is_empty());
    assert_eq!(sessions(CdrFilter { limit: Some(2), ..Default::default() }), ["b2", "o3"]);
    assert!(sessions(CdrFilter { limit: Some(0), ..Default::default() }).is_empty());
    // since is inclusive, until exclusive.
    assert_eq!(
        sessions(CdrFilter {
            since: Some(T0 + 5_000),
            until: Some(T0 + 20_000),
            ..Default::default()
        }),
        ["o3", "o2", "b1"]
    );
    assert_eq!(
        sessions(CdrFilter {
            tenant: Some(office),
            since: Some(T0 + 1),
            limit: Some(1),
            ..Default::default()
        }),
        ["o3"]
    );
    let all = store.list_cdrs(CdrFilter::default()).unwrap();
    assert!(all.iter().all(|c| c.parties.len() == 2), "parties come with the list");
    assert_eq!(all[0].tenant, "branch");

    // Both listing queries walk an index instead of sorting the table.
    for (sql, args) in [(cdr::LIST_ALL_SQL, 3), (cdr::LIST_TENANT_SQL, 4)] {
        let params: Vec<i64> = vec![1; args];
        let mut stmt = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("INDEX cdr_"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "sorts instead of walking the index:\n{plan}");
    }
}

#[test]
fn cdr_checks_reject_bad_records_and_write_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let invalid = |f: fn(&mut NewCdr)| {
        let mut c = new_cdr(t, "bad", T0);
        f(&mut c);
        c
    };
    let bad: [NewCdr; 12] = [
        invalid(|c| c.call_session_id.clear()),
        invalid(|c| c.call_session_id = "a b".into()),
        invalid(|c| c.call_session_id = "x".repeat(129)),
        invalid(|c| c.caller.clear()),
        invalid(|c| c.callee = "10\n2".into()),
        invalid(|c| c.hangup_cause = "x".repeat(257)),
        invalid(|c| c.answered_at = Some(c.started_at - 1)),
        invalid(|c| c.ended_at = c.started_at + 1_000), // before the answer
        invalid(|c| c.answered_at = None),              // answered without a time
        invalid(|c| c.disposition = Disposition::Busy), // a time but not answered
        invalid(|c| c.sip_call_id_b = Some(String::new())),
        invalid(|c| {
            c.parties = vec![CdrParty {
                role: PartyRole::Caller,
                party: "101".into(),
                kind: PartyKind::Internal,
                joined_at: c.started_at - 1,
                left_at: c.ended_at,
            }]
        }),
    ];
    for c in &bad {
        match store.insert_cdrs(&[new_cdr(t, "good", T0), c.clone()]) {
            Err(StoreError::Invalid(m)) => assert!(m.starts_with("CDR "), "{m}"),
            other => panic!("{c:?} accepted: {other:?}"),
        }
    }
    assert_eq!(count(&store, "cdr"), 0, "a bad CDR rejects its whole batch");

    match store.insert_cdrs(&[new_cdr(t, "good", T0), new_cdr(TenantId(42), "lost", T0)]) {
        Err(StoreError::NotFound(m)) => assert!(m.contains("tenant id 42"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&store, "cdr"), 0, "rolled back");

    // The schema refuses what the checks refuse, for writers other than this layer.
    let raw = store.conn.execute(
        "INSERT INTO cdr (call_session_id, tenant_id, caller, caller_kind, callee, callee_kind,
                          direction, started_at, answered_at, ended_at, disposition, hangup_by,
                          hangup_cause, sip_call_id_a)
         VALUES ('raw', ?1, '101', 'internal', '102', 'internal', 'internal', 0, NULL, 10,
                 'answered', 'caller', '', 'x')",
        [t.0],
    );
    assert!(raw.is_err(), "answered without an answer time");
}

#[test]
fn cdr_words_round_trip() {
    fn check<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + serde::Serialize,
        T: std::str::FromStr<Err = StoreError>,
    {
        for v in all {
            assert_eq!(v.to_string().parse::<T>().unwrap(), *v);
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{v}\""));
        }
    }
    check(Disposition::ALL);
    check(Direction::ALL);
    check(HangupBy::ALL);
    check(PartyKind::ALL);
    check(PartyRole::ALL);
    assert_eq!(Disposition::NoAnswer.as_str(), "no-answer");
    assert_eq!(PartyRole::TransferTarget.as_str(), "transfer-target");
    let e = "noanswer".parse::<Disposition>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown disposition \"noanswer\": use answered, busy, no-answer, cancelled, failed"
    );
    let d: Disposition = serde_json::from_str("\"no-answer\"").unwrap();
    assert_eq!(d, Disposition::NoAnswer);

    use PartyKind::{External, Internal};
    assert_eq!(Direction::from_kinds(Internal, Internal), Direction::Internal);
    assert_eq!(Direction::from_kinds(External, Internal), Direction::Inbound);
    assert_eq!(Direction::from_kinds(External, External), Direction::Inbound);
    assert_eq!(Direction::from_kinds(Internal, External), Direction::Outbound);
}

#[test]
fn rfc3339_timestamps() {
    assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_rfc3339_ms(T0 + 123), "2023-11-14T22:13:20.123Z");
    assert_eq!(format_rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(format_rfc3339_ms(MAX_CDR_UNIX_MS), "9999-12-31T23:59:59.999Z");
    assert_eq!(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");

    // Agrees with SQLite's calendar across leap days, century years and month ends.
    let store = Store::open_in_memory().unwrap();
    let mut stmt =
        store.conn.prepare("SELECT strftime('%Y-%m-%dT%H:%M:%S', ?1, 'unixepoch')").unwrap();
    let mut secs: i64 = 0;
    while secs < MAX_CDR_UNIX_MS / 1000 {
        let ms = secs * 1000 + secs % 1000;
        let ours = format_rfc3339_ms(ms);
        let theirs: String = stmt.query_row([secs], |r| r.get(0)).unwrap();
        assert_eq!(ours, format!("{theirs}.{:03}Z", secs % 1000), "at {secs}");
        secs += 86_400 * 37 + 3_607; // ~80,000 samples over the whole range
    }
}

#[test]
fn cdr_writes_do_not_move_config_version() {
    let db = TempDb::new("cdr-config");
    let mut server = Store::open(&db.0).unwrap();
    let t = office(&mut server);
    let cv = server.config_version().unwrap();
    let dv = server.data_version().unwrap();

    // The PBX's CDR writer is another connection: data_version moves, config_version not.
    let mut writer = Store::open(&db.0).unwrap();
    writer.insert_cdr(&new_cdr(t, "c1", T0)).unwrap();
    writer.insert_cdrs(&[new_cdr(t, "c1", T0), new_cdr(t, "c2", T0)]).unwrap();
    assert_ne!(server.data_version().unwrap(), dv);
    assert_eq!(server.config_version().unwrap(), cv, "CDRs are not configuration");
    assert_eq!(server.list_cdrs(CdrFilter::default()).unwrap().len(), 2);
}

#[test]
fn cdr_batch_of_10000_in_one_transaction() {
    let db = TempDb::new("cdr-batch");
    let mut store = Store::open(&db.0).unwrap();
    let t = office(&mut store);
    let cdrs: Vec<NewCdr> =
        (0..10_000).map(|i| new_cdr(t, &format!("s{i:05}"), T0 + i * 1_000)).collect();

    let started = Instant::now();
    let ids = store.insert_cdrs(&cdrs).unwrap();
    let insert_time = started.elapsed();
    assert_eq!(ids.len(), 10_000);

    let started = Instant::now();
    store.insert_cdrs(&cdrs).unwrap();
    let rewrite_time = started.elapsed();

    drop(store);
    let store = Store::open(&db.0).unwrap();
    assert_eq!(count(&store, "cdr"), 10_000);
    assert_eq!(count(&store, "cdr_parties"), 20_000);
    let started = Instant::now();
    let newest = store.list_cdrs(CdrFilter { limit: Some(50), ..Default::default() }).unwrap();
    let page_time = started.elapsed();
    assert_eq!(newest.len(), 50);
    assert_eq!(newest[0].call_session_id, "s09999");
    let started = Instant::now();
    let all = store.list_cdrs(CdrFilter { tenant: Some(t), ..Default::default() }).unwrap();
    let list_time = started.elapsed();
    assert_eq!(all.len(), 10_000);
    assert_eq!(all.last().unwrap().id, ids[0]);
    eprintln!(
        "10,000 CDRs: insert {insert_time:?}, rewrite {rewrite_time:?}; newest 50 {page_time:?}, \
         all {list_time:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Recordings (migration 3)

/// An audio recording of session `session` started at `started_at`, linked to 101 and 102.
fn new_recording(tenant: TenantId, session: &str, path: &str, started_at: i64) -> NewRecording {
    let parties = vec![RecordingParty::internal("101"), RecordingParty::internal("102")];
    NewRecording::policy_audio(tenant, session, path, parties, 8_000, started_at, "101 records audio calls and the tenant's audio recording is on")
}

fn event(at: i64, offset_ms: u64, kind: RecordingEventKind) -> NewRecordingEvent {
    NewRecordingEvent {
        at,
        offset_ms,
        event: kind,
        source: ControlSourceKind::Dtmf,
        actor: "101".into(),
        reason: "*48".into(),
    }
}

fn finish(ended_at: i64, duration_ms: u64, status: RecordingStatus) -> Finish {
    Finish {
        ended_at,
        duration_ms,
        status,
        stop_reason: Some("hangup".into()),
        error: None,
        source: ControlSourceKind::System,
        actor: "102".into(),
        reason: String::new(),
    }
}

fn recording_schema(store: &Store) -> Vec<String> {
    let mut stmt = store
        .conn
        .prepare(
            "SELECT name, sql FROM sqlite_schema
             WHERE tbl_name LIKE 'recording%' OR name IN ('tenants', 'cdr_insert_links_recordings')
             ORDER BY name",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(format!(
            "{}: {}",
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?.unwrap_or_default()
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn sessions_of(recs: &[Recording]) -> Vec<&str> {
    recs.iter().map(|r| r.call_session_id.as_str()).collect()
}

#[test]
fn migration_3_on_a_fresh_database() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::latest_version());
    let t = office(&mut store);
    assert_eq!(store.tenant_recording_options(t).unwrap(), TenantRecordingOptions::default());
    let d = TenantRecordingOptions::default();
    assert_eq!(
        (d.layout, d.retention_days, d.start_beep, d.pause_confirmation_tone),
        (RecordingLayout::Stereo, None, false, true)
    );
    // 3 tables, 7 indexes, 2 automatic (UNIQUE path, UNIQUE party), tenants, the trigger.
    let schema = recording_schema(&store);
    assert_eq!(schema.len(), 15, "{schema:#?}");
    assert!(store.list_recordings(&RecordingFilter::default()).unwrap().is_empty());
    assert!(store.unfinished_recordings().unwrap().is_empty());
}

#[test]
fn migration_3_upgrades_a_version_2_database() {
    let db = TempDb::new("v2");
    let config_before = {
        // The database as release 2 left it: a tenant, a user and a finished call.
        let mut raw = rusqlite::Connection::open(&db.0).unwrap();
        raw.pragma_update(None, "foreign_keys", true).unwrap();
        assert_eq!(migrations::run_until(&mut raw, 2).unwrap(), 2);
        raw.execute(
            "INSERT INTO tenants (name, domain, is_default, audio_recording)
             VALUES ('office', ?1, 1, 1)",
            [DOMAIN],
        )
        .unwrap();
        raw.execute(
            "INSERT INTO users (tenant_id, extension, ha1_md5, ha1_sha256, ha1_realm)
             VALUES (1, '101', ?1, ?2, ?3)",
            (md5_hex(1), sha_hex(2), DOMAIN),
        )
        .unwrap();
        raw.execute(
            "INSERT INTO cdr (call_session_id, tenant_id, caller, caller_kind, callee,
                              callee_kind, direction, started_at, answered_at, ended_at,
                              disposition, hangup_by, hangup_cause, sip_call_id_a)
             VALUES ('old-call', 1, '101', 'internal', '102', 'internal', 'internal', ?1, ?2,
                     ?3, 'answered', 'caller', 'BYE', 'a-old-call')",
            (T0, T0 + 2_000, T0 + 12_400),
        )
        .unwrap();
        let tables: i64 = raw
            .query_row("SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'recording%'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(tables, 0, "version 2 has no recording tables");
        raw.query_row("SELECT version FROM config_version", [], |r| r.get::<_, i64>(0)).unwrap()
    };
    let mut store = Store::open(&db.0).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::latest_version());
    assert_eq!(count(&store, "schema_migrations"), migrations::latest_version() as i64);
    assert_eq!(
        store.config_version().unwrap(),
        config_before,
        "the migration is not configuration"
    );

    // Existing tenants get the defaults; their switches are kept.
    let t = store.tenant_by_name("office").unwrap().expect("data kept");
    assert!(t.audio_recording);
    assert_eq!(store.tenant_recording_options(t.id).unwrap(), TenantRecordingOptions::default());

    // Recordings work on the upgraded database, and link to the CDR written before.
    let id = store.start_recording(&new_recording(t.id, "old-call", "a.wav", T0 + 2_000)).unwrap();
    let rec = store.recording(id).unwrap().unwrap();
    assert_eq!(rec.cdr_id, Some(store.cdr_by_session("old-call").unwrap().unwrap().id));
    let u101 = store.user_by_extension(t.id, "101").unwrap().unwrap().id;
    assert_eq!(rec.parties[0].user_id, Some(u101));

    // The upgraded schema is the one a fresh database gets.
    let fresh = Store::open_in_memory().unwrap();
    assert_eq!(recording_schema(&store), recording_schema(&fresh));
    assert_eq!(cdr_schema(&store), cdr_schema(&fresh));

    drop(store);
    let store = Store::open(&db.0).unwrap();
    assert_eq!(count(&store, "schema_migrations"), migrations::latest_version() as i64, "reopening applies nothing");
    assert_eq!(count(&store, "recordings"), 1);
}

#[test]
fn tenant_recording_options_round_trip_and_are_configuration() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let v0 = store.config_version().unwrap();

    store
        .set_tenant_recording_options(
            t,
            Some(RecordingLayout::Mono),
            Some(Some(90)),
            Some(true),
            Some(false),
        )
        .unwrap();
    let o = store.tenant_recording_options(t).unwrap();
    assert_eq!(
        o,
        TenantRecordingOptions {
            layout: RecordingLayout::Mono,
            retention_days: Some(90),
            start_beep: true,
            pause_confirmation_tone: false,
        }
    );
    let v1 = store.config_version().unwrap();
    assert!(v1 > v0, "recording options are configuration");

    // None leaves an option alone; Some(None) turns retention off.
    store.set_tenant_recording_options(t, None, None, None, Some(true)).unwrap();
    let o = store.tenant_recording_options(t).unwrap();
    assert_eq!((o.layout, o.retention_days, o.start_beep), (RecordingLayout::Mono, Some(90), true));
    assert!(o.pause_confirmation_tone);
    store
        .set_tenant_recording_options(t, Some(RecordingLayout::Stereo), Some(None), None, None)
        .unwrap();
    let o = store.tenant_recording_options(t).unwrap();
    assert_eq!((o.layout, o.retention_days), (RecordingLayout::Stereo, None));
    assert!(store.config_version().unwrap() > v1);

    // The other tenant switches are untouched, and vice versa.
    store.set_tenant_recording(t, Some(true), None).unwrap();
    assert_eq!(store.tenant_recording_options(t).unwrap().layout, RecordingLayout::Stereo);
    assert!(store.tenant(t).unwrap().unwrap().audio_recording);

    let v2 = store.config_version().unwrap();
    for days in [0, MAX_RETENTION_DAYS + 1] {
        match store.set_tenant_recording_options(t, None, Some(Some(days)), None, None) {
            Err(StoreError::Invalid(m)) => assert!(m.contains("retention"), "{m}"),
            other => panic!("{days} days: {other:?}"),
        }
    }
    assert_eq!(store.config_version().unwrap(), v2, "refused before writing");
    assert!(matches!(
        store.set_tenant_recording_options(TenantId(42), None, None, Some(true), None),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.tenant_recording_options(TenantId(42)), Err(StoreError::NotFound(_))));
    // The schema refuses what the setter refuses.
    assert!(store.conn.execute("UPDATE tenants SET recording_layout = 'quad'", []).is_err());
    assert!(store.conn.execute("UPDATE tenants SET retention_days = 0", []).is_err());
    assert!(store.conn.execute("UPDATE tenants SET record_start_beep = 2", []).is_err());
}

#[test]
fn recording_round_trip_with_events_and_cdr_link() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let u101 = store.add_user(new_user(t, "101")).unwrap();

    let mut new = new_recording(t, "sess-1", "2023/11/14/sess-1-audio.wav", T0 + 2_000);
    new.parties.push(RecordingParty::external("+4930123456"));
    new.parties.push(RecordingParty::internal("101")); // twice: stored once
    let id = store.start_recording(&new).unwrap();

    let rec = store.recording(id).unwrap().unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.call_session_id, "sess-1");
    assert_eq!(rec.cdr_id, None, "no CDR yet: the call is still going");
    assert_eq!((rec.tenant.as_str(), rec.tenant_id), ("office", t));
    assert_eq!((rec.kind, rec.format), (RecordingKind::Audio, RecordingFormat::Wav));
    assert_eq!(rec.path, "2023/11/14/sess-1-audio.wav");
    assert_eq!((rec.started_at, rec.ended_at, rec.duration_ms), (T0 + 2_000, None, None));
    assert_eq!(rec.status, RecordingStatus::Recording);
    assert_eq!((rec.layout, rec.sample_rate, rec.channels), (RecordingLayout::Stereo, 8_000, 2));
    assert_eq!(
        rec.parties,
        [
            RecordingParty { party: "101".into(), kind: PartyKind::Internal, user_id: Some(u101) },
            RecordingParty { party: "102".into(), kind: PartyKind::Internal, user_id: None },
            RecordingParty::external("+4930123456"),
        ],
        "101 is a user, 102 has no account"
    );
    assert_eq!(rec.events.len(), 1);
    assert_eq!(
        rec.events[0],
        RecordingEvent {
            at: T0 + 2_000,
            offset_ms: 0,
            event: RecordingEventKind::Start,
            source: ControlSourceKind::Policy,
            actor: "system".into(),
            reason: new.reason.clone(),
        }
    );
    assert_eq!(
        store.recording_by_path("2023/11/14/sess-1-audio.wav").unwrap().as_ref(),
        Some(&rec)
    );
    assert!(store.recording_by_path("nope.wav").unwrap().is_none());
    assert!(store.recording(RecordingId(999)).unwrap().is_none());

    // Pause at 3 s of file, resume: the gap is cut, so the resume has the same offset.
    assert!(
        store
            .add_recording_event(id, &event(T0 + 5_000, 3_000, RecordingEventKind::Pause))
            .unwrap()
    );
    assert_eq!(store.recording(id).unwrap().unwrap().status, RecordingStatus::Paused);
    let mut resume = event(T0 + 9_000, 3_000, RecordingEventKind::Resume);
    resume.source = ControlSourceKind::Message;
    resume.reason = "resume-audio-recording".into();
    assert!(store.add_recording_event(id, &resume).unwrap());
    assert_eq!(store.recording(id).unwrap().unwrap().status, RecordingStatus::Recording);

    // A transfer brings in 103: linked to the running recording.
    let u103 = store.add_user(new_user(t, "103")).unwrap();
    assert!(store.add_recording_party(id, &RecordingParty::internal("103")).unwrap());
    assert!(!store.add_recording_party(id, &RecordingParty::internal("103")).unwrap());

    // The call ends: 12.4 s of call, 4 s paused.
    store.finish_recording(id, &finish(T0 + 12_400, 6_400, RecordingStatus::Completed)).unwrap();

    // The CDR arrives after the recording: the trigger links them.
    let cdr_id = store.insert_cdr(&new_cdr(t, "sess-1", T0)).unwrap();
    let rec = store.recording(id).unwrap().unwrap();
    assert_eq!(rec.cdr_id, Some(cdr_id));
    let stored: Option<i64> =
        store.conn.query_row("SELECT cdr_id FROM recordings", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, Some(cdr_id.0), "linked in the table, not only when read");
    assert_eq!(store.insert_cdr(&new_cdr(t, "sess-1", T0)).unwrap(), cdr_id, "rewrite keeps it");
    assert_eq!(store.recording(id).unwrap().unwrap().cdr_id, Some(cdr_id));

    assert_eq!(rec.status, RecordingStatus::Completed);
    assert_eq!((rec.ended_at, rec.duration_ms), (Some(T0 + 12_400), Some(6_400)));
    assert_eq!(rec.stop_reason.as_deref(), Some("hangup"));
    assert_eq!(rec.parties.last().unwrap().user_id, Some(u103));
    let trace: Vec<_> = rec
        .events
        .iter()
        .map(|e| (e.event, e.offset_ms, e.source, e.actor.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        trace,
        [
            (
                RecordingEventKind::Start,
                0,
                ControlSourceKind::Policy,
                "system",
                new.reason.as_str()
            ),
            (RecordingEventKind::Pause, 3_000, ControlSourceKind::Dtmf, "101", "*48"),
            (
                RecordingEventKind::Resume,
                3_000,
                ControlSourceKind::Message,
                "101",
                "resume-audio-recording"
            ),
            (RecordingEventKind::Stop, 6_400, ControlSourceKind::System, "102", "hangup"),
        ],
        "in the order written; an empty stop reason takes stop_reason"
    );

    // A second recording of the same call (policy turned recording on again) after the
    // CDR exists is linked at once; the session lists both.
    let again = store.start_recording(&new_recording(t, "sess-1", "sess-1-b.wav", T0 + 13_000));
    assert_eq!(store.recording(again.unwrap()).unwrap().unwrap().cdr_id, Some(cdr_id));
    assert_eq!(store.recordings_of_session("sess-1").unwrap().len(), 2);
    assert!(store.recordings_of_session("other").unwrap().is_empty());

    // The JSON form: SPEC §4 fields, RFC 3339 times, lower-case words.
    let json = serde_json::to_value(&rec).unwrap();
    for key in [
        "id",
        "call_session_id",
        "cdr_id",
        "tenant",
        "parties",
        "kind",
        "format",
        "path",
        "started_at",
        "duration_ms",
        "status",
        "events",
    ] {
        assert!(json.get(key).is_some(), "no {key} in {json}");
    }
    assert_eq!(json["id"], id.0);
    assert_eq!(json["cdr_id"], cdr_id.0);
    assert_eq!(json["kind"], "audio");
    assert_eq!(json["format"], "wav");
    assert_eq!(json["status"], "completed");
    assert_eq!(json["started_at"], "2023-11-14T22:13:22.000Z");
    assert_eq!(json["ended_at"], "2023-11-14T22:13:32.400Z");
    assert_eq!(json["duration_ms"], 6_400);
    assert_eq!(json["layout"], "stereo");
    assert_eq!(
        json["parties"][0],
        serde_json::json!({"party": "101", "kind": "internal", "user_id": u101.0})
    );
    assert_eq!(json["parties"][2]["kind"], "external");
    assert!(json["parties"][2]["user_id"].is_null());
    assert_eq!(
        json["events"][1],
        serde_json::json!({
            "at": "2023-11-14T22:13:25.000Z",
            "offset_ms": 3_000,
            "event": "pause",
            "source": "dtmf",
            "actor": "101",
            "reason": "*48",
        })
    );
    let running = serde_json::to_value(store.recording(RecordingId(id.0 + 1)).unwrap()).unwrap();
    assert!(running["ended_at"].is_null() && running["duration_ms"].is_null());
    assert_eq!(running["status"], "recording");
}

#[test]
fn recording_status_transitions() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let id = store.start_recording(&new_recording(t, "s", "s.wav", T0)).unwrap();
    let pause = event(T0 + 1_000, 1_000, RecordingEventKind::Pause);
    let resume = event(T0 + 2_000, 1_000, RecordingEventKind::Resume);
    let invalid = |r: Result<bool, StoreError>| matches!(r, Err(StoreError::Invalid(_)));

    // Resuming a running recording, or pausing a paused one, is a no-op: nothing stored.
    assert!(!store.add_recording_event(id, &resume).unwrap());
    assert!(store.add_recording_event(id, &pause).unwrap());
    assert!(!store.add_recording_event(id, &pause).unwrap());
    assert_eq!(store.recording(id).unwrap().unwrap().events.len(), 2);

    // Only pause and resume go through add_recording_event.
    for kind in [
        RecordingEventKind::Start,
        RecordingEventKind::Stop,
        RecordingEventKind::Recovered,
        RecordingEventKind::Failed,
    ] {
        assert!(invalid(store.add_recording_event(id, &event(T0 + 1_500, 1_000, kind))), "{kind}");
    }
    // Offsets never go back; times never precede the start.
    assert!(invalid(
        store.add_recording_event(id, &event(T0 + 2_000, 999, RecordingEventKind::Resume))
    ));
    assert!(invalid(
        store.add_recording_event(id, &event(T0 - 1, 1_000, RecordingEventKind::Resume))
    ));
    assert!(invalid(
        store
            .add_recording_event(id, &NewRecordingEvent { actor: String::new(), ..resume.clone() })
    ));
    assert_eq!(store.recording(id).unwrap().unwrap().status, RecordingStatus::Paused, "unchanged");

    // finish_recording ends as completed, stopped or failed only; a failure needs its error;
    // the length covers every event.
    for status in [RecordingStatus::Recording, RecordingStatus::Paused, RecordingStatus::Recovered]
    {
        let r = store.finish_recording(id, &finish(T0 + 5_000, 4_000, status));
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{status}: {r:?}");
    }
    let r = store.finish_recording(id, &finish(T0 + 5_000, 4_000, RecordingStatus::Failed));
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = store.finish_recording(id, &finish(T0 + 5_000, 999, RecordingStatus::Stopped));
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = store.finish_recording(id, &finish(T0 - 1, 4_000, RecordingStatus::Stopped));
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");

    // Policy stops it while paused (rule 4: only external parties remain).
    let stop = Finish {
        stop_reason: Some("external-to-external".into()),
        source: ControlSourceKind::Policy,
        actor: "system".into(),
        reason: "only external parties remain and recording between external numbers is off".into(),
        ..finish(T0 + 5_000, 1_000, RecordingStatus::Stopped)
    };
    store.finish_recording(id, &stop).unwrap();
    let rec = store.recording(id).unwrap().unwrap();
    assert_eq!(rec.status, RecordingStatus::Stopped);
    assert_eq!(rec.stop_reason.as_deref(), Some("external-to-external"));
    let last = rec.events.last().unwrap();
    assert_eq!(
        (last.event, last.source, last.reason.as_str()),
        (RecordingEventKind::Stop, ControlSourceKind::Policy, stop.reason.as_str())
    );

    // Ended is ended: no more events, parties, finishes or recovery.
    assert!(invalid(
        store.add_recording_event(id, &event(T0 + 6_000, 1_000, RecordingEventKind::Resume))
    ));
    assert!(invalid(store.add_recording_party(id, &RecordingParty::internal("103"))));
    assert!(matches!(store.finish_recording(id, &stop), Err(StoreError::Invalid(_))));
    assert!(matches!(store.mark_recovered(id, T0 + 9_000, 1_000), Err(StoreError::Invalid(_))));
    assert!(matches!(store.mark_failed(id, T0 + 9_000, None, "x"), Err(StoreError::Invalid(_))));
    assert_eq!(store.recording(id).unwrap().unwrap(), rec, "nothing changed");

    // A write failure ends a recording as failed, with a `failed` event.
    let id2 = store.start_recording(&new_recording(t, "s2", "s2.wav", T0)).unwrap();
    let failed = Finish {
        error: Some("No space left on device (os error 28)".into()),
        stop_reason: None,
        ..finish(T0 + 3_000, 2_500, RecordingStatus::Failed)
    };
    store.finish_recording(id2, &failed).unwrap();
    let rec = store.recording(id2).unwrap().unwrap();
    assert_eq!((rec.status, rec.duration_ms), (RecordingStatus::Failed, Some(2_500)));
    let last = rec.events.last().unwrap();
    assert_eq!((last.event, last.offset_ms), (RecordingEventKind::Failed, 2_500));
    assert_eq!(
        last.reason, "No space left on device (os error 28)",
        "the error, for an empty reason"
    );

    // Unknown recordings.
    let gone = RecordingId(999);
    assert!(matches!(store.add_recording_event(gone, &pause), Err(StoreError::NotFound(_))));
    assert!(matches!(store.finish_recording(gone, &stop), Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.add_recording_party(gone, &RecordingParty::internal("1")),
        Err(StoreError::NotFound(_))
    ));

    // The schema refuses inconsistent rows from other writers.
    for sql in [
        "UPDATE recordings SET status = 'recording' WHERE id = 1", // it has an end
        "UPDATE recordings SET status = 'completed', ended_at = NULL WHERE id = 1",
        "UPDATE recordings SET format = 'mp4' WHERE id = 1", // audio is WAV
        "UPDATE recordings SET path = '/etc/passwd' WHERE id = 1",
        "UPDATE recordings SET channels = 0 WHERE id = 1",
        "UPDATE recording_events SET source = 'carrier-pigeon' WHERE recording_id = 1",
    ] {
        assert!(store.conn.execute(sql, []).is_err(), "{sql}");
    }
}

#[test]
fn unfinished_recordings_and_crash_recovery() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let a = store.start_recording(&new_recording(t, "a", "a.wav", T0)).unwrap();
    let b = store.start_recording(&new_recording(t, "b", "b.wav", T0 + 1_000)).unwrap();
    let c = store.start_recording(&new_recording(t, "c", "c.wav", T0 + 2_000)).unwrap();
    let done = store.start_recording(&new_recording(t, "d", "d.wav", T0 + 3_000)).unwrap();
    store.add_recording_event(b, &event(T0 + 2_000, 1_000, RecordingEventKind::Pause)).unwrap();
    store.finish_recording(done, &finish(T0 + 9_000, 6_000, RecordingStatus::Completed)).unwrap();

    // Left running or paused by the crash, oldest first, with their parties and events.
    let left = store.unfinished_recordings().unwrap();
    assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), [a, b, c]);
    assert_eq!(left[1].status, RecordingStatus::Paused);
    assert_eq!(left[1].events.len(), 2);
    assert_eq!(left[0].parties.len(), 2);

    // a: repaired; b: repaired (shorter than its pause offset: the last second was lost);
    // c: unreadable.
    store.mark_recovered(a, T0 + 60_000, 12_345).unwrap();
    store.mark_recovered(b, T0 + 60_000, 900).unwrap();
    store.mark_failed(c, T0 + 60_000, None, "not a WAV file").unwrap();
    assert!(store.unfinished_recordings().unwrap().is_empty());

    let a = store.recording(a).unwrap().unwrap();
    assert_eq!(
        (a.status, a.duration_ms, a.ended_at),
        (RecordingStatus::Recovered, Some(12_345), None)
    );
    let last = a.events.last().unwrap();
    assert_eq!(
        (last.event, last.at, last.offset_ms, last.source, last.actor.as_str()),
        (RecordingEventKind::Recovered, T0 + 60_000, 12_345, ControlSourceKind::System, "system")
    );
    assert_eq!(store.recording(b).unwrap().unwrap().status, RecordingStatus::Recovered);
    let c = store.recording(c).unwrap().unwrap();
    assert_eq!((c.status, c.duration_ms), (RecordingStatus::Failed, None));
    assert_eq!(c.error.as_deref(), Some("not a WAV file"));
    let last = c.events.last().unwrap();
    assert_eq!(
        (last.event, last.offset_ms, last.reason.as_str()),
        (RecordingEventKind::Failed, 0, "not a WAV file")
    );
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["status"], "recovered");
    assert!(json["ended_at"].is_null());

    // The query finds them through the status index.
    let mut stmt =
        store.conn.prepare(&format!("EXPLAIN QUERY PLAN {}", recordings::UNFINISHED_SQL)).unwrap();
    let plan: Vec<String> =
        stmt.query_map([], |r| r.get::<_, String>(3)).unwrap().collect::<Result<_, _>>().unwrap();
    assert!(plan.join("\n").contains("recordings_status"), "{plan:?}");
}

#[test]
fn recordings_list_newest_first_by_tenant_and_party() {
    let mut store = Store::open_in_memory().unwrap();
    let office = office(&mut store);
    let branch = store.create_tenant("branch", "branch.example", false).unwrap();
    assert!(store.list_recordings(&RecordingFilter::default()).unwrap().is_empty());

    let with = |tenant, session: &str, at, parties: &[RecordingParty]| {
        let mut r = new_recording(tenant, session, &format!("{session}.wav"), at);
        r.parties = parties.to_vec();
        r
    };
    let int = RecordingParty::internal;
    let ext = RecordingParty::external;
    for r in [
        with(office, "o1", T0, &[int("101"), int("102")]),
        with(office, "o2", T0 + 10_000, &[int("102"), ext("+4930111")]),
        with(branch, "b1", T0 + 5_000, &[int("101")]), // another tenant's 101
        with(office, "o3", T0 + 10_000, &[int("101"), ext("101")]), // same start as o2
        with(office, "o4", T0 + 20_000, &[int("103"), ext("101")]), // 101 only as a number
        with(branch, "b2", T0 + 30_000, &[int("200")]),
    ] {
        store.start_recording(&r).unwrap();
    }
    let list = |f: RecordingFilter| store.list_recordings(&f).unwrap();
    let tenant = |t| RecordingFilter { tenant: Some(t), ..Default::default() };
    let party = |t: Option<TenantId>, p: &str| RecordingFilter {
        tenant: t,
        party: Some(p.into()),
        ..Default::default()
    };
    assert_eq!(
        sessions_of(&list(RecordingFilter::default())),
        ["b2", "o4", "o3", "o2", "b1", "o1"]
    );
    assert_eq!(sessions_of(&list(tenant(office))), ["o4", "o3", "o2", "o1"]);
    assert_eq!(sessions_of(&list(tenant(branch))), ["b2", "b1"]);
    assert!(list(tenant(TenantId(99))).is_empty());

    // A user's own recordings: where the extension is an internal party of the tenant.
    assert_eq!(sessions_of(&list(party(Some(office), "101"))), ["o3", "o1"]);
    assert_eq!(sessions_of(&list(party(Some(office), "102"))), ["o2", "o1"]);
    assert_eq!(sessions_of(&list(party(Some(branch), "101"))), ["b1"]);
    assert_eq!(sessions_of(&list(party(None, "101"))), ["o3", "b1", "o1"], "all tenants");
    assert!(list(party(Some(office), "+4930111")).is_empty(), "external numbers are not users");
    assert!(list(party(Some(office), "999")).is_empty());
    let own = list(party(Some(office), "101"));
    assert_eq!(own[0].parties.len(), 2, "all parties come with the row, not only the filtered one");
    assert_eq!(own[0].events.len(), 1);

    assert_eq!(
        sessions_of(&list(RecordingFilter { limit: Some(2), ..Default::default() })),
        ["b2", "o4"]
    );
    assert!(list(RecordingFilter { limit: Some(0), ..Default::default() }).is_empty());
    // since is inclusive, until exclusive.
    assert_eq!(
        sessions_of(&list(RecordingFilter {
            since: Some(T0 + 5_000),
            until: Some(T0 + 20_000),
            ..Default::default()
        })),
        ["o3", "o2", "b1"]
    );
    assert_eq!(
        sessions_of(&list(RecordingFilter {
            tenant: Some(office),
            party: Some("101".into()),
            since: Some(T0 + 1),
            limit: Some(5),
            ..Default::default()
        })),
        ["o3"]
    );

    // The unfiltered listings walk an index instead of sorting the table.
    for (sql, args) in [(recordings::LIST_ALL_SQL, 3), (recordings::LIST_TENANT_SQL, 4)] {
        let params: Vec<i64> = vec![1; args];
        let mut stmt = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("INDEX recordings_"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "sorts instead of walking the index:\n{plan}");
    }
}

#[test]
fn retention_lists_old_finished_recordings_and_deletes_them() {
    let mut store = Store::open_in_memory().unwrap();
    let office = office(&mut store);
    let branch = store.create_tenant("branch", "branch.example", false).unwrap();
    let day = 86_400_000;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = store
            .start_recording(&new_recording(
                office,
                &format!("o{i}"),
                &format!("o{i}.wav"),
                T0 + i * day,
            ))
            .unwrap();
        store
            .add_recording_event(id, &event(T0 + i * day + 1_000, 500, RecordingEventKind::Pause))
            .unwrap();
        if i != 1 {
            store
                .finish_recording(
                    id,
                    &finish(T0 + i * day + 5_000, 4_000, RecordingStatus::Completed),
                )
                .unwrap();
        }
        ids.push(id);
    }
    let old_branch = store.start_recording(&new_recording(branch, "b", "b.wav", T0)).unwrap();
    store
        .finish_recording(old_branch, &finish(T0 + 5_000, 4_000, RecordingStatus::Completed))
        .unwrap();

    // Older than day 3: o0 and o2 (o1 is still running: never listed), oldest first.
    let cutoff = T0 + 3 * day;
    let due = store.recordings_older_than(office, cutoff, 100).unwrap();
    assert_eq!(sessions_of(&due), ["o0", "o2"]);
    assert_eq!(sessions_of(&store.recordings_older_than(office, cutoff, 1).unwrap()), ["o0"]);
    assert!(store.recordings_older_than(office, T0, 100).unwrap().is_empty(), "cutoff exclusive");

    for r in &due {
        assert!(store.delete_recording(r.id).unwrap());
    }
    assert!(!store.delete_recording(due[0].id).unwrap(), "already gone");
    assert!(store.recordings_older_than(office, cutoff, 100).unwrap().is_empty());
    assert_eq!(
        sessions_of(&store.recordings_older_than(branch, cutoff, 100).unwrap()),
        ["b"],
        "per tenant"
    );
    match store.delete_recording(ids[1]) {
        Err(StoreError::Invalid(m)) => assert!(m.contains("paused"), "{m}"),
        other => panic!("deleted a running recording: {other:?}"),
    }
    assert_eq!(count(&store, "recordings"), 4);
    // Parties and events went with their rows.
    assert_eq!(count(&store, "recording_parties"), 8);
    let orphans: i64 = store
        .conn
        .query_row(
            "SELECT COUNT(*) FROM recording_events WHERE recording_id NOT IN (SELECT id FROM recordings)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

#[test]
fn recording_checks_reject_bad_input_and_write_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    let t = office(&mut store);
    let bad = |f: fn(&mut NewRecording)| {
        let mut r = new_recording(t, "bad", "bad.wav", T0);
        f(&mut r);
        r
    };
    let cases: [NewRecording; 17] = [
        bad(|r| r.call_session_id.clear()),
        bad(|r| r.call_session_id = "a b".into()),
        bad(|r| r.path.clear()),
        bad(|r| r.path = "/abs/a.wav".into()),
        bad(|r| r.path = "../a.wav".into()),
        bad(|r| r.path = "a/./b.wav".into()),
        bad(|r| r.path = "a//b.wav".into()),
        bad(|r| r.path = "C:\\rec\\a.wav".into()),
        bad(|r| r.path = "a\nb.wav".into()),
        bad(|r| r.started_at = -1),
        bad(|r| r.format = RecordingFormat::Mp4),
        bad(|r| r.sample_rate = 4_000),
        bad(|r| r.channels = 1), // stereo layout
        bad(|r| r.parties.clear()),
        bad(|r| r.parties[0].party = String::new()),
        bad(|r| {
            r.parties
                .push(RecordingParty { user_id: Some(UserId(1)), ..RecordingParty::external("+1") })
        }),
        bad(|r| r.actor.clear()),
    ];
    for r in &cases {
        match store.start_recording(r) {
            Err(StoreError::Invalid(_)) => {}
            other => panic!("{r:?} accepted: {other:?}"),
        }
    }
    assert_eq!(count(&store, "recordings"), 0);

    // Video is MP4, mono is one channel.
    let mut video = new_recording(t, "v", "v.mp4", T0);
    video.kind = RecordingKind::Video;
    video.format = RecordingFormat::Mp4;
    video.layout = RecordingLayout::Mono;
    video.channels = 1;
    video.sample_rate = 48_000;
    let v = store.start_recording(&video).unwrap();
    let v = store.recording(v).unwrap().unwrap();
    assert_eq!(
        (v.kind, v.format, v.layout, v.channels, v.sample_rate),
        (RecordingKind::Video, RecordingFormat::Mp4, RecordingLayout::Mono, 1, 48_000)
    );

    match store.start_recording(&new_recording(t, "other", "v.mp4", T0)) {
        Err(StoreError::Duplicate(m)) => assert!(m.contains("v.mp4"), "{m}"),
        other => panic!("{other:?}"),
    }
    match store.start_recording(&new_recording(TenantId(42), "x", "x.wav", T0)) {
        Err(StoreError::NotFound(m)) => assert!(m.contains("tenant id 42"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut ghost = new_recording(t, "g", "g.wav", T0);
    ghost.parties =
        vec![RecordingParty { user_id: Some(UserId(77)), ..RecordingParty::internal("101") }];
    assert!(matches!(store.start_recording(&ghost), Err(StoreError::NotFound(_))));
    assert_eq!(count(&store, "recordings"), 1, "a failed start leaves no row behind");
    assert_eq!(count(&store, "recording_events"), 1);
    assert!(validate_recording_path("2024/05/01/abc-audio.wav").is_ok());
}

#[test]
fn recording_batch_commits_what_succeeded() {
    let db = TempDb::new("rec-batch");
    let mut store = Store::open(&db.0).unwrap();
    let t = office(&mut store);
    let (ids, errors) = store
        .recording_batch(|b| {
            let a = b.start_recording(&new_recording(t, "a", "a.wav", T0))?;
            let mut errors = Vec::new();
            // A start that fails half-way (its user is unknown) leaves nothing behind.
            let mut ghost = new_recording(t, "g", "g.wav", T0);
            ghost.parties.push(RecordingParty {
                user_id: Some(UserId(77)),
                ..RecordingParty::internal("107")
            });
            errors.push(b.start_recording(&ghost).unwrap_err());
            errors.push(b.start_recording(&new_recording(t, "dup", "a.wav", T0)).unwrap_err());
            b.add_recording_event(a, &event(T0 + 1_000, 1_000, RecordingEventKind::Pause))?;
            errors.push(
                b.finish_recording(RecordingId(999), &finish(T0, 0, RecordingStatus::Completed))
                    .unwrap_err(),
            );
            b.finish_recording(a, &finish(T0 + 2_000, 1_000, RecordingStatus::Completed))?;
            let c = b.start_recording(&new_recording(t, "c", "c.wav", T0))?;
            Ok((vec![a, c], errors))
        })
        .unwrap();
    assert!(matches!(errors[0], StoreError::NotFound(_)));
    assert!(matches!(errors[1], StoreError::Duplicate(_)));
    assert!(matches!(errors[2], StoreError::NotFound(_)));

    let other = Store::open(&db.0).unwrap();
    let all = other.list_recordings(&RecordingFilter::default()).unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [ids[1], ids[0]]);
    assert_eq!(all[1].events.len(), 3);
    assert_eq!(all[1].status, RecordingStatus::Completed);
    assert_eq!(count(&other, "recording_parties"), 4, "none from the failed start");

    // An error returned from the closure rolls back the whole batch.
    let r: Result<(), StoreError> = store.recording_batch(|b| {
        b.start_recording(&new_recording(t, "x", "x.wav", T0))?;
        Err(StoreError::Invalid("changed my mind".into()))
    });
    assert!(r.is_err());
    assert!(other.recording_by_path("x.wav").unwrap().is_none());
}

#[test]
fn recording_writes_do_not_move_config_version() {
    let db = TempDb::new("rec-config");
    let mut server = Store::open(&db.0).unwrap();
    let t = office(&mut server);
    let cv = server.config_version().unwrap();
    let dv = server.data_version().unwrap();

    // The PBX's recording writer is another connection.
    let mut writer = Store::open(&db.0).unwrap();
    let id = writer.start_recording(&new_recording(t, "s", "s.wav", T0)).unwrap();
    writer.add_recording_event(id, &event(T0 + 1_000, 1_000, RecordingEventKind::Pause)).unwrap();
    writer.finish_recording(id, &finish(T0 + 2_000, 1_000, RecordingStatus::Completed)).unwrap();
    writer.insert_cdr(&new_cdr(t, "s", T0)).unwrap(); // the linking trigger
    writer.delete_recording(id).unwrap();
    assert_ne!(server.data_version().unwrap(), dv);
    assert_eq!(server.config_version().unwrap(), cv, "recordings are not configuration");

    writer.set_tenant_recording_options(t, None, None, Some(true), None).unwrap();
    assert_ne!(server.config_version().unwrap(), cv, "recording options are");
}

#[test]
fn recording_words_round_trip() {
    fn check<T>(all: &[T], words: &[&str])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + serde::Serialize,
        T: std::str::FromStr<Err = StoreError>,
    {
        let got: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(got, words);
        for v in all {
            assert_eq!(v.to_string().parse::<T>().unwrap(), *v);
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{v}\""));
        }
    }
    check(RecordingKind::ALL, &["audio", "video"]);
    check(RecordingFormat::ALL, &["wav", "mp4"]);
    check(
        RecordingStatus::ALL,
        &["recording", "paused", "completed", "stopped", "failed", "recovered"],
    );
    check(RecordingEventKind::ALL, &["start", "pause", "resume", "stop", "recovered", "failed"]);
    check(ControlSourceKind::ALL, &["dtmf", "info", "inband", "message", "policy", "system"]);
    check(RecordingLayout::ALL, &["stereo", "mono"]);
    assert_eq!(RecordingLayout::default(), RecordingLayout::Stereo);
    assert_eq!(RecordingKind::Video.format(), RecordingFormat::Mp4);
    assert!(RecordingStatus::Paused.is_running() && !RecordingStatus::Recovered.is_running());
    assert_eq!(
        "quad".parse::<RecordingLayout>().unwrap_err().to_string(),
        "unknown recording layout \"quad\": use stereo, mono"
    );
}

#[test]
fn recordings_1000_listing() {
    let db = TempDb::new("rec-1000");
    let mut store = Store::open(&db.0).unwrap();
    let t = office(&mut store);
    let started = Instant::now();
    let ids = store
        .recording_batch(|b| {
            let mut ids = Vec::with_capacity(1_000);
            for i in 0..1_000i64 {
                let at = T0 + i * 60_000;
                let mut r = new_recording(t, &format!("s{i:04}"), &format!("s{i:04}.wav"), at);
                r.parties = vec![
                    RecordingParty::internal(format!("{}", 100 + i % 20)),
                    RecordingParty::external(format!("+49301234{i:04}")),
                ];
                let id = b.start_recording(&r)?;
                b.add_recording_event(id, &event(at + 1_000, 1_000, RecordingEventKind::Pause))?;
                b.add_recording_event(id, &event(at + 2_000, 1_000, RecordingEventKind::Resume))?;
                b.finish_recording(id, &finish(at + 30_000, 28_000, RecordingStatus::Completed))?;
                ids.push(id);
            }
            Ok(ids)
        })
        .unwrap();
    let write_time = started.elapsed();

    drop(store);
    let store = Store::open(&db.0).unwrap();
    let started = Instant::now();
    let all = store.list_recordings(&RecordingFilter::default()).unwrap();
    let list_time = started.elapsed();
    assert_eq!(all.len(), 1_000);
    assert_eq!(all[0].id, ids[999]);
    assert_eq!(all.last().unwrap().id, ids[0]);
    assert!(all.iter().all(|r| r.parties.len() == 2 && r.events.len() == 4));
    assert!(all.windows(2).all(|w| w[0].started_at >= w[1].started_at));

    let started = Instant::now();
    let page = store
        .list_recordings(&RecordingFilter {
            tenant: Some(t),
            limit: Some(50),
            ..Default::default()
        })
        .unwrap();
    let page_time = started.elapsed();
    assert_eq!(page.len(), 50);
    assert_eq!(page[0].call_session_id, "s0999");

    let started = Instant::now();
    let own = store
        .list_recordings(&RecordingFilter {
            tenant: Some(t),
            party: Some("105".into()),
            ..Default::default()
        })
        .unwrap();
    let own_time = started.elapsed();
    assert_eq!(own.len(), 50, "every 20th call");
    assert!(own.iter().all(|r| r.parties[0].party == "105"));
    let json = serde_json::to_string(&all).unwrap();
    eprintln!(
        "1,000 recordings: write {write_time:?}; list all {list_time:?} ({} KB of JSON), \
         newest 50 {page_time:?}, one user's 50 {own_time:?}",
        json.len() / 1024
    );
}
