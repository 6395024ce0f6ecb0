//! Time-indexed reads straight from a shared broadcast ring of stamped samples.
//!
//! A [`BroadcastRing`] of [`Stamped`] samples is a [`TimeSeries`]: its positions are the sequence numbers, and
//! each read is validated by the ring's per-slot sequence, so a sample overwritten while the binary search looks
//! at it reads as `None` and the search retries or reports [`ReadError::Overwritten`]. A shared tail beyond
//! [`POSITION_LIMIT`](crate::buffer::POSITION_LIMIT) (which only a buggy or hostile peer writes) is
//! [`ReadError::Corrupt`].
//! Nothing is written to shared memory.
//!
//! ```
//! use core::mem::MaybeUninit;
//! use shmfusion::buffer::BroadcastRing;
//! use shmfusion::fusion::{ImuSample, SampleHeader, Stamped, TimeSeriesExt, Timestamp};
//!
//! let mut storage = MaybeUninit::<BroadcastRing<Stamped<ImuSample>, 64>>::uninit();
//! let ring = BroadcastRing::init(&mut storage);
//! let mut writer = ring.writer().unwrap();
//! for i in 0..10u64 {
//!     let stamp = Timestamp::from_nanos(1_000_000 * i);
//!     writer.publish_one(&Stamped::new(SampleHeader::new(0, i, stamp), ImuSample::default()));
//! }
//! let bracket = ring.bracket(Timestamp::from_nanos(4_500_000)).unwrap();
//! assert_eq!((bracket.before.seq, bracket.after.seq), (4, 5));
//! ```

use core::ops::Range;

use super::sample::{Payload, Stamped};
use super::series::{ReadError, TimeSeries};
use super::time::Timestamp;
use crate::buffer::BroadcastRing;

impl<T: Payload + Send + Sync, const N: usize> TimeSeries for BroadcastRing<Stamped<T>, N> {
    type Item = T;

    fn seq_range(&self) -> Result<Range<u64>, ReadError> {
        let tail = self.valid_tail().map_err(|_| ReadError::Corrupt)?;
        Ok(tail.saturating_sub(N as u64)..tail)
    }

    fn get(&self, seq: u64) -> Option<(Timestamp, T)> {
        match self.reader_at(seq).try_recv() {
            Ok((sample, position)) if position == seq => Some((sample.header.stamp, sample.payload)),
            _ => None,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::fusion::{ImuSample, SampleHeader, TimeSeriesExt};
    use core::mem::MaybeUninit;

    fn stamp(i: u64) -> Timestamp {
        Timestamp::from_nanos(1_000 + 10 * i)
    }

    #[test]
    fn reads_by_time_and_refuses_overwritten_history() {
        let mut storage = MaybeUninit::<BroadcastRing<Stamped<ImuSample>, 8>>::uninit();
        let ring = BroadcastRing::init(&mut storage);
        assert_eq!(ring.bracket(stamp(0)).unwrap_err(), ReadError::Empty);
        let mut writer = ring.writer().unwrap();
        for i in 0..20u64 {
            let mut imu = ImuSample::default();
            imu.accel.x = i as f32;
            writer.publish_one(&Stamped::new(SampleHeader::new(0, i, stamp(i)), imu));
        }
        assert_eq!(ring.seq_range(), Ok(12..20));
        let b = ring
            .bracket(stamp(15).saturating_add(core::time::Duration::from_nanos(5)))
            .unwrap();
        assert_eq!((b.before.seq, b.after.seq), (15, 16));
        assert_eq!(b.before.value.accel.x, 15.0);
        let mid = ring
            .interpolate_at(stamp(15).saturating_add(core::time::Duration::from_nanos(5)))
            .unwrap();
        assert!((mid.accel.x - 15.5).abs() < 1e-4);
        assert!(matches!(
            ring.bracket(stamp(3)),
            Err(ReadError::ExtrapolationPast { .. })
        ));
        assert!(matches!(
            ring.bracket(stamp(25)),
            Err(ReadError::ExtrapolationFuture { .. })
        ));
        assert_eq!(ring.get(3), None, "overwritten");
    }

    #[test]
    fn a_tail_flipped_by_2_pow_63_is_corrupt_not_old_samples() {
        let mut storage = MaybeUninit::<BroadcastRing<Stamped<ImuSample>, 8>>::uninit();
        let ring = BroadcastRing::init(&mut storage);
        let mut writer = ring.writer().unwrap();
        for i in 0..20u64 {
            writer.publish_one(&Stamped::new(SampleHeader::new(0, i, stamp(i)), ImuSample::default()));
        }
        let real = ring.tail();
        // What a hostile peer's store to the shared tail does.
        // SAFETY: the ring is in process memory; the tail is its first word (an `AtomicU64`).
        let tail =
            unsafe { &*(ring as *const BroadcastRing<Stamped<ImuSample>, 8>).cast::<core::sync::atomic::AtomicU64>() };
        tail.store(real | 1 << 63, core::sync::atomic::Ordering::Relaxed);
        assert_eq!(ring.seq_range(), Err(ReadError::Corrupt));
        assert_eq!(ring.latest().unwrap_err(), ReadError::Corrupt);
        assert_eq!(ring.bracket(stamp(15)).unwrap_err(), ReadError::Corrupt);
        assert_eq!(ring.get(15 | 1 << 63), None);
        assert_eq!(
            ring.get(15).map(|(t, _)| t),
            None,
            "a tail beyond the limit serves nothing"
        );
        tail.store(real, core::sync::atomic::Ordering::Relaxed);
        assert_eq!(ring.latest().unwrap().seq, 19);
    }
}
