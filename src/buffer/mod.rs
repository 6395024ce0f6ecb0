//! Lock-free sensor buffers that live in shared memory: an SPSC ring, a latest-value slot, a broadcast ring and
//! blocking waits.
//!
//! Each buffer is a `#[repr(C)]` struct made only of atomics ([`SpscRing`], [`Latest`], [`BroadcastRing`]). It
//! implements [`SharedState`](crate::object::SharedState): the all-zero state is the valid empty state, so a
//! zero-filled segment holds a ready buffer and there is no initialisation step. Processes use it through
//! process-local handles ([`Producer`], [`Consumer`], [`LatestWriter`], [`BroadcastWriter`], [`BroadcastReader`])
//! that borrow the shared struct and keep their own positions and cached peer positions.
//!
//! # Soundness model
//!
//! Every byte shared between processes is read and written only through atomics, and always at the same
//! granularity (payload words are `AtomicU64` on 64-bit targets and `AtomicU32` on 32-bit ones; positions and
//! sequence numbers are `AtomicU64`). A payload is copied word by word with `Relaxed` loads and stores; the
//! publishing protocol of each buffer places the fences (Boehm, *Can seqlocks get along with programming language
//! memory models?*, Fig. 6): a reader that copies words racing with a writer may get a torn value, which is never
//! undefined behaviour because the payload is [`Shareable`](crate::Shareable) (every bit pattern is valid), and
//! the protocol then detects and discards it. Peers are not trusted: every position read from shared memory is
//! validated, so a buggy or hostile peer can make a handle return [`Error::Corrupt`], garbage values or
//! [`Error::Contended`], but never undefined behaviour, a panic or an endless loop.
//!
//! # Layout
//!
//! Words written by different parties (producer position, consumer position, waiter counts) sit on separate
//! 128-byte lines ([`CachePadded`]). 128 bytes is the destructive-interference size on x86_64 (adjacent-line
//! prefetch) and on big aarch64 cores; it is used on every target, although 64 bytes would do on riscv64 and
//! 32-64 on armv7, because the layout of a shared struct must be identical for programs built for different
//! targets that share one segment (an armv7 and an aarch64 process on one aarch64 board).
//!
//! # Roles
//!
//! A producer or writer role (and the SPSC consumer role) is a [`Role`](crate::liveness::Role): claimed with a
//! compare-and-swap of the claiming process's liveness token (see [`liveness`](crate::liveness): valid across
//! PID namespaces, zombies count as dead, no pids involved). Claiming a held role fails with
//! [`Error::RoleTaken`], which says who holds it and since when, unless its holder is dead, in which case the
//! role is taken over at once. Dropping the handle releases the role and marks it closed: readers blocked on
//! that writer wake with [`Error::Closed`]. Roles guard correctness, not memory safety: two producers that
//! ignore them corrupt each other's data but cannot cause undefined behaviour.
//!
//! # Testing
//!
//! - unit tests: `cargo test --lib buffer`;
//! - loom models: `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`;
//! - Miri: `cargo +nightly miri test --lib buffer::` (tests that need syscalls are ignored under Miri);
//! - multi-process stress: `cargo test --release --test buffer_stress` (iteration counts from
//!   `SHMFUSION_STRESS_*` environment variables, smaller under emulation).

mod atomic_copy;
mod broadcast;
#[cfg(not(all(loom, test)))]
pub mod inspect;
mod latest;
mod ring;
pub(crate) mod sync;
#[cfg(not(all(loom, test)))]
mod view;
mod wait;

pub use atomic_copy::{SharedBytes, SharedBytesMut};
pub use broadcast::{BroadcastReader, BroadcastRing, BroadcastWriter, POSITION_LIMIT};
pub use latest::{Latest, LatestWriter};
pub use ring::{Consumer, Producer, ReadSlot, SpscRing, WriteSlot};
#[cfg(not(all(loom, test)))]
pub use view::{
    BroadcastLayout, BroadcastView, BroadcastViewReader, BroadcastViewWriter, LatestLayout, LatestView,
    LatestViewWriter, LayoutError, SpscLayout, SpscView, SpscViewConsumer, SpscViewProducer,
};
pub use wait::DEFAULT_LIVENESS_POLL;

use core::fmt;

/// Why a buffer operation did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The ring has no free slot.
    Full,
    /// There is nothing (new) to read.
    Empty,
    /// The role is held by a live process (or one that cannot be judged from here, such as a holder in another
    /// IPC namespace): who, in which namespaces, since when.
    RoleTaken {
        /// The holder, as it recorded itself (see [`Holder`](crate::liveness::Holder)).
        holder: crate::liveness::Holder,
    },
    /// The calling process could not set up its liveness anchor, which every role claim needs (see
    /// [`liveness`](crate::liveness)): `ENOSPC` when the system's segment limit (`SHMMNI`) is reached, `ENOMEM`,
    /// `ENOSYS` without System V IPC.
    Liveness(crate::Errno),
    /// A broadcast reader fell behind: exactly this many samples were overwritten before it could read them. The
    /// reader has skipped them and reads on from the oldest sample still available.
    Lagged(u64),
    /// Positions found in shared memory cannot both be right (a buggy or hostile peer, or memory corruption).
    Corrupt {
        /// The reading side's position (ring consumer position, broadcast reader cursor).
        head: u64,
        /// The writing side's position or sample number found with it.
        tail: u64,
    },
    /// The wait timed out.
    Timeout,
    /// The writer (producer) role is held by a process that is no longer alive.
    WriterGone,
    /// The SPSC consumer role is held by a process that is no longer alive.
    ReaderGone,
    /// The peer this wait depends on (the writer or producer; for a producer waiting for space, the consumer)
    /// released its role cleanly, and no process has claimed it since: nothing more will come. Returned only once
    /// everything already published has been read.
    Closed,
    /// A latest-value read found the value changing under it on every one of its bounded attempts (a writer
    /// much faster than the reader, or a hostile one).
    Contended,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Full => f.write_str("buffer full"),
            Error::Empty => f.write_str("buffer empty"),
            Error::RoleTaken { holder } => match holder.pid {
                Some(pid) => write!(f, "role held by live process {pid}"),
                None => write!(
                    f,
                    "role held by process {} of another PID namespace ({:#x})",
                    holder.own_pid, holder.pid_namespace
                ),
            },
            Error::Liveness(e) => write!(f, "no liveness anchor for this process: {e}"),
            Error::Lagged(n) => write!(f, "reader lagged: {n} samples missed"),
            Error::Corrupt { head, tail } => {
                write!(f, "corrupt shared positions (head {head}, tail {tail})")
            }
            Error::Timeout => f.write_str("wait timed out"),
            Error::WriterGone => f.write_str("writer process is gone"),
            Error::ReaderGone => f.write_str("reader process is gone"),
            Error::Closed => f.write_str("the peer closed its end"),
            Error::Contended => f.write_str("value kept changing during the read"),
        }
    }
}

impl core::error::Error for Error {}

impl From<crate::liveness::ClaimError> for Error {
    fn from(e: crate::liveness::ClaimError) -> Self {
        match e {
            crate::liveness::ClaimError::Taken(holder) => Error::RoleTaken { holder },
            crate::liveness::ClaimError::Os(e) => Error::Liveness(e),
        }
    }
}

/// The peer check of a wait on the holder of `role`: [`Error::Closed`] once it released the role cleanly
/// (checked every round: one load), `gone` once it is found dead (asked only when `probe`: a syscall).
pub(crate) fn peer_of(
    role: &crate::liveness::Role,
    judge: crate::liveness::Judge,
    gone: Error,
) -> impl FnMut(bool) -> Option<Error> + '_ {
    move |probe| {
        if role.is_closed() {
            Some(Error::Closed)
        } else if probe && role.holder_liveness(judge) == Some(crate::liveness::Liveness::Dead) {
            Some(gone)
        } else {
            None
        }
    }
}

/// Aligns (and so pads) its content to 128 bytes, so that words written by different processes do not share a
/// cache line (see the module docs for why 128 on every target).
#[derive(Debug, Default)]
#[repr(C, align(128))]
pub struct CachePadded<T>(pub T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A zero-filled heap value, the way a shared segment starts (tests only).
#[cfg(all(test, not(loom)))]
pub(crate) fn zeroed_box<T: crate::object::SharedState>() -> std::boxed::Box<T> {
    // SAFETY: `SharedState` guarantees that all-zero bytes are a valid `T`.
    unsafe { zeroed_box_unchecked() }
}

/// A zero-filled heap value (`Box::new_zeroed` is newer than the crate's MSRV).
///
/// # Safety
///
/// All-zero bytes must be a valid `T`.
#[cfg(all(test, not(loom)))]
pub(crate) unsafe fn zeroed_box_unchecked<T>() -> std::boxed::Box<T> {
    let layout = std::alloc::Layout::new::<T>();
    if layout.size() == 0 {
        // SAFETY: a dangling, aligned pointer is a valid `Box` of a zero-sized type.
        return unsafe { std::boxed::Box::from_raw(core::ptr::NonNull::<T>::dangling().as_ptr()) };
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    assert!(!p.is_null(), "out of memory");
    // SAFETY: `p` was allocated by the global allocator with `T`'s layout and every byte is zero, a valid `T` by
    // the caller's guarantee.
    unsafe { std::boxed::Box::from_raw(p) }
}

/// Runs a loom model with a bounded exploration (preemption bound 5 unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise), so the whole loom suite finishes in well under a minute.
#[cfg(all(test, loom))]
pub(crate) fn loom_model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(5);
    }
    b.check(f);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn padding_is_128_on_every_target() {
        assert_eq!(core::mem::align_of::<CachePadded<u8>>(), 128);
        assert_eq!(core::mem::size_of::<CachePadded<u8>>(), 128);
    }

    #[test]
    fn errors_display() {
        let mut s = heapless::String::<64>::new();
        core::fmt::write(&mut s, format_args!("{}", Error::Lagged(3))).unwrap();
        assert_eq!(s.as_str(), "reader lagged: 3 samples missed");
    }
}
