//! Synchronisers: group messages from `K` channels into sets, one message per channel.
//!
//! Each policy is a pure state machine fed the stream of `(channel, stamp, value)` arrivals through `push`,
//! which calls `emit` with every set it completes (`[Timed<T>; K]`, index = channel). They hold fixed-capacity
//! queues (const generics, no allocation, `no_std`) and never block.
//!
//! # ROS 2 compatibility
//!
//! The ROS policies reproduce the ROS 2 `message_filters` **release 6.0.6** sources (tag `6.0.6`; `rolling` at
//! commit `361e42c78ee08a7b63397a143eae87fda7514d61` has the same policy sources): the C++ headers
//! `include/message_filters/sync_policies/{exact_time,approximate_time,approximate_epsilon_time,latest_time}.hpp`
//! and the Python `src/message_filters/__init__.py`. "Reproduce" means: the same sets, in the same order, emitted
//! by the same arrival, for every input, including queue overflow. Each type's docs state the behaviour and list
//! its deliberate differences with the reason. The common ones:
//!
//! - ROS's `queue_size` is the const generic `Q`, at least 1 (ROS treats 0 as unbounded for ExactTime and
//!   asserts against it for ApproximateTime); capacities are fixed at compile time.
//! - Durations are `u64` nanoseconds ([`Timestamp`]) instead of `rclcpp::Time`'s `i64`; ROS's signed arithmetic
//!   is reproduced where stamps can be out of order.
//! - The only refused input is a channel index `>= K` ([`PushError`]); ROS's templates make that impossible.
//! - Drop callbacks are counters ([`SyncStats`]).
//!
//! The tests check this against a reference model of ROS's ApproximateTime written from the algorithm (test code,
//! `proptests.rs`), on millions of generated steps, and against the scenarios of ROS's own unit tests
//! (`test/test_*_policy.cpp`, `test/test_approxsync.py`, ported in `upstream_tests.rs`).
//!
//! | policy | ROS 2 counterpart | emits | sets depend on arrival order? |
//! |---|---|---|---|
//! | [`ExactTime`] | `sync_policies::ExactTime` | when all `K` channels have a message with the same stamp | no (stamps only) |
//! | [`ApproximateTime`] | `sync_policies::ApproximateTime` | the provably best-matching set | no, unless a queue overflows (when a set is emitted can) |
//! | [`ApproximateEpsilonTime`] | `sync_policies::ApproximateEpsilonTime` | when all heads are within `ε` of the earliest | no, unless a queue overflows |
//! | [`LatestTime`] | `sync_policies::LatestTime` | on arrivals of the fastest on-time channel, the latest of each | yes (arrival rates) |
//! | [`SlopTime`] | Python `ApproximateTimeSynchronizer` | the first set within `slop` around the arriving message | yes |
//! | [`LatestOfEach`] | (none) | on each arrival on a fixed pivot channel, the latest of each | yes, by design |
//!
//! "No" assumes messages arrive in stamp order **per channel** (not across channels).
//!
//! `T` is the same for all channels. For heterogeneous sensors, use an enum, or push the sample's sequence
//! number in its ring (`T = u64`) and read the samples from the rings once a set is emitted.

mod approx;
mod epsilon;
mod exact;
mod latest;
mod latest_time;
mod slop;

pub use approx::{ApproximateTime, ROS_AGE_PENALTY_PPM};
pub use epsilon::ApproximateEpsilonTime;
pub use exact::ExactTime;
pub use latest::LatestOfEach;
pub use latest_time::{Clock, LatestTime, MonotonicClock, RateConfig};
pub use slop::SlopTime;

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
    /// A headerless message was offered to a [`SlopTime`] that does not allow them.
    Headerless,
}

impl core::fmt::Display for PushError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidChannel => f.write_str("channel index out of range"),
            Self::Headerless => f.write_str("headerless message refused (allow_headerless is off)"),
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
    /// Messages discarded because a fixed-capacity queue was full. When non-zero, the "sets depend only on stamps"
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

/// The capacities every queued synchroniser needs: `K >= 1` channels and `Q >= 1` queue slots (or pending sets).
/// Constructors evaluate [`Self::CHECKED`], so a zero is a compile-time error at the call site's instantiation.
struct Capacity<const K: usize, const Q: usize>;

impl<const K: usize, const Q: usize> Capacity<K, Q> {
    const CHECKED: () = assert!(
        K >= 1 && Q >= 1,
        "a synchroniser needs K >= 1 channels and Q >= 1 queue slots"
    );
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

/// Nanoseconds as a [`Timestamp`], for the tests' small integer stamps.
#[cfg(test)]
fn ts(n: u64) -> Timestamp {
    Timestamp::from_nanos(n)
}

// The differential and upstream tests instantiate every synchroniser for dozens of arities and queue sizes: a
// quarter of the unit-test crate's LLVM IR, which the loom build (`--cfg loom`, for the buffers' models) need not compile.
#[cfg(all(test, not(loom)))]
mod proptests;
#[cfg(all(test, not(loom)))]
mod ros_latest_model;
#[cfg(all(test, not(loom)))]
mod ros_model;
#[cfg(all(test, not(loom)))]
mod upstream_tests;
