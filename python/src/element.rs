//! The element types Python can put in a buffer, their layouts (for the numpy dtypes) and the dispatch from
//! (element, capacity) chosen at run time to the typed buffers of the core.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};

use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion, SampleHeader, Stamped};

/// An element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    /// `Stamped<ImuSample>`.
    Imu,
    /// `Stamped<MagSample>`.
    Mag,
    /// `Stamped<GnssFix>`.
    Gnss,
    /// `Stamped<Quaternion>`.
    Quaternion,
    /// `Stamped<f64>`.
    F64,
    /// An opaque record of `size` bytes aligned to `align` (at most 8), for SPSC rings of arbitrary records; the
    /// ring is the core's runtime-sized `SpscView`, byte-equal to the typed `SpscRing` of the same layout.
    Block {
        /// Bytes per record.
        size: usize,
        /// Alignment of a record (a power of two, at most 8).
        align: usize,
    },
}

/// Capacities offered for rings of stamped samples.
pub const SAMPLE_CAPACITIES: &[usize] = &[16, 64, 256, 1024, 4096];
/// The type name of block rings whose creator gives none (part of the header's fingerprint: a peer opening the
/// ring, in any language, uses the same name, element size, alignment and capacity).
pub const BLOCK_TYPE_NAME: &str = "shmfusion.block";

impl Element {
    /// The element for a Python name (`"block"` needs the record's size and alignment).
    pub fn parse(name: &str, size: usize, align: usize) -> Option<Self> {
        Some(match name {
            "imu" => Element::Imu,
            "mag" => Element::Mag,
            "gnss" => Element::Gnss,
            "quaternion" => Element::Quaternion,
            "f64" => Element::F64,
            "block" if size > 0 && align.is_power_of_two() && align <= 8 => Element::Block { size, align },
            _ => return None,
        })
    }

    /// The element's size in bytes.
    pub fn size(self) -> usize {
        match self {
            Element::Imu => size_of::<Stamped<ImuSample>>(),
            Element::Mag => size_of::<Stamped<MagSample>>(),
            Element::Gnss => size_of::<Stamped<GnssFix>>(),
            Element::Quaternion => size_of::<Stamped<Quaternion>>(),
            Element::F64 => size_of::<Stamped<f64>>(),
            Element::Block { size, .. } => size,
        }
    }

    /// Whether it is a stamped sample (broadcast rings, latest slots and time-indexed reads take those).
    pub fn is_sample(self) -> bool {
        !matches!(self, Element::Block { .. })
    }
}

/// One element type's layout: size, alignment and the byte offset of each field, flattened (header fields, then
/// payload fields), as the numpy dtypes in `shmfusion.dtypes` must match.
pub struct Layout {
    /// `size_of`.
    pub size: usize,
    /// `align_of`.
    pub align: usize,
    /// Byte offset of the payload in the stamped sample.
    pub payload_offset: usize,
    /// Field name to byte offset.
    pub fields: BTreeMap<&'static str, usize>,
}

fn stamped<T>(payload: &[(&'static str, usize)]) -> Layout {
    let base = offset_of!(Stamped<T>, payload);
    let header = offset_of!(Stamped<T>, header);
    let mut fields = BTreeMap::from([
        ("stamp", header + offset_of!(SampleHeader, stamp)),
        ("seq", header + offset_of!(SampleHeader, seq)),
        ("channel", header + offset_of!(SampleHeader, channel)),
        ("flags", header + offset_of!(SampleHeader, flags)),
    ]);
    fields.extend(payload.iter().map(|(name, off)| (*name, base + off)));
    Layout {
        size: size_of::<Stamped<T>>(),
        align: align_of::<Stamped<T>>(),
        payload_offset: base,
        fields,
    }
}

/// The layouts of the stamped sample types, by Python name.
pub fn layouts() -> Vec<(&'static str, Layout)> {
    vec![
        (
            "imu",
            stamped::<ImuSample>(&[
                ("accel", offset_of!(ImuSample, accel)),
                ("gyro", offset_of!(ImuSample, gyro)),
            ]),
        ),
        ("mag", stamped::<MagSample>(&[("field", offset_of!(MagSample, field))])),
        (
            "gnss",
            stamped::<GnssFix>(&[
                ("latitude_deg", offset_of!(GnssFix, latitude_deg)),
                ("longitude_deg", offset_of!(GnssFix, longitude_deg)),
                ("altitude_m", offset_of!(GnssFix, altitude_m)),
                ("horizontal_accuracy_m", offset_of!(GnssFix, horizontal_accuracy_m)),
                ("vertical_accuracy_m", offset_of!(GnssFix, vertical_accuracy_m)),
                ("fix_type", offset_of!(GnssFix, fix_type)),
                ("satellites", offset_of!(GnssFix, satellites)),
            ]),
        ),
        (
            "quaternion",
            stamped::<Quaternion>(&[
                ("w", offset_of!(Quaternion, w)),
                ("x", offset_of!(Quaternion, x)),
                ("y", offset_of!(Quaternion, y)),
                ("z", offset_of!(Quaternion, z)),
            ]),
        ),
        ("f64", stamped::<f64>(&[("value", 0)])),
    ]
}

/// `$f::<$t, N>(args)` for a stamped-sample capacity `N`, or `$bad`.
macro_rules! sample_capacity {
    ($t:ty, $capacity:expr, $bad:expr, $f:ident, ($($arg:expr),*)) => {
        match $capacity {
            16 => $f::<$t, 16>($($arg),*),
            64 => $f::<$t, 64>($($arg),*),
            256 => $f::<$t, 256>($($arg),*),
            1024 => $f::<$t, 1024>($($arg),*),
            4096 => $f::<$t, 4096>($($arg),*),
            _ => $bad,
        }
    };
}

/// `$f::<T, N>(args)` where `T` is the stamped-sample element's Rust type and `N` the capacity; `$bad` for blocks
/// (runtime-sized, no type) and capacities not offered.
macro_rules! dispatch_ring {
    ($element:expr, $capacity:expr, $bad:expr, $f:ident ($($arg:expr),*)) => {{
        use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion, Stamped};
        use $crate::element::Element;
        match $element {
            Element::Imu => sample_capacity!(Stamped<ImuSample>, $capacity, $bad, $f, ($($arg),*)),
            Element::Mag => sample_capacity!(Stamped<MagSample>, $capacity, $bad, $f, ($($arg),*)),
            Element::Gnss => sample_capacity!(Stamped<GnssFix>, $capacity, $bad, $f, ($($arg),*)),
            Element::Quaternion => sample_capacity!(Stamped<Quaternion>, $capacity, $bad, $f, ($($arg),*)),
            Element::F64 => sample_capacity!(Stamped<f64>, $capacity, $bad, $f, ($($arg),*)),
            Element::Block { .. } => $bad,
        }
    }};
}

/// `$f::<P, N>(args)` where `P` is the payload of a stamped-sample element and `N` the capacity; `$bad` for
/// blocks and capacities not offered.
macro_rules! dispatch_broadcast {
    ($element:expr, $capacity:expr, $bad:expr, $f:ident ($($arg:expr),*)) => {{
        use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion};
        use $crate::element::Element;
        match $element {
            Element::Imu => sample_capacity!(ImuSample, $capacity, $bad, $f, ($($arg),*)),
            Element::Mag => sample_capacity!(MagSample, $capacity, $bad, $f, ($($arg),*)),
            Element::Gnss => sample_capacity!(GnssFix, $capacity, $bad, $f, ($($arg),*)),
            Element::Quaternion => sample_capacity!(Quaternion, $capacity, $bad, $f, ($($arg),*)),
            Element::F64 => sample_capacity!(f64, $capacity, $bad, $f, ($($arg),*)),
            Element::Block { .. } => $bad,
        }
    }};
}

/// `$f::<T>(args)` where `T` is the element's Rust type, for latest-value slots; `$bad` for blocks.
macro_rules! dispatch_latest {
    ($element:expr, $bad:expr, $f:ident ($($arg:expr),*)) => {{
        use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion, Stamped};
        use $crate::element::Element;
        match $element {
            Element::Imu => $f::<Stamped<ImuSample>>($($arg),*),
            Element::Mag => $f::<Stamped<MagSample>>($($arg),*),
            Element::Gnss => $f::<Stamped<GnssFix>>($($arg),*),
            Element::Quaternion => $f::<Stamped<Quaternion>>($($arg),*),
            Element::F64 => $f::<Stamped<f64>>($($arg),*),
            Element::Block { .. } => $bad,
        }
    }};
}
