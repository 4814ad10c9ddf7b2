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
        regs.retain(|id, reg| {
            let keep = trunks.iter().any(|t| t.id == *id && reg.matches(t));
            if !keep {
                tracing::info!(trunk = %reg.name(), "trunk removed or changed; its registration stops");
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
        let live: Vec<i64> = regs.keys().copied().collect();
        self.trunk_regs.by_tx.retain(|_, id| live.contains(id));
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
