//! Zero-order hold: the latest message of every channel at each pivot arrival.

use core::time::Duration;

use super::{PushError, SyncStats, Timed, collect_set};
use crate::fusion::time::Timestamp;

/// Emits, on every arrival on the **pivot** channel, a set with that message and the latest message received on
/// every other channel (a zero-order hold, like ROS 2 `LatestTime`, which up-samples slower topics without
/// interpolation; here the pivot is chosen explicitly instead of by rate estimation).
///
/// Guarantees:
///
/// 1. One set per pivot arrival once every channel has delivered a message (earlier pivot arrivals are counted
///    in [`SyncStats::dropped`]), and none otherwise.
/// 2. The other channels' entries are the latest *arrived* messages (highest stamp, since arrival is in order
///    per channel); the same message may appear in many sets.
/// 3. With [`with_max_age`](Self::with_max_age)`(A)`, a set is emitted only if every entry's stamp is within `A`
///    of the pivot's stamp (either side); otherwise the pivot message is dropped.
///
/// Unlike [`ExactTime`](super::ExactTime) and [`ApproximateTime`](super::ApproximateTime), the output depends
/// on arrival order by design: it trades match quality for the lowest latency (no waiting). Memory: one message
/// per channel.
#[derive(Clone, Debug)]
pub struct LatestOfEach<T, const K: usize> {
    latest: [Option<Timed<T>>; K],
    pivot: usize,
    max_age: Option<u64>,
    stats: SyncStats,
}

impl<T: Copy, const K: usize> LatestOfEach<T, K> {
    /// A synchroniser that emits on arrivals on `pivot` (which must be below `K`; otherwise it never emits).
    pub const fn new(pivot: usize) -> Self {
        const { assert!(K >= 1, "LatestOfEach needs K >= 1 channels") };
        Self {
            latest: [None; K],
            pivot,
            max_age: None,
            stats: SyncStats::ZERO,
        }
    }

    /// Only emit sets whose entries are all within `max_age` of the pivot message's stamp.
    pub const fn with_max_age(mut self, max_age: Duration) -> Self {
        let n = max_age.as_nanos();
        self.max_age = Some(if n > u64::MAX as u128 { u64::MAX } else { n as u64 });
        self
    }

    /// Counters.
    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    /// The latest message received on `channel`.
    pub fn latest(&self, channel: usize) -> Option<Timed<T>> {
        self.latest.get(channel).copied().flatten()
    }

    /// Offers a message on `channel`; on a pivot arrival calls `emit` with the set, if complete. Returns how many
    /// sets were emitted (0 or 1).
    pub fn push(
        &mut self,
        channel: usize,
        stamp: Timestamp,
        value: T,
        mut emit: impl FnMut(&[Timed<T>; K]),
    ) -> Result<usize, PushError> {
        self.stats
            .admit(K, channel, stamp, |c| self.latest[c].map(|t| t.stamp))?;
        self.latest[channel] = Some(Timed { stamp, value });
        if channel != self.pivot {
            return Ok(0);
        }
        let Some(set) = collect_set::<T, K>(|c| self.latest[c]) else {
            self.stats.dropped += 1;
            return Ok(0);
        };
        if let Some(max) = self.max_age {
            if set.iter().any(|m| m.stamp.abs_diff(stamp) > max) {
                self.stats.dropped += 1;
                return Ok(0);
            }
        }
        self.stats.emitted += 1;
        emit(&set);
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::sync::ts;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn holds_the_latest_of_slow_channels() {
        let mut s = LatestOfEach::<u32, 3>::new(0).with_max_age(Duration::from_nanos(50));
        let mut out = Vec::new();
        let msgs = [
            (0, 0, 1),
            (1, 5, 2),
            (0, 10, 3),
            (2, 12, 4),
            (0, 20, 5),
            (0, 30, 6),
            (1, 31, 7),
            (0, 40, 8),
            (0, 100, 9),
        ];
        for (c, t, v) in msgs {
            s.push(c, ts(t), v, |set| out.push(set.map(|m| m.value))).unwrap();
        }
        // 0 and 10 lack channel 2; 100 is too far from 31 and 12.
        assert_eq!(out, [[5, 2, 4], [6, 2, 4], [8, 7, 4]]);
        let st = s.stats();
        assert_eq!((st.emitted, st.dropped), (3, 3));
        assert_eq!(s.latest(1).map(|m| m.value), Some(7));
        assert_eq!(
            s.push(0, ts(99), 0, |_| {}),
            Err(PushError::OutOfOrder { last: ts(100) })
        );
    }
}
