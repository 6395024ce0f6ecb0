//! x86_64: where the CPU and the kernel have AVX, a 32-byte AVX loop below [`REP_MIN`] bytes and wherever `rep movsb`
//! is slow; `rep movsb` otherwise.
//!
//! With ERMS/FSRM (every x86_64 core of the last decade) `rep movsb` copies whole cache lines with wide accesses,
//! as fast as a vectorised `memcpy` for long copies; without them it is still correct, only slower. Below about
//! 2 KiB its start-up shows: glibc's own `memcpy` takes a vector loop up to its `rep_movsb_threshold` (2,112 bytes on
//! this project's AMD EPYC VM, `ld.so --list-diagnostics`), and batches of 8-byte items streamed between two
//! processes (512-byte pushes, pops of up to 2 KiB, C, 9 interleaved rounds) ran at a median 673 M items/s with
//! `rep movsb` against 765 M with glibc's `memcpy` and 780 M with the loop here. Any alignment.
//!
//! The AVX loop also takes long copies whose destination starts 1 to 63 bytes after the source modulo 4 KiB: on
//! this VM's Zen 3 `rep movsb` then falls from about 30 GB/s to under 2 GB/s (one thread, private buffers, medians
//! of 100 to 2,000 copies, at 4 KiB, 64 KiB and 1 MiB alike; glibc's `memcpy`, which uses `rep movsb` from 2 KiB to
//! 512 KiB here, falls the same way), while the loop keeps 28 to 34 GB/s. A slot and a caller's buffer can sit
//! that way by chance (a slot's offset in its page is fixed, the buffer is wherever the caller put it).

use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// `rep movsb` and the AVX loop copy any number of bytes.
pub(super) const GRAIN: usize = 1;

/// Copies of at least this many bytes take `rep movsb`, unless their placement is one it handles slowly.
const REP_MIN: usize = 2048;

/// # Safety
/// As for [`super::copy`].
#[inline]
pub(super) unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) {
    if (len < REP_MIN || store_follows_load(dst, src)) && has_avx() {
        // SAFETY: forwarded from the caller; the CPU and the kernel support AVX (checked just above).
        unsafe { copy_avx(dst, src, len) }
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { rep_movsb(dst, src, len) }
    }
}

/// Whether `dst` starts 1 to 63 bytes after `src` modulo 4 KiB, where `rep movsb` is slow (see the module docs).
#[inline]
fn store_follows_load(dst: *mut u8, src: *const u8) -> bool {
    let distance = (dst as usize).wrapping_sub(src as usize) % 4096;
    (1..64).contains(&distance)
}

/// # Safety
/// As for [`super::copy`].
#[inline]
unsafe fn rep_movsb(dst: *mut u8, src: *const u8, len: usize) {
    // SAFETY: the caller guarantees both ranges are valid for `len` bytes and do not overlap; `rep movsb` touches
    // exactly those bytes (the direction flag is clear on entry to an asm block, as the ABI requires, so it copies
    // forwards) and changes only rcx, rdi and rsi, declared as clobbered. It leaves the flags alone.
    unsafe {
        asm!("rep movsb",
             inout("rcx") len => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
}

/// Whether AVX may be used, found out once per process (0: not yet, 1: no, 2: yes).
static AVX: AtomicU8 = AtomicU8::new(0);

#[inline]
fn has_avx() -> bool {
    match AVX.load(Relaxed) {
        0 => {
            let yes = detect_avx();
            AVX.store(if yes { 2 } else { 1 }, Relaxed);
            yes
        }
        v => v == 2,
    }
}

/// AVX is usable if CPUID says the CPU has it and the kernel saves the YMM state (OSXSAVE, and XCR0's SSE and AVX
/// bits), as the Intel SDM's "Detection of Intel AVX Instructions" prescribes.
#[cold]
fn detect_avx() -> bool {
    let ecx: u32;
    // SAFETY: CPUID leaf 1 exists on every x86_64 CPU and only writes eax, ebx, ecx and edx. rbx cannot be an asm
    // operand (LLVM may reserve it), so it is saved in `saved` and restored; the others are declared.
    unsafe {
        asm!("mov {saved}, rbx", "cpuid", "mov rbx, {saved}",
             saved = out(reg) _, inout("eax") 1u32 => _, inout("ecx") 0u32 => ecx, out("edx") _,
             options(nostack, nomem, preserves_flags));
    }
    const OSXSAVE: u32 = 1 << 27;
    const AVX_BIT: u32 = 1 << 28;
    if ecx & (OSXSAVE | AVX_BIT) != OSXSAVE | AVX_BIT {
        return false;
    }
    let xcr0: u32;
    // SAFETY: XGETBV with ecx = 0 is defined when OSXSAVE is set (checked above); it writes eax and edx only.
    unsafe {
        asm!("xgetbv", in("ecx") 0u32, out("eax") xcr0, out("edx") _,
             options(nostack, nomem, preserves_flags));
    }
    xcr0 & 0b110 == 0b110
}

/// Copies 128 bytes per round with four 32-byte unaligned loads and stores, the rest (under 128 bytes) with
/// `rep movsb`, which is quick for so few bytes on the cores that have AVX.
///
/// # Safety
/// As for [`super::copy`], and AVX must be usable ([`has_avx`]).
#[target_feature(enable = "avx")]
unsafe fn copy_avx(dst: *mut u8, src: *const u8, len: usize) {
    let body = len - len % 128;
    if body != 0 {
        // SAFETY: the caller guarantees both ranges are valid for `len >= body` bytes and do not overlap, and that
        // AVX is usable. The loop reads and writes exactly the first `body` bytes (a non-zero multiple of 128),
        // forwards; `vzeroupper` leaves the upper halves of the vector registers clean for SSE code after it.
        // Every vector register is declared clobbered (`clobber_abi`), and the pointer and count registers are
        // operands that the block may change.
        unsafe {
            asm!(
                "2:",
                "vmovdqu ymm0, ymmword ptr [rsi]",
                "vmovdqu ymm1, ymmword ptr [rsi + 32]",
                "vmovdqu ymm2, ymmword ptr [rsi + 64]",
                "vmovdqu ymm3, ymmword ptr [rsi + 96]",
                "vmovdqu ymmword ptr [rdi], ymm0",
                "vmovdqu ymmword ptr [rdi + 32], ymm1",
                "vmovdqu ymmword ptr [rdi + 64], ymm2",
                "vmovdqu ymmword ptr [rdi + 96], ymm3",
                "add rsi, 128",
                "add rdi, 128",
                "sub rcx, 128",
                "jnz 2b",
                "vzeroupper",
                inout("rsi") src => _,
                inout("rdi") dst => _,
                inout("rcx") body => _,
                clobber_abi("C"),
                options(nostack),
            );
        }
    }
    if body != len {
        // SAFETY: the rest of the caller's ranges, `len - body` bytes from `body`.
        unsafe { rep_movsb(dst.add(body), src.add(body), len - body) }
    }
}
