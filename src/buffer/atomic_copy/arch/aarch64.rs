//! aarch64: a loop of `ldp`/`stp` on q registers (AdvSIMD, part of the aarch64 base architecture), 64 bytes per
//! iteration, what the optimised string routines of glibc and the Arm Optimized Routines do in their main loop.
//! Normal memory accepts these at any alignment.

use core::arch::asm;

/// Bytes per iteration: four 16-byte q registers.
pub(super) const GRAIN: usize = 64;

/// # Safety
/// As for [`super::copy`].
#[inline]
pub(super) unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    debug_assert!(len != 0 && len % GRAIN == 0);
    // SAFETY: the caller guarantees both ranges are valid for `len` bytes and do not overlap, and `len` is a
    // non-zero multiple of 64: the loop reads and writes 64 bytes per iteration and stops when `n` reaches zero,
    // so it touches exactly those bytes. The pointers, the count, the four vector registers and the flags are
    // declared as clobbered.
    unsafe {
        asm!("2:",
             "ldp {a:q}, {b:q}, [{src}], #32",
             "ldp {c:q}, {d:q}, [{src}], #32",
             "stp {a:q}, {b:q}, [{dst}], #32",
             "stp {c:q}, {d:q}, [{dst}], #32",
             "subs {n}, {n}, #64",
             "b.ne 2b",
             src = inout(reg) src => _, dst = inout(reg) dst => _, n = inout(reg) len => _,
             a = out(vreg) _, b = out(vreg) _, c = out(vreg) _, d = out(vreg) _,
             options(nostack));
    }
}
