//! A latest-value slot: one writer, any number of readers, two copies (a seqcount latch).
//!
//! # Algorithm
//!
//! A sequence count `seq` (the number of completed writes) and two copies. While `seq == s`, copy `s & 1` holds
//! write `s` and is never written; the writer writes the *other* copy, `(s + 1) & 1`, then publishes it with a
//! `Release` store of `s + 1`. So at every instant the copy that `seq` designates is complete: a writer
//! preempted or killed in the middle of a write never makes readers wait or see a torn value, and a new writer
//! that takes the role over just carries on from `seq` with no repair.
//!
//! Writer: `fence(Release)`; `Relaxed` word stores into copy `(s + 1) & 1`; `seq.store(s + 1, Release)`. The
//! leading fence orders the previous publication before the new data stores: copy `c` is rewritten only after
//! `seq` moved past every value that designates it.
//!
//! Reader (Boehm's Fig. 6; readers only load, never store, so they never disturb the writer or each other):
//! `s0 = seq.load(Acquire)`; `Relaxed` word loads of copy `s0 & 1`; `fence(Acquire)`; `s1 = seq.load(Relaxed)`;
//! the copy is consistent iff `s1 == s0`. If a load saw any store of a later write to that copy, the acquire fence
//! synchronises with the writer's release fence that follows `seq = s0 + 1`, so `s1 >= s0 + 1`. A reader retries
//! a bounded number of times and then gives [`Error::Contended`] (a writer publishing faster than the reader
//! copies, or a hostile one).
//!
//! This is the Linux `seqcount_latch` idea with one sequence bump per write instead of two (Linux keeps both
//! copies up to date; a reader here only ever needs the designated one).
//!
//! # Typed and runtime-sized slots
//!
//! The algorithm is written once, in [`LatestWriterCore`] and [`read_validated`] / [`wait_newer`], against
//! [`LatestAccess`]. [`Latest<T>`] gives a constant size; a [`LatestView`](super::LatestView) a size known only
//! at run time (a C peer's), over the same bytes.

use core::time::Duration;

use super::atomic_copy::{SharedBytes, SharedBytesMut, SlotCell};
use super::sync::{AtomicU64, Ordering, Word, fence, spin_hint};
use super::wait::{Notifier, WaitCell};
use super::{CachePadded, Error};
use crate::Shareable;
use crate::liveness::{self, Holder, Judge, Role, RoleGuard};

/// The object kind of a latest-value slot, typed or runtime-sized (part of the header fingerprint).
pub(crate) const KIND: &str = "latest";

/// Read attempts before [`Error::Contended`].
const READ_ATTEMPTS: u32 = 64;

/// A latest-value slot for one writer and many readers, in shared memory.
///
/// All-zero is the empty slot (no value yet, no writer). The sequence count and both copies share the first
/// line(s), so a small value costs readers one line transfer per update.
#[repr(C)]
pub struct Latest<T> {
    state: CachePadded<State<T>>,
    role: CachePadded<Role>,
    wait: CachePadded<WaitCell>,
}

#[repr(C)]
struct State<T> {
    seq: AtomicU64,
    copies: [SlotCell<T>; 2],
}

// SAFETY: all-zero is the empty slot (seq 0 means no value; roles free; no waiters); every field is an atomic or
// a `SlotCell` accessed only through atomic words; `repr(C)` of fixed-width atomics and 8-byte-aligned copies,
// padded to 128 bytes on every target; any `seq` value selects a valid copy, and reads are bounded.
#[cfg(not(all(loom, test)))]
unsafe impl<T: Shareable> crate::object::SharedState for Latest<T> {
    const KIND: &'static str = KIND;
    const CAPACITY: u64 = 1;
    const ELEMENT_SIZE: u64 = core::mem::size_of::<T>() as u64;
}

/// Where things are in a latest-value slot, for any value type: the runtime-sized
/// [`LatestLayout`](super::LatestLayout) and the read-only [`inspect`](super::inspect) both place bytes with
/// these. Copies are 8-byte aligned and padded to whole 8-byte units; the role follows the state, which is padded
/// to a multiple of 128 bytes, and the wait cell follows the role.
#[cfg(not(all(loom, test)))]
pub(super) mod layout {
    use super::*;
    use core::mem::offset_of;
    /// Offset of the sequence count.
    pub(in crate::buffer) const SEQ: usize = offset_of!(Latest<u64>, state) + offset_of!(State<u64>, seq);
    /// Offset of copy 0.
    pub(in crate::buffer) const COPIES: usize = offset_of!(Latest<u64>, state) + offset_of!(State<u64>, copies);
    /// Offset of the wait cell from the role.
    pub(in crate::buffer) const WAIT_FROM_ROLE: usize = offset_of!(Latest<u64>, wait) - offset_of!(Latest<u64>, role);
    /// Offset of the writer's role for a payload of `copy_size` bytes (rounded up to 8).
    pub(in crate::buffer) const fn role(copy_size: usize) -> usize {
        (COPIES + 2 * copy_size).next_multiple_of(128)
    }
    /// The size of a slot for a payload of `copy_size` bytes (rounded up to 8); `None` on overflow.
    pub(in crate::buffer) const fn size(copy_size: usize) -> Option<usize> {
        const TAIL: usize = core::mem::size_of::<Latest<u64>>() - offset_of!(Latest<u64>, role);
        match copy_size.checked_mul(2) {
            Some(copies) => match COPIES.checked_add(copies) {
                Some(end) => match end.checked_next_multiple_of(128) {
                    Some(role) => role.checked_add(TAIL),
                    None => None,
                },
                None => None,
            },
            None => None,
        }
    }
    const _: () = assert!(offset_of!(Latest<[u8; 41]>, role) == role(48));
    const _: () = assert!(matches!(size(200), Some(s) if s == core::mem::size_of::<Latest<[u8; 200]>>()));
    const _: () = assert!(offset_of!(Latest<[u8; 200]>, role) == role(200));
    const _: () = assert!(offset_of!(Latest<[u8; 200]>, wait) == role(200) + WAIT_FROM_ROLE);
}

/// What the latest-value algorithm needs from a slot: its sequence count, role, wait cell and copies.
pub(crate) trait LatestAccess<'a>: Copy {
    /// The sequence count, the writer's role and the wait cell.
    fn parts(self) -> (&'a AtomicU64, &'a Role, &'a WaitCell);
    /// Copy `index & 1`: its words and the value size in bytes.
    fn copy(self, index: u64) -> (&'a [Word], usize);

    /// The sequence number of the latest value (0: none yet).
    #[inline]
    fn sequence(self) -> u64 {
        self.parts().0.load(Ordering::Acquire)
    }

    fn writer_holder(self) -> Option<Holder> {
        self.parts().1.holder()
    }
}

impl<'a, T: Shareable> LatestAccess<'a> for &'a Latest<T> {
    #[inline]
    fn parts(self) -> (&'a AtomicU64, &'a Role, &'a WaitCell) {
        (&self.state.seq, &self.role, &self.wait)
    }

    #[inline]
    fn copy(self, index: u64) -> (&'a [Word], usize) {
        (
            self.state.copies[(index & 1) as usize].words(),
            core::mem::size_of::<T>(),
        )
    }
}

/// Reads the latest value with `read` (seqlock validated, bounded retries); returns what `read` gave for the
/// consistent copy and its sequence number.
#[inline]
pub(crate) fn read_validated<'a, R>(
    slot: impl LatestAccess<'a>,
    mut read: impl FnMut(SharedBytes<'a>) -> R,
) -> Result<(R, u64), Error> {
    let seq = slot.parts().0;
    for _ in 0..READ_ATTEMPTS {
        let s0 = seq.load(Ordering::Acquire);
        if s0 == 0 {
            return Err(Error::Empty);
        }
        let (words, len) = slot.copy(s0);
        let r = read(SharedBytes::from_words(words, len));
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) == s0 {
            return Ok((r, s0));
        }
        spin_hint();
    }
    Err(Error::Contended)
}

/// Waits until the sequence number is greater than `after`, then reads with `read`.
pub(crate) fn wait_newer<'a, R>(
    slot: impl LatestAccess<'a>,
    after: u64,
    timeout: Option<Duration>,
    judge: Judge,
    mut read: impl FnMut(SharedBytes<'a>) -> R,
) -> Result<(R, u64), Error> {
    let (seq, role, wait) = slot.parts();
    wait.wait(
        timeout,
        || {
            if seq.load(Ordering::Acquire) > after {
                match read_validated(slot, &mut read) {
                    Ok(r) if r.1 > after => Ok(Some(r)),
                    Ok(_) | Err(Error::Contended) => Ok(None),
                    Err(e) => Err(e),
                }
            } else {
                Ok(None)
            }
        },
        super::peer_of(role, judge, Error::WriterGone),
    )
}

impl<T: Shareable> Latest<T> {
    /// Offsets of the shared words, for the layout report ([`crate::object::layout`]).
    #[cfg(not(all(loom, test)))]
    pub(crate) fn layout_fields() -> [(&'static str, usize); 5] {
        use core::mem::{offset_of, size_of};
        let copies = offset_of!(Self, state.0.copies);
        [
            ("seq", offset_of!(Self, state.0.seq)),
            ("copy0", copies),
            ("copy1", copies + size_of::<SlotCell<T>>()),
            ("role", offset_of!(Self, role)),
            ("wait", offset_of!(Self, wait)),
        ]
    }

    /// Initialises `place` in place to the empty slot (every byte zero) and returns it.
    ///
    /// Shared memory needs no such step: segments are zero-filled. This is for a slot in process-local memory
    /// (the stack, a `Box::new_zeroed`, ...). There is deliberately no by-value constructor: moving a value does
    /// not preserve the padding bytes that round each slot up to whole words, and the atomic word copies read
    /// them, so they must be initialised in place.
    #[cfg(not(all(loom, test)))]
    pub fn init(place: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        <Self as crate::object::SharedState>::init_zeroed(place)
    }

    /// An empty slot (loom model).
    #[cfg(all(loom, test))]
    pub(crate) fn new() -> Self {
        Self {
            state: CachePadded(State {
                seq: AtomicU64::new(0),
                copies: [SlotCell::new(), SlotCell::new()],
            }),
            role: CachePadded(Role::new()),
            wait: CachePadded(WaitCell::new()),
        }
    }

    /// Claims the writer role for the calling process ([`Error::RoleTaken`] if a live process holds it; a dead
    /// holder's role is taken over).
    pub fn writer(&self) -> Result<LatestWriter<'_, T>, Error> {
        self.writer_with(&liveness::current().map_err(Error::Liveness)?, liveness::judge)
    }

    pub(crate) fn writer_with(&self, me: &liveness::Me, judge: Judge) -> Result<LatestWriter<'_, T>, Error> {
        LatestWriterCore::claim(self, me, judge).map(|core| LatestWriter { core })
    }

    /// The process holding the writer role, if any.
    pub fn writer_holder(&self) -> Option<Holder> {
        LatestAccess::writer_holder(self)
    }

    /// The sequence number of the latest value (the number of writes so far; 0: none yet).
    pub fn sequence(&self) -> u64 {
        LatestAccess::sequence(self)
    }

    /// Reads the latest value and its sequence number. [`Error::Empty`] if nothing was ever written,
    /// [`Error::Contended`] if the value kept changing during every one of a bounded number of attempts.
    pub fn read(&self) -> Result<(T, u64), Error> {
        let mut value = T::zeroed();
        let seq = self.read_into(&mut value)?;
        Ok((value, seq))
    }

    /// Reads the latest value into `out` (no copy through the stack for large values); returns its sequence
    /// number. On error `out` holds unspecified (but valid) contents.
    pub fn read_into(&self, out: &mut T) -> Result<u64, Error> {
        read_validated(self, |data| data.load(0, bytemuck::bytes_of_mut(out))).map(|((), seq)| seq)
    }

    /// Waits until the sequence number is greater than `after`, then reads (see [`read`](Self::read)). Fails
    /// with [`Error::Timeout`], or [`Error::WriterGone`] if the writer role is held by a dead process.
    ///
    /// Readers never write shared memory, except that a reader that goes to sleep here counts itself in the
    /// slot's waiter count (on its own line) so that the writer knows to wake it.
    pub fn wait_newer(&self, after: u64, timeout: Option<Duration>) -> Result<(T, u64), Error> {
        self.wait_newer_judged(after, timeout, liveness::judge)
    }

    /// Gives the latest value to `f` in place, as atomic bytes (nothing is copied unless `f` copies: a large value
    /// can be processed piecewise with [`SharedBytes::load`]), and returns what `f` returned with the value's
    /// sequence number, but only if the writer did not change the value while `f` ran. Otherwise `f` runs again
    /// on the newer value, so it may run several times and must not act on what it sees before it returns.
    /// Errors as for [`read`](Self::read).
    pub fn read_with<R>(&self, f: impl FnMut(SharedBytes<'_>) -> R) -> Result<(R, u64), Error> {
        read_validated(self, f)
    }

    /// [`wait_newer`](Self::wait_newer) for large values: waits as `wait_newer` does, then reads in place as
    /// [`read_with`](Self::read_with) does.
    pub fn wait_newer_with<R>(
        &self,
        after: u64,
        timeout: Option<Duration>,
        f: impl FnMut(SharedBytes<'_>) -> R,
    ) -> Result<(R, u64), Error> {
        wait_newer(self, after, timeout, liveness::judge, f)
    }

    pub(crate) fn wait_newer_judged(
        &self,
        after: u64,
        timeout: Option<Duration>,
        judge: Judge,
    ) -> Result<(T, u64), Error> {
        wait_newer(self, after, timeout, judge, |data| {
            let mut v = T::zeroed();
            data.load(0, bytemuck::bytes_of_mut(&mut v));
            v
        })
    }
}

/// The writer side of the algorithm, for any [`LatestAccess`].
pub(crate) struct LatestWriterCore<'a, A> {
    slot: A,
    /// Our own copy of the sequence count (authoritative).
    seq: u64,
    role: RoleGuard<'a>,
    /// The slot's wait cell (also for `Drop`, which knows nothing of `A`).
    wait: &'a WaitCell,
    /// How this process wakes waiters (see the wait module).
    notifier: Notifier,
}

impl<'a, A: LatestAccess<'a>> LatestWriterCore<'a, A> {
    pub(crate) fn claim(slot: A, me: &liveness::Me, judge: Judge) -> Result<Self, Error> {
        let (seq, role, wait) = slot.parts();
        let role = role.claim_as(me, judge)?;
        let seq = seq.load(Ordering::Acquire);
        Ok(Self {
            slot,
            seq,
            role,
            wait,
            notifier: wait.notifier(),
        })
    }

    /// The slot.
    pub(crate) fn slot(&self) -> &A {
        &self.slot
    }

    /// The sequence number of the last value written (0: none).
    pub(crate) fn sequence(&self) -> u64 {
        self.seq
    }

    /// Publishes `value` (its bytes; a shorter one fills the front of the copy); returns its sequence number.
    #[inline]
    pub(crate) fn write(&mut self, value: &[u8]) -> u64 {
        // 0 means "no value yet" to readers; only a peer's scribble can bring the count to `u64::MAX` (2^64
        // honest writes are out of reach), and the value written after it must still be seen.
        let next = self.seq.checked_add(1).unwrap_or(1);
        let (seq, _, wait) = self.slot.parts();
        fence(Ordering::Release);
        let (words, len) = self.slot.copy(next);
        SharedBytesMut::from_words(words, len).store(0, value);
        seq.store(next, Ordering::Release);
        self.seq = next;
        wait.notify(&mut self.notifier);
        next
    }
}

impl<A> Drop for LatestWriterCore<'_, A> {
    /// Releases the role, marked closed, and wakes every waiting reader ([`Error::Closed`]).
    fn drop(&mut self) {
        if self.role.release() {
            self.wait.wake_all();
        }
    }
}

/// The writer's handle. Dropping it releases the writer role.
pub struct LatestWriter<'a, T: Shareable> {
    core: LatestWriterCore<'a, &'a Latest<T>>,
}

impl<'a, T: Shareable> LatestWriter<'a, T> {
    /// Publishes `value`; returns its sequence number. Never waits for readers.
    pub fn write(&mut self, value: &T) -> u64 {
        self.core.write(bytemuck::bytes_of(value))
    }

    /// The sequence number of the last value written (0: none).
    pub fn sequence(&self) -> u64 {
        self.core.sequence()
    }

    /// The slot.
    pub fn slot(&self) -> &'a Latest<T> {
        self.core.slot()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const W: liveness::Me = liveness::Me::fake(21);

    #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Pose {
        n: u64,
        xyz: [f64; 3],
        check: u64,
    }
    impl Pose {
        fn new(n: u64) -> Self {
            Self {
                n,
                xyz: [n as f64, -(n as f64), 0.5 * n as f64],
                check: n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            }
        }
        fn ok(&self) -> bool {
            *self == Self::new(self.n)
        }
    }

    /// A value too large to move through the stack comfortably is read in place, validated like any read.
    #[test]
    fn large_values_are_read_in_place() {
        type Big = [u64; 512];
        fn word(i: usize) -> impl FnMut(SharedBytes<'_>) -> u64 {
            move |b| {
                let mut x = [0u8; 8];
                b.load(i * 8, &mut x);
                u64::from_ne_bytes(x)
            }
        }
        let slot = crate::buffer::zeroed_box::<Latest<Big>>();
        assert_eq!(slot.read_with(word(0)), Err(Error::Empty));
        let mut w = slot.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        w.write(&core::array::from_fn(|i| 7 + i as u64));
        assert_eq!(slot.read_with(word(0)), Ok((7, 1)));
        assert_eq!(slot.wait_newer_with(0, None, word(511)), Ok((7 + 511, 1)));
        w.write(&core::array::from_fn(|i| 100 + i as u64));
        assert_eq!(slot.wait_newer_with(1, None, word(3)), Ok((103, 2)));
    }

    #[test]
    fn empty_then_latest_with_sequence() {
        let slot = crate::buffer::zeroed_box::<Latest<Pose>>();
        assert_eq!(slot.read(), Err(Error::Empty));
        let mut w = slot.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        assert_eq!(w.write(&Pose::new(5)), 1);
        assert_eq!(slot.read(), Ok((Pose::new(5), 1)));
        assert_eq!(w.write(&Pose::new(6)), 2);
        assert_eq!(slot.read(), Ok((Pose::new(6), 2)));
        assert!(matches!(
            slot.writer_with(&W, |_| liveness::Liveness::Alive).err(),
            Some(Error::RoleTaken { .. })
        ));
    }

    /// A peer that left the sequence count at `u64::MAX` must not make the next writer publish under 0, which
    /// readers take for "no value yet": the value would be lost.
    #[test]
    fn a_sequence_count_left_at_the_maximum_does_not_hide_the_next_value() {
        let slot = crate::buffer::zeroed_box::<Latest<Pose>>();
        slot.state.seq.store(u64::MAX, Ordering::Relaxed);
        let mut w = slot.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        assert_eq!(w.write(&Pose::new(9)), 1);
        assert_eq!(slot.read(), Ok((Pose::new(9), 1)));
        assert_eq!(
            slot.wait_newer(0, Some(core::time::Duration::ZERO)),
            Ok((Pose::new(9), 1))
        );
    }

    #[test]
    fn dead_writer_mid_write_leaves_a_consistent_value_and_is_taken_over() {
        let slot = crate::buffer::zeroed_box::<Latest<Pose>>();
        let mut w = slot.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        w.write(&Pose::new(1));
        w.write(&Pose::new(2));
        // Simulate a death in the middle of write 3: half of the inactive copy written, no publication.
        slot.state.copies[1].bytes_mut().store(0, &[0xff; 12]);
        core::mem::forget(w);
        assert_eq!(slot.read(), Ok((Pose::new(2), 2)));
        let mut w2 = slot
            .writer_with(&liveness::Me::fake(22), |_| liveness::Liveness::Dead)
            .unwrap();
        assert_eq!(w2.write(&Pose::new(3)), 3);
        assert_eq!(slot.read(), Ok((Pose::new(3), 3)));
    }

    #[test]
    fn hostile_writer_gives_contended_not_a_hang() {
        let slot = crate::buffer::zeroed_box::<Latest<u64>>();
        slot.state.seq.store(1, Ordering::Release);
        // A writer that publishes during every read attempt, played by the reader's own callback so that it strikes
        // at the worst moment of each attempt whatever the scheduler does: the read gives up after its bounded
        // attempts.
        let mut attempts = 0;
        let got = slot.read_with(|_| {
            attempts += 1;
            slot.state.seq.fetch_add(1, Ordering::Release);
        });
        assert_eq!(got, Err(Error::Contended));
        assert_eq!(attempts, READ_ATTEMPTS);
        // Once the writer stops, the next read succeeds.
        let seq = slot.state.seq.load(Ordering::Acquire);
        assert_eq!(slot.read_with(|_| ()), Ok(((), seq)));
    }

    #[test]
    fn readers_never_see_torn_values() {
        let slot = crate::buffer::zeroed_box::<Latest<Pose>>();
        let n: u64 = if cfg!(miri) { 100 } else { 200_000 };
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut w = slot.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
                for i in 1..=n {
                    assert_eq!(w.write(&Pose::new(i)), i);
                }
            });
            for _ in 0..2 {
                s.spawn(|| {
                    let mut last = 0;
                    while last < n {
                        match slot.read() {
                            Ok((v, seq)) => {
                                assert!(v.ok(), "torn {v:?}");
                                assert_eq!(v.n, seq);
                                assert!(seq >= last);
                                last = seq;
                            }
                            Err(Error::Empty) | Err(Error::Contended) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
            }
        });
    }

    #[test]
    #[cfg_attr(miri, ignore = "futex and clock syscalls")]
    fn wait_newer_wakes_up() {
        let slot = crate::buffer::zeroed_box::<Latest<Pose>>();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut w = slot.writer().unwrap();
                for i in 1..=50 {
                    std::thread::sleep(Duration::from_micros(300));
                    w.write(&Pose::new(i));
                }
            });
            let mut last = 0;
            while last < 50 {
                let (v, seq) = slot.wait_newer(last, Some(Duration::from_secs(10))).unwrap();
                assert!(v.ok() && seq > last);
                last = seq;
            }
            // Timeout while the writer thread still holds the role, Closed once it has dropped it.
            let end = slot.wait_newer(50, Some(Duration::from_millis(3)));
            assert!(matches!(end, Err(Error::Timeout | Error::Closed)), "{end:?}");
        });
        assert_eq!(slot.wait_newer(50, None), Err(Error::Closed));
    }

    #[test]
    #[cfg_attr(miri, ignore = "futex and clock syscalls")]
    fn a_clean_release_wakes_blocked_readers_with_closed() {
        let slot = crate::buffer::zeroed_box::<Latest<Pose>>();
        let mut w = slot.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
        w.write(&Pose::new(1));
        std::thread::scope(|s| {
            let readers: std::vec::Vec<_> = (0..2)
                .map(|_| {
                    let slot = &*slot;
                    s.spawn(move || {
                        slot.wait_newer_judged(1, Some(Duration::from_secs(60)), |_| liveness::Liveness::Alive)
                    })
                })
                .collect();
            // Let the readers go to sleep (not required for correctness: a reader arriving later sees the mark).
            std::thread::sleep(Duration::from_millis(50));
            drop(w);
            for r in readers {
                assert_eq!(r.join().unwrap(), Err(Error::Closed));
            }
        });
        // Data published before the close is still delivered first; a new writer reopens the slot.
        assert_eq!(slot.wait_newer(0, None).map(|r| r.1), Ok(1));
        let mut w = slot
            .writer_with(&liveness::Me::fake(22), |_| liveness::Liveness::Alive)
            .unwrap();
        assert_eq!(slot.wait_newer(1, Some(Duration::from_millis(3))), Err(Error::Timeout));
        w.write(&Pose::new(2));
        assert_eq!(slot.wait_newer(1, None).map(|r| r.1), Ok(2));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::thread;
    use std::boxed::Box;

    const W: liveness::Me = liveness::Me::fake(21);

    #[test]
    fn loom_latch_readers_see_whole_values_in_order() {
        crate::buffer::loom_model(|| {
            let slot: &'static Latest<[u64; 2]> = Box::leak(Box::new(Latest::new()));
            let mut w = slot.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
            let t = thread::spawn(move || {
                for i in 1..=3u64 {
                    w.write(&[i, i * 10]);
                }
            });
            let mut last = 0;
            for _ in 0..2 {
                match slot.read() {
                    Ok(([a, b], seq)) => {
                        assert_eq!(b, a * 10, "torn");
                        assert_eq!(a, seq);
                        assert!(seq >= last);
                        last = seq;
                    }
                    Err(Error::Empty) => assert_eq!(last, 0),
                    Err(e) => panic!("{e}"),
                }
            }
            t.join().unwrap();
            assert_eq!(slot.read(), Ok(([3, 30], 3)));
        });
    }

    #[test]
    fn loom_latch_wait_newer_never_loses_a_wakeup() {
        crate::buffer::loom_model(|| {
            let slot: &'static Latest<u64> = Box::leak(Box::new(Latest::new()));
            let mut w = slot.writer_with(&W, |_| liveness::Liveness::Alive).unwrap();
            let t = thread::spawn(move || {
                w.write(&7);
                core::mem::forget(w);
            });
            assert_eq!(
                slot.wait_newer_judged(0, None, |_| liveness::Liveness::Alive),
                Ok((7, 1))
            );
            t.join().unwrap();
        });
    }
}
