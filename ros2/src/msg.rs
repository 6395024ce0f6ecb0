//! The ROS 2 messages shmfusion's built-in samples map to, with their CDR encoding and `.msg` schema text.
//!
//! Field order, types and constants follow the message definitions of the ROS 2 `common_interfaces` and
//! `rcl_interfaces` packages (`sensor_msgs/msg/Imu.msg`, `MagneticField.msg`, `NavSatFix.msg`, `NavSatStatus.msg`,
//! `geometry_msgs/msg/QuaternionStamped.msg`, `Quaternion.msg`, `Vector3.msg`, `std_msgs/msg/Header.msg`,
//! `builtin_interfaces/msg/Time.msg`). Comments of the originals are left out of the schema text; the fields are
//! what readers decode by.

use crate::cdr::{DecodeError, Reader, Writer};

/// A ROS 2 message type: its name, its schema (MCAP `ros2msg` encoding: the type's definition, then each nested
/// type after a line of 80 `=` and a `MSG: package/Type` line), and its CDR encoding.
pub trait Message: Sized {
    /// The fully qualified type name, e.g. `sensor_msgs/msg/Imu`.
    const NAME: &'static str;
    /// The schema text.
    const SCHEMA: &'static str;
    /// Serialises the message (encapsulation header included).
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.finish()
    }
    /// Deserialises a message.
    ///
    /// # Errors
    /// A [`DecodeError`] for data that is not a complete little-endian CDR message of this type.
    fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(data)?)
    }
    /// Appends the fields.
    fn write(&self, w: &mut Writer);
    /// Reads the fields.
    ///
    /// # Errors
    /// As for [`Message::decode`].
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

macro_rules! separator {
    () => {
        "================================================================================\n"
    };
}

/// `builtin_interfaces/msg/Time`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Time {
    /// Seconds.
    pub sec: i32,
    /// Nanoseconds within the second.
    pub nanosec: u32,
}

impl Time {
    /// A time from nanoseconds (seconds saturate at `i32::MAX`).
    pub fn from_nanos(ns: u64) -> Self {
        Self {
            sec: i32::try_from(ns / 1_000_000_000).unwrap_or(i32::MAX),
            nanosec: (ns % 1_000_000_000) as u32,
        }
    }
    /// Nanoseconds (negative seconds count as 0).
    pub fn as_nanos(&self) -> u64 {
        u64::try_from(self.sec).unwrap_or(0) * 1_000_000_000 + u64::from(self.nanosec)
    }
    fn write(&self, w: &mut Writer) {
        w.i32(self.sec);
        w.u32(self.nanosec);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            sec: r.i32()?,
            nanosec: r.u32()?,
        })
    }
}

/// `std_msgs/msg/Header`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// When the data was measured.
    pub stamp: Time,
    /// The coordinate frame.
    pub frame_id: String,
}

impl Header {
    fn write(&self, w: &mut Writer) {
        self.stamp.write(w);
        w.string(&self.frame_id);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            stamp: Time::read(r)?,
            frame_id: r.string()?,
        })
    }
}

/// `geometry_msgs/msg/Vector3`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Vector3 {
    /// x.
    pub x: f64,
    /// y.
    pub y: f64,
    /// z.
    pub z: f64,
}

impl Vector3 {
    fn write(&self, w: &mut Writer) {
        w.f64_array(&[self.x, self.y, self.z]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let [x, y, z] = r.f64_array()?;
        Ok(Self { x, y, z })
    }
}

/// `geometry_msgs/msg/Quaternion`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quaternion {
    /// x.
    pub x: f64,
    /// y.
    pub y: f64,
    /// z.
    pub z: f64,
    /// w.
    pub w: f64,
}

impl Default for Quaternion {
    fn default() -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            z: 0.0,
            w: 1.0,
        }
    }
}

impl Quaternion {
    fn write(&self, w: &mut Writer) {
        w.f64_array(&[self.x, self.y, self.z, self.w]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let [x, y, z, w] = r.f64_array()?;
        Ok(Self { x, y, z, w })
    }
}

/// `sensor_msgs/msg/Imu`. A covariance whose element 0 is -1 means "no estimate of this quantity".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Imu {
    /// Stamp and frame.
    pub header: Header,
    /// Orientation estimate.
    pub orientation: Quaternion,
    /// Row-major 3x3 covariance of the orientation.
    pub orientation_covariance: [f64; 9],
    /// Angular rate in rad/s.
    pub angular_velocity: Vector3,
    /// Row-major 3x3 covariance of the angular rate.
    pub angular_velocity_covariance: [f64; 9],
    /// Linear acceleration in m/s².
    pub linear_acceleration: Vector3,
    /// Row-major 3x3 covariance of the acceleration.
    pub linear_acceleration_covariance: [f64; 9],
}

impl Message for Imu {
    const NAME: &'static str = "sensor_msgs/msg/Imu";
    const SCHEMA: &'static str = concat!(
        "std_msgs/Header header\n",
        "geometry_msgs/Quaternion orientation\n",
        "float64[9] orientation_covariance\n",
        "geometry_msgs/Vector3 angular_velocity\n",
        "float64[9] angular_velocity_covariance\n",
        "geometry_msgs/Vector3 linear_acceleration\n",
        "float64[9] linear_acceleration_covariance\n",
        separator!(),
        "MSG: std_msgs/Header\n",
        "builtin_interfaces/Time stamp\nstring frame_id\n",
        separator!(),
        "MSG: builtin_interfaces/Time\n",
        "int32 sec\nuint32 nanosec\n",
        separator!(),
        "MSG: geometry_msgs/Quaternion\n",
        "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n",
        separator!(),
        "MSG: geometry_msgs/Vector3\n",
        "float64 x\nfloat64 y\nfloat64 z\n",
    );
    fn write(&self, w: &mut Writer) {
        self.header.write(w);
        self.orientation.write(w);
        w.f64_array(&self.orientation_covariance);
        self.angular_velocity.write(w);
        w.f64_array(&self.angular_velocity_covariance);
        self.linear_acceleration.write(w);
        w.f64_array(&self.linear_acceleration_covariance);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            header: Header::read(r)?,
            orientation: Quaternion::read(r)?,
            orientation_covariance: r.f64_array()?,
            angular_velocity: Vector3::read(r)?,
            angular_velocity_covariance: r.f64_array()?,
            linear_acceleration: Vector3::read(r)?,
            linear_acceleration_covariance: r.f64_array()?,
        })
    }
}

/// `sensor_msgs/msg/MagneticField` (tesla).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MagneticField {
    /// Stamp and frame.
    pub header: Header,
    /// Flux density in tesla.
    pub magnetic_field: Vector3,
    /// Row-major 3x3 covariance (all zero: unknown).
    pub magnetic_field_covariance: [f64; 9],
}

impl Message for MagneticField {
    const NAME: &'static str = "sensor_msgs/msg/MagneticField";
    const SCHEMA: &'static str = concat!(
        "std_msgs/Header header\n",
        "geometry_msgs/Vector3 magnetic_field\n",
        "float64[9] magnetic_field_covariance\n",
        separator!(),
        "MSG: std_msgs/Header\n",
        "builtin_interfaces/Time stamp\nstring frame_id\n",
        separator!(),
        "MSG: builtin_interfaces/Time\n",
        "int32 sec\nuint32 nanosec\n",
        separator!(),
        "MSG: geometry_msgs/Vector3\n",
        "float64 x\nfloat64 y\nfloat64 z\n",
    );
    fn write(&self, w: &mut Writer) {
        self.header.write(w);
        self.magnetic_field.write(w);
        w.f64_array(&self.magnetic_field_covariance);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            header: Header::read(r)?,
            magnetic_field: Vector3::read(r)?,
            magnetic_field_covariance: r.f64_array()?,
        })
    }
}

/// `sensor_msgs/msg/NavSatStatus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NavSatStatus {
    /// [`NavSatStatus::STATUS_NO_FIX`], [`NavSatStatus::STATUS_FIX`], ...
    pub status: i8,
    /// Bit set of `SERVICE_*`.
    pub service: u16,
}

impl NavSatStatus {
    /// Unable to fix position.
    pub const STATUS_NO_FIX: i8 = -1;
    /// Unaugmented fix.
    pub const STATUS_FIX: i8 = 0;
    /// GPS.
    pub const SERVICE_GPS: u16 = 1;
}

/// `sensor_msgs/msg/NavSatFix`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NavSatFix {
    /// Stamp and frame.
    pub header: Header,
    /// Fix status.
    pub status: NavSatStatus,
    /// Degrees, positive north.
    pub latitude: f64,
    /// Degrees, positive east.
    pub longitude: f64,
    /// Metres above the WGS-84 ellipsoid.
    pub altitude: f64,
    /// Row-major ENU covariance in m².
    pub position_covariance: [f64; 9],
    /// `COVARIANCE_TYPE_*`.
    pub position_covariance_type: u8,
}

impl NavSatFix {
    /// Only the diagonal of the covariance is known.
    pub const COVARIANCE_TYPE_DIAGONAL_KNOWN: u8 = 2;
}

impl Message for NavSatFix {
    const NAME: &'static str = "sensor_msgs/msg/NavSatFix";
    const SCHEMA: &'static str = concat!(
        "uint8 COVARIANCE_TYPE_UNKNOWN=0\n",
        "uint8 COVARIANCE_TYPE_APPROXIMATED=1\n",
        "uint8 COVARIANCE_TYPE_DIAGONAL_KNOWN=2\n",
        "uint8 COVARIANCE_TYPE_KNOWN=3\n",
        "std_msgs/Header header\n",
        "sensor_msgs/NavSatStatus status\n",
        "float64 latitude\n",
        "float64 longitude\n",
        "float64 altitude\n",
        "float64[9] position_covariance\n",
        "uint8 position_covariance_type\n",
        separator!(),
        "MSG: std_msgs/Header\n",
        "builtin_interfaces/Time stamp\nstring frame_id\n",
        separator!(),
        "MSG: builtin_interfaces/Time\n",
        "int32 sec\nuint32 nanosec\n",
        separator!(),
        "MSG: sensor_msgs/NavSatStatus\n",
        "int8 STATUS_UNKNOWN=-2\n",
        "int8 STATUS_NO_FIX=-1\n",
        "int8 STATUS_FIX=0\n",
        "int8 STATUS_SBAS_FIX=1\n",
        "int8 STATUS_GBAS_FIX=2\n",
        "int8 status\n",
        "uint16 SERVICE_GPS=1\n",
        "uint16 SERVICE_GLONASS=2\n",
        "uint16 SERVICE_COMPASS=4\n",
        "uint16 SERVICE_GALILEO=8\n",
        "uint16 service\n",
    );
    fn write(&self, w: &mut Writer) {
        self.header.write(w);
        w.i8(self.status.status);
        w.u16(self.status.service);
        w.f64(self.latitude);
        w.f64(self.longitude);
        w.f64(self.altitude);
        w.f64_array(&self.position_covariance);
        w.u8(self.position_covariance_type);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            header: Header::read(r)?,
            status: NavSatStatus {
                status: r.i8()?,
                service: r.u16()?,
            },
            latitude: r.f64()?,
            longitude: r.f64()?,
            altitude: r.f64()?,
            position_covariance: r.f64_array()?,
            position_covariance_type: r.u8()?,
        })
    }
}

/// `geometry_msgs/msg/QuaternionStamped`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuaternionStamped {
    /// Stamp and frame.
    pub header: Header,
    /// The orientation.
    pub quaternion: Quaternion,
}

impl Message for QuaternionStamped {
    const NAME: &'static str = "geometry_msgs/msg/QuaternionStamped";
    const SCHEMA: &'static str = concat!(
        "std_msgs/Header header\n",
        "geometry_msgs/Quaternion quaternion\n",
        separator!(),
        "MSG: std_msgs/Header\n",
        "builtin_interfaces/Time stamp\nstring frame_id\n",
        separator!(),
        "MSG: builtin_interfaces/Time\n",
        "int32 sec\nuint32 nanosec\n",
        separator!(),
        "MSG: geometry_msgs/Quaternion\n",
        "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n",
    );
    fn write(&self, w: &mut Writer) {
        self.header.write(w);
        self.quaternion.write(w);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            header: Header::read(r)?,
            quaternion: Quaternion::read(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIME_DEF: &str = "int32 sec\nuint32 nanosec\n";
    const HEADER_DEF: &str = "builtin_interfaces/Time stamp\nstring frame_id\n";
    const QUATERNION_DEF: &str = "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n";
    const VECTOR3_DEF: &str = "float64 x\nfloat64 y\nfloat64 z\n";

    fn header() -> Header {
        Header {
            stamp: Time { sec: 1, nanosec: 2 },
            frame_id: "ab".into(),
        }
    }

    /// The nested definitions inside each schema are the same text as the standalone ones (one source of
    /// truth checked, since `concat!` cannot take consts).
    #[test]
    fn schemas_embed_the_shared_definitions() {
        for schema in [
            Imu::SCHEMA,
            MagneticField::SCHEMA,
            NavSatFix::SCHEMA,
            QuaternionStamped::SCHEMA,
        ] {
            assert!(schema.contains(&format!("MSG: std_msgs/Header\n{HEADER_DEF}")));
            assert!(schema.contains(&format!("MSG: builtin_interfaces/Time\n{TIME_DEF}")));
            assert_eq!(
                schema.lines().filter(|l| l.starts_with("====")).count(),
                schema.matches("MSG: ").count()
            );
            for line in schema.lines().filter(|l| l.starts_with("====")) {
                assert_eq!(line.len(), 80);
            }
        }
        assert!(Imu::SCHEMA.contains(&format!("MSG: geometry_msgs/Quaternion\n{QUATERNION_DEF}")));
        assert!(Imu::SCHEMA.contains(&format!("MSG: geometry_msgs/Vector3\n{VECTOR3_DEF}")));
        assert!(QuaternionStamped::SCHEMA.contains(&format!("MSG: geometry_msgs/Quaternion\n{QUATERNION_DEF}")));
    }

    #[test]
    fn quaternion_stamped_bytes() {
        let msg = QuaternionStamped {
            header: header(),
            quaternion: Quaternion {
                x: 0.0,
                y: 0.0,
                z: 0.0,
                w: 1.0,
            },
        };
        let bytes = msg.encode();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 1, 0, 0][..],
            &[1, 0, 0, 0], &[2, 0, 0, 0],          // stamp
            &[3, 0, 0, 0], b"ab\0",                 // frame_id
            &[0],                                   // pad to 16 (8-aligned after the encapsulation header)
            &[0; 8], &[0; 8], &[0; 8],              // x y z
            &[0, 0, 0, 0, 0, 0, 0xf0, 0x3f],        // w = 1.0
        ].concat();
        assert_eq!(bytes, expected);
        assert_eq!(QuaternionStamped::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn imu_bytes() {
        let mut msg = Imu {
            header: header(),
            ..Imu::default()
        };
        msg.orientation_covariance[0] = -1.0;
        msg.angular_velocity.z = 0.5;
        msg.linear_acceleration.z = 9.81;
        let bytes = msg.encode();
        // 4 + header 16 (sec, nanosec, len, "ab\0", pad) + quaternion 32 + its covariance 72 + 2 * (vector 24 +
        // covariance 72).
        assert_eq!(bytes.len(), 4 + 16 + 32 + 72 + 2 * 96);
        assert_eq!(&bytes[20..28], &0.0f64.to_le_bytes()); // orientation.x at body offset 16
        assert_eq!(&bytes[44..52], &1.0f64.to_le_bytes()); // orientation.w
        assert_eq!(&bytes[52..60], &(-1.0f64).to_le_bytes()); // orientation_covariance[0]
        // angular_velocity.z: after header, orientation and its covariance, 16 bytes into the vector.
        let gyro_z = 4 + 16 + 32 + 72 + 16;
        assert_eq!(&bytes[gyro_z..gyro_z + 8], &0.5f64.to_le_bytes());
        let accel_z = gyro_z + 8 + 72 + 16;
        assert_eq!(&bytes[accel_z..accel_z + 8], &9.81f64.to_le_bytes());
        assert_eq!(Imu::decode(&bytes).unwrap(), msg);
        assert!(Imu::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn nav_sat_fix_bytes() {
        let msg = NavSatFix {
            header: Header {
                stamp: Time { sec: 0, nanosec: 0 },
                frame_id: "gps".into(),
            },
            status: NavSatStatus {
                status: NavSatStatus::STATUS_NO_FIX,
                service: NavSatStatus::SERVICE_GPS,
            },
            latitude: 1.5,
            longitude: 0.0,
            altitude: 0.0,
            position_covariance: [0.0; 9],
            position_covariance_type: NavSatFix::COVARIANCE_TYPE_DIAGONAL_KNOWN,
        };
        let bytes = msg.encode();
        #[rustfmt::skip]
        let head: Vec<u8> = [
            &[0, 1, 0, 0][..],
            &[0; 8],                               // stamp
            &[4, 0, 0, 0], b"gps\0",               // frame_id: body 8..16
            &[0xff],                               // status -1 at body 16
            &[0],                                  // pad to 18
            &[1, 0],                               // service
            &[0; 4],                               // pad to 24
            &1.5f64.to_le_bytes(),                 // latitude
        ].concat();
        assert_eq!(&bytes[..head.len()], &head[..]);
        // lat, lon, alt, 9 covariances, then the type byte last.
        assert_eq!(bytes.len(), head.len() + 2 * 8 + 9 * 8 + 1);
        assert_eq!(*bytes.last().unwrap(), 2);
        assert_eq!(NavSatFix::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn magnetic_field_round_trip() {
        let msg = MagneticField {
            header: header(),
            magnetic_field: Vector3 {
                x: 2.0e-5,
                y: -1.0e-6,
                z: 4.5e-5,
            },
            magnetic_field_covariance: [0.0; 9],
        };
        let bytes = msg.encode();
        assert_eq!(bytes.len(), 4 + 16 + 24 + 72);
        assert_eq!(&bytes[20..28], &2.0e-5f64.to_le_bytes());
        assert_eq!(MagneticField::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn time_from_nanos() {
        let t = Time::from_nanos(3_000_000_007);
        assert_eq!(t, Time { sec: 3, nanosec: 7 });
        assert_eq!(t.as_nanos(), 3_000_000_007);
    }
}
