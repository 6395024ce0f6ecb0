//! Approximate-time matching: the ROS 2 `message_filters` ApproximateTime policy, input for input.

use core::time::Duration;

use heapless::Deque;

use super::{Capacity, PushError, SyncStats, Timed, collect_set};
use crate::fusion::time::{Timestamp, duration_nanos};

/// The age penalty of the ROS 1 and ROS 2 code (`age_penalty_(0.1)` in the constructor), in parts per million:
/// the default of [`ApproximateTime`].
pub const ROS_AGE_PENALTY_PPM: u32 = 100_000;

/// Groups one message per channel into the best-matching set: the ROS 2 `message_filters` ApproximateTime policy
/// (`sync_policies/approximate_time.hpp`, release 6.0.6), reproduced decision for decision in fixed memory (`K`
/// channels, ROS `queue_size` = `Q` messages per channel).
///
/// # Definitions
///
/// - The **heads** are, per channel, the oldest message that has been neither emitted nor dropped.
/// - The **pivot time** `P` is the latest stamp among the heads when a search starts.
/// - A set `T` (one message per channel) is **contiguous** (to the previous emitted set) if every `T[i]` is the
///   head of channel `i` or a later message on it, and at least one `T[i]` *is* its head.
/// - The **size** of a set is its latest stamp minus its earliest stamp.
/// - The **cost** of a set with age penalty `α` is `size + α · (latest − P)`; with `α = 0` it is the size.
///
/// # Guarantees
///
/// Provided messages arrive in stamp order on each channel and no queue overflows ([`SyncStats::overflowed`]
/// stays 0):
///
/// 1. **Each message is used at most once**; messages that end up in no set are dropped.
/// 2. **Sets do not cross**: for sets `S` emitted before `T`, `S[i]` precedes `T[i]` on every channel `i`.
/// 3. **Sets are contiguous** to the previous set.
/// 4. **Sets are minimal**: the emitted set has the least cost among *all* contiguous sets, including those
///    that would use messages not received yet. Among sets of equal least cost, the emitted one is the earliest
///    on every channel. With `α = 0` that is the least size (the ROS wiki's property); ROS's *code* defaults to
///    `α = 0.1` ([`ROS_AGE_PENALTY_PPM`]), and so does this type.
/// 5. **The sets depend only on the stamps**, not on how arrivals interleave across channels: the sets emitted so
///    far are always a prefix of the sequence determined by the per-channel streams alone. *When* a set is
///    emitted can depend on the interleaving, as in ROS: the search resumes only when a channel that had no
///    unexamined message receives one, so a message that would prove a set arriving on another channel waits
///    for that.
/// 6. With [`with_max_interval`](Self::with_max_interval)`(M)`: while no candidate is held and the heads span more
///    than `M`, the earliest head is dropped; every emitted set then has size `<= M`.
/// 7. With [`with_inter_message_lower_bound`](Self::with_inter_message_lower_bound)`(c, B)` and messages on `c`
///    at least `B` apart, sets are emitted as soon as the bound proves them minimal (earlier than without it),
///    and are the same sets.
///
/// # Relation to ROS 2
///
/// The state machine is the one of `approximate_time.hpp`: a candidate set with its pivot channel, heads that
/// advance past the earliest message, the "virtual" search that uses inter-message lower bounds to prove
/// optimality before the next message arrives, the head drop for a too-wide interval, and the queue-overflow
/// rule. Where ROS moves messages to a `past_` vector and recovers them, this type keeps them in place and moves a
/// per-channel cursor, which is the same thing. Every input gives the same output as ROS 2, including:
///
/// - **Overflow**: the arriving message first takes part in the search (a channel holds `Q + 1` messages during
///   it); only then, if the channel holds more than `Q` messages, every hidden message is recovered, the
///   channel's oldest message is dropped ([`SyncStats::overflowed`]), the candidate is abandoned and the search
///   restarts. A channel that has just overflowed cannot be the pivot of a new candidate until a search step sees
///   another channel's head as the latest (ROS's `has_dropped_messages_`): while it would be, the earliest head is
///   dropped instead. Queues of one message work as in ROS.
/// - **Better candidates** drop, for good, the messages the search had passed over, as ROS's `makeCandidate`
///   clears `past_`.
/// - **Ties**: the pivot is the latest head with the highest channel index, the earliest head the one with the
///   lowest index, as ROS's boundary scans.
/// - **Out-of-order stamps** are accepted, as ROS does (it only warns); the arithmetic is signed like ROS's.
///   The guarantees above then do not hold, and [`bound_violated`](Self::bound_violated) reports it.
///
/// Deliberate differences, with reasons:
///
/// - **Age penalty arithmetic**: ROS multiplies an integer nanosecond duration by the `double` `1 + α` and
///   truncates toward zero; here `α` is an integer number of parts per million and the product is computed
///   exactly, then truncated toward zero. The results are identical for the default `α = 0.1` (and for `0`,
///   `0.25`, `0.5`, `1`, ...) whenever the durations compared are below about `10^14` ns (28 hours); beyond
///   that, or for an `α` whose `double` is below its decimal value, ROS's rounding can differ at exact ties.
///   Integers make the output identical on every target.
/// - **Bound violations** ([`bound_violated`](Self::bound_violated)) are flagged whenever a channel's message is
///   earlier than, or closer than its lower bound to, the previous message accepted on it; ROS logs a warning
///   once, and skips the check when the previous message was already emitted. This only affects the flag.
/// - ROS rejects `queue_size` 0 by assertion; here `Q >= 1` is checked at compile time.
///
/// # Capacity
///
/// `Q` is ROS's `queue_size`: a channel keeps at most `Q` messages from its oldest undropped one on. To avoid
/// overflow, `Q` must cover every message of the channel that can arrive before a set is proven: about
/// `rate(channel) / rate(slowest channel) + 2`, plus `rate(channel) × the largest arrival skew between channels`.
#[derive(Clone, Debug)]
pub struct ApproximateTime<T, const K: usize, const Q: usize> {
    /// Per channel, the messages kept (ROS's `past_[c]` followed by `deques_[c]`), oldest first.
    queues: [Deque<Timed<T>, Q>; K],
    /// A message that arrived on a full channel: logically the last message of that channel's queue until the
    /// overflow rule runs (ROS holds `queue_size + 1` messages during the search).
    spill: Option<(usize, Timed<T>)>,
    /// Per channel, the index of the head in `queues` (ROS's `past_[c].size()`).
    cursor: [usize; K],
    candidate: Option<Candidate>,
    /// ROS's `has_dropped_messages_`: the channel overflowed and may not become the pivot yet.
    just_overflowed: [bool; K],
    lower_bounds: [u64; K],
    bound_violated: [bool; K],
    last: [Option<Timestamp>; K],
    age_penalty_ppm: u32,
    max_interval: Option<u64>,
    stats: SyncStats,
}

/// The best set found so far: the front message of every queue.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    pivot: usize,
    pivot_time: i128,
    start: i128,
    end: i128,
}

const PPM: i128 = 1_000_000;

impl<T: Copy, const K: usize, const Q: usize> Default for ApproximateTime<T, K, Q> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const K: usize, const Q: usize> ApproximateTime<T, K, Q> {
    /// An empty synchroniser with ROS's defaults: age penalty 0.1 ([`ROS_AGE_PENALTY_PPM`]), no maximum interval,
    /// no inter-message lower bounds. `K` and `Q` must be at least 1 (checked at compile time).
    pub const fn new() -> Self {
        let () = Capacity::<K, Q>::CHECKED;
        Self {
            queues: [const { Deque::new() }; K],
            spill: None,
            cursor: [0; K],
            candidate: None,
            just_overflowed: [false; K],
            lower_bounds: [0; K],
            bound_violated: [false; K],
            last: [None; K],
            age_penalty_ppm: ROS_AGE_PENALTY_PPM,
            max_interval: None,
            stats: SyncStats::ZERO,
        }
    }

    /// Sets the age penalty `α` in parts per million (`α = ppm / 1e6`; ROS `setAgePenalty`).
    pub const fn with_age_penalty_ppm(mut self, ppm: u32) -> Self {
        self.age_penalty_ppm = ppm;
        self
    }

    /// Bounds the size of emitted sets by `max` (ROS `setMaxIntervalDuration`; see guarantee 6).
    pub const fn with_max_interval(mut self, max: Duration) -> Self {
        let n = max.as_nanos();
        self.max_interval = Some(if n > u64::MAX as u128 { u64::MAX } else { n as u64 });
        self
    }

    /// Declares that consecutive messages on `channel` are at least `bound` apart (ROS
    /// `setInterMessageLowerBound`), which lets sets be proven minimal before the next message arrives. An
    /// invalid channel is ignored.
    pub fn with_inter_message_lower_bound(mut self, channel: usize, bound: Duration) -> Self {
        if let Some(b) = self.lower_bounds.get_mut(channel) {
            *b = duration_nanos(bound);
        }
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

    /// Messages kept on `channel` (0 for an invalid channel).
    pub fn queued(&self, channel: usize) -> usize {
        if channel < K { self.len(channel) } else { 0 }
    }

    /// Whether a message on `channel` arrived earlier than, or closer than the channel's inter-message lower bound
    /// to, the previous one (sticky; ROS logs this as a warning). When set, the guarantees do not hold.
    pub fn bound_violated(&self, channel: usize) -> bool {
        self.bound_violated.get(channel).copied().unwrap_or(false)
    }

    /// Offers a message on `channel`; calls `emit` with every set this completes, oldest first. Returns how many
    /// sets were emitted (one push can complete several). Only an invalid channel is refused.
    pub fn push(
        &mut self,
        channel: usize,
        stamp: Timestamp,
        value: T,
        mut emit: impl FnMut(&[Timed<T>; K]),
    ) -> Result<usize, PushError> {
        self.stats.admit(K, channel, stamp, |_| None)?;
        if let Some(prev) = self.last[channel] {
            if stamp < prev || stamp.as_nanos() - prev.as_nanos() < self.lower_bounds[channel] {
                self.bound_violated[channel] = true;
            }
        }
        self.last[channel] = Some(stamp);
        let message = Timed { stamp, value };
        if let Err(message) = self.queues[channel].push_back(message) {
            self.spill = Some((channel, message));
        }
        let mut emitted = self.process(&mut emit);
        if let Some((c, message)) = self.spill.take() {
            // The channel still holds Q + 1 messages after the search: recover every hidden message, drop the
            // channel's oldest, abandon the candidate and search again.
            self.cursor = [0; K];
            self.queues[c].pop_front();
            // Cannot fail: a slot was just freed.
            let _ = self.queues[c].push_back(message);
            self.stats.overflowed += 1;
            self.just_overflowed[c] = true;
            if self.candidate.take().is_some() {
                emitted += self.process(&mut emit);
            }
        }
        Ok(emitted)
    }

    /// Messages kept on `channel`, the spilled one included.
    fn len(&self, channel: usize) -> usize {
        self.queues[channel].len() + usize::from(matches!(self.spill, Some((c, _)) if c == channel))
    }

    fn stamp_at(&self, channel: usize, index: usize) -> i128 {
        let q = &self.queues[channel];
        let m = match q.get(index) {
            Some(m) => Some(m),
            None => match &self.spill {
                Some((c, m)) if *c == channel && index == q.len() => Some(m),
                _ => None,
            },
        };
        // Callers only ask for indices below `len`.
        i128::from(m.map_or(u64::MAX, |m| m.stamp.as_nanos()))
    }

    /// Removes the oldest message of `channel`; the spilled message moves into the freed slot.
    fn pop_front(&mut self, channel: usize) {
        if self.queues[channel].pop_front().is_some() {
            if let Some((c, m)) = self.spill {
                if c == channel {
                    self.spill = None;
                    // Cannot fail: a slot was just freed.
                    let _ = self.queues[channel].push_back(m);
                }
            }
        }
    }

    fn has_head(&self, channel: usize) -> bool {
        self.cursor[channel] < self.len(channel)
    }

    /// `d · (1 + α)`, truncated toward zero like ROS's `Duration * double`.
    fn scaled(&self, d: i128) -> i128 {
        d * (PPM + i128::from(self.age_penalty_ppm)) / PPM
    }

    /// The channel and time of the earliest (lowest index among ties) and the latest (highest index among ties)
    /// of `time(c)` over all channels.
    fn bounds(time: impl Fn(usize) -> i128) -> ((usize, i128), (usize, i128)) {
        let mut earliest = (0, time(0));
        let mut latest = earliest;
        for c in 1..K {
            let t = time(c);
            if t < earliest.1 {
                earliest = (c, t);
            }
            if t >= latest.1 {
                latest = (c, t);
            }
        }
        (earliest, latest)
    }

    /// ROS's `process()`: runs the search while every channel has a head; emits every set it proves.
    fn process(&mut self, emit: &mut impl FnMut(&[Timed<T>; K])) -> usize {
        let mut emitted = 0;
        while (0..K).all(|c| self.has_head(c)) {
            let ((start_c, start), (end_c, end)) = Self::bounds(|c| self.stamp_at(c, self.cursor[c]));
            for (c, flag) in self.just_overflowed.iter_mut().enumerate() {
                if c != end_c {
                    *flag = false;
                }
            }
            let cand = match self.candidate {
                None => {
                    let too_wide = self.max_interval.is_some_and(|m| end - start > i128::from(m));
                    if too_wide || self.just_overflowed[end_c] {
                        self.pop_front(start_c);
                        self.stats.dropped += 1;
                        continue;
                    }
                    // No candidate means every cursor is 0: the heads are the queue fronts.
                    Candidate {
                        pivot: end_c,
                        pivot_time: end,
                        start,
                        end,
                    }
                }
                Some(cand) => {
                    if self.scaled(end - cand.end) >= start - cand.start {
                        cand
                    } else {
                        // A better candidate: the messages passed over are dropped for good.
                        self.discard_before_cursors();
                        Candidate { start, end, ..cand }
                    }
                }
            };
            self.candidate = Some(cand);
            self.cursor[start_c] += 1;
            if start_c == cand.pivot || self.scaled(end - cand.end) >= cand.pivot_time - cand.start {
                emitted += self.publish(emit);
            } else if !(0..K).all(|c| self.has_head(c)) {
                if self.virtual_search(cand) {
                    emitted += self.publish(emit);
                } else {
                    break;
                }
            }
        }
        emitted
    }

    /// Tries to prove the candidate optimal from the inter-message lower bounds: a channel without a head gets
    /// the earliest time its next message can have. Returns whether it is proven; otherwise the cursors are left
    /// as they were.
    fn virtual_search(&mut self, cand: Candidate) -> bool {
        let mut moved = [0usize; K];
        let proven = loop {
            let virtual_time = |c: usize| {
                if self.has_head(c) {
                    self.stamp_at(c, self.cursor[c])
                } else {
                    // A candidate exists, so the channel keeps at least its candidate message.
                    let next = self.stamp_at(c, self.len(c) - 1) + i128::from(self.lower_bounds[c]);
                    next.max(cand.pivot_time)
                }
            };
            let ((start_c, start), (_, end)) = Self::bounds(virtual_time);
            let end_cost = self.scaled(end - cand.end);
            if end_cost >= cand.pivot_time - cand.start {
                break true;
            }
            if end_cost < start - cand.start || !self.has_head(start_c) {
                // An optimistic later set could be better. (A headless earliest channel cannot happen: its
                // virtual time is at least the pivot time, where one of the two tests above holds.)
                break false;
            }
            self.cursor[start_c] += 1;
            moved[start_c] += 1;
        };
        if !proven {
            for (cursor, m) in self.cursor.iter_mut().zip(moved) {
                *cursor -= m;
            }
        }
        proven
    }

    /// Drops every message before the cursors (ROS clears `past_` when it finds a better candidate).
    fn discard_before_cursors(&mut self) {
        for c in 0..K {
            for _ in 0..self.cursor[c] {
                self.pop_front(c);
            }
            self.stats.dropped += self.cursor[c] as u64;
            self.cursor[c] = 0;
        }
    }

    /// Emits the candidate (the queue fronts), removes it and restarts from the new fronts.
    fn publish(&mut self, emit: &mut impl FnMut(&[Timed<T>; K])) -> usize {
        self.candidate = None;
        self.cursor = [0; K];
        let set = collect_set::<T, K>(|c| self.queues[c].front().copied());
        for c in 0..K {
            self.pop_front(c);
        }
        match set {
            Some(set) => {
                self.stats.emitted += 1;
                emit(&set);
                1
            }
            // Unreachable: a candidate holds a message on every channel.
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::sync::ts;
    extern crate std;
    use std::vec::Vec;

    fn run<const K: usize, const Q: usize>(s: &mut ApproximateTime<u32, K, Q>, msgs: &[(usize, u64)]) -> Vec<[u64; K]> {
        let mut out = Vec::new();
        for (i, &(c, t)) in msgs.iter().enumerate() {
            s.push(c, ts(t), i as u32, |set| out.push(set.map(|m| m.stamp.as_nanos())))
                .unwrap();
        }
        out
    }

    #[test]
    fn pairs_each_slow_message_with_its_nearest_fast_one() {
        // Channel 0 every 10 (0..110), channel 1 at 23, 52, 81, 110: each pairs with the nearest sample.
        let mut s = ApproximateTime::<u32, 2, 16>::new().with_age_penalty_ppm(0);
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
        let mut s = ApproximateTime::<u32, 2, 16>::new().with_age_penalty_ppm(0);
        assert_eq!(run(&mut s, &[(0, 10), (1, 14)]), Vec::<[u64; 2]>::new());
        // (12, 14) is better than (10, 14), but a later message on channel 0 could be better still.
        assert_eq!(run(&mut s, &[(0, 12)]), Vec::<[u64; 2]>::new());
        // 30 on channel 0 proves (12, 14) optimal.
        assert_eq!(run(&mut s, &[(0, 30)]), [[12, 14]]);
        assert_eq!(s.stats().dropped, 1);
        // A lower bound of 20 on channel 0 proves it when 12 arrives: the next message is at 32 or later.
        let mut s = ApproximateTime::<u32, 2, 16>::new()
            .with_age_penalty_ppm(0)
            .with_inter_message_lower_bound(0, Duration::from_nanos(2));
        assert_eq!(run(&mut s, &[(0, 10), (1, 14), (0, 12)]), Vec::<[u64; 2]>::new());
        let mut s = ApproximateTime::<u32, 2, 16>::new()
            .with_age_penalty_ppm(0)
            .with_inter_message_lower_bound(0, Duration::from_nanos(4));
        assert_eq!(run(&mut s, &[(0, 10), (1, 14), (0, 12)]), [[12, 14]]);
    }

    #[test]
    fn age_penalty_prefers_earlier_sets() {
        // Channel 1 at 5000; channel 0 at 0 and 9800. Without penalty (9800, 5000) (size 4800) beats (0, 5000)
        // (size 5000); with α = 0.1 the later set costs 4800 + 0.1 · 4800 = 5280 and loses.
        let msgs = [(0, 0), (1, 5000), (0, 9800), (0, 20000)];
        let mut plain = ApproximateTime::<u32, 2, 16>::new().with_age_penalty_ppm(0);
        assert_eq!(run(&mut plain, &msgs), [[9800, 5000]]);
        let mut ros = ApproximateTime::<u32, 2, 16>::new();
        assert_eq!(ros.age_penalty_ppm(), ROS_AGE_PENALTY_PPM);
        assert_eq!(run(&mut ros, &msgs), [[0, 5000]]);
    }

    #[test]
    fn max_interval_drops_wide_heads() {
        let mut s = ApproximateTime::<u32, 2, 16>::new().with_max_interval(Duration::from_nanos(5));
        let out = run(&mut s, &[(0, 0), (0, 100), (1, 103), (0, 200), (1, 400), (0, 500)]);
        assert_eq!(out, [[100, 103]]);
    }

    #[test]
    fn queue_of_one_still_matches_and_overflowed_channel_is_not_pivot() {
        // With Q = 1, the arriving message is searched with the one it replaces: (0, 1) is emitted when 2 arrives
        // on channel 0 although channel 0 then holds two messages.
        let mut s = ApproximateTime::<u32, 2, 1>::new();
        assert_eq!(run(&mut s, &[(0, 0), (1, 1), (0, 2)]), [[0, 1]]);
        assert_eq!(s.stats().overflowed, 0);
        // Channel 0 overflows (3 replaces 2 after the search); then channel 0's head 3 is the latest but may not
        // be the pivot, so channel 1's head 1 is dropped instead of making a candidate.
        let mut s = ApproximateTime::<u32, 2, 1>::new();
        assert_eq!(run(&mut s, &[(0, 2), (0, 3), (1, 1)]), Vec::<[u64; 2]>::new());
        assert_eq!(s.stats().overflowed, 1);
        assert_eq!(s.stats().dropped, 1);
        assert_eq!(s.queued(1), 0);
    }

    #[test]
    fn accepts_out_of_order_like_ros_and_flags_it() {
        let mut s = ApproximateTime::<u32, 2, 4>::new().with_inter_message_lower_bound(1, Duration::from_nanos(5));
        s.push(0, ts(10), 0, |_| {}).unwrap();
        s.push(0, ts(9), 0, |_| {}).unwrap();
        assert!(s.bound_violated(0));
        assert!(!s.bound_violated(1));
        s.push(1, ts(20), 0, |_| {}).unwrap();
        s.push(1, ts(22), 0, |_| {}).unwrap();
        assert!(s.bound_violated(1));
        assert_eq!(s.push(2, ts(9), 0, |_| {}), Err(PushError::InvalidChannel));
        assert_eq!(s.stats().rejected, 1);
        assert!(!s.bound_violated(7));
    }

    #[test]
    fn one_push_can_emit_several_sets() {
        let mut s = ApproximateTime::<u32, 2, 16>::new().with_age_penalty_ppm(0);
        let out = run(&mut s, &[(1, 15), (1, 16), (1, 50), (0, 10)]);
        assert_eq!(out, Vec::<[u64; 2]>::new());
        let out = run(&mut s, &[(0, 20)]);
        assert_eq!(out, [[10, 15], [20, 16]]);
    }
}
