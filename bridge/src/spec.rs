//! What a bridge forwards: channels, formats, policies, parsed from `key=value,...` strings.

use core::fmt;

use shmfusion::object::ObjectOptions;

use crate::rmw::Distro;

/// Export (local ring → Zenoh) or import (Zenoh → local ring).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Follow a local ring and publish.
    Export,
    /// Subscribe and write into a local ring (holding its writer role).
    Import,
}

/// The built-in payload types a bridge can forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `Stamped<ImuSample>`, ROS 2 `sensor_msgs/msg/Imu`.
    Imu,
    /// `Stamped<MagSample>`, ROS 2 `sensor_msgs/msg/MagneticField`.
    Mag,
    /// `Stamped<GnssFix>`, ROS 2 `sensor_msgs/msg/NavSatFix`.
    Gnss,
    /// `Stamped<Quaternion>` (attitude), ROS 2 `geometry_msgs/msg/QuaternionStamped`.
    Attitude,
}

/// How samples are framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `Stamped<T>` bytes with a type tag ([`crate::raw`]).
    Raw,
    /// ROS 2 CDR on rmw_zenoh's key expressions, with its attachment and liveliness tokens ([`crate::rmw`]).
    Ros2,
}

/// What happens when the network cannot keep up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The publisher waits for room (Zenoh `CongestionControl::Block`); for low-rate channels that must not lose
    /// samples. If the export falls behind its ring for too long, the ring's `Lagged(n)` counts what was overrun.
    Block,
    /// The newest sample is dropped when the link's queue is full (`CongestionControl::Drop`); for high-rate
    /// sensors where fresh data matters more than completeness. The receiver counts the gaps.
    DropNewest,
}

/// Which kind of local buffer a channel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// A `BroadcastRing<Stamped<T>, N>` (`buffer=ring`, the default): an export forwards every sample in order and
    /// counts what the ring overwrote before it read it (`Lagged(n)`); an import writes into one.
    Ring,
    /// A latest-value slot `Latest<Stamped<T>>` (`buffer=latest`, exports only), such as the attitude the fusion
    /// demo writes: the export forwards each new value and counts the values the slot overwrote before it read
    /// them as lagged.
    Latest,
}

/// Where the local ring is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A System V key (`shm=0x…` or decimal).
    Key(i32),
    /// A System V segment id (`shmid=…`), for rings made with a private key (exports only).
    Id(i32),
}

/// One forwarded channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    /// Export or import.
    pub direction: Direction,
    /// Payload type.
    pub kind: Kind,
    /// The ring's capacity `N` (16, 64, 256, 512, 1024 or 4096); unused for a latest-value slot.
    pub capacity: usize,
    /// A ring or (exports only) a latest-value slot.
    pub buffer: Buffer,
    /// The shared object's type name (`type=`, e.g. `shmfusion.StampedImu` for rings made by the C library), if it
    /// is not the Rust type's name: both sides of a shared object must use the same (see
    /// `shmfusion::object::ObjectOptions::type_name`).
    pub type_name: Option<String>,
    /// The local ring.
    pub segment: Segment,
    /// The Zenoh key expression (raw) or the ROS 2 topic name (ros2).
    pub key: String,
    /// Wire format.
    pub format: Format,
    /// Congestion policy.
    pub policy: Policy,
    /// The channel id reported in the statistics (and written into imported samples' headers for ros2, whose
    /// messages have no channel field; raw frames keep the sender's).
    pub channel: u32,
    /// ROS 2 `header.frame_id`.
    pub frame_id: String,
    /// ROS 2 domain id.
    pub domain: u32,
    /// ROS 2 release line of the key expressions.
    pub distro: Distro,
}

/// The ring capacities the program is built for (the rings are const-generic).
pub const CAPACITIES: [usize; 6] = [16, 64, 256, 512, 1024, 4096];

/// A malformed channel description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

fn int(s: &str) -> Option<i64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

impl ChannelSpec {
    /// Parses `kind=imu,shm=0x5100,key=robot/imu[,cap=512][,buffer=ring|latest][,type=NAME][,format=raw|ros2]
    /// [,policy=block|drop][,channel=N][,frame=imu_link][,domain=0][,distro=jazzy|humble]` (or `shmid=N` instead of
    /// `shm=` for exports).
    ///
    /// # Errors
    /// A [`SpecError`] naming the bad or missing field.
    pub fn parse(direction: Direction, text: &str) -> Result<Self, SpecError> {
        let bad = |what: String| SpecError(format!("{text:?}: {what}"));
        let (mut kind, mut segment, mut key) = (None, None, None);
        let mut spec = ChannelSpec {
            direction,
            kind: Kind::Imu,
            capacity: 512,
            buffer: Buffer::Ring,
            type_name: None,
            segment: Segment::Key(0),
            key: String::new(),
            format: Format::Raw,
            policy: Policy::Block,
            channel: 0,
            frame_id: String::new(),
            domain: 0,
            distro: Distro::Jazzy,
        };
        for field in text.split(',').filter(|f| !f.is_empty()) {
            let (name, value) = field
                .split_once('=')
                .ok_or_else(|| bad(format!("{field:?} is not name=value")))?;
            let number = || int(value).ok_or_else(|| bad(format!("{name}: {value:?} is not a number")));
            match name {
                "kind" => {
                    kind = Some(match value {
                        "imu" => Kind::Imu,
                        "mag" => Kind::Mag,
                        "gnss" => Kind::Gnss,
                        "attitude" | "quaternion" => Kind::Attitude,
                        _ => return Err(bad(format!("kind {value:?}: expected imu, mag, gnss or attitude"))),
                    })
                }
                "shm" => segment = Some(Segment::Key(number()? as i32)),
                "shmid" => segment = Some(Segment::Id(number()? as i32)),
                "key" | "topic" => key = Some(value.to_owned()),
                "cap" => {
                    let n = number()? as usize;
                    if !CAPACITIES.contains(&n) {
                        return Err(bad(format!("cap {n}: built for {CAPACITIES:?}")));
                    }
                    spec.capacity = n;
                }
                "buffer" => {
                    spec.buffer = match value {
                        "ring" => Buffer::Ring,
                        "latest" => Buffer::Latest,
                        _ => return Err(bad(format!("buffer {value:?}: expected ring or latest"))),
                    }
                }
                "type" => spec.type_name = Some(value.to_owned()),
                "format" => {
                    spec.format = match value {
                        "raw" => Format::Raw,
                        "ros2" => Format::Ros2,
                        _ => return Err(bad(format!("format {value:?}: expected raw or ros2"))),
                    }
                }
                "policy" => {
                    spec.policy = match value {
                        "block" => Policy::Block,
                        "drop" | "drop-newest" => Policy::DropNewest,
                        _ => return Err(bad(format!("policy {value:?}: expected block or drop"))),
                    }
                }
                "channel" => spec.channel = number()? as u32,
                "frame" => spec.frame_id = value.to_owned(),
                "domain" => spec.domain = number()? as u32,
                "distro" => {
                    spec.distro = match value {
                        "jazzy" | "kilted" | "rolling" => Distro::Jazzy,
                        "humble" => Distro::Humble,
                        _ => {
                            return Err(bad(format!(
                                "distro {value:?}: expected jazzy, kilted, rolling or humble"
                            )));
                        }
                    }
                }
                _ => return Err(bad(format!("unknown field {name:?}"))),
            }
        }
        spec.kind = kind.ok_or_else(|| bad("kind= is missing".into()))?;
        spec.segment = segment.ok_or_else(|| bad("shm= (or shmid=) is missing".into()))?;
        spec.key = key.ok_or_else(|| bad("key= (or topic=) is missing".into()))?;
        if direction == Direction::Import && matches!(spec.segment, Segment::Id(_)) {
            return Err(bad("an import creates its ring: give shm=<key>, not shmid=".into()));
        }
        if direction == Direction::Import && spec.buffer == Buffer::Latest {
            return Err(bad("an import writes a ring: buffer=latest is for exports".into()));
        }
        Ok(spec)
    }

    /// The options to open (or create) the local buffer with: its type name, if one was given.
    pub fn object_options(&self) -> ObjectOptions {
        match &self.type_name {
            Some(name) => ObjectOptions::new().type_name(name),
            None => ObjectOptions::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let s = ChannelSpec::parse(
            Direction::Export,
            "kind=imu,shm=0x5100,key=robot/imu,cap=1024,policy=drop,channel=3",
        )
        .unwrap();
        assert_eq!(
            (s.kind, s.segment, s.capacity, s.policy, s.channel),
            (Kind::Imu, Segment::Key(0x5100), 1024, Policy::DropNewest, 3)
        );
        assert_eq!(s.key, "robot/imu");
        assert!(ChannelSpec::parse(Direction::Export, "kind=imu,shm=1,key=a,cap=100").is_err());
        assert!(ChannelSpec::parse(Direction::Export, "kind=lidar,shm=1,key=a").is_err());
        assert!(ChannelSpec::parse(Direction::Import, "kind=imu,shmid=1,key=a").is_err());
        assert!(ChannelSpec::parse(Direction::Export, "kind=imu,key=a").is_err());
        let s = ChannelSpec::parse(
            Direction::Export,
            "kind=attitude,shm=7,key=a,buffer=latest,type=shmfusion.StampedQuaternion",
        )
        .unwrap();
        assert_eq!(
            (s.buffer, s.type_name.as_deref()),
            (Buffer::Latest, Some("shmfusion.StampedQuaternion"))
        );
        assert_eq!(
            ChannelSpec::parse(Direction::Export, "kind=imu,shm=7,key=a")
                .unwrap()
                .buffer,
            Buffer::Ring
        );
        assert!(ChannelSpec::parse(Direction::Import, "kind=attitude,shm=7,key=a,buffer=latest").is_err());
        assert!(ChannelSpec::parse(Direction::Export, "kind=imu,shm=7,key=a,buffer=spsc").is_err());
    }
}
