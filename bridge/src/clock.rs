//! How timestamps cross machines.
//!
//! Samples are stamped with `CLOCK_MONOTONIC`, whose origin (boot) differs on every machine. The sender therefore
//! carries, with every sample, its own offset `CLOCK_REALTIME - CLOCK_MONOTONIC` read at the moment it forwards
//! the sample; the receiver rebases the stamp onto its own monotonic clock:
//!
//! `local = remote + remote_offset - local_offset`
//!
//! The result is as accurate as the two machines' wall clocks agree: chrony on a LAN typically keeps them within
//! tens of microseconds to about a millisecond, PTP (`ptp4l` + `phc2sys`, hardware timestamping) within a
//! microsecond. Without wall-clock synchronisation the error is the wall clocks' difference, unbounded. Reading the
//! offset costs two `clock_gettime` calls; it moves when NTP steps or slews the wall clock, which is exactly what
//! makes the rebased stamp follow the synchronised time. On one machine both offsets are equal and stamps cross
//! unchanged.

use std::time::{SystemTime, UNIX_EPOCH};

use shmfusion::fusion::Timestamp;

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`), negative before 1970.
pub fn wall_now_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// This machine's `CLOCK_REALTIME - CLOCK_MONOTONIC`, in nanoseconds. The two clocks cannot be read at one instant:
/// the wall clock is read between two monotonic reads and compared with their midpoint, and of four such brackets
/// the narrowest is kept, so that a preemption between the reads (milliseconds on a loaded machine) does not
/// become an offset error.
pub fn wall_offset_ns() -> i64 {
    let mut best = (u64::MAX, 0i64);
    for _ in 0..4 {
        let before = Timestamp::now().as_nanos();
        let wall = wall_now_ns();
        let after = Timestamp::now().as_nanos();
        let width = after.saturating_sub(before);
        if width < best.0 {
            let mid = before + width / 2;
            best = (width, wall.wrapping_sub(mid as i64));
        }
    }
    best.1
}

/// A remote monotonic stamp rebased onto the local monotonic clock (saturating at 0 and `u64::MAX`).
pub fn rebase(remote: Timestamp, remote_offset_ns: i64, local_offset_ns: i64) -> Timestamp {
    let t = i128::from(remote.as_nanos()) + i128::from(remote_offset_ns) - i128::from(local_offset_ns);
    Timestamp::from_nanos(t.clamp(0, i128::from(u64::MAX)) as u64)
}

/// A monotonic stamp as wall-clock nanoseconds since the epoch (what ROS 2 headers carry).
pub fn to_wall_ns(stamp: Timestamp, offset_ns: i64) -> i64 {
    let t = i128::from(stamp.as_nanos()) + i128::from(offset_ns);
    t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A wall-clock time (ns since the epoch) as a local monotonic stamp.
pub fn from_wall_ns(wall_ns: i64, local_offset_ns: i64) -> Timestamp {
    let t = i128::from(wall_ns) - i128::from(local_offset_ns);
    Timestamp::from_nanos(t.clamp(0, i128::from(u64::MAX)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_moves_by_the_offset_difference() {
        let s = Timestamp::from_nanos(5_000);
        assert_eq!(rebase(s, 1_000_000, 999_000), Timestamp::from_nanos(6_000));
        assert_eq!(rebase(s, 0, 10_000), Timestamp::from_nanos(0));
        assert_eq!(rebase(s, 7, 7), s);
    }

    #[test]
    fn wall_round_trip() {
        let off = wall_offset_ns();
        let s = Timestamp::from_nanos(123_456_789);
        assert_eq!(from_wall_ns(to_wall_ns(s, off), off), s);
        // The offset is the wall clock minus the monotonic clock: adding it to "now" gives about "now" on the wall.
        let err = (to_wall_ns(Timestamp::now(), off) - wall_now_ns()).abs();
        assert!(err < 1_000_000_000, "{err}");
    }
}
