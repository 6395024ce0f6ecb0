//! riscv64: `ecall`; number in a7, arguments and return value in a0..a5.

use core::arch::asm;

/// # Safety
/// The syscall `nr` with this argument must be sound to issue (pointers valid for what the kernel does with them).
#[inline]
pub(crate) unsafe fn syscall1(nr: u32, a0: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the riscv64 Linux syscall ABI.
    unsafe {
        asm!("ecall", in("a7") nr as usize, inlateout("a0") a0 => ret, options(nostack, preserves_flags));
    }
    ret
}

/// # Safety
/// As for [`syscall1`].
#[inline]
pub(crate) unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the riscv64 Linux syscall ABI.
    unsafe {
        asm!("ecall", in("a7") nr as usize, inlateout("a0") a0 => ret, in("a1") a1, in("a2") a2,
             options(nostack, preserves_flags));
    }
    ret
}

/// # Safety
/// As for [`syscall1`].
#[inline]
pub(crate) unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the riscv64 Linux syscall ABI.
    unsafe {
        asm!("ecall", in("a7") nr as usize, inlateout("a0") a0 => ret, in("a1") a1, in("a2") a2, in("a3") a3,
             in("a4") a4, options(nostack, preserves_flags));
    }
    ret
}
