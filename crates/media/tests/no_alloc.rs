//! The relay's packet path allocates nothing: a counting allocator watches
//! `handle_packet` over thousands of forwards and drops.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hark_media::{MediaRelay, PacketKind, RelayAction, RelayConfig, Side};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x90, 0]; // with a header extension
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]);
    p.extend_from_slice(&[0xff; 160]);
    p
}

#[test]
fn handle_packet_does_not_allocate() {
    let a: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let a_rtcp: SocketAddr = "192.0.2.1:4001".parse().unwrap();
    let b: SocketAddr = "192.0.2.2:5000".parse().unwrap();
    let foreign: SocketAddr = "203.0.113.9:4000".parse().unwrap();
    let t0 = Instant::now();
    let mut relay = MediaRelay::new(t0, RelayConfig::default());
    relay.set_remote(Side::A, Some(a), None);
    relay.set_remote(Side::B, Some(b), None);
    let packets: Vec<Vec<u8>> = (0..2000u16).map(|i| rtp(i.wrapping_mul(37), 7)).collect();
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 7];
    let junk = [0x12u8; 40];

    // The counter sees allocations on this thread.
    WATCHING.with(|w| w.set(true));
    let probe = std::hint::black_box(Vec::<u8>::with_capacity(8));
    WATCHING.with(|w| w.set(false));
    drop(probe);
    assert_eq!(
        ALLOCATIONS.swap(0, Ordering::Relaxed),
        1,
        "counting allocator works"
    );

    WATCHING.with(|w| w.set(true));
    let mut forwarded = 0usize;
    for (i, p) in packets.iter().enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        for (side, kind, from, bytes) in [
            (Side::A, PacketKind::Rtp, a, &p[..]),
            (Side::B, PacketKind::Rtp, b, &p[..]),
            (Side::A, PacketKind::Rtcp, a_rtcp, &rr[..]),
            (Side::A, PacketKind::Rtp, foreign, &p[..]),
            (Side::B, PacketKind::Rtp, b, &junk[..]),
        ] {
            if let RelayAction::Forward { .. } = relay.handle_packet(now, side, kind, from, bytes) {
                forwarded += 1;
            }
        }
        relay.handle_timeout(now);
        while relay.poll_event().is_some() {}
        let _ = relay.poll_timeout();
        let _ = relay.stats();
    }
    WATCHING.with(|w| w.set(false));

    assert_eq!(forwarded, 3 * packets.len());
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "the packet path allocated"
    );
}
