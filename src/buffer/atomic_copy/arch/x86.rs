//! x86 (i386): `rep movsb`, as on x86_64 (see there). Rust's `asm!` cannot name esi as an operand on x86 (LLVM
//! may use it as a base pointer), so the source pointer is swapped into esi for the copy and esi restored after,
//! as the syscall layer does for its fourth argument.

use core::arch::asm;

/// `rep movsb` copies any number of bytes.
pub(super) const GRAIN: usize = 1;

/// # Safety
/// As for [`super::copy`].
#[inline]
pub(super) unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    // SAFETY: the caller guarantees both ranges are valid for `len` bytes and do not overlap; `rep movsb` touches
    // exactly those bytes, forwards (the direction flag is clear on entry to an asm block). esi gets its own value
    // back from `saved` before the block ends, so the register allocator's view of esi stays true; ecx, edi and
    // `saved`'s register are declared as clobbered. The flags are left alone.
    unsafe {
        asm!("xchg esi, {saved}", "rep movsb", "mov esi, {saved}",
             saved = inout(reg) src => _,
             inout("ecx") len => _, inout("edi") dst => _,
             options(nostack, preserves_flags));
    }
}
