//! Looking at a System V segment without trusting or changing it: the kernel's facts about it and a copy of its
//! header, read through a read-only attachment.
//!
//! This is the one way this library reads a segment it has not opened as an object: [`reap`](super::reap) decides
//! with it, and operator tools (listing, diagnosing) should use it too. It needs only read permission on the
//! segment, never maps it writable, never waits and never validates beyond classifying what it found, so it works
//! on foreign, corrupt, half-built and other users' segments alike (root reads all of them).
//!
//! ```
//! use shmfusion::object::{self, Contents, ObjectOptions, sysv};
//! use shmfusion::shm::Key;
//! # use core::sync::atomic::AtomicU64;
//! # #[repr(C)] #[derive(Default)] struct Counter(AtomicU64);
//! # // SAFETY: zero is a valid counter, all access is atomic, the layout is the same everywhere.
//! # unsafe impl shmfusion::object::SharedState for Counter {
//! #     const KIND: &'static str = "doc-counter"; const CAPACITY: u64 = 0; const ELEMENT_SIZE: u64 = 0;
//! # }
//! # fn main() -> Result<(), shmfusion::object::ObjectError> {
//! let created = sysv::create::<Counter>(Key::PRIVATE, &ObjectOptions::new())?;
//! let seen = object::inspect(created.region().id())?;
//! assert_eq!(seen.contents(), Contents::Object);
//! let header = seen.header.unwrap();
//! let creator = header.creator.holder().unwrap();
//! assert_eq!(creator.pid, Some(std::process::id()));
//! assert_eq!(header.kind_hash, object::fnv1a(b"doc-counter"));
//! assert!(!seen.header_writable_by_others());
//! # Ok(())
//! # }
//! ```

use super::header::{EMPTY, Header, INITIALISING, MAGIC, Snapshot};
use crate::shm::{AttachOptions, ShmId, Stat};
use rustix::io::Result;

/// What a segment holds, as far as its header shows. Nothing here is validated against a payload type: an
/// [`Contents::Object`] may still be of another kind, version or layout, or corrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contents {
    /// The header starts with the shmfusion [`MAGIC`] (whatever its state).
    Object,
    /// A header without the magic, in state [`EMPTY`] or [`INITIALISING`], in a segment whose size carries the
    /// shmfusion signature ([`sysv::SIZE_SIGNATURE`](super::sysv::SIZE_SIGNATURE)): a creation that has not
    /// written its header yet, or whose creator died before it did (also between setting `INITIALISING` and
    /// storing the magic).
    Unpublished,
    /// Anything else: another program's segment, garbage, or too small for a header.
    Foreign,
}

/// A read-only look at one segment: see [`inspect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// The segment.
    pub id: ShmId,
    /// The kernel's status, read before attaching (so its attach count does not include the inspection's own
    /// attachment). Owner, creator, mode, attach count and creator pid come from the kernel and cannot be forged
    /// by another process.
    pub stat: Stat,
    /// A copy of the header's fields, each read once. Any process that may write the segment can have put
    /// anything here (see [`Inspection::header_writable_by_others`]). `None` when the segment is smaller than a
    /// header, or when it is being created by this very process and its header is not published yet.
    pub header: Option<Snapshot>,
}

impl Inspection {
    /// What the segment holds, judged from its header and size.
    pub fn contents(&self) -> Contents {
        contents_of(self.header, self.stat.size)
    }

    /// Whether users other than the owner may have written the header: the segment's mode grants write
    /// permission to its group or to others. Such a header's fields (flags, creator, liveness) are claims of
    /// whoever wrote last and must not decide anything that the owner's data depends on.
    pub fn header_writable_by_others(&self) -> bool {
        self.stat.mode.bits() & 0o022 != 0
    }
}

/// What an object of `size` bytes with this header holds.
pub(super) fn contents_of(header: Option<Snapshot>, size: usize) -> Contents {
    match header {
        Some(h) if h.magic == MAGIC => Contents::Object,
        Some(h)
            if h.magic == 0
                && (h.state == EMPTY || h.state == INITIALISING)
                && super::sysv::has_size_signature(size) =>
        {
            Contents::Unpublished
        }
        _ => Contents::Foreign,
    }
}

/// Takes a read-only look at segment `id`: its `IPC_STAT` status and, through a brief `SHM_RDONLY` attachment,
/// a copy of its header.
///
/// Nothing is written to the segment. The attachment does update the kernel's attach and detach times and
/// last pid (`shm_atime`, `shm_dtime`, `shm_lpid`), as any `shmat` does. Header fields are read with relaxed
/// loads no wider than a register (see [`load_u64`](super::header::load_u64)), which Rust permits on read-only
/// memory on every target, 32-bit ones included.
///
/// # Errors
/// Those of `shmctl(IPC_STAT)` and `shmat(2)`: `EACCES` without read permission, `EINVAL`/`EIDRM` for a segment
/// that is gone.
pub fn inspect(id: ShmId) -> Result<Inspection> {
    let stat = id.stat()?;
    let header = if stat.size < core::mem::size_of::<Header>() {
        None
    } else {
        // SAFETY: the size is the segment's, read just above (a segment's size never changes); only the header,
        // inside the first page that every mapping has, is read through the attachment.
        let segment = unsafe { crate::shm::Segment::from_raw_parts(id, stat.size) };
        let map = segment.attach(AttachOptions::new().read_only())?;
        // SAFETY: the mapping holds at least a header (checked above) and is page-aligned; every header field is
        // an atomic, valid for any content; `Header::snapshot` only does loads that are sound on read-only memory.
        let header = unsafe { &*map.as_ptr().cast::<Header>() };
        let state = header.state.load(core::sync::atomic::Ordering::Relaxed);
        let me = rustix::process::getpid().as_raw_nonzero().get();
        // This process's own creation in progress: its creator thread may be storing the 64-bit fields right now.
        if stat.creator_pid == me && state != super::header::READY {
            None
        } else {
            Some(header.snapshot())
        }
    };
    Ok(Inspection { id, stat, header })
}
