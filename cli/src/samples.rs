//! The built-in sample types: recognising them in a header, decoding them, and mapping them to ROS 2 messages.

use serde_json::{Value, json};
use shmfusion::buffer::inspect::BufferKind;
use shmfusion::buffer::{BroadcastRing, Latest, SpscRing};
use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion, SampleHeader, Stamped, Timestamp, Vector3};
use shmfusion::object::fnv1a;
use shmfusion_ros2::msg::{self, Header, Message, NavSatStatus, Time};

/// An element type this tool can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleType {
    Imu,
    Mag,
    Gnss,
    Quaternion,
}

/// A recognised element: the sample type and whether it carries a [`SampleHeader`] (a `Stamped<T>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element {
    pub sample: SampleType,
    pub stamped: bool,
}

/// The Rust type names the core hashes into a header's type id, for a capacity of 1 (the capacity is
/// substituted for the trailing `1` of the rings' names).
fn type_names(kind: BufferKind, element: Element) -> String {
    macro_rules! name {
        ($t:ty) => {
            match kind {
                BufferKind::BroadcastRing => core::any::type_name::<BroadcastRing<$t, 1>>(),
                BufferKind::SpscRing => core::any::type_name::<SpscRing<$t, 1>>(),
                BufferKind::Latest => core::any::type_name::<Latest<$t>>(),
            }
        };
    }
    match (element.sample, element.stamped) {
        (SampleType::Imu, true) => name!(Stamped<ImuSample>),
        (SampleType::Mag, true) => name!(Stamped<MagSample>),
        (SampleType::Gnss, true) => name!(Stamped<GnssFix>),
        (SampleType::Quaternion, true) => name!(Stamped<Quaternion>),
        (SampleType::Imu, false) => name!(ImuSample),
        (SampleType::Mag, false) => name!(MagSample),
        (SampleType::Gnss, false) => name!(GnssFix),
        (SampleType::Quaternion, false) => name!(Quaternion),
    }
    .to_owned()
}

const ALL: [SampleType; 4] = [
    SampleType::Imu,
    SampleType::Mag,
    SampleType::Gnss,
    SampleType::Quaternion,
];

/// The built-in element whose type id this header carries (objects created with the default type identity).
pub fn recognise(kind: BufferKind, capacity: u64, type_id: u64) -> Option<Element> {
    for sample in ALL {
        for stamped in [true, false] {
            let element = Element { sample, stamped };
            let mut name = type_names(kind, element);
            if kind != BufferKind::Latest {
                name.truncate(name.len() - ", 1>".len());
                name.push_str(&format!(", {capacity}>"));
            }
            if fnv1a(name.as_bytes()) == type_id {
                return Some(element);
            }
        }
    }
    None
}

impl SampleType {
    pub fn name(self) -> &'static str {
        match self {
            SampleType::Imu => "imu",
            SampleType::Mag => "mag",
            SampleType::Gnss => "gnss",
            SampleType::Quaternion => "quaternion",
        }
    }

    pub fn payload_size(self) -> usize {
        match self {
            SampleType::Imu => size_of::<ImuSample>(),
            SampleType::Mag => size_of::<MagSample>(),
            SampleType::Gnss => size_of::<GnssFix>(),
            SampleType::Quaternion => size_of::<Quaternion>(),
        }
    }

    /// The ROS 2 message type it is recorded as.
    pub fn ros_type(self) -> (&'static str, &'static str) {
        match self {
            SampleType::Imu => (msg::Imu::NAME, msg::Imu::SCHEMA),
            SampleType::Mag => (msg::MagneticField::NAME, msg::MagneticField::SCHEMA),
            SampleType::Gnss => (msg::NavSatFix::NAME, msg::NavSatFix::SCHEMA),
            SampleType::Quaternion => (msg::QuaternionStamped::NAME, msg::QuaternionStamped::SCHEMA),
        }
    }
}

impl Element {
    pub fn name(self) -> String {
        if self.stamped {
            format!("stamped-{}", self.sample.name())
        } else {
            self.sample.name().to_owned()
        }
    }

    pub fn size(self) -> usize {
        self.sample.payload_size() + if self.stamped { size_of::<SampleHeader>() } else { 0 }
    }

    /// The sample header of an element's bytes, if it has one.
    pub fn header(self, bytes: &[u8]) -> Option<SampleHeader> {
        (self.stamped && bytes.len() >= size_of::<SampleHeader>())
            .then(|| bytemuck::pod_read_unaligned(&bytes[..size_of::<SampleHeader>()]))
    }

    fn payload(self, bytes: &[u8]) -> &[u8] {
        if self.stamped {
            &bytes[size_of::<SampleHeader>()..]
        } else {
            bytes
        }
    }

    /// The element as JSON: `stamp_ns`, `seq`, `channel` when stamped, then the payload's fields.
    pub fn to_json(self, bytes: &[u8]) -> Value {
        let mut v = match self.header(bytes) {
            Some(h) => json!({"stamp_ns": h.stamp.as_nanos(), "seq": h.seq, "channel": h.channel}),
            None => json!({}),
        };
        let p = self.payload(bytes);
        let fields = match self.sample {
            SampleType::Imu => {
                let s: ImuSample = bytemuck::pod_read_unaligned(p);
                json!({"accel": vec3(s.accel), "gyro": vec3(s.gyro)})
            }
            SampleType::Mag => {
                let s: MagSample = bytemuck::pod_read_unaligned(p);
                json!({"field": vec3(s.field)})
            }
            SampleType::Gnss => {
                let s: GnssFix = bytemuck::pod_read_unaligned(p);
                json!({"latitude_deg": s.latitude_deg, "longitude_deg": s.longitude_deg, "altitude_m": s.altitude_m,
                       "horizontal_accuracy_m": s.horizontal_accuracy_m, "vertical_accuracy_m": s.vertical_accuracy_m,
                       "fix_type": s.fix_type, "satellites": s.satellites})
            }
            SampleType::Quaternion => {
                let q: Quaternion = bytemuck::pod_read_unaligned(p);
                json!({"w": q.w, "x": q.x, "y": q.y, "z": q.z})
            }
        };
        if let (Value::Object(a), Value::Object(b)) = (&mut v, fields) {
            a.extend(b);
        }
        v
    }

    /// The element as a ROS 2 message (CDR), with `stamp_ns` as the header stamp when the element has none.
    pub fn to_ros(self, bytes: &[u8], frame_id: &str, stamp_ns: u64) -> Vec<u8> {
        let header = Header {
            stamp: Time::from_nanos(self.header(bytes).map_or(stamp_ns, |h| h.stamp.as_nanos())),
            frame_id: frame_id.to_owned(),
        };
        let p = self.payload(bytes);
        match self.sample {
            SampleType::Imu => {
                let s: ImuSample = bytemuck::pod_read_unaligned(p);
                let mut orientation_covariance = [0.0; 9];
                orientation_covariance[0] = -1.0; // no orientation estimate
                msg::Imu {
                    header,
                    orientation: msg::Quaternion::default(),
                    orientation_covariance,
                    angular_velocity: ros_vec(s.gyro, 1.0),
                    angular_velocity_covariance: [0.0; 9],
                    linear_acceleration: ros_vec(s.accel, 1.0),
                    linear_acceleration_covariance: [0.0; 9],
                }
                .encode()
            }
            SampleType::Mag => {
                let s: MagSample = bytemuck::pod_read_unaligned(p);
                msg::MagneticField {
                    header,
                    magnetic_field: ros_vec(s.field, MICROTESLA),
                    magnetic_field_covariance: [0.0; 9],
                }
                .encode()
            }
            SampleType::Gnss => {
                let s: GnssFix = bytemuck::pod_read_unaligned(p);
                let (h, v) = (f64::from(s.horizontal_accuracy_m), f64::from(s.vertical_accuracy_m));
                let mut position_covariance = [0.0; 9];
                position_covariance[0] = h * h;
                position_covariance[4] = h * h;
                position_covariance[8] = v * v;
                msg::NavSatFix {
                    header,
                    status: NavSatStatus {
                        status: if s.fix_type == GnssFix::NO_FIX {
                            NavSatStatus::STATUS_NO_FIX
                        } else {
                            NavSatStatus::STATUS_FIX
                        },
                        service: NavSatStatus::SERVICE_GPS,
                    },
                    latitude: s.latitude_deg,
                    longitude: s.longitude_deg,
                    // NavSatFix has no 2-D/3-D distinction; its way of saying "no altitude" is a quiet NaN.
                    altitude: if s.fix_type == GnssFix::FIX_2D {
                        f64::NAN
                    } else {
                        s.altitude_m
                    },
                    position_covariance,
                    position_covariance_type: msg::NavSatFix::COVARIANCE_TYPE_DIAGONAL_KNOWN,
                }
                .encode()
            }
            SampleType::Quaternion => {
                let q: Quaternion = bytemuck::pod_read_unaligned(p);
                msg::QuaternionStamped {
                    header,
                    quaternion: msg::Quaternion {
                        x: q.x.into(),
                        y: q.y.into(),
                        z: q.z.into(),
                        w: q.w.into(),
                    },
                }
                .encode()
            }
        }
    }
}

/// shmfusion magnetometer samples are in µT ([`MagSample::field`]); ROS 2 `MagneticField` is in tesla.
const MICROTESLA: f64 = 1e-6;

fn vec3(v: Vector3) -> [f32; 3] {
    [v.x, v.y, v.z]
}

fn ros_vec(v: Vector3, scale: f64) -> msg::Vector3 {
    msg::Vector3 {
        x: f64::from(v.x) * scale,
        y: f64::from(v.y) * scale,
        z: f64::from(v.z) * scale,
    }
}

fn from_ros_vec(v: &msg::Vector3, scale: f64) -> Vector3 {
    Vector3::new((v.x / scale) as f32, (v.y / scale) as f32, (v.z / scale) as f32)
}

/// A recorded ROS 2 message back as a stamped shmfusion sample: the inverse of [`Element::to_ros`] for every field
/// the ROS message carries. What `NavSatFix` cannot carry is lost: a GNSS fix's satellite count (played back as
/// 0) and a 2-D fix's altitude (NaN in the message, which is how a 2-D fix is told from a 3-D one); a fix type
/// other than no fix, 2-D or 3-D comes back as 3-D. Magnetometer fields go from µT to tesla and back.
pub fn from_ros(sample: SampleType, cdr: &[u8], seq: u64, channel: u32) -> Result<(Timestamp, Vec<u8>), String> {
    let err = |e: shmfusion_ros2::cdr::DecodeError| e.to_string();
    let head = |h: &Header| SampleHeader::new(channel, seq, Timestamp::from_nanos(h.stamp.as_nanos()));
    let (header, payload): (SampleHeader, Vec<u8>) = match sample {
        SampleType::Imu => {
            let m = msg::Imu::decode(cdr).map_err(err)?;
            let s = ImuSample {
                accel: from_ros_vec(&m.linear_acceleration, 1.0),
                gyro: from_ros_vec(&m.angular_velocity, 1.0),
            };
            (head(&m.header), bytemuck::bytes_of(&s).to_vec())
        }
        SampleType::Mag => {
            let m = msg::MagneticField::decode(cdr).map_err(err)?;
            let s = MagSample::new(from_ros_vec(&m.magnetic_field, MICROTESLA));
            (head(&m.header), bytemuck::bytes_of(&s).to_vec())
        }
        SampleType::Gnss => {
            let m = msg::NavSatFix::decode(cdr).map_err(err)?;
            let s = GnssFix {
                latitude_deg: m.latitude,
                longitude_deg: m.longitude,
                altitude_m: m.altitude,
                horizontal_accuracy_m: m.position_covariance[0].sqrt() as f32,
                vertical_accuracy_m: m.position_covariance[8].sqrt() as f32,
                fix_type: if m.status.status < NavSatStatus::STATUS_FIX {
                    GnssFix::NO_FIX
                } else if m.altitude.is_nan() {
                    GnssFix::FIX_2D
                } else {
                    GnssFix::FIX_3D
                },
                satellites: 0,
            };
            (head(&m.header), bytemuck::bytes_of(&s).to_vec())
        }
        SampleType::Quaternion => {
            let m = msg::QuaternionStamped::decode(cdr).map_err(err)?;
            let q = m.quaternion;
            let s = Quaternion {
                w: q.w as f32,
                x: q.x as f32,
                y: q.y as f32,
                z: q.z as f32,
            };
            (head(&m.header), bytemuck::bytes_of(&s).to_vec())
        }
    };
    let mut bytes = bytemuck::bytes_of(&header).to_vec();
    bytes.extend_from_slice(&payload);
    Ok((header.stamp, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_core_type_ids() {
        use shmfusion::object::ObjectOptions;
        let fp = ObjectOptions::new().fingerprint::<BroadcastRing<Stamped<ImuSample>, 1024>>();
        let e = recognise(BufferKind::BroadcastRing, 1024, fp.type_id).unwrap();
        assert_eq!(
            e,
            Element {
                sample: SampleType::Imu,
                stamped: true
            }
        );
        let fp = ObjectOptions::new().fingerprint::<Latest<Quaternion>>();
        let e = recognise(BufferKind::Latest, 1, fp.type_id).unwrap();
        assert_eq!(
            e,
            Element {
                sample: SampleType::Quaternion,
                stamped: false
            }
        );
        assert_eq!(recognise(BufferKind::BroadcastRing, 512, fp.type_id), None);
    }

    #[test]
    fn ros_round_trip_of_stamped_samples() {
        let h = SampleHeader::new(3, 7, Timestamp::from_nanos(12_345_678_901));
        let imu = Stamped::new(
            h,
            ImuSample {
                accel: Vector3::new(0.1, -0.2, 9.81),
                gyro: Vector3::new(0.01, 0.02, -0.5),
            },
        );
        let e = Element {
            sample: SampleType::Imu,
            stamped: true,
        };
        let cdr = e.to_ros(bytemuck::bytes_of(&imu), "imu", 0);
        let (stamp, bytes) = from_ros(SampleType::Imu, &cdr, 7, 3).unwrap();
        assert_eq!(stamp, h.stamp);
        assert_eq!(bytes, bytemuck::bytes_of(&imu));
        let mag = Stamped::new(h, MagSample::new(Vector3::new(21.5, -3.25, 43.0)));
        let e = Element {
            sample: SampleType::Mag,
            stamped: true,
        };
        let cdr = e.to_ros(bytemuck::bytes_of(&mag), "mag", 0);
        assert_eq!(
            msg::MagneticField::decode(&cdr).unwrap().magnetic_field.x,
            f64::from(21.5f32) * 1e-6
        );
        let (_, bytes) = from_ros(SampleType::Mag, &cdr, 7, 3).unwrap();
        assert_eq!(bytes, bytemuck::bytes_of(&mag));
    }

    #[test]
    fn gnss_fix_types_survive_and_satellites_do_not() {
        let h = SampleHeader::new(4, 9, Timestamp::from_nanos(5_000_000_000));
        let e = Element {
            sample: SampleType::Gnss,
            stamped: true,
        };
        for fix_type in [GnssFix::NO_FIX, GnssFix::FIX_2D, GnssFix::FIX_3D] {
            let fix = GnssFix {
                latitude_deg: 48.1,
                longitude_deg: 11.5,
                altitude_m: 520.0,
                horizontal_accuracy_m: 1.5,
                vertical_accuracy_m: 3.0,
                fix_type,
                satellites: 11,
            };
            let cdr = e.to_ros(bytemuck::bytes_of(&Stamped::new(h, fix)), "gnss", 0);
            let (_, bytes) = from_ros(SampleType::Gnss, &cdr, 9, 4).unwrap();
            let back: Stamped<GnssFix> = bytemuck::pod_read_unaligned(&bytes);
            assert_eq!(back.header, h);
            assert_eq!(back.payload.fix_type, fix_type);
            assert_eq!(back.payload.satellites, 0);
            assert_eq!(
                (
                    back.payload.latitude_deg,
                    back.payload.horizontal_accuracy_m,
                    back.payload.vertical_accuracy_m
                ),
                (48.1, 1.5, 3.0)
            );
            if fix_type == GnssFix::FIX_2D {
                assert!(back.payload.altitude_m.is_nan());
            } else {
                assert_eq!(back.payload.altitude_m, 520.0);
            }
        }
    }
}
