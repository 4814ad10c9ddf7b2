//! Trunks, their routes, and user call forwarding (migration 4).

use super::*;

const DOMAIN: &str = "pbx.test";

fn setup() -> (Store, TenantId) {
    let mut store = Store::open_in_memory().unwrap();
    let t = store.create_tenant("office", DOMAIN, true).unwrap();
    for ext in ["101", "102"] {
        store
            .add_user(NewUser::new(t, ext, hex::encode([1u8; 16]), hex::encode([2u8; 32]), DOMAIN))
            .unwrap();
    }
    (store, t)
}

fn carrier(t: TenantId) -> NewTrunk {
    NewTrunk {
        username: Some("trunkuser".into()),
        password: Some("s3cret".into()),
        dids: vec![("+4930123".into(), "101".into()), ("4930124".into(), "102".into())],
        outbound: vec![r"9(\d+)".into(), r"\+\d{6,15}".into()],
        default_extension: Some("101".into()),
        caller_id: Some("+4930100".into()),
        ..NewTrunk::new(t, "carrier", "127.0.0.2:5070")
    }
}

fn count(store: &Store, table: &str) -> i64 {
    store.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

#[test]
fn add_list_and_remove_a_trunk() {
    let (mut store, t) = setup();
    let before = store.config_version().unwrap();
    let id = store.add_trunk(carrier(t)).unwrap();
    assert!(store.config_version().unwrap() > before, "trunks are configuration");
    let trunks = store.list_trunks(t).unwrap();
    assert_eq!(trunks.len(), 1);
    let tr = &trunks[0];
    assert_eq!(tr.id, id);
    assert_eq!((tr.name.as_str(), tr.host.as_str()), ("carrier", "127.0.0.2:5070"));
    assert_eq!(tr.username.as_deref(), Some("trunkuser"));
    assert!(tr.registers());
    assert_eq!(
        tr.dids,
        vec![
            Did { number: "+4930123".into(), extension: "101".into() },
            Did { number: "4930124".into(), extension: "102".into() }
        ]
    );
    assert_eq!(tr.outbound, vec![r"9(\d+)".to_string(), r"\+\d{6,15}".to_string()]);
    assert_eq!(tr.caller_id.as_deref(), Some("+4930100"));
    assert!(!format!("{tr:?}").contains("s3cret"), "the password is redacted");
    assert!(!serde_json::to_string(tr).unwrap().contains("s3cret"));
    assert_eq!(store.list_all_trunks().unwrap(), trunks);
    assert_eq!(store.trunk_by_name(t, "CARRIER").unwrap().map(|x| x.id), Some(id));

    // IP-authenticated: no credentials.
    let peer = NewTrunk::new(t, "peer", "carrier.example:5060");
    let peer_id = store.add_trunk(peer).unwrap();
    assert!(!store.trunk_by_name(t, "peer").unwrap().unwrap().registers());
    assert!(peer_id > id);

    store.remove_trunk(t, "Carrier").unwrap();
    assert_eq!(count(&store, "trunk_dids"), 0, "DIDs go with the trunk");
    assert_eq!(count(&store, "trunk_outbound"), 0);
    assert_eq!(store.list_trunks(t).unwrap().len(), 1);
    match store.remove_trunk(t, "carrier") {
        Err(StoreError::NotFound(m)) => assert_eq!(m, "no trunk named carrier in tenant office"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trunk_errors_are_typed_and_leave_nothing_behind() {
    let (mut store, t) = setup();
    store.add_trunk(carrier(t)).unwrap();
    let (trunks, dids) = (count(&store, "trunks"), count(&store, "trunk_dids"));

    match store.add_trunk(carrier(t)) {
        Err(StoreError::Duplicate(m)) => assert_eq!(m, "trunk carrier already exists in tenant office"),
        other => panic!("{other:?}"),
    }
    let unknown_ext = NewTrunk { dids: vec![("4930999".into(), "999".into())], ..NewTrunk::new(t, "b", "10.0.0.1:5060") };
    match store.add_trunk(unknown_ext) {
        Err(StoreError::NotFound(m)) => assert!(m.contains("extension 999") && m.contains("office"), "{m}"),
        other => panic!("{other:?}"),
    }
    let unknown_default = NewTrunk { default_extension: Some("999".into()), ..NewTrunk::new(t, "b", "10.0.0.1:5060") };
    assert!(matches!(store.add_trunk(unknown_default), Err(StoreError::NotFound(_))));
    match store.add_trunk(NewTrunk::new(TenantId(77), "b", "10.0.0.1:5060")) {
        Err(StoreError::NotFound(m)) => assert_eq!(m, "tenant id 77 not found"),
        other => panic!("{other:?}"),
    }
    let bad_regex = NewTrunk { outbound: vec!["9(\\d+".into()], ..NewTrunk::new(t, "b", "10.0.0.1:5060") };
    match store.add_trunk(bad_regex) {
        Err(StoreError::Invalid(m)) => {
            assert!(m.starts_with("invalid outbound pattern"), "{m}");
            assert_eq!(m.lines().count(), 1, "one line: {m}");
        }
        other => panic!("{other:?}"),
    }
    let half = NewTrunk { username: Some("u".into()), ..NewTrunk::new(t, "b", "10.0.0.1:5060") };
    assert!(matches!(store.add_trunk(half), Err(StoreError::Invalid(_))));
    let twice = NewTrunk {
        dids: vec![("1".into(), "101".into()), ("1".into(), "102".into())],
        ..NewTrunk::new(t, "b", "10.0.0.1:5060")
    };
    match store.add_trunk(twice) {
        Err(StoreError::Duplicate(m)) => assert_eq!(m, "DID 1 is given twice"),
        other => panic!("{other:?}"),
    }
    for host in ["", ":5060", "a b:5060", "host:0", "host:99999", "[::1", "[nope]:5060", "h:x"] {
        assert!(matches!(store.add_trunk(NewTrunk::new(t, "b", host)), Err(StoreError::Invalid(_))), "{host:?}");
    }
    for number in ["", "+", "12a", "++1"] {
        let n = NewTrunk { caller_id: Some(number.into()), ..NewTrunk::new(t, "b", "10.0.0.1:5060") };
        assert!(matches!(store.add_trunk(n), Err(StoreError::Invalid(_))), "{number:?}");
    }
    assert_eq!((count(&store, "trunks"), count(&store, "trunk_dids")), (trunks, dids), "nothing half-written");
}

#[test]
fn hosts_split_into_name_and_port() {
    assert_eq!(split_trunk_host("sip.carrier.example:5080").unwrap(), ("sip.carrier.example", 5080));
    assert_eq!(split_trunk_host("127.0.0.2").unwrap(), ("127.0.0.2", 5060));
    assert_eq!(split_trunk_host("[::1]:5070").unwrap(), ("[::1]", 5070));
    assert_eq!(split_trunk_host("[::1]").unwrap(), ("[::1]", 5060));
}

#[test]
fn outbound_patterns_match_whole_numbers_and_take_their_group() {
    let strip9 = compile_outbound_pattern(r"9(\d+)").unwrap();
    assert_eq!(outbound_number(&strip9, "9030123").as_deref(), Some("030123"));
    assert_eq!(outbound_number(&strip9, "19030123"), None, "anchored at the start");
    assert_eq!(outbound_number(&strip9, "903012a"), None, "anchored at the end");
    let e164 = compile_outbound_pattern(r"\+\d{6,15}").unwrap();
    assert_eq!(outbound_number(&e164, "+4930123").as_deref(), Some("+4930123"));
    let named = compile_outbound_pattern(r"(0)0(?P<number>\d+)").unwrap();
    assert_eq!(outbound_number(&named, "004930").as_deref(), Some("4930"));
    let alternatives = compile_outbound_pattern(r"1\d\d|0\d+").unwrap();
    assert_eq!(outbound_number(&alternatives, "112").as_deref(), Some("112"));
    assert_eq!(outbound_number(&alternatives, "1123"), None, "the alternation is anchored as a whole");
    assert!(compile_outbound_pattern("").is_err());
    assert!(compile_outbound_pattern(&"a".repeat(300)).is_err());
}

#[test]
fn forwarding_defaults_set_and_clear() {
    let (store, t) = setup();
    let f = store.user_forwarding(t, "101").unwrap();
    assert_eq!(f, Forwarding { always: None, busy: None, no_answer: None, no_answer_secs: 20 });

    let before = store.config_version().unwrap();
    store
        .set_user_forwarding(
            t,
            "101",
            &ForwardingUpdate {
                busy: Some(Some("102".into())),
                no_answer: Some(Some("+4917012345".into())),
                no_answer_secs: Some(15),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(store.config_version().unwrap() > before, "forwarding is configuration");
    let f = store.user_forwarding(t, "101").unwrap();
    assert_eq!(f.busy.as_deref(), Some("102"));
    assert_eq!(f.no_answer.as_deref(), Some("+4917012345"));
    assert_eq!((f.always, f.no_answer_secs), (None, 15));

    // Off clears one, the others stay.
    store.set_user_forwarding(t, "101", &ForwardingUpdate { busy: Some(None), ..Default::default() }).unwrap();
    let f = store.user_forwarding(t, "101").unwrap();
    assert_eq!((f.busy, f.no_answer.as_deref(), f.no_answer_secs), (None, Some("+4917012345"), 15));

    let list = store.list_forwarding(t).unwrap();
    assert_eq!(list.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>(), ["101", "102"]);
    assert_eq!(list[1].1, Forwarding::default());
}

#[test]
fn forwarding_errors() {
    let (store, t) = setup();
    let set = |ext: &str, u: ForwardingUpdate| store.set_user_forwarding(t, ext, &u);
    match set("101", ForwardingUpdate { always: Some(Some("101".into())), ..Default::default() }) {
        Err(StoreError::Invalid(m)) => assert_eq!(m, "extension 101 cannot forward to itself"),
        other => panic!("{other:?}"),
    }
    for bad in ["", "+", "1 2", "+12a", "a@b"] {
        assert!(
            matches!(set("101", ForwardingUpdate { busy: Some(Some(bad.into())), ..Default::default() }), Err(StoreError::Invalid(_))),
            "{bad:?}"
        );
    }
    for secs in [0, 4, 301] {
        assert!(matches!(
            set("101", ForwardingUpdate { no_answer_secs: Some(secs), ..Default::default() }),
            Err(StoreError::Invalid(_))
        ));
    }
    match set("999", ForwardingUpdate { no_answer_secs: Some(30), ..Default::default() }) {
        Err(StoreError::NotFound(m)) => assert_eq!(m, "extension 999 not found in tenant office"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.user_forwarding(t, "101").unwrap(), Forwarding::default(), "nothing changed");
    assert!(matches!(store.user_forwarding(t, "999"), Err(StoreError::NotFound(_))));
}

#[test]
fn the_schema_refuses_what_the_store_refuses() {
    let (store, t) = setup();
    let insert = |sql: &str| store.conn.execute(sql, [t.0]).is_err();
    assert!(insert("INSERT INTO trunks (tenant_id, name, host, username) VALUES (?1, 'x', 'h:1', 'u')"), "half credentials");
    assert!(insert("UPDATE users SET no_answer_secs = 4 WHERE tenant_id = ?1"));
    assert!(insert("UPDATE users SET no_answer_secs = 301 WHERE tenant_id = ?1"));
    assert!(!insert("UPDATE users SET no_answer_secs = 300 WHERE tenant_id = ?1"));
}
