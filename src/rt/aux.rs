//! The ELF auxiliary vector: the `(key, value)` pairs the kernel places after the environment on the initial
//! stack (page size, hardware capabilities, vDSO address, random bytes, ...).

use core::iter::FusedIterator;

/// End of the vector (never yielded by [`AuxIter`]).
pub const AT_NULL: usize = 0;
/// Address of the program headers of the executable.
pub const AT_PHDR: usize = 3;
/// Size of one program header entry.
pub const AT_PHENT: usize = 4;
/// Number of program headers.
pub const AT_PHNUM: usize = 5;
/// System page size in bytes.
pub const AT_PAGESZ: usize = 6;
/// Base address of the interpreter (0 for a static binary).
pub const AT_BASE: usize = 7;
/// Entry point address of the executable.
pub const AT_ENTRY: usize = 9;
/// Real user id.
pub const AT_UID: usize = 11;
/// Effective user id.
pub const AT_EUID: usize = 12;
/// Real group id.
pub const AT_GID: usize = 13;
/// Effective group id.
pub const AT_EGID: usize = 14;
/// Address of a NUL-terminated string naming the platform.
pub const AT_PLATFORM: usize = 15;
/// Hardware capability bits.
pub const AT_HWCAP: usize = 16;
/// Frequency of `times()` ticks.
pub const AT_CLKTCK: usize = 17;
/// Non-zero when the program runs set-uid/set-gid ("secure mode").
pub const AT_SECURE: usize = 23;
/// Address of 16 random bytes.
pub const AT_RANDOM: usize = 25;
/// More hardware capability bits.
pub const AT_HWCAP2: usize = 26;
/// Address of the NUL-terminated file name the program was executed as.
pub const AT_EXECFN: usize = 31;
/// Entry point of the vDSO's system call trampoline (i386 only).
pub const AT_SYSINFO: usize = 32;
/// Address of the vDSO's ELF header.
pub const AT_SYSINFO_EHDR: usize = 33;
/// Minimal stack size a signal handler needs.
pub const AT_MINSIGSTKSZ: usize = 51;

/// One auxiliary vector entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuxEntry {
    /// The `AT_*` key.
    pub key: usize,
    /// The value: a number or an address, depending on the key.
    pub value: usize,
}

/// Iterator over the auxiliary vector's entries, in the kernel's order, stopping before `AT_NULL`.
///
/// Obtained from [`Args::auxv`](crate::rt::Args::auxv).
#[derive(Clone, Debug)]
pub struct AuxIter {
    /// The next `(key, value)` pair; always inside the vector (at worst at its `AT_NULL` terminator).
    next: *const usize,
}

impl AuxIter {
    /// # Safety
    /// `start` must point at a readable, `AT_NULL`-terminated auxiliary vector that lives and stays unchanged for
    /// the rest of the program.
    pub(crate) unsafe fn new(start: *const usize) -> Self {
        AuxIter { next: start }
    }
}

impl Iterator for AuxIter {
    type Item = AuxEntry;

    fn next(&mut self) -> Option<AuxEntry> {
        // SAFETY: `next` points at a pair inside the terminated vector (constructor contract); it only advances
        // past pairs whose key is not AT_NULL, so it never leaves the vector.
        let (key, value) = unsafe { (*self.next, *self.next.add(1)) };
        if key == AT_NULL {
            return None;
        }
        // SAFETY: the pair just read was not the terminator, so the next pair is still inside the vector.
        self.next = unsafe { self.next.add(2) };
        Some(AuxEntry { key, value })
    }
}

impl FusedIterator for AuxIter {}

// SAFETY: the vector is immutable for the program's life (constructor contract); the iterator only reads it.
unsafe impl Send for AuxIter {}
// SAFETY: as above.
unsafe impl Sync for AuxIter {}

/// C `getauxval`: the value of the auxiliary vector entry `key`, or 0 if absent or if the program was not
/// started through [`entry!`](crate::rt::entry).
///
/// [`entry!`](crate::rt::entry) exports it under its C name because `compiler_builtins` calls it on aarch64: its
/// outline-atomics and CPU-feature constructors (run from `.init_array` before `main`) read `AT_HWCAP` through it.
/// Unlike glibc's, it does not set `errno` (there is none).
pub fn getauxval(key: usize) -> usize {
    super::args().and_then(|a| a.aux(key)).unwrap_or(0)
}
