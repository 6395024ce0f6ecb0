//! Approximate-time matching with the guarantees of ROS `message_filters` ApproximateTime.

use core::time::Duration;

use heapless::Deque;

use super::{PushError, SyncStats, Timed, collect_set};
use crate::fusion::time::Timestamp;

/// Parts per million of the age penalty that makes the output identical to ROS 1 and ROS 2 code (`0.1`).
pub const ROS_AGE_PENALTY_PPM: u32 = 100_000;

/// Groups one message per channel into the best-matching set, with the properties of ROS `message_filters`'
/// ApproximateTime policy, in fixed memory (`K` channels, a queue of `Q` messages per channel).
///
/// # Definitions
///
/// - The **heads** are, per channel, the oldest message that has been neither emitted nor dropped.
/// - The **pivot time** `P` is the latest stamp among the heads.
/// - A set `T` (one message per channel) is **contiguous** (to the previous emitted set) if every `T[i]` is the
///   head of channel `i` or a later message on it, and at least one `T[i]` *is* its head — there is no room to
///   form another set entirely from messages that `T` would drop.
/// - The **size** of a set is its latest stamp minus its earliest stamp.
/// - The **cost** of a set with age penalty `α` is `size + α · (latest − P)`. With `α = 0` the cost is the size.
///
/// # Guarantees
///
/// Provided messages arrive in stamp order on each channel (out-of-order ones are rejected) and no queue
/// overflows ([`SyncStats::overflowed`] stays 0):
///
/// 1. **Each message is used at most once**; messages that end up in no set are dropped.
/// 2. **Sets do not cross**: for sets `S` emitted before `T`, `S[i]` precedes `T[i]` on every channel `i`
///    (so `S[i].stamp <= T[i].stamp`).
/// 3. **Sets are contiguous** to the previous set (see above).
/// 4. **Sets are minimal**: the emitted set has the least cost among *all* contiguous sets, including those
///    that would use messages not received yet; with the default `α = 0` that is the least size (the ROS wiki's
///    property 5). Among sets of equal least cost, the emitted one is the earliest on every channel (this set is
///    unique: the componentwise earliest of all least-cost sets has least cost too).
/// 5. **The output depends only on the stamps**, not on how arrivals interleave across channels: the sequence of
///    sets emitted so far is always a prefix of the one determined by the per-channel streams alone (the one the
///    exhaustive reference in the property tests computes).
/// 6. With [`with_max_interval`](Self::with_max_interval)`(M)`: before each search, while the heads span more
///    than `M`, the earliest head is dropped (as ROS does); every emitted set then has size `<= M`.
///
/// A set is emitted by the push that makes its minimality provable: when every other channel has a message
/// after the pivot, or when a message stamped `E` arrived with `(1 + α) · (E − P)` at least the best cost found
/// (no later candidate can beat it). Inter-message lower bounds (ROS `setInterMessageLowerBound`), which can prove
/// minimality earlier, are not implemented.
///
/// # Age penalty
///
/// The default is `α = 0`, so that property 4 is exact minimality of size as the ROS wiki documents. The ROS 1
/// and ROS 2 *code* default to `α = 0.1` ([`ROS_AGE_PENALTY_PPM`]); a positive penalty favours earlier sets,
/// which lets sets be proven and emitted sooner (and sometimes emits more sets) at some cost in match quality.
/// The penalty is an integer number of parts per million so that the arithmetic is exact and identical on every
/// target (stamps are `u64` nanoseconds; the comparisons use `u128`).
///
/// # Relation to ROS
///
/// The search is the ROS 2 `process()` one: take the heads, make the channel of the latest head the pivot, keep
/// advancing the earliest head and keep the best candidate, until the pivot's head is the earliest or the bound
/// proves optimality. The difference is bookkeeping: instead of moving messages to a "past" queue and
/// recovering them, the search runs over indices into the queues, and restarts from the heads when the channel it
/// waited for receives a message (pushes to other channels cost `O(1)`). A search costs `O(K · (K · Q))`. ROS's
/// rule that a topic with recently *overflowed* messages cannot be the pivot is not reproduced; overflow voids
/// the guarantees anyway. The output has not been compared against a running ROS.
///
/// # Capacity
///
/// A channel's queue holds its messages from the head on, so it must hold every message of that channel that can
/// arrive before a set is proven: about `rate(channel) / rate(slowest channel) + 2`, plus `rate(channel) × the
/// largest arrival skew between channels`. On overflow the oldest message of the channel is dropped and counted
/// in [`SyncStats::overflowed`].
#[derive(Clone, Debug)]
pub struct ApproximateTime<T, const K: usize, const Q: usize> {
    queues: [Deque<Timed<T>, Q>; K],
    last: [Option<Timestamp>; K],
    age_penalty_ppm: u32,
    max_interval: Option<u64>,
    /// The channel whose next message the last search needs; `None` means "search on the next push".
    waiting_on: Option<usize>,
    stats: SyncStats,
}

/// Result of a search from the heads.
enum Search<const K: usize> {
    /// Emit the set at these queue indices.
    Publish([usize; K]),
    /// Minimality is not provable yet: the next message on this channel is needed.
    Wait(usize),
}

const PPM: u128 = 1_000_000;

impl<T: Copy, const K: usize, const Q: usize> Default for ApproximateTime<T, K, Q> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const K: usize, const Q: usize> ApproximateTime<T, K, Q> {
    /// An empty synchroniser with age penalty 0 and no maximum interval. `K` and `Q` must be at least 1 (checked
    /// at compile time).
    pub const fn new() -> Self {
        const {
            assert!(
                K >= 1 && Q >= 1,
                "ApproximateTime needs K >= 1 channels and Q >= 1 queue slots"
            )
        };
        Self {
            queues: [const { Deque::new() }; K],
            last: [None; K],
            age_penalty_ppm: 0,
            max_interval: None,
            waiting_on: None,
            stats: SyncStats::ZERO,
        }
    }

    /// Sets the age penalty `α` in parts per million (`α = ppm / 1e6`; ROS code uses
    /// [`ROS_AGE_PENALTY_PPM`]).
    pub const fn with_age_penalty_ppm(mut self, ppm: u32) -> Self {
        self.age_penalty_ppm = ppm;
        self
    }

    /// Bounds the size of emitted sets by `max` (see guarantee 6).
    pub const fn with_max_interval(mut self, max: Duration) -> Self {
        let n = max.as_nanos();
        self.max_interval = Some(if n > u64::MAX as u128 { u64::MAX } else { n as u64 });
        self
    }

    /// The age penalty in parts per million.
    pub const fn age_penalty_ppm(&self) -> u32 {
        self.age_penalty_ppm
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
    /// sets were emitted (one push can complete several).
    pub fn push(
        &mut self,
        channel: usize,
        stamp: Timestamp,
        value: T,
        mut emit: impl FnMut(&[Timed<T>; K]),
    ) -> Result<usize, PushError> {
        self.stats.admit(K, channel, stamp, |c| self.last[c])?;
        self.last[channel] = Some(stamp);
        let q = &mut self.queues[channel];
        let mut heads_changed = false;
        if q.is_full() {
            q.pop_front();
            self.stats.overflowed += 1;
            heads_changed = true;
        }
        if q.push_back(Timed { stamp, value }).is_err() {
            // Unreachable: a slot was freed above.
            self.stats.overflowed += 1;
            return Ok(0);
        }
        if heads_changed || self.waiting_on.is_none_or(|w| w == channel) {
            Ok(self.process(&mut emit))
        } else {
            Ok(0)
        }
    }

    fn stamp_at(&self, channel: usize, index: usize) -> Timestamp {
        self.queues[channel].get(index).map_or(Timestamp::MAX, |m| m.stamp)
    }

    /// Emits every set that is provable now.
    fn process(&mut self, emit: &mut impl FnMut(&[Timed<T>; K])) -> usize {
        let mut emitted = 0;
        loop {
            if let Some(c) = (0..K).find(|&c| self.queues[c].is_empty()) {
                self.waiting_on = Some(c);
                return emitted;
            }
            if let Some(max) = self.max_interval {
                let (first, first_t) = self.earliest(&[0; K]);
                let (_, last_t) = self.latest(&[0; K]);
                if last_t.as_nanos() - first_t.as_nanos() > max {
                    self.queues[first].pop_front();
                    self.stats.dropped += 1;
                    continue;
                }
            }
            match self.search() {
                Search::Wait(c) => {
                    self.waiting_on = Some(c);
                    return emitted;
                }
                Search::Publish(idx) => {
                    let Some(set) = collect_set::<T, K>(|c| self.queues[c].get(idx[c]).copied()) else {
                        // Unreachable: the indices come from the search over these queues.
                        self.waiting_on = None;
                        return emitted;
                    };
                    for (c, &i) in idx.iter().enumerate() {
                        for _ in 0..=i {
                            self.queues[c].pop_front();
                        }
                        self.stats.dropped += i as u64;
                    }
                    self.stats.emitted += 1;
                    emitted += 1;
                    emit(&set);
                }
            }
        }
    }

    /// The channel (lowest index among ties) and stamp of the earliest message at the given queue indices.
    fn earliest(&self, at: &[usize; K]) -> (usize, Timestamp) {
        let mut best = (0, self.stamp_at(0, at[0]));
        for (c, &i) in at.iter().enumerate().skip(1) {
            let t = self.stamp_at(c, i);
            if t < best.1 {
                best = (c, t);
            }
        }
        best
    }

    /// The channel (highest index among ties, like ROS) and stamp of the latest message at the given indices.
    fn latest(&self, at: &[usize; K]) -> (usize, Timestamp) {
        let mut best = (0, self.stamp_at(0, at[0]));
        for (c, &i) in at.iter().enumerate().skip(1) {
            let t = self.stamp_at(c, i);
            if t >= best.1 {
                best = (c, t);
            }
        }
        best
    }

    /// The search from the heads. Requires every queue to be non-empty.
    ///
    /// Visits the states obtained by repeatedly advancing the earliest message, starting from the heads, while
    /// the pivot stays at its head; every such state is a contiguous set, and (see the type docs) the least-cost
    /// contiguous set is the first least-cost state visited. Every later state has its latest stamp `>= E` (the
    /// current state's) and its earliest `<= P`, hence cost `>= (1 + α) · (E − P)`: once that bound reaches the
    /// best cost, the best is final.
    fn search(&self) -> Search<K> {
        let alpha = u128::from(self.age_penalty_ppm);
        let mut at = [0usize; K];
        let (pivot, p) = self.latest(&at);
        let mut best = at;
        let mut best_cost = u128::MAX;
        loop {
            let (first, start) = self.earliest(&at);
            let (_, end) = self.latest(&at);
            let over = u128::from(end.as_nanos() - p.as_nanos());
            let cost = PPM * u128::from(end.as_nanos() - start.as_nanos()) + alpha * over;
            if cost < best_cost {
                best = at;
                best_cost = cost;
            }
            if (PPM + alpha) * over >= best_cost || first == pivot {
                return Search::Publish(best);
            }
            if at[first] + 1 < self.queues[first].len() {
                at[first] += 1;
            } else {
                return Search::Wait(first);
            }
        }
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

    fn run<const K: usize>(s: &mut ApproximateTime<u32, K, 16>, msgs: &[(usize, u64)]) -> Vec<[u64; K]> {
        let mut out = Vec::new();
        for (i, &(c, t)) in msgs.iter().enumerate() {
            s.push(c, ts(t), i as u32, |set| out.push(set.map(|m| m.stamp.as_nanos())))
                .unwrap();
        }
        out
    }

    #[test]
    fn imu_and_mag_pairs_nearest() {
        // IMU every 10, magnetometer at 23, 52, 81: each pairs with the nearest IMU sample.
        let mut s = ApproximateTime::<u32, 2, 16>::new();
        let mut msgs = Vec::new();
        for k in 0..12 {
            msgs.push((0, 10 * k));
            if k % 3 == 2 {
                msgs.push((1, 29 * (k / 3) + 23));
            }
        }
        let out = run(&mut s, &msgs);
        assert_eq!(out, [[20, 23], [50, 52], [80, 81], [110, 110]]);
        assert_eq!(s.stats().emitted, 4);
    }

    #[test]
    fn waits_until_minimality_is_provable() {
        let mut s = ApproximateTime::<u32, 2, 16>::new();
        assert_eq!(run(&mut s, &[(0, 10), (1, 14)]), Vec::<[u64; 2]>::new());
        // (12, 14) is better than (10, 14), but a later message on channel 0 could be better still.
        assert_eq!(run(&mut s, &[(0, 12)]), Vec::<[u64; 2]>::new());
        // 30 on channel 0 proves (12, 14) optimal.
        assert_eq!(run(&mut s, &[(0, 30)]), [[12, 14]]);
        assert_eq!(s.stats().dropped, 1);
        // Proven without waiting: (16, 14) after (0, 10) can only be beaten by channel-0 messages in [12, 16],
        // and 16 itself rules them out (the pivot 14 is inside every contiguous set).
        let mut s = ApproximateTime::<u32, 2, 16>::new();
        assert_eq!(run(&mut s, &[(0, 10), (1, 14), (0, 16)]), [[16, 14]]);
    }

    #[test]
    fn age_penalty_prefers_earlier_sets() {
        // Channel 1 at 5000; channel 0 at 0 and 9800. Without penalty (9800, 5000) (size 4800) beats (0, 5000)
        // (size 5000); with α = 0.1 the later set costs 4800 + 0.1 · 4800 = 5280 and loses.
        let msgs = [(0, 0), (1, 5000), (0, 9800), (0, 20000)];
        let mut plain = ApproximateTime::<u32, 2, 16>::new();
        assert_eq!(run(&mut plain, &msgs), [[9800, 5000]]);
        let mut penalised = ApproximateTime::<u32, 2, 16>::new().with_age_penalty_ppm(ROS_AGE_PENALTY_PPM);
        assert_eq!(run(&mut penalised, &msgs), [[0, 5000]]);
    }

    #[test]
    fn max_interval_drops_wide_heads() {
        let mut s = ApproximateTime::<u32, 2, 16>::new().with_max_interval(Duration::from_nanos(5));
        let out = run(&mut s, &[(0, 0), (0, 100), (1, 103), (0, 200), (1, 400), (0, 500)]);
        assert_eq!(out, [[100, 103]]);
        assert!(out.iter().all(|set| set[1].abs_diff(set[0]) <= 5));
    }

    #[test]
    fn rejects_out_of_order_and_bad_channel() {
        let mut s = ApproximateTime::<u32, 2, 4>::new();
        s.push(0, ts(10), 0, |_| {}).unwrap();
        assert_eq!(s.push(0, ts(9), 0, |_| {}), Err(PushError::OutOfOrder { last: ts(10) }));
        assert_eq!(s.push(2, ts(9), 0, |_| {}), Err(PushError::InvalidChannel));
        assert_eq!(s.stats().rejected, 2);
        // Overflow of channel 0 while channel 1 is silent.
        for t in 11..20 {
            s.push(0, ts(t), 0, |_| {}).unwrap();
        }
        assert_eq!(s.queued(0), 4);
        assert_eq!(s.stats().overflowed, 6);
    }

    #[test]
    fn one_push_can_emit_several_sets() {
        let mut s = ApproximateTime::<u32, 2, 16>::new();
        let out = run(&mut s, &[(1, 15), (1, 16), (1, 50), (0, 10)]);
        assert_eq!(out, Vec::<[u64; 2]>::new());
        let out = run(&mut s, &[(0, 20)]);
        assert_eq!(out, [[10, 15], [20, 16]]);
    }
}
