//! x86_64: `rep movsb`. With ERMS/FSRM (every x86_64 core of the last decade) the microcode copies whole cache
//! lines with wide accesses, as fast as a vectorised `memcpy` for the sizes that reach it (at least
//! [`MIN_BYTES`](super::MIN_BYTES)); without them it is still correct, only slower. Any alignment.

use core::arch::asm;

/// `rep movsb` copies any number of bytes.
pub(super) const GRAIN: usize = 1;

/// # Safety
/// As for [`super::copy`].
#[inline]
pub(super) unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    // SAFETY: the caller guarantees both ranges are valid for `len` bytes and do not overlap; `rep movsb` touches
    // exactly those bytes (the direction flag is clear on entry to an asm block, as the ABI requires, so it copies
    // forwards) and changes only rcx, rdi and rsi, declared as clobbered. It leaves the flags alone.
    unsafe {
        asm!("rep movsb",
             inout("rcx") len => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
}
