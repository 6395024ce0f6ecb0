//! A runtime-sized SPSC ring: [`SpscRing<T, N>`](crate::buffer::SpscRing)'s algorithm and bytes with the element
//! size and capacity given at run time.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::time::Duration;

use super::super::ring::{ConsumerCore, KIND as SPSC_KIND, Parts, ProducerCore, SpscAccess, SpscHead, layout};
use super::super::sync::{WORD_BYTES, Word};
use super::super::{Error, SharedBytes, SharedBytesMut};
use super::{LayoutError, described, element_data, fits, payload_of};
use crate::liveness::{self, Holder, Judge};
use crate::object::{PayloadDesc, RawShared, Region};

/// The geometry of an SPSC ring given at run time: element size and alignment, capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpscLayout {
    element_size: usize,
    capacity: usize,
    /// Bytes from one slot to the next: the element rounded up to whole 8-byte units.
    stride: usize,
    /// `size_of` of the typed ring of this layout.
    payload_size: usize,
}

impl SpscLayout {
    /// The layout of a ring of `capacity` elements of `element_size` bytes aligned to `element_align`, the one of
    /// `SpscRing<T, N>` with `size_of::<T>() == element_size`, `align_of::<T>() == element_align`, `N == capacity`.
    ///
    /// # Errors
    /// A [`LayoutError`] naming the first parameter that no typed ring could have.
    pub const fn new(element_size: usize, element_align: usize, capacity: usize) -> Result<Self, LayoutError> {
        let stride = match element_data(element_size, element_align, capacity) {
            Ok(data) => data,
            Err(e) => return Err(e),
        };
        let Some(payload_size) = fits(layout::size(capacity, stride)) else {
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

    /// The number of samples the ring holds.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// The payload's description, for [`ObjectOptions::fingerprint_described`](crate::object::ObjectOptions::fingerprint_described):
    /// equal to [`PayloadDesc::of`] the typed ring of the same layout.
    pub const fn payload(&self) -> PayloadDesc {
        described(SPSC_KIND, self.payload_size, self.capacity, self.element_size)
    }
}

/// An SPSC ring whose geometry is given at run time, borrowed from shared memory.
#[derive(Clone, Copy)]
pub struct SpscView<'a> {
    head: &'a SpscHead,
    slots: NonNull<u8>,
    layout: SpscLayout,
    _payload: PhantomData<&'a [Word]>,
}

// SAFETY: the view only reaches shared memory through atomics (the control lines and the slots' data words), like
// a `&SpscRing`, which is `Send` and `Sync`.
unsafe impl Send for SpscView<'_> {}
// SAFETY: as above.
unsafe impl Sync for SpscView<'_> {}

impl<'a> SpscAccess<'a> for SpscView<'a> {
    #[inline]
    fn parts(self) -> Parts<'a> {
        self.head.parts()
    }

    #[inline]
    fn capacity(self) -> u64 {
        self.layout.capacity as u64
    }

    #[inline]
    fn slot(self, pos: u64) -> (&'a [Word], usize) {
        let index = (pos & (self.layout.capacity as u64 - 1)) as usize;
        // SAFETY: `index < capacity`, and the payload holds `capacity` slots of `stride` bytes from `SLOTS`
        // (checked at construction); a slot is 8-byte aligned (the payload is aligned to 128, `SLOTS` and
        // `stride` are multiples of 8) and a whole number of `Word`s, only ever accessed atomically at this
        // granularity by every process (the typed ring's layout is the same); any bit pattern is a valid atomic.
        unsafe {
            let slot = self.slots.as_ptr().add(index * self.layout.stride);
            let words = core::slice::from_raw_parts(slot.cast::<Word>(), self.layout.stride / WORD_BYTES);
            (words, self.layout.element_size)
        }
    }
}

impl<'a> SpscView<'a> {
    /// The ring in `object`, whose header was validated against `layout`'s fingerprint.
    ///
    /// # Errors
    /// [`LayoutError::Mismatch`] if the object's fingerprint is not `layout`'s.
    pub fn new<R: Region>(object: &'a RawShared<R>, layout: &SpscLayout) -> Result<Self, LayoutError> {
        let payload = payload_of(object, &layout.payload())?;
        // SAFETY: the object's payload is `layout.payload_size` bytes aligned to 128 (its fingerprint says so),
        // valid while `object` is borrowed, and shared memory that every party accesses atomically only.
        Ok(unsafe { Self::from_ptr(payload, *layout) })
    }

    /// A view of the ring at `payload`.
    ///
    /// # Safety
    /// `payload` must be aligned to 128 and point to `layout.payload().size` bytes, initialised (e.g. zeroed),
    /// valid for `'a` and accessed by everybody only through atomics, as an `SpscRing` of this layout is.
    pub unsafe fn from_ptr(payload: NonNull<u8>, layout: SpscLayout) -> Self {
        // SAFETY: by the caller's guarantee the payload starts with the control lines (all atomics, any bit
        // pattern valid), aligned to 128.
        let head = unsafe { payload.cast::<SpscHead>().as_ref() };
        // SAFETY: the slots start at `SLOTS`, inside the payload.
        let slots = unsafe { payload.add(layout::SLOTS) };
        Self {
            head,
            slots,
            layout,
            _payload: PhantomData,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &SpscLayout {
        &self.layout
    }

    /// A snapshot of `(head, tail)` (as [`SpscRing::positions`](crate::buffer::SpscRing::positions)).
    pub fn positions(&self) -> (u64, u64) {
        SpscAccess::positions(*self)
    }

    /// A snapshot of the number of samples in the ring (`None` if the positions are inconsistent).
    pub fn len(&self) -> Option<usize> {
        SpscAccess::len(*self)
    }

    /// Whether a snapshot shows the ring empty (inconsistent positions count as not empty).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The process holding the producer role, if any.
    pub fn producer_holder(&self) -> Option<Holder> {
        SpscAccess::producer_holder(*self)
    }

    /// The process holding the consumer role, if any.
    pub fn consumer_holder(&self) -> Option<Holder> {
        SpscAccess::consumer_holder(*self)
    }

    /// Claims the producer role for the calling process (as [`SpscRing::producer`](crate::buffer::SpscRing::producer)).
    pub fn producer(&self) -> Result<SpscViewProducer<'a>, Error> {
        self.producer_with(&liveness::current().map_err(Error::Liveness)?, liveness::judge)
    }

    pub(crate) fn producer_with(&self, me: &liveness::Me, judge: Judge) -> Result<SpscViewProducer<'a>, Error> {
        ProducerCore::claim(*self, me, judge).map(|core| SpscViewProducer { core })
    }

    /// Claims the consumer role for the calling process (as [`SpscRing::consumer`](crate::buffer::SpscRing::consumer)).
    pub fn consumer(&self) -> Result<SpscViewConsumer<'a>, Error> {
        self.consumer_with(&liveness::current().map_err(Error::Liveness)?, liveness::judge)
    }

    pub(crate) fn consumer_with(&self, me: &liveness::Me, judge: Judge) -> Result<SpscViewConsumer<'a>, Error> {
        ConsumerCore::claim(*self, me, judge).map(|core| SpscViewConsumer { core })
    }
}

/// The producer's handle on an [`SpscView`]. Dropping it releases the producer role.
pub struct SpscViewProducer<'a> {
    core: ProducerCore<'a, SpscView<'a>>,
}

impl<'a> SpscViewProducer<'a> {
    /// The ring's layout.
    pub fn layout(&self) -> &SpscLayout {
        &self.core.ring().layout
    }

    /// Pushes one sample given as its bytes; [`Error::Full`] if there is no free slot. A value shorter than the
    /// element fills the front of the slot (the rest keeps the slot's previous bytes).
    ///
    /// # Panics
    /// If `value` is longer than the element size (a caller bug, like slice indexing).
    pub fn try_push(&mut self, value: &[u8]) -> Result<(), Error> {
        self.core.try_push(value)
    }

    /// Pushes one sample, waiting for space up to `timeout` (as
    /// [`Producer::push_wait`](crate::buffer::Producer::push_wait)).
    ///
    /// # Panics
    /// If `value` is longer than the element size.
    pub fn push_wait(&mut self, value: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        self.core.push_wait(value, timeout)
    }

    /// Reserves the next slot for in-place writing (as [`Producer::reserve`](crate::buffer::Producer::reserve)).
    pub fn reserve(&mut self) -> Result<SpscViewWriteSlot<'_, 'a>, Error> {
        if self.core.free(1)? == 0 {
            return Err(Error::Full);
        }
        Ok(SpscViewWriteSlot { producer: self })
    }

    /// The number of samples pushed so far over the ring's life (the position of the next sample).
    pub fn position(&self) -> u64 {
        self.core.position()
    }
}

/// A reserved slot of an [`SpscView`] being filled in place. Dropping it without [`commit`](Self::commit)
/// publishes nothing.
pub struct SpscViewWriteSlot<'p, 'a> {
    producer: &'p mut SpscViewProducer<'a>,
}

impl SpscViewWriteSlot<'_, '_> {
    /// The slot's bytes.
    pub fn bytes(&mut self) -> SharedBytesMut<'_> {
        self.producer.core.slot_bytes(0)
    }

    /// The slot's address, for filling it outside the Rust abstract machine (see
    /// [`WriteSlot::as_mut_ptr`](crate::buffer::WriteSlot::as_mut_ptr)). The slot spans the element size rounded
    /// up to a multiple of 8.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.producer.core.slot_ptr()
    }

    /// The sample's position in the ring's history.
    pub fn position(&self) -> u64 {
        self.producer.core.position()
    }

    /// Publishes the slot to the consumer.
    pub fn commit(self) {
        self.producer.core.commit(1);
    }
}

/// The consumer's handle on an [`SpscView`]. Dropping it releases the consumer role.
pub struct SpscViewConsumer<'a> {
    core: ConsumerCore<'a, SpscView<'a>>,
}

impl<'a> SpscViewConsumer<'a> {
    /// The ring's layout.
    pub fn layout(&self) -> &SpscLayout {
        &self.core.ring().layout
    }

    /// Pops the oldest sample into `out`; [`Error::Empty`] if there is none.
    ///
    /// # Panics
    /// If `out` is longer than the element size.
    pub fn try_pop_into(&mut self, out: &mut [u8]) -> Result<(), Error> {
        self.core.try_pop(|data| data.load(0, out))
    }

    /// Gives the oldest sample to `f` as atomic bytes and frees its slot.
    pub fn try_pop_with<R>(&mut self, f: impl FnOnce(SharedBytes<'_>) -> R) -> Result<R, Error> {
        self.core.try_pop(f)
    }

    /// Pops one sample into `out`, waiting up to `timeout` (as
    /// [`Consumer::pop_wait`](crate::buffer::Consumer::pop_wait)).
    ///
    /// # Panics
    /// If `out` is longer than the element size.
    pub fn pop_wait_into(&mut self, out: &mut [u8], timeout: Option<Duration>) -> Result<(), Error> {
        self.core.pop_wait(timeout, |data| data.load(0, out))
    }

    /// The number of samples released so far over the ring's life (the position of the next sample).
    pub fn position(&self) -> u64 {
        self.core.position()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::SpscRing;
    use crate::buffer::sync::{AtomicU64, Ordering};
    use crate::fusion::{ImuSample, Stamped};
    use crate::object::ObjectOptions;

    const P: liveness::Me = liveness::Me::fake(51);
    const C: liveness::Me = liveness::Me::fake(52);
    fn alive(_: u64) -> liveness::Liveness {
        liveness::Liveness::Alive
    }
    fn dead(_: u64) -> liveness::Liveness {
        liveness::Liveness::Dead
    }

    fn layout_of<T: crate::Shareable, const N: usize>() -> SpscLayout {
        SpscLayout::new(core::mem::size_of::<T>(), core::mem::align_of::<T>(), N).unwrap()
    }

    #[test]
    fn layout_and_fingerprint_equal_the_typed_rings() {
        fn check<T: crate::Shareable, const N: usize>() {
            let layout = layout_of::<T, N>();
            assert_eq!(layout.payload(), PayloadDesc::of::<SpscRing<T, N>>());
            let options = ObjectOptions::new().type_name("imu");
            assert_eq!(
                options.fingerprint_described(&layout.payload()),
                Some(options.fingerprint::<SpscRing<T, N>>())
            );
        }
        check::<Stamped<ImuSample>, 1024>();
        check::<u8, 1>();
        check::<[u8; 13], 4>();
        check::<u32, 8>();
        check::<[u16; 5], 64>();
        assert_eq!(SpscLayout::new(8, 8, 3), Err(LayoutError::Capacity));
        assert_eq!(SpscLayout::new(0, 8, 4), Err(LayoutError::ElementSize));
        assert_eq!(SpscLayout::new(8, 16, 4), Err(LayoutError::ElementAlign));
        assert_eq!(
            SpscLayout::new(1 << 20, 8, usize::MAX / 2 + 1),
            Err(LayoutError::TooLarge)
        );
    }

    /// A typed producer and a runtime-sized consumer (and the reverse) on the same bytes.
    #[test]
    fn typed_and_runtime_handles_share_one_ring() {
        type Ring = SpscRing<[u8; 13], 4>;
        let ring = crate::buffer::zeroed_box::<Ring>();
        // SAFETY: the typed ring is zeroed, aligned to 128, lives for the test, and is only accessed atomically.
        let view = unsafe { SpscView::from_ptr(NonNull::from(&*ring).cast(), layout_of::<[u8; 13], 4>()) };
        let mut out = [0u8; 13];
        {
            let mut p = ring.producer_with(&P, alive).unwrap();
            p.try_push([1; 13]).unwrap();
            p.try_push([2; 13]).unwrap();
        }
        let mut c = view.consumer_with(&C, alive).unwrap();
        if !cfg!(miri) {
            // Judging a holder is a system call (its liveness anchor).
            assert_eq!(ring.consumer_holder().map(|h| h.own_pid), Some(52));
        }
        assert_eq!(view.len(), Some(2));
        c.try_pop_into(&mut out).unwrap();
        assert_eq!(out, [1; 13]);
        let mut vp = view.producer_with(&P, alive).unwrap();
        assert_eq!(vp.position(), 2);
        for i in 3..6u8 {
            vp.try_push(&[i; 13]).unwrap();
        }
        assert_eq!(vp.try_push(&[9; 13]), Err(Error::Full));
        {
            let slot = vp.reserve();
            assert_eq!(slot.err(), Some(Error::Full));
        }
        assert_eq!(c.try_pop_with(|b| b.len()), Ok(13));
        let mut slot = vp.reserve().unwrap();
        assert_eq!(slot.position(), 5);
        slot.bytes().store(0, &[6; 13]);
        slot.commit();
        drop(c);
        let mut typed = ring.consumer_with(&C, alive).unwrap();
        assert_eq!(typed.try_pop(), Ok([3; 13]));
        assert_eq!(typed.try_pop(), Ok([4; 13]));
        assert_eq!(typed.try_pop(), Ok([5; 13]));
        assert_eq!(typed.try_pop(), Ok([6; 13]));
        assert_eq!(typed.try_pop(), Err(Error::Empty));
        assert_eq!(view.positions(), (6, 6));
    }

    #[test]
    fn hostile_positions_are_errors() {
        let ring = crate::buffer::zeroed_box::<SpscRing<u64, 4>>();
        // SAFETY: as above.
        let view = unsafe { SpscView::from_ptr(NonNull::from(&*ring).cast(), layout_of::<u64, 4>()) };
        let mut c = view.consumer_with(&C, alive).unwrap();
        let mut p = view.producer_with(&P, alive).unwrap();
        p.try_push(&7u64.to_ne_bytes()).unwrap();
        // A hostile producer claims more than N samples.
        // SAFETY: the producer's position is an `AtomicU64` at `TAIL` in the zeroed, live ring.
        let tail = unsafe {
            &*NonNull::from(&*ring)
                .cast::<u8>()
                .as_ptr()
                .add(layout::TAIL)
                .cast::<AtomicU64>()
        };
        tail.store(9, Ordering::Relaxed);
        let mut out = [0u8; 8];
        assert_eq!(c.try_pop_into(&mut out), Err(Error::Corrupt { head: 0, tail: 9 }));
    }

    #[test]
    #[cfg_attr(miri, ignore = "futex and clock syscalls")]
    fn waits_time_out_and_see_a_dead_peer() {
        let ring = crate::buffer::zeroed_box::<SpscRing<u64, 1>>();
        // SAFETY: as above.
        let view = unsafe { SpscView::from_ptr(NonNull::from(&*ring).cast(), layout_of::<u64, 1>()) };
        let mut out = [0u8; 8];
        let p = view.producer_with(&P, alive).unwrap();
        core::mem::forget(p);
        {
            // The producer's holder is judged dead: an empty ring whose producer is gone.
            let mut c = view.consumer_with(&C, dead).unwrap();
            assert_eq!(
                c.pop_wait_into(&mut out, Some(Duration::from_secs(5))),
                Err(Error::WriterGone)
            );
        }
        // The dead producer's role is taken over; a full ring whose consumer closed cleanly: `Closed`.
        let mut p = view.producer_with(&liveness::Me::fake(53), dead).unwrap();
        p.push_wait(&1u64.to_ne_bytes(), Some(Duration::from_millis(1)))
            .unwrap();
        assert_eq!(
            p.push_wait(&2u64.to_ne_bytes(), Some(Duration::from_millis(1))),
            Err(Error::Closed)
        );
        // A consumer that dies holding its role (this producer judges every holder dead).
        let c = view.consumer_with(&C, alive).unwrap();
        core::mem::forget(c);
        assert_eq!(
            p.push_wait(&2u64.to_ne_bytes(), Some(Duration::from_secs(5))),
            Err(Error::ReaderGone)
        );
    }
}
