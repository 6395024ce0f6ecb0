//! Monotonic timestamps.

use core::time::Duration;

/// A point in time: nanoseconds of `CLOCK_MONOTONIC` (8 bytes, `#[repr(transparent)]` over `u64`).
///
/// `CLOCK_MONOTONIC` is system-wide, so stamps taken by different processes on one machine are comparable; it
/// does not jump with wall-clock changes and does not advance during suspend. All arithmetic saturates: a stamp
/// read from shared memory may be garbage written by a buggy peer, and must not make a reader panic.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Timestamp(u64);

impl Timestamp {
    /// Time zero (boot, for `CLOCK_MONOTONIC`).
    pub const ZERO: Self = Self(0);
    /// The largest representable stamp (about 584 years).
    pub const MAX: Self = Self(u64::MAX);

    /// The current `CLOCK_MONOTONIC` time (vDSO or `clock_gettime` syscall through rustix; no libc).
    pub fn now() -> Self {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
        Self(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// A stamp from nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// A stamp from microseconds (saturating).
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros.saturating_mul(1_000))
    }

    /// A stamp from milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// A stamp from seconds as `f64` (negative or NaN give zero; too large saturates).
    pub fn from_secs_f64(secs: f64) -> Self {
        // `as` saturates and maps NaN to 0.
        Self((secs * 1e9) as u64)
    }

    /// Nanoseconds since time zero.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since time zero as `f64`.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }

    /// `self - earlier`, or `None` if `earlier` is later than `self`.
    pub fn checked_duration_since(self, earlier: Self) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }

    /// `self - earlier`, or zero if `earlier` is later than `self`.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// The distance between two stamps in nanoseconds.
    pub const fn abs_diff(self, other: Self) -> u64 {
        self.0.abs_diff(other.0)
    }

    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_nanos(d)))
    }

    /// `self - d`, saturating at [`Timestamp::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_nanos(d)))
    }
}

/// A duration in nanoseconds as `u64`, saturating (`u64` nanoseconds cover 584 years).
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_monotonic_and_plausible() {
        let a = Timestamp::now();
        let b = Timestamp::now();
        assert!(b >= a);
        assert!(a > Timestamp::ZERO);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_millis(5);
        assert_eq!(t.as_nanos(), 5_000_000);
        assert_eq!(t.saturating_sub(Duration::from_secs(1)), Timestamp::ZERO);
        assert_eq!(Timestamp::MAX.saturating_add(Duration::from_secs(1)), Timestamp::MAX);
        assert_eq!(t.checked_duration_since(Timestamp::from_millis(6)), None);
        assert_eq!(
            Timestamp::from_millis(6).checked_duration_since(t),
            Some(Duration::from_millis(1))
        );
        assert_eq!(t.abs_diff(Timestamp::from_millis(2)), 3_000_000);
        assert_eq!(Timestamp::from_secs_f64(-1.0), Timestamp::ZERO);
        assert_eq!(Timestamp::from_secs_f64(f64::NAN), Timestamp::ZERO);
        assert_eq!(Timestamp::from_secs_f64(1.5).as_nanos(), 1_500_000_000);
    }
}
