//! Bulk copies of payload words in one `asm!` block per architecture: the fast path of
//! [`load_bytes`](super::load_bytes) and [`store_bytes`](super::store_bytes) for the word-aligned middle of a
//! large copy.
//!
//! # Why this is sound
//!
//! A plain `memcpy` from or to bytes that another process may write at the same time is a data race, which the
//! Rust memory model makes undefined behaviour whatever the hardware does. An inline assembly block is opaque to
//! that model: the compiler must assume it reads and writes the memory its pointers reach, in some way it cannot
//! see, and keeps every atomic access and fence of the surrounding protocol on its side of the block. What the
//! instructions inside do when another core (another process) writes the same bytes is defined by the hardware
//! memory model instead: each byte read is some byte that was written there, a racing copy may tear but never
//! traps or invents values. That is the "atomic per byte" memcpy of RFC 3301 (`AtomicPerByte`) and of the
//! `atomic-memcpy` crate, done the way they say it must be done until the language has it. The copied bytes are
//! used only as plain bytes (`u8` buffers or `Shareable` values, for which every bit pattern is valid), and readers
//! validate them afterwards with the same sequence checks as the word loop's.
//!
//! Each module exports `GRAIN` (the copy length must be a non-zero multiple of it) and `copy(dst, src, len)`, an
//! `unsafe fn` whose caller guarantees: `src` valid for reads and `dst` valid for writes of `len` bytes, the two
//! ranges not overlapping, and either range (the shared one) accessed by this process only atomically or by such
//! bulk copies. Alignment is not required (the shared side is always word-aligned; the private side may be
//! anything, and these instructions accept any alignment).
//!
//! Miri cannot run inline assembly and loom models atomics it owns, so under `cfg(miri)` and in loom models there
//! is no bulk path ([`bulk_len`] is 0) and every copy takes the word loop, which is equivalent. armv7 and
//! riscv64 keep the word loop too: their `ldm`/`ld` fast forms need an aligned private buffer, and the compiled
//! word loop is already one load and one store per word there.

#[cfg(all(target_arch = "aarch64", not(miri), not(all(loom, test))))]
mod aarch64;
#[cfg(all(target_arch = "x86", not(miri), not(all(loom, test))))]
mod x86;
#[cfg(all(target_arch = "x86_64", not(miri), not(all(loom, test))))]
mod x86_64;

#[cfg(all(target_arch = "aarch64", not(miri), not(all(loom, test))))]
use aarch64 as imp;
#[cfg(all(target_arch = "x86", not(miri), not(all(loom, test))))]
use x86 as imp;
#[cfg(all(target_arch = "x86_64", not(miri), not(all(loom, test))))]
use x86_64 as imp;

/// Copies shorter than this take the word loop: for a few words it is as fast and has no start-up cost.
// Without a bulk path (armv7, riscv64, Miri, loom) only the tests' boundary cases use it.
#[cfg_attr(
    not(all(
        any(target_arch = "aarch64", target_arch = "x86", target_arch = "x86_64"),
        not(miri),
        not(all(loom, test))
    )),
    allow(dead_code)
)]
pub(super) const MIN_BYTES: usize = 256;

/// How many of `len` bytes the bulk copy takes (a multiple of its grain; 0 if the copy is short or there is no
/// bulk path); the caller copies the rest with the word loop.
#[inline]
pub(super) fn bulk_len(len: usize) -> usize {
    #[cfg(all(
        any(target_arch = "aarch64", target_arch = "x86", target_arch = "x86_64"),
        not(miri),
        not(all(loom, test))
    ))]
    if len >= MIN_BYTES {
        #[allow(clippy::modulo_one)] // The grain is 1 on x86 and x86_64.
        return len - len % imp::GRAIN;
    }
    let _ = len;
    0
}

/// Copies `len` bytes from `src` to `dst` in one assembly block.
///
/// # Safety
/// `len` is a value [`bulk_len`] returned (non-zero), `src` is valid for reads and `dst` for writes of `len`
/// bytes, the ranges do not overlap, and the shared one of them is accessed by this process only through atomics
/// or this function (see the module docs).
#[inline]
pub(super) unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    #[cfg(all(
        any(target_arch = "aarch64", target_arch = "x86", target_arch = "x86_64"),
        not(miri),
        not(all(loom, test))
    ))]
    // SAFETY: forwarded from the caller; `len` is a non-zero multiple of `imp::GRAIN` (from `bulk_len`).
    unsafe {
        imp::copy(dst, src, len)
    }
    #[cfg(not(all(
        any(target_arch = "aarch64", target_arch = "x86", target_arch = "x86_64"),
        not(miri),
        not(all(loom, test))
    )))]
    {
        let _ = (dst, src, len);
        unreachable!("bulk_len is 0 without a bulk copy")
    }
}
