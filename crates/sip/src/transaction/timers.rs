//! One deadline heap for every transaction, with lazy deletion.
//!
//! A transaction keeps in `scheduled` the deadline of its one live heap entry. Entries are
//! never removed from the middle of the heap: when a transaction ends or its deadline
//! moves, the old entry becomes stale (its deadline no longer equals `scheduled`, or the
//! transaction is gone) and is dropped when it reaches the top. Push and pop are
//! O(log n); nothing ever scans all transactions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Which transaction a heap entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TxRef {
    Client(u64),
    Server(u64),
}

#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TxRef)>>,
}

impl TimerQueue {
    /// Records that `tx` next needs attention at `next`, given the deadline of its live
    /// entry (`scheduled`). Any change pushes a fresh entry and leaves the old one stale, so
    /// the heap's top (once stale entries are pruned) is exactly the earliest deadline.
    pub fn reschedule(
        &mut self,
        tx: TxRef,
        scheduled: &mut Option<Instant>,
        next: Option<Instant>,
    ) {
        if *scheduled == next {
            return;
        }
        if let Some(at) = next {
            self.heap.push(Reverse((at, tx)));
        }
        *scheduled = next;
    }

    pub fn peek(&self) -> Option<(Instant, TxRef)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    pub fn pop(&mut self) -> Option<(Instant, TxRef)> {
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    /// The earliest entry, if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TxRef)> {
        match self.peek() {
            Some((at, _)) if at <= now => self.pop(),
            _ => None,
        }
    }

    /// Heap entries, live and stale.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}
