//! The program's arguments, environment and auxiliary vector, decoded from the initial stack.

use core::ffi::CStr;
use core::iter::FusedIterator;
use core::sync::atomic::{AtomicPtr, Ordering};

use super::aux::{AT_PAGESZ, AuxIter};

/// The program's command line, environment and auxiliary vector, as the kernel laid them out on the initial
/// stack: `argc`, `argv[0..argc]`, NULL, `envp[..]`, NULL, auxiliary `(key, value)` pairs, `AT_NULL`.
///
/// Nothing is copied or allocated: the strings are borrowed from the initial stack, which lives as long as the
/// program, hence `&'static CStr`.
#[derive(Clone, Copy, Debug)]
pub struct Args {
    /// Number of arguments.
    argc: usize,
    /// NULL-terminated array of `argc` argument pointers.
    argv: *const *const u8,
    /// NULL-terminated array of environment pointers.
    envp: *const *const u8,
    /// `AT_NULL`-terminated array of `(key, value)` pairs.
    auxv: *const usize,
}

// SAFETY: everything `Args` points to is immutable for the program's life (see `from_initial_stack`), and it
// hands out only shared references to it.
unsafe impl Send for Args {}
// SAFETY: as above.
unsafe impl Sync for Args {}

/// The initial stack pointer, recorded by the start-up code for [`args`].
static INITIAL_SP: AtomicPtr<usize> = AtomicPtr::new(core::ptr::null_mut());

/// The [`Args`] of this program, if it was started through [`entry!`](crate::rt::entry) (else `None`).
pub fn args() -> Option<Args> {
    let sp = INITIAL_SP.load(Ordering::Acquire);
    // SAFETY: only `record_initial_stack` stores a non-null value, and its caller guarantees it is the initial
    // stack pointer.
    (!sp.is_null()).then(|| unsafe { Args::from_initial_stack(sp) })
}

/// Records the initial stack pointer for [`args`].
///
/// # Safety
/// `sp` must be the initial stack pointer the kernel gave the process (pointing at `argc`), and the program must
/// not modify the argument, environment or auxiliary arrays or strings afterwards.
pub(crate) unsafe fn record_initial_stack(sp: *mut usize) {
    INITIAL_SP.store(sp, Ordering::Release);
}

impl Args {
    /// Decodes the initial stack.
    ///
    /// # Safety
    /// As for `record_initial_stack`.
    pub(crate) unsafe fn from_initial_stack(sp: *const usize) -> Self {
        // SAFETY: the kernel's initial stack layout (see the type docs); every array is NULL-terminated, so the
        // walk over envp stays inside it.
        unsafe {
            let argc = *sp;
            let argv = sp.add(1).cast::<*const u8>();
            let envp = argv.add(argc + 1);
            let mut end = envp;
            while !(*end).is_null() {
                end = end.add(1);
            }
            let auxv = end.add(1).cast::<usize>();
            Args { argc, argv, envp, auxv }
        }
    }

    /// The number of arguments, including the program name (usually at least 1, but a program may be executed
    /// with none).
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// The arguments, `argv[0]` (the program name) first.
    pub fn args(&self) -> CStrs {
        CStrs { next: self.argv }
    }

    /// The `i`-th argument, if there are more than `i`.
    pub fn arg(&self, i: usize) -> Option<&'static CStr> {
        self.args().nth(i)
    }

    /// The environment strings, each `NAME=value`.
    pub fn env(&self) -> CStrs {
        CStrs { next: self.envp }
    }

    /// The value of the first environment variable called `name`, if any.
    pub fn var(&self, name: &[u8]) -> Option<&'static CStr> {
        self.env().find_map(|entry| {
            let bytes = entry.to_bytes_with_nul();
            let rest = bytes.strip_prefix(name)?.strip_prefix(b"=")?;
            // SAFETY: `rest` is a suffix of a NUL-terminated string with no interior NUL, so it is one too.
            Some(unsafe { CStr::from_bytes_with_nul_unchecked(rest) })
        })
    }

    /// The auxiliary vector.
    pub fn auxv(&self) -> AuxIter {
        // SAFETY: `auxv` points at the kernel's AT_NULL-terminated vector, immutable for the program's life.
        unsafe { AuxIter::new(self.auxv) }
    }

    /// The value of the auxiliary vector entry `key` (an `AT_*` constant from [`aux`](crate::rt::aux)), if present.
    pub fn aux(&self, key: usize) -> Option<usize> {
        self.auxv().find(|e| e.key == key).map(|e| e.value)
    }

    /// The system page size, from `AT_PAGESZ`.
    pub fn page_size(&self) -> Option<usize> {
        self.aux(AT_PAGESZ)
    }
}

/// Iterator over a NULL-terminated array of C strings ([`Args::args`], [`Args::env`]).
#[derive(Clone, Debug)]
pub struct CStrs {
    /// The next pointer of the array; at worst its NULL terminator.
    next: *const *const u8,
}

impl Iterator for CStrs {
    type Item = &'static CStr;

    fn next(&mut self) -> Option<&'static CStr> {
        // SAFETY: `next` is inside a NULL-terminated array of the initial stack and only advances past non-NULL
        // entries.
        let p = unsafe { *self.next };
        if p.is_null() {
            return None;
        }
        // SAFETY: p was not the terminator, so the next entry is still inside the array.
        self.next = unsafe { self.next.add(1) };
        // SAFETY: the kernel placed a NUL-terminated string at p, which lives, unchanged, as long as the program.
        // The length is measured with this crate's strlen so that no C `strlen` is needed.
        Some(unsafe {
            let len = super::mem::strlen(p);
            CStr::from_bytes_with_nul_unchecked(core::slice::from_raw_parts(p, len + 1))
        })
    }
}

impl FusedIterator for CStrs {}

// SAFETY: as for `Args`.
unsafe impl Send for CStrs {}
// SAFETY: as for `Args`.
unsafe impl Sync for CStrs {}

impl Args {
    /// The raw `argv` and `envp` arrays, for `.init_array` constructors.
    pub(crate) fn raw_argv_envp(&self) -> (*const *const u8, *const *const u8) {
        (self.argv, self.envp)
    }
}
