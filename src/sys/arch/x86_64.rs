//! x86_64: `syscall`; number in rax, arguments in rdi, rsi, rdx; rcx and r11 are clobbered.

use core::arch::asm;

/// # Safety
/// The syscall `nr` with this argument must be sound to issue (pointers valid for what the kernel does with them).
#[inline]
pub(crate) unsafe fn syscall1(nr: u32, a0: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the x86_64 syscall ABI.
    unsafe {
        asm!("syscall", inlateout("rax") nr as usize => ret, in("rdi") a0,
             lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    ret
}

/// # Safety
/// As for [`syscall1`].
#[inline]
pub(crate) unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the x86_64 syscall ABI.
    unsafe {
        asm!("syscall", inlateout("rax") nr as usize => ret, in("rdi") a0, in("rsi") a1, in("rdx") a2,
             lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    ret
}

/// # Safety
/// As for [`syscall1`].
#[inline]
pub(crate) unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the x86_64 syscall ABI.
    unsafe {
        asm!("syscall", inlateout("rax") nr as usize => ret, in("rdi") a0, in("rsi") a1, in("rdx") a2,
             in("r10") a3, in("r8") a4, lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    ret
}
