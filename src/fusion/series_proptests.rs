//! Property tests of the time-indexed reads: against a linear scan on fixed arrays, against a writer that
//! overwrites the window during the search, and against a hostile series that returns arbitrary stamps.

extern crate std;

use core::cell::Cell;
use core::ops::Range;
use std::vec::Vec;

use proptest::prelude::*;

use super::proptest_config::config;
use super::series::{DEFAULT_ATTEMPTS, ReadError, SliceSeries, TimeSeries, TimeSeriesExt};
use super::time::Timestamp;

fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

/// Non-decreasing stamps (duplicates allowed) with a base offset.
fn stamps(max_len: usize) -> impl Strategy<Value = Vec<u64>> {
    (0u64..1000, proptest::collection::vec(0u64..20, 0..max_len)).prop_map(|(base, gaps)| {
        let mut t = base;
        gaps.iter()
            .map(|g| {
                t += g;
                t
            })
            .collect()
    })
}

/// Upper bound on the reads of one query over a window of `n` samples: per attempt, two edge stamps, at most
/// `⌈log2 n⌉` probes and two validated reads.
fn read_bound(n: u64) -> u64 {
    u64::from(DEFAULT_ATTEMPTS) * (4 + u64::from(64 - n.leading_zeros()))
}

/// Counts reads on any series.
struct Counting<S> {
    inner: S,
    reads: Cell<u64>,
}

impl<S: TimeSeries> TimeSeries for Counting<S> {
    type Item = S::Item;
    fn seq_range(&self) -> Result<Range<u64>, ReadError> {
        self.inner.seq_range()
    }
    fn get(&self, seq: u64) -> Option<(Timestamp, S::Item)> {
        self.reads.set(self.reads.get() + 1);
        self.inner.get(seq)
    }
    fn stamp(&self, seq: u64) -> Option<Timestamp> {
        self.reads.set(self.reads.get() + 1);
        self.inner.stamp(seq)
    }
}

/// A ring of capacity `cap` over the ground truth `truth` (sample `seq` is `(truth[seq], seq)`), whose writer
/// publishes `step` more samples after every `every`-th read, as a fast concurrent writer would.
struct RacingRing<'a> {
    truth: &'a [u64],
    cap: u64,
    head: Cell<u64>,
    every: u64,
    step: u64,
    reads: Cell<u64>,
    misses: Cell<u64>,
}

impl RacingRing<'_> {
    fn tick(&self) {
        let r = self.reads.get() + 1;
        self.reads.set(r);
        if r % self.every == 0 {
            self.head
                .set((self.head.get() + self.step).min(self.truth.len() as u64));
        }
    }
    fn window(&self) -> Range<u64> {
        let h = self.head.get();
        h.saturating_sub(self.cap)..h
    }
}

impl TimeSeries for RacingRing<'_> {
    type Item = u64;
    fn seq_range(&self) -> Result<Range<u64>, ReadError> {
        Ok(self.window())
    }
    fn get(&self, seq: u64) -> Option<(Timestamp, u64)> {
        // Validate before and after the (simulated) copy, as a seqlock-style ring does.
        let ok_before = self.window().contains(&seq);
        self.tick();
        if ok_before && self.window().contains(&seq) {
            Some((ts(self.truth[seq as usize]), seq))
        } else {
            self.misses.set(self.misses.get() + 1);
            None
        }
    }
}

/// Returns arbitrary stamps from a seeded generator: neither monotone nor stable under a fixed seq.
struct Hostile {
    range: Range<u64>,
    state: Cell<u64>,
    reads: Cell<u64>,
}

impl Hostile {
    fn next(&self) -> u64 {
        let x = self
            .state
            .get()
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.state.set(x);
        self.reads.set(self.reads.get() + 1);
        x >> 33
    }
}

impl TimeSeries for Hostile {
    type Item = u64;
    fn seq_range(&self) -> Result<Range<u64>, ReadError> {
        Ok(self.range.clone())
    }
    fn get(&self, _seq: u64) -> Option<(Timestamp, u64)> {
        let x = self.next();
        // Occasionally "overwritten".
        if x % 7 == 0 { None } else { Some((ts(x % 100), x)) }
    }
}

/// The linear-scan reference: `Ok((before, after))` indices, `after == before` on an exact hit.
fn scan(stamps: &[u64], t: u64) -> Result<(usize, usize), ReadError> {
    let (Some(&first), Some(&last)) = (stamps.first(), stamps.last()) else {
        return Err(ReadError::Empty);
    };
    if t < first {
        return Err(ReadError::ExtrapolationPast { oldest: ts(first) });
    }
    if t > last {
        return Err(ReadError::ExtrapolationFuture { newest: ts(last) });
    }
    let before = stamps.iter().rposition(|&s| s <= t).unwrap_or(0);
    if stamps[before] == t {
        Ok((before, before))
    } else {
        Ok((before, before + 1))
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// On a fixed sorted array (duplicates allowed), `bracket`, `nearest` and `interpolate_at` agree with a
    /// linear scan, including both extrapolation errors, and use at most `read_bound(N)` reads.
    #[test]
    fn slice_matches_linear_scan(s in stamps(40), first_seq in 0u64..1_000_000, dt in 0u64..1200) {
        let data: Vec<(Timestamp, f64)> = s.iter().map(|&t| (ts(t), t as f64 * 2.0)).collect();
        let series = Counting { inner: SliceSeries::new(first_seq, &data), reads: Cell::new(0) };
        let t = dt.saturating_sub(50);
        let got = series.bracket(ts(t));
        prop_assert!(series.reads.get() <= read_bound(s.len() as u64));
        match (scan(&s, t), got) {
            (Ok((b, a)), Ok(br)) => {
                prop_assert_eq!(br.before.seq, first_seq + b as u64);
                prop_assert_eq!(br.after.seq, first_seq + a as u64);
                prop_assert!(br.before.stamp <= ts(t) && ts(t) <= br.after.stamp);
                let near = series.nearest(ts(t)).unwrap();
                let (db, da) = (t - s[b], s[a] - t);
                prop_assert_eq!(near.seq, first_seq + if db <= da { b } else { a } as u64);
                // Values are 2·stamp: linear interpolation must give 2·t (up to f32 ratio rounding).
                let v = series.interpolate_at(ts(t)).unwrap();
                prop_assert!((v - 2.0 * t as f64).abs() < 1e-3 * (1.0 + t as f64), "{} vs {}", v, 2 * t);
            }
            (want, got) => prop_assert_eq!(want.map(|_| ()), got.map(|_| ())),
        }
    }

    /// A writer publishes `step` samples after every `every` reads into a ring of capacity `cap`, so the
    /// window moves (and its oldest part is overwritten) during the search. Whatever the race:
    /// an `Ok` bracket holds samples that match the ground truth for their seq and bracket `t` correctly; an
    /// extrapolation error is correct for some instant of the query; `Overwritten` only happens after at least
    /// `DEFAULT_ATTEMPTS` failed reads; `NonMonotonic` and `Empty` never happen; the reads stay bounded.
    #[test]
    fn racing_writer_never_yields_an_overwritten_sample(
        gaps in proptest::collection::vec(0u64..10, 64..300),
        cap in 4u64..64,
        start in 0usize..200,
        every in 1u64..6,
        step in 0u64..12,
        tfrac in 0.0f64..1.0,
    ) {
        let mut t = 0;
        let truth: Vec<u64> = gaps.iter().map(|g| { t += g; t }).collect();
        let n = truth.len() as u64;
        let head0 = (start as u64 + cap).min(n);
        let ring = RacingRing {
            truth: &truth, cap, head: Cell::new(head0), every, step,
            reads: Cell::new(0), misses: Cell::new(0),
        };
        // Query times from just before the initial window to a little after it (the window moves on).
        let (lo, hi) = (truth[head0.saturating_sub(cap) as usize], truth[(head0 as usize + 8).min(n as usize) - 1] + 5);
        let t = lo.saturating_sub(5) + ((hi - lo.saturating_sub(5)) as f64 * tfrac) as u64;
        let initial_newest = truth[head0 as usize - 1];
        let res = ring.bracket(ts(t));
        prop_assert!(ring.reads.get() <= read_bound(cap));
        match res {
            Ok(b) => {
                for smp in [b.before, b.after] {
                    prop_assert_eq!(smp.value, smp.seq);
                    prop_assert_eq!(smp.stamp, ts(truth[smp.seq as usize]));
                }
                prop_assert!(b.before.stamp <= ts(t) && ts(t) <= b.after.stamp);
                if b.is_exact() {
                    prop_assert_eq!(b.before.stamp, ts(t));
                } else {
                    prop_assert_eq!(b.after.seq, b.before.seq + 1);
                    prop_assert!(ts(t) < b.after.stamp);
                }
            }
            Err(ReadError::ExtrapolationPast { oldest }) => {
                prop_assert!(ts(t) < oldest);
                // `oldest` was a real sample that was at the window start at some point.
                prop_assert!(truth.contains(&oldest.as_nanos()));
            }
            Err(ReadError::ExtrapolationFuture { newest }) => {
                prop_assert!(ts(t) > newest);
                prop_assert!(newest >= ts(initial_newest));
            }
            Err(ReadError::Overwritten) => prop_assert!(ring.misses.get() >= u64::from(DEFAULT_ATTEMPTS)),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }

    /// A hostile series (random stamps, unstable under a fixed seq, random "overwritten" reads, huge ranges):
    /// queries terminate within the read bound, never panic, and any `Ok` bracket is locally valid.
    #[test]
    fn hostile_series_is_contained(
        seed in any::<u64>(),
        start in any::<u64>(),
        len in 0u64..u64::MAX,
        t in 0u64..120,
    ) {
        let end = start.saturating_add(len);
        let h = Hostile { range: start..end, state: Cell::new(seed), reads: Cell::new(0) };
        let res = h.bracket(ts(t));
        prop_assert!(h.reads.get() <= read_bound(end - start));
        if let Ok(b) = res {
            prop_assert!(b.before.stamp <= ts(t) && ts(t) <= b.after.stamp);
            prop_assert!(b.is_exact() || b.after.seq == b.before.seq + 1);
        }
        let _ = h.nearest(ts(t));
        let _ = h.latest();
    }
}
