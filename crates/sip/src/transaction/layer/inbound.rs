//! Requests from the network: matching them to server transactions (§17.2.3), the
//! special cases of ACK and CANCEL (§9.2), and creating new server transactions.

use super::TransactionLayer;
use crate::ids::Tag;
use crate::message::{response_target, response_to, status};
use crate::transaction::event::Incoming;
use crate::transaction::id::ServerTxId;
use crate::transaction::key::ServerKey;
use crate::transaction::machine::{Matched, TxState, wire};
use crate::transaction::server::{ServerEntry, ServerMachine};
use crate::transaction::server_invite::ServerInvite;
use crate::transaction::server_non_invite::ServerNonInvite;
use crate::transport::{Peer, Transmit};
use rsip::message::HeadersExt;
use rsip::{Header, Method, Request, Response, StatusCode};
use std::time::Instant;

impl TransactionLayer {
    /// Any request but ACK and CANCEL: a retransmission, or a new server transaction.
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        req: Request,
        from: Peer,
    ) -> Option<Incoming> {
        let key = server_key(&req, req.method, from)?;
        if let Some(&id) = self.server_index.get(&key) {
            self.matched(now, id, false);
            return None;
        }
        let id = self.create_server(now, key, &req, from);
        Some(Incoming::Request { id, req, from })
    }

    /// §17.2.3: an ACK with the INVITE's branch acknowledges our non-2xx final and stays
    /// here; any other ACK acknowledges a 2xx and belongs to the dialog.
    pub(super) fn on_ack(&mut self, now: Instant, req: Request, from: Peer) -> Option<Incoming> {
        let key = server_key(&req, Method::Invite, from)?;
        match self.server_index.get(&key).copied() {
            Some(id) if self.matched(now, id, true) != Matched::AckToTu => None,
            _ => Some(Incoming::Ack { req, from }),
        }
    }

    /// §9.2: a CANCEL gets its own server transaction, answered here: 200 when it matches a
    /// transaction (the TU hears of it only while that INVITE has no final yet, the one case
    /// where it has anything left to do), 481 when it matches none.
    pub(super) fn on_cancel(&mut self, now: Instant, req: Request, from: Peer) -> Option<Incoming> {
        let own = server_key(&req, Method::Cancel, from)?;
        if let Some(&id) = self.server_index.get(&own) {
            self.matched(now, id, false);
            return None;
        }
        let target = server_key(&req, Method::Invite, from)
            .and_then(|k| self.server_index.get(&k).copied())
            .and_then(|id| {
                self.servers
                    .get(&id)
                    .map(|e| (id, e.state(), e.to_tag().cloned()))
            });
        let (status, tag) = match &target {
            // §9.2: the 200 carries the To tag of the INVITE's responses, if it has any yet.
            Some((_, _, tag)) => (StatusCode::OK, tag.clone()),
            // rsip would print this code's reason as "CallTransactionDoesNotExist".
            None => (status(481, "Call/Transaction Does Not Exist"), None),
        };
        let resp = response_to(&req, status, Some(&tag.unwrap_or_else(Tag::random)));
        let id = self.create_server(now, own, &req, from);
        if let Err(error) = self.send_response(now, &id, resp) {
            tracing::warn!(%error, "answering a CANCEL failed");
        }
        match target {
            Some((invite, TxState::Proceeding, _)) => Some(Incoming::Cancel { invite, req, from }),
            _ => None,
        }
    }

    /// Hands a matched request (a retransmission or an ACK) to server transaction `id`.
    pub(super) fn matched(&mut self, now: Instant, id: ServerTxId, is_ack: bool) -> Matched {
        let Some(entry) = self.servers.get_mut(&id) else {
            return Matched::Absorb;
        };
        let outcome = entry.on_request(now, &self.config, is_ack);
        if let Matched::Retransmit(bytes) = &outcome {
            self.transmits.push_back(Transmit {
                peer: entry.peer,
                bytes: bytes.clone(),
            });
        }
        self.settle_server(id);
        outcome
    }

    pub(super) fn create_server(
        &mut self,
        now: Instant,
        key: ServerKey,
        req: &Request,
        from: Peer,
    ) -> ServerTxId {
        let id = ServerTxId(self.next_id());
        let reliable = from.transport.is_reliable();
        let peer = response_peer(req, from);
        let machine = if key.method() == Method::Invite {
            // §17.2.1: 100 Trying at once, so the client stops retransmitting the INVITE
            // however long the TU takes.
            let trying = wire(&response_to(req, StatusCode::Trying, None).into());
            self.transmits.push_back(Transmit {
                peer,
                bytes: trying.clone(),
            });
            ServerMachine::Invite(Box::new(ServerInvite::new(reliable, trying)))
        } else {
            ServerMachine::NonInvite(ServerNonInvite::new(now, &self.config, reliable))
        };
        self.server_index.insert(key.clone(), id);
        self.servers.insert(
            id,
            ServerEntry {
                key,
                peer,
                machine,
                scheduled: None,
            },
        );
        self.settle_server(id);
        id
    }
}

/// The key of `req`'s `method` transaction; None (and the request dropped) when its
/// headers are too broken to match. `parse` lets no such request through.
fn server_key(req: &Request, method: Method, from: Peer) -> Option<ServerKey> {
    ServerKey::of_request(req, method)
        .map_err(|error| tracing::debug!(%from, %error, "request dropped: cannot be matched"))
        .ok()
}

/// §18.2.2: responses over TCP/TLS go back on the request's connection; over UDP to the
/// stamped top Via (received/rport, else sent-by), or the source when sent-by is a name.
fn response_peer(req: &Request, from: Peer) -> Peer {
    if from.transport.is_reliable() {
        return from;
    }
    let Ok(via) = req.via_header() else {
        return from;
    };
    // `response_target` reads a response's top Via; a response holding only this request's
    // stamped Via asks it about the request.
    let probe = Response {
        headers: Header::Via(via.clone()).into(),
        ..Default::default()
    };
    response_target(&probe).map_or(from, |addr| Peer {
        transport: from.transport,
        addr,
    })
}
