//! The atomics used by the buffers: `core`'s in normal builds, `loom`'s in the crate's own unit tests under
//! `cfg(loom)` (loom is a dev-dependency, so `cfg(all(loom, test))` everywhere), so the same algorithms are
//! model-checked.
//!
//! Payload copies use one fixed word type, [`Word`], on both sides of every copy: `AtomicU64` on 64-bit targets,
//! `AtomicU32` on 32-bit ones (armv7, i686), where 64-bit atomics are emulated with `ldrexd`/`strexd` or
//! `cmpxchg8b` loops and would slow the data path down. Positions and sequence numbers stay `AtomicU64` on every
//! target: they are touched once per sample or per batch, not per payload word, and a 64-bit free-running count
//! never wraps in practice.

#[cfg(not(all(loom, test)))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// The atomic word through which payloads are copied (see the module docs).
#[cfg(all(not(all(loom, test)), target_pointer_width = "64"))]
pub(crate) type Word = core::sync::atomic::AtomicU64;
/// The atomic word through which payloads are copied (see the module docs).
#[cfg(all(not(all(loom, test)), not(target_pointer_width = "64")))]
pub(crate) type Word = core::sync::atomic::AtomicU32;
/// The atomic word through which payloads are copied (see the module docs).
#[cfg(all(loom, test, target_pointer_width = "64"))]
pub(crate) type Word = loom::sync::atomic::AtomicU64;
/// The atomic word through which payloads are copied (see the module docs).
#[cfg(all(loom, test, not(target_pointer_width = "64")))]
pub(crate) type Word = loom::sync::atomic::AtomicU32;

/// The plain integer behind [`Word`].
#[cfg(target_pointer_width = "64")]
pub(crate) type WordInt = u64;
/// The plain integer behind [`Word`].
#[cfg(not(target_pointer_width = "64"))]
pub(crate) type WordInt = u32;

/// Bytes per [`Word`].
pub(crate) const WORD_BYTES: usize = core::mem::size_of::<WordInt>();

/// A hint inside a bounded spin: a CPU pause normally, a scheduler yield under loom (which needs it to make
/// progress in spin loops).
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(all(loom, test)))]
    core::hint::spin_loop();
    #[cfg(all(loom, test))]
    loom::thread::yield_now();
}
