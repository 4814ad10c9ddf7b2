//! The core's side of trunk registrations: one `TrunkRegistration` per trunk with
//! credentials, kept in step with the directory, driven by the core's timer, its REGISTERs
//! sent in client transactions of the core's transaction layer.

use super::PbxCore;
use crate::trunk_registration::{TrunkRegState, TrunkRegistration};
use hark_sip::rsip::Response;
use hark_sip::transaction::ClientTxId;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// The registrations of all trunks that register, by trunk id.
#[derive(Debug)]
pub(crate) struct TrunkRegistrations {
    regs: BTreeMap<i64, TrunkRegistration>,
    /// The REGISTER transaction in flight per trunk.
    by_tx: HashMap<ClientTxId, i64>,
    /// The directory changed since the registrations were matched to it.
    dirty: bool,
    /// The latest time the core was given (the directory arrives without one).
    last_now: Instant,
}

impl TrunkRegistrations {
    pub(crate) fn new(now: Instant) -> Self {
        Self { regs: BTreeMap::new(), by_tx: HashMap::new(), dirty: true, last_now: now }
    }

    /// The directory was replaced: match the registrations to its trunks at the next
    /// timeout.
    pub(crate) fn directory_changed(&mut self) {
        self.dirty = true;
    }
}

impl PbxCore {
    /// Sends the REGISTERs that are due, after bringing the registrations in line with
    /// the directory (new trunks start registering, removed or changed ones stop).
    pub(crate) fn drive_trunk_registrations(&mut self, now: Instant) {
        self.trunk_regs.last_now = now;
        if self.trunk_regs.dirty {
            self.sync_trunk_registrations(now);
        }
        let local = self.local;
        let ids: Vec<i64> = self.trunk_regs.regs.keys().copied().collect();
        for id in ids {
            let Some(reg) = self.trunk_regs.regs.get_mut(&id) else { continue };
            reg.set_local(local);
            reg.handle_timeout(now);
            if let Some(req) = reg.poll_request(now) {
                let peer = reg.peer();
                self.send_trunk_register(now, id, req, peer);
            }
        }
    }

    fn sync_trunk_registrations(&mut self, now: Instant) {
        self.trunk_regs.dirty = false;
        let trunks: Vec<&crate::directory::Trunk> = self.directory.trunks().iter().filter(|t| t.registers()).collect();
        let regs = &mut self.trunk_regs.regs;
        let mut goodbyes = Vec::new();
        let mut ended = Vec::new();
        regs.retain(|id, reg| {
            let keep = trunks.iter().any(|t| t.id == *id && reg.matches(t));
            if !keep {
                ended.push(*id);
                tracing::info!(trunk = %reg.name(), "trunk removed or changed; its registration stops");
                // Take our binding off the carrier (the old account, the old address).
                if let Some(req) = reg.unregister_request(now) {
                    goodbyes.push((req, reg.peer()));
                }
            }
            keep
        });
        for t in trunks {
            if !regs.contains_key(&t.id)
                && let Some(reg) = TrunkRegistration::new(t, self.local, now)
            {
                regs.insert(t.id, reg);
            }
        }
        // A late answer to an ended registration must not reach its successor (a changed
        // trunk keeps its id).
        self.trunk_regs.by_tx.retain(|_, id| !ended.contains(id));
        for (req, peer) in goodbyes {
            // Untracked: whatever the carrier answers, the registration is over.
            if let Err(e) = self.tx.send_request(now, req, peer) {
                tracing::debug!(error = %e, "un-REGISTER not sent");
            }
        }
    }

    fn send_trunk_register(&mut self, now: Instant, trunk_id: i64, req: hark_sip::rsip::Request, peer: hark_sip::transport::Peer) {
        match self.tx.send_request(now, req, peer) {
            Ok(tx) => {
                self.trunk_regs.by_tx.insert(tx, trunk_id);
            }
            Err(e) => {
                if let Some(reg) = self.trunk_regs.regs.get_mut(&trunk_id) {
                    reg.handle_failure(now, &format!("REGISTER not sent: {e}"));
                }
            }
        }
    }

    /// A final response of a client transaction. True when it answered a trunk's
    /// REGISTER (it is consumed here), false when it belongs to someone else.
    pub(crate) fn on_trunk_response(&mut self, now: Instant, id: &ClientTxId, resp: &Response) -> bool {
        let Some(&trunk_id) = self.trunk_regs.by_tx.get(id) else { return false };
        if resp.status_code.code() < 200 {
            return true;
        }
        self.trunk_regs.by_tx.remove(id);
        let Some(reg) = self.trunk_regs.regs.get_mut(&trunk_id) else { return true };
        if let Some(follow_up) = reg.handle_response(now, resp) {
            let peer = reg.peer();
            self.send_trunk_register(now, trunk_id, follow_up, peer);
        }
        true
    }

    /// A client transaction ended without a final response (timeout, transport error).
    /// True when it was a trunk's REGISTER.
    pub(crate) fn on_trunk_tx_failure(&mut self, now: Instant, id: &ClientTxId) -> bool {
        let Some(trunk_id) = self.trunk_regs.by_tx.remove(id) else { return false };
        if let Some(reg) = self.trunk_regs.regs.get_mut(&trunk_id) {
            reg.handle_failure(now, "no response from the carrier");
        }
        true
    }

    /// When the registrations next need `drive_trunk_registrations`.
    pub(crate) fn trunk_registrations_timeout(&self) -> Option<Instant> {
        let regs = &self.trunk_regs;
        if regs.dirty && (!regs.regs.is_empty() || self.directory.trunks().iter().any(|t| t.registers())) {
            return Some(regs.last_now);
        }
        regs.regs.values().filter_map(TrunkRegistration::next_timeout).min()
    }

    /// Trunks whose carrier currently holds our registration (for /metrics).
    pub fn trunks_registered(&self) -> usize {
        let now = self.trunk_regs.last_now;
        self.trunk_regs.regs.values().filter(|r| r.is_registered(now)).count()
    }

    /// Where the registration of trunk `trunk_id` stands (`None`: it does not register).
    pub fn trunk_registration_state(&self, trunk_id: i64) -> Option<&TrunkRegState> {
        self.trunk_regs.regs.get(&trunk_id).map(TrunkRegistration::state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth_guard::GuardConfig;
    use crate::core::CoreConfig;
    use crate::directory::{Directory, TenantInfo, Trunk};
    use crate::registrar::{Location, RegistrarConfig};
    use hark_sip::parse::parse_datagram;
    use hark_sip::rsip::headers::UntypedHeader;
    use hark_sip::rsip::{Header, Request, SipMessage};
    use hark_sip::transaction::TimerConfig;
    use hark_sip::transport::{Inbound, Peer};
    use hark_sip::{response_to, status, Limits, Tag};
    use std::net::SocketAddr;
    use std::time::Duration;

    const CARRIER: &str = "192.0.2.50:5060";

    fn directory(with_trunk: bool, password: &str) -> Directory {
        let mut d = Directory::default();
        d.add_tenant(TenantInfo { id: 1, name: "office".into(), domain: "pbx.test".into() }, true);
        if with_trunk {
            d.add_trunk(Trunk {
                id: 9,
                tenant_id: 1,
                name: "carrier".into(),
                host: CARRIER.into(),
                addr: CARRIER.parse().unwrap(),
                username: Some("trunkuser".into()),
                password: Some(password.into()),
                dids: vec![],
                default_extension: None,
                caller_id: None,
                outbound: vec![],
            });
            // IP-authenticated: never registers.
            d.add_trunk(Trunk { id: 10, username: None, password: None, ..d.trunk(9).unwrap().clone() });
        }
        d
    }

    fn core(now: Instant, dir: Directory) -> PbxCore {
        let config = CoreConfig {
            registrar: RegistrarConfig::default(),
            guard: GuardConfig::default(),
            nonce_lifetime: Duration::from_secs(300),
            nonce_secret: [7; 32],
            digest_algorithms: vec![hark_sip::auth::Algorithm::Md5],
            timers: TimerConfig::default(),
            calls: Default::default(),
        };
        PbxCore::new(config, dir, Location::default(), now)
    }

    /// The requests the core sends, all to the carrier.
    fn sent(core: &mut PbxCore) -> Vec<Request> {
        let mut out = Vec::new();
        while let Some(t) = core.poll_transmit() {
            assert_eq!(t.peer.addr, CARRIER.parse::<SocketAddr>().unwrap());
            match parse_datagram(&t.bytes, &Limits::default()).unwrap() {
                SipMessage::Request(r) => out.push(r),
                other => panic!("unexpected {other}"),
            }
        }
        out
    }

    fn answer(core: &mut PbxCore, now: Instant, req: &Request, code: u16, extra: Vec<Header>) {
        let mut resp = response_to(req, status(code, ""), Some(&Tag::random()));
        resp.headers.extend(extra);
        let peer = Peer::udp(CARRIER.parse().unwrap());
        core.handle_inbound(now, Inbound::Message { peer, msg: SipMessage::Response(resp) });
    }

    fn has_auth(req: &Request) -> bool {
        req.headers.iter().any(|h| matches!(h, Header::Authorization(_)))
    }

    fn expires(req: &Request) -> Option<String> {
        req.headers.iter().find_map(|h| match h {
            Header::Expires(e) => Some(e.value().to_owned()),
            _ => None,
        })
    }

    #[test]
    fn the_core_registers_its_trunks_and_follows_the_directory() {
        let t0 = Instant::now();
        let mut core = core(t0, directory(true, "pw"));
        assert_eq!(core.poll_timeout(), Some(t0), "a new trunk registers at once");
        core.handle_timeout(t0);
        let reqs = sent(&mut core);
        assert_eq!(reqs.len(), 1, "one REGISTER, none for the IP-authenticated trunk");
        assert!(!has_auth(&reqs[0]));
        assert_eq!(core.trunk_registration_state(9), Some(&TrunkRegState::Registering));
        assert_eq!(core.trunk_registration_state(10), None);

        let challenge = Header::WwwAuthenticate(hark_sip::rsip::headers::WwwAuthenticate::new(
            "Digest realm=\"carrier.test\", nonce=\"n1\", qop=\"auth\"",
        ));
        answer(&mut core, t0, &reqs[0], 401, vec![challenge]);
        let reqs = sent(&mut core);
        assert_eq!(reqs.len(), 1);
        assert!(has_auth(&reqs[0]));
        answer(&mut core, t0, &reqs[0], 200, vec![Header::Expires(hark_sip::rsip::headers::Expires::new("60"))]);
        assert_eq!(core.trunks_registered(), 1);
        assert!(matches!(core.trunk_registration_state(9), Some(TrunkRegState::Registered { .. })));
        assert!(core.poll_timeout().is_some_and(|t| t <= t0 + Duration::from_secs(48)));

        // The refresh is due at 80%.
        let t1 = t0 + Duration::from_secs(48);
        core.handle_timeout(t1);
        let reqs = sent(&mut core);
        assert_eq!(reqs.len(), 1);
        assert!(has_auth(&reqs[0]), "credentials sent unasked");
        answer(&mut core, t1, &reqs[0], 200, vec![]);
        assert_eq!(core.trunks_registered(), 1);

        // The password changes: the old binding is removed, a new registration starts.
        core.set_directory(directory(true, "new"));
        assert!(core.poll_timeout().is_some_and(|t| t <= t1));
        core.handle_timeout(t1);
        let reqs = sent(&mut core);
        assert_eq!(reqs.iter().map(|r| expires(r).unwrap()).collect::<Vec<_>>(), ["0", "300"]);
        assert_eq!(core.trunk_registration_state(9), Some(&TrunkRegState::Registering));

        // The trunk is removed: nothing is registered, nothing more is sent.
        core.set_directory(directory(false, ""));
        core.handle_timeout(t1);
        assert_eq!(sent(&mut core).len(), 0, "not registered yet: nothing to remove");
        assert_eq!(core.trunks_registered(), 0);
        assert_eq!(core.trunk_registration_state(9), None);
        assert!(core.trunk_registrations_timeout().is_none());
    }

    #[test]
    fn a_core_without_registering_trunks_has_no_trunk_timer() {
        let t0 = Instant::now();
        let core = core(t0, directory(false, ""));
        assert!(core.trunk_registrations_timeout().is_none());
    }
}
