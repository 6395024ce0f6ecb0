//! arm (EABI): `svc 0`; number in r7, arguments and return value in r0..r5.
//!
//! In Thumb mode r7 is the frame pointer and cannot be named as an operand, so the number is swapped in and out
//! around the trap, as rustix does.

use core::arch::asm;

/// # Safety
/// The syscall `nr` with this argument must be sound to issue (pointers valid for what the kernel does with them).
#[inline]
pub(crate) unsafe fn syscall1(nr: u32, a0: usize) -> usize {
    // SAFETY: the caller guarantees the syscall is sound.
    unsafe { syscall3(nr, a0, 0, 0) }
}

/// # Safety
/// As for [`syscall1`].
#[cfg(not(target_feature = "thumb-mode"))]
#[inline]
pub(crate) unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the ARM EABI Linux syscall ABI.
    unsafe {
        asm!("svc 0", in("r7") nr as usize, inlateout("r0") a0 => ret, in("r1") a1, in("r2") a2,
             options(nostack, preserves_flags));
    }
    ret
}

/// # Safety
/// As for [`syscall1`].
#[cfg(target_feature = "thumb-mode")]
#[inline]
pub(crate) unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; r7 is restored before the asm block ends.
    unsafe {
        asm!("mov {tmp}, r7", "mov r7, {nr}", "svc 0", "mov r7, {tmp}",
             nr = in(reg) nr as usize, tmp = out(reg) _,
             inlateout("r0") a0 => ret, in("r1") a1, in("r2") a2, options(nostack, preserves_flags));
    }
    ret
}

/// # Safety
/// As for [`syscall1`].
#[cfg(not(target_feature = "thumb-mode"))]
#[inline]
pub(crate) unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; the asm follows the ARM EABI Linux syscall ABI.
    unsafe {
        asm!("svc 0", in("r7") nr as usize, inlateout("r0") a0 => ret, in("r1") a1, in("r2") a2, in("r3") a3,
             in("r4") a4, options(nostack, preserves_flags));
    }
    ret
}

/// # Safety
/// As for [`syscall1`].
#[cfg(target_feature = "thumb-mode")]
#[inline]
pub(crate) unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    // SAFETY: the caller guarantees the syscall is sound; r7 is restored before the asm block ends.
    unsafe {
        asm!("mov {tmp}, r7", "mov r7, {nr}", "svc 0", "mov r7, {tmp}",
             nr = in(reg) nr as usize, tmp = out(reg) _,
             inlateout("r0") a0 => ret, in("r1") a1, in("r2") a2, in("r3") a3, in("r4") a4,
             options(nostack, preserves_flags));
    }
    ret
}
