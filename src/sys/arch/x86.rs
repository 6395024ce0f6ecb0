//! x86 (i386): `int 0x80`; number in eax, arguments in ebx, ecx, edx, esi, edi, ebp.
//!
//! Rust's `asm!` cannot name esi as an operand on x86, so `syscall5` swaps the fourth argument into esi around
//! the trap, as rustix does. `int 0x80` is slower than the vDSO's `sysenter`, but needs no aux-vector lookup and
//! works in every libc-free binary.

use core::arch::asm;

/// # Safety
/// The syscall `nr` with this argument must be sound to issue (pointers valid for what the kernel does with them).
#[inline]
pub(crate) unsafe fn syscall1(nr: u32, a0: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the i386 Linux syscall ABI.
    unsafe {
        asm!("int $$0x80", inlateout("eax") nr as usize => ret, in("ebx") a0,
             options(nostack, preserves_flags));
    }
    ret
}

/// # Safety
/// As for [`syscall1`].
#[inline]
pub(crate) unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the i386 Linux syscall ABI.
    unsafe {
        asm!("int $$0x80", inlateout("eax") nr as usize => ret, in("ebx") a0, in("ecx") a1, in("edx") a2,
             options(nostack, preserves_flags));
    }
    ret
}

/// # Safety
/// As for [`syscall1`].
#[inline]
pub(crate) unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; esi is restored by the second `xchg` before the asm
    // block ends, so the register allocator's view of `a3`'s register and of esi stays true.
    unsafe {
        asm!("xchg esi, {a3}", "int $$0x80", "xchg esi, {a3}",
             a3 = in(reg) a3,
             inlateout("eax") nr as usize => ret, in("ebx") a0, in("ecx") a1, in("edx") a2, in("edi") a4,
             options(nostack, preserves_flags));
    }
    ret
}
