//! Attachments: mappings of a segment into this process, detached on drop.

use super::{AttachFlags, ShmId};
use crate::sys;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, Ordering};
use rustix::io::{Errno, Result};

/// How to attach: read-only or read-write, executable, at a chosen address.
#[derive(Clone, Copy, Debug)]
pub struct AttachOptions {
    flags: AttachFlags,
    address: Option<NonNull<u8>>,
}

impl Default for AttachOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl AttachOptions {
    /// Read-write, at an address the kernel picks.
    pub const fn new() -> Self {
        Self {
            flags: AttachFlags::empty(),
            address: None,
        }
    }

    /// Map read-only (`SHM_RDONLY`): needs only read permission; writes fault.
    pub const fn read_only(mut self) -> Self {
        self.flags = self.flags.union(AttachFlags::RDONLY);
        self
    }

    /// Map executable too (`SHM_EXEC`).
    pub const fn executable(mut self) -> Self {
        self.flags = self.flags.union(AttachFlags::EXEC);
        self
    }

    /// Map at `address`, which must be a multiple of [`shmlba`](super::shmlba) unless [`AttachOptions::round`]
    /// is set, and must not overlap an existing mapping unless [`AttachOptions::remap`] is set.
    pub const fn at(mut self, address: NonNull<u8>) -> Self {
        self.address = Some(address);
        self
    }

    /// Round the address down to [`shmlba`](super::shmlba) (`SHM_RND`).
    pub const fn round(mut self) -> Self {
        self.flags = self.flags.union(AttachFlags::RND);
        self
    }

    /// Replace whatever is mapped at the address (`SHM_REMAP`).
    ///
    /// # Safety
    /// Nothing in this process may use the memory that the new mapping replaces.
    pub const unsafe fn remap(mut self) -> Self {
        self.flags = self.flags.union(AttachFlags::REMAP);
        self
    }

    /// The flags these options pass to `shmat`.
    pub const fn flags(&self) -> AttachFlags {
        self.flags
    }
}

/// A mapping of a segment, detached (`shmdt`) when dropped.
///
/// The memory is shared with other processes that may write it at any time, so it is never exposed as `&[u8]`:
/// [`Attachment::bytes`] views it as atomics, and [`Attachment::read`]/[`Attachment::write`] copy through them.
/// Raw pointers are available for layers that build their own atomic views.
#[derive(Debug)]
pub struct Attachment {
    id: ShmId,
    ptr: NonNull<u8>,
    len: usize,
    read_only: bool,
}

// SAFETY: the mapping is process-wide; every safe access goes through atomics.
unsafe impl Send for Attachment {}
// SAFETY: as above.
unsafe impl Sync for Attachment {}

impl Attachment {
    pub(super) fn new(id: ShmId, len: usize, options: AttachOptions) -> Result<Self> {
        let addr = options.address.map_or(core::ptr::null_mut(), NonNull::as_ptr);
        // SAFETY: with REMAP the caller of the `unsafe` `AttachOptions::remap` vouched for the range; otherwise the
        // kernel refuses to map over anything.
        let ptr = unsafe { sys::shmat(id.as_raw(), addr, options.flags.bits()) }?;
        let read_only = options.flags.contains(AttachFlags::RDONLY);
        // SAFETY: a mapping `adopt` refuses is not referenced by anything.
        let detach = |p| unsafe { sys::shmdt(p) };
        // SAFETY: `ptr` is a fresh mapping `shmat` just made, owned by nobody else; `detach` is `shmdt`.
        unsafe { Self::adopt(id, ptr, len, read_only, detach) }
    }

    /// Takes ownership of the mapping at `ptr` that `shmat` returned.
    ///
    /// A mapping at address 0 is possible (a caller with `CAP_SYS_RAWIO` asking for an address below `SHMLBA`
    /// with `SHM_RND`, which rounds down to 0) but cannot be represented: it is detached with `detach` rather than
    /// leaked, and the attach fails with `EINVAL`.
    ///
    /// # Safety
    /// `ptr` must be a mapping of segment `id` that `shmat` returned, at least `len` bytes long, that nothing else
    /// owns; `detach` must be `shmdt` or behave like it.
    unsafe fn adopt(
        id: ShmId,
        ptr: *mut u8,
        len: usize,
        read_only: bool,
        detach: impl FnOnce(*mut u8) -> Result<()>,
    ) -> Result<Self> {
        let Some(ptr) = NonNull::new(ptr) else {
            let _ = detach(ptr);
            return Err(Errno::INVAL);
        };
        Ok(Self {
            id,
            ptr,
            len,
            read_only,
        })
    }

    /// The id of the attached segment.
    pub fn id(&self) -> ShmId {
        self.id
    }

    /// The start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length of the mapping in bytes: the segment's size.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment has zero length (never, for a segment the kernel created).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the mapping is read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The mapping as atomic bytes: safe to read, whatever other processes do. Storing into a read-only
    /// mapping faults.
    pub fn bytes(&self) -> &[AtomicU8] {
        // SAFETY: the mapping is `len` bytes, page-aligned, lives as long as `self`, and AtomicU8 has the size and
        // alignment of u8; all access through the slice is atomic, so racing processes cause no data race.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU8>(), self.len) }
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    ///
    /// # Errors
    /// `EINVAL` if the range is out of bounds.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let src = self.range(offset, buf.len())?;
        for (d, s) in buf.iter_mut().zip(src) {
            *d = s.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// Copies `data` to `offset`.
    ///
    /// # Errors
    /// `EINVAL` if the range is out of bounds, `EACCES` if the mapping is read-only.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        if self.read_only {
            return Err(Errno::ACCESS);
        }
        let dst = self.range(offset, data.len())?;
        for (d, s) in dst.iter().zip(data) {
            d.store(*s, Ordering::Relaxed);
        }
        Ok(())
    }

    fn range(&self, offset: usize, len: usize) -> Result<&[AtomicU8]> {
        let end = offset.checked_add(len).ok_or(Errno::INVAL)?;
        self.bytes().get(offset..end).ok_or(Errno::INVAL)
    }

    /// Detaches now, reporting the error that `drop` would swallow.
    ///
    /// # Errors
    /// `EINVAL` if the mapping is no longer attached at its address (somebody detached it behind our back).
    pub fn detach(self) -> Result<()> {
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        // SAFETY: `self` is consumed, so no reference into the mapping outlives this call.
        unsafe { sys::shmdt(ptr) }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: references into the mapping borrow `self`, so none outlive this call.
        let _ = unsafe { sys::shmdt(self.ptr.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_at_address_zero_is_detached_not_leaked() {
        let mut detached = None;
        // SAFETY: `adopt` only hands the null pointer to the recording closure; nothing is dereferenced.
        let r = unsafe {
            Attachment::adopt(ShmId::from_raw(1), core::ptr::null_mut(), 4096, false, |p| {
                detached = Some(p);
                Ok(())
            })
        };
        assert_eq!(r.unwrap_err(), Errno::INVAL);
        assert_eq!(detached, Some(core::ptr::null_mut()), "the mapping at 0 was detached");
    }
}
