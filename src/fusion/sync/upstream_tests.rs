//! The scenarios of ROS 2 `message_filters`' own unit tests (release 6.0.6, `test/`), ported as Rust tests with
//! the same inputs and expected outputs (the file and test name are cited on each). Times are whole seconds as in
//! the originals.

extern crate std;

use core::time::Duration;
use std::vec::Vec;

use super::{ApproximateEpsilonTime, ApproximateTime, ExactTime, LatestTime, SlopTime, Timed};
use crate::fusion::time::Timestamp;

const S: u64 = 1_000_000_000;

fn sec(n: u64) -> Timestamp {
    Timestamp::from_nanos(n * S)
}

/// Feeds `(seconds, channel)` arrivals through `push` (channel, stamp, emit) and returns the emitted sets as
/// stamps in seconds.
fn sets_in_seconds<const K: usize>(
    input: &[(u64, usize)],
    mut push: impl FnMut(usize, Timestamp, &mut dyn FnMut(&[Timed<u32>; K])),
) -> Vec<[u64; K]> {
    let mut out = Vec::new();
    for &(t, c) in input {
        push(c, sec(t), &mut |set| out.push(set.map(|m| m.stamp.as_nanos() / S)));
    }
    out
}

fn approx<const K: usize, const Q: usize>(mut s: ApproximateTime<u32, K, Q>, input: &[(u64, usize)]) -> Vec<[u64; K]> {
    sets_in_seconds(input, |c, t, emit| {
        s.push(c, t, 0, emit).unwrap();
    })
}

// test_approximate_time_policy.cpp (queue size 10 unless stated; ROS's default age penalty 0.1).

#[test]
fn approx_exact_match() {
    let input = [(0, 0), (0, 1), (3, 0), (3, 1), (6, 0), (6, 1)];
    assert_eq!(
        approx(ApproximateTime::<_, 2, 10>::new(), &input),
        [[0, 0], [3, 3], [6, 6]]
    );
}

#[test]
fn approx_perfect_match() {
    let input = [(0, 0), (1, 1), (3, 0), (4, 1), (6, 0), (7, 1)];
    assert_eq!(approx(ApproximateTime::<_, 2, 10>::new(), &input), [[0, 1], [3, 4]]);
}

#[test]
fn approx_imperfect_match() {
    let input = [(0, 0), (1, 1), (2, 0), (3, 0), (5, 1), (6, 0), (7, 1)];
    assert_eq!(approx(ApproximateTime::<_, 2, 10>::new(), &input), [[0, 1], [6, 5]]);
}

#[test]
fn approx_acceleration() {
    let input = [(0, 0), (7, 1), (12, 0), (15, 1), (17, 0), (18, 1)];
    assert_eq!(approx(ApproximateTime::<_, 2, 10>::new(), &input), [[12, 7], [17, 18]]);
}

#[test]
fn approx_dropped_messages() {
    let input = [
        (0, 0),
        (1, 1),
        (3, 1),
        (4, 0),
        (7, 1),
        (8, 0),
        (10, 0),
        (11, 1),
        (13, 0),
        (14, 1),
    ];
    // Queue size 1 (too small).
    assert_eq!(approx(ApproximateTime::<_, 2, 1>::new(), &input), [[4, 3], [10, 11]]);
    // Queue size 2 (just enough).
    assert_eq!(
        approx(ApproximateTime::<_, 2, 2>::new(), &input),
        [[0, 1], [4, 3], [8, 7], [10, 11]]
    );
}

#[test]
fn approx_long_queue() {
    let mut input: Vec<(u64, usize)> = (0..=8).map(|t| (t, 0)).collect();
    input.extend([(3, 1), (9, 0), (10, 0), (11, 0), (12, 0), (10, 1), (13, 0)]);
    assert_eq!(approx(ApproximateTime::<_, 2, 5>::new(), &input), [[10, 10]]);
}

#[test]
fn approx_double_publish() {
    let input = [(0, 0), (1, 1), (3, 1), (3, 0)];
    assert_eq!(approx(ApproximateTime::<_, 2, 10>::new(), &input), [[0, 1], [3, 3]]);
}

#[test]
fn approx_four_topics() {
    let input = [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 3),
        (5, 0),
        (5, 3),
        (6, 1),
        (6, 2),
        (8, 0),
        (9, 1),
        (10, 2),
        (11, 3),
        (10, 0),
        (13, 0),
        (14, 1),
    ];
    assert_eq!(
        approx(ApproximateTime::<_, 4, 10>::new(), &input),
        [[0, 1, 2, 3], [5, 6, 6, 5], [10, 9, 10, 11]]
    );
}

#[test]
fn approx_early_publish() {
    let input = [(0, 0), (1, 1), (2, 2), (3, 3), (7, 0)];
    assert_eq!(approx(ApproximateTime::<_, 4, 10>::new(), &input), [[0, 1, 2, 3]]);
}

#[test]
fn approx_rate_bound() {
    let input = [(0, 0), (1, 1), (3, 0), (4, 1), (6, 0), (7, 1)];
    let bound = |b: Duration| ApproximateTime::<_, 2, 10>::new().with_inter_message_lower_bound(0, b);
    assert_eq!(approx(bound(Duration::from_millis(1500)), &input), [[0, 1], [3, 4]]);
    assert_eq!(approx(bound(Duration::from_secs(2)), &input), [[0, 1], [3, 4], [6, 7]]);
}

// test_approximate_epsilon_time_policy.cpp

fn epsilon(eps: Duration, input: &[(u64, usize)]) -> Vec<[u64; 2]> {
    let mut s = ApproximateEpsilonTime::<u32, 2, 10>::new(eps);
    sets_in_seconds(input, |c, t, emit| {
        s.push(c, t, 0, emit).unwrap();
    })
}

#[test]
fn epsilon_exact_match() {
    let input = [(0, 0), (0, 1), (3, 0), (3, 1), (6, 0), (6, 1)];
    assert_eq!(epsilon(Duration::from_millis(500), &input), [[0, 0], [3, 3], [6, 6]]);
}

#[test]
fn epsilon_perfect_match() {
    let input = [(0, 0), (1, 1), (3, 0), (4, 1), (6, 0), (7, 1)];
    assert_eq!(epsilon(Duration::from_millis(1500), &input), [[0, 1], [3, 4], [6, 7]]);
}

#[test]
fn epsilon_imperfect_match() {
    let input = [(0, 0), (1, 1), (2, 0), (3, 0), (4, 1), (6, 0), (7, 1)];
    assert_eq!(epsilon(Duration::from_millis(1500), &input), [[0, 1], [3, 4], [6, 7]]);
}

// test_exact_time_policy.cpp

#[test]
fn exact_multiple_times() {
    let mut s = ExactTime::<u32, 3, 2>::new();
    let mut count = 0;
    let t1 = Timestamp::from_nanos(100_000_000);
    for (c, t, expect) in [(0, Timestamp::ZERO, 0), (1, t1, 0), (0, t1, 0), (2, t1, 1)] {
        s.push(c, t, 0, |_| count += 1).unwrap();
        assert_eq!(count, expect);
    }
}

#[test]
fn exact_queue_size() {
    let mut s = ExactTime::<u32, 3, 1>::new();
    let mut count = 0;
    let t1 = Timestamp::from_nanos(100_000_000);
    for (c, t) in [
        (0, Timestamp::ZERO),
        (1, Timestamp::ZERO),
        (1, t1),
        (1, Timestamp::ZERO),
        (2, Timestamp::ZERO),
    ] {
        s.push(c, t, 0, |_| count += 1).unwrap();
        assert_eq!(count, 0);
    }
}

#[test]
fn exact_drop_callback() {
    let mut s = ExactTime::<u32, 2, 1>::new();
    s.push(0, Timestamp::ZERO, 0, |_| {}).unwrap();
    assert_eq!(s.stats().overflowed, 0);
    s.push(0, Timestamp::from_nanos(100_000_000), 0, |_| {}).unwrap();
    // ROS calls the drop callback once, for the tuple at 0.
    assert_eq!(s.stats().overflowed, 1);
}

// test_latest_time_policy.cpp (tag 6.0.6): three channels p = 0 (every tick), q = 1 (every 2nd tick), r = 2
// (every 4th tick), ticks 20 ms apart. A message's value is its index in ROS's `p`, `q`, `r` vectors times the
// channel's period in ticks (ROS's `data`), so `q[k]` is `2k` and `r[k]` is `4k`.

/// A LatestTime on a simulated clock, with ROS's test `Helper` (the last set and the callback count).
struct LatestRig {
    sync: LatestTime<usize, 3, std::boxed::Box<dyn FnMut() -> Timestamp>>,
    now: std::rc::Rc<core::cell::Cell<u64>>,
    /// Nanoseconds the clock moves before each add: 1 µs for the real-clock tests, 0 for the simulated clock.
    step: u64,
    last: Option<[usize; 3]>,
    count: usize,
}

impl LatestRig {
    fn new(step: u64) -> Self {
        let now = std::rc::Rc::new(core::cell::Cell::new(0u64));
        let clock = now.clone();
        Self {
            sync: LatestTime::with_clock(std::boxed::Box::new(move || Timestamp::from_nanos(clock.get()))),
            now,
            step,
            last: None,
            count: 0,
        }
    }

    /// Moves the clock to the start of tick `idx`.
    fn tick(&self, idx: usize) {
        self.now.set(idx as u64 * 20_000_000);
    }

    /// ROS's `sync.add<c>(msg)` (messages carry no stamp in the original: LatestTime reads the clock).
    fn add(&mut self, c: usize, data: usize) {
        self.now.set(self.now.get() + self.step);
        let (last, count) = (&mut self.last, &mut self.count);
        self.sync
            .push(c, Timestamp::ZERO, data, |set: &[Timed<usize>; 3]| {
                *last = Some(set.map(|m| m.value));
                *count += 1;
            })
            .unwrap();
    }
}

// "Leading" and "Trailing" run on the real clock, adding within a tick microseconds apart: simulated here.

#[test]
fn latest_leading() {
    let mut h = LatestRig::new(1_000);
    for idx in 0..8 {
        h.tick(idx);
        if idx % 2 == 0 {
            h.add(1, idx);
        }
        if idx % 4 == 0 {
            h.add(2, idx);
        }
        h.add(0, idx);
        assert_eq!(h.count, idx);
        if idx > 0 {
            assert_eq!(h.last, Some([idx, idx / 2 * 2, idx / 4 * 4]));
        } else {
            assert_eq!(h.last, None);
        }
    }
}

#[test]
fn latest_trailing() {
    let mut h = LatestRig::new(1_000);
    for idx in 0..8 {
        h.tick(idx);
        if idx % 2 == 1 {
            h.add(1, idx - 1);
        }
        if idx % 4 == 3 {
            h.add(2, idx - 3);
        }
        h.add(0, idx);
        if idx > 2 {
            assert_eq!(h.count, idx - 2);
            assert_eq!(h.last, Some([idx, (idx - 1) / 2 * 2, (idx - 3) / 4 * 4]));
        } else {
            assert_eq!(h.last, None);
        }
    }
}

// "ChangeRateLeading" and "ChangeRateTrailing" run on a simulated clock (`use_sim_time`, `/clock` published 20 ms
// further after each tick), so every add within a tick sees the same time. From tick 4 on, p slows to every
// third tick; the expectations (and ROS's comments on them, abridged) are the original's.

#[test]
fn latest_change_rate_leading() {
    let mut h = LatestRig::new(0);
    let mut p_idx = 3;
    for idx in 0..12 {
        h.tick(idx);
        if idx % 2 == 0 {
            h.add(1, idx);
        }
        if idx % 4 == 0 {
            h.add(2, idx);
        }
        if idx < 4 {
            h.add(0, idx);
        } else if idx % 3 == 0 {
            p_idx += 1;
            h.add(0, p_idx);
        }
        if (1..4).contains(&idx) {
            // Like "Leading".
            assert_eq!(h.count, idx, "tick {idx}");
            assert_eq!(h.last, Some([idx, idx / 2 * 2, 0]), "tick {idx}");
        } else if (4..6).contains(&idx) {
            // p is not yet known to be late when q arrives at tick 4: nothing until q becomes the pivot at 6.
            assert_eq!(h.count, (idx + 2) / 2, "tick {idx}");
            assert_eq!(h.last, Some([3, 2, 0]), "tick {idx}");
        } else if idx >= 6 {
            // "Leading" again, pivot q.
            assert_eq!(h.count, (idx + 2) / 2, "tick {idx}");
            assert_eq!(h.last, Some([idx / 2, idx / 2 * 2, (idx - 2) / 4 * 4]), "tick {idx}");
        } else {
            assert_eq!(h.last, None, "tick {idx}");
        }
    }
}

#[test]
fn latest_change_rate_trailing() {
    let mut h = LatestRig::new(0);
    let mut p_idx = 3;
    for idx in 0..12 {
        h.tick(idx);
        if idx % 2 == 1 {
            h.add(1, idx - 1);
        }
        if idx % 4 == 3 {
            h.add(2, idx - 3);
        }
        if idx < 4 {
            h.add(0, idx);
        } else if idx % 3 == 1 {
            p_idx += 1;
            h.add(0, p_idx);
        }
        if idx > 2 && idx <= 4 {
            // Like "Trailing" (p is still at its old rate at tick 4).
            assert_eq!(h.count, idx - 2, "tick {idx}");
            assert_eq!(h.last, Some([idx, (idx - 1) / 2 * 2, (idx - 3) / 4 * 4]), "tick {idx}");
        } else if idx > 4 && idx < 7 {
            // At tick 5 the policy does not yet know that p is late when q arrives.
            assert_eq!(h.count, 2, "tick {idx}");
            assert_eq!(h.last, Some([4, 2, 0]), "tick {idx}");
        } else if idx >= 7 {
            // p is found late when q arrives at tick 7: q is the new pivot, r now trails.
            assert_eq!(h.count, (idx - 1) / 2, "tick {idx}");
            assert_eq!(
                h.last,
                Some([idx.div_ceil(2), (idx - 1) / 2 * 2, (idx - 5) / 4 * 4]),
                "tick {idx}"
            );
        } else {
            assert_eq!(h.last, None, "tick {idx}");
        }
    }
}

// test_approxsync.py

/// `0..n` in a fixed scrambled order (the original uses `random.sample`).
fn scrambled(n: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n).collect();
    order.sort_by_key(|t| (t * 2_654_435_761) % 97);
    order
}

#[test]
fn python_pairs_and_scrambled_sequences() {
    // Pairs with equal stamps, queue size 1, slop 0.1 s.
    let mut s = SlopTime::<u32, 2, 1>::new(Duration::from_millis(100));
    for t in 0..10 {
        let mut got = None;
        s.push(0, sec(t), 33, |_| got = Some([0, 0])).unwrap();
        assert_eq!(got, None);
        s.push(1, sec(t), 34, |set| got = Some(set.map(|m| m.value))).unwrap();
        assert_eq!(got, Some([33, 34]));
    }
    // Scrambled sequences of length N with queue size N are recombined.
    for n in 1..10u64 {
        let mut s = SlopTime::<u64, 2, 9>::new(Duration::from_millis(100));
        let mut out = Vec::new();
        let order = scrambled(n);
        for &t in &order {
            s.push(0, sec(t), t, |_| panic!("emitted before channel 1")).unwrap();
        }
        for &t in order.iter().rev() {
            s.push(1, sec(t), t, |set| out.push(set.map(|m| m.value))).unwrap();
        }
        out.sort_unstable();
        assert_eq!(out, (0..n).map(|t| [t, t]).collect::<Vec<_>>());
    }
}

#[test]
fn python_headerless_messages_take_the_arrival_time() {
    for n in 1..10u64 {
        let start = 1_000 * S;
        let mut s = SlopTime::<u64, 2, 9>::new(Duration::from_secs(10)).allow_headerless();
        let mut out = Vec::new();
        let order = scrambled(n);
        for &t in &order {
            s.push(0, Timestamp::from_nanos(start + t * S), t, |_| panic!("emitted early"))
                .unwrap();
        }
        // Headerless messages arrive just after `start`, one microsecond apart.
        for i in 0..n {
            s.push_headerless(1, Timestamp::from_nanos(start + (i + 1) * 1_000), i, |set| {
                out.push(set.map(|m| m.value))
            })
            .unwrap();
        }
        out.sort_unstable();
        assert_eq!(out, (0..n).map(|t| [t, t]).collect::<Vec<_>>());
    }
}
