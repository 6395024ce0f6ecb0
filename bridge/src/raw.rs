//! The `raw` wire format: a sample's `Stamped<T>` bytes behind a type tag that names the payload type and
//! fingerprints its layout, so that a receiver built with a different `T` refuses the frame instead of
//! reinterpreting bytes.
//!
//! Frame layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `SFB1` |
//! | 2 | type name length `L` |
//! | L | payload type name (UTF-8, `core::any::type_name` of `T`) |
//! | 4 | `size_of::<Stamped<T>>()` |
//! | 4 | `align_of::<Stamped<T>>()` |
//! | 8 | the shared-object type id of `Stamped<T>` (the core's layout fingerprint) |
//! | 8 | sender's `CLOCK_REALTIME - CLOCK_MONOTONIC` in ns (see [`crate::clock`]) |
//! | size | the `Stamped<T>` bytes, as in the sender's ring |
//!
//! Sender and receiver must share byte order (every target shmfusion supports is little-endian).

use core::fmt;
use core::mem::{align_of, size_of};

use shmfusion::buffer::Latest;
use shmfusion::fusion::{Payload, Stamped};
use shmfusion::object::ObjectOptions;

const MAGIC: &[u8; 4] = b"SFB1";

/// What identifies a sample type on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeTag {
    /// The payload type's name.
    pub name: String,
    /// `size_of::<Stamped<T>>()`.
    pub size: u32,
    /// `align_of::<Stamped<T>>()`.
    pub align: u32,
    /// The core's layout fingerprint type id of a `Stamped<T>` object.
    pub type_id: u64,
}

impl TypeTag {
    /// The tag of `Stamped<T>`.
    pub fn of<T: Payload + Send + Sync>() -> Self {
        Self {
            name: core::any::type_name::<T>().to_owned(),
            size: size_of::<Stamped<T>>() as u32,
            align: align_of::<Stamped<T>>() as u32,
            type_id: ObjectOptions::new().fingerprint::<Latest<Stamped<T>>>().type_id,
        }
    }
}

impl fmt::Display for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} bytes, align {}, type id {:#018x})",
            self.name, self.size, self.align, self.type_id
        )
    }
}

/// Why a raw frame was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawError {
    /// Too short, or not starting with the magic: not a raw shmfusion frame.
    NotAFrame,
    /// The frame carries another type or layout than the receiver's.
    TypeMismatch {
        /// What the receiver expects.
        expected: TypeTag,
        /// What the frame carries.
        found: TypeTag,
    },
    /// The frame's length does not match its declared sample size.
    Truncated {
        /// Bytes expected after the tag.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawError::NotAFrame => f.write_str("not a raw shmfusion frame (bad magic or too short)"),
            RawError::TypeMismatch { expected, found } => write!(
                f,
                "schema mismatch: this channel carries {expected}, the frame carries {found}; \
                 build both bridges with the same sample type"
            ),
            RawError::Truncated { expected, found } => {
                write!(f, "frame holds {found} sample bytes, its tag says {expected}")
            }
        }
    }
}

impl std::error::Error for RawError {}

/// A decoded frame: the sample as sent and the sender's clock offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame<T> {
    /// The sample, stamped with the sender's monotonic clock.
    pub sample: Stamped<T>,
    /// The sender's `CLOCK_REALTIME - CLOCK_MONOTONIC`.
    pub wall_offset_ns: i64,
}

/// Encodes frames of `Stamped<T>` (the tag is built once).
#[derive(Clone, Debug)]
pub struct RawCodec<T> {
    tag: TypeTag,
    _t: core::marker::PhantomData<T>,
}

impl<T: Payload + Send + Sync> Default for RawCodec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Payload + Send + Sync> RawCodec<T> {
    /// A codec for `Stamped<T>`.
    pub fn new() -> Self {
        Self {
            tag: TypeTag::of::<T>(),
            _t: core::marker::PhantomData,
        }
    }

    /// The tag frames of this codec carry.
    pub fn tag(&self) -> &TypeTag {
        &self.tag
    }

    /// Appends the frame of `sample` to `out` (cleared first).
    pub fn encode(&self, sample: &Stamped<T>, wall_offset_ns: i64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.tag.name.len() as u16).to_le_bytes());
        out.extend_from_slice(self.tag.name.as_bytes());
        out.extend_from_slice(&self.tag.size.to_le_bytes());
        out.extend_from_slice(&self.tag.align.to_le_bytes());
        out.extend_from_slice(&self.tag.type_id.to_le_bytes());
        out.extend_from_slice(&wall_offset_ns.to_le_bytes());
        out.extend_from_slice(bytemuck::bytes_of(sample));
    }

    /// Decodes a frame, refusing any other type or layout.
    ///
    /// # Errors
    /// [`RawError`] for anything that is not a complete frame of `Stamped<T>`.
    pub fn decode(&self, frame: &[u8]) -> Result<Frame<T>, RawError> {
        let rest = frame.strip_prefix(MAGIC).ok_or(RawError::NotAFrame)?;
        let (len, rest) = split::<2>(rest)?;
        let len = u16::from_le_bytes(len) as usize;
        if rest.len() < len {
            return Err(RawError::NotAFrame);
        }
        let (name, rest) = rest.split_at(len);
        let (size, rest) = split::<4>(rest)?;
        let (align, rest) = split::<4>(rest)?;
        let (type_id, rest) = split::<8>(rest)?;
        let (offset, body) = split::<8>(rest)?;
        let found = TypeTag {
            name: String::from_utf8_lossy(name).into_owned(),
            size: u32::from_le_bytes(size),
            align: u32::from_le_bytes(align),
            type_id: u64::from_le_bytes(type_id),
        };
        if found != self.tag {
            return Err(RawError::TypeMismatch {
                expected: self.tag.clone(),
                found,
            });
        }
        if body.len() != self.tag.size as usize {
            return Err(RawError::Truncated {
                expected: self.tag.size as usize,
                found: body.len(),
            });
        }
        Ok(Frame {
            sample: bytemuck::pod_read_unaligned(body),
            wall_offset_ns: i64::from_le_bytes(offset),
        })
    }
}

fn split<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), RawError> {
    if bytes.len() < N {
        return Err(RawError::NotAFrame);
    }
    let (head, rest) = bytes.split_at(N);
    Ok((head.try_into().map_err(|_| RawError::NotAFrame)?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shmfusion::fusion::{GnssFix, ImuSample, MagSample, SampleHeader, Timestamp, Vector3};

    fn imu() -> Stamped<ImuSample> {
        Stamped::new(
            SampleHeader {
                stamp: Timestamp::from_nanos(1_234_567),
                seq: 42,
                channel: 7,
                flags: 3,
            },
            ImuSample {
                accel: Vector3::new(0.1, -0.2, 9.81),
                gyro: Vector3::new(0.01, 0.02, -0.03),
            },
        )
    }

    #[test]
    fn round_trip_keeps_every_byte() {
        let codec = RawCodec::<ImuSample>::new();
        let mut buf = Vec::new();
        codec.encode(&imu(), -987_654_321, &mut buf);
        let frame = codec.decode(&buf).unwrap();
        assert_eq!(frame.sample, imu());
        assert_eq!(bytemuck::bytes_of(&frame.sample), bytemuck::bytes_of(&imu()));
        assert_eq!(frame.wall_offset_ns, -987_654_321);
        assert!(buf.ends_with(bytemuck::bytes_of(&imu())));
    }

    #[test]
    fn another_type_is_refused_with_both_names() {
        let mut buf = Vec::new();
        RawCodec::<ImuSample>::new().encode(&imu(), 0, &mut buf);
        let err = RawCodec::<GnssFix>::new().decode(&buf).unwrap_err();
        let RawError::TypeMismatch { expected, found } = &err else {
            panic!("{err:?}")
        };
        assert!(expected.name.ends_with("GnssFix") && found.name.ends_with("ImuSample"));
        let text = err.to_string();
        assert!(
            text.contains("schema mismatch") && text.contains("ImuSample") && text.contains("GnssFix"),
            "{text}"
        );
    }

    #[test]
    fn same_name_other_layout_is_refused() {
        let mut buf = Vec::new();
        let codec = RawCodec::<MagSample>::new();
        codec.encode(
            &Stamped::new(SampleHeader::default(), MagSample::new(Vector3::new(1.0, 2.0, 3.0))),
            0,
            &mut buf,
        );
        // A sender whose MagSample has another layout: same name, other size.
        let size_at = 4 + 2 + codec.tag().name.len();
        buf[size_at] ^= 8;
        assert!(matches!(codec.decode(&buf), Err(RawError::TypeMismatch { .. })));
        buf[size_at] ^= 8;
        buf[size_at + 8] ^= 1; // type id
        assert!(matches!(codec.decode(&buf), Err(RawError::TypeMismatch { .. })));
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let codec = RawCodec::<ImuSample>::new();
        let mut buf = Vec::new();
        codec.encode(&imu(), 0, &mut buf);
        for n in 0..buf.len() {
            assert!(codec.decode(&buf[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        assert_eq!(codec.decode(b"SFB1\xff\xff"), Err(RawError::NotAFrame));
        assert_eq!(codec.decode(b"nope"), Err(RawError::NotAFrame));
        let mut long = buf.clone();
        long.push(0);
        assert!(matches!(codec.decode(&long), Err(RawError::Truncated { .. })));
    }
}
