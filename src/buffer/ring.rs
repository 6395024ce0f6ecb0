//! A bounded, wait-free single-producer single-consumer ring of samples in shared memory.
//!
//! # Algorithm
//!
//! Two free-running `u64` positions: `tail` (samples published, written only by the producer) and `head`
//! (samples released, written only by the consumer). Slot `p & (N - 1)` holds sample `p`; `N` is a power of two,
//! so there is no wrap branch and no wasted slot, and a `u64` never wraps in practice. The producer writes a
//! slot with `Relaxed` atomic word stores and publishes it with one `Release` store of `tail` (one store for a
//! whole batch); the consumer `Acquire`-loads `tail`, copies the slot with `Relaxed` word loads and frees it with
//! one `Release` store of `head`, which the producer `Acquire`-loads before reusing the slot. So an honest peer
//! never accesses a slot concurrently with us, and a dishonest one only makes us copy garbage, never race
//! non-atomically.
//!
//! Each handle keeps its own position and a cached copy of the peer's in process-local memory (rigtorp's
//! trick): the peer's line is only read when the cached value says the ring is full (producer) or empty
//! (consumer). The two positions, and the two wait cells, are on separate 128-byte lines.
//!
//! A peer's position is validated whenever it is loaded: `tail - head` must be at most `N`. Anything else is
//! reported as [`Error::Corrupt`]; nothing loops on shared values, so both sides are wait-free.
//!
//! # In-place access
//!
//! [`Producer::reserve`] / [`WriteSlot::commit`] and [`Consumer::peek`] / [`ReadSlot::release`] give access to a
//! slot without copying the sample through the stack. The slot is only exposed through atomic byte views
//! ([`SharedBytesMut`], [`SharedBytes`]), never as `&mut T` or `&T`: the consumer process is not trusted, and a
//! hostile consumer could write a reserved slot at any time, which would make a `&mut T` into it undefined
//! behaviour in the producer. [`WriteSlot::as_mut_ptr`] gives the raw address for callers that fill the slot
//! outside the Rust abstract machine (a `read(2)` or DMA into it) under their own `unsafe` reasoning.
//!
//! # Typed and runtime-sized rings
//!
//! The algorithm is written once, in [`ProducerCore`] and [`ConsumerCore`], against [`SpscAccess`]: the ring's
//! control lines and where slot `p` is. [`SpscRing<T, N>`] gives constant sizes; an
//! [`SpscView`](super::SpscView) gives sizes known only at run time (a C peer's), over the same bytes.

use core::time::Duration;

use super::atomic_copy::{SharedBytes, SharedBytesMut, SlotCell};
use super::sync::{AtomicU64, Ordering, Word};
use super::wait::{Notifier, WaitCell};
use super::{CachePadded, Error};
use crate::Shareable;
use crate::liveness::{self, Holder, Judge, Role, RoleGuard};

/// The object kind of an SPSC ring, typed or runtime-sized (part of the header fingerprint).
pub(crate) const KIND: &str = "spsc-ring";

#[repr(C)]
pub(crate) struct Side {
    pos: AtomicU64,
    role: Role,
}

impl Side {
    #[cfg(all(loom, test))]
    fn new() -> Self {
        Self {
            pos: AtomicU64::new(0),
            role: Role::new(),
        }
    }
}

/// A single-producer single-consumer ring of `N` samples (`N` a power of two) in shared memory.
///
/// All-zero is the empty ring with no producer and no consumer. Use it through a [`Producer`] in one process and
/// a [`Consumer`] in another (or the same) process.
#[repr(C)]
pub struct SpscRing<T, const N: usize> {
    producer: CachePadded<Side>,
    consumer: CachePadded<Side>,
    /// Consumers sleep here waiting for data; the producer notifies.
    data_wait: CachePadded<WaitCell>,
    /// The producer sleeps here waiting for space; the consumer notifies.
    space_wait: CachePadded<WaitCell>,
    slots: [SlotCell<T>; N],
}

/// The control lines every SPSC ring starts with (a ring of no slots: the same `repr(C)` prefix).
pub(crate) type SpscHead = SpscRing<u64, 0>;

// SAFETY: all-zero is the empty ring (positions 0, roles free, no waiters, zeroed slots); every field is an
// atomic or a `SlotCell` accessed only through atomic words; the layout is `repr(C)` of fixed-width atomics and
// 8-byte-aligned slots, 128-byte padded on every target; every position read from memory is validated, so no
// value can make a handle panic, go out of bounds or loop.
#[cfg(not(all(loom, test)))]
unsafe impl<T: Shareable, const N: usize> crate::object::SharedState for SpscRing<T, N> {
    const KIND: &'static str = KIND;
    const CAPACITY: u64 = N as u64;
    const ELEMENT_SIZE: u64 = core::mem::size_of::<T>() as u64;
}

/// Where things are in an SPSC ring, for any element type and capacity: the runtime-sized
/// [`SpscLayout`](super::SpscLayout) and the read-only [`inspect`](super::inspect) both place bytes with these.
/// Slots are 8-byte aligned whatever `T` (payload alignment at most 8), so these do not depend on the type
/// parameters.
#[cfg(not(all(loom, test)))]
pub(super) mod layout {
    use super::*;
    use core::mem::offset_of;
    type Any = SpscRing<u64, 1>;
    /// Offset of the producer's position (samples pushed).
    pub(in crate::buffer) const TAIL: usize = offset_of!(Any, producer) + offset_of!(Side, pos);
    /// Offset of the consumer's position (samples popped).
    pub(in crate::buffer) const HEAD: usize = offset_of!(Any, consumer) + offset_of!(Side, pos);
    /// Offsets of the producer's and the consumer's roles.
    pub(in crate::buffer) const PRODUCER_ROLE: usize = offset_of!(Any, producer) + offset_of!(Side, role);
    /// See [`PRODUCER_ROLE`].
    pub(in crate::buffer) const CONSUMER_ROLE: usize = offset_of!(Any, consumer) + offset_of!(Side, role);
    /// Offset of slot 0.
    pub(in crate::buffer) const SLOTS: usize = offset_of!(Any, slots);
    /// The size of a ring of `capacity` slots of `slot_size` bytes (rounded up to 8); `None` on overflow.
    pub(in crate::buffer) const fn size(capacity: usize, slot_size: usize) -> Option<usize> {
        match capacity.checked_mul(slot_size) {
            Some(slots) => match SLOTS.checked_add(slots) {
                Some(end) => end.checked_next_multiple_of(128),
                None => None,
            },
            None => None,
        }
    }
    const _: () = assert!(offset_of!(SpscRing<[u8; 40], 4>, slots) == SLOTS);
    const _: () = assert!(core::mem::size_of::<SpscHead>() == SLOTS);
    const _: () = assert!(matches!(size(16, 48), Some(s) if s == core::mem::size_of::<SpscRing<[u8; 41], 16>>()));
}

/// The control lines of an SPSC ring.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    producer: &'a Side,
    consumer: &'a Side,
    data_wait: &'a WaitCell,
    space_wait: &'a WaitCell,
}

impl<T, const N: usize> SpscRing<T, N> {
    /// The control lines (for any `N`, including the slot-less [`SpscHead`]).
    #[inline]
    pub(crate) fn parts(&self) -> Parts<'_> {
        Parts {
            producer: &self.producer,
            consumer: &self.consumer,
            data_wait: &self.data_wait,
            space_wait: &self.space_wait,
        }
    }
}

/// What the SPSC algorithm needs from a ring: its control lines and where slot `p` is.
pub(crate) trait SpscAccess<'a>: Copy {
    /// The control lines.
    fn parts(self) -> Parts<'a>;
    /// The number of slots (a power of two).
    fn capacity(self) -> u64;
    /// Slot `pos & (capacity - 1)`: its data words and the sample size in bytes.
    fn slot(self, pos: u64) -> (&'a [Word], usize);

    /// Up to `max` (at least one) consecutive slots from slot `pos & (capacity - 1)` as one run of words, and how
    /// many slots it holds: more than one only where samples fill their slots exactly, so that their bytes lie end
    /// to end (the default: one slot).
    #[inline]
    fn run(self, pos: u64, max: u64) -> (&'a [Word], u64) {
        let _ = max;
        (self.slot(pos).0, 1)
    }

    /// A snapshot of `(head, tail)`.
    fn positions(self) -> (u64, u64) {
        let parts = self.parts();
        let head = parts.consumer.pos.load(Ordering::Acquire);
        (head, parts.producer.pos.load(Ordering::Acquire))
    }

    /// A snapshot of the number of samples in the ring (`None` if the positions are inconsistent).
    fn len(self) -> Option<usize> {
        let (head, tail) = self.positions();
        check(head, tail, self.capacity()).ok().map(|n| n as usize)
    }

    fn producer_holder(self) -> Option<Holder> {
        self.parts().producer.role.holder()
    }

    fn consumer_holder(self) -> Option<Holder> {
        self.parts().consumer.role.holder()
    }
}

impl<'a, T: Shareable, const N: usize> SpscAccess<'a> for &'a SpscRing<T, N> {
    #[inline]
    fn parts(self) -> Parts<'a> {
        SpscRing::parts(self)
    }

    #[inline]
    fn capacity(self) -> u64 {
        SpscRing::<T, N>::CAP
    }

    #[inline]
    fn slot(self, pos: u64) -> (&'a [Word], usize) {
        let cell = &self.slots[(pos & SpscRing::<T, N>::MASK) as usize];
        (cell.words(), core::mem::size_of::<T>())
    }

    #[inline]
    fn run(self, pos: u64, max: u64) -> (&'a [Word], u64) {
        let index = (pos & SpscRing::<T, N>::MASK) as usize;
        let count = (max as usize).clamp(1, N - index);
        match SlotCell::run_words(&self.slots[index..index + count]) {
            Some(words) => (words, count as u64),
            None => (self.slots[index].words(), 1),
        }
    }
}

impl<T: Shareable, const N: usize> SpscRing<T, N> {
    /// Offsets of the shared words, for the layout report ([`crate::object::layout`]).
    #[cfg(not(all(loom, test)))]
    pub(crate) fn layout_fields() -> [(&'static str, usize); 8] {
        use core::mem::{offset_of, size_of};
        let slots = offset_of!(Self, slots);
        [
            ("tail", offset_of!(Self, producer.0.pos)),
            ("producer_role", offset_of!(Self, producer.0.role)),
            ("head", offset_of!(Self, consumer.0.pos)),
            ("consumer_role", offset_of!(Self, consumer.0.role)),
            ("data_wait", offset_of!(Self, data_wait)),
            ("space_wait", offset_of!(Self, space_wait)),
            ("slot0", slots),
            ("slot1", slots + size_of::<SlotCell<T>>()),
        ]
    }

    const MASK: u64 = {
        assert!(N.is_power_of_two(), "ring capacity must be a power of two");
        N as u64 - 1
    };
    const CAP: u64 = N as u64;

    /// Initialises `place` in place to the empty ring (every byte zero) and returns it.
    ///
    /// Shared memory needs no such step: segments are zero-filled. This is for a ring in process-local memory
    /// (the stack, a `Box::new_zeroed`, ...). There is deliberately no by-value constructor: moving a value does
    /// not preserve the padding bytes that round each slot up to whole words, and the atomic word copies read
    /// them, so they must be initialised in place.
    #[cfg(not(all(loom, test)))]
    pub fn init(place: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        <Self as crate::object::SharedState>::init_zeroed(place)
    }

    /// An empty ring (loom model).
    #[cfg(all(loom, test))]
    pub(crate) fn new() -> Self {
        let _ = Self::MASK;
        Self {
            producer: CachePadded(Side::new()),
            consumer: CachePadded(Side::new()),
            data_wait: CachePadded(WaitCell::new()),
            space_wait: CachePadded(WaitCell::new()),
            slots: core::array::from_fn(|_| SlotCell::new()),
        }
    }

    /// The number of samples the ring holds.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Claims the producer role for the calling process.
    ///
    /// Fails with [`Error::RoleTaken`] if a live process holds it (a dead holder's role is taken over), or with
    /// [`Error::Corrupt`] if the shared positions are inconsistent.
    pub fn producer(&self) -> Result<Producer<'_, T, N>, Error> {
        self.producer_with(&liveness::current().map_err(Error::Liveness)?, liveness::judge)
    }

    pub(crate) fn producer_with(&self, me: &liveness::Me, judge: Judge) -> Result<Producer<'_, T, N>, Error> {
        ProducerCore::claim(self, me, judge).map(|core| Producer { core })
    }

    /// Claims the consumer role for the calling process (see [`producer`](Self::producer)).
    pub fn consumer(&self) -> Result<Consumer<'_, T, N>, Error> {
        self.consumer_with(&liveness::current().map_err(Error::Liveness)?, liveness::judge)
    }

    pub(crate) fn consumer_with(&self, me: &liveness::Me, judge: Judge) -> Result<Consumer<'_, T, N>, Error> {
        ConsumerCore::claim(self, me, judge).map(|core| Consumer { core })
    }

    /// The process holding the producer role, if any.
    pub fn producer_holder(&self) -> Option<Holder> {
        SpscAccess::producer_holder(self)
    }

    /// The process holding the consumer role, if any.
    pub fn consumer_holder(&self) -> Option<Holder> {
        SpscAccess::consumer_holder(self)
    }

    /// A snapshot of the consumer's and the producer's positions `(head, tail)`: samples released and samples
    /// published over the ring's life.
    pub fn positions(&self) -> (u64, u64) {
        SpscAccess::positions(self)
    }

    /// A snapshot of the number of samples in the ring (`None` if the positions are inconsistent).
    pub fn len(&self) -> Option<usize> {
        SpscAccess::len(self)
    }

    /// Whether a snapshot shows the ring empty (inconsistent positions count as not empty).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// `tail - head`, or `Corrupt` if that is not in `0..=cap` (also [`inspect`](super::inspect)'s rule for a ring it
/// reads).
#[inline]
pub(super) fn check(head: u64, tail: u64, cap: u64) -> Result<u64, Error> {
    let used = tail.wrapping_sub(head);
    if used > cap {
        Err(Error::Corrupt { head, tail })
    } else {
        Ok(used)
    }
}

/// The producer side of the algorithm, for any [`SpscAccess`].
pub(crate) struct ProducerCore<'a, A> {
    ring: A,
    /// The ring's control lines (also for `Drop`, which knows nothing of `A`).
    parts: Parts<'a>,
    /// Our own position (authoritative: never re-read from shared memory).
    tail: u64,
    /// Cached consumer position.
    head: u64,
    judge: Judge,
    role: RoleGuard<'a>,
    /// How this process wakes waiters (see the wait module).
    notifier: Notifier,
}

impl<'a, A: SpscAccess<'a>> ProducerCore<'a, A> {
    pub(crate) fn claim(ring: A, me: &liveness::Me, judge: Judge) -> Result<Self, Error> {
        let parts = ring.parts();
        let role = parts.producer.role.claim_as(me, judge)?;
        let tail = parts.producer.pos.load(Ordering::Acquire);
        let head = parts.consumer.pos.load(Ordering::Acquire);
        check(head, tail, ring.capacity())?;
        Ok(Self {
            ring,
            parts,
            tail,
            head,
            judge,
            role,
            notifier: parts.data_wait.notifier(),
        })
    }

    /// The ring.
    pub(crate) fn ring(&self) -> &A {
        &self.ring
    }

    /// The number of samples pushed so far over the ring's life (the position of the next sample).
    pub(crate) fn position(&self) -> u64 {
        self.tail
    }

    /// Free slots, reloading the consumer's position only if fewer than `want` look free.
    #[inline]
    pub(crate) fn free(&mut self, want: u64) -> Result<u64, Error> {
        let cap = self.ring.capacity();
        let free = cap - self.tail.wrapping_sub(self.head);
        if free >= want {
            return Ok(free);
        }
        let head = self.ring.parts().consumer.pos.load(Ordering::Acquire);
        let used = check(head, self.tail, cap)?;
        self.head = head;
        Ok(cap - used)
    }

    /// Publishes the next `n` slots (already written) to the consumer.
    #[inline]
    pub(crate) fn commit(&mut self, n: u64) {
        self.tail = self.tail.wrapping_add(n);
        self.parts.producer.pos.store(self.tail, Ordering::Release);
        self.parts.data_wait.notify(&mut self.notifier);
    }

    /// The slot `ahead` places after the next one to publish, as writable bytes (the caller has checked that it
    /// is free).
    #[inline]
    pub(crate) fn slot_bytes(&self, ahead: u64) -> SharedBytesMut<'a> {
        let (words, len) = self.ring.slot(self.tail.wrapping_add(ahead));
        SharedBytesMut::from_words(words, len)
    }

    /// The next slot's first byte (for [`WriteSlot::as_mut_ptr`]).
    #[cfg(not(all(loom, test)))]
    pub(crate) fn slot_ptr(&self) -> *mut u8 {
        self.ring.slot(self.tail).0.as_ptr().cast_mut().cast()
    }

    /// Pushes one sample given as its bytes; [`Error::Full`] if there is no free slot.
    #[inline]
    pub(crate) fn try_push(&mut self, value: &[u8]) -> Result<(), Error> {
        if self.free(1)? == 0 {
            return Err(Error::Full);
        }
        self.slot_bytes(0).store(0, value);
        self.commit(1);
        Ok(())
    }

    /// Pushes as many as fit of the `count` samples in `src` (`size` bytes each, end to end), copying each run of
    /// consecutive slots at once (see [`SpscAccess::run`]), with one release store; returns how many.
    pub(crate) fn push_packed(&mut self, src: &[u8], count: usize, size: usize) -> Result<usize, Error> {
        let n = (count as u64).min(self.free(count as u64)?);
        let mut done = 0;
        while done < n {
            let (words, run) = self.ring.run(self.tail.wrapping_add(done), n - done);
            let (at, len) = (done as usize * size, run as usize * size);
            SharedBytesMut::from_words(words, len).store(0, &src[at..at + len]);
            done += run;
        }
        if n > 0 {
            self.commit(n);
        }
        Ok(n as usize)
    }

    /// Pushes one sample, waiting for space up to `timeout`.
    pub(crate) fn push_wait(&mut self, value: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        let parts = self.parts;
        let judge = self.judge;
        parts.space_wait.wait(
            timeout,
            || match self.try_push(value) {
                Ok(()) => Ok(Some(())),
                Err(Error::Full) => Ok(None),
                Err(e) => Err(e),
            },
            super::peer_of(&parts.consumer.role, judge, Error::ReaderGone),
        )
    }
}

/// The consumer side of the algorithm, for any [`SpscAccess`].
pub(crate) struct ConsumerCore<'a, A> {
    ring: A,
    /// The ring's control lines (also for `Drop`, which knows nothing of `A`).
    parts: Parts<'a>,
    /// Our own position (authoritative).
    head: u64,
    /// Cached producer position.
    tail: u64,
    judge: Judge,
    role: RoleGuard<'a>,
    /// How this process wakes waiters (see the wait module).
    notifier: Notifier,
}

impl<'a, A: SpscAccess<'a>> ConsumerCore<'a, A> {
    pub(crate) fn claim(ring: A, me: &liveness::Me, judge: Judge) -> Result<Self, Error> {
        let parts = ring.parts();
        let role = parts.consumer.role.claim_as(me, judge)?;
        let head = parts.consumer.pos.load(Ordering::Acquire);
        let tail = parts.producer.pos.load(Ordering::Acquire);
        check(head, tail, ring.capacity())?;
        Ok(Self {
            ring,
            parts,
            head,
            tail,
            judge,
            role,
            notifier: parts.space_wait.notifier(),
        })
    }

    /// The ring.
    pub(crate) fn ring(&self) -> &A {
        &self.ring
    }

    /// The number of samples released so far over the ring's life (the position of the next sample).
    pub(crate) fn position(&self) -> u64 {
        self.head
    }

    /// Available samples, reloading the producer's position only if fewer than `want` look available.
    #[inline]
    pub(crate) fn available(&mut self, want: u64) -> Result<u64, Error> {
        let avail = self.tail.wrapping_sub(self.head);
        if avail >= want {
            return Ok(avail);
        }
        let tail = self.ring.parts().producer.pos.load(Ordering::Acquire);
        let avail = check(self.head, tail, self.ring.capacity())?;
        self.tail = tail;
        Ok(avail)
    }

    /// Frees the next `n` slots for the producer.
    #[inline]
    pub(crate) fn release(&mut self, n: u64) {
        self.head = self.head.wrapping_add(n);
        self.parts.consumer.pos.store(self.head, Ordering::Release);
        self.parts.space_wait.notify(&mut self.notifier);
    }

    /// The slot `ahead` places after the oldest unreleased one (the caller has checked that it is available).
    #[inline]
    pub(crate) fn slot_bytes(&self, ahead: u64) -> SharedBytes<'a> {
        let (words, len) = self.ring.slot(self.head.wrapping_add(ahead));
        SharedBytes::from_words(words, len)
    }

    /// Gives the oldest sample to `read` and frees its slot; [`Error::Empty`] if there is none.
    #[inline]
    pub(crate) fn try_pop<R>(&mut self, read: impl FnOnce(SharedBytes<'a>) -> R) -> Result<R, Error> {
        if self.available(1)? == 0 {
            return Err(Error::Empty);
        }
        let r = read(self.slot_bytes(0));
        self.release(1);
        Ok(r)
    }

    /// Copies up to `count` available samples into `out` (`size` bytes each, end to end), each run of consecutive
    /// slots at once (see [`SpscAccess::run`]), and frees them with one release store; returns how many.
    pub(crate) fn pop_packed(&mut self, out: &mut [u8], count: usize, size: usize) -> Result<usize, Error> {
        let n = (count as u64).min(self.available(count as u64)?);
        let mut done = 0;
        while done < n {
            let (words, run) = self.ring.run(self.head.wrapping_add(done), n - done);
            let (at, len) = (done as usize * size, run as usize * size);
            SharedBytes::from_words(words, len).load(0, &mut out[at..at + len]);
            done += run;
        }
        if n > 0 {
            self.release(n);
        }
        Ok(n as usize)
    }

    /// Pops one sample with `read`, waiting up to `timeout`.
    pub(crate) fn pop_wait<R>(
        &mut self,
        timeout: Option<Duration>,
        mut read: impl FnMut(SharedBytes<'a>) -> R,
    ) -> Result<R, Error> {
        let parts = self.parts;
        let judge = self.judge;
        parts.data_wait.wait(
            timeout,
            || match self.try_pop(&mut read) {
                Ok(v) => Ok(Some(v)),
                Err(Error::Empty) => Ok(None),
                Err(e) => Err(e),
            },
            super::peer_of(&parts.producer.role, judge, Error::WriterGone),
        )
    }
}

impl<A> Drop for ProducerCore<'_, A> {
    /// Releases the role, marked closed, and wakes a waiting consumer ([`Error::Closed`]).
    fn drop(&mut self) {
        if self.role.release() {
            self.parts.data_wait.wake_all();
        }
    }
}

impl<A> Drop for ConsumerCore<'_, A> {
    /// Releases the role, marked closed, and wakes a producer waiting for space ([`Error::Closed`]).
    fn drop(&mut self) {
        if self.role.release() {
            self.parts.space_wait.wake_all();
        }
    }
}

/// The producer's handle: pushes samples. Dropping it releases the producer role.
pub struct Producer<'a, T: Shareable, const N: usize> {
    core: ProducerCore<'a, &'a SpscRing<T, N>>,
}

impl<'a, T: Shareable, const N: usize> Producer<'a, T, N> {
    /// Pushes one sample; [`Error::Full`] if there is no free slot.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), Error> {
        self.core.try_push(bytemuck::bytes_of(&value))
    }

    /// Pushes as many samples from the front of `values` as fit and publishes them with one release store;
    /// returns how many were pushed (0 when full).
    pub fn push_slice(&mut self, values: &[T]) -> Result<usize, Error> {
        self.core
            .push_packed(bytes_of_slice(values), values.len(), core::mem::size_of::<T>())
    }

    /// Pushes one sample, waiting for space up to `timeout` (`None`: no limit): spins briefly, then sleeps on
    /// a futex. Fails with [`Error::Timeout`], or [`Error::ReaderGone`] if the consumer role is held by a dead
    /// process.
    pub fn push_wait(&mut self, value: T, timeout: Option<Duration>) -> Result<(), Error> {
        self.core.push_wait(bytemuck::bytes_of(&value), timeout)
    }

    /// Reserves the next slot for in-place writing; nothing is visible to the consumer until
    /// [`WriteSlot::commit`]. [`Error::Full`] if there is no free slot.
    pub fn reserve(&mut self) -> Result<WriteSlot<'_, 'a, T, N>, Error> {
        if self.core.free(1)? == 0 {
            return Err(Error::Full);
        }
        Ok(WriteSlot { producer: self })
    }

    /// The number of samples pushed so far over the ring's life (the position of the next sample).
    pub fn position(&self) -> u64 {
        self.core.position()
    }

    /// The ring.
    pub fn ring(&self) -> &'a SpscRing<T, N> {
        self.core.ring()
    }
}

/// A reserved slot being filled in place. Dropping it without [`commit`](Self::commit) publishes nothing.
pub struct WriteSlot<'p, 'a, T: Shareable, const N: usize> {
    producer: &'p mut Producer<'a, T, N>,
}

impl<T: Shareable, const N: usize> WriteSlot<'_, '_, T, N> {
    /// The slot's bytes, to fill piecewise (e.g. a camera frame row by row).
    pub fn bytes(&mut self) -> SharedBytesMut<'_> {
        self.producer.core.slot_bytes(0)
    }

    /// Writes a whole sample into the slot.
    pub fn write(&mut self, value: &T) {
        self.producer.core.slot_bytes(0).store(0, bytemuck::bytes_of(value));
    }

    /// The slot's address, for filling it outside the Rust abstract machine (e.g. `read(2)` or DMA into it).
    ///
    /// Using it is `unsafe`: the memory is shared with another process, which is not trusted, so the caller
    /// must not create Rust references into it; writes through the pointer must be completed before
    /// [`commit`](Self::commit). The slot spans `size_of::<T>()` bytes (rounded up to a multiple of 8) and is
    /// aligned to 8 bytes on every target (not to `align_of::<T>()` when that is larger).
    #[cfg(not(all(loom, test)))]
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

/// The consumer's handle: pops samples. Dropping it releases the consumer role.
pub struct Consumer<'a, T: Shareable, const N: usize> {
    core: ConsumerCore<'a, &'a SpscRing<T, N>>,
}

impl<'a, T: Shareable, const N: usize> Consumer<'a, T, N> {
    /// Pops one sample; [`Error::Empty`] if there is none.
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, Error> {
        self.core.try_pop(load::<T>)
    }

    /// Pops as many samples as are available, up to `out.len()`, into the front of `out` and frees them with one
    /// release store; returns how many (0 when empty).
    pub fn pop_slice(&mut self, out: &mut [T]) -> Result<usize, Error> {
        let count = out.len();
        self.core
            .pop_packed(bytes_of_slice_mut(out), count, core::mem::size_of::<T>())
    }

    /// Pops one sample, waiting up to `timeout` (`None`: no limit): spins briefly, then sleeps on a futex.
    /// Fails with [`Error::Timeout`], or [`Error::WriterGone`] if the producer role is held by a dead process
    /// and the ring is empty.
    pub fn pop_wait(&mut self, timeout: Option<Duration>) -> Result<T, Error> {
        self.core.pop_wait(timeout, load::<T>)
    }

    /// Gives the oldest sample to `f` in place, as atomic bytes (nothing is copied unless `f` copies: a large
    /// sample can be processed piecewise with [`SharedBytes::load`] into a small buffer), then frees its slot and
    /// returns what `f` returned. [`Error::Empty`] if there is none.
    pub fn try_pop_with<R>(&mut self, f: impl FnOnce(SharedBytes<'_>) -> R) -> Result<R, Error> {
        self.core.try_pop(f)
    }

    /// [`pop_wait`](Self::pop_wait) for large samples: waits as `pop_wait` does, then gives the sample to `f` in
    /// place and frees its slot, as [`try_pop_with`](Self::try_pop_with) does. `f` runs once, on success.
    pub fn pop_wait_with<R>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(SharedBytes<'_>) -> R,
    ) -> Result<R, Error> {
        let mut f = Some(f);
        // The core's wait loop takes an `FnMut`; it calls it only for an available sample, and returns at once.
        self.core
            .pop_wait(timeout, |data| f.take().map(|f| f(data)))?
            .ok_or(Error::Empty)
    }

    /// Gives in-place access to the oldest sample without freeing its slot (until [`ReadSlot::release`]).
    /// [`Error::Empty`] if there is none.
    pub fn peek(&mut self) -> Result<ReadSlot<'_, 'a, T, N>, Error> {
        if self.core.available(1)? == 0 {
            return Err(Error::Empty);
        }
        Ok(ReadSlot { consumer: self })
    }

    /// The number of samples released so far over the ring's life (the position of the next sample).
    pub fn position(&self) -> u64 {
        self.core.position()
    }

    /// The ring.
    pub fn ring(&self) -> &'a SpscRing<T, N> {
        self.core.ring()
    }
}

/// The bytes of `values`, end to end (none for a zero-sized `T`, which bytemuck does not cast).
#[inline]
fn bytes_of_slice<T: Shareable>(values: &[T]) -> &[u8] {
    if core::mem::size_of::<T>() == 0 {
        return &[];
    }
    bytemuck::cast_slice(values)
}

/// See [`bytes_of_slice`].
#[inline]
fn bytes_of_slice_mut<T: Shareable>(values: &mut [T]) -> &mut [u8] {
    if core::mem::size_of::<T>() == 0 {
        return &mut [];
    }
    bytemuck::cast_slice_mut(values)
}

#[inline]
fn load<T: Shareable>(data: SharedBytes<'_>) -> T {
    let mut v = T::zeroed();
    data.load(0, bytemuck::bytes_of_mut(&mut v));
    v
}

/// In-place access to the oldest sample. Dropping it without [`release`](Self::release) leaves the sample in the
/// ring.
pub struct ReadSlot<'c, 'a, T: Shareable, const N: usize> {
    consumer: &'c mut Consumer<'a, T, N>,
}

impl<T: Shareable, const N: usize> ReadSlot<'_, '_, T, N> {
    /// The sample's bytes, to read piecewise (e.g. a region of a camera frame).
    pub fn bytes(&self) -> SharedBytes<'_> {
        self.consumer.core.slot_bytes(0)
    }

    /// Copies the whole sample out.
    pub fn read(&self) -> T {
        load::<T>(self.bytes())
    }

    /// Copies the whole sample into `out`.
    pub fn read_into(&self, out: &mut T) {
        self.bytes().load(0, bytemuck::bytes_of_mut(out));
    }

    /// The sample's position in the ring's history.
    pub fn position(&self) -> u64 {
        self.consumer.core.position()
    }

    /// Frees the slot for the producer.
    pub fn release(self) {
        self.consumer.core.release(1);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec::Vec;

    const P: liveness::Me = liveness::Me::fake(11);
    const C: liveness::Me = liveness::Me::fake(12);
    fn alive(_: u64) -> liveness::Liveness {
        liveness::Liveness::Alive
    }
    fn dead(_: u64) -> liveness::Liveness {
        liveness::Liveness::Dead
    }

    #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Sample {
        seq: u64,
        data: [u32; 3],
        check: u32,
    }
    impl Sample {
        fn new(seq: u64) -> Self {
            let data = [seq as u32 ^ 0xdead_beef, (seq >> 7) as u32, seq as u32 * 31];
            Self {
                seq,
                data,
                check: data[0] ^ data[1] ^ data[2] ^ seq as u32,
            }
        }
        fn ok(&self) -> bool {
            *self == Self::new(self.seq)
        }
    }

    #[test]
    fn push_pop_full_empty_and_fifo() {
        let ring = crate::buffer::zeroed_box::<SpscRing<Sample, 4>>();
        let mut p = ring.producer_with(&P, alive).unwrap();
        let mut c = ring.consumer_with(&C, alive).unwrap();
        assert_eq!(c.try_pop(), Err(Error::Empty));
        for i in 0..4 {
            p.try_push(Sample::new(i)).unwrap();
        }
        assert_eq!(p.try_push(Sample::new(9)), Err(Error::Full));
        assert_eq!(ring.len(), Some(4));
        for i in 0..4 {
            assert_eq!(c.try_pop().unwrap(), Sample::new(i));
        }
        assert_eq!(c.try_pop(), Err(Error::Empty));
        // Many laps.
        for i in 4..1000u64 {
            p.try_push(Sample::new(i)).unwrap();
            assert_eq!(c.try_pop().unwrap().seq, i);
        }
    }

    /// A sample too large to move through the stack comfortably is read in place, one word at a time.
    #[test]
    fn large_samples_are_read_in_place() {
        type Big = [u64; 1024];
        fn sum(b: SharedBytes<'_>) -> u64 {
            (0..b.len() / 8)
                .map(|i| {
                    let mut w = [0u8; 8];
                    b.load(i * 8, &mut w);
                    u64::from_ne_bytes(w)
                })
                .sum()
        }
        let ring = crate::buffer::zeroed_box::<SpscRing<Big, 2>>();
        let mut p = ring.producer_with(&P, alive).unwrap();
        let mut c = ring.consumer_with(&C, alive).unwrap();
        assert_eq!(c.try_pop_with(sum), Err(Error::Empty));
        for s in 0..2u64 {
            let mut w = p.reserve().unwrap();
            for i in 0..1024u64 {
                w.bytes().store(i as usize * 8, &(s * 10_000 + i).to_ne_bytes());
            }
            w.commit();
        }
        assert_eq!(p.reserve().err(), Some(Error::Full));
        assert_eq!(c.try_pop_with(sum), Ok((0..1024).sum()));
        assert_eq!(c.pop_wait_with(None, sum), Ok((0..1024).map(|i| 10_000 + i).sum()));
        assert_eq!(c.try_pop_with(sum), Err(Error::Empty));
        // Both slots were freed.
        assert!(p.reserve().is_ok());
        assert_eq!(c.position(), 2);
    }

    #[test]
    fn init_in_place_on_the_stack() {
        let mut place = core::mem::MaybeUninit::<SpscRing<[u8; 5], 4>>::uninit();
        let ring = SpscRing::init(&mut place);
        let mut p = ring.producer_with(&P, alive).unwrap();
        let mut c = ring.consumer_with(&C, alive).unwrap();
        p.try_push(*b"hello").unwrap();
        assert_eq!(c.try_pop(), Ok(*b"hello"));
        assert_eq!(c.try_pop(), Err(Error::Empty));
    }

    #[test]
    fn slices_and_in_place() {
        let ring = crate::buffer::zeroed_box::<SpscRing<Sample, 8>>();
        let mut p = ring.producer_with(&P, alive).unwrap();
        let mut c = ring.consumer_with(&C, alive).unwrap();
        let v: Vec<Sample> = (0..11).map(Sample::new).collect();
        assert_eq!(p.push_slice(&v).unwrap(), 8);
        assert_eq!(p.push_slice(&v[8..]).unwrap(), 0);
        let mut out = [Sample::new(0); 5];
        assert_eq!(c.pop_slice(&mut out).unwrap(), 5);
        assert_eq!(&out[..], &v[..5]);
        assert_eq!(p.push_slice(&v[8..]).unwrap(), 3);
        // Reserve / commit, and an abandoned reservation.
        let r = c.peek().unwrap();
        assert_eq!(r.read(), v[5]);
        assert_eq!(r.position(), 5);
        let _ = r; // dropped without release
        assert_eq!(c.peek().unwrap().read(), v[5]);
        let r = c.peek().unwrap();
        let mut seq = [0u8; 8];
        r.bytes().load(0, &mut seq);
        assert_eq!(u64::from_ne_bytes(seq), 5);
        r.release();
        {
            let mut w = p.reserve().unwrap();
            assert_eq!(w.position(), 11);
            w.write(&Sample::new(11));
            w.bytes().store(0, &100u64.to_ne_bytes());
            // dropped: not committed
        }
        let mut w = p.reserve().unwrap();
        w.write(&Sample::new(11));
        w.commit();
        let mut out = [Sample::new(0); 8];
        assert_eq!(c.pop_slice(&mut out).unwrap(), 6);
        assert_eq!(&out[..6], &(6..12).map(Sample::new).collect::<Vec<_>>()[..]);
    }

    /// Batches across the end of the slot array, for samples that fill their slots (copied a run at a time),
    /// samples whose slots carry rounding (copied one at a time) and zero-sized samples.
    #[test]
    fn slices_wrap_around_for_every_slot_shape() {
        fn wrap<T: Shareable + PartialEq + core::fmt::Debug>(make: impl Fn(u64) -> T) {
            let ring = crate::buffer::zeroed_box::<SpscRing<T, 8>>();
            let mut p = ring.producer_with(&P, alive).unwrap();
            let mut c = ring.consumer_with(&C, alive).unwrap();
            let (mut sent, mut got) = (0u64, 0u64);
            for batch in [5, 7, 8, 3, 1, 8, 6] {
                let values: Vec<T> = (sent..sent + batch).map(&make).collect();
                sent += p.push_slice(&values).unwrap() as u64;
                let mut out: Vec<T> = (0..5).map(|_| make(999)).collect();
                let n = c.pop_slice(&mut out).unwrap();
                for v in &out[..n] {
                    assert_eq!(*v, make(got));
                    got += 1;
                }
                assert!(
                    out[n..].iter().all(|v| *v == make(999)),
                    "wrote past the samples popped"
                );
            }
            assert_eq!(ring.positions(), (got, sent));
            assert!(got > 8 && sent > 8, "the batches wrapped");
        }
        wrap(|i| i);
        wrap(|i| [i as u32, !(i as u32)]);
        wrap(|i| [i as u8, (i >> 8) as u8, 7, 1, 2]);
        wrap(Sample::new);
        wrap(|_| ());
    }

    #[test]
    fn roles_are_exclusive_and_released_and_taken_over() {
        let ring = crate::buffer::zeroed_box::<SpscRing<u64, 2>>();
        let p = ring.producer_with(&P, alive).unwrap();
        assert!(matches!(
            ring.producer_with(&C, alive).err(),
            Some(Error::RoleTaken { .. })
        ));
        assert_eq!(ring.producer.role.holder_judged(alive).map(|h| h.own_pid), Some(11));
        drop(p);
        assert_eq!(ring.producer.role.holder_judged(alive), None);
        let mut p = ring.producer_with(&P, alive).unwrap();
        p.try_push(7).unwrap();
        // P "dies" holding the role: C takes over and continues at the shared position.
        core::mem::forget(p);
        let mut p2 = ring.producer_with(&C, dead).unwrap();
        assert_eq!(p2.position(), 1);
        p2.try_push(8).unwrap();
        let mut c = ring.consumer_with(&C, alive).unwrap();
        assert_eq!(c.try_pop(), Ok(7));
        assert_eq!(c.try_pop(), Ok(8));
    }

    #[test]
    fn corrupt_positions_are_errors() {
        let ring = crate::buffer::zeroed_box::<SpscRing<u64, 4>>();
        let mut p = ring.producer_with(&P, alive).unwrap();
        let mut c = ring.consumer_with(&C, alive).unwrap();
        for i in 0..4 {
            p.try_push(i).unwrap();
        }
        // Hostile consumer moves head past tail.
        ring.consumer.pos.store(100, Ordering::Relaxed);
        assert_eq!(p.try_push(1), Err(Error::Corrupt { head: 100, tail: 4 }));
        assert_eq!(p.push_slice(&[1, 2]), Err(Error::Corrupt { head: 100, tail: 4 }));
        // Hostile producer claims more than N samples.
        for _ in 0..4 {
            c.try_pop().unwrap();
        }
        ring.producer.pos.store(9, Ordering::Relaxed);
        assert_eq!(c.try_pop(), Err(Error::Corrupt { head: 4, tail: 9 }));
        ring.producer.pos.store(5, Ordering::Relaxed);
        assert!(c.try_pop().is_ok(), "one (garbage but valid) sample");
        ring.producer.pos.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(
            c.try_pop(),
            Err(Error::Corrupt {
                head: 5,
                tail: u64::MAX
            })
        );
        assert_eq!(
            c.peek().err(),
            Some(Error::Corrupt {
                head: 5,
                tail: u64::MAX
            })
        );
        drop(p);
        assert_eq!(
            ring.producer_with(&P, alive).err(),
            Some(Error::Corrupt {
                head: 5,
                tail: u64::MAX
            })
        );
    }

    #[test]
    fn two_threads_keep_order() {
        let ring = crate::buffer::zeroed_box::<SpscRing<Sample, 16>>();
        let n: u64 = if cfg!(miri) { 200 } else { 200_000 };
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut p = ring.producer_with(&P, alive).unwrap();
                let mut i = 0;
                while i < n {
                    if i % 3 == 0 {
                        let batch: Vec<Sample> = (i..(i + 5).min(n)).map(Sample::new).collect();
                        i += p.push_slice(&batch).unwrap() as u64;
                    } else if p.try_push(Sample::new(i)).is_ok() {
                        i += 1;
                    }
                }
            });
            s.spawn(|| {
                let mut c = ring.consumer_with(&C, alive).unwrap();
                let mut i = 0;
                let mut buf = [Sample::new(0); 4];
                while i < n {
                    let got = c.pop_slice(&mut buf).unwrap();
                    for s in &buf[..got] {
                        assert!(s.ok());
                        assert_eq!(s.seq, i);
                        i += 1;
                    }
                }
            });
        });
    }

    #[test]
    #[cfg_attr(miri, ignore = "futex and clock syscalls")]
    fn blocking_waits_between_threads() {
        let ring = crate::buffer::zeroed_box::<SpscRing<Sample, 2>>();
        let n = 5_000u64;
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut p = ring.producer_with(&P, alive).unwrap();
                for i in 0..n {
                    p.push_wait(Sample::new(i), Some(Duration::from_secs(10))).unwrap();
                    if i % 1000 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            });
            s.spawn(|| {
                let mut c = ring.consumer_with(&C, alive).unwrap();
                for i in 0..n {
                    let v = c.pop_wait(Some(Duration::from_secs(10))).unwrap();
                    assert_eq!(v.seq, i);
                    if i % 1500 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                // Timeout while the producer thread still holds its role, Closed once it has dropped it.
                let end = c.pop_wait(Some(Duration::from_millis(5)));
                assert!(matches!(end, Err(Error::Timeout | Error::Closed)), "{end:?}");
            });
        });
    }

    #[test]
    #[cfg_attr(miri, ignore = "futex and clock syscalls")]
    fn waiting_on_a_dead_producer_reports_writer_gone() {
        let ring = crate::buffer::zeroed_box::<SpscRing<u64, 2>>();
        let p = ring.producer_with(&P, alive).unwrap();
        core::mem::forget(p);
        let mut c = ring.consumer_with(&C, dead).unwrap();
        assert_eq!(c.pop_wait(Some(Duration::from_secs(5))), Err(Error::WriterGone));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::thread;
    use std::boxed::Box;

    const P: liveness::Me = liveness::Me::fake(11);
    const C: liveness::Me = liveness::Me::fake(12);

    fn ring() -> &'static SpscRing<u64, 2> {
        Box::leak(Box::new(SpscRing::new()))
    }

    #[test]
    fn loom_ring_fifo_across_wrap_with_batches() {
        crate::buffer::loom_model(|| {
            let ring = ring();
            let mut p = ring.producer_with(&P, |_| liveness::Liveness::Alive).unwrap();
            let mut c = ring.consumer_with(&C, |_| liveness::Liveness::Alive).unwrap();
            let t = thread::spawn(move || {
                let mut sent = 0u64;
                while sent < 3 {
                    if sent == 1 {
                        sent += p.push_slice(&[11, 12]).unwrap() as u64;
                    } else if p.try_push(10 + sent).is_ok() {
                        sent += 1;
                    }
                    if sent < 3 {
                        thread::yield_now();
                    }
                }
            });
            let mut next = 0u64;
            while next < 3 {
                match c.try_pop() {
                    Ok(v) => {
                        assert_eq!(v, 10 + next);
                        next += 1;
                    }
                    Err(Error::Empty) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_ring_blocking_pop_never_loses_a_wakeup() {
        crate::buffer::loom_model(|| {
            let ring = ring();
            let mut p = ring.producer_with(&P, |_| liveness::Liveness::Alive).unwrap();
            let mut c = ring.consumer_with(&C, |_| liveness::Liveness::Alive).unwrap();
            let t = thread::spawn(move || {
                p.try_push(1).unwrap();
                p.try_push(2).unwrap();
            });
            assert_eq!(c.pop_wait(None), Ok(1));
            assert_eq!(c.pop_wait(None), Ok(2));
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_ring_blocking_push_never_loses_a_wakeup() {
        crate::buffer::loom_model(|| {
            let ring: &'static SpscRing<u64, 1> = Box::leak(Box::new(SpscRing::new()));
            let mut p = ring.producer_with(&P, |_| liveness::Liveness::Alive).unwrap();
            let mut c = ring.consumer_with(&C, |_| liveness::Liveness::Alive).unwrap();
            p.try_push(1).unwrap();
            let t = thread::spawn(move || {
                p.push_wait(2, None).unwrap();
            });
            loop {
                match c.try_pop() {
                    Ok(v) => {
                        assert_eq!(v, 1);
                        break;
                    }
                    Err(_) => thread::yield_now(),
                }
            }
            t.join().unwrap();
            assert_eq!(c.try_pop(), Ok(2));
        });
    }
}
