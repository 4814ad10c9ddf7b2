//! `hark pbx serve`: the tokio edge around `PbxCore`. One task owns the core and the SIP
//! sockets; HTTP runs beside it; a plain thread writes registrations to SQLite behind the
//! core's back so the hot path never waits on the disk.

use crate::core::{CoreConfig, CoreEvent, PbxCore};
use crate::http::{router, Metrics};
use crate::b2bua::LocalAddrs;
use crate::persist::{load_state, BindingWriter, CdrWriter, RecordingWriter};
use crate::recording::Recorders;
use crate::relays::Relays;
use crate::store::Store;
use hark_sip::transport::{Inbound, SipTransports, Transmit, Transport, TransportConfig};
use hark_media::relay::task::RelayTaskEvent;
use hark_sip::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub rtp_ports: (u16, u16),
    pub sip_trace: bool,
    pub registrar: crate::registrar::RegistrarConfig,
    pub guard: crate::auth_guard::GuardConfig,
    pub digest_algorithms: Vec<hark_sip::auth::Algorithm>,
    pub calls: crate::b2bua::CallConfig,
    /// No RTP from either side of a call for this long hangs it up.
    pub rtp_timeout: Duration,
    /// The address put in SDP and Contact when `sip` binds a wildcard address.
    pub advertise: Option<std::net::IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen for SIP on {addr}: {source}")]
    SipBind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot listen for HTTP on {addr}: {source}")]
    HttpBind { addr: SocketAddr, source: std::io::Error },
    #[error("SIP socket failed: {0}")]
    Socket(std::io::Error),
    #[error("no PBX data in {0}: run `hark pbx init --data {0} --domain DOMAIN` first")]
    NotInitialised(String),
    #[error("{0}")]
    Media(String),
}

/// How often the loop asks SQLite whether another process changed users or settings.
const DIRECTORY_POLL: Duration = Duration::from_millis(250);

pub fn database_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("hark.db")
}

/// Runs until `shutdown` resolves (SIGINT/SIGTERM in the CLI).
pub async fn serve(config: ServeConfig, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServeError> {
    let db = database_path(&config.data_dir);
    if !db.exists() {
        return Err(ServeError::NotInitialised(config.data_dir.display().to_string()));
    }
    let mut store = Store::open(&db)?;
    let settings = store.system_settings()?;
    let now = Instant::now();
    let (directory, location) = load_state(&mut store, now)?;
    let recovered = crate::persist::recover_recordings(&mut store, &config.data_dir.join("recordings"))?;
    if recovered > 0 {
        tracing::warn!(recovered, "recordings left unfinished by the last run were repaired");
    }
    tracing::info!(
        tenants = directory.tenants().count(),
        users = directory.user_count(),
        bindings = location.len(),
        "loaded PBX state"
    );

    let transports = SipTransports::bind(TransportConfig {
        udp: Some(config.sip),
        tcp: Some(config.sip),
        limits: Limits::default(),
    })
    .await
    .map_err(|source| ServeError::SipBind { addr: config.sip, source })?;
    // TCP binds the same port UDP got, so port 0 means one free port for both.
    let udp_addr = transports.local_addr(Transport::Udp).unwrap_or(config.sip);
    let tcp_addr = transports.local_addr(Transport::Tcp).unwrap_or(config.sip);

    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|source| ServeError::HttpBind { addr: config.http, source })?;
    let http_addr = listener.local_addr().map_err(|source| ServeError::HttpBind { addr: config.http, source })?;
    let metrics = Arc::new(Metrics::default());
    let app = router(metrics.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });

    let core_config = CoreConfig {
        registrar: config.registrar.clone(),
        guard: config.guard.clone(),
        nonce_lifetime: Duration::from_secs(300),
        nonce_secret: settings.nonce_secret,
        digest_algorithms: config.digest_algorithms.clone(),
        timers: Default::default(),
        calls: config.calls.clone(),
    };
    let advertised = advertised_ip(config.advertise, udp_addr.ip());
    let mut relays = Relays::new(config.rtp_ports, config.sip.ip(), config.rtp_timeout).map_err(ServeError::Media)?;
    let mut core = PbxCore::new(core_config, directory, location, now);
    core.set_local(LocalAddrs { ip: advertised, udp_port: udp_addr.port(), tcp_port: tcp_addr.port() });
    core.set_wall_clock(Instant::now(), std::time::SystemTime::now());
    let writer = BindingWriter::start(db.clone())?;
    let cdrs = CdrWriter::start(db.clone())?;
    let recording_log = RecordingWriter::start(db.clone())?;
    let (codes_tx, mut codes_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut recorders = Recorders::new(config.data_dir.join("recordings"), recording_log.sender(), codes_tx);
    // data_version moves on any other connection's commit, the registration writer's
    // included; config_version moves only when settings, tenants or users change.
    let mut data_version = store.data_version()?;
    let mut config_version = store.config_version()?;

    // Stable lines on stderr: scripts and tests wait for them.
    eprintln!("SIP listening on udp:{udp_addr}");
    eprintln!("SIP listening on tcp:{tcp_addr}");
    eprintln!("HTTP listening on {http_addr}");
    tracing::info!(%udp_addr, %tcp_addr, %http_addr, %advertised, rtp = ?config.rtp_ports, "PBX ready");
    // Restored registrations count from the first scrape on, not after the first packet.
    publish(&metrics, &core);
    metrics.ready.store(true, Ordering::Relaxed);

    let mut transports = transports;
    // Retention: hourly, off the SIP task (deleting files and rows is slow work).
    let purge_db = db.clone();
    let purge_root = config.data_dir.join("recordings");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let (db, root) = (purge_db.clone(), purge_root.clone());
            match tokio::task::spawn_blocking(move || crate::persist::purge_expired_recordings(&db, &root)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(purged = n, "expired recordings deleted (tenant retention)"),
                Ok(Err(e)) => tracing::error!(error = %e, "retention purge failed"),
                Err(e) => tracing::error!(error = %e, "retention purge panicked"),
            }
        }
    });
    let mut directory_tick = tokio::time::interval(DIRECTORY_POLL);
    directory_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let deadline = core.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            inbound = transports.recv() => {
                let inbound = inbound.map_err(ServeError::Socket)?;
                // SPEC §4: an admin change applies to the next call, even one that follows
                // the command within the directory poll's quarter second.
                if starts_something(&inbound) {
                    refresh_directory(&store, &mut core, &mut data_version, &mut config_version);
                }
                if config.sip_trace {
                    trace_inbound(&inbound);
                }
                core.handle_inbound(Instant::now(), inbound);
            }
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                core.handle_timeout(Instant::now());
            }
            Some(seen) = codes_rx.recv() => {
                let side = if seen.side == hark_media::Side::A { crate::b2bua::LegSide::A } else { crate::b2bua::LegSide::B };
                core.handle_feature_code(Instant::now(), seen.call, side, seen.code, seen.source);
            }
            Some((call, event)) = relays.next_event() => {
                match event {
                    RelayTaskEvent::Silent { seconds } => core.handle_relay_silent(Instant::now(), call, Duration::from_secs(seconds)),
                    RelayTaskEvent::Latched { side, kind, from } => tracing::debug!(?call, ?side, ?kind, %from, "media source latched"),
                    RelayTaskEvent::Stopped { stats } => {
                        for leg in [&stats.a, &stats.b] {
                            metrics.rtp_packets_in.fetch_add(leg.rtp_packets_in, Ordering::Relaxed);
                            metrics.rtp_packets_out.fetch_add(leg.packets_out, Ordering::Relaxed);
                            metrics.rtp_dropped.fetch_add(leg.dropped_foreign + leg.dropped_malformed + leg.dropped_no_destination, Ordering::Relaxed);
                            metrics.rtp_lost.fetch_add(leg.lost(), Ordering::Relaxed);
                            metrics.rtp_send_errors.fetch_add(leg.send_errors, Ordering::Relaxed);
                        }
                    }
                }
            }
            _ = directory_tick.tick() => {
                refresh_directory(&store, &mut core, &mut data_version, &mut config_version);
            }
        }
        // Events before transmits: a relay must be steered to the answer's addresses
        // before the 200/ACK that lets the phones start sending go out. Handling an
        // event can make transmits and more events (a relay started → INVITEs out).
        loop {
            while let Some(event) = core.poll_event() {
                match event {
                    CoreEvent::Bindings(changes) => writer.send(changes),
                    CoreEvent::RelayStart { call, streams, tap } => {
                        let tap = tap.then(|| recorders.tap(call));
                        let ports = relays.start(call, streams, tap);
                        core.handle_relay_started(Instant::now(), call, ports);
                    }
                    CoreEvent::RecordStart { call, session, tenant_id, tenant, parties, caller_sdp, callee_sdp, reason, layout } => {
                        recorders.start(call, &session, tenant_id, &tenant, parties, &caller_sdp, &callee_sdp, reason, layout);
                    }
                    CoreEvent::RelayNewParty { call, side } => relays.new_party(call, side),
                    CoreEvent::RecordParty { call, party, external } => recorders.add_party(call, party, external),
                    CoreEvent::PlayTone { call, stream, side, tone, formats } => relays.play_tone(call, stream, side, tone, &formats),
                    CoreEvent::RecordControl { call, op, source, actor } => recorders.control(call, op, source, actor),
                    CoreEvent::RecordStop { call, reason } => recorders.stop(call, reason),
                    CoreEvent::RelayUpdate { call, stream, side, rtp, rtcp, source_ip, hold } => {
                        relays.update(call, stream, side, rtp, rtcp, source_ip, hold)
                    }
                    CoreEvent::RelayStop { call } => {
                        relays.stop(call);
                        recorders.forget(call);
                    }
                    CoreEvent::Cdr(record) => cdrs.send(record),
                }
            }
            let mut sent = false;
            while let Some(t) = core.poll_transmit() {
                if config.sip_trace {
                    trace_outbound(&t);
                }
                transports.send(t);
                sent = true;
            }
            if !sent {
                break;
            }
        }
        publish(&metrics, &core);
        metrics.recordings_active.store(recorders.active() as u64, Ordering::Relaxed);
    }
    metrics.ready.store(false, Ordering::Relaxed);
    tracing::info!(calls = core.active_calls(), "shutting down: flushing registrations and CDRs");
    recorders.stop_all("shutdown").await;
    drop(recorders);
    relays.stop_all();
    writer.finish();
    cdrs.finish();
    recording_log.finish();
    tracing::info!("stopped");
    Ok(())
}

/// Requests that start a call, a registration or a control action: they must see the
/// latest settings.
fn starts_something(inbound: &Inbound) -> bool {
    use hark_sip::rsip::Method;
    matches!(inbound, Inbound::Message { msg: hark_sip::rsip::SipMessage::Request(r), .. }
        if matches!(r.method, Method::Invite | Method::Register | Method::Message))
}

/// Reloads tenants, users and switches when another process changed them. Cheap when
/// nothing changed: one `PRAGMA data_version`.
fn refresh_directory(store: &Store, core: &mut PbxCore, data_version: &mut i64, config_version: &mut i64) {
    match store.data_version() {
        Ok(v) if v != *data_version => {
            *data_version = v;
            match store.config_version() {
                Ok(c) if c != *config_version => *config_version = c,
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the configuration version");
                    return;
                }
            }
            // Loading resolves trunk host names (a blocking DNS lookup): on a
            // multi-threaded runtime the relays and recorders on this worker move to
            // another while it waits.
            let load = || crate::persist::load_directory(store);
            let loaded = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(load),
                _ => load(),
            };
            match loaded {
                Ok(dir) => {
                    tracing::info!(users = dir.user_count(), "users or settings changed; reloaded");
                    core.set_directory(dir);
                }
                Err(e) => tracing::error!(error = %e, "reloading users failed; keeping the old view"),
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot read the database version"),
    }
}

/// The address phones are told to reach us at: `--advertise`, else the SIP bind address,
/// else (a wildcard bind) the address of the interface with the default route. Finding it
/// connects a UDP socket, which sends nothing.
fn advertised_ip(advertise: Option<std::net::IpAddr>, bound: std::net::IpAddr) -> std::net::IpAddr {
    if let Some(ip) = advertise {
        return ip;
    }
    if !bound.is_unspecified() {
        return bound;
    }
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:9")?;
        s.local_addr()
    });
    match probe {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip(),
        _ => {
            tracing::warn!("cannot tell this machine's address; using 127.0.0.1 in SDP and Contact (set --advertise)");
            std::net::Ipv4Addr::LOCALHOST.into()
        }
    }
}

fn publish(metrics: &Metrics, core: &PbxCore) {
    let s = core.stats();
    metrics.registrations.store(core.registrations() as u64, Ordering::Relaxed);
    metrics.calls_active.store(core.active_calls() as u64, Ordering::Relaxed);
    metrics.requests.store(s.requests, Ordering::Relaxed);
    metrics.malformed.store(s.malformed, Ordering::Relaxed);
    metrics.auth_failures.store(s.auth_failures, Ordering::Relaxed);
    metrics.bans.store(s.bans, Ordering::Relaxed);
    metrics.banned_requests.store(s.banned_requests, Ordering::Relaxed);
    metrics.registers_ok.store(s.registers_ok, Ordering::Relaxed);
    metrics.trunks_registered.store(core.trunks_registered() as u64, Ordering::Relaxed);
}

fn trace_inbound(inbound: &Inbound) {
    match inbound {
        Inbound::Message { peer, msg } => {
            let wire = hark_sip::encode(msg);
            tracing::info!(target: "sip", "<<< from {peer}\n{}", String::from_utf8_lossy(&wire));
        }
        Inbound::Malformed { peer, error, raw, .. } => {
            tracing::info!(target: "sip", "<<< malformed from {peer} ({error})\n{}", String::from_utf8_lossy(raw));
        }
        Inbound::Ping { peer } => tracing::debug!(target: "sip", "<<< keep-alive from {peer}"),
    }
}

fn trace_outbound(t: &Transmit) {
    tracing::info!(target: "sip", ">>> to {}\n{}", t.peer, String::from_utf8_lossy(&t.bytes));
}
