//! The highest nonce-count accepted per nonce, so a captured request cannot be replayed.
//!
//! A record is made only when a nonce is first used successfully, and is kept until
//! that nonce has surely expired. Records are 16 bytes in the map plus 8 in the queue,
//! with no heap data of their own, so millions of live nonces stay affordable.
//! Expired records are pruned from the front of a queue in first-use order, so each
//! call does work proportional to what it removes, never a scan.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

/// Recorded for nonces used without qop: RFC 2069 nonces are good for one request.
pub(crate) const SINGLE_USE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Record {
    last_nc: u32,
    /// When the record was made, in server seconds. The nonce was issued no later, so
    /// once this is expired the nonce is too, and the record can go.
    first_used_secs: u32,
}

pub(crate) struct ReplayGuard {
    records: HashMap<u64, Record>,
    /// Nonce ids in the order their records were made, which is also the order of
    /// `first_used_secs` because the server's clock never runs backwards.
    order: VecDeque<u64>,
    max_records: usize,
    /// Nonces issued at or before this second are refused as stale: set when records
    /// are evicted under `max_records` pressure, since forgetting an unexpired record
    /// would otherwise reopen that nonce to replay.
    horizon_secs: Option<u32>,
}

impl ReplayGuard {
    pub fn new(max_records: usize) -> Self {
        Self {
            records: HashMap::new(),
            order: VecDeque::new(),
            max_records: max_records.max(1),
            horizon_secs: None,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether a nonce issued at `issued_secs` predates an eviction.
    pub fn is_behind_horizon(&self, issued_secs: u32) -> bool {
        self.horizon_secs.is_some_and(|h| issued_secs <= h)
    }

    /// Drops records whose nonces have expired, judged by `expired(first_used_secs)`.
    pub fn prune(&mut self, expired: impl Fn(u32) -> bool) {
        while let Some(&id) = self.order.front() {
            match self.records.get(&id) {
                Some(r) if !expired(r.first_used_secs) => break,
                _ => {
                    self.order.pop_front();
                    self.records.remove(&id);
                }
            }
        }
    }

    /// Accepts `nc` for nonce `id` if it is above the last one accepted, and records it.
    /// `Err` carries the last accepted count. A count of 0 is never above anything.
    pub fn accept(&mut self, id: u64, nc: u32, now_secs: u32) -> Result<(), u32> {
        match self.records.entry(id) {
            Entry::Occupied(mut e) => {
                let last = e.get().last_nc;
                if nc <= last {
                    return Err(last);
                }
                e.get_mut().last_nc = nc;
            }
            Entry::Vacant(e) => {
                if nc == 0 {
                    return Err(0);
                }
                e.insert(Record { last_nc: nc, first_used_secs: now_secs });
                self.order.push_back(id);
                self.evict_over_capacity();
            }
        }
        Ok(())
    }

    fn evict_over_capacity(&mut self) {
        while self.records.len() > self.max_records {
            let Some(id) = self.order.pop_front() else { return };
            if let Some(r) = self.records.remove(&id) {
                let h = self.horizon_secs.map_or(r.first_used_secs, |h| h.max(r.first_used_secs));
                self.horizon_secs = Some(h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_rise() {
        let mut g = ReplayGuard::new(10);
        assert_eq!(g.accept(1, 0, 0), Err(0));
        assert_eq!(g.accept(1, 1, 0), Ok(()));
        assert_eq!(g.accept(1, 1, 0), Err(1));
        assert_eq!(g.accept(1, 3, 0), Ok(()));
        assert_eq!(g.accept(1, 2, 0), Err(3));
        assert_eq!(g.accept(2, SINGLE_USE, 0), Ok(()));
        assert_eq!(g.accept(2, SINGLE_USE, 0), Err(SINGLE_USE));
        assert_eq!(g.accept(2, 5, 0), Err(SINGLE_USE));
    }

    #[test]
    fn prunes_from_the_front_only_what_expired() {
        let mut g = ReplayGuard::new(10);
        for id in 0..5u64 {
            g.accept(id, 1, id as u32 * 10).unwrap();
        }
        g.prune(|first_used| first_used < 25);
        assert_eq!(g.len(), 2);
        assert_eq!(g.accept(3, 1, 50), Err(1));
        assert_eq!(g.accept(0, 1, 50), Ok(()), "pruned records are forgotten");
    }

    #[test]
    fn eviction_raises_the_horizon() {
        let mut g = ReplayGuard::new(2);
        g.accept(1, 1, 5).unwrap();
        g.accept(2, 1, 6).unwrap();
        assert!(!g.is_behind_horizon(0));
        g.accept(3, 1, 7).unwrap();
        assert_eq!(g.len(), 2);
        assert!(g.is_behind_horizon(5));
        assert!(!g.is_behind_horizon(6));
    }
}
