//! The registrar's read-only view of tenants and users, held in memory so a REGISTER
//! costs no database read. Rebuilt from the store when another process (the CLI) changes
//! it, which the serve loop notices through SQLite's data_version.

use crate::policy::{Party, SystemSwitches, TenantSwitches};
use crate::registrar::UserKey;
use crate::store::TenantRecordingOptions;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

pub use crate::store::Forwarding;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantInfo {
    pub id: i64,
    pub name: String,
    pub domain: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAuth {
    /// HA1 for MD5, over the tenant's domain as realm.
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

#[derive(Clone, Debug)]
pub struct Directory {
    by_domain: HashMap<String, TenantInfo>,
    default_tenant: Option<TenantInfo>,
    users: HashMap<UserKey, UserAuth>,
    // Recording switches (SPEC §1); absent entries take the documented defaults.
    system: SystemSwitches,
    tenant_switches: HashMap<i64, TenantSwitches>,
    user_switches: HashMap<UserKey, (bool, bool)>,
    recording_options: HashMap<i64, TenantRecordingOptions>,
    /// Every tenant's trunks, in id order (the order outbound routes are tried in).
    trunks: Vec<Trunk>,
    /// Users' call forwarding; absent entries have none.
    forwarding: HashMap<UserKey, Forwarding>,
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            by_domain: HashMap::new(),
            default_tenant: None,
            users: HashMap::new(),
            system: SystemSwitches { record_between_external_numbers: true },
            tenant_switches: HashMap::new(),
            user_switches: HashMap::new(),
            recording_options: HashMap::new(),
            trunks: Vec::new(),
            forwarding: HashMap::new(),
        }
    }
}

impl Directory {
    pub fn add_tenant(&mut self, tenant: TenantInfo, is_default: bool) {
        if is_default {
            self.default_tenant = Some(tenant.clone());
        }
        self.by_domain.insert(tenant.domain.to_ascii_lowercase(), tenant);
    }

    pub fn add_user(&mut self, key: UserKey, auth: UserAuth) {
        self.users.insert(key, auth);
    }

    /// The tenant a request's domain names. An IP literal, or a host that names no
    /// tenant but is one of ours, falls to the default tenant (phones configured by IP).
    pub fn tenant_for_host(&self, host: &str) -> Option<&TenantInfo> {
        let host = strip_port(host).trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if let Some(t) = self.by_domain.get(&host) {
            return Some(t);
        }
        if host.parse::<IpAddr>().is_ok() || host == "localhost" {
            return self.default_tenant.as_ref();
        }
        None
    }

    pub fn user(&self, key: &UserKey) -> Option<&UserAuth> {
        self.users.get(key)
    }

    /// A tenant's name by id ("" when unknown).
    pub fn tenant_name(&self, tenant_id: i64) -> String {
        self.by_domain.values().find(|t| t.id == tenant_id).map(|t| t.name.clone()).unwrap_or_default()
    }

    pub fn set_system(&mut self, system: SystemSwitches) {
        self.system = system;
    }

    pub fn set_recording_options(&mut self, tenant_id: i64, options: TenantRecordingOptions) {
        self.recording_options.insert(tenant_id, options);
    }

    /// A tenant's recording options (layout, tones); the defaults when unknown.
    pub fn recording_options(&self, tenant_id: i64) -> TenantRecordingOptions {
        self.recording_options.get(&tenant_id).copied().unwrap_or_default()
    }

    pub fn set_tenant_switches(&mut self, tenant_id: i64, switches: TenantSwitches) {
        self.tenant_switches.insert(tenant_id, switches);
    }

    /// A user's (record_audio_calls, record_video_calls).
    pub fn set_user_switches(&mut self, key: UserKey, audio: bool, video: bool) {
        self.user_switches.insert(key, (audio, video));
    }

    pub fn system(&self) -> SystemSwitches {
        self.system
    }

    /// Default off, as SPEC §1 says for the tenant switches.
    pub fn tenant_switches(&self, tenant_id: i64) -> TenantSwitches {
        self.tenant_switches.get(&tenant_id).copied().unwrap_or(TenantSwitches { audio_recording: false, video_recording: false })
    }

    /// The policy's view of an extension (user switches default on).
    pub fn party(&self, key: &UserKey) -> Party {
        let (record_audio, record_video) = self.user_switches.get(key).copied().unwrap_or((true, true));
        Party::Internal { extension: key.extension.clone(), record_audio, record_video }
    }

    pub fn tenants(&self) -> impl Iterator<Item = &TenantInfo> {
        self.by_domain.values()
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }
}

/// A trunk to a carrier as calls see it: where the carrier is (resolved), how it is
/// authenticated, and its inbound and outbound routes (`hark pbx trunk add`).
#[derive(Clone)]
pub struct Trunk {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    /// The carrier's address as configured, `host:port` (for URIs: `sip:NUMBER@host:port`).
    pub host: String,
    /// `host` resolved when the directory was loaded; requests to the carrier go here and
    /// requests from its IP (any port) are the carrier's.
    pub addr: SocketAddr,
    /// Registration credentials (both or neither); also used to answer the carrier's
    /// challenges to our INVITEs.
    pub username: Option<String>,
    pub password: Option<String>,
    /// (DID, extension) pairs, as configured.
    pub dids: Vec<(String, String)>,
    pub default_extension: Option<String>,
    /// The number presented on outbound calls.
    pub caller_id: Option<String>,
    /// Outbound patterns, anchored (see `store::compile_outbound_pattern`).
    pub outbound: Vec<regex::Regex>,
}

impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trunk")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("host", &self.host)
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dids", &self.dids)
            .field("default_extension", &self.default_extension)
            .field("caller_id", &self.caller_id)
            .field("outbound", &self.outbound.iter().map(regex::Regex::as_str).collect::<Vec<_>>())
            .finish()
    }
}

/// Why a stored trunk could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrunkLoadError {
    #[error("trunk {name}: cannot resolve {host}: {reason}")]
    Unresolvable { name: String, host: String, reason: String },
    #[error("trunk {name}: {source}")]
    Invalid { name: String, source: crate::store::StoreError },
}

/// A number without its international prefix ('+' or "00"), for comparing DIDs.
fn national_form(number: &str) -> &str {
    number.strip_prefix('+').or_else(|| number.strip_prefix("00")).unwrap_or(number)
}

impl Trunk {
    /// Builds the in-memory trunk from its stored row: resolves the host (a blocking DNS
    /// lookup for names; IP literals cost nothing) and compiles the outbound patterns.
    pub fn from_store(t: &crate::store::Trunk) -> Result<Trunk, TrunkLoadError> {
        use std::net::ToSocketAddrs;
        let invalid = |source| TrunkLoadError::Invalid { name: t.name.clone(), source };
        let (host, port) = crate::store::split_trunk_host(&t.host).map_err(invalid)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let unresolvable = |reason: String| TrunkLoadError::Unresolvable { name: t.name.clone(), host: t.host.clone(), reason };
        let addrs: Vec<SocketAddr> = (bare, port).to_socket_addrs().map_err(|e| unresolvable(e.to_string()))?.collect();
        // The PBX usually listens on IPv4: prefer an IPv4 address of the carrier.
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| unresolvable("no address".into()))?;
        let outbound = t
            .outbound
            .iter()
            .map(|p| crate::store::compile_outbound_pattern(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        Ok(Trunk {
            id: t.id.0,
            tenant_id: t.tenant_id.0,
            name: t.name.clone(),
            host: t.host.clone(),
            addr,
            username: t.username.clone(),
            password: t.password.clone(),
            dids: t.dids.iter().map(|d| (d.number.clone(), d.extension.clone())).collect(),
            default_extension: t.default_extension.clone(),
            caller_id: t.caller_id.clone(),
            outbound,
        })
    }

    /// True when the PBX registers to this carrier.
    pub fn registers(&self) -> bool {
        self.username.is_some() && self.password.is_some()
    }

    /// The extension a DID of this trunk leads to, without the default destination.
    /// Numbers compare without their international prefix: "+4930123", "004930123" and
    /// "4930123" are the same DID.
    pub fn did_extension(&self, dialled: &str) -> Option<&str> {
        let dialled = dialled.trim();
        if dialled.is_empty() {
            return None;
        }
        self.dids
            .iter()
            .find(|(n, _)| n == dialled)
            .or_else(|| self.dids.iter().find(|(n, _)| national_form(n) == national_form(dialled)))
            .map(|(_, ext)| ext.as_str())
    }

    /// Where an inbound call to `dialled` goes: its DID's extension, else the trunk's
    /// default extension (`None`: no route, refuse the call).
    pub fn inbound_extension(&self, dialled: &str) -> Option<&str> {
        self.did_extension(dialled).or(self.default_extension.as_deref())
    }

    /// The number to send to the carrier for `dialled` when one of this trunk's outbound
    /// patterns matches it (the pattern's `number` or first group, else all of it).
    pub fn outbound_number(&self, dialled: &str) -> Option<String> {
        self.outbound.iter().find_map(|p| crate::store::outbound_number(p, dialled))
    }
}

impl Directory {
    /// Adds a trunk (kept in id order).
    pub fn add_trunk(&mut self, trunk: Trunk) {
        let at = self.trunks.partition_point(|t| t.id < trunk.id);
        self.trunks.insert(at, trunk);
    }

    /// Every tenant's trunks, in id order.
    pub fn trunks(&self) -> &[Trunk] {
        &self.trunks
    }

    pub fn trunk(&self, id: i64) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.id == id)
    }

    /// The trunk whose carrier has address `ip` (from any source port): requests from it
    /// are the carrier's, authenticated by address. The lowest id wins if several trunks
    /// share a carrier.
    pub fn trunk_by_source(&self, ip: IpAddr) -> Option<&Trunk> {
        let ip = ip.to_canonical();
        self.trunks.iter().find(|t| t.addr.ip().to_canonical() == ip)
    }

    /// The first trunk of the tenant (in id order) with an outbound pattern matching
    /// `dialled`, and the number to send it.
    pub fn route_outbound(&self, tenant_id: i64, dialled: &str) -> Option<(&Trunk, String)> {
        self.trunks
            .iter()
            .filter(|t| t.tenant_id == tenant_id)
            .find_map(|t| t.outbound_number(dialled).map(|n| (t, n)))
    }

    pub fn set_forwarding(&mut self, key: UserKey, forwarding: Forwarding) {
        if forwarding == Forwarding::default() {
            self.forwarding.remove(&key);
        } else {
            self.forwarding.insert(key, forwarding);
        }
    }

    /// A user's call forwarding (none, with the default no-answer time, when unset).
    pub fn forwarding(&self, key: &UserKey) -> Forwarding {
        self.forwarding.get(key).cloned().unwrap_or_default()
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map(|h| &host[..h.len() + 1]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_ip_literals_pick_the_tenant() {
        let mut d = Directory::default();
        d.add_tenant(TenantInfo { id: 1, name: "office".into(), domain: "pbx.test".into() }, true);
        d.add_tenant(TenantInfo { id: 2, name: "other".into(), domain: "other.test".into() }, false);
        assert_eq!(d.tenant_for_host("PBX.test").map(|t| t.id), Some(1));
        assert_eq!(d.tenant_for_host("other.test:5060").map(|t| t.id), Some(2));
        assert_eq!(d.tenant_for_host("127.0.0.1").map(|t| t.id), Some(1));
        assert_eq!(d.tenant_for_host("[::1]").map(|t| t.id), Some(1));
        assert_eq!(d.tenant_for_host("evil.example"), None);
    }

    fn stored(id: i64, tenant: i64, host: &str, outbound: &[&str]) -> crate::store::Trunk {
        crate::store::Trunk {
            id: crate::store::TrunkId(id),
            tenant_id: crate::store::TenantId(tenant),
            name: format!("t{id}"),
            host: host.into(),
            username: None,
            password: None,
            default_extension: None,
            caller_id: None,
            dids: vec![crate::store::Did { number: "+4930123".into(), extension: "101".into() }],
            outbound: outbound.iter().map(|s| s.to_string()).collect(),
            created_at: 0,
        }
    }

    #[test]
    fn trunks_resolve_and_route_inbound_by_did() {
        let mut t = Trunk::from_store(&stored(1, 1, "127.0.0.2:5070", &[])).unwrap();
        assert_eq!(t.addr, "127.0.0.2:5070".parse().unwrap());
        assert_eq!(Trunk::from_store(&stored(1, 1, "127.0.0.2", &[])).unwrap().addr.port(), 5060);
        assert_eq!(Trunk::from_store(&stored(1, 1, "[::1]:5080", &[])).unwrap().addr, "[::1]:5080".parse().unwrap());
        assert_eq!(Trunk::from_store(&stored(1, 1, "localhost:5070", &[])).unwrap().addr.port(), 5070);
        for dialled in ["+4930123", "4930123", "004930123", " +4930123 "] {
            assert_eq!(t.inbound_extension(dialled), Some("101"), "{dialled:?}");
        }
        assert_eq!(t.inbound_extension("4930999"), None);
        assert_eq!(t.inbound_extension(""), None);
        t.default_extension = Some("102".into());
        assert_eq!(t.inbound_extension("4930999"), Some("102"));
        assert_eq!(t.did_extension("4930999"), None);
        assert_eq!(t.inbound_extension("+4930123"), Some("101"), "a DID beats the default");
        assert!(matches!(
            Trunk::from_store(&stored(1, 1, "no-such-host.invalid:5060", &[])),
            Err(TrunkLoadError::Unresolvable { .. })
        ));
        assert!(!format!("{:?}", Trunk { password: Some("pw".into()), ..t }).contains("pw\""));
    }

    #[test]
    fn outbound_routes_and_ip_authentication() {
        let mut d = Directory::default();
        // Added out of order: routes are still tried in id order.
        d.add_trunk(Trunk::from_store(&stored(3, 1, "127.0.0.3:5060", &[r"\+\d+"])).unwrap());
        d.add_trunk(Trunk::from_store(&stored(2, 1, "127.0.0.2:5070", &[r"9(\d+)", r"\+49\d+"])).unwrap());
        d.add_trunk(Trunk::from_store(&stored(4, 2, "127.0.0.4:5060", &[r"\d+"])).unwrap());
        assert_eq!(d.trunks().iter().map(|t| t.id).collect::<Vec<_>>(), [2, 3, 4]);

        let (t, n) = d.route_outbound(1, "9030123").unwrap();
        assert_eq!((t.id, n.as_str()), (2, "030123"));
        let (t, n) = d.route_outbound(1, "+4930123").unwrap();
        assert_eq!((t.id, n.as_str()), (2, "+4930123"), "first trunk in id order");
        let (t, n) = d.route_outbound(1, "+3312345").unwrap();
        assert_eq!((t.id, n.as_str()), (3, "+3312345"));
        assert!(d.route_outbound(1, "0301234").is_none());
        assert!(d.route_outbound(1, "101").is_none());
        assert_eq!(d.route_outbound(2, "0301234").map(|(t, _)| t.id), Some(4), "tenants keep their own trunks");
        assert!(d.route_outbound(3, "0301234").is_none());

        assert_eq!(d.trunk_by_source("127.0.0.2".parse().unwrap()).map(|t| t.id), Some(2));
        assert_eq!(d.trunk_by_source("::ffff:127.0.0.3".parse().unwrap()).map(|t| t.id), Some(3));
        assert!(d.trunk_by_source("127.0.0.1".parse().unwrap()).is_none());
        assert_eq!(d.trunk(4).map(|t| t.tenant_id), Some(2));
    }

    #[test]
    fn forwarding_defaults_to_none() {
        let mut d = Directory::default();
        let key = UserKey { tenant_id: 1, extension: "101".into() };
        assert_eq!(d.forwarding(&key), Forwarding { always: None, busy: None, no_answer: None, no_answer_secs: 20 });
        let f = Forwarding { busy: Some("102".into()), no_answer_secs: 10, ..Forwarding::default() };
        d.set_forwarding(key.clone(), f.clone());
        assert_eq!(d.forwarding(&key), f);
    }
}
