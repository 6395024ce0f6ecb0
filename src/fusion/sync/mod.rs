//! Synchronisers: group messages from `K` channels into sets, one message per channel.
//!
//! Each policy is a pure state machine fed the stream of `(channel, stamp, value)` arrivals through `push`,
//! which calls `emit` with every set it completes (`[Timed<T>; K]`, index = channel). They hold fixed-capacity
//! queues (const generics, no allocation) and never block.
//!
//! | policy | emits | depends on arrival order? |
//! |---|---|---|
//! | [`ExactTime`] | when all `K` channels have a message with the same stamp | no (stamps only) |
//! | [`ApproximateTime`] | the best-matching set by the ROS `message_filters` rules | no (stamps only) |
//! | [`LatestOfEach`] | on each pivot-channel arrival, with the latest message of every channel | yes, by design |
//!
//! "Depends only on stamps" assumes messages arrive in stamp order **per channel** (not across channels) and
//! that queues never overflow; each policy's docs give the capacity rule. Messages that arrive out of order on
//! their channel are rejected with [`PushError::OutOfOrder`].
//!
//! `T` is the same for all channels. For heterogeneous sensors, use an enum, or push the sample's sequence
//! number in its ring (`T = u64`) and read the samples from the rings once a set is emitted.

mod approx;
mod exact;
mod latest;

pub use approx::{ApproximateTime, ROS_AGE_PENALTY_PPM};
pub use exact::ExactTime;
pub use latest::LatestOfEach;

use super::time::Timestamp;

/// A message in a synchronised set: its stamp and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timed<T> {
    /// The message's timestamp.
    pub stamp: Timestamp,
    /// The message.
    pub value: T,
}

/// Why a push was refused (the message is not stored; counted in [`SyncStats::rejected`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PushError {
    /// The channel index is not below `K`.
    InvalidChannel,
    /// The stamp is earlier than the previous message accepted on this channel (`last`).
    OutOfOrder {
        /// Stamp of the previous message on the channel.
        last: Timestamp,
    },
}

impl core::fmt::Display for PushError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidChannel => f.write_str("channel index out of range"),
            Self::OutOfOrder { last } => {
                write!(
                    f,
                    "stamp earlier than the channel's previous message ({} ns)",
                    last.as_nanos()
                )
            }
        }
    }
}

/// Counters kept by every synchroniser.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SyncStats {
    /// Sets emitted.
    pub emitted: u64,
    /// Messages accepted but discarded without being part of a set (unmatched, superseded, too wide, stale).
    pub dropped: u64,
    /// Messages discarded because a fixed-capacity queue was full. When non-zero, the "depends only on stamps"
    /// guarantee no longer holds for the sets around the overflow: increase the queue depth.
    pub overflowed: u64,
    /// Pushes refused with a [`PushError`].
    pub rejected: u64,
}

impl SyncStats {
    /// All counters zero.
    const ZERO: Self = Self {
        emitted: 0,
        dropped: 0,
        overflowed: 0,
        rejected: 0,
    };
}

impl SyncStats {
    /// The admission rules every synchroniser applies to a push: the channel must exist, and the stamp must not
    /// be older than the last one accepted on that channel (`last(channel)`; `None` when there is none or the
    /// synchroniser does not require order). A refused push is counted in `rejected`.
    fn admit(
        &mut self,
        channels: usize,
        channel: usize,
        stamp: Timestamp,
        last: impl FnOnce(usize) -> Option<Timestamp>,
    ) -> Result<(), PushError> {
        let refused = if channel >= channels {
            PushError::InvalidChannel
        } else {
            match last(channel) {
                Some(last) if stamp < last => PushError::OutOfOrder { last },
                _ => return Ok(()),
            }
        };
        self.rejected += 1;
        Err(refused)
    }
}

/// Builds a `[Timed<T>; K]` from a per-channel getter without panicking (`None` if any entry is missing or
/// `K == 0`).
fn collect_set<T: Copy, const K: usize>(mut f: impl FnMut(usize) -> Option<Timed<T>>) -> Option<[Timed<T>; K]> {
    let first = if K == 0 { return None } else { f(0)? };
    let mut out = [first; K];
    for (i, slot) in out.iter_mut().enumerate().skip(1) {
        *slot = f(i)?;
    }
    Some(out)
}

#[cfg(test)]
mod proptests;
