//! Exact-time matching.

use super::{Capacity, PushError, SyncStats, Timed, collect_set};
use crate::fusion::time::Timestamp;

/// A partly filled set: one stamp, one optional message per channel.
#[derive(Clone, Copy, Debug)]
struct Pending<T, const K: usize> {
    stamp: Timestamp,
    slots: [Option<T>; K],
    filled: usize,
}

/// Emits a set when all `K` channels have a message with the **same** stamp: the ROS 2 `message_filters`
/// ExactTime policy (`sync_policies/exact_time.hpp`, release 6.0.6), with ROS's `queue_size` = `Q` incomplete
/// sets.
///
/// Behaviour, as in ROS 2:
///
/// 1. A set is emitted as soon as its last message arrives; its messages all carry the same stamp.
/// 2. When a set is emitted, every incomplete set with an older or equal stamp is discarded (counted in
///    [`SyncStats::dropped`]).
/// 3. Within a channel, the **last** message with a given stamp wins (ROS overwrites the tuple's slot); the
///    replaced one is counted as dropped.
/// 4. Messages are accepted in any order, also when older than the last emitted set: they start a new
///    incomplete set, which can still complete (ROS keeps them too).
/// 5. When a new stamp would make more than `Q` incomplete sets, the one with the oldest stamp is discarded —
///    which is the new one if it is the oldest ([`SyncStats::overflowed`], per message).
///
/// With per-channel in-order arrival and no overflow, the output is: for every stamp present on all `K`
/// channels, in increasing order, the set of the last message with that stamp on each channel, independent of
/// how arrivals interleave across channels. Pick `Q` at least the number of distinct stamps in flight at once.
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
        let () = Capacity::<K, Q>::CHECKED;
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
                if K == 1 {
                    // Complete on arrival: ROS emits it before trimming the queue.
                    return Ok(self.complete(
                        Pending {
                            stamp,
                            slots: [Some(value); K],
                            filled: K,
                        },
                        &mut emit,
                    ));
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
        if p.slots[channel].replace(value).is_some() {
            self.stats.dropped += 1;
        } else {
            p.filled += 1;
        }
        if p.filled < K {
            return Ok(0);
        }
        let p = self.pending.swap_remove(idx);
        Ok(self.complete(p, &mut emit))
    }

    /// Emits a complete set and discards the incomplete sets it makes stale.
    fn complete(&mut self, p: Pending<T, K>, emit: &mut impl FnMut(&[Timed<T>; K])) -> usize {
        let stamp = p.stamp;
        let Some(set) = collect_set::<T, K>(|i| p.slots[i].map(|value| Timed { stamp, value })) else {
            return 0;
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
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::sync::ts;
    extern crate std;
    use std::vec::Vec;

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
        push(&mut s, 2, 10, 6); // older than the last set: kept as a new incomplete set, as in ROS
        push(&mut s, 0, 30, 7);
        push(&mut s, 0, 30, 8); // duplicate: the last wins, as in ROS
        push(&mut s, 1, 30, 9);
        push(&mut s, 2, 30, 10);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].map(|m| m.value), [3, 4, 5]);
        assert_eq!(out[1].map(|m| m.value), [8, 9, 10]);
        assert!(out.iter().all(|set| set.iter().all(|m| m.stamp == set[0].stamp)));
        let st = s.stats();
        assert_eq!(st.emitted, 2);
        assert_eq!(st.dropped, 4); // 2 partials at 10, the replaced 30, the late 10 (dropped when 30 is emitted)
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
