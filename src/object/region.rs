//! Regions: the mapped memory an object lives in, whatever kind of shared memory backs it.

use crate::shm::Attachment;
use core::ptr::NonNull;
use rustix::fd::AsFd;
use rustix::io::Result;
use rustix::mm::{MapFlags, ProtFlags};

/// Mapped, shared memory that an object can live in.
///
/// Typed objects hand out references through which their payload is written, so they are only built on a
/// region that is [`writable`](Region::writable); a read-only one is refused with `EACCES`.
///
/// # Safety
/// `base()..base() + len()` must be mapped readable, and writable too if `writable()` says so, shared with the
/// other processes that map the same object, and stay mapped while `self` lives; `base()` must be page-aligned.
pub unsafe trait Region {
    /// The start of the mapping.
    fn base(&self) -> NonNull<u8>;
    /// The length of the mapping in bytes.
    fn len(&self) -> usize;
    /// Whether the mapping may be written (a read-only one faults on a store).
    fn writable(&self) -> bool;
    /// Whether the mapping is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// SAFETY: an attachment is a page-aligned shared mapping of `len()` bytes until dropped, writable unless attached
// with `SHM_RDONLY`.
unsafe impl Region for Attachment {
    fn base(&self) -> NonNull<u8> {
        // SAFETY: an `Attachment` never holds address 0 (see `Attachment::adopt`).
        unsafe { NonNull::new_unchecked(self.as_ptr()) }
    }
    fn len(&self) -> usize {
        Attachment::len(self)
    }
    fn writable(&self) -> bool {
        !self.is_read_only()
    }
}

/// A shared `mmap` of a file descriptor (POSIX shared memory, memfd, or a file), unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is process-wide; all access to shared objects goes through atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0, shared and read-write.
    ///
    /// # Errors
    /// Those of `mmap(2)` (`EACCES` for a descriptor not open read-write, `ENOMEM`, `EINVAL` for length 0).
    pub fn new(fd: impl AsFd, len: usize) -> Result<Self> {
        // SAFETY: a fresh mapping at a kernel-chosen address replaces nothing.
        let ptr = unsafe {
            rustix::mm::mmap(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(rustix::io::Errno::INVAL)?;
        Ok(Self { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: references into the mapping borrow `self`, so none outlive this call.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: `Mapping::new` creates a shared read-write mapping of `len` bytes, page-aligned, kept until drop.
unsafe impl Region for Mapping {
    fn base(&self) -> NonNull<u8> {
        self.ptr
    }
    fn len(&self) -> usize {
        self.len
    }
    fn writable(&self) -> bool {
        true
    }
}
