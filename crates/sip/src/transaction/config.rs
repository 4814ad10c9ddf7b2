//! RFC 3261 §17 timer values. Every other timer is derived from T1, T2 and T4 as the
//! RFC's Table 4 says, so a deployment tunes three numbers, not eleven.

use std::time::Duration;

/// The base timer values (RFC 3261 §17.1.1.1, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate: the first retransmission interval. Default 500 ms.
    pub t1: Duration,
    /// The cap on non-INVITE request and INVITE response retransmission intervals. Default 4 s.
    pub t2: Duration,
    /// How long a message may linger in the network. Default 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// RFC 3261 §17.1.1.2: Timer D is "at least 32 seconds" on unreliable transports, whatever T1 is.
const TIMER_D_FLOOR: Duration = Duration::from_secs(32);

impl TimerConfig {
    /// 64*T1: Timers B, F and H, Timer J on unreliable transports, and RFC 6026's L and M.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: how long a client INVITE transaction absorbs retransmitted non-2xx finals.
    pub(crate) fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout().max(TIMER_D_FLOOR)
        }
    }

    /// Timer I: how long a server INVITE transaction absorbs ACK retransmissions.
    pub(crate) fn timer_i(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: how long a server non-INVITE transaction answers request retransmissions.
    pub(crate) fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout()
        }
    }

    /// Timer K: how long a client non-INVITE transaction absorbs response retransmissions.
    pub(crate) fn timer_k(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }
}
