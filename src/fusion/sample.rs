//! Stamped samples and sensor payloads, all padding-free and [`bytemuck::Pod`] so they can live in shared memory.

use core::mem::{align_of, size_of};

use super::geometry::{Quaternion, Vector3};
use super::time::Timestamp;

/// The metadata in front of every published sample (24 bytes, no padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SampleHeader {
    /// When the measurement was taken (`CLOCK_MONOTONIC`).
    pub stamp: Timestamp,
    /// The producer's sequence number for this channel (0, 1, 2, …); a gap means lost samples.
    pub seq: u64,
    /// Which sensor channel produced the sample (application-defined).
    pub channel: u32,
    /// Free for the producer (validity bits, sensor status); shmfusion does not interpret it.
    pub flags: u32,
}

impl SampleHeader {
    /// A header with `flags` zero.
    pub const fn new(channel: u32, seq: u64, stamp: Timestamp) -> Self {
        Self {
            stamp,
            seq,
            channel,
            flags: 0,
        }
    }
}

/// A payload that can follow a [`SampleHeader`] in a [`Stamped`] without padding.
///
/// Implement it with [`impl_payload!`](crate::impl_payload), which checks the layout at compile time, rather than
/// by hand.
///
/// # Safety
///
/// `size_of::<Self>()` must be a multiple of 8 and `align_of::<Self>()` at most 8. Then `Stamped<Self>` (a
/// 24-byte, 8-aligned header followed by the payload) has no padding bytes, which its [`bytemuck::Pod`]
/// implementation relies on.
pub unsafe trait Payload: bytemuck::Pod {
    /// Evaluates (at compile time, when used) to a failed assertion if the layout rule is broken.
    #[doc(hidden)]
    const LAYOUT_OK: () = assert!(
        size_of::<Self>() % 8 == 0 && align_of::<Self>() <= 8,
        "a Payload's size must be a multiple of 8 and its alignment at most 8"
    );
}

/// Implements [`Payload`](crate::fusion::Payload) for concrete `Pod` types, checking the layout rule (size a
/// multiple of 8, alignment at most 8) at compile time.
///
/// ```
/// #[repr(C)]
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// struct Range { metres: f32, quality: f32 }
/// shmfusion::impl_payload!(Range);
/// let s = shmfusion::fusion::Stamped::new(Default::default(), Range { metres: 1.0, quality: 0.9 });
/// assert_eq!(core::mem::size_of_val(&s), 32);
/// ```
///
/// A type that breaks the rule does not compile:
///
/// ```compile_fail
/// #[repr(C)]
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// struct Odd { a: f32 }
/// shmfusion::impl_payload!(Odd);
/// ```
#[macro_export]
macro_rules! impl_payload {
    ($($t:ty),+ $(,)?) => {$(
        const _: () = ::core::assert!(
            ::core::mem::size_of::<$t>() % 8 == 0 && ::core::mem::align_of::<$t>() <= 8,
            "a Payload's size must be a multiple of 8 and its alignment at most 8"
        );
        // SAFETY: the layout rule of `Payload` is asserted at compile time just above.
        unsafe impl $crate::fusion::Payload for $t {}
    )+};
}

/// A sample as published on a channel: header, then payload (`#[repr(C)]`, no padding, `Pod`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stamped<T> {
    /// Stamp, sequence number and channel.
    pub header: SampleHeader,
    /// The measurement.
    pub payload: T,
}

// SAFETY: `Stamped<T>` is `#[repr(C)]` with a `Pod` header (24 bytes, align 8) and a `Pod` payload whose size is
// a multiple of 8 and alignment at most 8 (the `Payload` contract), so the payload starts at offset 24 with no
// padding before it and the struct (align 8) ends right after it: there are no padding bytes, every field is
// `Pod`, so every bit pattern is valid and all-zeroes is valid.
unsafe impl<T: Payload> bytemuck::Zeroable for Stamped<T> {}
// SAFETY: see above; `T: Payload` implies `T: Pod` (`Copy + 'static`).
unsafe impl<T: Payload> bytemuck::Pod for Stamped<T> {}
// SAFETY: size 24 + size_of::<T>(), a multiple of 8; alignment 8 (the header's, and T's is at most 8).
unsafe impl<T: Payload> Payload for Stamped<T> {}

impl<T: Payload> Stamped<T> {
    /// A stamped sample.
    pub const fn new(header: SampleHeader, payload: T) -> Self {
        // Force the compile-time layout check for this `T`.
        #[allow(clippy::let_unit_value)]
        let () = T::LAYOUT_OK;
        Self { header, payload }
    }

    /// The measurement time.
    pub const fn stamp(&self) -> Timestamp {
        self.header.stamp
    }
}

/// One inertial measurement: specific force and angular rate in the sensor frame (24 bytes).
///
/// Units are up to the application; the crate's filter and simulator use m/s² and rad/s. An accelerometer at
/// rest measures `+g` pointing **up** (specific force), e.g. `(0, 0, 9.81)` when level.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ImuSample {
    /// Specific force (accelerometer).
    pub accel: Vector3,
    /// Angular rate (gyroscope).
    pub gyro: Vector3,
}

/// One magnetometer measurement in the sensor frame (16 bytes), in microtesla (µT): the unit of the simulator's
/// [`Environment`](super::sim::Environment) and the one tools convert from (ROS 2 `MagneticField` is in tesla).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MagSample {
    /// Magnetic flux density, µT.
    pub field: Vector3,
    /// Reserved, zero (keeps the size a multiple of 8).
    reserved: u32,
}

impl MagSample {
    /// A magnetometer sample.
    pub const fn new(field: Vector3) -> Self {
        Self { field, reserved: 0 }
    }
}

/// A GNSS position fix (40 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GnssFix {
    /// Latitude in degrees (WGS-84), positive north.
    pub latitude_deg: f64,
    /// Longitude in degrees (WGS-84), positive east, in `[-180, 180)`.
    pub longitude_deg: f64,
    /// Height above the ellipsoid in metres.
    pub altitude_m: f64,
    /// Horizontal accuracy estimate (1σ) in metres.
    pub horizontal_accuracy_m: f32,
    /// Vertical accuracy estimate (1σ) in metres.
    pub vertical_accuracy_m: f32,
    /// Fix type: [`GnssFix::NO_FIX`], [`GnssFix::FIX_2D`] or [`GnssFix::FIX_3D`].
    pub fix_type: u32,
    /// Number of satellites used.
    pub satellites: u32,
}

impl GnssFix {
    /// No position.
    pub const NO_FIX: u32 = 0;
    /// Horizontal position only.
    pub const FIX_2D: u32 = 2;
    /// Full 3-D position.
    pub const FIX_3D: u32 = 3;
}

impl_payload!(ImuSample, MagSample, GnssFix, Quaternion, u64, i64, f64, Timestamp);

#[cfg(test)]
mod tests {
    use super::*;
    use bytemuck::Zeroable;

    #[test]
    fn layouts() {
        assert_eq!(size_of::<SampleHeader>(), 24);
        assert_eq!(size_of::<ImuSample>(), 24);
        assert_eq!(size_of::<MagSample>(), 16);
        assert_eq!(size_of::<GnssFix>(), 40);
        assert_eq!(size_of::<Stamped<ImuSample>>(), 48);
        assert_eq!(size_of::<Stamped<MagSample>>(), 40);
        assert_eq!(size_of::<Stamped<GnssFix>>(), 64);
        assert_eq!(size_of::<Stamped<Quaternion>>(), 40);
        assert_eq!(size_of::<Stamped<u64>>(), 32);
    }

    #[test]
    fn stamped_round_trips_through_bytes() {
        let s = Stamped::new(
            SampleHeader {
                stamp: Timestamp::from_nanos(42),
                seq: 7,
                channel: 3,
                flags: 1,
            },
            ImuSample {
                accel: Vector3::new(0.0, 0.0, 9.81),
                gyro: Vector3::new(0.1, 0.2, 0.3),
            },
        );
        let bytes = bytemuck::bytes_of(&s);
        assert_eq!(bytes.len(), 48);
        let back: Stamped<ImuSample> = bytemuck::pod_read_unaligned(bytes);
        assert_eq!(back, s);
        assert_eq!(back.stamp(), Timestamp::from_nanos(42));
        let z = Stamped::<GnssFix>::zeroed();
        assert_eq!(z.header.seq, 0);
        fn shareable<T: crate::Shareable>(_: &T) {}
        shareable(&z);
    }
}
