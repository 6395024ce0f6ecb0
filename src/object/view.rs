//! Reading an object out of a mapping that a tool keeps: the header and its creator, for any kind of object,
//! without knowing its type.
//!
//! [`inspect`](super::inspect()) takes a brief look at a System V segment's header. Tools that go on to read the
//! payload (`shmfusion list`, `watch`, `record` with [`BufferView`](crate::buffer::inspect::BufferView)) keep a
//! read-only mapping instead (`SHM_RDONLY`, or [`ReadOnlyMapping`] of a POSIX, memfd or file descriptor opened
//! read-only) and read the header from it here: every field through
//! `Relaxed` loads of [`AtomicU8`]s, after an acquire fence that follows the `state` load, so nothing needs
//! write access on any target. [`read_header`] then validates it against the mapping itself (the header's own
//! fingerprint is the expectation), giving the same typed [`HeaderError`]s as opening would.

use core::sync::atomic::{AtomicU8, Ordering, fence};

use super::header::{Header, HeaderError, Snapshot, validate};
use super::{Fingerprint, header};
use crate::liveness::{Holder, RoleRecord};
use rustix::fd::AsFd;
use rustix::mm::{MapFlags, ProtFlags};

/// A header read out of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderView {
    /// The header's fields (the creator's role words included).
    pub snapshot: Snapshot,
}

impl HeaderView {
    /// Whether the object was created to persist ([`Lifecycle::Persist`](super::Lifecycle::Persist)).
    pub fn persistent(&self) -> bool {
        self.snapshot.flags & header::flags::PERSIST != 0
    }

    /// The creator as the header records it, judged now (see [`liveness`](crate::liveness)); `None` if it never
    /// stamped the header.
    pub fn creator(&self) -> Option<Holder> {
        self.snapshot.creator.holder()
    }

    /// The payload's fingerprint as the header states it.
    pub fn fingerprint(&self) -> Fingerprint {
        let s = &self.snapshot;
        Fingerprint {
            kind_hash: s.kind_hash,
            type_id: s.type_id,
            size: s.payload_size,
            align: s.payload_align,
            capacity: s.capacity,
            element_size: s.element_size,
        }
    }
}

struct Fields<'a>(&'a [AtomicU8]);

impl Fields<'_> {
    fn u64(&self, offset: usize) -> u64 {
        let mut b = [0u8; 8];
        self.copy(offset, &mut b);
        u64::from_ne_bytes(b)
    }
    fn u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.copy(offset, &mut b);
        u32::from_ne_bytes(b)
    }
    fn copy(&self, offset: usize, out: &mut [u8]) {
        if let Some(src) = self.0.get(offset..offset.saturating_add(out.len())) {
            for (d, s) in out.iter_mut().zip(src) {
                *d = s.load(Ordering::Relaxed);
            }
        }
    }
}

/// Reads and validates the header at the start of `mapping` (the whole mapping: its length bounds the claims).
///
/// # Errors
/// [`HeaderError::TooShort`] when `mapping` cannot hold a header, [`HeaderError::NotShmfusion`] for foreign
/// segments, and the other [`HeaderError`]s for unfinished, corrupt or truncated objects.
pub fn read_header(mapping: &[AtomicU8]) -> Result<HeaderView, HeaderError> {
    use core::mem::offset_of;
    if mapping.len() < core::mem::size_of::<Header>() {
        return Err(HeaderError::TooShort {
            len: mapping.len() as u64,
        });
    }
    let f = Fields(mapping);
    let state = f.u32(offset_of!(Header, state));
    fence(Ordering::Acquire);
    let snapshot = Snapshot {
        state,
        magic: f.u64(offset_of!(Header, magic)),
        version: f.u32(offset_of!(Header, version)),
        total_size: f.u64(offset_of!(Header, total_size)),
        payload_offset: f.u64(offset_of!(Header, payload_offset)),
        payload_size: f.u64(offset_of!(Header, payload_size)),
        payload_align: f.u32(offset_of!(Header, payload_align)),
        flags: f.u32(offset_of!(Header, flags)),
        kind_hash: f.u64(offset_of!(Header, kind_hash)),
        type_id: f.u64(offset_of!(Header, type_id)),
        capacity: f.u64(offset_of!(Header, capacity)),
        element_size: f.u64(offset_of!(Header, element_size)),
        creator_uid: f.u32(offset_of!(Header, creator_uid)),
        creator: {
            let at = offset_of!(Header, creator);
            RoleRecord::read_with(|o| f.u64(at + o), |o| f.u32(at + o))
        },
    };
    let view = HeaderView { snapshot };
    validate(&snapshot, &view.fingerprint(), mapping.len() as u64)?;
    Ok(view)
}

/// A read-only shared mapping of a file descriptor (POSIX shared memory, memfd or file), unmapped on drop.
#[derive(Debug)]
pub struct ReadOnlyMapping {
    ptr: core::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is process-wide and only read through atomics.
unsafe impl Send for ReadOnlyMapping {}
// SAFETY: as above.
unsafe impl Sync for ReadOnlyMapping {}

impl ReadOnlyMapping {
    /// Maps `len` bytes of `fd` from offset 0, shared and read-only (`fd` needs only read access).
    ///
    /// # Errors
    /// Those of `mmap(2)` (`EACCES`, `ENOMEM`, `EINVAL` for length 0).
    pub fn new(fd: impl AsFd, len: usize) -> rustix::io::Result<Self> {
        // SAFETY: a fresh mapping at a kernel-chosen address replaces nothing.
        let ptr = unsafe { rustix::mm::mmap(core::ptr::null_mut(), len, ProtFlags::READ, MapFlags::SHARED, fd, 0) }?;
        let ptr = core::ptr::NonNull::new(ptr.cast::<u8>()).ok_or(rustix::io::Errno::INVAL)?;
        Ok(Self { ptr, len })
    }

    /// The mapping as atomic bytes (loads only: a store would fault).
    pub fn bytes(&self) -> &[AtomicU8] {
        // SAFETY: the mapping is `len` readable bytes, page-aligned, alive as long as `self`; AtomicU8 has the
        // size and alignment of u8 and every access through the slice is atomic.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU8>(), self.len) }
    }
}

impl Drop for ReadOnlyMapping {
    fn drop(&mut self) {
        // SAFETY: references into the mapping borrow `self`, so none outlive this call.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::buffer::{BroadcastRing, Latest};
    use crate::object::{Lifecycle, ObjectOptions, SharedState, fd, sysv};
    use crate::shm::{AttachOptions, Key};

    #[test]
    fn header_of_a_read_only_attachment() {
        let options = ObjectOptions::new().lifecycle(Lifecycle::Persist);
        let mut object = sysv::create::<BroadcastRing<u64, 8>>(Key::PRIVATE, &options).unwrap();
        let id = object.region().id();
        let map = id.attach(AttachOptions::new().read_only()).unwrap();
        let view = read_header(map.bytes()).unwrap();
        assert_eq!(view.snapshot, object.header().snapshot());
        assert!(view.persistent());
        let creator = view.creator().unwrap();
        assert_eq!(creator.pid, Some(std::process::id()));
        assert_eq!(creator.liveness, crate::liveness::Liveness::Alive);
        assert_eq!(Some(creator), object.creator());
        assert_eq!(view.fingerprint(), options.fingerprint::<BroadcastRing<u64, 8>>());
        object.persist();
        drop(object);
        drop(map);
        id.remove().unwrap();
    }

    #[test]
    fn foreign_short_and_truncated_mappings_are_refused() {
        let segment = crate::shm::Options::new(4096).create_exclusive(Key::PRIVATE).unwrap();
        let _guard = segment.remove_on_drop();
        let rw = segment.attach(AttachOptions::new()).unwrap();
        let map = segment.attach(AttachOptions::new().read_only()).unwrap();
        assert_eq!(
            read_header(&map.bytes()[..100]).err(),
            Some(HeaderError::TooShort { len: 100 })
        );
        assert_eq!(read_header(map.bytes()).err(), Some(HeaderError::NotReady { state: 0 }));
        rw.write(0, b"garbage!").unwrap();
        assert!(matches!(
            read_header(map.bytes()),
            Err(HeaderError::NotShmfusion { .. })
        ));
    }

    #[test]
    fn header_of_a_posix_object_mapped_read_only() {
        let name = std::ffi::CString::new(std::format!("/shmfusion-inspect-{}", std::process::id())).unwrap();
        let object = fd::posix::create::<Latest<u64>>(&name, &ObjectOptions::new()).unwrap();
        let file = rustix::shm::open(name.as_c_str(), rustix::shm::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
        let len = rustix::fs::fstat(&file).unwrap().st_size as usize;
        let map = ReadOnlyMapping::new(&file, len).unwrap();
        let view = read_header(map.bytes()).unwrap();
        assert_eq!(
            view.snapshot.kind_hash,
            crate::object::fnv1a(<Latest<u64> as SharedState>::KIND.as_bytes())
        );
        // Truncated: the header claims more than the mapping shows.
        assert!(matches!(
            read_header(&map.bytes()[..300]),
            Err(HeaderError::Truncated { .. })
        ));
        drop(object);
    }
}
