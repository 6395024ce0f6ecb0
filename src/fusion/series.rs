//! Time-indexed reads over a time-ordered sequence of samples: nearest, bracketing pair, interpolation.
//!
//! See [`TimeSeriesExt`] for the queries and their guarantees under a concurrent writer.

use core::ops::Range;

use super::interp::{Interpolate, ratio};
use super::time::Timestamp;

/// A snapshot-readable, time-ordered sequence of samples addressed by sequence number.
///
/// Contract for implementors (a ring buffer, a slice, a history buffer):
///
/// - [`seq_range`](Self::seq_range) returns the half-open range of sequence numbers readable now (empty when
///   there is nothing), or [`ReadError::Corrupt`] when the positions it finds cannot be real. It may move
///   forward at any time (a concurrent writer), never backward.
/// - Timestamps are non-decreasing in the sequence number.
/// - A sequence number always names the same sample: [`get`](Self::get) returns either that sample or `None`
///   (not readable any more, or not yet), never another sample — a ring validates this with its per-slot
///   sequence number. [`stamp`](Self::stamp) follows the same rule.
///
/// The queries do not trust the contract: they detect violations where they look (see
/// [`TimeSeriesExt`]).
pub trait TimeSeries {
    /// The sample type.
    type Item: Copy;

    /// The sequence numbers readable now, oldest to one past newest; [`ReadError::Corrupt`] if the positions
    /// found (in shared memory) cannot be real.
    fn seq_range(&self) -> Result<Range<u64>, ReadError>;

    /// The full sample `seq` with its timestamp, or `None` if it is not readable (overwritten, or not written).
    fn get(&self, seq: u64) -> Option<(Timestamp, Self::Item)>;

    /// Only the timestamp of sample `seq` (used by the binary search; override it when that is cheaper than
    /// [`get`](Self::get)), or `None` if it is not readable.
    fn stamp(&self, seq: u64) -> Option<Timestamp> {
        self.get(seq).map(|(t, _)| t)
    }
}

/// A sample read from a [`TimeSeries`], with its sequence number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample<T> {
    /// Sequence number in the series.
    pub seq: u64,
    /// Timestamp.
    pub stamp: Timestamp,
    /// The value.
    pub value: T,
}

/// The samples around a query time `t`: `before.stamp <= t <= after.stamp`.
///
/// Either `after.seq == before.seq + 1` and `before.stamp <= t < after.stamp`, or an exact hit where
/// `before == after` and `before.stamp == t` (with several samples stamped `t`, the one with the highest
/// sequence number).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bracket<T> {
    /// The latest sample stamped at or before `t`.
    pub before: Sample<T>,
    /// The sample after `before` (or `before` itself on an exact hit).
    pub after: Sample<T>,
}

impl<T: Copy> Bracket<T> {
    /// Whether the query time was hit exactly.
    pub fn is_exact(&self) -> bool {
        self.before.seq == self.after.seq
    }

    /// The interpolation ratio of `t` in this bracket (0 on an exact hit).
    pub fn ratio(&self, t: Timestamp) -> f32 {
        ratio(self.before.stamp, self.after.stamp, t)
    }

    /// The sample nearer to `t` (`before` when equidistant).
    pub fn nearest(&self, t: Timestamp) -> Sample<T> {
        if t.abs_diff(self.before.stamp) <= t.abs_diff(self.after.stamp) {
            self.before
        } else {
            self.after
        }
    }

    /// The value interpolated at `t`.
    pub fn interpolate(&self, t: Timestamp) -> T
    where
        T: Interpolate,
    {
        if self.is_exact() {
            self.before.value
        } else {
            self.before.value.interpolate(&self.after.value, self.ratio(t))
        }
    }
}

/// Why a time-indexed read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadError {
    /// The series holds no sample.
    Empty,
    /// `t` is before the oldest readable sample (stamped `oldest`): it would need extrapolation into the past.
    ExtrapolationPast {
        /// Stamp of the oldest readable sample.
        oldest: Timestamp,
    },
    /// `t` is after the newest sample (stamped `newest`): it would need extrapolation into the future.
    ExtrapolationFuture {
        /// Stamp of the newest sample.
        newest: Timestamp,
    },
    /// Every attempt raced the writer: a sample needed by the search was overwritten before it was read.
    Overwritten,
    /// The series broke its contract: timestamps decrease with the sequence number, or a sample changed under
    /// a fixed sequence number (a buggy or hostile writer).
    NonMonotonic,
    /// The series' positions cannot be real (for a shared ring: a tail beyond
    /// [`POSITION_LIMIT`](crate::buffer::POSITION_LIMIT), written by a buggy or hostile peer).
    Corrupt,
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => f.write_str("no sample"),
            Self::ExtrapolationPast { oldest } => {
                write!(f, "time is before the oldest sample ({} ns)", oldest.as_nanos())
            }
            Self::ExtrapolationFuture { newest } => {
                write!(f, "time is after the newest sample ({} ns)", newest.as_nanos())
            }
            Self::Overwritten => f.write_str("samples were overwritten during every attempt"),
            Self::NonMonotonic => f.write_str("timestamps are not monotonic"),
            Self::Corrupt => f.write_str("corrupt positions in the series"),
        }
    }
}

/// How many times a query restarts after racing the writer before it reports [`ReadError::Overwritten`].
pub const DEFAULT_ATTEMPTS: u32 = 4;

/// Time-indexed queries on any [`TimeSeries`] (blanket-implemented).
///
/// A [`TimeSeries`] is anything that holds samples addressed by a sequence number (0, 1, 2, … in publication
/// order) with non-decreasing timestamps, of which a window of the most recent ones is readable — typically a
/// broadcast ring in shared memory whose writer overwrites the oldest slot. These queries binary-search that
/// window over the timestamps, so they cost `O(log N)` timestamp reads plus two validated sample reads, and they
/// are safe against a writer that runs concurrently:
///
/// - every sample returned comes from [`TimeSeries::get`], which the implementation validates (a ring checks its
///   per-slot sequence number), so **a returned sample was never overwritten while it was read**;
/// - if a probe hits a sequence number the writer has already overwritten (`None`), the query restarts from a
///   fresh [`TimeSeries::seq_range`], at most [`DEFAULT_ATTEMPTS`] times in all, then reports
///   [`ReadError::Overwritten`];
/// - a writer that breaks the contract (timestamps decreasing with the sequence number, or a sample changing
///   under a fixed sequence number) is detected on the probed samples and reported as
///   [`ReadError::NonMonotonic`]. The query never loops (the number of reads is bounded by
///   `attempts · (⌈log2 N⌉ + 4)`) and never panics, whatever the series returns. A non-monotone region that no
///   probe touches cannot be detected in `O(log N)`; what is guaranteed is that any `Ok` bracket satisfies
///   `before.stamp <= t <= after.stamp` with `after.seq == before.seq + 1` (or an exact hit), on validated reads.
pub trait TimeSeriesExt: TimeSeries {
    /// The samples around `t` (see [`Bracket`]), retrying up to [`DEFAULT_ATTEMPTS`] times.
    fn bracket(&self, t: Timestamp) -> Result<Bracket<Self::Item>, ReadError> {
        self.bracket_with_attempts(t, DEFAULT_ATTEMPTS)
    }

    /// As [`bracket`](Self::bracket) with an explicit attempt budget (at least one attempt is made).
    fn bracket_with_attempts(&self, t: Timestamp, attempts: u32) -> Result<Bracket<Self::Item>, ReadError> {
        for _ in 0..attempts.max(1) {
            match locate(self, t) {
                Err(Attempt::Raced) => continue,
                Err(Attempt::Failed(e)) => return Err(e),
                Ok(b) => return Ok(b),
            }
        }
        Err(ReadError::Overwritten)
    }

    /// The sample nearest to `t` (the earlier one when equidistant). `t` outside the readable window is an
    /// extrapolation error, not the edge sample; use [`latest`](Self::latest) for "the newest, whatever its age".
    fn nearest(&self, t: Timestamp) -> Result<Sample<Self::Item>, ReadError> {
        self.bracket(t).map(|b| b.nearest(t))
    }

    /// The value at `t`, interpolated between the samples around it (see [`Interpolate`]).
    fn interpolate_at(&self, t: Timestamp) -> Result<Self::Item, ReadError>
    where
        Self::Item: Interpolate,
    {
        self.bracket(t).map(|b| b.interpolate(t))
    }

    /// The newest readable sample.
    fn latest(&self) -> Result<Sample<Self::Item>, ReadError> {
        for _ in 0..DEFAULT_ATTEMPTS {
            let r = self.seq_range()?;
            if r.start >= r.end {
                return Err(ReadError::Empty);
            }
            let seq = r.end - 1;
            if let Some((stamp, value)) = self.get(seq) {
                return Ok(Sample { seq, stamp, value });
            }
        }
        Err(ReadError::Overwritten)
    }
}

impl<S: TimeSeries + ?Sized> TimeSeriesExt for S {}

/// Outcome of one search attempt that did not succeed.
enum Attempt {
    /// A probe or read hit an overwritten sample: start again.
    Raced,
    /// A definite answer.
    Failed(ReadError),
}

impl From<ReadError> for Attempt {
    fn from(e: ReadError) -> Self {
        Self::Failed(e)
    }
}

/// One attempt: binary search for the last sample stamped `<= t` in a snapshot of the readable window.
fn locate<S: TimeSeries + ?Sized>(s: &S, t: Timestamp) -> Result<Bracket<S::Item>, Attempt> {
    let r = s.seq_range()?;
    if r.start >= r.end {
        return Err(ReadError::Empty.into());
    }
    let (first, last) = (r.start, r.end - 1);
    let s_first = s.stamp(first).ok_or(Attempt::Raced)?;
    let s_last = s.stamp(last).ok_or(Attempt::Raced)?;
    if s_last < s_first {
        return Err(ReadError::NonMonotonic.into());
    }
    if t < s_first {
        return Err(ReadError::ExtrapolationPast { oldest: s_first }.into());
    }
    if t > s_last {
        return Err(ReadError::ExtrapolationFuture { newest: s_last }.into());
    }
    // Invariant: stamp(lo) = s_lo <= t, and t < stamp(hi) = s_hi unless t == s_last (then lo = last).
    let (mut lo, mut s_lo, mut hi, mut s_hi) = (first, s_first, last, s_last);
    if t == s_last {
        (lo, s_lo) = (last, s_last);
    } else {
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let s_mid = s.stamp(mid).ok_or(Attempt::Raced)?;
            if s_mid < s_lo || s_mid > s_hi {
                return Err(ReadError::NonMonotonic.into());
            }
            if s_mid <= t {
                (lo, s_lo) = (mid, s_mid);
            } else {
                (hi, s_hi) = (mid, s_mid);
            }
        }
    }
    // Validated reads of the result; a stamp that differs from the probe means the sample changed under its
    // sequence number.
    let (b_stamp, b_value) = s.get(lo).ok_or(Attempt::Raced)?;
    if b_stamp != s_lo {
        return Err(ReadError::NonMonotonic.into());
    }
    let before = Sample {
        seq: lo,
        stamp: b_stamp,
        value: b_value,
    };
    if b_stamp == t {
        return Ok(Bracket { before, after: before });
    }
    let (a_stamp, a_value) = s.get(hi).ok_or(Attempt::Raced)?;
    if a_stamp != s_hi || a_stamp <= t {
        return Err(ReadError::NonMonotonic.into());
    }
    Ok(Bracket {
        before,
        after: Sample {
            seq: hi,
            stamp: a_stamp,
            value: a_value,
        },
    })
}

/// A [`TimeSeries`] over a slice of `(stamp, value)` pairs, the first of which has sequence number
/// `first_seq`. Useful for local histories and tests.
#[derive(Clone, Copy, Debug)]
pub struct SliceSeries<'a, T> {
    first_seq: u64,
    samples: &'a [(Timestamp, T)],
}

impl<'a, T: Copy> SliceSeries<'a, T> {
    /// A series over `samples`; `samples[i]` has sequence number `first_seq + i`.
    pub const fn new(first_seq: u64, samples: &'a [(Timestamp, T)]) -> Self {
        Self { first_seq, samples }
    }
}

impl<T: Copy> TimeSeries for SliceSeries<'_, T> {
    type Item = T;

    fn seq_range(&self) -> Result<Range<u64>, ReadError> {
        let end = self.first_seq.saturating_add(self.samples.len() as u64);
        Ok(self.first_seq..end)
    }

    fn get(&self, seq: u64) -> Option<(Timestamp, T)> {
        let i = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.samples.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::geometry::{Quaternion, Vector3};

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n)
    }

    #[test]
    fn bracket_nearest_interpolate_on_a_slice() {
        let data = [(ts(10), 1.0f32), (ts(20), 2.0), (ts(30), 4.0), (ts(40), 8.0)];
        let s = SliceSeries::new(100, &data);
        assert_eq!(s.bracket(ts(5)), Err(ReadError::ExtrapolationPast { oldest: ts(10) }));
        assert_eq!(
            s.bracket(ts(41)),
            Err(ReadError::ExtrapolationFuture { newest: ts(40) })
        );
        let b = s.bracket(ts(25)).unwrap();
        assert_eq!((b.before.seq, b.after.seq), (101, 102));
        assert_eq!(s.interpolate_at(ts(25)), Ok(3.0));
        assert_eq!(s.nearest(ts(24)).unwrap().seq, 101);
        assert_eq!(s.nearest(ts(26)).unwrap().seq, 102);
        assert_eq!(s.nearest(ts(25)).unwrap().seq, 101);
        for (i, &(t, v)) in data.iter().enumerate() {
            let b = s.bracket(t).unwrap();
            assert!(b.is_exact());
            assert_eq!(b.before.seq, 100 + i as u64);
            assert_eq!(s.interpolate_at(t), Ok(v));
        }
        assert_eq!(s.latest().unwrap().seq, 103);
        let empty: SliceSeries<'_, f32> = SliceSeries::new(0, &[]);
        assert_eq!(empty.bracket(ts(1)), Err(ReadError::Empty));
        assert_eq!(empty.latest(), Err(ReadError::Empty));
        let one = [(ts(7), 1.0f32)];
        let s1 = SliceSeries::new(0, &one);
        assert!(s1.bracket(ts(7)).unwrap().is_exact());
        assert!(s1.bracket(ts(8)).is_err());
    }

    #[test]
    fn duplicate_stamps_pick_the_last() {
        let data = [(ts(10), 0u64), (ts(20), 1), (ts(20), 2), (ts(20), 3), (ts(30), 4)];
        let s = SliceSeries::new(0, &data);
        let b = s.bracket(ts(20)).unwrap();
        assert!(b.is_exact());
        assert_eq!(b.before.value, 3);
        let b = s.bracket(ts(25)).unwrap();
        assert_eq!((b.before.value, b.after.value), (3, 4));
        let b = s.bracket(ts(15)).unwrap();
        assert_eq!((b.before.value, b.after.value), (0, 1));
    }

    #[test]
    fn quaternion_and_vector_interpolation_through_series() {
        let axis = Vector3::new(0.0, 0.0, 1.0);
        let data = [
            (ts(0), Quaternion::from_axis_angle(axis, 0.0)),
            (ts(1000), Quaternion::from_axis_angle(axis, 1.0)),
        ];
        let s = SliceSeries::new(0, &data);
        let q = s.interpolate_at(ts(250)).unwrap();
        assert!(q.angle_to(Quaternion::from_axis_angle(axis, 0.25)) < 1e-4);
        let vd = [
            (ts(0), Vector3::new(0.0, 0.0, 0.0)),
            (ts(10), Vector3::new(10.0, -10.0, 1.0)),
        ];
        let v = SliceSeries::new(0, &vd).interpolate_at(ts(3)).unwrap();
        assert!((v - Vector3::new(3.0, -3.0, 0.3)).norm() < 1e-6);
    }

    #[test]
    fn decreasing_stamps_are_reported() {
        let data = [(ts(50), 0u8), (ts(40), 1), (ts(30), 2)];
        let s = SliceSeries::new(0, &data);
        assert_eq!(s.bracket(ts(45)), Err(ReadError::NonMonotonic));
        assert_eq!(s.bracket(ts(50)), Err(ReadError::NonMonotonic));
        // A single out-of-order sample in the middle, hit by the first probe.
        let data = [(ts(10), 0u8), (ts(20), 1), (ts(5), 2), (ts(40), 3), (ts(50), 4)];
        let s = SliceSeries::new(0, &data);
        assert_eq!(s.bracket(ts(30)), Err(ReadError::NonMonotonic));
    }
}
