//! A broadcast ring: one writer, any number of readers joining and leaving at any time, in any process; the
//! writer overwrites the oldest sample and never waits.
//!
//! # Algorithm
//!
//! A free-running `u64` `tail` (samples published) and `N` slots (`N` a power of two), each a per-slot sequence
//! word next to the data (a seqlock per slot, the Vyukov/crossbeam stamp): `seq == 2(p + 1)` when the slot holds
//! complete sample `p`, `2p + 1` while sample `p` is being written, 0 never written.
//!
//! Writer, sample `p` in slot `p & (N - 1)`: `seq.store(2p + 1, Relaxed)`; `fence(Release)`; `Relaxed` word
//! stores; `seq.store(2p + 2, Release)`; then `tail.store(p + 1, Release)` (once for a batch).
//!
//! Reader with private cursor `c` (readers keep all their state in the process-local handle and never store to
//! shared memory): `t = tail.load(Acquire)`; if `c == t`, nothing new; if `t - c > N`, sample `c` is gone; else
//! `s0 = seq.load(Acquire)` must equal `2(c + 1)`; `Relaxed` word loads; `fence(Acquire)`; `seq.load(Relaxed)`
//! must still be `s0` (a later write to the slot first moves `seq` and then, after a release fence, the data, so
//! a copy that saw any new data sees the new `seq`). A slot whose `seq` moved beyond `2(c + 1)` was overwritten:
//! the reader is lapped. It then re-reads `tail` and moves its cursor to the oldest sample that is still safe to
//! read, `max(c + 1, tail + 1 - N)` (the writer may already be overwriting the slot of `tail - N`), and reports
//! [`Error::Lagged`] with exactly the number of samples it skipped. Every position is thus either delivered or
//! counted in one `Lagged`.
//!
//! A writer killed in the middle of a sample leaves that slot's `seq` odd and `tail` unchanged: readers never
//! read it as sample `tail`, readers still on the sample it overwrote are lapped, and a new writer carries on from
//! `tail`. A per-slot `seq` below `2(c + 1)` for a published `c`, or a cursor beyond `tail`, is
//! [`Error::Corrupt`].
//!
//! Stamps are `u64`, so `2(p + 1)` is the same for `p` and `p + 2^63`: a peer that flips the top bit of `tail`
//! would otherwise make readers accept real, old samples under positions that never held them. Positions are
//! therefore bounded by [`POSITION_LIMIT`] (`2^62`, 146 years of samples at 1 GHz), below which every position
//! has its own stamps; a `tail` beyond it is [`Error::Corrupt`] for readers and refused by a new writer, and no
//! sample is ever returned under a position it was not written at.
//!
//! # Typed and runtime-sized rings
//!
//! The algorithm is written once, in [`WriterCore`] and [`ReaderCore`], against [`RingAccess`]: the ring's
//! control lines and a way to find slot `p`. A typed [`BroadcastRing<T, N>`] gives constant sizes, so the handles
//! compile to the code a hand-typed ring would have; a [`BroadcastView`] gives sizes from a [`BroadcastLayout`]
//! known only at run time (a C peer's element size and capacity). Both see the same bytes: a view with the layout
//! of `BroadcastRing<T, N>` and an object created for that ring are the same object, down to the header's
//! fingerprint (see [`BroadcastLayout`]).

use core::time::Duration;

use super::atomic_copy::{SharedBytes, SharedBytesMut, SlotCell};
use super::sync::{AtomicU64, Ordering, Word, fence};
use super::wait::{Notifier, WaitCell};
use super::{CachePadded, Error};
use crate::Shareable;
use crate::liveness::{self, Holder, Judge, Role, RoleGuard};

/// The object kind of a broadcast ring, typed or runtime-sized (part of the header fingerprint).
pub(crate) const KIND: &str = "broadcast-ring";

/// Positions (and `tail`) of a broadcast ring never exceed this: `2^62`, more samples than any writer publishes
/// (146 years at 1 GHz). Below it the slot stamps `2p + 1` and `2(p + 1)` of different positions differ, so a
/// larger `tail` can only come from a buggy or hostile peer and reads as [`Error::Corrupt`].
pub const POSITION_LIMIT: u64 = 1 << 62;

#[repr(C)]
struct Slot<T> {
    seq: AtomicU64,
    data: SlotCell<T>,
}

#[repr(C)]
pub(crate) struct WriterSide {
    tail: AtomicU64,
    role: Role,
}

/// A broadcast ring of `N` samples (`N` a power of two) in shared memory.
///
/// All-zero is the empty ring with no writer.
#[repr(C)]
pub struct BroadcastRing<T, const N: usize> {
    writer: CachePadded<WriterSide>,
    wait: CachePadded<WaitCell>,
    slots: [Slot<T>; N],
}

/// The control lines every broadcast ring starts with (a ring of no slots: the same `repr(C)` prefix).
pub(crate) type RingHead = BroadcastRing<u64, 0>;

// SAFETY: all-zero is the empty ring (tail 0, no writer, slots never written); every field is an atomic or a
// `SlotCell` accessed only through atomic words; `repr(C)` of fixed-width atomics and 8-byte-aligned slots,
// padded on every target; every value read from shared memory is validated and no reader operation loops.
#[cfg(not(all(loom, test)))]
unsafe impl<T: Shareable, const N: usize> crate::object::SharedState for BroadcastRing<T, N> {
    const KIND: &'static str = KIND;
    const CAPACITY: u64 = N as u64;
    const ELEMENT_SIZE: u64 = core::mem::size_of::<T>() as u64;
}

/// Where things are in a broadcast ring, for any element type and capacity: the runtime-sized
/// [`BroadcastLayout`](super::BroadcastLayout) and the read-only [`inspect`](super::inspect) both place bytes with
/// these. Slots are 8-byte aligned whatever `T` (payload alignment at most 8), so these
/// do not depend on the type parameters.
#[cfg(not(all(loom, test)))]
pub(super) mod layout {
    use super::*;
    use core::mem::offset_of;
    type Any = BroadcastRing<u64, 1>;
    /// Offset of `tail`.
    pub(in crate::buffer) const TAIL: usize = offset_of!(Any, writer) + offset_of!(WriterSide, tail);
    /// Offset of the writer's role.
    pub(in crate::buffer) const ROLE: usize = offset_of!(Any, writer) + offset_of!(WriterSide, role);
    /// Offset of slot 0.
    pub(in crate::buffer) const SLOTS: usize = offset_of!(Any, slots);
    /// Offset of a slot's sequence word and of its data.
    pub(in crate::buffer) const SLOT_SEQ: usize = offset_of!(Slot<u64>, seq);
    /// See [`SLOT_SEQ`].
    pub(in crate::buffer) const SLOT_DATA: usize = offset_of!(Slot<u64>, data);
    /// The size of a ring of `capacity` slots of `data_size` bytes (rounded up to 8); `None` on overflow.
    pub(in crate::buffer) const fn size(capacity: usize, data_size: usize) -> Option<usize> {
        match capacity.checked_mul(SLOT_DATA + data_size) {
            Some(slots) => match SLOTS.checked_add(slots) {
                Some(end) => end.checked_next_multiple_of(128),
                None => None,
            },
            None => None,
        }
    }
    const _: () = assert!(offset_of!(BroadcastRing<[u8; 40], 4>, slots) == SLOTS);
    const _: () = assert!(core::mem::size_of::<RingHead>() == SLOTS);
    const _: () = assert!(matches!(size(8, 48), Some(s) if s == core::mem::size_of::<BroadcastRing<[u8; 41], 8>>()));
    const _: () = assert!(core::mem::size_of::<Slot<[u8; 41]>>() == SLOT_DATA + 48);
}

impl<T, const N: usize> BroadcastRing<T, N> {
    /// The writer line and the wait line (for any `N`, including the slot-less [`RingHead`]).
    #[inline]
    pub(crate) fn head_parts(&self) -> (&WriterSide, &WaitCell) {
        (&self.writer, &self.wait)
    }
}

/// What the broadcast algorithm needs from a ring: its control lines and where slot `p` is.
pub(crate) trait RingAccess<'a>: Copy {
    /// The writer line and the wait line.
    fn head(self) -> (&'a WriterSide, &'a WaitCell);
    /// The number of slots (a power of two).
    fn capacity(self) -> u64;
    /// Slot `pos & (capacity - 1)`: its sequence word, its data words and the sample size in bytes.
    fn slot(self, pos: u64) -> (&'a AtomicU64, &'a [Word], usize);

    #[inline]
    fn tail(self) -> u64 {
        self.head().0.tail.load(Ordering::Acquire)
    }

    /// The tail, or [`Error::Corrupt`] if it is beyond [`POSITION_LIMIT`].
    #[inline]
    fn valid_tail(self) -> Result<u64, Error> {
        let t = self.tail();
        if t > POSITION_LIMIT {
            return Err(Error::Corrupt { head: t, tail: t });
        }
        Ok(t)
    }

    fn writer_holder(self) -> Option<Holder> {
        self.head().0.role.holder()
    }
}

impl<'a, T: Shareable, const N: usize> RingAccess<'a> for &'a BroadcastRing<T, N> {
    #[inline]
    fn head(self) -> (&'a WriterSide, &'a WaitCell) {
        self.head_parts()
    }

    #[inline]
    fn capacity(self) -> u64 {
        BroadcastRing::<T, N>::CAP
    }

    #[inline]
    fn slot(self, pos: u64) -> (&'a AtomicU64, &'a [Word], usize) {
        let slot = &self.slots[(pos & BroadcastRing::<T, N>::MASK) as usize];
        (&slot.seq, slot.data.words(), core::mem::size_of::<T>())
    }
}

impl<T: Shareable, const N: usize> BroadcastRing<T, N> {
    /// Offsets of the shared words, for the layout report ([`crate::object::layout`]).
    #[cfg(not(all(loom, test)))]
    pub(crate) fn layout_fields() -> [(&'static str, usize); 7] {
        use core::mem::{offset_of, size_of};
        let slots = offset_of!(Self, slots);
        [
            ("tail", offset_of!(Self, writer.0.tail)),
            ("role", offset_of!(Self, writer.0.role)),
            ("wait", offset_of!(Self, wait)),
            ("slot0.seq", slots + offset_of!(Slot<T>, seq)),
            ("slot0.data", slots + offset_of!(Slot<T>, data)),
            ("slot1.seq", slots + size_of::<Slot<T>>() + offset_of!(Slot<T>, seq)),
            ("slot1.data", slots + size_of::<Slot<T>>() + offset_of!(Slot<T>, data)),
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
            writer: CachePadded(WriterSide {
                tail: AtomicU64::new(0),
                role: Role::new(),
            }),
            wait: CachePadded(WaitCell::new()),
            slots: core::array::from_fn(|_| Slot {
                seq: AtomicU64::new(0),
                data: SlotCell::new(),
            }),
        }
    }

    /// The number of samples the ring retains.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Claims the writer role for the calling process ([`Error::RoleTaken`] if a live process holds it; a dead
    /// holder's role is taken over; [`Error::Corrupt`] if the shared `tail` is beyond [`POSITION_LIMIT`]).
    pub fn writer(&self) -> Result<BroadcastWriter<'_, T, N>, Error> {
        self.writer_with(&liveness::current().map_err(Error::Liveness)?, liveness::judge)
    }

    pub(crate) fn writer_with(&self, me: &liveness::Me, judge: Judge) -> Result<BroadcastWriter<'_, T, N>, Error> {
        WriterCore::claim(self, me, judge).map(|core| BroadcastWriter { core })
    }

    /// The process holding the writer role, if any, judged now.
    pub fn writer_holder(&self) -> Option<Holder> {
        RingAccess::writer_holder(self)
    }

    /// The number of samples published so far (the position of the next one), as found in shared memory (see
    /// [`POSITION_LIMIT`] for values that cannot be real).
    pub fn tail(&self) -> u64 {
        RingAccess::tail(self)
    }

    /// The tail, or [`Error::Corrupt`] if it is beyond [`POSITION_LIMIT`].
    pub(crate) fn valid_tail(&self) -> Result<u64, Error> {
        RingAccess::valid_tail(self)
    }

    /// A reader that will receive the samples published from now on.
    pub fn reader(&self) -> BroadcastReader<'_, T, N> {
        self.reader_at(self.tail())
    }

    /// A reader that starts at the oldest sample still in the ring.
    pub fn reader_from_oldest(&self) -> BroadcastReader<'_, T, N> {
        BroadcastReader {
            core: ReaderCore::from_oldest(self),
        }
    }

    /// A reader whose cursor is at `position`.
    pub fn reader_at(&self, position: u64) -> BroadcastReader<'_, T, N> {
        BroadcastReader {
            core: ReaderCore::at(self, position),
        }
    }

    #[cfg(test)]
    fn slot(&self, pos: u64) -> &Slot<T> {
        &self.slots[(pos & Self::MASK) as usize]
    }
}

/// The writer side of the algorithm, for any [`RingAccess`].
pub(crate) struct WriterCore<'a, A> {
    ring: A,
    /// Our own position (authoritative).
    tail: u64,
    role: RoleGuard<'a>,
    /// The ring's wait line, woken when the role is released.
    wait: &'a WaitCell,
    /// How this process wakes waiters (see the wait module).
    notifier: Notifier,
}

impl<'a, A: RingAccess<'a>> WriterCore<'a, A> {
    /// The number of samples published so far (the position of the next one).
    pub(crate) fn position(&self) -> u64 {
        self.tail
    }

    /// The ring.
    pub(crate) fn ring(&self) -> &A {
        &self.ring
    }

    pub(crate) fn claim(ring: A, me: &liveness::Me, judge: Judge) -> Result<Self, Error> {
        let tail = ring.valid_tail()?;
        let role = ring.head().0.role.claim_as(me, judge)?;
        // Re-read under the role: the previous holder may have published in between.
        let tail = ring.valid_tail().unwrap_or(tail);
        Ok(Self {
            ring,
            tail,
            role,
            wait: ring.head().1,
            notifier: ring.head().1.notifier(),
        })
    }

    #[inline]
    fn write_slot(&self, pos: u64, value: &[u8]) {
        let (seq, words, len) = self.ring.slot(pos);
        seq.store(pos.wrapping_mul(2).wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        SharedBytesMut::from_words(words, len).store(0, value);
        seq.store(pos.wrapping_add(1).wrapping_mul(2), Ordering::Release);
    }

    #[inline]
    fn publish(&mut self, n: u64) {
        self.tail = self.tail.wrapping_add(n);
        let (writer, wait) = self.ring.head();
        writer.tail.store(self.tail, Ordering::Release);
        wait.notify(&mut self.notifier);
    }

    #[inline]
    pub(crate) fn publish_one(&mut self, value: &[u8]) -> u64 {
        let p = self.tail;
        self.write_slot(p, value);
        self.publish(1);
        p
    }

    pub(crate) fn publish_all<'v>(&mut self, values: impl ExactSizeIterator<Item = &'v [u8]>) -> u64 {
        let first = self.tail;
        let n = values.len() as u64;
        for (i, v) in values.enumerate() {
            self.write_slot(first.wrapping_add(i as u64), v);
        }
        if n > 0 {
            self.publish(n);
        }
        first
    }
}

impl<A> Drop for WriterCore<'_, A> {
    /// Releases the role, marked closed, and wakes every waiting reader ([`Error::Closed`]).
    fn drop(&mut self) {
        if self.role.release() {
            self.wait.wake_all();
        }
    }
}

/// The reader side of the algorithm, for any [`RingAccess`]: a private cursor; it never writes to shared memory.
#[derive(Clone)]
pub(crate) struct ReaderCore<A> {
    ring: A,
    cursor: u64,
    judge: Judge,
}

impl<'a, A: RingAccess<'a>> ReaderCore<A> {
    /// The position of the next sample to receive.
    pub(crate) fn position(&self) -> u64 {
        self.cursor
    }

    /// The ring.
    pub(crate) fn ring(&self) -> &A {
        &self.ring
    }

    pub(crate) fn at(ring: A, cursor: u64) -> Self {
        Self {
            ring,
            cursor,
            judge: liveness::judge,
        }
    }

    pub(crate) fn from_oldest(ring: A) -> Self {
        let cursor = ring.tail().saturating_sub(ring.capacity() - 1);
        Self::at(ring, cursor)
    }

    /// Moves the cursor past the samples that were lost, returning `Lagged(n)`, or [`Error::Corrupt`] (cursor
    /// unchanged) if the tail is now beyond [`POSITION_LIMIT`]. (A slot stamp beyond the tail is no sign of
    /// corruption: a batch is written before its one tail store.)
    fn lapped(&mut self) -> Error {
        let c = self.cursor;
        let t = match self.ring.valid_tail() {
            Ok(t) => t,
            Err(_) => {
                return Error::Corrupt {
                    head: c,
                    tail: self.ring.tail(),
                };
            }
        };
        let oldest = (t + 1).saturating_sub(self.ring.capacity());
        let next = oldest.max(c + 1);
        self.cursor = next;
        Error::Lagged(next - c)
    }

    /// Reads the slot at the cursor with `read`, between the two checks of its sequence (seqlock style: the
    /// sequence must be the complete mark for this position before, and unchanged after), and advances.
    #[inline]
    pub(crate) fn recv_validated<R>(&mut self, read: impl FnOnce(SharedBytes<'a>) -> R) -> Result<(R, u64), Error> {
        let c = self.cursor;
        let t = self.ring.tail();
        // Both bounded by POSITION_LIMIT: no arithmetic below can wrap, and each stamp names one position.
        if t > POSITION_LIMIT || c > t {
            return Err(Error::Corrupt { head: c, tail: t });
        }
        if t == c {
            return Err(Error::Empty);
        }
        if t - c > self.ring.capacity() {
            return Err(self.lapped());
        }
        let (seq, words, len) = self.ring.slot(c);
        let expected = 2 * (c + 1);
        let s0 = seq.load(Ordering::Acquire);
        if s0 != expected {
            return Err(if s0 > expected {
                self.lapped()
            } else {
                Error::Corrupt { head: c, tail: s0 }
            });
        }
        let r = read(SharedBytes::from_words(words, len));
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) != s0 {
            return Err(self.lapped());
        }
        self.cursor = c + 1;
        Ok((r, c))
    }

    /// Receives with `read` (see [`recv_validated`](Self::recv_validated)), waiting up to `timeout`.
    pub(crate) fn recv_wait<R>(
        &mut self,
        timeout: Option<Duration>,
        mut read: impl FnMut(SharedBytes<'a>) -> R,
    ) -> Result<(R, u64), Error> {
        let ring = self.ring;
        let judge = self.judge;
        ring.head().1.wait(
            timeout,
            || match self.recv_validated(&mut read) {
                Ok(r) => Ok(Some(r)),
                Err(Error::Empty) => Ok(None),
                Err(e) => Err(e),
            },
            super::peer_of(&ring.head().0.role, judge, Error::WriterGone),
        )
    }

    pub(crate) fn skip_to_latest(&mut self) -> u64 {
        let Ok(t) = self.ring.valid_tail() else {
            return 0;
        };
        let n = t.saturating_sub(self.cursor);
        self.cursor = t;
        n
    }
}

/// The writer's handle. Dropping it releases the writer role.
pub struct BroadcastWriter<'a, T: Shareable, const N: usize> {
    core: WriterCore<'a, &'a BroadcastRing<T, N>>,
}

impl<'a, T: Shareable, const N: usize> BroadcastWriter<'a, T, N> {
    /// Publishes one sample (overwriting the oldest); returns its position. Never waits.
    #[inline]
    pub fn publish_one(&mut self, value: &T) -> u64 {
        self.core.publish_one(bytemuck::bytes_of(value))
    }

    /// Publishes all of `values` with one store of the tail; returns the position of the first. Only the last
    /// `N` are retained if `values` is longer than the ring.
    pub fn publish_slice(&mut self, values: &[T]) -> u64 {
        self.core.publish_all(values.iter().map(bytemuck::bytes_of))
    }

    /// The number of samples published so far (the position of the next one).
    pub fn position(&self) -> u64 {
        self.core.tail
    }

    /// The ring.
    pub fn ring(&self) -> &'a BroadcastRing<T, N> {
        self.core.ring
    }
}

/// A reader's handle: a private cursor; it never writes to shared memory. Any number may exist, in any process.
#[derive(Clone)]
pub struct BroadcastReader<'a, T: Shareable, const N: usize> {
    core: ReaderCore<&'a BroadcastRing<T, N>>,
}

impl<'a, T: Shareable, const N: usize> BroadcastReader<'a, T, N> {
    /// Copies the sample at the cursor into `out` and advances; returns its position. [`Error::Empty`] if no new
    /// sample, [`Error::Lagged`] if the reader was lapped (the cursor has then been moved on; call again).
    #[inline]
    pub fn try_recv_into(&mut self, out: &mut T) -> Result<u64, Error> {
        self.core
            .recv_validated(|data| data.load(0, bytemuck::bytes_of_mut(out)))
            .map(|((), position)| position)
    }

    /// Receives the sample at the cursor and its position (see [`try_recv_into`](Self::try_recv_into)).
    #[inline]
    pub fn try_recv(&mut self) -> Result<(T, u64), Error> {
        let mut v = T::zeroed();
        let p = self.try_recv_into(&mut v)?;
        Ok((v, p))
    }

    /// Gives the sample at the cursor to `f` as atomic bytes (no copy of the whole sample), then validates it:
    /// the result of `f` is returned only if the sample was not overwritten while `f` ran (otherwise
    /// [`Error::Lagged`]: discard whatever `f` computed). Advances the cursor on success.
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(SharedBytes<'_>) -> R) -> Result<(R, u64), Error> {
        self.core.recv_validated(f)
    }

    /// Receives the next sample, waiting up to `timeout` (`None`: no limit). Fails with [`Error::Lagged`] (the
    /// cursor has moved on), [`Error::Timeout`], or [`Error::WriterGone`] if the writer role is held by a dead
    /// process.
    ///
    /// A reader that goes to sleep here counts itself in the ring's waiter count (on its own line) so that the
    /// writer knows to wake it; that is the only shared-memory write a reader ever makes.
    pub fn recv_wait(&mut self, timeout: Option<Duration>) -> Result<(T, u64), Error> {
        self.core.recv_wait(timeout, |data| {
            let mut v = T::zeroed();
            data.load(0, bytemuck::bytes_of_mut(&mut v));
            v
        })
    }

    /// [`recv_wait`](Self::recv_wait) for large samples: waits as `recv_wait` does, then gives the sample to `f` in
    /// place and validates it afterwards, as [`try_recv_with`](Self::try_recv_with) does ([`Error::Lagged`] if it
    /// was overwritten while `f` ran: discard whatever `f` computed).
    pub fn recv_wait_with<R>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnMut(SharedBytes<'_>) -> R,
    ) -> Result<(R, u64), Error> {
        self.core.recv_wait(timeout, f)
    }

    /// The position of the next sample this reader will receive.
    pub fn position(&self) -> u64 {
        self.core.cursor
    }

    /// Skips everything published so far; returns how many samples were skipped. A cursor ahead of the tail
    /// moves back to it: a reader that got [`Error::Corrupt`] because a peer moved the tail far ahead and back
    /// (its cursor followed the far tail as [`Error::Lagged`]) resynchronises with this. A `tail` beyond
    /// [`POSITION_LIMIT`] (corrupt) leaves the cursor where it is (the next receive reports it).
    pub fn skip_to_latest(&mut self) -> u64 {
        self.core.skip_to_latest()
    }

    /// The ring.
    pub fn ring(&self) -> &'a BroadcastRing<T, N> {
        self.core.ring
    }

    #[cfg(test)]
    pub(crate) fn with_liveness(mut self, judge: Judge) -> Self {
        self.core.judge = judge;
        self
    }
}
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec::Vec;

    const W: liveness::Me = liveness::Me::fake(31);

    #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct S {
        n: u64,
        a: u64,
        b: u64,
    }
    fn s(n: u64) -> S {
        S {
            n,
            a: !n,
            b: n.rotate_left(17),
        }
    }
    fn ok(v: &S) -> bool {
        *v == s(v.n)
    }

    #[test]
    fn receives_in_order_then_empty() {
        let ring = crate::buffer::zeroed_box::<BroadcastRing<S, 4>>();
        let mut r = ring.reader();
        assert_eq!(r.try_recv(), Err(Error::Empty));
        let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        assert_eq!(w.publish_one(&s(0)), 0);
        assert_eq!(w.publish_slice(&[s(1), s(2)]), 1);
        let mut late = ring.reader();
        assert_eq!(late.try_recv(), Err(Error::Empty));
        for i in 0..3 {
            assert_eq!(r.try_recv(), Ok((s(i), i)));
        }
        assert_eq!(r.try_recv(), Err(Error::Empty));
        let mut old = ring.reader_from_oldest();
        assert_eq!(old.try_recv(), Ok((s(0), 0)));
    }

    #[test]
    fn lagged_counts_exactly_and_resynchronises() {
        let ring = crate::buffer::zeroed_box::<BroadcastRing<S, 4>>();
        let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        let mut r = ring.reader();
        for i in 0..10 {
            w.publish_one(&s(i));
        }
        // tail 10: positions 7..=9 are safe (6's slot is the next to be overwritten, so it is skipped too).
        assert_eq!(r.try_recv(), Err(Error::Lagged(7)));
        assert_eq!(r.position(), 7);
        let got: Vec<u64> = core::iter::from_fn(|| r.try_recv().ok().map(|(v, _)| v.n)).collect();
        assert_eq!(got, [7, 8, 9]);
        // A slot overwritten after the tail check: simulate the writer lapping exactly one slot.
        let mut r2 = ring.reader_at(6);
        assert_eq!(r2.try_recv(), Ok((s(6), 6)));
        let mut r3 = ring.reader_at(6);
        w.publish_one(&s(10)); // overwrites slot of 6
        assert_eq!(r3.try_recv(), Err(Error::Lagged(2)));
        assert_eq!(r3.try_recv(), Ok((s(8), 8)));
        assert_eq!(r3.skip_to_latest(), 2);
        assert_eq!(r3.try_recv(), Err(Error::Empty));
    }

    /// A large sample is received in place after a wait, and an overwritten one is reported, not returned.
    #[test]
    fn waiting_in_place_receive_of_a_large_sample() {
        type Big = [u64; 512];
        fn last(b: SharedBytes<'_>) -> u64 {
            let mut x = [0u8; 8];
            b.load(b.len() - 8, &mut x);
            u64::from_ne_bytes(x)
        }
        let ring = crate::buffer::zeroed_box::<BroadcastRing<Big, 2>>();
        let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        let mut r = ring.reader();
        let big: Big = core::array::from_fn(|i| i as u64 * 3);
        w.publish_one(&big);
        assert_eq!(r.recv_wait_with(None, last), Ok((511 * 3, 0)));
        for _ in 0..5 {
            w.publish_one(&big);
        }
        assert!(matches!(r.recv_wait_with(None, last), Err(Error::Lagged(_))));
    }

    #[test]
    fn in_place_receive_validates() {
        let ring = crate::buffer::zeroed_box::<BroadcastRing<S, 2>>();
        let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        let mut r = ring.reader();
        w.publish_one(&s(40));
        let (n, pos) = r
            .try_recv_with(|b| {
                let mut x = [0u8; 8];
                b.load(0, &mut x);
                u64::from_ne_bytes(x)
            })
            .unwrap();
        assert_eq!((n, pos), (40, 0));
        w.publish_one(&s(41));
        let got = r.try_recv_with(|_| {
            // The writer laps us while we look at the sample.
            w.publish_slice(&[s(42), s(43)]);
        });
        assert_eq!(got, Err(Error::Lagged(2)));
        assert_eq!(r.try_recv(), Ok((s(43), 3)));
    }

    #[test]
    fn dead_writer_mid_sample_and_takeover() {
        let ring = crate::buffer::zeroed_box::<BroadcastRing<S, 4>>();
        let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        for i in 0..6 {
            w.publish_one(&s(i));
        }
        let mut r = ring.reader_at(3);
        // The writer dies half-way through sample 6 (slot 2, which held sample 2).
        let slot = ring.slot(6);
        slot.seq.store(13, Ordering::Relaxed);
        slot.data.bytes_mut().store(0, &[0xee; 9]);
        core::mem::forget(w);
        let mut old = ring.reader_at(2);
        assert_eq!(old.try_recv(), Err(Error::Lagged(1)));
        assert_eq!(old.try_recv(), Ok((s(3), 3)));
        for i in 3..6 {
            assert_eq!(r.try_recv(), Ok((s(i), i)));
        }
        assert_eq!(r.try_recv(), Err(Error::Empty));
        let mut w2 = ring
            .writer_with(&liveness::Me::fake(32), |_| liveness::Liveness::Dead)
            .unwrap();
        assert_eq!(w2.publish_one(&s(6)), 6);
        assert_eq!(r.try_recv(), Ok((s(6), 6)));
    }

    #[test]
    fn hostile_values_are_errors() {
        let ring = crate::buffer::zeroed_box::<BroadcastRing<S, 4>>();
        let mut r = ring.reader();
        ring.writer.tail.store(2, Ordering::Relaxed); // tail moved but slots never written
        assert_eq!(r.try_recv(), Err(Error::Corrupt { head: 0, tail: 0 }));
        let mut r = ring.reader_at(10);
        assert_eq!(r.try_recv(), Err(Error::Corrupt { head: 10, tail: 2 }));
        ring.writer.tail.store(u64::MAX, Ordering::Relaxed);
        let mut r = ring.reader_at(0);
        assert_eq!(
            r.try_recv(),
            Err(Error::Corrupt {
                head: 0,
                tail: u64::MAX
            })
        );
        ring.writer.tail.store(1000, Ordering::Relaxed);
        assert_eq!(r.try_recv(), Err(Error::Lagged(997)));
        assert_eq!(r.position(), 997);
    }

    #[test]
    fn a_reader_left_ahead_by_a_rewound_tail_resynchronises() {
        let ring = crate::buffer::zeroed_box::<BroadcastRing<S, 4>>();
        let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        for i in 0..4 {
            w.publish_one(&s(i));
        }
        let mut r = ring.reader_at(4);
        // A peer moves the tail far ahead (within the limit): the reader follows it as lost samples.
        ring.writer.tail.store(1 << 40, Ordering::Relaxed);
        assert!(matches!(r.try_recv(), Err(Error::Lagged(_))));
        // The honest writer publishes from its own position, which rewinds the tail under the reader's cursor.
        w.publish_one(&s(4));
        assert!(matches!(r.try_recv(), Err(Error::Corrupt { .. })));
        assert_eq!(r.skip_to_latest(), 0);
        assert_eq!(r.position(), 5);
        w.publish_one(&s(5));
        assert_eq!(r.try_recv(), Ok((s(5), 5)));
    }

    #[test]
    fn positions_2_pow_63_apart_are_never_confused() {
        let ring = crate::buffer::zeroed_box::<BroadcastRing<S, 4>>();
        let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        for i in 0..4 {
            w.publish_one(&s(i));
        }
        // A peer flips the top bit of the tail: slot stamps 2(p + 1) of p and p + 2^63 are equal modulo 2^64.
        let flipped = 4 | 1 << 63;
        ring.writer.tail.store(flipped, Ordering::Relaxed);
        let mut r = ring.reader_at(1 | 1 << 63);
        assert_eq!(
            r.try_recv(),
            Err(Error::Corrupt {
                head: 1 | 1 << 63,
                tail: flipped
            })
        );
        assert_eq!(r.position(), 1 | 1 << 63);
        let mut r = ring.reader_from_oldest();
        assert!(matches!(r.try_recv(), Err(Error::Corrupt { .. })));
        let mut r = ring.reader_at(0);
        assert!(matches!(r.try_recv(), Err(Error::Corrupt { .. })));
        // A tail near u64::MAX: the reader's cursor must not move (or wrap), whatever it is.
        for tail in [u64::MAX, u64::MAX - 1, POSITION_LIMIT + 1] {
            ring.writer.tail.store(tail, Ordering::Relaxed);
            for cursor in [0, 3, tail - 10, tail - 1, u64::MAX] {
                let mut r = ring.reader_at(cursor);
                assert!(matches!(r.try_recv(), Err(Error::Corrupt { .. })), "{tail} {cursor}");
                assert_eq!(r.position(), cursor);
                assert_eq!(r.skip_to_latest(), 0);
                assert_eq!(r.position(), cursor);
            }
        }
        // A writer refuses a tail no honest writer can have reached, and the ring still reads back.
        assert!(matches!(
            ring.writer_with(&W, |_| liveness::Liveness::Dead),
            Err(Error::Corrupt { .. })
        ));
        ring.writer.tail.store(4, Ordering::Relaxed);
        assert_eq!(ring.reader_at(1).try_recv(), Ok((s(1), 1)));
    }

    #[test]
    fn readers_in_threads_see_no_torn_sample_and_account_for_every_position() {
        let ring = crate::buffer::zeroed_box::<BroadcastRing<S, 8>>();
        let n: u64 = if cfg!(miri) { 60 } else { 100_000 };
        std::thread::scope(|sc| {
            let mut readers = Vec::new();
            for _ in 0..2 {
                let mut r = ring.reader_at(0);
                readers.push(sc.spawn(move || {
                    let (mut got, mut lost) = (0u64, 0u64);
                    while r.position() < n {
                        match r.try_recv() {
                            Ok((v, p)) => {
                                assert!(ok(&v), "torn {v:?}");
                                assert_eq!(v.n, p);
                                got += 1;
                            }
                            Err(Error::Lagged(k)) => lost += k,
                            Err(Error::Empty) => std::thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    assert_eq!(got + lost, n);
                }));
            }
            let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
            for i in 0..n {
                w.publish_one(&s(i));
            }
            for r in readers {
                r.join().unwrap();
            }
        });
    }

    #[test]
    #[cfg_attr(miri, ignore = "futex and clock syscalls")]
    fn recv_wait_wakes_and_detects_a_dead_writer() {
        let ring = crate::buffer::zeroed_box::<BroadcastRing<S, 32>>();
        std::thread::scope(|sc| {
            let mut r = ring.reader().with_liveness(|_| liveness::Liveness::Alive);
            let t = sc.spawn(move || {
                for i in 0..20 {
                    let (v, p) = r.recv_wait(Some(Duration::from_secs(10))).unwrap();
                    assert_eq!((v, p), (s(i), i));
                }
            });
            let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
            for i in 0..20 {
                std::thread::sleep(Duration::from_micros(500));
                w.publish_one(&s(i));
            }
            t.join().unwrap();
            core::mem::forget(w);
        });
        let mut r = ring.reader().with_liveness(|_| liveness::Liveness::Dead);
        assert_eq!(r.recv_wait(Some(Duration::from_secs(5))), Err(Error::WriterGone));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::thread;
    use std::boxed::Box;

    const W: liveness::Me = liveness::Me::fake(31);

    #[test]
    fn loom_broadcast_no_torn_sample_and_exact_loss_count() {
        crate::buffer::loom_model(|| {
            let ring: &'static BroadcastRing<[u64; 2], 2> = Box::leak(Box::new(BroadcastRing::new()));
            let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
            let mut r = ring.reader_at(0);
            let t = thread::spawn(move || {
                w.publish_one(&[0, 100]);
                w.publish_slice(&[[1, 101], [2, 102]]);
            });
            let (mut got, mut lost) = (0u64, 0u64);
            while r.position() < 3 {
                match r.try_recv() {
                    Ok(([a, b], p)) => {
                        assert_eq!(b, a + 100, "torn");
                        assert_eq!(a, p);
                        got += 1;
                    }
                    Err(Error::Lagged(n)) => lost += n,
                    Err(Error::Empty) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got + lost, 3);
            t.join().unwrap();
        });
    }

    #[test]
    fn loom_broadcast_recv_wait_never_loses_a_wakeup() {
        crate::buffer::loom_model(|| {
            let ring: &'static BroadcastRing<u64, 2> = Box::leak(Box::new(BroadcastRing::new()));
            let mut w = ring.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
            let mut r = ring.reader().with_liveness(|_| liveness::Liveness::Alive);
            let t = thread::spawn(move || {
                w.publish_one(&5);
            });
            assert_eq!(r.recv_wait(None), Ok((5, 0)));
            t.join().unwrap();
        });
    }
}
