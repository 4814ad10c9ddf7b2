//! The tokio edge with real UDP sockets on 127.0.0.1: forwarding both ways, RTCP,
//! dropping a foreign source, the tap, silence, port pool release.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hark_media::relay::task::{PortPool, PortPoolError, RelayOptions, RelayTaskEvent, spawn_relay};
use hark_media::{PacketKind, RelayConfig, Side};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(2);

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("timed out waiting for a datagram")
        .unwrap();
    (buf[..n].to_vec(), from)
}

async fn nothing(sock: &UdpSocket) -> bool {
    let mut buf = [0u8; 2048];
    timeout(Duration::from_millis(200), sock.recv_from(&mut buf))
        .await
        .is_err()
}

/// Binds an even port and the next one (a phone's RTP/RTCP pair).
async fn phone() -> (UdpSocket, UdpSocket) {
    for _ in 0..100 {
        let rtp = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((LOOPBACK, port + 1)).await {
            return (rtp, rtcp);
        }
    }
    panic!("no even port pair");
}

// A port range unlikely to collide with other tests on this machine.
fn pool() -> PortPool {
    PortPool::new(42_000, 42_099).unwrap()
}

#[tokio::test]
async fn relays_rtp_and_rtcp_and_drops_a_foreign_source() {
    let pool = pool();
    let (tap_tx, mut tap_rx) = mpsc::channel(64);
    let mut relay = spawn_relay(
        &pool,
        LOOPBACK,
        RelayOptions {
            config: RelayConfig::default(),
            tap: Some(tap_tx),
        },
    )
    .unwrap();
    assert_eq!(pool.in_use(), 2);
    assert_eq!(relay.rtp_port(Side::A) % 2, 0);
    assert_eq!(
        relay.local_rtcp(Side::B).port(),
        relay.rtp_port(Side::B) + 1
    );

    let (caller, caller_rtcp) = phone().await;
    let (callee, callee_rtcp) = phone().await;
    relay
        .update_remote(Side::A, Some(caller.local_addr().unwrap()), None)
        .await
        .unwrap();
    relay
        .update_remote(Side::B, Some(callee.local_addr().unwrap()), None)
        .await
        .unwrap();
    // Commands are handled in order: a stats round trip means both updates are applied.
    relay.stats().await.unwrap();

    // Caller → relay side A → callee, arriving from the relay's side B address.
    let hello = rtp(1, 0xa, b"hello");
    caller
        .send_to(&hello, relay.local_rtp(Side::A))
        .await
        .unwrap();
    let (got, from) = recv(&callee).await;
    assert_eq!(got, hello);
    assert_eq!(from, relay.local_rtp(Side::B));

    // Callee → caller.
    let back = rtp(1, 0xb, b"hi back");
    callee
        .send_to(&back, relay.local_rtp(Side::B))
        .await
        .unwrap();
    let (got, from) = recv(&caller).await;
    assert_eq!(got, back);
    assert_eq!(from, relay.local_rtp(Side::A));

    // RTCP on port + 1 both ways.
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 0xa];
    caller_rtcp
        .send_to(&rr, relay.local_rtcp(Side::A))
        .await
        .unwrap();
    let (got, from) = recv(&callee_rtcp).await;
    assert_eq!(got, rr);
    assert_eq!(from, relay.local_rtcp(Side::B));

    // An injector on another port (same host) is dropped after latching.
    let injector = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    injector
        .send_to(&rtp(2, 0xbad, b"spam"), relay.local_rtp(Side::A))
        .await
        .unwrap();
    assert!(nothing(&callee).await, "foreign packet must not arrive");

    // The latched caller still gets through.
    let again = rtp(2, 0xa, b"still me");
    caller
        .send_to(&again, relay.local_rtp(Side::A))
        .await
        .unwrap();
    assert_eq!(recv(&callee).await.0, again);

    let stats = relay.stats().await.unwrap();
    assert_eq!(stats.a.dropped_foreign, 1);
    assert_eq!(stats.a.rtp_packets_in, 2);
    assert_eq!(stats.b.packets_out, 3); // 2 RTP + 1 RTCP to the callee
    assert_eq!(stats.a.latched_rtp, Some(caller.local_addr().unwrap()));

    // Events: latches were reported.
    let mut latched = Vec::new();
    while let Ok(Some(ev)) = timeout(Duration::from_millis(50), relay.next_event()).await {
        if let RelayTaskEvent::Latched { side, kind, .. } = ev {
            latched.push((side, kind));
        }
    }
    assert!(latched.contains(&(Side::A, PacketKind::Rtp)));
    assert!(latched.contains(&(Side::B, PacketKind::Rtp)));
    assert!(latched.contains(&(Side::A, PacketKind::Rtcp)));

    // The tap saw every forwarded packet, as raw bytes.
    let mut tapped = Vec::new();
    while let Ok(p) = tap_rx.try_recv() {
        tapped.push(p);
    }
    assert_eq!(tapped.len(), 4);
    assert_eq!(&tapped[0].data[..], &hello[..]);
    assert_eq!(tapped[0].from_side, Side::A);
    assert_eq!(tapped[1].from_side, Side::B);
    assert_eq!(tapped[2].kind, PacketKind::Rtcp);

    let final_stats = relay.stop().await;
    assert_eq!(final_stats.a.dropped_foreign, 1);
    // Ports go back to the pool once the task has ended.
    assert_eq!(pool.in_use(), 0);
}

#[tokio::test]
async fn reports_silence_and_stops() {
    let pool = PortPool::new(42_100, 42_199).unwrap();
    let mut relay = spawn_relay(
        &pool,
        LOOPBACK,
        RelayOptions {
            config: RelayConfig {
                silence_timeout: Duration::from_millis(150),
            },
            tap: None,
        },
    )
    .unwrap();
    let ev = timeout(WAIT, relay.next_event()).await.unwrap().unwrap();
    assert!(matches!(ev, RelayTaskEvent::Silent { .. }), "{ev:?}");

    // On hold nothing more is reported.
    relay.set_hold(Side::A, true).await.unwrap();
    assert!(
        timeout(Duration::from_millis(400), relay.next_event())
            .await
            .is_err()
    );

    let cmds = relay.commands();
    cmds.send(hark_media::relay::task::RelayCommand::Stop)
        .await
        .unwrap();
    let ev = timeout(WAIT, relay.next_event()).await.unwrap().unwrap();
    assert!(matches!(ev, RelayTaskEvent::Stopped { .. }), "{ev:?}");
    assert!(relay.set_hold(Side::A, false).await.is_err(), "stopped");
}

#[tokio::test]
async fn port_pool_skips_busy_ports_and_runs_out() {
    // Someone else holds the first pair's RTCP port.
    let squatter = std::net::UdpSocket::bind((LOOPBACK, 42_201)).unwrap();
    let pool = PortPool::parse("42200-42203").unwrap();
    assert_eq!(pool.capacity(), 2);
    let pair = pool.allocate(LOOPBACK).unwrap();
    assert_eq!(pair.rtp_port(), 42_202);
    assert_eq!(pair.rtcp_port(), 42_203);
    // The busy pair was given back; the other is in use: nothing left that binds.
    assert!(matches!(
        pool.allocate(LOOPBACK),
        Err(PortPoolError::Exhausted { .. })
    ));
    drop(pair);
    assert_eq!(pool.in_use(), 0);
    drop(squatter);
    let a = pool.allocate(LOOPBACK).unwrap();
    let b = pool.allocate(LOOPBACK).unwrap();
    assert_ne!(a.rtp_port(), b.rtp_port());
    assert_eq!(pool.in_use(), 2);
}

#[test]
fn port_ranges_are_validated() {
    for bad in [
        "",
        "10000",
        "20000-10000",
        "10001-10001",
        "x-y",
        "0-1",
        "65535-65535",
    ] {
        assert!(PortPool::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(PortPool::parse("10001-10004").unwrap().capacity(), 1);
    assert_eq!(PortPool::parse(" 10000-10999 ").unwrap().capacity(), 500);
    assert_eq!(
        PortPool::parse("10000-10999").unwrap().range(),
        (10000, 10999)
    );
}
