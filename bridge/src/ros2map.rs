//! The built-in samples as ROS 2 messages (CDR through `shmfusion-ros2`, the project's one encoder).
//!
//! | sample | message | mapping |
//! |---|---|---|
//! | `ImuSample` | `sensor_msgs/msg/Imu` | accel → `linear_acceleration`, gyro → `angular_velocity`; no orientation (`orientation_covariance[0] = -1`, the message's "not provided" mark) |
//! | `MagSample` | `sensor_msgs/msg/MagneticField` | field (µT in shmfusion's simulator) → tesla (× 1e-6) |
//! | `GnssFix` | `sensor_msgs/msg/NavSatFix` | lat/lon/alt; status `STATUS_FIX` for 2-D/3-D fixes, else `STATUS_NO_FIX`; diagonal covariance from the accuracies |
//! | `Quaternion` | `geometry_msgs/msg/QuaternionStamped` | w, x, y, z |
//!
//! `header.stamp` is the sample's monotonic stamp moved onto the wall clock with the sender's offset (see
//! [`crate::clock`]): ROS 2 stamps are wall-clock times. Decoding goes the other way (f64 → f32), so a round trip
//! keeps every value a `f32` can hold.

use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Payload, Quaternion, Vector3};
use shmfusion_ros2::cdr::DecodeError;
use shmfusion_ros2::msg::{self, Header, Message, Time};

use crate::rmw::RosType;

/// The type hashes are REP-2016 RIHS01 hashes of the Jazzy/Kilted/Rolling message definitions (the four
/// definitions are the same in the three distributions); the test command recomputes them with the `rosbags`
/// package's type store for each distribution and compares.
pub mod types {
    use crate::rmw::RosType;

    /// `sensor_msgs/msg/Imu`.
    pub const IMU: RosType = RosType {
        name: "sensor_msgs/msg/Imu",
        dds_name: "sensor_msgs::msg::dds_::Imu_",
        hash: "RIHS01_7d9a00ff131080897a5ec7e26e315954b8eae3353c3f995c55faf71574000b5b",
    };
    /// `sensor_msgs/msg/MagneticField`.
    pub const MAGNETIC_FIELD: RosType = RosType {
        name: "sensor_msgs/msg/MagneticField",
        dds_name: "sensor_msgs::msg::dds_::MagneticField_",
        hash: "RIHS01_e80f32f56a20486c9923008fc1a1db07bbb273cbbf6a5b3bfa00835ee00e4dff",
    };
    /// `sensor_msgs/msg/NavSatFix`.
    pub const NAV_SAT_FIX: RosType = RosType {
        name: "sensor_msgs/msg/NavSatFix",
        dds_name: "sensor_msgs::msg::dds_::NavSatFix_",
        hash: "RIHS01_62223ab3fe210a15976021da7afddc9e200dc9ec75231c1b6a557fc598a65404",
    };
    /// `geometry_msgs/msg/QuaternionStamped`.
    pub const QUATERNION_STAMPED: RosType = RosType {
        name: "geometry_msgs/msg/QuaternionStamped",
        dds_name: "geometry_msgs::msg::dds_::QuaternionStamped_",
        hash: "RIHS01_381add86c6c3160644d228ca342182c7fd6c7fab11c7a85ad817a9cc22dbac6e",
    };
}

/// A payload with a ROS 2 message form.
pub trait Ros2Sample: Payload + Send + Sync {
    /// The message type.
    const TYPE: RosType;
    /// The CDR bytes (encapsulation header included) of `self` stamped at `wall_ns` (ns since the epoch).
    fn to_cdr(&self, wall_ns: i64, frame_id: &str) -> Vec<u8>;
    /// The payload and its wall-clock stamp from CDR bytes.
    ///
    /// # Errors
    /// A [`DecodeError`] for bytes that are not this message.
    fn from_cdr(bytes: &[u8]) -> Result<(Self, i64), DecodeError>;
}

fn header(wall_ns: i64, frame_id: &str) -> Header {
    Header {
        stamp: Time::from_nanos(u64::try_from(wall_ns).unwrap_or(0)),
        frame_id: frame_id.to_owned(),
    }
}

fn wall(h: &Header) -> i64 {
    i64::try_from(h.stamp.as_nanos()).unwrap_or(i64::MAX)
}

fn v64(v: Vector3, scale: f64) -> msg::Vector3 {
    msg::Vector3 {
        x: f64::from(v.x) * scale,
        y: f64::from(v.y) * scale,
        z: f64::from(v.z) * scale,
    }
}

fn v32(v: msg::Vector3, scale: f64) -> Vector3 {
    Vector3::new((v.x * scale) as f32, (v.y * scale) as f32, (v.z * scale) as f32)
}

impl Ros2Sample for ImuSample {
    const TYPE: RosType = types::IMU;
    fn to_cdr(&self, wall_ns: i64, frame_id: &str) -> Vec<u8> {
        let mut orientation_covariance = [0.0; 9];
        orientation_covariance[0] = -1.0;
        msg::Imu {
            header: header(wall_ns, frame_id),
            orientation: msg::Quaternion::default(),
            orientation_covariance,
            angular_velocity: v64(self.gyro, 1.0),
            angular_velocity_covariance: [0.0; 9],
            linear_acceleration: v64(self.accel, 1.0),
            linear_acceleration_covariance: [0.0; 9],
        }
        .encode()
    }
    fn from_cdr(bytes: &[u8]) -> Result<(Self, i64), DecodeError> {
        let m = msg::Imu::decode(bytes)?;
        Ok((
            ImuSample {
                accel: v32(m.linear_acceleration, 1.0),
                gyro: v32(m.angular_velocity, 1.0),
            },
            wall(&m.header),
        ))
    }
}

/// Tesla per microtesla.
const TESLA_PER_UT: f64 = 1e-6;

impl Ros2Sample for MagSample {
    const TYPE: RosType = types::MAGNETIC_FIELD;
    fn to_cdr(&self, wall_ns: i64, frame_id: &str) -> Vec<u8> {
        msg::MagneticField {
            header: header(wall_ns, frame_id),
            magnetic_field: v64(self.field, TESLA_PER_UT),
            magnetic_field_covariance: [0.0; 9],
        }
        .encode()
    }
    fn from_cdr(bytes: &[u8]) -> Result<(Self, i64), DecodeError> {
        let m = msg::MagneticField::decode(bytes)?;
        Ok((
            MagSample::new(v32(m.magnetic_field, 1.0 / TESLA_PER_UT)),
            wall(&m.header),
        ))
    }
}

impl Ros2Sample for GnssFix {
    const TYPE: RosType = types::NAV_SAT_FIX;
    fn to_cdr(&self, wall_ns: i64, frame_id: &str) -> Vec<u8> {
        let h = f64::from(self.horizontal_accuracy_m);
        let v = f64::from(self.vertical_accuracy_m);
        let fixed = self.fix_type == GnssFix::FIX_2D || self.fix_type == GnssFix::FIX_3D;
        msg::NavSatFix {
            header: header(wall_ns, frame_id),
            status: msg::NavSatStatus {
                status: if fixed {
                    msg::NavSatStatus::STATUS_FIX
                } else {
                    msg::NavSatStatus::STATUS_NO_FIX
                },
                service: msg::NavSatStatus::SERVICE_GPS,
            },
            latitude: self.latitude_deg,
            longitude: self.longitude_deg,
            altitude: self.altitude_m,
            position_covariance: [h * h, 0.0, 0.0, 0.0, h * h, 0.0, 0.0, 0.0, v * v],
            position_covariance_type: msg::NavSatFix::COVARIANCE_TYPE_DIAGONAL_KNOWN,
        }
        .encode()
    }
    fn from_cdr(bytes: &[u8]) -> Result<(Self, i64), DecodeError> {
        let m = msg::NavSatFix::decode(bytes)?;
        let fix = GnssFix {
            latitude_deg: m.latitude,
            longitude_deg: m.longitude,
            altitude_m: m.altitude,
            horizontal_accuracy_m: m.position_covariance[0].max(0.0).sqrt() as f32,
            vertical_accuracy_m: m.position_covariance[8].max(0.0).sqrt() as f32,
            fix_type: if m.status.status >= msg::NavSatStatus::STATUS_FIX {
                GnssFix::FIX_3D
            } else {
                GnssFix::NO_FIX
            },
            satellites: 0,
        };
        Ok((fix, wall(&m.header)))
    }
}

impl Ros2Sample for Quaternion {
    const TYPE: RosType = types::QUATERNION_STAMPED;
    fn to_cdr(&self, wall_ns: i64, frame_id: &str) -> Vec<u8> {
        msg::QuaternionStamped {
            header: header(wall_ns, frame_id),
            quaternion: msg::Quaternion {
                x: f64::from(self.x),
                y: f64::from(self.y),
                z: f64::from(self.z),
                w: f64::from(self.w),
            },
        }
        .encode()
    }
    fn from_cdr(bytes: &[u8]) -> Result<(Self, i64), DecodeError> {
        let m = msg::QuaternionStamped::decode(bytes)?;
        let q = m.quaternion;
        Ok((
            Quaternion {
                w: q.w as f32,
                x: q.x as f32,
                y: q.y as f32,
                z: q.z as f32,
            },
            wall(&m.header),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attitude_cdr_bytes() {
        let bytes = Quaternion::IDENTITY.to_cdr(1_500_000_000, "map");
        let mut expected = vec![0x00, 0x01, 0x00, 0x00]; // CDR_LE encapsulation
        expected.extend_from_slice(&[1, 0, 0, 0]); // stamp.sec
        expected.extend_from_slice(&500_000_000u32.to_le_bytes()); // stamp.nanosec
        expected.extend_from_slice(&[4, 0, 0, 0, b'm', b'a', b'p', 0]); // frame_id (length includes the NUL)
        expected.extend_from_slice(&[0; 24]); // x, y, z (already 8-aligned)
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xf0, 0x3f]); // w = 1.0
        assert_eq!(bytes, expected);
    }

    #[test]
    fn every_sample_round_trips_through_its_message() {
        let imu = ImuSample {
            accel: Vector3::new(0.5, -1.25, 9.75),
            gyro: Vector3::new(0.125, 0.0, -2.5),
        };
        assert_eq!(ImuSample::from_cdr(&imu.to_cdr(42, "imu")).unwrap(), (imu, 42));
        let mag = MagSample::new(Vector3::new(20.0, -4.0, 41.5));
        let (back, t) = MagSample::from_cdr(&mag.to_cdr(7, "mag")).unwrap();
        assert_eq!(t, 7);
        assert!(
            (back.field.x - 20.0).abs() < 1e-4 && (back.field.z - 41.5).abs() < 1e-4,
            "{back:?}"
        );
        let fix = GnssFix {
            latitude_deg: 48.1,
            longitude_deg: 11.6,
            altitude_m: 520.0,
            horizontal_accuracy_m: 1.5,
            vertical_accuracy_m: 3.0,
            fix_type: GnssFix::FIX_3D,
            satellites: 0,
        };
        assert_eq!(GnssFix::from_cdr(&fix.to_cdr(1, "gps")).unwrap(), (fix, 1));
        let q = Quaternion::new(0.5, 0.5, -0.5, 0.5);
        assert_eq!(Quaternion::from_cdr(&q.to_cdr(3, "")).unwrap(), (q, 3));
        // The IMU message says "no orientation" in the way sensor_msgs/Imu defines.
        let m = msg::Imu::decode(&imu.to_cdr(0, "imu")).unwrap();
        assert_eq!(m.orientation_covariance[0], -1.0);
    }

    #[test]
    fn not_a_message_is_an_error() {
        assert!(ImuSample::from_cdr(&[0, 1, 0, 0, 1, 2]).is_err());
        assert!(Quaternion::from_cdr(b"").is_err());
    }
}
