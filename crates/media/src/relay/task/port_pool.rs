//! The `--rtp-ports LO-HI` range: even RTP ports with RTCP on the next (odd) one.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::UdpSocket;

/// Port pool errors.
#[derive(Debug, thiserror::Error)]
pub enum PortPoolError {
    #[error("bad port range {0:?}: expected LO-HI with LO <= HI, at least one even/odd pair")]
    BadRange(String),
    #[error("no free RTP port pair in {lo}-{hi}")]
    Exhausted { lo: u16, hi: u16 },
    #[error("socket setup failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug)]
struct PoolState {
    /// One flag per pair, index (port - first) / 2.
    in_use: Vec<bool>,
    /// Where the next search starts (round robin, so a just-freed port rests a while).
    cursor: usize,
}

#[derive(Debug)]
struct PoolInner {
    first: u16,
    lo: u16,
    hi: u16,
    state: Mutex<PoolState>,
}

/// A shared pool of RTP/RTCP port pairs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<PoolInner>,
}

/// An RTP socket on an even port and its RTCP socket on port + 1. Dropping it closes both
/// and returns the pair to the pool.
#[derive(Debug)]
pub struct PortPair {
    // Field order matters: sockets close before the lease frees the pair.
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    lease: PortLease,
}

impl PortPair {
    pub fn rtp_port(&self) -> u16 {
        self.lease.port
    }

    pub fn rtcp_port(&self) -> u16 {
        self.lease.port + 1
    }

    /// Splits into the sockets and the lease (which must outlive the sockets' use).
    pub fn into_parts(self) -> (UdpSocket, UdpSocket, PortLease) {
        (self.rtp, self.rtcp, self.lease)
    }
}

/// Holds a pair of ports reserved; frees them on drop.
#[derive(Debug)]
pub struct PortLease {
    pool: Arc<PoolInner>,
    port: u16,
}

impl PortLease {
    pub fn rtp_port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let idx = usize::from((self.port - self.pool.first) / 2);
        let mut st = self
            .pool
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(flag) = st.in_use.get_mut(idx) {
            *flag = false;
        }
    }
}

impl PortPool {
    /// A pool over `lo..=hi`; pairs start at the first even port.
    pub fn new(lo: u16, hi: u16) -> Result<Self, PortPoolError> {
        let first = lo.checked_add(lo % 2).ok_or_else(|| bad(lo, hi))?;
        if lo > hi || first >= hi || first == 0 {
            return Err(bad(lo, hi));
        }
        let pairs = usize::from((hi - first).div_ceil(2));
        Ok(PortPool {
            inner: Arc::new(PoolInner {
                first,
                lo,
                hi,
                state: Mutex::new(PoolState {
                    in_use: vec![false; pairs],
                    cursor: 0,
                }),
            }),
        })
    }

    /// Parses `"LO-HI"` (the `--rtp-ports` value).
    pub fn parse(range: &str) -> Result<Self, PortPoolError> {
        let bad = || PortPoolError::BadRange(range.to_owned());
        let (lo, hi) = range.trim().split_once('-').ok_or_else(bad)?;
        let lo = lo.trim().parse::<u16>().map_err(|_| bad())?;
        let hi = hi.trim().parse::<u16>().map_err(|_| bad())?;
        Self::new(lo, hi).map_err(|_| bad())
    }

    pub fn range(&self) -> (u16, u16) {
        (self.inner.lo, self.inner.hi)
    }

    /// Number of pairs in the pool.
    pub fn capacity(&self) -> usize {
        self.lock().in_use.len()
    }

    /// Number of pairs handed out.
    pub fn in_use(&self) -> usize {
        self.lock().in_use.iter().filter(|f| **f).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Binds a free pair on `ip`, skipping ports another process holds. Must run inside
    /// a tokio runtime.
    pub fn allocate(&self, ip: IpAddr) -> Result<PortPair, PortPoolError> {
        let n = self.capacity();
        for _ in 0..n {
            let Some(port) = self.reserve_next() else {
                break;
            };
            let lease = PortLease {
                pool: self.inner.clone(),
                port,
            };
            match bind_pair(ip, port) {
                Ok((rtp, rtcp)) => return Ok(PortPair { rtp, rtcp, lease }),
                // Taken by someone else (or not bindable): skip it; the lease frees it.
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                    return Err(e.into());
                }
                Err(_) => continue,
            }
        }
        Err(PortPoolError::Exhausted {
            lo: self.inner.lo,
            hi: self.inner.hi,
        })
    }

    /// Marks the next free pair (round robin) in use and returns its RTP port.
    fn reserve_next(&self) -> Option<u16> {
        let mut st = self.lock();
        let n = st.in_use.len();
        for step in 0..n {
            let idx = (st.cursor + step) % n;
            if !st.in_use[idx] {
                st.in_use[idx] = true;
                st.cursor = (idx + 1) % n;
                return u16::try_from(idx * 2)
                    .ok()
                    .map(|off| self.inner.first + off);
            }
        }
        None
    }
}

fn bad(lo: u16, hi: u16) -> PortPoolError {
    PortPoolError::BadRange(format!("{lo}-{hi}"))
}

fn bind_pair(ip: IpAddr, port: u16) -> std::io::Result<(UdpSocket, UdpSocket)> {
    let rtp = bind(SocketAddr::new(ip, port))?;
    let rtcp = bind(SocketAddr::new(ip, port + 1))?;
    Ok((rtp, rtcp))
}

fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}
