//! The registrar's read-only view of tenants and users, held in memory so a REGISTER
//! costs no database read. Rebuilt from the store when another process (the CLI) changes
//! it, which the serve loop notices through SQLite's data_version.

use crate::registrar::UserKey;
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

#[derive(Clone, Debug, Default)]
pub struct Directory {
    by_domain: HashMap<String, TenantInfo>,
    default_tenant: Option<TenantInfo>,
    users: HashMap<UserKey, UserAuth>,
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
