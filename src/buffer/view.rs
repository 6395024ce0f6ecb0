//! Runtime-sized forms of the buffers, for peers that know the element size and capacity only at run time (a C
//! or Zig process through the C ABI): [`BroadcastView`] here, [`SpscView`] and [`LatestView`] in the submodules,
//! each driving the one implementation of its buffer kind.
//!
//! A [`BroadcastView`] runs the very same algorithm as [`BroadcastRing<T, N>`](super::BroadcastRing) (both
//! drive the one implementation in the broadcast module) over a payload whose geometry comes from a
//! [`BroadcastLayout`] instead of from types. The layout reproduces the typed ring's `repr(C)` layout byte for
//! byte, and [`BroadcastLayout::payload`] its fingerprint fields, so a C process that opens a ring of 64-byte
//! elements and capacity 1024 under the type name `"imu"` and a Rust process that opens
//! `BroadcastRing<Stamped<ImuSample>, 1024>` with [`ObjectOptions::type_name`](crate::object::ObjectOptions::type_name)
//! `("imu")` share one object, and each refuses the other's if any of kind, type name, element size, capacity or
//! resulting layout differ.
//!
//! Elements are aligned to at most 8 bytes (every slot is word-aligned and padded to whole 8-byte units, as in the
//! typed rings); the element alignment is part of the layout, so two sides that disagree on it in a way that
//! moves a byte disagree on the payload size and the header refuses them.

mod latest;
mod spsc;

pub use latest::{LatestLayout, LatestView, LatestViewWriter};
pub use spsc::{SpscLayout, SpscView, SpscViewConsumer, SpscViewProducer};

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::time::Duration;

use super::broadcast::{KIND as BROADCAST_KIND, ReaderCore, RingAccess, RingHead, WriterCore, WriterSide, layout};
use super::sync::{AtomicU64, WORD_BYTES, Word};
use super::wait::WaitCell;
use super::{Error, SharedBytes};
use crate::liveness::{self, Holder, Judge};
use crate::object::{PayloadDesc, RawShared, Region};

/// Why a runtime layout was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The element size is zero.
    ElementSize,
    /// The element alignment is not a power of two of at most 8.
    ElementAlign,
    /// The capacity is not a power of two (or is zero).
    Capacity,
    /// The payload would not fit in this platform's address space.
    TooLarge,
    /// The object's fingerprint is not the one of this layout.
    Mismatch,
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            LayoutError::ElementSize => "element size is zero",
            LayoutError::ElementAlign => "element alignment is not a power of two of at most 8",
            LayoutError::Capacity => "capacity is not a power of two",
            LayoutError::TooLarge => "payload too large for this platform",
            LayoutError::Mismatch => "object was created with another layout",
        })
    }
}

impl core::error::Error for LayoutError {}

/// The bytes a slot's data occupies: the element rounded up to whole 8-byte units (what `SlotCell` does).
const fn data_bytes(size: usize) -> usize {
    size.div_ceil(8) * 8
}

/// Checks an element's size and alignment and a capacity the way every typed buffer constrains them; returns the
/// bytes a slot's data occupies.
const fn element_data(element_size: usize, element_align: usize, capacity: usize) -> Result<usize, LayoutError> {
    if element_size == 0 {
        return Err(LayoutError::ElementSize);
    }
    if !element_align.is_power_of_two() || element_align > 8 {
        return Err(LayoutError::ElementAlign);
    }
    if !capacity.is_power_of_two() {
        return Err(LayoutError::Capacity);
    }
    match element_size.checked_next_multiple_of(8) {
        Some(data) => Ok(data),
        None => Err(LayoutError::TooLarge),
    }
}

/// A payload size, if it is one a Rust object could have.
const fn fits(size: Option<usize>) -> Option<usize> {
    match size {
        Some(s) if s <= isize::MAX as usize => Some(s),
        _ => None,
    }
}

/// The description of a runtime-sized payload: aligned to 128 like every typed buffer.
const fn described(kind: &'static str, size: usize, capacity: usize, element_size: usize) -> PayloadDesc {
    PayloadDesc {
        kind,
        size: size as u64,
        align: 128,
        capacity: capacity as u64,
        element_size: element_size as u64,
    }
}

/// Checks that `object` was opened for the payload `desc` describes and returns its payload.
fn payload_of<R: Region>(object: &RawShared<R>, desc: &PayloadDesc) -> Result<NonNull<u8>, LayoutError> {
    let fp = object.fingerprint();
    if fp.kind_hash != crate::object::fnv1a(desc.kind.as_bytes())
        || fp.size != desc.size
        || fp.align != desc.align
        || fp.capacity != desc.capacity
        || fp.element_size != desc.element_size
    {
        return Err(LayoutError::Mismatch);
    }
    Ok(object.payload())
}

/// The geometry of a broadcast ring given at run time: element size and alignment, capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BroadcastLayout {
    element_size: usize,
    capacity: usize,
    /// Bytes from one slot to the next: the sequence word, then the data.
    stride: usize,
    /// `size_of` of the typed ring of this layout.
    payload_size: usize,
}

impl BroadcastLayout {
    /// The layout of a ring of `capacity` elements of `element_size` bytes aligned to `element_align`.
    ///
    /// # Errors
    /// A [`LayoutError`] naming the first parameter that no typed ring could have (see the module docs).
    pub const fn new(element_size: usize, element_align: usize, capacity: usize) -> Result<Self, LayoutError> {
        let data = match element_data(element_size, element_align, capacity) {
            Ok(data) => data,
            Err(e) => return Err(e),
        };
        let Some(stride) = data.checked_add(layout::SLOT_DATA) else {
            return Err(LayoutError::TooLarge);
        };
        let Some(payload_size) = fits(layout::size(capacity, data)) else {
            return Err(LayoutError::TooLarge);
        };
        Ok(Self {
            element_size,
            capacity,
            stride,
            payload_size,
        })
    }

    /// The element size in bytes.
    pub const fn element_size(&self) -> usize {
        self.element_size
    }

    /// The number of samples the ring retains.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// The payload's description, for [`ObjectOptions::fingerprint_described`](crate::object::ObjectOptions::fingerprint_described):
    /// equal to [`PayloadDesc::of`] the typed ring of the same layout.
    pub const fn payload(&self) -> PayloadDesc {
        described(BROADCAST_KIND, self.payload_size, self.capacity, self.element_size)
    }
}

/// A broadcast ring whose geometry is given at run time (see the module docs), borrowed from shared memory.
#[derive(Clone, Copy)]
pub struct BroadcastView<'a> {
    head: &'a RingHead,
    slots: NonNull<u8>,
    layout: BroadcastLayout,
    _payload: PhantomData<&'a [Word]>,
}

// SAFETY: the view only reaches shared memory through atomics (the ring head, the slots' sequence and data
// words), like a `&BroadcastRing`, which is `Send` and `Sync`.
unsafe impl Send for BroadcastView<'_> {}
// SAFETY: as above.
unsafe impl Sync for BroadcastView<'_> {}

impl<'a> RingAccess<'a> for BroadcastView<'a> {
    #[inline]
    fn head(self) -> (&'a WriterSide, &'a WaitCell) {
        self.head.head_parts()
    }

    #[inline]
    fn capacity(self) -> u64 {
        self.layout.capacity as u64
    }

    #[inline]
    fn slot(self, pos: u64) -> (&'a AtomicU64, &'a [Word], usize) {
        let index = (pos & (self.layout.capacity as u64 - 1)) as usize;
        // SAFETY: `index < capacity`, and the payload holds `capacity` slots of `stride` bytes after the head
        // (checked at construction); a slot starts with its 8-byte-aligned sequence word (the payload is aligned
        // to 128 and `stride` is a multiple of 8), followed by `stride - 8` bytes of data, a whole number of
        // `Word`s. Those bytes are only ever accessed atomically, at these granularities, by every process (the
        // typed ring's layout is the same), and any bit pattern is a valid atomic integer.
        unsafe {
            let slot = self.slots.as_ptr().add(index * self.layout.stride);
            let seq = &*slot.add(layout::SLOT_SEQ).cast::<AtomicU64>();
            let words = core::slice::from_raw_parts(
                slot.add(layout::SLOT_DATA).cast::<Word>(),
                data_bytes(self.layout.element_size) / WORD_BYTES,
            );
            (seq, words, self.layout.element_size)
        }
    }
}

impl<'a> BroadcastView<'a> {
    /// The ring in `object`, whose header was validated against `layout`'s fingerprint.
    ///
    /// # Errors
    /// [`LayoutError::Mismatch`] if the object's fingerprint is not `layout`'s (it was opened for another
    /// payload).
    pub fn new<R: Region>(object: &'a RawShared<R>, layout: &BroadcastLayout) -> Result<Self, LayoutError> {
        let payload = payload_of(object, &layout.payload())?;
        // SAFETY: the object's payload is `layout.payload_size` bytes aligned to 128 (its fingerprint says so),
        // valid while `object` is borrowed, and shared memory that every party accesses atomically only.
        Ok(unsafe { Self::from_ptr(payload, *layout) })
    }

    /// A view of the ring at `payload`.
    ///
    /// # Safety
    /// `payload` must be aligned to 128 and point to `layout.payload().size` bytes, initialised (e.g. zeroed),
    /// valid for `'a` and accessed by everybody only through atomics, as a `BroadcastRing` of this layout is.
    pub unsafe fn from_ptr(payload: NonNull<u8>, layout: BroadcastLayout) -> Self {
        // SAFETY: by the caller's guarantee the payload starts with the ring head (all atomics, any bit pattern
        // valid), aligned to 128.
        let head = unsafe { payload.cast::<RingHead>().as_ref() };
        // SAFETY: the slots start right after the head, inside the payload.
        let slots = unsafe { payload.add(layout::SLOTS) };
        Self {
            head,
            slots,
            layout,
            _payload: PhantomData,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &BroadcastLayout {
        &self.layout
    }

    /// The number of samples published so far (the position of the next one).
    pub fn tail(&self) -> u64 {
        RingAccess::tail(*self)
    }

    /// The process holding the writer role, if any, judged now.
    pub fn writer_holder(&self) -> Option<Holder> {
        RingAccess::writer_holder(*self)
    }

    /// Claims the writer role for the calling process (as [`BroadcastRing::writer`](super::BroadcastRing::writer)).
    pub fn writer(&self) -> Result<BroadcastViewWriter<'a>, Error> {
        self.writer_with(&liveness::current().map_err(Error::Liveness)?, liveness::judge)
    }

    pub(crate) fn writer_with(&self, me: &liveness::Me, judge: Judge) -> Result<BroadcastViewWriter<'a>, Error> {
        WriterCore::claim(*self, me, judge).map(|core| BroadcastViewWriter { core })
    }

    /// A reader that will receive the samples published from now on.
    pub fn reader(&self) -> BroadcastViewReader<'a> {
        self.reader_at(self.tail())
    }

    /// A reader that starts at the oldest sample still in the ring.
    pub fn reader_from_oldest(&self) -> BroadcastViewReader<'a> {
        BroadcastViewReader {
            core: ReaderCore::from_oldest(*self),
        }
    }

    /// A reader whose cursor is at `position`.
    pub fn reader_at(&self, position: u64) -> BroadcastViewReader<'a> {
        BroadcastViewReader {
            core: ReaderCore::at(*self, position),
        }
    }
}

/// The writer's handle on a [`BroadcastView`]. Dropping it releases the writer role.
pub struct BroadcastViewWriter<'a> {
    core: WriterCore<'a, BroadcastView<'a>>,
}

impl BroadcastViewWriter<'_> {
    /// The ring's layout.
    pub fn layout(&self) -> &BroadcastLayout {
        &self.core.ring().layout
    }

    /// Publishes one sample given as its bytes (overwriting the oldest); returns its position. Never waits.
    ///
    /// `value` should be a whole element: a shorter one fills the front of the slot and leaves the rest as the
    /// slot's previous sample had it.
    ///
    /// # Panics
    /// If `value` is longer than the element size (a caller bug, like slice indexing).
    pub fn publish(&mut self, value: &[u8]) -> u64 {
        self.core.publish_one(value)
    }

    /// The number of samples published so far (the position of the next one).
    pub fn position(&self) -> u64 {
        self.core.position()
    }
}

/// A reader's handle on a [`BroadcastView`]: a private cursor; it never writes to shared memory.
#[derive(Clone)]
pub struct BroadcastViewReader<'a> {
    core: ReaderCore<BroadcastView<'a>>,
}

impl BroadcastViewReader<'_> {
    /// The ring's layout.
    pub fn layout(&self) -> &BroadcastLayout {
        &self.core.ring().layout
    }

    /// Copies the sample at the cursor into `out` and advances; returns its position (as
    /// [`BroadcastReader::try_recv_into`](super::BroadcastReader::try_recv_into)).
    ///
    /// # Panics
    /// If `out` is longer than the element size (a caller bug, like slice indexing).
    pub fn try_recv_into(&mut self, out: &mut [u8]) -> Result<u64, Error> {
        self.core.recv_validated(|data| data.load(0, out)).map(|((), p)| p)
    }

    /// Gives the sample at the cursor to `f` as atomic bytes, then validates it (as
    /// [`BroadcastReader::try_recv_with`](super::BroadcastReader::try_recv_with)).
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(SharedBytes<'_>) -> R) -> Result<(R, u64), Error> {
        self.core.recv_validated(f)
    }

    /// Receives the next sample into `out`, waiting up to `timeout` (as
    /// [`BroadcastReader::recv_wait`](super::BroadcastReader::recv_wait)).
    ///
    /// # Panics
    /// If `out` is longer than the element size.
    pub fn recv_wait_into(&mut self, out: &mut [u8], timeout: Option<Duration>) -> Result<u64, Error> {
        self.core.recv_wait(timeout, |data| data.load(0, out)).map(|((), p)| p)
    }

    /// The position of the next sample this reader will receive.
    pub fn position(&self) -> u64 {
        self.core.position()
    }

    /// Skips everything published so far; returns how many samples were skipped. As
    /// [`BroadcastReader::skip_to_latest`](super::BroadcastReader::skip_to_latest), a cursor ahead of the tail moves
    /// back to it.
    pub fn skip_to_latest(&mut self) -> u64 {
        self.core.skip_to_latest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::BroadcastRing;
    use crate::fusion::{ImuSample, Stamped};
    use crate::object::{ObjectOptions, SharedState};

    const W: liveness::Me = liveness::Me::fake(41);

    fn layout_of<T: crate::Shareable, const N: usize>() -> BroadcastLayout {
        BroadcastLayout::new(core::mem::size_of::<T>(), core::mem::align_of::<T>(), N).unwrap()
    }

    #[test]
    fn layout_and_fingerprint_equal_the_typed_rings() {
        fn check<T: crate::Shareable, const N: usize>() {
            let layout = layout_of::<T, N>();
            assert_eq!(layout.payload(), PayloadDesc::of::<BroadcastRing<T, N>>());
            let options = ObjectOptions::new().type_name("imu");
            assert_eq!(
                options.fingerprint_described(&layout.payload()),
                Some(options.fingerprint::<BroadcastRing<T, N>>())
            );
        }
        check::<Stamped<ImuSample>, 1024>();
        check::<u8, 1>();
        check::<[u8; 13], 4>();
        check::<u32, 8>();
        check::<[u64; 3], 2>();
        check::<[u16; 5], 64>();
        assert_eq!(core::mem::size_of::<Stamped<ImuSample>>(), 48);
        assert_eq!(
            ObjectOptions::new().fingerprint_described(&layout_of::<u8, 1>().payload()),
            None
        );
        assert_eq!(<BroadcastRing<u8, 1> as SharedState>::KIND, BROADCAST_KIND);
    }

    #[test]
    fn impossible_layouts_are_refused() {
        assert_eq!(BroadcastLayout::new(0, 8, 4), Err(LayoutError::ElementSize));
        assert_eq!(BroadcastLayout::new(8, 3, 4), Err(LayoutError::ElementAlign));
        assert_eq!(BroadcastLayout::new(8, 16, 4), Err(LayoutError::ElementAlign));
        assert_eq!(BroadcastLayout::new(8, 8, 3), Err(LayoutError::Capacity));
        assert_eq!(BroadcastLayout::new(8, 8, 0), Err(LayoutError::Capacity));
        assert_eq!(BroadcastLayout::new(usize::MAX, 8, 4), Err(LayoutError::TooLarge));
        assert_eq!(
            BroadcastLayout::new(1 << 20, 8, usize::MAX / 2 + 1),
            Err(LayoutError::TooLarge)
        );
    }

    /// A typed writer and a runtime-sized reader (and the reverse) on the same bytes.
    #[test]
    fn typed_and_runtime_handles_share_one_ring() {
        type Ring = BroadcastRing<[u8; 13], 4>;
        let ring = crate::buffer::zeroed_box::<Ring>();
        // SAFETY: the typed ring is zeroed, aligned to 128, lives for the test, and is only accessed atomically.
        let view = unsafe { BroadcastView::from_ptr(NonNull::from(&*ring).cast(), layout_of::<[u8; 13], 4>()) };
        let mut typed_reader = ring.reader();
        let mut view_reader = view.reader();
        {
            let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
            w.publish_one(&[7; 13]);
        }
        let mut out = [0u8; 13];
        assert_eq!(view_reader.try_recv_into(&mut out), Ok(0));
        assert_eq!(out, [7; 13]);
        assert_eq!(view.writer_holder(), None);
        let mut vw = view.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        if !cfg!(miri) {
            // Judging a holder is a system call (its liveness anchor).
            assert_eq!(ring.writer_holder().map(|h| h.own_pid), Some(41));
        }
        for i in 1..7u8 {
            assert_eq!(vw.publish(&[i; 13]), u64::from(i));
        }
        assert_eq!(typed_reader.try_recv(), Err(Error::Lagged(4)));
        assert_eq!(typed_reader.try_recv(), Ok(([4; 13], 4)));
        assert_eq!(view_reader.try_recv_into(&mut out), Err(Error::Lagged(3)));
        assert_eq!(view_reader.try_recv_into(&mut out), Ok(4));
        assert_eq!(out, [4; 13]);
        assert_eq!(view_reader.skip_to_latest(), 2);
        assert_eq!(view_reader.try_recv_into(&mut out), Err(Error::Empty));
        let mut oldest = view.reader_from_oldest();
        assert_eq!(oldest.try_recv_into(&mut out), Ok(4));
    }

    #[test]
    #[cfg_attr(miri, ignore = "shared memory syscalls")]
    fn a_described_object_opens_as_the_typed_one() {
        use crate::object::sysv;
        type Ring = BroadcastRing<Stamped<ImuSample>, 8>;
        let key = crate::shm::Key::from_raw(0x5f13_0000 | (std::process::id() as i32 & 0xffff));
        let options = ObjectOptions::new().type_name("test-imu");
        let layout = BroadcastLayout::new(48, 8, 8).unwrap();
        let fp = options.fingerprint_described(&layout.payload()).unwrap();
        let raw = sysv::create_raw(key, &fp, &options).unwrap();
        let typed = sysv::open::<Ring>(key, &options).unwrap();
        let view = BroadcastView::new(&raw, &layout).unwrap();
        let mut reader = typed.get().reader();
        let mut w = view.writer().unwrap();
        let mut sample = Stamped::<ImuSample>::default();
        sample.header.seq = 99;
        w.publish(bytemuck::bytes_of(&sample));
        assert_eq!(reader.try_recv(), Ok((sample, 0)));
        // Another capacity, element size or type name is refused by the header.
        let other = BroadcastLayout::new(48, 8, 16).unwrap();
        let fp16 = options.fingerprint_described(&other.payload()).unwrap();
        assert!(sysv::open_raw(key, &fp16, &options).is_err());
        let renamed = ObjectOptions::new().type_name("test-mag");
        assert!(
            sysv::open_raw(
                key,
                &renamed.fingerprint_described(&layout.payload()).unwrap(),
                &renamed
            )
            .is_err()
        );
        assert_eq!(BroadcastView::new(&raw, &other).err(), Some(LayoutError::Mismatch));
    }
}
