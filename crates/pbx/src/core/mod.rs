//! The PBX's sans-IO heart: SIP in, SIP out, no sockets and no clock. The serve loop
//! feeds it what arrives (`handle_inbound`) and the time (`handle_timeout`), and drains
//! what it wants sent (`poll_transmit`) and stored (`poll_event`).

use crate::auth_guard::{AuthGuard, GuardConfig};
use crate::b2bua::{CallConfig, CallKey, CallRecord, Calls, LegSide, LocalAddrs};
use crate::directory::Directory;
use crate::registrar::{apply_register, contacts_for_response, BindingChange, Location, RegistrarConfig, UserKey};
use bytes::Bytes;
use hark_sip::auth::{AuthError, DigestCredentials, DigestServer};
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::{self, Header, Method, Request, SipMessage};
use hark_sip::transaction::{Incoming, ServerTxId, TimerConfig, TransactionLayer};
use hark_sip::transport::{Inbound, Peer, Transmit};
use hark_sip::{response_to, status, NameAddr, SipHeaders, Tag};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, UPDATE, NOTIFY, REFER, REGISTER";
pub const SERVER: &str = concat!("Hark/", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug)]
pub struct CoreConfig {
    pub registrar: RegistrarConfig,
    pub guard: GuardConfig,
    pub nonce_lifetime: Duration,
    pub nonce_secret: [u8; 32],
    /// Digest algorithms in the order challenges offer them.
    pub digest_algorithms: Vec<hark_sip::auth::Algorithm>,
    pub timers: TimerConfig,
    pub calls: CallConfig,
}

/// What the core asks its driver to do besides sending.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreEvent {
    /// Registrations changed; persist them so they survive a restart.
    Bindings(Vec<BindingChange>),
    /// Bind relay ports for `streams` media sections of a new call, then answer with
    /// `PbxCore::handle_relay_started`. `tap`: copy its packets for a recorder.
    RelayStart { call: CallKey, streams: usize, tap: bool },
    /// Where one side of a relayed stream should be sent to (from its SDP); `source_ip`
    /// is that leg's signalling address, from which media is accepted too (a phone behind
    /// NAT writes its private address in SDP); `hold` when no RTP is expected from it.
    RelayUpdate {
        call: CallKey,
        stream: usize,
        side: LegSide,
        rtp: Option<SocketAddr>,
        rtcp: Option<SocketAddr>,
        source_ip: std::net::IpAddr,
        hold: bool,
    },
    /// The call is over: stop its relay.
    RelayStop { call: CallKey },
    /// A finished call for the CDR.
    Cdr(CallRecord),
    /// Start recording the call's audio from its relay tap. The SDPs say which payload
    /// types each side sends (`caller_sdp`: what the caller offered; `callee_sdp`: what
    /// the callee answered).
    RecordStart {
        call: CallKey,
        session: crate::b2bua::SessionId,
        tenant_id: i64,
        /// The tenant's name: recordings are filed under it.
        tenant: String,
        /// (extension or number, reached over a trunk)
        parties: Vec<(String, bool)>,
        caller_sdp: Vec<u8>,
        callee_sdp: Vec<u8>,
        reason: String,
        /// The tenant's file layout (stereo, or mixed mono).
        layout: hark_recorder::Layout,
    },
    /// A party joined a call whose recording goes on (a transfer): it is linked to it.
    RecordParty { call: CallKey, party: String, external: bool },
    /// Another party takes one side of the call's relay (a transfer): the sources of the
    /// party that left may not take it back.
    RelayNewParty { call: CallKey, side: crate::b2bua::LegSide },
    /// Play a short tone to one phone of a call, written into the audio the relay
    /// forwards to it (`formats`: the audio formats of that stream, sender's first).
    PlayTone {
        call: CallKey,
        stream: usize,
        side: crate::b2bua::LegSide,
        tone: hark_media::relay::Tone,
        formats: Vec<hark_media::sdp::PayloadFormat>,
    },
    /// Pause or resume the call's recording.
    RecordControl { call: CallKey, op: hark_recorder::Operation, source: hark_recorder::ControlSource, actor: String },
    /// Finish the call's recording.
    RecordStop { call: CallKey, reason: String },
}

/// Counters for /metrics.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub requests: u64,
    pub malformed: u64,
    pub auth_failures: u64,
    pub bans: u64,
    pub banned_requests: u64,
    pub registers_ok: u64,
}

pub struct PbxCore {
    pub(crate) config: CoreConfig,
    pub(crate) tx: TransactionLayer,
    digest: DigestServer,
    guard: AuthGuard,
    pub(crate) location: Location,
    pub(crate) directory: Directory,
    out: VecDeque<Transmit>,
    pub(crate) events: VecDeque<CoreEvent>,
    stats: Stats,
    pub(crate) calls: Calls,
    pub(crate) local: LocalAddrs,
    /// Wall-clock time at `wall_base.0`, for CDR timestamps (the core reads no clock).
    wall_base: (Instant, SystemTime),
    /// Registrations of the trunks that register to their carrier (core/trunks.rs).
    pub(crate) trunk_regs: trunks::TrunkRegistrations,
}

impl PbxCore {
    pub fn new(config: CoreConfig, directory: Directory, location: Location, now: Instant) -> Self {
        Self {
            tx: TransactionLayer::new(config.timers),
            digest: DigestServer::new(config.nonce_secret, config.nonce_lifetime, now)
                .with_algorithms(&config.digest_algorithms),
            guard: AuthGuard::new(config.guard.clone()),
            location,
            directory,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            calls: Calls::default(),
            local: LocalAddrs { ip: std::net::Ipv4Addr::LOCALHOST.into(), udp_port: 5060, tcp_port: 5060 },
            wall_base: (now, SystemTime::UNIX_EPOCH),
            trunk_regs: trunks::TrunkRegistrations::new(now),
            config,
        }
    }

    /// Where phones reach us (Via, Contact, SDP); set once the sockets are bound.
    pub fn set_local(&mut self, local: LocalAddrs) {
        self.local = local;
    }

    /// Anchors CDR timestamps: `wall` is the wall-clock time at `now`.
    pub fn set_wall_clock(&mut self, now: Instant, wall: SystemTime) {
        self.wall_base = (now, wall);
    }

    /// The instant the wall clock was anchored at (a fixed origin for digit timing).
    pub(crate) fn wall_base_instant(&self) -> Instant {
        self.wall_base.0
    }

    pub(crate) fn wall(&self, now: Instant) -> SystemTime {
        self.wall_base.1 + now.saturating_duration_since(self.wall_base.0)
    }

    pub fn active_calls(&self) -> usize {
        self.calls.active()
    }

    /// Replaces the tenants/users view (after an admin change).
    pub fn set_directory(&mut self, directory: Directory) {
        self.directory = directory;
        self.trunk_regs.directory_changed();
    }

    pub fn registrations(&self) -> usize {
        self.location.len()
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn handle_inbound(&mut self, now: Instant, inbound: Inbound) {
        match inbound {
            Inbound::Message { peer, msg: SipMessage::Request(req) } => {
                self.stats.requests += 1;
                match self.tx.handle_request(now, req, peer) {
                    Some(Incoming::Request { id, req, from }) => self.on_request(now, id, req, from),
                    Some(Incoming::Ack { req, .. }) => self.on_ack(now, &req),
                    Some(Incoming::Cancel { invite, .. }) => self.on_cancel(now, invite),
                    None => {}
                }
            }
            Inbound::Message { peer, msg: SipMessage::Response(resp) } => {
                if let Some(ev) = self.tx.handle_response(now, resp, peer)
                    && !self.on_trunk_response(now, &ev.id, &ev.response)
                {
                    self.on_response(now, ev.id, ev.response, peer);
                }
            }
            Inbound::Malformed { peer, error, raw, answered } => {
                self.stats.malformed += 1;
                tracing::debug!(%peer, %error, "malformed message");
                if answered || self.guard.check(peer.addr.ip(), now) {
                    return;
                }
                // rsip's own error text is parser noise; the phrase says what was wrong.
                let reason = match error {
                    hark_sip::ParseError::Model(_) => "Bad Request (unparsable message)".to_owned(),
                    other => format!("Bad Request ({other})"),
                };
                if let Some(reply) = hark_sip::parse::bad_request_reply(&raw, &reason) {
                    self.out.push_back(Transmit { peer, bytes: Bytes::from(reply) });
                }
            }
            Inbound::Ping { peer } => {
                self.out.push_back(Transmit { peer, bytes: Bytes::from_static(b"\r\n") });
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drive_trunk_registrations(now);
        while let Some(ev) = self.tx.poll_event() {
            if let hark_sip::transaction::TxEvent::ClientTimeout { id } | hark_sip::transaction::TxEvent::TransportError { id } = ev
                && !self.on_trunk_tx_failure(now, &id)
            {
                self.on_client_timeout(now, id);
            }
        }
        self.on_call_timers(now);
        let expired = self.location.expire(now);
        if !expired.is_empty() {
            let changes = expired.into_iter().map(|(u, c)| BindingChange::Remove(u, c)).collect();
            self.events.push_back(CoreEvent::Bindings(changes));
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front().or_else(|| self.tx.poll_transmit())
    }

    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.tx.poll_timeout(), self.location.next_expiry(), self.calls.next_timer(), self.trunk_registrations_timeout()].into_iter().flatten().min()
    }

    fn on_request(&mut self, now: Instant, id: ServerTxId, req: Request, from: Peer) {
        if self.guard.check(from.addr.ip(), now) {
            self.stats.banned_requests += 1;
            self.reply(now, &id, &req, 403, crate::auth_guard::BANNED_REASON, vec![]);
            return;
        }
        match req.method {
            Method::Register => self.on_register(now, id, req, from),
            Method::Options => {
                let headers = vec![
                    Header::Allow(rsip::headers::Allow::new(ALLOW)),
                    Header::Accept(rsip::headers::Accept::new("application/sdp")),
                ];
                self.reply(now, &id, &req, 200, "OK", headers);
            }
            Method::Ack => {}
            _ if req.to_tag().ok().flatten().is_some() => self.on_in_dialog(now, id, req, from),
            Method::Invite => self.on_invite(now, id, req, from),
            Method::Message => self.on_message_out_of_dialog(now, id, req, from),
            // A transfer outside any call would let anyone redirect calls.
            Method::Refer => self.reply(now, &id, &req, 403, "Forbidden (not a party of any call)", vec![]),
            _ => {
                let headers = vec![Header::Allow(rsip::headers::Allow::new(ALLOW))];
                self.reply(now, &id, &req, 501, "Not Implemented", headers);
            }
        }
    }

    fn on_register(&mut self, now: Instant, id: ServerTxId, req: Request, from: Peer) {
        // The AOR names the tenant (its domain) and the user (its user part).
        let to = req.to_value().ok().and_then(|v| NameAddr::parse(v).ok());
        let Some(to) = to else {
            return self.reply(now, &id, &req, 400, "Malformed To", vec![]);
        };
        let Some(tenant) = self.directory.tenant_for_host(to.uri_hostport()).cloned() else {
            return self.reply(now, &id, &req, 404, "Domain Not Served", vec![]);
        };
        let Some(extension) = to.uri_user().map(str::to_owned) else {
            return self.reply(now, &id, &req, 400, "No User In To", vec![]);
        };
        let realm = tenant.domain.clone();
        let key = UserKey { tenant_id: tenant.id, extension: extension.clone() };
        if !self.authenticate(now, &id, &req, from, &realm, &key, false) {
            return;
        }
        match apply_register(&mut self.location, &key, &req, from, now, &self.config.registrar) {
            Ok(changes) => {
                self.stats.registers_ok += 1;
                if !changes.is_empty() {
                    self.events.push_back(CoreEvent::Bindings(changes));
                }
                let headers: Vec<Header> = contacts_for_response(&self.location, &key, now)
                    .into_iter()
                    .map(|c| Header::Contact(rsip::headers::Contact::new(c)))
                    .collect();
                self.reply(now, &id, &req, 200, "OK", headers);
            }
            Err(err) => {
                let mut headers = vec![];
                if let crate::registrar::RegisterError::IntervalTooBrief { min_expires } = err {
                    headers.push(Header::MinExpires(rsip::headers::MinExpires::new(min_expires.to_string())));
                }
                self.reply(now, &id, &req, err.status_code(), &err.to_string(), headers);
            }
        }
    }

    /// Digest authentication of `req` as the user `key` in `realm`: 401 (REGISTER) or,
    /// with `proxy`, 407 (everything else). True when it passed; otherwise the request
    /// has been answered (challenge, 400 or 403).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn authenticate(&mut self, now: Instant, id: &ServerTxId, req: &Request, from: Peer, realm: &str, key: &UserKey, proxy: bool) -> bool {
        let auth_value = req.headers.iter().find_map(|h| match h {
            Header::Authorization(a) if !proxy => Some(a.value().to_owned()),
            Header::ProxyAuthorization(a) if proxy => Some(a.value().to_owned()),
            _ => None,
        });
        let Some(auth_value) = auth_value else {
            self.challenge(now, id, req, realm, false, proxy);
            return false;
        };
        let creds = match DigestCredentials::parse(&auth_value).map_err(AuthError::from) {
            Ok(c) => c,
            // e.g. MD5-sess: offer what we support instead.
            Err(AuthError::UnsupportedAlgorithm(_)) => {
                self.challenge(now, id, req, realm, false, proxy);
                return false;
            }
            Err(_) => {
                self.reply(now, id, req, 400, "Malformed Authorization", vec![]);
                return false;
            }
        };
        let directory = &self.directory;
        let lookup = |username: &str, alg| {
            if username != key.extension {
                return None;
            }
            directory.user(key).map(|u| match alg {
                hark_sip::auth::Algorithm::Md5 => u.ha1_md5.clone(),
                hark_sip::auth::Algorithm::Sha256 => u.ha1_sha256.clone(),
            })
        };
        let uri = req.uri.to_string();
        let method = req.method.to_string();
        match self.digest.verify(now, &method, &uri, &creds, realm, lookup) {
            Ok(_) => true,
            // An out-of-order nonce-count (parallel requests over UDP) is refused like a stale
            // nonce: a fresh challenge, and no mark against the address.
            Err(AuthError::Stale | AuthError::Replayed(_)) => {
                self.challenge(now, id, req, realm, true, proxy);
                false
            }
            Err(AuthError::Malformed(_)) => {
                self.reply(now, id, req, 400, "Malformed Authorization", vec![]);
                false
            }
            Err(err) => {
                self.stats.auth_failures += 1;
                tracing::info!(peer = %from, user = %creds.username, realm = %realm, method = %method, error = %err, "authentication failed");
                if self.guard.record_failure(from.addr.ip(), now) {
                    self.stats.bans += 1;
                    self.reply(now, id, req, 403, crate::auth_guard::BANNED_REASON, vec![]);
                } else {
                    self.challenge(now, id, req, realm, false, proxy);
                }
                false
            }
        }
    }

    fn challenge(&mut self, now: Instant, id: &ServerTxId, req: &Request, realm: &str, stale: bool, proxy: bool) {
        let headers = self
            .digest
            .challenge(now, realm, stale)
            .into_iter()
            .map(|v| {
                if proxy {
                    Header::ProxyAuthenticate(rsip::headers::ProxyAuthenticate::new(v))
                } else {
                    Header::WwwAuthenticate(rsip::headers::WwwAuthenticate::new(v))
                }
            })
            .collect();
        if proxy {
            self.reply(now, id, req, 407, "Proxy Authentication Required", headers);
        } else {
            self.reply(now, id, req, 401, "Unauthorized", headers);
        }
    }

    pub(crate) fn reply(&mut self, now: Instant, id: &ServerTxId, req: &Request, code: u16, reason: &str, extra: Vec<Header>) {
        let mut resp = response_to(req, status(code, reason), Some(&Tag::random()));
        for h in extra {
            resp.headers.push(h);
        }
        resp.headers.push(Header::Server(rsip::headers::Server::new(SERVER)));
        if let Err(e) = self.tx.send_response(now, id, resp) {
            tracing::warn!(error = %e, "could not send response");
        }
    }
}

mod trunks;

#[cfg(test)]
mod tests;
