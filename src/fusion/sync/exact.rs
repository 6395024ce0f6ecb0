//! Exact-time matching.

use super::{PushError, SyncStats, Timed, collect_set};
use crate::fusion::time::Timestamp;

/// A partly filled set: one stamp, one optional message per channel.
#[derive(Clone, Copy, Debug)]
struct Pending<T, const K: usize> {
    stamp: Timestamp,
    slots: [Option<T>; K],
    filled: usize,
}

/// Emits a set when all `K` channels have a message with the **same** stamp (ROS `ExactTime`).
///
/// Up to `Q` incomplete sets (distinct stamps) are kept. Guarantees:
///
/// 1. A set is emitted as soon as its last message arrives; its messages all carry the same stamp.
/// 2. Sets are emitted in strictly increasing stamp order. When a set is emitted, every incomplete set with an
///    older stamp is discarded (counted in [`SyncStats::dropped`]), and later messages stamped at or before it
///    are discarded on arrival: with in-order channels they can never complete.
/// 3. Within a channel, the **first** message with a given stamp wins; later duplicates are dropped.
/// 4. With per-channel in-order arrival and no overflow, the output is exactly: for every stamp present on all
///    `K` channels, in increasing order, the set of the first message with that stamp on each channel —
///    independent of how arrivals interleave across channels.
///
/// Capacity: when `Q` incomplete sets are pending and a new stamp arrives, the oldest pending set is discarded
/// ([`SyncStats::overflowed`]); pick `Q` at least the number of distinct stamps that can be in flight at once.
#[derive(Clone, Debug)]
pub struct ExactTime<T, const K: usize, const Q: usize> {
    pending: heapless::Vec<Pending<T, K>, Q>,
    last_emitted: Option<Timestamp>,
    stats: SyncStats,
}

impl<T: Copy, const K: usize, const Q: usize> Default for ExactTime<T, K, Q> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const K: usize, const Q: usize> ExactTime<T, K, Q> {
    /// An empty synchroniser. `K` and `Q` must be at least 1 (checked at compile time).
    pub const fn new() -> Self {
        const {
            assert!(
                K >= 1 && Q >= 1,
                "ExactTime needs K >= 1 channels and Q >= 1 pending sets"
            )
        };
        Self {
            pending: heapless::Vec::new(),
            last_emitted: None,
            stats: SyncStats::ZERO,
        }
    }

    /// Counters.
    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    /// Stamp of the last emitted set.
    pub fn last_emitted(&self) -> Option<Timestamp> {
        self.last_emitted
    }

    /// Offers a message on `channel`; calls `emit` with the set it completes, if any. Returns how many sets were
    /// emitted (0 or 1).
    pub fn push(
        &mut self,
        channel: usize,
        stamp: Timestamp,
        value: T,
        mut emit: impl FnMut(&[Timed<T>; K]),
    ) -> Result<usize, PushError> {
        // ExactTime matches stamps wherever they arrive: only the channel is checked.
        self.stats.admit(K, channel, stamp, |_| None)?;
        if self.last_emitted.is_some_and(|last| stamp <= last) {
            self.stats.dropped += 1;
            return Ok(0);
        }
        let idx = match self.pending.iter().position(|p| p.stamp == stamp) {
            Some(i) => i,
            None => {
                if self.pending.is_full() {
                    // Evict the oldest stamp, which may be the new one.
                    let (oldest, oldest_stamp) = self
                        .pending
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (i, p.stamp))
                        .min_by_key(|&(_, s)| s)
                        .unwrap_or((0, Timestamp::MAX));
                    if stamp < oldest_stamp {
                        self.stats.overflowed += 1;
                        return Ok(0);
                    }
                    let evicted = self.pending.swap_remove(oldest);
                    self.stats.overflowed += evicted.filled as u64;
                }
                let p = Pending {
                    stamp,
                    slots: [None; K],
                    filled: 0,
                };
                if self.pending.push(p).is_err() {
                    // Unreachable: a slot was freed above.
                    self.stats.overflowed += 1;
                    return Ok(0);
                }
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[idx];
        if p.slots[channel].is_some() {
            self.stats.dropped += 1;
            return Ok(0);
        }
        p.slots[channel] = Some(value);
        p.filled += 1;
        if p.filled < K {
            return Ok(0);
        }
        let p = self.pending.swap_remove(idx);
        let Some(set) = collect_set::<T, K>(|i| p.slots[i].map(|value| Timed { stamp, value })) else {
            return Ok(0);
        };
        // Older incomplete sets can never complete any more.
        let mut dropped = 0;
        self.pending.retain(|q| {
            let keep = q.stamp > stamp;
            if !keep {
                dropped += q.filled as u64;
            }
            keep
        });
        self.stats.dropped += dropped;
        self.last_emitted = Some(stamp);
        self.stats.emitted += 1;
        emit(&set);
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n)
    }

    #[test]
    fn matches_equal_stamps_and_drops_older_partials() {
        let mut s = ExactTime::<u32, 3, 8>::new();
        let mut out = Vec::new();
        let mut push = |s: &mut ExactTime<u32, 3, 8>, c, t, v| {
            s.push(c, ts(t), v, |set| out.push(*set)).unwrap();
        };
        push(&mut s, 0, 10, 1);
        push(&mut s, 1, 10, 2);
        push(&mut s, 0, 20, 3);
        push(&mut s, 1, 20, 4);
        push(&mut s, 2, 20, 5); // completes 20; 10 is discarded
        push(&mut s, 2, 10, 6); // stale
        push(&mut s, 0, 30, 7);
        push(&mut s, 0, 30, 8); // duplicate: first wins
        push(&mut s, 1, 30, 9);
        push(&mut s, 2, 30, 10);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].map(|m| m.value), [3, 4, 5]);
        assert_eq!(out[1].map(|m| m.value), [7, 9, 10]);
        assert!(out.iter().all(|set| set.iter().all(|m| m.stamp == set[0].stamp)));
        let st = s.stats();
        assert_eq!(st.emitted, 2);
        assert_eq!(st.dropped, 4); // 2 partials at 10, the stale 10, the duplicate 30
        assert_eq!(s.push(3, ts(1), 0, |_| {}), Err(PushError::InvalidChannel));
    }

    #[test]
    fn overflow_evicts_the_oldest_pending_stamp() {
        let mut s = ExactTime::<u8, 2, 2>::new();
        let mut n = 0;
        for t in [10, 20, 30] {
            s.push(0, ts(t), 0, |_| n += 1).unwrap();
        }
        assert_eq!(s.stats().overflowed, 1);
        s.push(1, ts(10), 0, |_| n += 1).unwrap(); // older than all pending with a full queue: overflow
        s.push(1, ts(20), 0, |_| n += 1).unwrap();
        assert_eq!(n, 1);
        assert_eq!(s.stats().overflowed, 2);
    }
}
