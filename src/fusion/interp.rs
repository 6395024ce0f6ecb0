//! Interpolation between two samples at a time between their stamps.

use super::geometry::{Quaternion, Vector3};
use super::sample::{GnssFix, ImuSample, MagSample};
use super::time::Timestamp;

/// A value that can be interpolated between two samples.
///
/// `a.interpolate(&b, ratio)` is `a` at `ratio = 0` and `b` at `ratio = 1`, with `ratio = (t - t0)/(t1 - t0)`
/// (see [`ratio`]). Vectors and IMU samples interpolate linearly (as OpenVINS does for IMU readings);
/// quaternions use [`Quaternion::slerp`] along the shorter arc (as tf2 does for rotations), which falls back to
/// normalised lerp for nearly parallel quaternions.
pub trait Interpolate: Copy {
    /// The value at `ratio` between `self` (0) and `other` (1).
    fn interpolate(&self, other: &Self, ratio: f32) -> Self;
}

/// The interpolation ratio `(t - t0)/(t1 - t0)` of `t` between `t0` and `t1`; 0 when `t1 == t0`.
///
/// Not clamped: a `t` outside `[t0, t1]` gives a ratio outside `[0, 1]` (extrapolation); with `t1 < t0` the ratio
/// is computed with signed differences.
pub fn ratio(t0: Timestamp, t1: Timestamp, t: Timestamp) -> f32 {
    let span = t1.as_nanos() as i128 - t0.as_nanos() as i128;
    if span == 0 {
        return 0.0;
    }
    let off = t.as_nanos() as i128 - t0.as_nanos() as i128;
    (off as f64 / span as f64) as f32
}

impl Interpolate for f32 {
    fn interpolate(&self, other: &Self, ratio: f32) -> Self {
        self + (other - self) * ratio
    }
}

impl Interpolate for f64 {
    fn interpolate(&self, other: &Self, ratio: f32) -> Self {
        self + (other - self) * f64::from(ratio)
    }
}

impl Interpolate for Vector3 {
    fn interpolate(&self, other: &Self, ratio: f32) -> Self {
        self.lerp(*other, ratio)
    }
}

impl Interpolate for Quaternion {
    fn interpolate(&self, other: &Self, ratio: f32) -> Self {
        self.slerp(*other, ratio)
    }
}

impl Interpolate for ImuSample {
    fn interpolate(&self, other: &Self, ratio: f32) -> Self {
        Self {
            accel: self.accel.lerp(other.accel, ratio),
            gyro: self.gyro.lerp(other.gyro, ratio),
        }
    }
}

impl Interpolate for MagSample {
    fn interpolate(&self, other: &Self, ratio: f32) -> Self {
        Self::new(self.field.lerp(other.field, ratio))
    }
}

impl Interpolate for GnssFix {
    /// Linear in latitude, longitude (across the ±180° meridian the shorter way) and altitude; the accuracies
    /// interpolate linearly; fix type and satellite count come from the nearer sample.
    fn interpolate(&self, other: &Self, ratio: f32) -> Self {
        let r = f64::from(ratio);
        let mut dlon = other.longitude_deg - self.longitude_deg;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        let mut lon = self.longitude_deg + dlon * r;
        if lon >= 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        let nearer = if ratio < 0.5 { self } else { other };
        Self {
            latitude_deg: self.latitude_deg.interpolate(&other.latitude_deg, ratio),
            longitude_deg: lon,
            altitude_m: self.altitude_m.interpolate(&other.altitude_m, ratio),
            horizontal_accuracy_m: self
                .horizontal_accuracy_m
                .interpolate(&other.horizontal_accuracy_m, ratio),
            vertical_accuracy_m: self.vertical_accuracy_m.interpolate(&other.vertical_accuracy_m, ratio),
            fix_type: nearer.fix_type,
            satellites: nearer.satellites,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_basics() {
        let t = Timestamp::from_nanos;
        assert_eq!(ratio(t(100), t(200), t(150)), 0.5);
        assert_eq!(ratio(t(100), t(100), t(100)), 0.0);
        assert_eq!(ratio(t(100), t(200), t(300)), 2.0);
        assert_eq!(ratio(t(u64::MAX - 10), t(u64::MAX), t(u64::MAX - 5)), 0.5);
    }

    #[test]
    fn imu_is_linear() {
        let a = ImuSample {
            accel: Vector3::new(0.0, 0.0, 9.0),
            gyro: Vector3::new(1.0, 0.0, 0.0),
        };
        let b = ImuSample {
            accel: Vector3::new(2.0, 0.0, 10.0),
            gyro: Vector3::new(3.0, 0.0, 0.0),
        };
        let m = a.interpolate(&b, 0.25);
        assert_eq!(m.accel, Vector3::new(0.5, 0.0, 9.25));
        assert_eq!(m.gyro, Vector3::new(1.5, 0.0, 0.0));
    }

    #[test]
    fn gnss_longitude_wraps_the_short_way() {
        let a = GnssFix {
            longitude_deg: 179.0,
            fix_type: GnssFix::FIX_3D,
            ..Default::default()
        };
        let b = GnssFix {
            longitude_deg: -179.0,
            fix_type: GnssFix::FIX_2D,
            ..Default::default()
        };
        let m = a.interpolate(&b, 0.5);
        assert!((m.longitude_deg - -180.0).abs() < 1e-9, "{}", m.longitude_deg);
        let m = a.interpolate(&b, 0.25);
        assert!((m.longitude_deg - 179.5).abs() < 1e-9);
        assert_eq!(m.fix_type, GnssFix::FIX_3D);
        assert_eq!(a.interpolate(&b, 0.75).fix_type, GnssFix::FIX_2D);
    }
}
