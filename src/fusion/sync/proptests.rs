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
//!   (everything provable is emitted); (a) outputs are identical for two different interleavings, with and
//!   without the sentinel; (b) sets do not cross and (c) each message is used at most once (per-channel
//!   indices strictly increase from set to set); contiguity (without a max interval, some channel's index is
//!   exactly one past the previous set's); with a max interval, every set spans at most that; no overflow; the
//!   counters account for every message.
//! - **ExactTime** vs the set intersection of the streams' stamps (first message per stamp and channel),
//!   for two interleavings.
//! - **LatestOfEach** vs a direct simulation of "latest of each at every pivot arrival".
//! - **Robustness**: arbitrary (unordered, any channel index) pushes into small queues: no panic, rejected and
//!   overflowed counted, and emitted sets still never cross and never reuse a message.

extern crate std;

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::{ApproximateTime, ExactTime, LatestOfEach, PushError};
use crate::fusion::proptest_config::config;
use crate::fusion::time::Timestamp;

type Msg = (usize, usize);

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

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
) -> (Vec<[usize; K]>, ApproximateTime<Msg, K, 16>) {
    let mut sync = ApproximateTime::<Msg, K, 16>::new().with_age_penalty_ppm(ppm);
    if let Some(m) = max {
        sync = sync.with_max_interval(core::time::Duration::from_nanos(m));
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
) -> Result<(), TestCaseError> {
    let (out1, sync1) = run_approx(&s, &o1, ppm, max);
    let (out2, _) = run_approx(&s, &o2, ppm, max);
    // (a) interleaving independence.
    prop_assert_eq!(&out1, &out2);
    // (d1) prefix of the reference.
    let reference = approx_reference(&s, ppm, max);
    prop_assert!(
        out1.len() <= reference.len() && out1[..] == reference[..out1.len()],
        "{:?} vs {:?}",
        out1,
        reference
    );
    let stats = sync1.stats();
    prop_assert_eq!((stats.overflowed, stats.rejected), (0, 0));

    let ss = with_sentinel(&s);
    let (outs1, sync) = run_approx(&ss, &order_with_sentinel::<K>(&o1), ppm, max);
    let (outs2, _) = run_approx(&ss, &order_with_sentinel::<K>(&o2), ppm, max);
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

/// ExactTime reference: every stamp present on all channels, increasing, with each channel's first message
/// at that stamp.
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
    ) {
        approx_case(s, o1, o2, ppm, max)?;
    }

    /// ApproximateTime with 3 channels (up to 8 messages each).
    #[test]
    fn approx_time_three_channels(
        (s, o1, o2) in streams_and_orders::<3>(8, 4), ppm in penalty(), max in max_interval(),
    ) {
        approx_case(s, o1, o2, ppm, max)?;
    }

    /// ExactTime with 3 channels (up to 10 messages each, gaps 0..=2 so stamps often coincide): equals the
    /// intersection reference for two interleavings; nothing overflows.
    #[test]
    fn exact_time_matches_intersection((s, o1, o2) in streams_and_orders::<3>(10, 2)) {
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
                Err(PushError::OutOfOrder { last }) => { prop_assert!(ts(t) < last); rejected += 1; }
            }
            let _ = exact.push(c, ts(t), n, |set| exact_out.push(set.map(|m| m.value)));
        }
        prop_assert_eq!(approx.stats().rejected, rejected);
        check_non_crossing(&out)?;
        let st = approx.stats();
        let accepted = pushes.len() as u64 - rejected;
        let queued: usize = (0..3).map(|c| approx.queued(c)).sum();
        prop_assert_eq!(st.dropped + st.overflowed + 3 * st.emitted + queued as u64, accepted);
        // ExactTime sets have equal stamps and strictly increasing stamps set to set.
        let stamp_of = |n: usize| pushes[n].1;
        for w in exact_out.windows(2) {
            prop_assert!(stamp_of(w[0][0]) < stamp_of(w[1][0]));
        }
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
    ) {
        approx_case(s, o1, o2, ppm, max)?;
    }
}
