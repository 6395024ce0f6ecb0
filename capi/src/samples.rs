//! The built-in stamped samples as C structs (byte for byte the core's types, checked at build time), and the
//! helpers that stamp them and describe buffers of them.

use core::ffi::{CStr, c_char, c_int};

use super::{SF_EINVAL, SF_KIND_BROADCAST, SF_KIND_LATEST, SF_KIND_SPSC, SF_OK, sf_desc};

/// A 3-vector of `f32` (the core's `Vector3`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_vector3 {
    /// x component.
    pub x: f32,
    /// y component.
    pub y: f32,
    /// z component.
    pub z: f32,
}

/// A unit quaternion, scalar first (the core's `Quaternion`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_quaternion {
    /// Scalar part.
    pub w: f32,
    /// i component.
    pub x: f32,
    /// j component.
    pub y: f32,
    /// k component.
    pub z: f32,
}

/// The header of a stamped sample (the core's `SampleHeader`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_sample_header {
    /// `CLOCK_MONOTONIC` nanoseconds when the measurement was taken.
    pub stamp_ns: u64,
    /// The producer's sequence number for this channel.
    pub seq: u64,
    /// The sensor channel.
    pub channel: u32,
    /// Free for the producer.
    pub flags: u32,
}

/// One IMU measurement (the core's `ImuSample`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_imu_sample {
    /// Specific force (accelerometer), m/s².
    pub accel: sf_vector3,
    /// Angular rate (gyroscope), rad/s.
    pub gyro: sf_vector3,
}

/// One magnetometer measurement (the core's `MagSample`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_mag_sample {
    /// Magnetic flux density.
    pub field: sf_vector3,
    /// Padding to 16 bytes, zero.
    pub reserved: u32,
}

/// A GNSS position fix (the core's `GnssFix`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_gnss_fix {
    /// Latitude in degrees (WGS-84), positive north.
    pub latitude_deg: f64,
    /// Longitude in degrees (WGS-84), positive east.
    pub longitude_deg: f64,
    /// Height above the ellipsoid in metres.
    pub altitude_m: f64,
    /// Horizontal accuracy estimate (1σ) in metres.
    pub horizontal_accuracy_m: f32,
    /// Vertical accuracy estimate (1σ) in metres.
    pub vertical_accuracy_m: f32,
    /// Fix type: 0 none, 2 horizontal, 3 full.
    pub fix_type: u32,
    /// Number of satellites used.
    pub satellites: u32,
}

/// A stamped IMU sample (the core's `Stamped<ImuSample>`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_stamped_imu {
    /// Stamp, sequence number, channel.
    pub header: sf_sample_header,
    /// The measurement.
    pub payload: sf_imu_sample,
}

/// A stamped magnetometer sample (the core's `Stamped<MagSample>`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_stamped_mag {
    /// Stamp, sequence number, channel.
    pub header: sf_sample_header,
    /// The measurement.
    pub payload: sf_mag_sample,
}

/// A stamped GNSS fix (the core's `Stamped<GnssFix>`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_stamped_gnss {
    /// Stamp, sequence number, channel.
    pub header: sf_sample_header,
    /// The fix.
    pub payload: sf_gnss_fix,
}

/// A stamped orientation (the core's `Stamped<Quaternion>`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sf_stamped_quaternion {
    /// Stamp, sequence number, channel.
    pub header: sf_sample_header,
    /// The orientation.
    pub payload: sf_quaternion,
}

// The C structs are the core's types, byte for byte.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion, SampleHeader, Stamped, Vector3};
    macro_rules! same {
        ($c:ty, $r:ty) => {
            assert!(size_of::<$c>() == size_of::<$r>() && align_of::<$c>() == align_of::<$r>());
        };
    }
    same!(sf_vector3, Vector3);
    same!(sf_quaternion, Quaternion);
    same!(sf_sample_header, SampleHeader);
    same!(sf_imu_sample, ImuSample);
    same!(sf_mag_sample, MagSample);
    same!(sf_gnss_fix, GnssFix);
    same!(sf_stamped_imu, Stamped<ImuSample>);
    same!(sf_stamped_mag, Stamped<MagSample>);
    same!(sf_stamped_gnss, Stamped<GnssFix>);
    same!(sf_stamped_quaternion, Stamped<Quaternion>);
    assert!(offset_of!(sf_sample_header, seq) == offset_of!(SampleHeader, seq));
    assert!(offset_of!(sf_sample_header, channel) == offset_of!(SampleHeader, channel));
    assert!(offset_of!(sf_sample_header, flags) == offset_of!(SampleHeader, flags));
    assert!(offset_of!(sf_stamped_imu, payload) == offset_of!(Stamped<ImuSample>, payload));
    assert!(offset_of!(sf_imu_sample, gyro) == offset_of!(ImuSample, gyro));
    assert!(offset_of!(sf_quaternion, w) == offset_of!(Quaternion, w));
    assert!(offset_of!(sf_quaternion, z) == offset_of!(Quaternion, z));
    assert!(offset_of!(sf_gnss_fix, altitude_m) == offset_of!(GnssFix, altitude_m));
    assert!(offset_of!(sf_gnss_fix, fix_type) == offset_of!(GnssFix, fix_type));
    assert!(offset_of!(sf_gnss_fix, satellites) == offset_of!(GnssFix, satellites));
    assert!(offset_of!(sf_stamped_gnss, payload) == offset_of!(Stamped<GnssFix>, payload));
    assert!(offset_of!(sf_stamped_quaternion, payload) == offset_of!(Stamped<Quaternion>, payload));
};

/// `sizeof(sf_sample_header)`: what the Rust core lays out (checked at build time on every target); C programs
/// check their compiler agrees with `_Static_assert` (see `capi/tests/abi.c`).
pub const SF_SAMPLE_HEADER_SIZE: usize = 24;
/// `offsetof(sf_sample_header, seq)` in the Rust core.
pub const SF_SAMPLE_HEADER_SEQ_OFFSET: usize = 8;
/// `offsetof(sf_sample_header, channel)` in the Rust core.
pub const SF_SAMPLE_HEADER_CHANNEL_OFFSET: usize = 16;
/// `sizeof(sf_stamped_imu)` in the Rust core.
pub const SF_STAMPED_IMU_SIZE: usize = 48;
/// `offsetof(sf_stamped_imu, payload.gyro)` in the Rust core.
pub const SF_STAMPED_IMU_GYRO_OFFSET: usize = 36;
/// `sizeof(sf_stamped_mag)` in the Rust core.
pub const SF_STAMPED_MAG_SIZE: usize = 40;
/// `sizeof(sf_stamped_gnss)` in the Rust core.
pub const SF_STAMPED_GNSS_SIZE: usize = 64;
/// `offsetof(sf_stamped_gnss, payload.fix_type)` in the Rust core.
pub const SF_STAMPED_GNSS_FIX_TYPE_OFFSET: usize = 56;
/// `sizeof(sf_stamped_quaternion)` in the Rust core.
pub const SF_STAMPED_QUATERNION_SIZE: usize = 40;

const _: () = {
    use core::mem::{offset_of, size_of};
    use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion, SampleHeader, Stamped};
    assert!(SF_SAMPLE_HEADER_SIZE == size_of::<SampleHeader>());
    assert!(SF_SAMPLE_HEADER_SEQ_OFFSET == offset_of!(SampleHeader, seq));
    assert!(SF_SAMPLE_HEADER_CHANNEL_OFFSET == offset_of!(SampleHeader, channel));
    assert!(SF_STAMPED_IMU_SIZE == size_of::<Stamped<ImuSample>>());
    assert!(SF_STAMPED_IMU_GYRO_OFFSET == offset_of!(Stamped<ImuSample>, payload) + offset_of!(ImuSample, gyro));
    assert!(SF_STAMPED_MAG_SIZE == size_of::<Stamped<MagSample>>());
    assert!(SF_STAMPED_GNSS_SIZE == size_of::<Stamped<GnssFix>>());
    assert!(SF_STAMPED_GNSS_FIX_TYPE_OFFSET == offset_of!(Stamped<GnssFix>, payload) + offset_of!(GnssFix, fix_type));
    assert!(SF_STAMPED_QUATERNION_SIZE == size_of::<Stamped<Quaternion>>());
};

/// A stamped IMU sample (`sf_stamped_imu`).
pub const SF_SAMPLE_IMU: u32 = 1;
/// A stamped magnetometer sample (`sf_stamped_mag`).
pub const SF_SAMPLE_MAG: u32 = 2;
/// A stamped GNSS fix (`sf_stamped_gnss`).
pub const SF_SAMPLE_GNSS: u32 = 3;
/// A stamped orientation (`sf_stamped_quaternion`).
pub const SF_SAMPLE_QUATERNION: u32 = 4;

/// Size, alignment and conventional type name of a built-in sample.
fn sample_desc(sample: u32) -> Option<(usize, usize, &'static CStr)> {
    use core::mem::{align_of, size_of};
    Some(match sample {
        SF_SAMPLE_IMU => (
            size_of::<sf_stamped_imu>(),
            align_of::<sf_stamped_imu>(),
            c"shmfusion.StampedImu",
        ),
        SF_SAMPLE_MAG => (
            size_of::<sf_stamped_mag>(),
            align_of::<sf_stamped_mag>(),
            c"shmfusion.StampedMag",
        ),
        SF_SAMPLE_GNSS => (
            size_of::<sf_stamped_gnss>(),
            align_of::<sf_stamped_gnss>(),
            c"shmfusion.StampedGnss",
        ),
        SF_SAMPLE_QUATERNION => (
            size_of::<sf_stamped_quaternion>(),
            align_of::<sf_stamped_quaternion>(),
            c"shmfusion.StampedQuaternion",
        ),
        _ => return None,
    })
}

/// Fills `desc` for a buffer of `kind` holding `capacity` built-in samples `sample` (`SF_SAMPLE_*`), under the
/// sample's conventional type name (`"shmfusion.StampedImu"`, `"shmfusion.StampedMag"`, `"shmfusion.StampedGnss"`,
/// `"shmfusion.StampedQuaternion"`) and mode 0 (`0600`). A Rust peer uses the same name with
/// `ObjectOptions::type_name`.
///
/// Thread safety: `desc` must not be used by another thread during the call.
///
/// # Safety
/// `desc` is null (`SF_EINVAL`) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_desc_sample(desc: *mut sf_desc, kind: u32, sample: u32, capacity: u64) -> c_int {
    if desc.is_null() || !desc.is_aligned() || !matches!(kind, SF_KIND_BROADCAST | SF_KIND_SPSC | SF_KIND_LATEST) {
        return SF_EINVAL;
    }
    let Some((size, align, name)) = sample_desc(sample) else {
        return SF_EINVAL;
    };
    let d = sf_desc {
        kind,
        mode: 0,
        element_size: size as u64,
        element_align: align as u64,
        capacity,
        type_name: name.as_ptr().cast::<c_char>(),
    };
    // SAFETY: checked non-null and aligned; writable by the caller's contract.
    unsafe { desc.write(d) };
    SF_OK
}

/// `CLOCK_MONOTONIC` in nanoseconds, the clock of sample stamps.
///
/// Thread safety: any thread, any time.
#[unsafe(no_mangle)]
pub extern "C" fn sf_clock_ns() -> u64 {
    shmfusion::fusion::Timestamp::now().as_nanos()
}

/// Fills a sample header: stamp now, sequence `seq`, channel `channel`, flags 0.
///
/// Thread safety: `header` must not be used by another thread during the call.
///
/// # Safety
/// `header` is null (`SF_EINVAL`) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_sample_header_stamp(header: *mut sf_sample_header, seq: u64, channel: u32) -> c_int {
    if header.is_null() || !header.is_aligned() {
        return SF_EINVAL;
    }
    let h = sf_sample_header {
        stamp_ns: sf_clock_ns(),
        seq,
        channel,
        flags: 0,
    };
    // SAFETY: checked non-null and aligned; writable by the caller's contract.
    unsafe { header.write(h) };
    SF_OK
}
