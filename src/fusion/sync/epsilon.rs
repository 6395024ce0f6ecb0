//! Epsilon matching: the ROS 2 `message_filters` ApproximateEpsilonTime policy.

use core::time::Duration;

use heapless::Deque;

use super::{Capacity, PushError, SyncStats, Timed, collect_set};
use crate::fusion::time::{Timestamp, duration_nanos};

/// Emits the heads of all `K` channels as a set when they all lie within `ε` of the earliest head: the ROS 2
/// `message_filters` ApproximateEpsilonTime policy (`sync_policies/approximate_epsilon_time.hpp`, release 6.0.6),
/// with ROS's `queue_size` = `Q` messages per channel.
///
/// Behaviour, as in ROS 2, each time every channel has a message:
///
/// 1. Let `E` be the earliest head (the lowest channel index among equal stamps).
/// 2. If every head is stamped at most `E + ε`, the heads are emitted as a set and removed.
/// 3. Otherwise every head stamped at most `E + ε` is dropped (`E` itself and those close to it: they cannot be
///    matched with the far channels' heads), and the step repeats.
///
/// A message arriving on a channel that already holds `Q` messages (while another channel is empty) first drops
/// that channel's oldest message ([`SyncStats::overflowed`]). Unlike [`ApproximateTime`](super::ApproximateTime),
/// a set is emitted as soon as one fits, without proof that a later one would fit better; messages are accepted
/// in any order, as in ROS (the policy assumes per-channel stamp order but does not check it).
///
/// Guarantees (per-channel in-order arrival): every emitted set spans at most `ε`; sets do not cross and use each
/// message at most once.
#[derive(Clone, Debug)]
pub struct ApproximateEpsilonTime<T, const K: usize, const Q: usize> {
    queues: [Deque<Timed<T>, Q>; K],
    epsilon: u64,
    stats: SyncStats,
}

impl<T: Copy, const K: usize, const Q: usize> ApproximateEpsilonTime<T, K, Q> {
    /// An empty synchroniser with tolerance `epsilon`. `K` and `Q` must be at least 1 (checked at compile time).
    pub fn new(epsilon: Duration) -> Self {
        let () = Capacity::<K, Q>::CHECKED;
        Self {
            queues: [const { Deque::new() }; K],
            epsilon: duration_nanos(epsilon),
            stats: SyncStats::ZERO,
        }
    }

    /// The tolerance.
    pub fn epsilon(&self) -> Duration {
        Duration::from_nanos(self.epsilon)
    }

    /// Counters.
    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    /// Messages waiting on `channel` (0 for an invalid channel).
    pub fn queued(&self, channel: usize) -> usize {
        self.queues.get(channel).map_or(0, Deque::len)
    }

    /// Offers a message on `channel`; calls `emit` with every set this completes, oldest first. Returns how many
    /// sets were emitted. Only an invalid channel is refused.
    pub fn push(
        &mut self,
        channel: usize,
        stamp: Timestamp,
        value: T,
        mut emit: impl FnMut(&[Timed<T>; K]),
    ) -> Result<usize, PushError> {
        self.stats.admit(K, channel, stamp, |_| None)?;
        let q = &mut self.queues[channel];
        // ROS appends, then trims to `queue_size` unless every channel has a message. A full channel is not empty,
        // and at rest some channel is, so appending to a full channel never completes the heads: trimming first
        // is the same and needs no spare slot.
        if q.is_full() {
            q.pop_front();
            self.stats.overflowed += 1;
        }
        // Cannot fail: the queue has room.
        let _ = q.push_back(Timed { stamp, value });
        let mut emitted = 0;
        while let Some(heads) = collect_set::<T, K>(|c| self.queues[c].front().copied()) {
            let earliest = heads.iter().map(|m| m.stamp).min().unwrap_or(Timestamp::ZERO);
            let limit = earliest.saturating_add(Duration::from_nanos(self.epsilon));
            if heads.iter().all(|m| m.stamp <= limit) {
                for q in &mut self.queues {
                    q.pop_front();
                }
                self.stats.emitted += 1;
                emitted += 1;
                emit(&heads);
            } else {
                for (q, m) in self.queues.iter_mut().zip(&heads) {
                    if m.stamp <= limit {
                        q.pop_front();
                        self.stats.dropped += 1;
                    }
                }
            }
        }
        Ok(emitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn drops_heads_close_to_an_unmatched_earliest() {
        let mut s = ApproximateEpsilonTime::<u32, 3, 4>::new(Duration::from_nanos(2));
        let mut out = Vec::new();
        for (c, t) in [(0, 10), (1, 11), (2, 20), (0, 19), (1, 21), (2, 30)] {
            s.push(c, Timestamp::from_nanos(t), 0, |set| {
                out.push(set.map(|m| m.stamp.as_nanos()))
            })
            .unwrap();
        }
        // Heads 10, 11, 20: 20 is too far; 10 and 11 (within 2 of 10) are dropped. Then 19, 21, 20 match.
        assert_eq!(out, [[19, 21, 20]]);
        assert_eq!(s.stats().dropped, 2);
        assert_eq!(s.queued(2), 1);
        assert_eq!(s.push(3, Timestamp::ZERO, 0, |_| {}), Err(PushError::InvalidChannel));
    }

    #[test]
    fn full_channel_drops_its_oldest() {
        let mut s = ApproximateEpsilonTime::<u32, 2, 2>::new(Duration::from_nanos(1));
        for t in [1, 2, 3] {
            s.push(0, Timestamp::from_nanos(t), 0, |_| {}).unwrap();
        }
        assert_eq!((s.queued(0), s.stats().overflowed), (2, 1));
        let mut out = Vec::new();
        s.push(1, Timestamp::from_nanos(3), 0, |set| {
            out.push(set.map(|m| m.stamp.as_nanos()))
        })
        .unwrap();
        assert_eq!(out, [[2, 3]]);
        assert_eq!(s.queued(0), 1);
    }
}
