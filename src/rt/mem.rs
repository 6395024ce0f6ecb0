//! `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp` and `strlen` for binaries without libc.
//!
//! The precompiled `core` of the `-gnu` targets calls these C symbols, and `CStr::from_ptr` calls `strlen`. The
//! functions here are ordinary (mangled) Rust functions; [`entry!`](crate::rt::entry) exports them under their C
//! names in the binary crate, so this library never defines a symbol that could clash with a C library.
//!
//! **No self-calls.** LLVM turns a plain copy or fill loop into a call to `memcpy`/`memset`, which inside
//! `memcpy` itself would recurse forever. Every load and store here is volatile: LLVM never merges, widens or
//! replaces volatile accesses, so the loops stay loops on every architecture and optimisation level, with no
//! `#![no_builtins]` (a crate-wide switch) and no assembly. The price is that the loops are not vectorised; they
//! move one machine word per step when source and destination share their alignment, else one byte.

use core::ptr::{read_volatile, write_volatile};

/// The machine word size.
const W: usize = size_of::<usize>();

/// Below this many bytes, a byte loop is used even when word copies would be possible.
const WORDWISE_MIN: usize = 2 * W;

/// Whether `a` and `b` have the same offset within a machine word.
#[inline(always)]
fn coaligned(a: usize, b: usize) -> bool {
    (a ^ b) % W == 0
}

/// Copies `n` bytes from `src` to `dst`, lowest address first (correct when `dst <= src` even if they overlap).
///
/// # Safety
/// `src` must be valid for `n` byte reads and `dst` for `n` byte writes.
#[inline(always)]
unsafe fn copy_forward(mut dst: *mut u8, mut src: *const u8, mut n: usize) {
    if n >= WORDWISE_MIN && coaligned(dst.addr(), src.addr()) {
        while dst.addr() % W != 0 {
            // SAFETY: fewer than W bytes precede the boundary and n >= 2W, so these bytes are in range.
            unsafe {
                write_volatile(dst, read_volatile(src));
                dst = dst.add(1);
                src = src.add(1);
            }
            n -= 1;
        }
        while n >= W {
            // SAFETY: both pointers are word aligned (co-aligned, dst aligned above) and W bytes remain.
            unsafe {
                write_volatile(dst.cast::<usize>(), read_volatile(src.cast::<usize>()));
                dst = dst.add(W);
                src = src.add(W);
            }
            n -= W;
        }
    }
    while n > 0 {
        // SAFETY: n bytes remain in range.
        unsafe {
            write_volatile(dst, read_volatile(src));
            dst = dst.add(1);
            src = src.add(1);
        }
        n -= 1;
    }
}

/// Copies `n` bytes from `src` to `dst`, highest address first (correct when `dst >= src` even if they overlap).
///
/// # Safety
/// `src` must be valid for `n` byte reads and `dst` for `n` byte writes.
#[inline(always)]
unsafe fn copy_backward(dst: *mut u8, src: *const u8, mut n: usize) {
    // SAFETY: one past the end of each range.
    let (mut dst, mut src) = unsafe { (dst.add(n), src.add(n)) };
    if n >= WORDWISE_MIN && coaligned(dst.addr(), src.addr()) {
        while dst.addr() % W != 0 {
            // SAFETY: fewer than W bytes follow the boundary and n >= 2W, so these bytes are in range.
            unsafe {
                dst = dst.sub(1);
                src = src.sub(1);
                write_volatile(dst, read_volatile(src));
            }
            n -= 1;
        }
        while n >= W {
            // SAFETY: both pointers stay word aligned and W bytes remain below them.
            unsafe {
                dst = dst.sub(W);
                src = src.sub(W);
                write_volatile(dst.cast::<usize>(), read_volatile(src.cast::<usize>()));
            }
            n -= W;
        }
    }
    while n > 0 {
        // SAFETY: n bytes remain in range below the pointers.
        unsafe {
            dst = dst.sub(1);
            src = src.sub(1);
            write_volatile(dst, read_volatile(src));
        }
        n -= 1;
    }
}

/// C `memmove`: copies `n` bytes from `src` to `dst`; the ranges may overlap. Returns `dst`.
///
/// # Safety
/// `src` must be valid for `n` byte reads and `dst` for `n` byte writes.
pub unsafe fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // Forward is right unless dst starts inside [src, src + n); wrapping_sub makes "dst below src" huge.
    if dst.addr().wrapping_sub(src.addr()) >= n {
        // SAFETY: forwarded from the caller; forward order is correct for this overlap (or none).
        unsafe { copy_forward(dst, src, n) };
    } else {
        // SAFETY: forwarded from the caller; dst is above src inside the source range, so copy from the top.
        unsafe { copy_backward(dst, src, n) };
    }
    dst
}

/// C `memcpy`: copies `n` bytes from `src` to `dst`. Returns `dst`.
///
/// C leaves overlapping ranges undefined; this one behaves as [`memmove`] for them, which costs one comparison.
///
/// # Safety
/// `src` must be valid for `n` byte reads and `dst` for `n` byte writes.
pub unsafe fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { memmove(dst, src, n) }
}

/// C `memset`: sets `n` bytes at `dst` to the low byte of `c`. Returns `dst`.
///
/// # Safety
/// `dst` must be valid for `n` byte writes.
pub unsafe fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    let byte = c as u8;
    let mut p = dst;
    let mut n = n;
    if n >= WORDWISE_MIN {
        let word = usize::MAX / 0xFF * usize::from(byte); // The byte in every byte of a word.
        while p.addr() % W != 0 {
            // SAFETY: fewer than W bytes precede the boundary and n >= 2W.
            unsafe {
                write_volatile(p, byte);
                p = p.add(1);
            }
            n -= 1;
        }
        while n >= W {
            // SAFETY: p is word aligned and W bytes remain.
            unsafe {
                write_volatile(p.cast::<usize>(), word);
                p = p.add(W);
            }
            n -= W;
        }
    }
    while n > 0 {
        // SAFETY: n bytes remain in range.
        unsafe {
            write_volatile(p, byte);
            p = p.add(1);
        }
        n -= 1;
    }
    dst
}

/// Returns the offset of the first differing byte in the first `n` bytes of `a` and `b`, or `n` if none.
///
/// # Safety
/// `a` and `b` must be valid for `n` byte reads.
#[inline(always)]
unsafe fn first_difference(a: *const u8, b: *const u8, n: usize) -> usize {
    let mut i = 0;
    if n >= WORDWISE_MIN && coaligned(a.addr(), b.addr()) {
        while (a.addr() + i) % W != 0 {
            // SAFETY: i < W <= n.
            if unsafe { read_volatile(a.add(i)) != read_volatile(b.add(i)) } {
                return i;
            }
            i += 1;
        }
        while n - i >= W {
            // SAFETY: both pointers at offset i are word aligned and W bytes remain.
            let differ = unsafe { read_volatile(a.add(i).cast::<usize>()) != read_volatile(b.add(i).cast::<usize>()) };
            if differ {
                break; // The byte loop below finds the byte within this word.
            }
            i += W;
        }
    }
    while i < n {
        // SAFETY: i < n.
        if unsafe { read_volatile(a.add(i)) != read_volatile(b.add(i)) } {
            return i;
        }
        i += 1;
    }
    n
}

/// C `memcmp`: compares the first `n` bytes of `a` and `b` as unsigned bytes; returns a negative, zero or
/// positive value as `a` sorts before, equal to or after `b`.
///
/// # Safety
/// `a` and `b` must be valid for `n` byte reads.
pub unsafe fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded from the caller.
    let i = unsafe { first_difference(a, b, n) };
    if i == n {
        0
    } else {
        // SAFETY: i < n.
        unsafe { i32::from(read_volatile(a.add(i))) - i32::from(read_volatile(b.add(i))) }
    }
}

/// C `bcmp`: returns zero if the first `n` bytes of `a` and `b` are equal, non-zero otherwise.
///
/// # Safety
/// `a` and `b` must be valid for `n` byte reads.
pub unsafe fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded from the caller.
    let i = unsafe { first_difference(a, b, n) };
    i32::from(i != n)
}

/// C `strlen`: the number of bytes before the first NUL at `s`.
///
/// # Safety
/// `s` must point to a NUL-terminated string, valid for reads up to and including its NUL.
pub unsafe fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: every byte up to the NUL is readable; the loop stops at the NUL.
    while unsafe { read_volatile(s.add(n)) } != 0 {
        n += 1;
    }
    n
}

/// Exports the functions above under their C names. Expanded by [`entry!`](crate::rt::entry) in the binary.
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_mem_symbols {
    () => {
        /// C `memcpy` for this libc-free binary.
        ///
        /// # Safety
        /// As for the C function.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
            // SAFETY: the caller upholds memcpy's contract, which is this function's.
            unsafe { $crate::rt::mem::memcpy(dst, src, n) }
        }

        /// C `memmove` for this libc-free binary.
        ///
        /// # Safety
        /// As for the C function.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
            // SAFETY: the caller upholds memmove's contract, which is this function's.
            unsafe { $crate::rt::mem::memmove(dst, src, n) }
        }

        /// C `memset` for this libc-free binary.
        ///
        /// # Safety
        /// As for the C function.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
            // SAFETY: the caller upholds memset's contract, which is this function's.
            unsafe { $crate::rt::mem::memset(dst, c, n) }
        }

        /// C `memcmp` for this libc-free binary.
        ///
        /// # Safety
        /// As for the C function.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: the caller upholds memcmp's contract, which is this function's.
            unsafe { $crate::rt::mem::memcmp(a, b, n) }
        }

        /// C `bcmp` for this libc-free binary.
        ///
        /// # Safety
        /// As for the C function.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: the caller upholds bcmp's contract, which is this function's.
            unsafe { $crate::rt::mem::bcmp(a, b, n) }
        }

        /// C `strlen` for this libc-free binary.
        ///
        /// # Safety
        /// As for the C function.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
            // SAFETY: the caller upholds strlen's contract, which is this function's.
            unsafe { $crate::rt::mem::strlen(s) }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic byte pattern that differs at every offset and between buffers.
    fn pattern(seed: u8, len: usize) -> [u8; 96] {
        let mut b = [0u8; 96];
        for (i, x) in b.iter_mut().enumerate().take(len) {
            *x = seed.wrapping_add((i as u8).wrapping_mul(7)).wrapping_add(1);
        }
        b
    }

    /// Offsets and lengths tried: exhaustive natively, a sample under Miri (which is slow).
    const SPAN: usize = if cfg!(miri) { 11 } else { 24 };
    /// Step between the alignments tried: every one natively, 0, 3, 6 under Miri.
    const STEP: usize = if cfg!(miri) { 3 } else { 1 };

    #[test]
    fn memmove_matches_copy_within_for_all_overlaps() {
        for len in 0..SPAN + 16 {
            for src in 0..SPAN {
                for dst in 0..SPAN {
                    let mut ours = pattern(3, 96);
                    let mut reference = ours;
                    reference.copy_within(src..src + len, dst);
                    // SAFETY: both ranges lie inside the 96-byte buffer.
                    unsafe { memmove(ours.as_mut_ptr().add(dst), ours.as_ptr().add(src), len) };
                    assert_eq!(ours, reference, "len {len} src {src} dst {dst}");
                }
            }
        }
    }

    #[test]
    fn memcpy_between_buffers_at_every_alignment() {
        let src = pattern(9, 96);
        for len in 0..SPAN + 26 {
            for s in (0..9).step_by(STEP) {
                for d in (0..9).step_by(STEP) {
                    let mut dst = [0xAAu8; 96];
                    // SAFETY: both ranges lie inside their buffers.
                    let ret = unsafe { memcpy(dst.as_mut_ptr().add(d), src.as_ptr().add(s), len) };
                    assert_eq!(ret, dst.as_mut_ptr().wrapping_add(d));
                    assert_eq!(&dst[d..d + len], &src[s..s + len]);
                    assert!(dst[..d].iter().all(|&b| b == 0xAA));
                    assert!(dst[d + len..].iter().all(|&b| b == 0xAA));
                }
            }
        }
    }

    #[test]
    fn memset_fills_exactly_the_range() {
        for len in 0..SPAN + 26 {
            for off in 0..9 {
                let mut buf = [0x11u8; 80];
                // SAFETY: the range lies inside the buffer.
                unsafe { memset(buf.as_mut_ptr().add(off), 0x1_7F, len) };
                for (i, &b) in buf.iter().enumerate() {
                    let inside = i >= off && i < off + len;
                    assert_eq!(b, if inside { 0x7F } else { 0x11 }, "len {len} off {off} i {i}");
                }
            }
        }
    }

    #[test]
    fn memcmp_and_bcmp_agree_with_slice_ordering() {
        for len in 0..SPAN + 16 {
            for a_off in (0..9).step_by(STEP) {
                for b_off in (0..9).step_by(STEP) {
                    for diff_at in (0..=len).step_by(STEP) {
                        let mut a = [0u8; 64];
                        let mut b = [0u8; 64];
                        let base = pattern(1, 64);
                        a[a_off..a_off + len].copy_from_slice(&base[..len]);
                        b[b_off..b_off + len].copy_from_slice(&base[..len]);
                        if diff_at < len {
                            // 0x80 tests that bytes compare unsigned.
                            b[b_off + diff_at] = b[b_off + diff_at].wrapping_add(0x80);
                        }
                        let (sa, sb) = (&a[a_off..a_off + len], &b[b_off..b_off + len]);
                        // SAFETY: both ranges lie inside their buffers.
                        let (c, e) = unsafe {
                            (
                                memcmp(sa.as_ptr(), sb.as_ptr(), len),
                                bcmp(sa.as_ptr(), sb.as_ptr(), len),
                            )
                        };
                        assert_eq!(c.signum(), sa.cmp(sb) as i32, "len {len} diff_at {diff_at}");
                        assert_eq!(e != 0, sa != sb);
                    }
                }
            }
        }
    }

    #[test]
    fn strlen_counts_to_the_nul() {
        // SAFETY: NUL-terminated literals.
        unsafe {
            assert_eq!(strlen(c"".as_ptr().cast()), 0);
            assert_eq!(strlen(c"shmfusion".as_ptr().cast()), 9);
        }
    }
}
