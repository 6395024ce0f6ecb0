//! Slop matching: the Python (rclpy) `message_filters.ApproximateTimeSynchronizer`.

use core::time::Duration;

use heapless::Vec;

use super::{Capacity, PushError, SyncStats, Timed};
use crate::fusion::time::{Timestamp, duration_nanos};

/// Emits a set containing the arriving message and, from every other channel, a message within `slop` of it,
/// such that the whole set spans less than `slop`: the semantics of ROS 2's Python
/// `message_filters.ApproximateTimeSynchronizer(fs, queue_size, slop, allow_headerless)` (`__init__.py`, release
/// 6.0.6), which many ROS users know instead of the C++ policies. `Q` is its `queue_size`.
///
/// Behaviour, as in rclpy, on each arrival:
///
/// 1. Each channel keeps at most one message per stamp: a message with a stamp already kept replaces that
///    message (counted in [`SyncStats::dropped`]). When a channel would keep more than `Q` messages, the one
///    with the **lowest stamp** is discarded — possibly the arriving one ([`SyncStats::overflowed`]), which then
///    matches nothing.
/// 2. For every other channel, its messages within `slop` of the arriving stamp (`|Δ| <= slop`) are listed by
///    increasing `|Δ|`, ties in arrival order. If a channel has none, nothing is emitted.
/// 3. The combinations of those lists are tried in lexicographic order (channel 0's choice varies slowest, each
///    list from its closest message); the first whose stamps, with the arriving one, span **strictly less** than
///    `slop` is emitted, and its messages are removed. At most one set per arrival.
///
/// Messages are accepted in any order (rclpy keeps a dictionary per channel). Headerless messages go through
/// [`push_headerless`](Self::push_headerless): with `allow_headerless` they are stamped with the arrival time
/// the caller supplies (rclpy reads `ROSClock().now()`); without it they are refused
/// ([`PushError::Headerless`]; rclpy logs a warning and ignores them).
///
/// The search is a depth-first walk of the same lexicographic order that skips a branch as soon as its partial
/// set already spans `slop` or more (no extension can then qualify), so it finds the same set as rclpy's
/// exhaustive `itertools.product` with less work; in the worst case it is still `O(Q^(K-1))`, as in rclpy.
#[derive(Clone, Debug)]
pub struct SlopTime<T, const K: usize, const Q: usize> {
    /// Per channel, the kept messages in first-arrival order of their stamps (rclpy's dictionary order).
    queues: [Vec<Timed<T>, Q>; K],
    slop: u64,
    allow_headerless: bool,
    stats: SyncStats,
}

impl<T: Copy, const K: usize, const Q: usize> SlopTime<T, K, Q> {
    /// An empty synchroniser with tolerance `slop` that refuses headerless messages. `K` and `Q` must be at least
    /// 1 (checked at compile time).
    pub fn new(slop: Duration) -> Self {
        let () = Capacity::<K, Q>::CHECKED;
        Self {
            queues: [const { Vec::new() }; K],
            slop: duration_nanos(slop),
            allow_headerless: false,
            stats: SyncStats::ZERO,
        }
    }

    /// Accepts headerless messages, stamped with their arrival time (rclpy's `allow_headerless=True`).
    pub const fn allow_headerless(mut self) -> Self {
        self.allow_headerless = true;
        self
    }

    /// The tolerance.
    pub fn slop(&self) -> Duration {
        Duration::from_nanos(self.slop)
    }

    /// Counters.
    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    /// Messages kept on `channel` (0 for an invalid channel).
    pub fn queued(&self, channel: usize) -> usize {
        self.queues.get(channel).map_or(0, |q| q.len())
    }

    /// Offers a headerless message that arrived at `arrival`: stamped with it if headerless messages are allowed,
    /// refused with [`PushError::Headerless`] otherwise.
    pub fn push_headerless(
        &mut self,
        channel: usize,
        arrival: Timestamp,
        value: T,
        emit: impl FnOnce(&[Timed<T>; K]),
    ) -> Result<usize, PushError> {
        if !self.allow_headerless {
            self.stats.rejected += 1;
            return Err(PushError::Headerless);
        }
        self.push(channel, arrival, value, emit)
    }

    /// Offers a message on `channel`; calls `emit` with the set it completes, if any. Returns how many sets were
    /// emitted (0 or 1). Only an invalid channel is refused.
    pub fn push(
        &mut self,
        channel: usize,
        stamp: Timestamp,
        value: T,
        emit: impl FnOnce(&[Timed<T>; K]),
    ) -> Result<usize, PushError> {
        self.stats.admit(K, channel, stamp, |_| None)?;
        if !self.keep(channel, Timed { stamp, value }) {
            return Ok(0);
        }
        let Some(chosen) = self.search(channel, stamp) else {
            return Ok(0);
        };
        let mut set = [Timed { stamp, value }; K];
        for (c, q) in self.queues.iter_mut().enumerate() {
            set[c] = q.remove(chosen[c]);
        }
        self.stats.emitted += 1;
        emit(&set);
        Ok(1)
    }

    /// Stores a message by the dictionary rules; `false` if it was discarded at once as the oldest of a full
    /// channel.
    fn keep(&mut self, channel: usize, message: Timed<T>) -> bool {
        let q = &mut self.queues[channel];
        if let Some(kept) = q.iter_mut().find(|m| m.stamp == message.stamp) {
            kept.value = message.value;
            self.stats.dropped += 1;
            return true;
        }
        if let Err(message) = q.push(message) {
            self.stats.overflowed += 1;
            let oldest = q
                .iter()
                .enumerate()
                .min_by_key(|(_, m)| m.stamp)
                .map(|(i, m)| (i, m.stamp));
            match oldest {
                Some((i, oldest)) if oldest < message.stamp => {
                    q.remove(i);
                    // Cannot fail: a slot was just freed.
                    let _ = q.push(message);
                }
                _ => return false,
            }
        }
        true
    }

    /// The queue index of the chosen message on every channel, if a set qualifies.
    fn search(&self, channel: usize, stamp: Timestamp) -> Option<[usize; K]> {
        // Per channel, (|Δ|, queue index) within the slop, by increasing |Δ| then arrival.
        let mut lists: [Vec<(u64, usize), Q>; K] = [const { Vec::new() }; K];
        for (c, (q, list)) in self.queues.iter().zip(&mut lists).enumerate() {
            if c == channel {
                let own = q.iter().position(|m| m.stamp == stamp)?;
                // Cannot fail: at most Q entries.
                let _ = list.push((0, own));
                continue;
            }
            for (i, m) in q.iter().enumerate() {
                let delta = m.stamp.abs_diff(stamp);
                if delta <= self.slop {
                    let _ = list.push((delta, i));
                }
            }
            if list.is_empty() {
                return None;
            }
            // Stable insertion sort by |Δ|.
            for i in 1..list.len() {
                let mut j = i;
                while j > 0 && list[j].0 < list[j - 1].0 {
                    list.swap(j, j - 1);
                    j -= 1;
                }
            }
        }
        // Depth-first over channels 0..K in lexicographic order; the own channel has a single choice.
        let stamp_of = |c: usize, choice: usize| self.queues[c][lists[c][choice].1].stamp.as_nanos();
        let mut choice = [0usize; K];
        let mut depth = 0;
        loop {
            if depth == K {
                return Some(core::array::from_fn(|c| lists[c][choice[c]].1));
            }
            if choice[depth] == lists[depth].len() {
                choice[depth] = 0;
                depth = depth.checked_sub(1)?;
                choice[depth] += 1;
                continue;
            }
            let (lo, hi) = (0..=depth).fold((u64::MAX, 0), |(lo, hi), c| {
                let t = stamp_of(c, choice[c]);
                (lo.min(t), hi.max(t))
            });
            let (lo, hi) = (lo.min(stamp.as_nanos()), hi.max(stamp.as_nanos()));
            if hi - lo < self.slop {
                depth += 1;
            } else {
                choice[depth] += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::sync::ts;
    extern crate std;

    #[test]
    fn closest_first_strictly_within_slop() {
        let mut s = SlopTime::<u32, 2, 4>::new(Duration::from_nanos(5));
        for (t, v) in [(10, 1), (13, 2), (20, 3)] {
            assert_eq!(s.push(0, ts(t), v, |_| {}), Ok(0));
        }
        // 15: candidates 13 (Δ2), 10 (Δ5), 20 (Δ5); 13 spans 2 < 5.
        let mut got = None;
        s.push(1, ts(15), 9, |set| got = Some(set.map(|m| m.value))).unwrap();
        assert_eq!(got, Some([2, 9]));
        // 25: only 20 (Δ5) is within the slop, but spans 5, not < 5.
        assert_eq!(s.push(1, ts(25), 9, |_| {}), Ok(0));
        assert_eq!(s.queued(0), 2);
    }

    #[test]
    fn replaces_equal_stamps_and_discards_the_lowest_when_full() {
        let mut s = SlopTime::<u32, 2, 2>::new(Duration::from_nanos(3));
        s.push(0, ts(10), 1, |_| {}).unwrap();
        s.push(0, ts(10), 2, |_| {}).unwrap();
        assert_eq!((s.queued(0), s.stats().dropped), (1, 1));
        s.push(0, ts(20), 3, |_| {}).unwrap();
        // Full: 5 is the lowest stamp, so it is discarded at once and matches nothing.
        s.push(0, ts(5), 4, |_| {}).unwrap();
        assert_eq!(s.stats().overflowed, 1);
        let mut got = None;
        s.push(1, ts(11), 5, |set| got = Some(set.map(|m| m.value))).unwrap();
        assert_eq!(got, Some([2, 5]));
    }

    #[test]
    fn headerless_messages_need_permission() {
        let mut s = SlopTime::<u32, 2, 2>::new(Duration::from_millis(1));
        assert_eq!(s.push_headerless(0, ts(5), 0, |_| {}), Err(PushError::Headerless));
        assert_eq!(s.stats().rejected, 1);
        let mut s = s.allow_headerless();
        s.push(0, ts(1_000), 1, |_| {}).unwrap();
        let mut got = None;
        s.push_headerless(1, ts(1_200), 2, |set| got = Some(set.map(|m| m.stamp.as_nanos())))
            .unwrap();
        assert_eq!(got, Some([1_000, 1_200]));
    }
}
