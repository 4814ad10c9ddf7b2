//! The transaction layer: every transaction of one SIP endpoint, the matching of messages
//! to them (§17.1.3, §17.2.3), and one timer heap for all their deadlines.
//!
//! Sized for a PBX: hundreds of thousands of server transactions waiting out Timer J.
//! Each keeps only its state, its encoded last response (`Bytes`) and its matching key;
//! lookups are hash-map hits and timers are heap operations, never scans.

use super::client::{ClientEntry, ClientMachine};
use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::config::TimerConfig;
use super::error::TxError;
use super::event::{Incoming, ResponseEvent, StatelessMessage, TxEvent};
use super::id::{ClientTxId, IdBuildHasher, ServerTxId};
use super::key::{ClientKey, ServerKey};
use super::machine::TxState;
use super::server::ServerEntry;
use super::timers::{TimerQueue, TxRef};
use crate::message::stamp_received;
use crate::transport::{Peer, Transmit};
use bytes::Bytes;
use rsip::{Method, Request, Response};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

mod inbound;

type IdMap<K, V> = HashMap<K, V, IdBuildHasher>;

/// All client and server transactions of one endpoint. See the module docs of
/// [`crate::transaction`] for how to drive it.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    next_id: u64,
    servers: IdMap<ServerTxId, ServerEntry>,
    server_index: HashMap<ServerKey, ServerTxId>,
    clients: IdMap<ClientTxId, ClientEntry>,
    client_index: HashMap<ClientKey, ClientTxId>,
    /// Client transactions by destination, so a transport error reaches exactly them.
    clients_by_peer: HashMap<Peer, HashSet<ClientTxId, IdBuildHasher>>,
    timers: TimerQueue,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    pub fn new(config: TimerConfig) -> Self {
        Self {
            config,
            next_id: 0,
            servers: IdMap::default(),
            server_index: HashMap::new(),
            clients: IdMap::default(),
            client_index: HashMap::new(),
            clients_by_peer: HashMap::new(),
            timers: TimerQueue::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// A request from the network. Returns what the TU must handle: a new request, a
    /// CANCEL of a pending INVITE, or an ACK for a 2xx. Retransmissions, the ACKs of our
    /// non-2xx finals and unmatched CANCELs (answered 481 here) return None.
    pub fn handle_request(
        &mut self,
        now: Instant,
        mut req: Request,
        from: Peer,
    ) -> Option<Incoming> {
        stamp_received(&mut req, from.addr);
        let incoming = match req.method {
            Method::Ack => self.on_ack(now, req, from),
            Method::Cancel => self.on_cancel(now, req, from),
            _ => self.on_request(now, req, from),
        };
        self.prune();
        incoming
    }

    /// A response from the network. Returns it with its transaction when the TU must see
    /// it; retransmissions the transaction absorbs and stray responses return None.
    pub fn handle_response(
        &mut self,
        now: Instant,
        resp: Response,
        from: Peer,
    ) -> Option<ResponseEvent> {
        let Some(key) = ClientKey::of_response(&resp).ok().flatten() else {
            tracing::debug!(%from, "response without a top Via branch dropped");
            return None;
        };
        let Some(&id) = self.client_index.get(&key) else {
            tracing::debug!(%from, "stray response dropped");
            return None;
        };
        let entry = self.clients.get_mut(&id)?;
        let out = entry.on_response(now, &self.config, resp);
        if let Some(bytes) = out.transmit {
            self.transmits.push_back(Transmit {
                peer: entry.peer,
                bytes,
            });
        }
        self.settle_client(id);
        self.prune();
        out.response.map(|response| ResponseEvent { id, response })
    }

    /// Starts a client transaction for `req` (anything but ACK) and sends it to `to`. The
    /// request must already carry its top Via with the branch that names the transaction.
    pub fn send_request(
        &mut self,
        now: Instant,
        req: Request,
        to: Peer,
    ) -> Result<ClientTxId, TxError> {
        if req.method == Method::Ack {
            return Err(TxError::AckIsStateless);
        }
        let key = ClientKey::of_request(&req)?.ok_or(TxError::MissingBranch)?;
        if self.client_index.contains_key(&key) {
            return Err(TxError::DuplicateBranch);
        }
        let reliable = to.transport.is_reliable();
        let (machine, bytes) = if req.method == Method::Invite {
            let (m, bytes) = ClientInvite::new(now, &self.config, reliable, req)?;
            (ClientMachine::Invite(Box::new(m)), bytes)
        } else {
            let (m, bytes) = ClientNonInvite::new(now, &self.config, reliable, req);
            (ClientMachine::NonInvite(m), bytes)
        };
        let id = ClientTxId(self.next_id());
        self.transmits.push_back(Transmit { peer: to, bytes });
        self.client_index.insert(key.clone(), id);
        self.clients_by_peer.entry(to).or_default().insert(id);
        self.clients.insert(
            id,
            ClientEntry {
                key,
                peer: to,
                machine,
                scheduled: None,
            },
        );
        self.settle_client(id);
        self.prune();
        Ok(id)
    }

    /// Sends the TU's response through server transaction `id`. It goes where responses to
    /// that request go (§18.2.2: the stamped Via on UDP, the same connection on TCP/TLS).
    pub fn send_response(
        &mut self,
        now: Instant,
        id: &ServerTxId,
        resp: Response,
    ) -> Result<(), TxError> {
        let entry = self
            .servers
            .get_mut(id)
            .ok_or(TxError::UnknownTransaction)?;
        let bytes = entry.send_response(now, &self.config, resp)?;
        self.transmits.push_back(Transmit {
            peer: entry.peer,
            bytes,
        });
        self.settle_server(*id);
        self.prune();
        Ok(())
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, or a stateless reply.
    pub fn send_stateless(&mut self, msg: impl Into<StatelessMessage>, to: Peer) {
        let bytes = match msg.into() {
            StatelessMessage::Message(m) => Bytes::from(crate::serialize::encode(&m)),
            StatelessMessage::Encoded(bytes) => bytes,
        };
        self.transmits.push_back(Transmit { peer: to, bytes });
    }

    /// The driver could not deliver to `peer` (TCP connect failed, ICMP unreachable): the
    /// client transactions towards it end (§17.1.1.2, §17.1.2.2). Those still waiting for
    /// a final response report `TxEvent::TransportError`.
    pub fn handle_transport_error(&mut self, peer: Peer) {
        let Some(ids) = self.clients_by_peer.remove(&peer) else {
            return;
        };
        let mut ids: Vec<ClientTxId> = ids.into_iter().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(entry) = self.clients.get_mut(&id) else {
                continue;
            };
            if matches!(
                entry.state(),
                TxState::Calling | TxState::Trying | TxState::Proceeding
            ) {
                self.events.push_back(TxEvent::TransportError { id });
            }
            entry.on_transport_error();
            self.settle_client(id);
        }
        self.prune();
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, tx)) = self.timers.pop_due(now) {
            match tx {
                TxRef::Server(n) => self.fire_server(now, ServerTxId(n), at),
                TxRef::Client(n) => self.fire_client(now, ClientTxId(n), at),
            }
        }
        self.prune();
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called: the earliest deadline of any
    /// transaction, or None when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|(at, _)| at)
    }

    /// The state of a live server transaction; None once it has ended.
    pub fn server_state(&self, id: &ServerTxId) -> Option<TxState> {
        self.servers.get(id).map(ServerEntry::state)
    }

    /// The state of a live client transaction; None once it has ended.
    pub fn client_state(&self, id: &ClientTxId) -> Option<TxState> {
        self.clients.get(id).map(ClientEntry::state)
    }

    /// Live server transactions, for metrics.
    pub fn server_transactions(&self) -> usize {
        self.servers.len()
    }

    /// Live client transactions, for metrics.
    pub fn client_transactions(&self) -> usize {
        self.clients.len()
    }

    /// Timer-heap entries, live and stale: lazy deletion must keep this near the number of
    /// transactions.
    #[cfg(test)]
    pub(crate) fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// The earliest deadline of any transaction, found by a scan: what `poll_timeout`
    /// must never be later than.
    #[cfg(test)]
    pub(crate) fn scan_earliest_deadline(&self) -> Option<Instant> {
        let servers = self.servers.values().filter_map(ServerEntry::next_deadline);
        let clients = self.clients.values().filter_map(ClientEntry::next_deadline);
        servers.chain(clients).min()
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn fire_server(&mut self, now: Instant, id: ServerTxId, at: Instant) {
        let Some(entry) = self.servers.get_mut(&id) else {
            return;
        };
        if entry.scheduled != Some(at) {
            return; // stale heap entry
        }
        entry.scheduled = None;
        let out = entry.on_timer(now, &self.config);
        if let Some(bytes) = out.transmit {
            self.transmits.push_back(Transmit {
                peer: entry.peer,
                bytes,
            });
        }
        if out.timed_out {
            self.events.push_back(TxEvent::ServerTimeout { id });
        }
        self.settle_server(id);
    }

    fn fire_client(&mut self, now: Instant, id: ClientTxId, at: Instant) {
        let Some(entry) = self.clients.get_mut(&id) else {
            return;
        };
        if entry.scheduled != Some(at) {
            return; // stale heap entry
        }
        entry.scheduled = None;
        let out = entry.on_timer(now, &self.config);
        if let Some(bytes) = out.transmit {
            self.transmits.push_back(Transmit {
                peer: entry.peer,
                bytes,
            });
        }
        if out.timed_out {
            self.events.push_back(TxEvent::ClientTimeout { id });
        }
        self.settle_client(id);
    }

    /// After any input to server transaction `id`: drop it if it ended, else make sure the
    /// heap will wake it in time.
    fn settle_server(&mut self, id: ServerTxId) {
        let Some(entry) = self.servers.get_mut(&id) else {
            return;
        };
        if entry.state() != TxState::Terminated {
            let next = entry.next_deadline();
            self.timers
                .reschedule(TxRef::Server(id.0), &mut entry.scheduled, next);
            return;
        }
        let Some(entry) = self.servers.remove(&id) else {
            return;
        };
        if self.server_index.get(&entry.key) == Some(&id) {
            self.server_index.remove(&entry.key);
        }
    }

    /// After any input to client transaction `id`: as `settle_server`.
    fn settle_client(&mut self, id: ClientTxId) {
        let Some(entry) = self.clients.get_mut(&id) else {
            return;
        };
        if entry.state() != TxState::Terminated {
            let next = entry.next_deadline();
            self.timers
                .reschedule(TxRef::Client(id.0), &mut entry.scheduled, next);
            return;
        }
        let Some(entry) = self.clients.remove(&id) else {
            return;
        };
        if self.client_index.get(&entry.key) == Some(&id) {
            self.client_index.remove(&entry.key);
        }
        if let Some(set) = self.clients_by_peer.get_mut(&entry.peer) {
            set.remove(&id);
            if set.is_empty() {
                self.clients_by_peer.remove(&entry.peer);
            }
        }
    }

    /// Pops stale entries off the top of the heap, so `poll_timeout` does not report a
    /// deadline of a transaction that has ended or moved.
    fn prune(&mut self) {
        while let Some((at, tx)) = self.timers.peek() {
            let live = match tx {
                TxRef::Server(n) => self
                    .servers
                    .get(&ServerTxId(n))
                    .is_some_and(|e| e.scheduled == Some(at)),
                TxRef::Client(n) => self
                    .clients
                    .get(&ClientTxId(n))
                    .is_some_and(|e| e.scheduled == Some(at)),
            };
            if live {
                return;
            }
            self.timers.pop();
        }
    }
}
