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
    assert_eq!(store.schema_version().unwrap(), 2);
    assert_eq!(count(&store, "schema_migrations"), 2);
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
        7,
        "2 tables, 4 indexes, 1 unique: {:?}",
        cdr_schema(&fresh)
    );

    drop(store);
    let store = Store::open(&db.0).unwrap();
    assert_eq!(count(&store, "schema_migrations"), 2, "reopening applies nothing");
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
