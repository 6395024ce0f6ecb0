//! Opt-in end-to-end protection of samples: a counter, a data id and a CRC-32C travel with every value, in the
//! spirit of the AUTOSAR E2E profiles (profile 4: length, counter, data id, CRC-32).
//!
//! The buffers guarantee memory safety and bounded, panic-free operation whatever a peer writes, and they detect
//! every race with an honest writer. They cannot tell a value that a *hostile or broken* peer tore, replayed or
//! copied from another channel from a real one: such a peer can rewrite the very sequence words the protocol
//! checks. Wrapping the payload in [`Protected`] closes that gap for corruption: the writer seals each value
//! with [`E2eSender::protect`]; the reader accepts it only through [`E2eReceiver::check`], which refuses
//!
//! - a value whose bytes do not match its CRC-32C (torn, scribbled, half-written): [`E2eError::Checksum`];
//! - a value sealed for another data id (another channel, another object): [`E2eError::DataId`];
//! - a value older than one already accepted (replayed, stale copy): [`E2eError::Stale`].
//!
//! What it does not do: authenticate. A peer that knows the scheme can seal forged values (a CRC is not a MAC);
//! keep untrusted users out with the object's owner and mode. A random corruption passes the CRC with
//! probability 2^-32.
//!
//! ```
//! use core::mem::MaybeUninit;
//! use shmfusion::buffer::Latest;
//! use shmfusion::fusion::{E2eError, E2eReceiver, E2eSender, Protected, Quaternion};
//!
//! let mut storage = MaybeUninit::<Latest<Protected<Quaternion>>>::uninit();
//! let slot = Latest::init(&mut storage);
//! let mut tx = E2eSender::new(0x1001);
//! slot.writer().unwrap().write(&tx.protect(Quaternion::IDENTITY));
//!
//! let mut rx = E2eReceiver::new(0x1001);
//! let (sealed, _) = slot.read().unwrap();
//! let checked = rx.check(&sealed).unwrap();
//! assert_eq!((checked.value, checked.counter, checked.lost), (Quaternion::IDENTITY, 1, 0));
//! assert!(matches!(E2eReceiver::new(0x2002).check(&sealed), Err(E2eError::DataId { .. })));
//! ```

use core::mem::{align_of, offset_of, size_of};

use super::crc32c::Crc32c;
use super::sample::Payload;

/// A value sealed by an [`E2eSender`]: counter, data id and CRC-32C, then the value (`#[repr(C)]`, no padding,
/// `Pod`; 16 bytes more than `T`). All-zero is "never written" (counter 0), which a receiver refuses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Protected<T> {
    counter: u64,
    data_id: u32,
    crc: u32,
    value: T,
}

// SAFETY: `#[repr(C)]`: a `u64`, two `u32` (16 bytes, no padding, align 8 at most) and a `Payload` (size a
// multiple of 8, alignment at most 8), so `value` starts at 16 and the struct ends right after it: no padding
// bytes, every field `Pod`, every bit pattern valid, all-zero valid.
unsafe impl<T: Payload> bytemuck::Zeroable for Protected<T> {}
// SAFETY: see above; `T: Payload` implies `T: Pod` (`Copy + 'static`).
unsafe impl<T: Payload> bytemuck::Pod for Protected<T> {}
// SAFETY: size 16 + size_of::<T>() (a multiple of 8), alignment max(align of u64, align of T) <= 8.
unsafe impl<T: Payload> Payload for Protected<T> {}

impl<T: Payload> Protected<T> {
    /// The counter it was sealed with (1 for the first value of a sender; 0: never written).
    pub const fn counter(&self) -> u64 {
        self.counter
    }

    /// The data id it was sealed for.
    pub const fn data_id(&self) -> u32 {
        self.data_id
    }

    /// Offsets of its fields, for the layout report ([`crate::object::layout`]).
    pub(crate) fn layout_fields() -> [(&'static str, usize); 4] {
        [
            ("counter", offset_of!(Self, counter)),
            ("data_id", offset_of!(Self, data_id)),
            ("crc", offset_of!(Self, crc)),
            ("value", offset_of!(Self, value)),
        ]
    }

    /// The CRC-32C over the counter, the data id and the value: every byte except the `crc` field.
    fn crc_of(&self) -> u32 {
        let () = T::LAYOUT_OK;
        let bytes = bytemuck::bytes_of(self);
        let crc_at = offset_of!(Self, crc);
        Crc32c::new()
            .update(&bytes[..crc_at])
            .update(&bytes[crc_at + size_of::<u32>()..])
            .finish()
    }
}

const _: () = assert!(offset_of!(Protected<u64>, value) == 16 && align_of::<Protected<u64>>() <= 8);

/// The writing end: seals values for one data id with a counter that increases by one per value.
#[derive(Clone, Debug)]
pub struct E2eSender {
    data_id: u32,
    counter: u64,
}

impl E2eSender {
    /// A sender for `data_id` (an application-chosen channel identity, the same on both ends) whose first value
    /// gets counter 1.
    pub const fn new(data_id: u32) -> Self {
        Self { data_id, counter: 0 }
    }

    /// A sender that carries on after the value with counter `last` (for example a writer taking over a channel
    /// from a dead one, after reading the last value): its first value gets counter `last + 1`.
    pub const fn after(data_id: u32, last: u64) -> Self {
        Self { data_id, counter: last }
    }

    /// Seals `value` with the next counter.
    pub fn protect<T: Payload>(&mut self, value: T) -> Protected<T> {
        self.counter = self.counter.wrapping_add(1).max(1);
        let mut sealed = Protected {
            counter: self.counter,
            data_id: self.data_id,
            crc: 0,
            value,
        };
        sealed.crc = sealed.crc_of();
        sealed
    }

    /// The counter of the last value sealed (0: none yet).
    pub const fn counter(&self) -> u64 {
        self.counter
    }
}

/// Why [`E2eReceiver::check`] refused a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E2eError {
    /// The CRC does not match the bytes: torn, half-written, scribbled over, or never written (all zero).
    Checksum,
    /// A well-formed value sealed for another data id (another channel's sample).
    DataId {
        /// The data id found.
        found: u32,
    },
    /// A well-formed value older than one already accepted (a replay or a stale copy).
    Stale {
        /// Its counter.
        counter: u64,
        /// The newest counter accepted so far.
        newest: u64,
    },
}

impl core::fmt::Display for E2eError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Checksum => f.write_str("end-to-end checksum mismatch"),
            Self::DataId { found } => write!(f, "sample sealed for data id {found:#x}"),
            Self::Stale { counter, newest } => {
                write!(f, "stale sample: counter {counter}, already accepted {newest}")
            }
        }
    }
}

impl core::error::Error for E2eError {}

/// A value that passed [`E2eReceiver::check`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checked<T> {
    /// The value.
    pub value: T,
    /// Its counter.
    pub counter: u64,
    /// Values the sender sealed between the previously accepted one and this one (0 for the first, and for the
    /// same value read again, e.g. from a latest-value slot that has not changed).
    pub lost: u64,
}

/// The reading end: accepts values of one data id whose CRC matches and whose counter never goes back.
#[derive(Clone, Debug)]
pub struct E2eReceiver {
    data_id: u32,
    newest: u64,
}

impl E2eReceiver {
    /// A receiver for `data_id` that has accepted nothing yet.
    pub const fn new(data_id: u32) -> Self {
        Self { data_id, newest: 0 }
    }

    /// The counter of the newest value accepted (0: none yet).
    pub const fn newest(&self) -> u64 {
        self.newest
    }

    /// Checks a sealed value; on success returns it and remembers its counter. Reading the newest accepted value
    /// again is accepted (with `lost: 0`).
    pub fn check<T: Payload>(&mut self, sealed: &Protected<T>) -> Result<Checked<T>, E2eError> {
        if sealed.crc != sealed.crc_of() || sealed.counter == 0 {
            return Err(E2eError::Checksum);
        }
        if sealed.data_id != self.data_id {
            return Err(E2eError::DataId { found: sealed.data_id });
        }
        if sealed.counter < self.newest {
            return Err(E2eError::Stale {
                counter: sealed.counter,
                newest: self.newest,
            });
        }
        let lost = match self.newest {
            0 => 0,
            n => (sealed.counter - n).saturating_sub(1),
        };
        self.newest = sealed.counter;
        Ok(Checked {
            value: sealed.value,
            counter: sealed.counter,
            lost,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::fusion::{ImuSample, SampleHeader, Stamped, Timestamp};

    fn imu(i: u64) -> Stamped<ImuSample> {
        let mut v = ImuSample::default();
        v.gyro.z = i as f32;
        Stamped::new(SampleHeader::new(3, i, Timestamp::from_nanos(i * 1000)), v)
    }

    #[test]
    fn accepts_in_order_counts_gaps_and_rereads() {
        let mut tx = E2eSender::new(7);
        let mut rx = E2eReceiver::new(7);
        let a = tx.protect(imu(0));
        let b = tx.protect(imu(1));
        let _ = tx.protect(imu(2));
        let d = tx.protect(imu(3));
        assert_eq!(rx.check(&a).map(|c| (c.counter, c.lost)), Ok((1, 0)));
        assert_eq!(rx.check(&b).map(|c| (c.value, c.lost)), Ok((imu(1), 0)));
        assert_eq!(rx.check(&b).map(|c| c.lost), Ok(0), "the same value read again");
        assert_eq!(rx.check(&d).map(|c| (c.counter, c.lost)), Ok((4, 1)));
        assert_eq!(rx.check(&a), Err(E2eError::Stale { counter: 1, newest: 4 }));
        let mut resumed = E2eSender::after(7, d.counter());
        assert_eq!(rx.check(&resumed.protect(imu(4))).map(|c| c.counter), Ok(5));
    }

    #[test]
    fn refuses_every_single_bit_flip_torn_mixes_zero_and_foreign_values() {
        let mut tx = E2eSender::new(0xABCD);
        let (a, b) = (tx.protect(imu(10)), tx.protect(imu(11)));
        let bytes_a = bytemuck::bytes_of(&a);
        let bytes_b = bytemuck::bytes_of(&b);
        for bit in 0..bytes_a.len() * 8 {
            let mut x = a;
            bytemuck::bytes_of_mut(&mut x)[bit / 8] ^= 1 << (bit % 8);
            assert!(E2eReceiver::new(0xABCD).check(&x).is_err(), "bit {bit}");
        }
        // Torn: a prefix of one value and the rest of the next, split at every word boundary.
        for split in (4..bytes_a.len()).step_by(4) {
            let mut torn = a;
            bytemuck::bytes_of_mut(&mut torn)[split..].copy_from_slice(&bytes_b[split..]);
            assert_eq!(
                E2eReceiver::new(0xABCD).check(&torn),
                Err(E2eError::Checksum),
                "split {split}"
            );
        }
        assert_eq!(
            E2eReceiver::new(0xABCD).check(&Protected::<Stamped<ImuSample>>::default()),
            Err(E2eError::Checksum)
        );
        let foreign = E2eSender::new(0xABCE).protect(imu(10));
        assert_eq!(
            E2eReceiver::new(0xABCD).check(&foreign),
            Err(E2eError::DataId { found: 0xABCE })
        );
    }

    #[test]
    fn layout_is_header_then_value() {
        assert_eq!(
            size_of::<Protected<Stamped<ImuSample>>>(),
            16 + size_of::<Stamped<ImuSample>>()
        );
        assert_eq!(offset_of!(Protected<Stamped<ImuSample>>, value), 16);
    }
}
