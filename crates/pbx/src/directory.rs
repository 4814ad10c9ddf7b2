//! The registrar's read-only view of tenants and users, held in memory so a REGISTER
//! costs no database read. Rebuilt from the store when another process (the CLI) changes
//! it, which the serve loop notices through SQLite's data_version.

use crate::policy::{Party, SystemSwitches, TenantSwitches};
use crate::registrar::UserKey;
use crate::store::TenantRecordingOptions;
use std::collections::HashMap;
use std::net::IpAddr;

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
}
