//! A runtime-sized latest-value slot: [`Latest<T>`](crate::buffer::Latest)'s algorithm and bytes with the value
//! size given at run time.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::time::Duration;

use super::super::latest::{KIND as LATEST_KIND, LatestAccess, LatestWriterCore, layout, read_validated, wait_newer};

use super::super::sync::{AtomicU64, WORD_BYTES, Word};
use super::super::wait::WaitCell;
use super::super::{Error, SharedBytes};
use super::{LayoutError, described, element_data, fits, payload_of};
use crate::liveness::{self, Holder, Judge, Role};
use crate::object::{PayloadDesc, RawShared, Region};

/// The geometry of a latest-value slot given at run time: value size and alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatestLayout {
    element_size: usize,
    /// Bytes of one copy: the value rounded up to whole 8-byte units.
    copy: usize,
    /// Offset of the writer's role.
    role: usize,
    /// `size_of` of the typed slot of this layout.
    payload_size: usize,
}

impl LatestLayout {
    /// The layout of a slot of a value of `element_size` bytes aligned to `element_align`, the one of
    /// `Latest<T>` with `size_of::<T>() == element_size` and `align_of::<T>() == element_align`.
    ///
    /// # Errors
    /// A [`LayoutError`] naming the first parameter that no typed slot could have.
    pub const fn new(element_size: usize, element_align: usize) -> Result<Self, LayoutError> {
        let copy = match element_data(element_size, element_align, 1) {
            Ok(data) => data,
            Err(e) => return Err(e),
        };
        let Some(payload_size) = fits(layout::size(copy)) else {
            return Err(LayoutError::TooLarge);
        };
        Ok(Self {
            element_size,
            copy,
            role: layout::role(copy),
            payload_size,
        })
    }

    /// The value size in bytes.
    pub const fn element_size(&self) -> usize {
        self.element_size
    }

    /// The payload's description, for [`ObjectOptions::fingerprint_described`](crate::object::ObjectOptions::fingerprint_described):
    /// equal to [`PayloadDesc::of`] the typed slot of the same layout.
    pub const fn payload(&self) -> PayloadDesc {
        described(LATEST_KIND, self.payload_size, 1, self.element_size)
    }
}

/// A latest-value slot whose value size is given at run time, borrowed from shared memory.
#[derive(Clone, Copy)]
pub struct LatestView<'a> {
    base: NonNull<u8>,
    layout: LatestLayout,
    _payload: PhantomData<&'a [Word]>,
}

// SAFETY: the view only reaches shared memory through atomics (sequence, role, wait cell, copies' words), like a
// `&Latest`, which is `Send` and `Sync`.
unsafe impl Send for LatestView<'_> {}
// SAFETY: as above.
unsafe impl Sync for LatestView<'_> {}

impl<'a> LatestAccess<'a> for LatestView<'a> {
    #[inline]
    fn parts(self) -> (&'a AtomicU64, &'a Role, &'a WaitCell) {
        // SAFETY: the payload (valid for `'a`, aligned to 128, `payload_size` bytes, checked at construction)
        // holds the sequence count at `SEQ`, the role at `role` and the wait cell `WAIT_FROM_ROLE` after it, at
        // the offsets of the typed slot; all are atomics (any bit pattern valid) accessed atomically by everyone.
        unsafe {
            let base = self.base.as_ptr();
            let role = base.add(self.layout.role);
            (
                &*base.add(layout::SEQ).cast::<AtomicU64>(),
                &*role.cast::<Role>(),
                &*role.add(layout::WAIT_FROM_ROLE).cast::<WaitCell>(),
            )
        }
    }

    #[inline]
    fn copy(self, index: u64) -> (&'a [Word], usize) {
        // SAFETY: the two copies of `copy` bytes each start at `COPIES` (8-byte aligned) inside the payload; they
        // are whole `Word`s accessed only atomically at this granularity by every process.
        unsafe {
            let copy = self
                .base
                .as_ptr()
                .add(layout::COPIES + (index & 1) as usize * self.layout.copy);
            let words = core::slice::from_raw_parts(copy.cast::<Word>(), self.layout.copy / WORD_BYTES);
            (words, self.layout.element_size)
        }
    }
}

impl<'a> LatestView<'a> {
    /// The slot in `object`, whose header was validated against `layout`'s fingerprint.
    ///
    /// # Errors
    /// [`LayoutError::Mismatch`] if the object's fingerprint is not `layout`'s.
    pub fn new<R: Region>(object: &'a RawShared<R>, layout: &LatestLayout) -> Result<Self, LayoutError> {
        let payload = payload_of(object, &layout.payload())?;
        // SAFETY: the object's payload is `layout.payload_size` bytes aligned to 128 (its fingerprint says so),
        // valid while `object` is borrowed, and shared memory that every party accesses atomically only.
        Ok(unsafe { Self::from_ptr(payload, *layout) })
    }

    /// A view of the slot at `payload`.
    ///
    /// # Safety
    /// `payload` must be aligned to 128 and point to `layout.payload().size` bytes, initialised (e.g. zeroed),
    /// valid for `'a` and accessed by everybody only through atomics, as a `Latest` of this layout is.
    pub unsafe fn from_ptr(payload: NonNull<u8>, layout: LatestLayout) -> Self {
        Self {
            base: payload,
            layout,
            _payload: PhantomData,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &LatestLayout {
        &self.layout
    }

    /// The sequence number of the latest value (0: none yet).
    pub fn sequence(&self) -> u64 {
        LatestAccess::sequence(*self)
    }

    /// The process holding the writer role, if any.
    pub fn writer_holder(&self) -> Option<Holder> {
        LatestAccess::writer_holder(*self)
    }

    /// Reads the latest value into `out`; returns its sequence number (as
    /// [`Latest::read_into`](crate::buffer::Latest::read_into)).
    ///
    /// # Panics
    /// If `out` is longer than the value size.
    pub fn read_into(&self, out: &mut [u8]) -> Result<u64, Error> {
        read_validated(*self, |data| data.load(0, out)).map(|((), seq)| seq)
    }

    /// Gives the latest value to `f` as atomic bytes and returns what `f` gave for a consistent copy (`f` may run
    /// more than once).
    pub fn read_with<R>(&self, f: impl FnMut(SharedBytes<'_>) -> R) -> Result<(R, u64), Error> {
        read_validated(*self, f)
    }

    /// Waits until the sequence number is greater than `after`, then reads into `out` (as
    /// [`Latest::wait_newer`](crate::buffer::Latest::wait_newer)).
    ///
    /// # Panics
    /// If `out` is longer than the value size.
    pub fn wait_newer_into(&self, after: u64, out: &mut [u8], timeout: Option<Duration>) -> Result<u64, Error> {
        wait_newer(*self, after, timeout, liveness::judge, |data| data.load(0, out)).map(|((), seq)| seq)
    }

    /// Claims the writer role for the calling process (as [`Latest::writer`](crate::buffer::Latest::writer)).
    pub fn writer(&self) -> Result<LatestViewWriter<'a>, Error> {
        self.writer_with(&liveness::current().map_err(Error::Liveness)?, liveness::judge)
    }

    pub(crate) fn writer_with(&self, me: &liveness::Me, judge: Judge) -> Result<LatestViewWriter<'a>, Error> {
        LatestWriterCore::claim(*self, me, judge).map(|core| LatestViewWriter { core })
    }
}

/// The writer's handle on a [`LatestView`]. Dropping it releases the writer role.
pub struct LatestViewWriter<'a> {
    core: LatestWriterCore<'a, LatestView<'a>>,
}

impl LatestViewWriter<'_> {
    /// The slot's layout.
    pub fn layout(&self) -> &LatestLayout {
        &self.core.slot().layout
    }

    /// Publishes a value given as its bytes; returns its sequence number. Never waits. A value shorter than the
    /// element fills the front of the copy (the rest keeps that copy's previous bytes).
    ///
    /// # Panics
    /// If `value` is longer than the value size (a caller bug, like slice indexing).
    pub fn write(&mut self, value: &[u8]) -> u64 {
        self.core.write(value)
    }

    /// The sequence number of the last value written (0: none).
    pub fn sequence(&self) -> u64 {
        self.core.sequence()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Latest;
    use crate::fusion::{ImuSample, Stamped};
    use crate::object::ObjectOptions;

    const W: liveness::Me = liveness::Me::fake(61);
    fn alive(_: u64) -> liveness::Liveness {
        liveness::Liveness::Alive
    }

    fn layout_of<T: crate::Shareable>() -> LatestLayout {
        LatestLayout::new(core::mem::size_of::<T>(), core::mem::align_of::<T>()).unwrap()
    }

    #[test]
    fn layout_and_fingerprint_equal_the_typed_slots() {
        fn check<T: crate::Shareable>() {
            let layout = layout_of::<T>();
            assert_eq!(layout.payload(), PayloadDesc::of::<Latest<T>>());
            let options = ObjectOptions::new().type_name("attitude");
            assert_eq!(
                options.fingerprint_described(&layout.payload()),
                Some(options.fingerprint::<Latest<T>>())
            );
        }
        check::<Stamped<ImuSample>>();
        check::<u8>();
        check::<[u8; 13]>();
        check::<[u64; 40]>();
        check::<[u16; 5]>();
        assert_eq!(LatestLayout::new(0, 1), Err(LayoutError::ElementSize));
        assert_eq!(LatestLayout::new(8, 3), Err(LayoutError::ElementAlign));
        assert_eq!(LatestLayout::new(usize::MAX - 3, 8), Err(LayoutError::TooLarge));
    }

    /// A typed writer and a runtime-sized one (and readers of both kinds) on the same bytes.
    #[test]
    fn typed_and_runtime_handles_share_one_slot() {
        let slot = crate::buffer::zeroed_box::<Latest<[u8; 13]>>();
        // SAFETY: the typed slot is zeroed, aligned to 128, lives for the test, and is only accessed atomically.
        let view = unsafe { LatestView::from_ptr(NonNull::from(&*slot).cast(), layout_of::<[u8; 13]>()) };
        let mut out = [0u8; 13];
        assert_eq!(view.read_into(&mut out), Err(Error::Empty));
        {
            let mut w = slot.writer_with(&W, alive).unwrap();
            if !cfg!(miri) {
                // Judging a holder is a system call (its liveness anchor).
                assert_eq!(view.writer_holder().map(|h| h.own_pid), Some(61));
            }
            w.write(&[1; 13]);
        }
        assert_eq!(view.read_into(&mut out), Ok(1));
        assert_eq!(out, [1; 13]);
        let mut vw = view.writer_with(&W, alive).unwrap();
        assert_eq!(vw.sequence(), 1);
        assert_eq!(vw.write(&[2; 13]), 2);
        assert_eq!(vw.write(&[3; 13]), 3);
        assert_eq!(slot.read(), Ok(([3; 13], 3)));
        assert_eq!(view.read_with(|b| b.len()), Ok((13, 3)));
        assert_eq!(view.sequence(), 3);
    }

    #[test]
    #[cfg_attr(miri, ignore = "futex and clock syscalls")]
    fn waits_see_newer_values_and_time_out() {
        let slot = crate::buffer::zeroed_box::<Latest<u64>>();
        // SAFETY: as above.
        let view = unsafe { LatestView::from_ptr(NonNull::from(&*slot).cast(), layout_of::<u64>()) };
        let mut out = [0u8; 8];
        assert_eq!(
            view.wait_newer_into(0, &mut out, Some(Duration::from_millis(1))),
            Err(Error::Timeout)
        );
        let mut w = slot.writer_with(&W, alive).unwrap();
        w.write(&5);
        assert_eq!(view.wait_newer_into(0, &mut out, Some(Duration::from_millis(1))), Ok(1));
        assert_eq!(u64::from_ne_bytes(out), 5);
    }
}
