//! Sensor fusion across processes: timestamped samples, time-indexed reads, synchronisers, an attitude filter.
//!
//! This module is the pure, process-independent part: no allocation, no syscalls other than reading
//! `CLOCK_MONOTONIC` in [`Timestamp::now`], fixed capacities as const generics.
//!
//! - [`Timestamp`], [`SampleHeader`], [`Stamped`]: what a sensor process publishes. Every sample type here is
//!   `#[repr(C)]`, padding-free and [`bytemuck::Pod`], so it can live in shared memory and be read from an
//!   untrusted peer: [`Vector3`], [`Quaternion`], [`ImuSample`], [`MagSample`], [`GnssFix`].
//! - [`Interpolate`]: linear for vectors and IMU samples, slerp (nlerp when nearly parallel) for quaternions.
//! - [`TimeSeries`] / [`TimeSeriesExt`]: nearest sample, bracketing pair and interpolation at a time `t`, by
//!   binary search over a window that a concurrent writer may be overwriting, with typed errors
//!   ([`ReadError`]).
//! - [`sync`]: synchronisers over `K` channels reproducing ROS 2 `message_filters` (6.0.6): [`ExactTime`],
//!   [`ApproximateTime`], [`ApproximateEpsilonTime`], [`LatestTime`], the Python slop synchroniser
//!   ([`SlopTime`]), and [`LatestOfEach`].
//! - [`Protected`], [`E2eSender`], [`E2eReceiver`]: opt-in end-to-end protection of samples (counter, data id,
//!   [`crc32c`]) against torn, replayed or foreign values written by a broken or hostile peer.
//! - [`Madgwick`]: a small AHRS (IMU + magnetometer) attitude filter in `f32`.
//! - [`sim`]: a deterministic ground-truth motion and sensor-noise model to test fusion pipelines.

mod ahrs;
mod crc32c;
mod e2e;
mod geometry;
mod interp;
mod ring_series;
mod sample;
mod series;
pub mod sim;
pub mod sync;
mod time;

pub use ahrs::{AhrsError, Madgwick};
pub use crc32c::{Crc32c, crc32c};
pub use e2e::{Checked, E2eError, E2eReceiver, E2eSender, Protected};
pub use geometry::{Quaternion, Vector3};
pub use interp::{Interpolate, ratio};
pub use sample::{GnssFix, ImuSample, MagSample, Payload, SampleHeader, Stamped};
pub use series::{Bracket, DEFAULT_ATTEMPTS, ReadError, Sample, SliceSeries, TimeSeries, TimeSeriesExt};
pub use sync::{
    ApproximateEpsilonTime, ApproximateTime, ExactTime, LatestOfEach, LatestTime, PushError, SlopTime, SyncStats, Timed,
};
pub use time::Timestamp;

#[cfg(all(test, not(loom)))]
mod proptest_config;
#[cfg(all(test, not(loom)))]
mod series_proptests;
