//! Property tests of the synchronisers on random per-channel timestamp streams.
//!
//! Streams have small gaps (0..=4 ns for ApproximateTime, 0..=2 for ExactTime, so equal stamps within and across
//! channels are frequent) and are pushed in random cross-channel interleavings that keep each channel in order.
//! Each message's value is `(channel, index in its channel)`, so outputs can be compared by index.
//!
//! What is checked, and against what:
//!
//! - **ApproximateTime, brute-force reference** (`approx_reference`): from the heads after the previous set, it
//!   applies the max-interval head-drop rule, then enumerates *every* set `T` with `T[c] >= head[c]` on all
//!   channels and `T[c] == head[c]` on at least one (contiguous), computes the cost `10⁶·(max − min) + ppm·(max −
//!   P)` (`P` the latest head stamp) exactly, and takes the least-cost set, ties to the lexicographically
//!   smallest (it also asserts that this set is componentwise `<=` every other least-cost set, the uniqueness
//!   lemma the rustdoc relies on). Properties: (d1) the online output on the streams is a **prefix** of the
//!   reference's output on the same streams (nothing is emitted that later data could contradict); (d2) after
//!   appending one common sentinel message to every channel, the online output **equals** the reference's
//!   (everything provable is emitted); (a) both hold for two different interleavings (without the sentinel,
//!   one interleaving may have emitted fewer sets so far, as in ROS); (b) sets do not cross and (c) each message is used at most once (per-channel
//!   indices strictly increase from set to set); contiguity (without a max interval, some channel's index is
//!   exactly one past the previous set's); with a max interval, every set spans at most that; no overflow; the
//!   counters account for every message.
//!   With inter-message lower bounds (each channel's least gap), the same equalities hold.
//! - **ApproximateTime vs the ROS 2 model** (`ros_model.rs`, differential): random per-channel rates, phases,
//!   jitter (sometimes out of order), drops and transport latencies, queue sizes 1-10, 2-9 channels (under
//!   emulation 1, 2, 4 or 10 and 2, 3, 5 or 9: each shape is an instantiation of its own), random age penalty,
//!   maximum interval and lower bounds (valid or violated); the sets emitted by every push, the counters and the
//!   queue contents must equal the model's. `SYNC_DIFF_CASES` (or `PROPTEST_CASES`) sets the number of
//!   cases; the default gives about two million pushes on x86 hosts and a 256th of that under emulation.
//! - **ExactTime** vs the set intersection of strictly increasing streams, for two interleavings, and vs a
//!   map-based model of ROS's ExactTime on arbitrary pushes (duplicates, disorder, overflow).
//! - **ApproximateEpsilonTime** vs a model of its loop, on arbitrary pushes; every set spans at most `ε`.
//! - **SlopTime** vs rclpy's exhaustive `itertools.product` search, re-implemented naively, on arbitrary pushes.
//! - **LatestTime**: on random arrival times, every set holds the latest message of every channel and is emitted by
//!   an arrival on a channel that already had a message; and vs the ROS 2 model (`ros_latest_model.rs`,
//!   differential) on random per-channel rates, jitter, drops, rate steps, equal arrival times and rate
//!   configurations (1-5 channels, first arriving in index order): the set published by every push and the final
//!   rate estimates (bit for bit) must equal the model's.
//! - **LatestOfEach** vs a direct simulation of "latest of each at every pivot arrival".
//! - **Robustness**: arbitrary (unordered, any channel index) pushes into small queues: no panic, rejected and
//!   overflowed counted, and emitted sets still never cross and never reuse a message.

extern crate std;

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::ros_latest_model::{RateTuple, RosLatestTime};
use super::ros_model::{Msg as ModelMsg, RosApproximateTime};
use super::{
    ApproximateEpsilonTime, ApproximateTime, ExactTime, LatestOfEach, LatestTime, PushError, RateConfig, SlopTime,
    SyncStats, ts,
};
use crate::fusion::proptest_config::{config, config_scaled};

type Msg = (usize, usize);

/// `K` streams of non-decreasing stamps, each `0..=max_len` long with gaps `0..=max_gap`, and two independent
/// interleavings (sequences of channel labels; the i-th occurrence of `c` is message `i` of channel `c`).
#[allow(clippy::type_complexity)]
fn streams_and_orders<const K: usize>(
    max_len: usize,
    max_gap: u64,
) -> impl Strategy<Value = ([Vec<u64>; K], Vec<usize>, Vec<usize>)> {
    let one = (0u64..6, proptest::collection::vec(0..=max_gap, 0..=max_len)).prop_map(|(base, gaps)| {
        let mut t = base;
        gaps.iter()
            .map(|g| {
                t += g;
                t
            })
            .collect::<Vec<u64>>()
    });
    proptest::array::uniform::<_, K>(one).prop_flat_map(|s| {
        let labels: Vec<usize> = (0..K).flat_map(|c| vec![c; s[c].len()]).collect();
        (
            Just(s),
            Just(labels.clone()).prop_shuffle(),
            Just(labels).prop_shuffle(),
        )
    })
}

/// Per-channel streams with one common sentinel appended, later than everything.
fn with_sentinel<const K: usize>(s: &[Vec<u64>; K]) -> [Vec<u64>; K] {
    let z = s.iter().flatten().copied().max().unwrap_or(0) + 1000;
    core::array::from_fn(|c| {
        let mut v = s[c].clone();
        v.push(z);
        v
    })
}

/// The sentinel pushes after an interleaving: one more message per channel, in channel order.
fn order_with_sentinel<const K: usize>(order: &[usize]) -> Vec<usize> {
    let mut o = order.to_vec();
    o.extend(0..K);
    o
}

/// Pushes the streams in `order` into an ApproximateTime and returns the emitted sets as per-channel indices.
fn run_approx<const K: usize>(
    s: &[Vec<u64>; K],
    order: &[usize],
    ppm: u32,
    max: Option<u64>,
    bounded: bool,
) -> (Vec<[usize; K]>, ApproximateTime<Msg, K, 16>) {
    let mut sync = ApproximateTime::<Msg, K, 16>::new().with_age_penalty_ppm(ppm);
    if let Some(m) = max {
        sync = sync.with_max_interval(core::time::Duration::from_nanos(m));
    }
    if bounded {
        for (c, stream) in s.iter().enumerate() {
            let least_gap = stream.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
            sync = sync.with_inter_message_lower_bound(c, core::time::Duration::from_nanos(least_gap));
        }
    }
    let mut next = [0usize; K];
    let mut out = Vec::new();
    for &c in order {
        let i = next[c];
        next[c] += 1;
        sync.push(c, ts(s[c][i]), (c, i), |set| {
            for (ch, m) in set.iter().enumerate() {
                assert_eq!(m.value.0, ch);
                assert_eq!(m.stamp, ts(s[ch][m.value.1]));
            }
            out.push(set.map(|m| m.value.1));
        })
        .unwrap();
    }
    (out, sync)
}

/// The exhaustive reference (see the module docs).
fn approx_reference<const K: usize>(s: &[Vec<u64>; K], ppm: u32, max: Option<u64>) -> Vec<[usize; K]> {
    let mut heads = [0usize; K];
    let mut out = Vec::new();
    loop {
        if (0..K).any(|c| heads[c] >= s[c].len()) {
            return out;
        }
        let head_t: [u64; K] = core::array::from_fn(|c| s[c][heads[c]]);
        let lo = *head_t.iter().min().unwrap();
        let p = *head_t.iter().max().unwrap();
        if let Some(m) = max {
            if p - lo > m {
                let c = head_t.iter().position(|&t| t == lo).unwrap();
                heads[c] += 1;
                continue;
            }
        }
        let cost = |t: &[usize; K]| -> u128 {
            let times: [u64; K] = core::array::from_fn(|c| s[c][t[c]]);
            let (mn, mx) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
            1_000_000 * u128::from(mx - mn) + u128::from(ppm) * u128::from(mx - p)
        };
        let mut best: Option<(u128, [usize; K])> = None;
        let mut ties: Vec<[usize; K]> = Vec::new();
        let mut cur = heads;
        'enumerate: loop {
            if (0..K).any(|c| cur[c] == heads[c]) {
                let k = cost(&cur);
                match best {
                    Some((b, _)) if k > b => {}
                    Some((b, t)) if k == b => {
                        ties.push(cur);
                        if cur < t {
                            best = Some((k, cur));
                        }
                    }
                    _ => {
                        best = Some((k, cur));
                        ties.clear();
                        ties.push(cur);
                    }
                }
            }
            let mut c = 0;
            loop {
                if c == K {
                    break 'enumerate;
                }
                cur[c] += 1;
                if cur[c] < s[c].len() {
                    break;
                }
                cur[c] = heads[c];
                c += 1;
            }
        }
        let (_, chosen) = best.unwrap();
        for t in &ties {
            assert!(
                (0..K).all(|c| chosen[c] <= t[c]),
                "least-cost sets have no componentwise minimum"
            );
        }
        out.push(chosen);
        heads = core::array::from_fn(|c| chosen[c] + 1);
    }
}

/// Sets never cross and never reuse a message: per-channel indices strictly increase.
fn check_non_crossing<const K: usize>(out: &[[usize; K]]) -> Result<(), TestCaseError> {
    for w in out.windows(2) {
        prop_assert!(
            (0..K).all(|c| w[0][c] < w[1][c]),
            "crossing or reused: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    Ok(())
}

fn approx_case<const K: usize>(
    s: [Vec<u64>; K],
    o1: Vec<usize>,
    o2: Vec<usize>,
    ppm: u32,
    max: Option<u64>,
    bounded: bool,
) -> Result<(), TestCaseError> {
    let (out1, sync1) = run_approx(&s, &o1, ppm, max, bounded);
    let (out2, _) = run_approx(&s, &o2, ppm, max, bounded);
    // (d1) prefix of the reference, for both interleavings (a): when a set is emitted can depend on the
    // interleaving, as in ROS, which searches again only when a channel with no unexamined message receives one.
    let reference = approx_reference(&s, ppm, max);
    for out in [&out1, &out2] {
        prop_assert!(
            out.len() <= reference.len() && out[..] == reference[..out.len()],
            "{:?} vs {:?}",
            out,
            reference
        );
    }
    let stats = sync1.stats();
    prop_assert_eq!((stats.overflowed, stats.rejected), (0, 0));
    prop_assert!((0..K).all(|c| !sync1.bound_violated(c)));

    let ss = with_sentinel(&s);
    // The sentinel's gap is large, so the least gaps (and the bounds) stay valid.
    let (outs1, sync) = run_approx(&ss, &order_with_sentinel::<K>(&o1), ppm, max, bounded);
    let (outs2, _) = run_approx(&ss, &order_with_sentinel::<K>(&o2), ppm, max, bounded);
    prop_assert_eq!(&outs1, &outs2);
    // (d2) with the sentinel, everything is emitted: equality with the reference.
    let reference = approx_reference(&ss, ppm, max);
    prop_assert_eq!(&outs1, &reference);
    // (b), (c)
    check_non_crossing(&outs1)?;
    match max {
        None => {
            // Contiguity: some channel continues right after the previous set.
            let mut prev = [usize::MAX; K];
            for set in &outs1 {
                prop_assert!(
                    (0..K).any(|c| set[c] == prev[c].wrapping_add(1)),
                    "not contiguous: {:?} after {:?}",
                    set,
                    prev
                );
                prev = *set;
            }
        }
        Some(m) => {
            for set in &outs1 {
                let times: Vec<u64> = (0..K).map(|c| ss[c][set[c]]).collect();
                prop_assert!(times.iter().max().unwrap() - times.iter().min().unwrap() <= m);
            }
        }
    }
    // Accounting: every message is in a set, dropped, or still queued.
    let st = sync.stats();
    let total: usize = ss.iter().map(Vec::len).sum();
    let queued: usize = (0..K).map(|c| sync.queued(c)).sum();
    prop_assert_eq!(st.emitted as usize, outs1.len());
    prop_assert_eq!(st.dropped as usize + K * outs1.len() + queued, total);
    Ok(())
}

fn penalty() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(super::ROS_AGE_PENALTY_PPM),
        Just(1_000_000),
        0u32..3_000_000
    ]
}

fn max_interval() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![3 => Just(None), 1 => (0u64..12).prop_map(Some)]
}

/// ExactTime reference for streams without repeated stamps: every stamp present on all channels, increasing.
fn exact_reference<const K: usize>(s: &[Vec<u64>; K]) -> Vec<[usize; K]> {
    let mut stamps: Vec<u64> = s[0].clone();
    stamps.dedup();
    stamps
        .into_iter()
        .filter_map(|t| {
            let idx: Vec<usize> = (0..K).filter_map(|c| s[c].iter().position(|&x| x == t)).collect();
            (idx.len() == K).then(|| core::array::from_fn(|c| idx[c]))
        })
        .collect()
}

fn run_exact<const K: usize>(s: &[Vec<u64>; K], order: &[usize]) -> (Vec<[usize; K]>, super::SyncStats) {
    let mut sync = ExactTime::<Msg, K, 64>::new();
    let mut next = [0usize; K];
    let mut out = Vec::new();
    for &c in order {
        let i = next[c];
        next[c] += 1;
        sync.push(c, ts(s[c][i]), (c, i), |set| {
            assert!(set.iter().all(|m| m.stamp == set[0].stamp));
            out.push(set.map(|m| m.value.1));
        })
        .unwrap();
    }
    (out, sync.stats())
}

proptest! {
    #![proptest_config(config(512))]

    /// ApproximateTime with 2 channels (up to 10 messages each): all properties of the module docs.
    #[test]
    fn approx_time_two_channels(
        (s, o1, o2) in streams_and_orders::<2>(10, 4), ppm in penalty(), max in max_interval(),
        bounded in any::<bool>(),
    ) {
        approx_case(s, o1, o2, ppm, max, bounded)?;
    }

    /// ApproximateTime with 3 channels (up to 8 messages each).
    #[test]
    fn approx_time_three_channels(
        (s, o1, o2) in streams_and_orders::<3>(8, 4), ppm in penalty(), max in max_interval(),
        bounded in any::<bool>(),
    ) {
        approx_case(s, o1, o2, ppm, max, bounded)?;
    }

    /// ExactTime with 3 channels (up to 10 messages each, strictly increasing with gaps 1..=3, so stamps often
    /// coincide across channels): equals the intersection reference for two interleavings; nothing overflows.
    #[test]
    fn exact_time_matches_intersection((s, o1, o2) in streams_and_orders::<3>(10, 2)) {
        let s: [Vec<u64>; 3] = s.map(|v| v.iter().enumerate().map(|(i, t)| t + i as u64).collect());
        let (out1, st1) = run_exact(&s, &o1);
        let (out2, _) = run_exact(&s, &o2);
        prop_assert_eq!(&out1, &out2);
        prop_assert_eq!(&out1, &exact_reference(&s));
        prop_assert_eq!(st1.overflowed, 0);
        check_non_crossing(&out1)?;
    }

    /// LatestOfEach equals a direct simulation: at each pivot arrival, the latest arrived message of every
    /// channel, if all channels have one and all are within the max age of the pivot.
    #[test]
    fn latest_of_each_matches_simulation(
        (s, o1, _o2) in streams_and_orders::<3>(10, 4),
        pivot in 0usize..3,
        max_age in prop_oneof![Just(None), (0u64..10).prop_map(Some)],
    ) {
        let mut sync = LatestOfEach::<Msg, 3>::new(pivot);
        if let Some(a) = max_age {
            sync = sync.with_max_age(core::time::Duration::from_nanos(a));
        }
        let mut next = [0usize; 3];
        let mut latest: [Option<usize>; 3] = [None; 3];
        for &c in &o1 {
            let i = next[c];
            next[c] += 1;
            latest[c] = Some(i);
            let mut got = None;
            sync.push(c, ts(s[c][i]), (c, i), |set| got = Some(set.map(|m| m.value.1))).unwrap();
            let want = if c != pivot || latest.iter().any(Option::is_none) {
                None
            } else {
                let idx: [usize; 3] = core::array::from_fn(|k| latest[k].unwrap());
                let ok = max_age.is_none_or(|a| (0..3).all(|k| s[k][idx[k]].abs_diff(s[c][i]) <= a));
                ok.then_some(idx)
            };
            prop_assert_eq!(got, want);
        }
    }

    /// Arbitrary pushes (any order, invalid channels) into queues of 3: no panic; refusals and overflows are
    /// counted; sets never cross and never reuse a message (by arrival index) even when guarantees are void.
    #[test]
    fn robust_under_disorder_and_overflow(
        pushes in proptest::collection::vec((0usize..4, 0u64..40), 0..80),
        ppm in penalty(),
        max in max_interval(),
    ) {
        let mut approx = ApproximateTime::<usize, 3, 3>::new().with_age_penalty_ppm(ppm);
        if let Some(m) = max {
            approx = approx.with_max_interval(core::time::Duration::from_nanos(m));
        }
        let mut exact = ExactTime::<usize, 3, 3>::new();
        let mut out: Vec<[usize; 3]> = Vec::new();
        let mut exact_out: Vec<[usize; 3]> = Vec::new();
        let mut rejected = 0;
        for (n, &(c, t)) in pushes.iter().enumerate() {
            match approx.push(c, ts(t), n, |set| out.push(set.map(|m| m.value))) {
                Ok(_) => {}
                Err(PushError::InvalidChannel) => { prop_assert!(c >= 3); rejected += 1; }
                Err(e) => prop_assert!(false, "ApproximateTime refused {:?}", e),
            }
            let _ = exact.push(c, ts(t), n, |set| exact_out.push(set.map(|m| m.value)));
        }
        prop_assert_eq!(approx.stats().rejected, rejected);
        check_non_crossing(&out)?;
        let st = approx.stats();
        let accepted = pushes.len() as u64 - rejected;
        let queued: usize = (0..3).map(|c| approx.queued(c)).sum();
        prop_assert_eq!(st.dropped + st.overflowed + 3 * st.emitted + queued as u64, accepted);
        // ExactTime sets have equal stamps (out of order, ROS can emit a set older than the previous one).
        let stamp_of = |n: usize| pushes[n].1;
        for set in &exact_out {
            prop_assert!(set.iter().all(|&n| stamp_of(n) == stamp_of(set[0])));
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// ApproximateTime with 4 channels (up to 5 messages each).
    #[test]
    fn approx_time_four_channels(
        (s, o1, o2) in streams_and_orders::<4>(5, 4), ppm in penalty(), max in max_interval(),
        bounded in any::<bool>(),
    ) {
        approx_case(s, o1, o2, ppm, max, bounded)?;
    }
}

/// One differential scenario: pushes in arrival order, `(channel, stamp)`, and the synchroniser's settings.
#[derive(Clone, Debug)]
struct Scenario {
    k: usize,
    q: usize,
    ppm: u32,
    max: Option<u64>,
    bounds: Vec<u64>,
    pushes: Vec<(usize, u64)>,
}

/// Per channel: period, phase, jitter bound, base latency, and per message (jitter, dropped, extra latency).
type ChannelPlan = (u64, u64, u64, u64, Vec<(u64, bool, u64)>);

fn channel_plan(max_len: usize) -> impl Strategy<Value = ChannelPlan> {
    (1u64..60, 0u64..60, 0u64..8, 0u64..80).prop_flat_map(move |(period, phase, jitter_div, latency)| {
        // Jitter up to the period (rarely more: out-of-order stamps), drops about one in eight.
        let jitter_max = period.checked_div(jitter_div).unwrap_or(2 * period);
        let msg = (0..=jitter_max, proptest::bool::weighted(0.125), 0u64..40);
        proptest::collection::vec(msg, 0..=max_len).prop_map(move |msgs| (period, phase, jitter_max, latency, msgs))
    })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::sample::select(CHANNEL_COUNTS),
        proptest::sample::select(QUEUE_SIZES),
    )
        .prop_flat_map(|(k, q)| {
            let max_len = 240 / k;
            (
                Just(k),
                Just(q),
                prop_oneof![
                    Just(0u32),
                    Just(super::ROS_AGE_PENALTY_PPM),
                    Just(250_000),
                    Just(500_000),
                    Just(1_000_000)
                ],
                prop_oneof![3 => Just(None), 1 => (0u64..80).prop_map(Some)],
                // 0: no bounds, 1: each channel's least gap (valid), 2: that plus a little (violated).
                0u8..3,
                proptest::collection::vec(channel_plan(max_len), k),
                any::<bool>(),
            )
        })
        .prop_map(|(k, q, ppm, max, bound_kind, plans, sorted)| {
            let mut arrivals = Vec::new();
            let mut bounds = Vec::new();
            for (c, (period, phase, _, latency, msgs)) in plans.iter().enumerate() {
                let mut stamps: Vec<(u64, u64)> = msgs
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !m.1)
                    .map(|(i, &(jitter, _, extra))| (phase + i as u64 * period + jitter, latency + extra))
                    .collect();
                if sorted {
                    stamps.sort_by_key(|&(t, _)| t);
                }
                let least_gap = stamps
                    .windows(2)
                    .map(|w| w[1].0.saturating_sub(w[0].0))
                    .min()
                    .unwrap_or(0);
                bounds.push(match bound_kind {
                    0 => 0,
                    1 => least_gap,
                    _ => least_gap + 3,
                });
                // Per-channel arrival order is generation order (a transport keeps a channel's order).
                let mut at = 0;
                for (t, lat) in stamps {
                    at = (t + lat).max(at);
                    arrivals.push((at, c, t));
                }
            }
            arrivals.sort_by_key(|&(at, c, _)| (at, c));
            Scenario {
                k,
                q,
                ppm,
                max,
                bounds,
                pushes: arrivals.into_iter().map(|(_, c, t)| (c, t)).collect(),
            }
        })
}

/// What a run produced: the sets each push emitted (message = push index), counters, messages held.
type RunTrace = (Vec<Vec<Vec<usize>>>, (u64, u64, u64), Vec<usize>);

fn run_library<const K: usize, const Q: usize>(sc: &Scenario) -> RunTrace {
    let mut sync = ApproximateTime::<usize, K, Q>::new().with_age_penalty_ppm(sc.ppm);
    if let Some(m) = sc.max {
        sync = sync.with_max_interval(core::time::Duration::from_nanos(m));
    }
    for (c, &b) in sc.bounds.iter().enumerate() {
        sync = sync.with_inter_message_lower_bound(c, core::time::Duration::from_nanos(b));
    }
    let mut per_push = Vec::with_capacity(sc.pushes.len());
    for (n, &(c, t)) in sc.pushes.iter().enumerate() {
        let mut sets = Vec::new();
        let count = sync
            .push(c, ts(t), n, |set| {
                sets.push(set.iter().map(|m| m.value).collect::<Vec<_>>())
            })
            .unwrap();
        assert_eq!(count, sets.len());
        per_push.push(sets);
    }
    let st = sync.stats();
    (
        per_push,
        (st.emitted, st.dropped, st.overflowed),
        (0..K).map(|c| sync.queued(c)).collect(),
    )
}

/// Defines the channel counts and queue sizes the differential test draws, and `run_library_dyn`, which runs a
/// scenario on the `ApproximateTime<_, K, Q>` of its shape: each (K, Q) pair is an instantiation of its own.
macro_rules! differential_shapes {
    ([$($k:literal),+], $queues:tt) => {
        /// Channel counts the differential test draws.
        const CHANNEL_COUNTS: &[usize] = &[$($k),+];
        differential_shapes!(@queues $queues);

        fn run_library_dyn(sc: &Scenario) -> RunTrace {
            match sc.k {
                $($k => differential_shapes!(@by_queue sc, $k, $queues),)+
                k => unreachable!("{k} channels are never drawn"),
            }
        }
    };
    (@queues [$($q:literal),+]) => {
        /// Queue sizes the differential test draws.
        const QUEUE_SIZES: &[usize] = &[$($q),+];
    };
    (@by_queue $sc:ident, $k:literal, [$($q:literal),+]) => {
        match $sc.q {
            $($q => run_library::<$k, $q>($sc),)+
            q => unreachable!("queue size {q} is never drawn"),
        }
    };
}

// All 80 shapes on x86 hosts. Under emulation the test runs about 80 cases, while compiling the 80 instantiations
// was about a quarter of the unit-test crate's code: there it draws from the extremes and a middle of each range.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
differential_shapes!([2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
differential_shapes!([2, 3, 5, 9], [1, 2, 4, 10]);

fn run_model(sc: &Scenario) -> RunTrace {
    let bounds: Vec<i64> = sc.bounds.iter().map(|&b| b as i64).collect();
    let mut model = RosApproximateTime::new(sc.k, sc.q, f64::from(sc.ppm) / 1e6, sc.max.map(|m| m as i64), &bounds);
    let mut per_push = Vec::with_capacity(sc.pushes.len());
    for (n, &(c, t)) in sc.pushes.iter().enumerate() {
        let before = model.out.len();
        model.add(c, ModelMsg { stamp: t as i64, id: n });
        per_push.push(model.out[before..].to_vec());
    }
    let emitted = model.out.len() as u64;
    (
        per_push,
        (emitted, model.dropped, model.overflowed),
        (0..sc.k).map(|c| model.held(c)).collect(),
    )
}

/// Cases of the differential test: `SYNC_DIFF_CASES` or `PROPTEST_CASES` if set, else 20 000 on x86_64 (about
/// two million pushes; a quarter on i686) and a 256th under emulation (a 64th still took over a minute of aarch64's lib suite under
/// qemu-user on a loaded 2-core machine).
fn differential_config() -> proptest::test_runner::Config {
    let mut c = config_scaled(20_000, 256);
    if let Some(n) = std::env::var("SYNC_DIFF_CASES").ok().and_then(|v| v.parse().ok()) {
        c.cases = n;
    }
    c
}

proptest! {
    #![proptest_config(differential_config())]

    /// ApproximateTime equals the ROS 2 model push for push: same sets emitted by the same push, same drop and
    /// overflow counts, same messages held at the end.
    #[test]
    fn approx_time_equals_ros2_model(sc in scenario()) {
        let lib = run_library_dyn(&sc);
        let model = run_model(&sc);
        for (n, (l, m)) in lib.0.iter().zip(&model.0).enumerate() {
            prop_assert_eq!(l, m, "push {} ({:?}) emitted differently", n, sc.pushes[n]);
        }
        prop_assert_eq!(lib.1, model.1, "(emitted, dropped, overflowed)");
        prop_assert_eq!(lib.2, model.2, "messages held");
    }
}

/// A map-based model of ROS's ExactTime: tuples by stamp, the last message per channel, emission then
/// clearing of older tuples, then trimming to `q` tuples from the oldest.
fn exact_model(k: usize, q: usize, pushes: &[(usize, u64)]) -> Vec<Vec<usize>> {
    let mut tuples: std::collections::BTreeMap<u64, Vec<Option<usize>>> = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for (n, &(c, t)) in pushes.iter().enumerate() {
        let tuple = tuples.entry(t).or_insert_with(|| vec![None; k]);
        tuple[c] = Some(n);
        if tuple.iter().all(Option::is_some) {
            out.push(tuple.iter().map(|m| m.unwrap()).collect());
            tuples.retain(|&s, _| s > t);
        }
        while tuples.len() > q {
            let oldest = *tuples.keys().next().unwrap();
            tuples.remove(&oldest);
        }
    }
    out
}

/// A model of ROS's ApproximateEpsilonTime loop on growable queues.
fn epsilon_model(k: usize, q: usize, eps: u64, pushes: &[(usize, u64)]) -> Vec<Vec<usize>> {
    let mut queues: Vec<std::collections::VecDeque<(u64, usize)>> = vec![Default::default(); k];
    let mut out = Vec::new();
    for (n, &(c, t)) in pushes.iter().enumerate() {
        queues[c].push_back((t, n));
        if queues.iter().all(|q| !q.is_empty()) {
            while queues.iter().all(|q| !q.is_empty()) {
                let oldest = queues.iter().map(|q| q[0].0).min().unwrap();
                if queues.iter().all(|q| q[0].0 <= oldest + eps) {
                    out.push(queues.iter_mut().map(|q| q.pop_front().unwrap().1).collect());
                } else {
                    for q in &mut queues {
                        if q[0].0 <= oldest + eps {
                            q.pop_front();
                        }
                    }
                }
            }
        } else if queues[c].len() > q {
            queues[c].pop_front();
        }
    }
    out
}

/// rclpy's ApproximateTimeSynchronizer.add, re-implemented naively: dictionaries in insertion order, full
/// `itertools.product` enumeration.
fn slop_model(k: usize, q: usize, slop: u64, pushes: &[(usize, u64)]) -> Vec<Vec<usize>> {
    let mut queues: Vec<Vec<(u64, usize)>> = vec![Vec::new(); k];
    let mut out = Vec::new();
    for (n, &(c, t)) in pushes.iter().enumerate() {
        match queues[c].iter_mut().find(|e| e.0 == t) {
            Some(e) => e.1 = n,
            None => queues[c].push((t, n)),
        }
        while queues[c].len() > q {
            let min = queues[c].iter().map(|e| e.0).min().unwrap();
            queues[c].retain(|e| e.0 != min);
        }
        let mut lists: Vec<Vec<u64>> = Vec::new();
        let mut none = false;
        for (j, queue) in queues.iter().enumerate() {
            if j == c {
                continue;
            }
            let mut near: Vec<(u64, u64)> = queue
                .iter()
                .map(|e| (e.0, e.0.abs_diff(t)))
                .filter(|&(_, d)| d <= slop)
                .collect();
            if near.is_empty() {
                none = true;
                break;
            }
            near.sort_by_key(|&(_, d)| d);
            lists.push(near.into_iter().map(|(s, _)| s).collect());
        }
        if none {
            continue;
        }
        // itertools.product: the last list varies fastest.
        let total: usize = lists.iter().map(Vec::len).product();
        for mut idx in 0..total {
            let mut combo = vec![0u64; lists.len()];
            for (d, list) in lists.iter().enumerate().rev() {
                combo[d] = list[idx % list.len()];
                idx /= list.len();
            }
            combo.insert(c, t);
            let (lo, hi) = (*combo.iter().min().unwrap(), *combo.iter().max().unwrap());
            let present = combo
                .iter()
                .enumerate()
                .all(|(j, s)| queues[j].iter().any(|e| e.0 == *s));
            if hi - lo < slop && present {
                let set: Vec<usize> = combo
                    .iter()
                    .enumerate()
                    .map(|(j, s)| queues[j].iter().find(|e| e.0 == *s).unwrap().1)
                    .collect();
                for (j, s) in combo.iter().enumerate() {
                    queues[j].retain(|e| e.0 != *s);
                }
                out.push(set);
                break;
            }
        }
    }
    out
}

fn arbitrary_pushes(k: usize, max_stamp: u64) -> impl Strategy<Value = Vec<(usize, u64)>> {
    proptest::collection::vec((0..k, 0..max_stamp), 0..60)
}

proptest! {
    #![proptest_config(config(512))]

    /// ExactTime equals the model of ROS's ExactTime on arbitrary pushes (duplicate stamps, disorder,
    /// overflow with 1-4 pending sets).
    #[test]
    fn exact_time_equals_ros2_model(pushes in arbitrary_pushes(3, 12), q in 1usize..5) {
        let mut out = Vec::new();
        macro_rules! run { ($q:literal) => {{
            let mut s = ExactTime::<usize, 3, $q>::new();
            for (n, &(c, t)) in pushes.iter().enumerate() {
                s.push(c, ts(t), n, |set| out.push(set.iter().map(|m| m.value).collect::<Vec<_>>())).unwrap();
            }
        }}}
        match q { 1 => run!(1), 2 => run!(2), 3 => run!(3), _ => run!(4) }
        prop_assert_eq!(out, exact_model(3, q, &pushes));
    }

    /// ApproximateEpsilonTime equals the model of its loop on arbitrary pushes; every set spans at most ε.
    #[test]
    fn epsilon_time_equals_ros2_model(pushes in arbitrary_pushes(3, 40), eps in 0u64..6, q in 1usize..4) {
        let mut out = Vec::new();
        macro_rules! run { ($q:literal) => {{
            let mut s = ApproximateEpsilonTime::<usize, 3, $q>::new(core::time::Duration::from_nanos(eps));
            for (n, &(c, t)) in pushes.iter().enumerate() {
                s.push(c, ts(t), n, |set| {
                    let stamps: Vec<u64> = set.iter().map(|m| m.stamp.as_nanos()).collect();
                    assert!(stamps.iter().max().unwrap() - stamps.iter().min().unwrap() <= eps);
                    out.push(set.iter().map(|m| m.value).collect::<Vec<_>>());
                }).unwrap();
            }
        }}}
        match q { 1 => run!(1), 2 => run!(2), _ => run!(3) }
        prop_assert_eq!(out, epsilon_model(3, q, eps, &pushes));
    }

    /// SlopTime equals rclpy's exhaustive search on arbitrary pushes (3 channels, queues of 1-4).
    #[test]
    fn slop_time_equals_rclpy_model(pushes in arbitrary_pushes(3, 30), slop in 0u64..8, q in 1usize..5) {
        let mut out = Vec::new();
        macro_rules! run { ($q:literal) => {{
            let mut s = SlopTime::<usize, 3, $q>::new(core::time::Duration::from_nanos(slop));
            for (n, &(c, t)) in pushes.iter().enumerate() {
                s.push(c, ts(t), n, |set| out.push(set.iter().map(|m| m.value).collect::<Vec<_>>())).unwrap();
            }
        }}}
        match q { 1 => run!(1), 2 => run!(2), 3 => run!(3), _ => run!(4) }
        prop_assert_eq!(out, slop_model(3, q, slop, &pushes));
    }

    /// LatestTime on random arrival times: a set is emitted only by a channel's second or later arrival, holds
    /// the arriving message and the latest message of every channel, and only once every channel has one.
    #[test]
    fn latest_time_emits_the_latest_of_each(
        arrivals in proptest::collection::vec((0usize..3, 0u64..30), 0..80),
    ) {
        let clock = core::cell::Cell::new(0u64);
        let mut s = LatestTime::<usize, 3, _>::with_clock(|| ts(clock.get()));
        let mut latest: [Option<usize>; 3] = [None; 3];
        let mut now = 0;
        for (n, &(c, dt)) in arrivals.iter().enumerate() {
            now += dt;
            clock.set(now);
            let seen_before = latest[c].is_some();
            latest[c] = Some(n);
            let mut got = None;
            s.push(c, ts(now), n, |set| got = Some(set.map(|m| m.value))).unwrap();
            if let Some(set) = got {
                prop_assert!(seen_before);
                prop_assert_eq!(set[c], n);
                prop_assert!((0..3).all(|k| latest[k] == Some(set[k])));
            }
        }
        let st: SyncStats = s.stats();
        prop_assert_eq!(st.emitted + st.dropped, arrivals.len() as u64);
    }
}

/// A LatestTime scenario: arrivals `(channel, clock time in ns)` in time order, channels first arriving in index
/// order, and ROS's `rate_configs_` (empty, one for all, or one per channel).
#[derive(Clone, Debug)]
struct LatestScenario {
    k: usize,
    arrivals: Vec<(usize, u64)>,
    configs: Vec<RateTuple>,
}

fn rate_tuple() -> impl Strategy<Value = RateTuple> {
    (1u32..=10, 1u32..=10, prop_oneof![Just(10.0), 0.5f64..20.0])
        .prop_map(|(r, e, m)| (f64::from(r) / 10.0, f64::from(e) / 10.0, m))
}

fn latest_scenario() -> impl Strategy<Value = LatestScenario> {
    // Per channel: period and phase in clock ticks, jitter, drop rate, and a rate step (index, new period).
    let channel = (1u64..40, 0u64..40, 0u64..6, 0u32..4, 0usize..40, 1u64..40);
    (1usize..=5, 1u64..=3_000_000, 10usize..60)
        .prop_flat_map(move |(k, tick_ns, len)| {
            let configs = prop_oneof![
                Just(Vec::new()),
                rate_tuple().prop_map(|c| vec![c]),
                proptest::collection::vec(rate_tuple(), k),
            ];
            (
                Just(k),
                Just(tick_ns),
                proptest::collection::vec((channel.clone(), proptest::collection::vec(0u64..1_000, len)), k),
                configs,
                any::<u64>(),
            )
        })
        .prop_map(|(k, tick_ns, plans, configs, shuffle)| {
            let mut arrivals = Vec::new();
            for (c, ((period, phase, jitter, drop_rate, step_at, new_period), noise)) in plans.into_iter().enumerate() {
                let mut t = phase;
                for (n, r) in noise.into_iter().enumerate() {
                    let p = if n >= step_at { new_period } else { period };
                    // Jitter within ±jitter ticks (equal times happen; the global sort below keeps the clock monotonic).
                    t = (t + p + r % (2 * jitter + 1)).saturating_sub(jitter);
                    if drop_rate == 0 || r % 10 >= u64::from(drop_rate) {
                        arrivals.push((c, t * tick_ns, r ^ shuffle));
                    }
                }
            }
            // Time order; equal times in a random order.
            arrivals.sort_by_key(|&(_, t, key)| (t, key));
            // Relabel channels by first arrival, as ROS's rate vector is only well defined then.
            let mut label = vec![usize::MAX; k];
            let mut next = 0;
            for a in &arrivals {
                if label[a.0] == usize::MAX {
                    label[a.0] = next;
                    next += 1;
                }
            }
            let k = next.max(1);
            LatestScenario {
                k,
                arrivals: arrivals.into_iter().map(|(c, t, _)| (label[c], t)).collect(),
                configs: if configs.len() > 1 {
                    configs.into_iter().take(k).collect()
                } else {
                    configs
                },
            }
        })
}

/// Per push, the set published (values = push indices), and the final rate estimates as bits.
type LatestTrace = (Vec<Option<Vec<usize>>>, Vec<u64>);

fn run_latest_library<const K: usize>(sc: &LatestScenario) -> LatestTrace {
    let clock = core::cell::Cell::new(0u64);
    let mut s = LatestTime::<usize, K, _>::with_clock(|| ts(clock.get()));
    let config = |&(rate_ema_alpha, error_ema_alpha, step_change_margin): &RateTuple| RateConfig {
        rate_ema_alpha,
        error_ema_alpha,
        step_change_margin,
    };
    match sc.configs.len() {
        0 => {}
        1 => s = s.with_rate_config(config(&sc.configs[0])),
        _ => {
            for (c, tuple) in sc.configs.iter().enumerate() {
                s = s.with_channel_rate_config(c, config(tuple));
            }
        }
    }
    let mut per_push = Vec::new();
    for (n, &(c, t)) in sc.arrivals.iter().enumerate() {
        clock.set(t);
        let mut got = None;
        s.push(c, ts(t), n, |set| got = Some(set.iter().map(|m| m.value).collect()))
            .unwrap();
        per_push.push(got);
    }
    let st = s.stats();
    assert_eq!(st.emitted + st.dropped, sc.arrivals.len() as u64);
    (per_push, (0..K).map(|c| s.rate_hz(c).to_bits()).collect())
}

fn run_latest_model(sc: &LatestScenario) -> LatestTrace {
    let mut model = RosLatestTime::new(sc.k, sc.configs.clone());
    let per_push = sc
        .arrivals
        .iter()
        .enumerate()
        .map(|(n, &(c, t))| model.add(c, n, t as i64))
        .collect();
    (per_push, (0..sc.k).map(|c| model.hz(c).to_bits()).collect())
}

proptest! {
    // 4 000 cases on x86 hosts (about 400 000 pushes), a 64th under emulation.
    #![proptest_config(config_scaled(4_000, 64))]

    /// LatestTime equals the ROS 2 model push for push, with the same rate estimates at the end.
    #[test]
    fn latest_time_equals_ros2_model(sc in latest_scenario()) {
        let lib = match sc.k {
            1 => run_latest_library::<1>(&sc),
            2 => run_latest_library::<2>(&sc),
            3 => run_latest_library::<3>(&sc),
            4 => run_latest_library::<4>(&sc),
            _ => run_latest_library::<5>(&sc),
        };
        let model = run_latest_model(&sc);
        for (n, (l, m)) in lib.0.iter().zip(&model.0).enumerate() {
            prop_assert_eq!(l, m, "push {} ({:?}) published differently", n, sc.arrivals[n]);
        }
        prop_assert_eq!(lib.1, model.1, "rate estimates (f64 bits)");
    }
}
