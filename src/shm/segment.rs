//! Segment ids, creation and opening, control operations, and removal.

use super::{AttachOptions, Attachment, GetFlags, HugePageSize, Key, Stat};
use crate::sys::{self, abi};
use rustix::fs::Mode;
use rustix::io::{Errno, Result};

/// The permission bits `shmget` takes (the low nine bits of its flags).
const PERMISSION_BITS: u32 = 0o777;

/// `shmget(key, size, flags | mode)`: the id of the segment for `key`, creating it if `flags` say so.
///
/// The thin form of `shmget(2)`; [`Options`] is the safer way in. `mode` is taken verbatim (no umask): for a new
/// segment it is the permission; for an existing one it is the access requested, and `Mode::empty()` requests
/// none, so the call then succeeds for any segment, readable or not.
///
/// # Errors
/// `EEXIST` (exclusive create of a taken key), `ENOENT` (no segment and no `CREATE`), `EINVAL` (size out of
/// `SHMMIN..=SHMMAX`, or larger than the existing segment, or a bad huge page size), `EACCES` (mode not granted),
/// `ENOSPC` (`SHMMNI` or `SHMALL` reached), `ENOMEM`, `EPERM` (huge pages not permitted).
pub fn get(key: Key, size: usize, flags: GetFlags, mode: Mode) -> Result<ShmId> {
    sys::shmget(key.as_raw(), size, flags.bits() | (mode.bits() & PERMISSION_BITS)).map(ShmId)
}

/// A segment id, as `shmget` returns it. Ids are system-wide and may be reused after a segment is destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShmId(i32);

impl ShmId {
    /// An id from its raw value.
    pub const fn from_raw(raw: i32) -> Self {
        ShmId(raw)
    }

    /// The raw id.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// `shmctl(IPC_STAT)`: the segment's status. See [`Stat`].
    ///
    /// # Errors
    /// `EINVAL` (no such segment), `EACCES` (no read permission), `EIDRM`.
    pub fn stat(self) -> Result<Stat> {
        let mut ds = abi::shmid64_ds::default();
        // SAFETY: `ds` is a zeroed shmid64_ds, the struct IPC_STAT writes.
        unsafe { sys::shmctl(self.0, abi::IPC_STAT, (&mut ds as *mut abi::shmid64_ds).cast()) }?;
        Ok(Stat::from_kernel(&ds))
    }

    /// `shmctl(IPC_SET)`: sets the owner uid and gid and the permission bits (only `0o777` is kept); updates the
    /// change time.
    ///
    /// # Errors
    /// `EPERM` (the caller is neither owner nor creator nor privileged), `EINVAL` (invalid uid/gid or no such
    /// segment), `EACCES` (the read that fetches the other fields was refused).
    pub fn set(self, uid: u32, gid: u32, mode: Mode) -> Result<()> {
        let mut ds = abi::shmid64_ds::default();
        ds.shm_perm.uid = uid;
        ds.shm_perm.gid = gid;
        ds.shm_perm.mode = (mode.bits() & PERMISSION_BITS) as abi::kernel_mode;
        // SAFETY: `ds` is a valid shmid64_ds for IPC_SET to read; the kernel uses only uid, gid and mode.
        unsafe { sys::shmctl(self.0, abi::IPC_SET, (&mut ds as *mut abi::shmid64_ds).cast()) }.map(drop)
    }

    /// `shmctl(IPC_RMID)`: marks the segment for removal. It is destroyed once the last process detaches; until
    /// then its key reads as [`Key::PRIVATE`], `shmget` no longer finds it, and (on Linux) its id can still be
    /// attached.
    ///
    /// # Errors
    /// `EPERM` (neither owner nor creator), `EINVAL` (no such segment), `EIDRM`.
    pub fn remove(self) -> Result<()> {
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { sys::shmctl(self.0, abi::IPC_RMID, core::ptr::null_mut()) }.map(drop)
    }

    /// `shmctl(SHM_LOCK)`: keeps the segment's pages in memory (no swapping). A no-op for huge-page segments.
    ///
    /// # Errors
    /// `EPERM` (neither owner nor creator nor `CAP_IPC_LOCK`, or a zero `RLIMIT_MEMLOCK`), `ENOMEM`, `EINVAL`.
    pub fn lock(self) -> Result<()> {
        // SAFETY: SHM_LOCK takes no buffer.
        unsafe { sys::shmctl(self.0, abi::SHM_LOCK, core::ptr::null_mut()) }.map(drop)
    }

    /// `shmctl(SHM_UNLOCK)`: lets the segment's pages be swapped again.
    ///
    /// # Errors
    /// As for [`ShmId::lock`].
    pub fn unlock(self) -> Result<()> {
        // SAFETY: SHM_UNLOCK takes no buffer.
        unsafe { sys::shmctl(self.0, abi::SHM_UNLOCK, core::ptr::null_mut()) }.map(drop)
    }

    /// `shmat(2)` with explicit options; the size comes from `IPC_STAT`. See [`AttachOptions`].
    ///
    /// # Errors
    /// As for [`Segment::attach`], and those of [`ShmId::stat`].
    pub fn attach(self, options: AttachOptions) -> Result<Attachment> {
        let size = self.stat()?.size;
        Attachment::new(self, size, options)
    }
}

/// Options for creating or opening a segment: size, permission, huge pages, swap reservation.
///
/// Defaults: mode `0600`, normal pages, swap reserved.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    size: usize,
    mode: Mode,
    flags: GetFlags,
    huge_page_size: HugePageSize,
}

impl Options {
    /// Options for a segment of `size` bytes.
    pub const fn new(size: usize) -> Self {
        Self {
            size,
            mode: Mode::RUSR.union(Mode::WUSR),
            flags: GetFlags::empty(),
            huge_page_size: HugePageSize::DEFAULT,
        }
    }

    /// The permission bits of a new segment, or the access requested when opening (default `0600`).
    pub const fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Back the segment with huge pages of the given size (`SHM_HUGETLB`).
    pub const fn huge_pages(mut self, size: HugePageSize) -> Self {
        self.flags = self.flags.union(GetFlags::HUGETLB);
        self.huge_page_size = size;
        self
    }

    /// Do not reserve swap space (`SHM_NORESERVE`).
    pub const fn no_reserve(mut self) -> Self {
        self.flags = self.flags.union(GetFlags::NORESERVE);
        self
    }

    fn get(&self, key: Key, extra: GetFlags) -> Result<Segment> {
        let flags = GetFlags::from_bits_retain(self.flags.bits() | self.huge_page_size.bits()).union(extra);
        let id = get(key, self.size, flags, self.mode)?;
        Ok(Segment { id, size: self.size })
    }

    /// Creates a new segment; fails with `EEXIST` if `key` already has one (`IPC_CREAT | IPC_EXCL`).
    ///
    /// The kernel checks and creates under one lock, so exactly one of several racing creators succeeds.
    /// [`Key::PRIVATE`] always creates.
    ///
    /// # Errors
    /// As for [`get`].
    pub fn create_exclusive(&self, key: Key) -> Result<Segment> {
        self.get(key, GetFlags::CREATE | GetFlags::EXCLUSIVE)
    }

    /// Opens the segment for `key`, creating it if there is none (`IPC_CREAT`).
    ///
    /// Beware key squatting: if another user created the key first, this silently returns their segment. Prefer
    /// [`Options::create_exclusive`] and [`open_verified`](super::open_verified).
    ///
    /// # Errors
    /// As for [`get`].
    pub fn create(&self, key: Key) -> Result<Segment> {
        self.get(key, GetFlags::CREATE)
    }

    /// Opens the existing segment for `key`, requesting the access in the mode bits; its size must be at least
    /// this options' size. The returned [`Segment`] has the size found by `IPC_STAT`.
    ///
    /// # Errors
    /// `ENOENT` (no segment; always for [`Key::PRIVATE`], which names no existing segment), `EINVAL` (smaller than
    /// requested), `EACCES`, and those of [`ShmId::stat`].
    pub fn open(&self, key: Key) -> Result<Segment> {
        // shmget(IPC_PRIVATE, ..) always creates: "opening" it would make a segment nobody owns, and leak it if the
        // stat below failed (as it does for a caller without read permission on the new segment).
        if key.is_private() {
            return Err(Errno::NOENT);
        }
        let id = get(key, self.size, GetFlags::empty(), self.mode)?;
        let size = id.stat()?.size;
        Ok(Segment { id, size })
    }
}

/// A segment: its id and size. It does not own the segment: dropping it neither detaches nor removes anything;
/// see [`Segment::remove_on_drop`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    id: ShmId,
    size: usize,
}

impl Segment {
    /// A segment from an id found elsewhere; its size is read with `IPC_STAT`.
    ///
    /// # Errors
    /// As for [`ShmId::stat`].
    pub fn from_id(id: ShmId) -> Result<Self> {
        Ok(Self {
            id,
            size: id.stat()?.size,
        })
    }

    /// A segment from an id and a size known by other means (for example the size it was created with), without
    /// the `IPC_STAT` of [`Segment::from_id`]: attaching it then costs one system call and needs no permission
    /// beyond the attach's own.
    ///
    /// # Safety
    /// `size` must be at most the segment's real size: attachments of the returned segment expose `size` bytes
    /// to safe code ([`Attachment::bytes`]), and bytes beyond the segment's last page are not mapped.
    pub const unsafe fn from_raw_parts(id: ShmId, size: usize) -> Self {
        Self { id, size }
    }

    /// The segment id.
    pub const fn id(&self) -> ShmId {
        self.id
    }

    /// The size in bytes asked for at creation (the mapping is this rounded up to whole pages).
    pub const fn size(&self) -> usize {
        self.size
    }

    /// `shmat(2)`: maps the segment; the [`Attachment`] detaches on drop.
    ///
    /// # Errors
    /// `EACCES` (no read, or read-write, or execute permission), `EINVAL` (no such segment, or an address that is
    /// unaligned without `RND`, or taken without `REMAP`, or `REMAP` without an address), `EIDRM` (removed
    /// meanwhile), `ENOMEM`.
    pub fn attach(&self, options: AttachOptions) -> Result<Attachment> {
        Attachment::new(self.id, self.size, options)
    }

    /// See [`ShmId::stat`].
    pub fn stat(&self) -> Result<Stat> {
        self.id.stat()
    }

    /// See [`ShmId::set`].
    pub fn set(&self, uid: u32, gid: u32, mode: Mode) -> Result<()> {
        self.id.set(uid, gid, mode)
    }

    /// See [`ShmId::remove`].
    pub fn remove(&self) -> Result<()> {
        self.id.remove()
    }

    /// See [`ShmId::lock`].
    pub fn lock(&self) -> Result<()> {
        self.id.lock()
    }

    /// See [`ShmId::unlock`].
    pub fn unlock(&self) -> Result<()> {
        self.id.unlock()
    }

    /// A guard that marks the segment for removal when dropped, so it cannot leak past its owner's scope.
    pub fn remove_on_drop(&self) -> RemoveGuard {
        RemoveGuard { id: Some(self.id) }
    }
}

/// Marks a segment for removal (`IPC_RMID`) when dropped. Attached processes keep their mappings; the kernel
/// destroys the segment after the last detach.
#[derive(Debug)]
#[must_use = "dropping the guard removes the segment at once"]
pub struct RemoveGuard {
    id: Option<ShmId>,
}

impl RemoveGuard {
    /// The guarded id.
    pub fn id(&self) -> Option<ShmId> {
        self.id
    }

    /// Removes now, reporting the error that `drop` would swallow. A segment already gone counts as removed.
    ///
    /// # Errors
    /// As for [`ShmId::remove`], except `EINVAL`/`EIDRM` for a segment already destroyed.
    pub fn remove(mut self) -> Result<()> {
        match self.id.take().map(ShmId::remove) {
            Some(Err(Errno::INVAL | Errno::IDRM)) | Some(Ok(())) | None => Ok(()),
            Some(Err(e)) => Err(e),
        }
    }

    /// Keeps the segment: the guard no longer removes it.
    pub fn disarm(mut self) -> Option<ShmId> {
        self.id.take()
    }
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = id.remove();
        }
    }
}
