//! The page size of the running kernel, found without libc and without ever panicking.
//!
//! The aux vector's `AT_PAGESZ` is the authority. A libc-free program has no `getauxval`, and `/init` on a board
//! has no `/proc`, so the sources are tried in turn: the runtime's copy of the aux vector (feature `rt`),
//! `prctl(PR_GET_AUXV)` (Linux 6.4+), `/proc/self/auxv`, and finally a probe that asks the kernel which
//! alignments `munmap` accepts in a scratch mapping. aarch64 kernels may use 4, 16 or 64 KiB pages, so nothing is
//! assumed.

use core::sync::atomic::{AtomicUsize, Ordering};

const AT_NULL: usize = 0;
const AT_PAGESZ: usize = 6;

/// The page size in bytes (cached after the first call).
pub fn page_size() -> usize {
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    let cached = CACHED.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let found = from_runtime()
        .or_else(from_prctl)
        .or_else(from_proc)
        .or_else(from_munmap_probe)
        .filter(|p| p.is_power_of_two() && *p >= 4096)
        .unwrap_or(4096);
    CACHED.store(found, Ordering::Relaxed);
    found
}

#[cfg(feature = "rt")]
fn from_runtime() -> Option<usize> {
    crate::rt::args().and_then(|args| args.page_size())
}

#[cfg(not(feature = "rt"))]
fn from_runtime() -> Option<usize> {
    None
}

/// `AT_PAGESZ` among `(key, value)` words.
fn find_pagesz(words: &[usize]) -> Option<usize> {
    words
        .chunks_exact(2)
        .take_while(|kv| kv[0] != AT_NULL)
        .find(|kv| kv[0] == AT_PAGESZ)
        .map(|kv| kv[1])
}

fn from_prctl() -> Option<usize> {
    let mut buf = [0usize; 256];
    let len = crate::sys::get_auxv(&mut buf).ok()?;
    let words = (len / core::mem::size_of::<usize>()).min(buf.len());
    find_pagesz(&buf[..words])
}

fn from_proc() -> Option<usize> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(c"/proc/self/auxv", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0usize; 256];
    // SAFETY: viewing the words as bytes for `read`; every byte pattern is a valid usize.
    let bytes = unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), core::mem::size_of_val(&buf)) };
    let mut len = 0;
    while len < bytes.len() {
        match rustix::io::read(&fd, &mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
    find_pagesz(&buf[..len / core::mem::size_of::<usize>()])
}

/// Maps 128 KiB of scratch memory and finds the smallest power of two from 4 KiB at which `munmap` of the
/// mapping's tail is accepted: an address is accepted exactly when it is page-aligned.
fn from_munmap_probe() -> Option<usize> {
    use rustix::mm::{MapFlags, ProtFlags};
    const SPAN: usize = 128 * 1024;
    // SAFETY: a fresh private anonymous mapping at a kernel-chosen address replaces nothing.
    let base =
        unsafe { rustix::mm::mmap_anonymous(core::ptr::null_mut(), SPAN, ProtFlags::empty(), MapFlags::PRIVATE) }
            .ok()?
            .cast::<u8>();
    let mut found = None;
    let mut candidate = 4096;
    while candidate < SPAN {
        // SAFETY: `base + candidate .. base + SPAN` lies inside our own scratch mapping, used by nothing.
        if unsafe { rustix::mm::munmap(base.wrapping_add(candidate).cast(), SPAN - candidate) }.is_ok() {
            found = Some(candidate);
            break;
        }
        candidate *= 2;
    }
    // SAFETY: unmapping (what is left of) our own scratch mapping.
    let _ = unsafe { rustix::mm::munmap(base.cast(), found.unwrap_or(SPAN)) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_agrees_with_the_kernel() {
        let expected = rustix::param::page_size();
        assert_eq!(page_size(), expected);
        assert_eq!(from_proc(), Some(expected));
        assert_eq!(from_munmap_probe(), Some(expected));
        // PR_GET_AUXV needs Linux 6.4, and qemu-user may not pass it through.
        if let Some(p) = from_prctl() {
            assert_eq!(p, expected);
        }
    }

    #[test]
    fn finds_pagesz_only_before_the_terminator() {
        assert_eq!(find_pagesz(&[3, 1, 6, 16384, 0, 0]), Some(16384));
        assert_eq!(find_pagesz(&[3, 1, 0, 0, 6, 4096]), None);
        assert_eq!(find_pagesz(&[6]), None);
    }
}
