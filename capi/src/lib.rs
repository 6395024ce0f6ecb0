//! The C ABI of shmfusion: shared objects (System V by key, POSIX shared memory by name, memfd) holding broadcast
//! rings of fixed-size samples, for C and Zig programs. `#![no_std]`, no allocation, no libc: the library issues
//! its system calls itself, so the static library links into a `-nostdlib -static` program.
//!
//! Conventions (see `include/shmfusion.h`, generated from this file):
//! - every function returns `0` or a negative errno-style code (`SF_E*`, [`sf_strerror`] names it);
//! - every pointer is checked for null and alignment, every length against the ring's element size;
//! - handles live in storage the caller provides (`sf_object`, `sf_broadcast_writer`, `sf_broadcast_reader`):
//!   opening marks the storage live, closing marks it dead, any other call on dead storage is `SF_EINVAL`;
//! - nothing panics across the boundary: the library is built with `panic = "abort"` and its paths that could
//!   panic (slice bounds) are guarded by the length checks.
//!
//! Thread safety: one handle (object, writer, reader) must not be used by two threads at once; distinct handles
//! on the same object may be used concurrently from any threads and processes. Readers and writers borrow their
//! object's mapping: close them before closing the object.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]

use core::ffi::{CStr, c_char, c_int, c_void};
use core::mem::MaybeUninit;
use core::time::Duration;

use rustix::fd::OwnedFd;
use shmfusion::buffer::{
    BroadcastLayout, BroadcastView, BroadcastViewReader, BroadcastViewWriter, Error as BufError, LatestLayout,
    LatestView, SpscLayout, SpscView,
};
use shmfusion::object::{
    self, HeaderError, Mapping, ObjectError, ObjectOptions, PayloadDesc, RawShared, Region, fd, sysv,
};

/// Checks at build time that the C storage type `$c` can hold a live `$t`.
macro_rules! storage {
    ($c:ty, $t:ty) => {
        const _: () = assert!(
            core::mem::size_of::<$crate::Cell<$t>>() <= core::mem::size_of::<$c>()
                && core::mem::align_of::<$crate::Cell<$t>>() <= core::mem::align_of::<$c>()
        );
    };
}
mod arm_unwind;
mod latest;
mod samples;
mod spsc;

pub use latest::*;
pub use samples::*;
use shmfusion::shm::{Attachment, Key, VerifyError};
pub use spsc::*;

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Unreachable by construction (see the crate docs); never unwind into C: end the process as `abort(3)`
    // would.
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::ABORT);
    loop {
        core::hint::spin_loop();
    }
}

/// Success.
pub const SF_OK: c_int = 0;
/// Invalid argument: a null or misaligned pointer, a length that is not the element size, a bad layout, or a
/// handle that is not open.
pub const SF_EINVAL: c_int = -22;
/// Nothing new to receive.
pub const SF_EAGAIN: c_int = -11;
/// The reader was lapped: samples were overwritten before it read them (their number is reported separately).
pub const SF_EOVERFLOW: c_int = -75;
/// The writer role is held by a live process (or the handle storage is already open).
pub const SF_EBUSY: c_int = -16;
/// The wait timed out.
pub const SF_ETIMEDOUT: c_int = -110;
/// The writer process is gone.
pub const SF_EPIPE: c_int = -32;
/// Positions found in shared memory are inconsistent (a buggy or hostile peer).
pub const SF_EPROTO: c_int = -71;
/// The object has another kind, type name or layout (element size, alignment, capacity).
pub const SF_EPROTOTYPE: c_int = -91;
/// Not a shmfusion object, or its header is corrupt.
pub const SF_EBADMSG: c_int = -74;
/// The object was written by another format version.
pub const SF_EPROTONOSUPPORT: c_int = -93;
/// The object's creator has not finished initialising it (or died doing so).
pub const SF_ENODATA: c_int = -61;
/// The segment belongs to another user or its mode is more permissive than asked.
pub const SF_EACCES: c_int = -13;
/// The object is too large for this platform.
pub const SF_EFBIG: c_int = -27;
/// The SPSC ring is full.
pub const SF_ENOSPC: c_int = -28;
/// The SPSC consumer process is gone.
pub const SF_ECONNRESET: c_int = -104;
/// A latest-value read found the value changing under it on every one of its bounded attempts.
pub const SF_EDEADLK: c_int = -35;
/// A named object is not a regular file (a symbolic link, FIFO, device, directory or socket).
pub const SF_ENODEV: c_int = -19;
/// A named object was replaced by another file while it was being opened.
pub const SF_ESTALE: c_int = -116;
/// The peer closed its end cleanly (released its role): nothing more will come, or nothing more is taken.
pub const SF_ESHUTDOWN: c_int = -108;

/// A broadcast ring: one writer, any number of readers; the writer overwrites the oldest sample.
pub const SF_KIND_BROADCAST: u32 = 1;
/// A single-producer single-consumer ring: the producer waits (or fails) when it is full.
pub const SF_KIND_SPSC: u32 = 2;
/// A latest-value slot: one writer, any number of readers of the newest value (`capacity` must be 1).
pub const SF_KIND_LATEST: u32 = 3;

/// What an object holds, given by the caller and checked against the object's header.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sf_desc {
    /// The buffer kind: `SF_KIND_BROADCAST`, `SF_KIND_SPSC` or `SF_KIND_LATEST`.
    pub kind: u32,
    /// Permission bits of a new object, and the most an opened one may grant (0: `0600`).
    pub mode: u32,
    /// Element size in bytes (> 0).
    pub element_size: u64,
    /// Element alignment: 1, 2, 4 or 8.
    pub element_align: u64,
    /// Number of samples the buffer holds: a power of two (1 for a latest-value slot).
    pub capacity: u64,
    /// The type name both sides agree on (a NUL-terminated string, e.g. `"shmfusion.StampedImu"`).
    pub type_name: *const c_char,
}

/// Storage for an open object (caller-provided, any 8-byte-aligned memory; contents private).
#[repr(C, align(8))]
pub struct sf_object {
    /// Private to the library: zero it before the first open, never change it.
    pub opaque: [u64; 96],
}

/// Storage for a broadcast writer (caller-provided; contents private).
#[repr(C, align(8))]
pub struct sf_broadcast_writer {
    /// Private to the library: zero it before the first open, never change it.
    pub opaque: [u64; 16],
}

/// Storage for a broadcast reader (caller-provided; contents private).
#[repr(C, align(8))]
pub struct sf_broadcast_reader {
    /// Private to the library: zero it before the first open, never change it.
    pub opaque: [u64; 16],
}

/// Marks caller storage that holds a live handle.
pub(crate) const LIVE: u64 = u64::from_le_bytes(*b"sfLIVE\x01\x00");

#[repr(C)]
pub(crate) struct Cell<T> {
    pub(crate) live: u64,
    value: MaybeUninit<T>,
}

enum Backing {
    Sysv(RawShared<Attachment>),
    /// The descriptor of a memfd object is kept open (owned) as long as the object.
    Fd(RawShared<Mapping>, #[allow(dead_code)] Option<OwnedFd>),
}

/// A buffer's geometry, one per kind.
#[derive(Clone, Copy)]
enum Layout {
    Broadcast(BroadcastLayout),
    Spsc(SpscLayout),
    Latest(LatestLayout),
}

impl Layout {
    fn payload(&self) -> PayloadDesc {
        match self {
            Layout::Broadcast(l) => l.payload(),
            Layout::Spsc(l) => l.payload(),
            Layout::Latest(l) => l.payload(),
        }
    }
}

pub(crate) struct ObjectState {
    backing: Backing,
    layout: Layout,
}

impl ObjectState {
    fn raw(&self) -> &dyn ViewOf {
        match &self.backing {
            Backing::Sysv(o) => o,
            Backing::Fd(o, _) => o,
        }
    }

    /// The object's broadcast ring (`None`: another kind).
    pub(crate) fn broadcast(&self) -> Option<BroadcastView<'static>> {
        let Layout::Broadcast(layout) = self.layout else {
            return None;
        };
        self.raw().broadcast(&layout)
    }

    /// The object's SPSC ring (`None`: another kind).
    pub(crate) fn spsc(&self) -> Option<SpscView<'static>> {
        let Layout::Spsc(layout) = self.layout else { return None };
        self.raw().spsc(&layout)
    }

    /// The object's latest-value slot (`None`: another kind).
    pub(crate) fn latest(&self) -> Option<LatestView<'static>> {
        let Layout::Latest(layout) = self.layout else {
            return None;
        };
        self.raw().latest(&layout)
    }
}

/// Views of a raw object of any backing, with the mapping's lifetime erased to `'static`: a view points into the
/// object's mapping, not into the `ObjectState`, and the C contract (crate docs) is that handles are closed before
/// their object, so the mapping outlives every handle that stores a view.
trait ViewOf {
    fn broadcast(&self, layout: &BroadcastLayout) -> Option<BroadcastView<'static>>;
    fn spsc(&self, layout: &SpscLayout) -> Option<SpscView<'static>>;
    fn latest(&self, layout: &LatestLayout) -> Option<LatestView<'static>>;
}

impl<R: Region> ViewOf for RawShared<R> {
    fn broadcast(&self, layout: &BroadcastLayout) -> Option<BroadcastView<'static>> {
        let view = BroadcastView::new(self, layout).ok()?;
        // SAFETY: the view points into the mapping, which outlives every handle holding it (see `ViewOf`).
        Some(unsafe { core::mem::transmute::<BroadcastView<'_>, BroadcastView<'static>>(view) })
    }

    fn spsc(&self, layout: &SpscLayout) -> Option<SpscView<'static>> {
        let view = SpscView::new(self, layout).ok()?;
        // SAFETY: as above.
        Some(unsafe { core::mem::transmute::<SpscView<'_>, SpscView<'static>>(view) })
    }

    fn latest(&self, layout: &LatestLayout) -> Option<LatestView<'static>> {
        let view = LatestView::new(self, layout).ok()?;
        // SAFETY: as above.
        Some(unsafe { core::mem::transmute::<LatestView<'_>, LatestView<'static>>(view) })
    }
}

storage!(sf_object, ObjectState);
storage!(sf_broadcast_writer, BroadcastViewWriter<'static>);
storage!(sf_broadcast_reader, BroadcastViewReader<'static>);

/// The storage behind `p` as a cell, if `p` is non-null and aligned.
///
/// # Safety
/// A non-null `p` must point to writable storage of type `C`, not used by another thread during the call.
pub(crate) unsafe fn cell<'s, C, T>(p: *mut C) -> Option<&'s mut Cell<T>> {
    if p.is_null() || !p.cast::<u8>().cast::<u64>().is_aligned() {
        return None;
    }
    // SAFETY: non-null, aligned for `Cell<T>` (its alignment is at most `C`'s, checked by `storage!`), in bounds
    // (size checked by `storage!`), exclusively ours during the call by the caller's contract; `Cell`'s `live`
    // word is a plain integer (any bits valid) and `value` is `MaybeUninit`.
    Some(unsafe { &mut *p.cast::<Cell<T>>() })
}

/// The live value in the storage behind `p`.
///
/// # Safety
/// As for [`cell`].
pub(crate) unsafe fn live<'s, C, T>(p: *mut C) -> Result<&'s mut T, c_int> {
    // SAFETY: forwarded.
    let c = unsafe { cell::<C, T>(p) }.ok_or(SF_EINVAL)?;
    if c.live != LIVE {
        return Err(SF_EINVAL);
    }
    // SAFETY: `live == LIVE` only after `put` initialised the value (and until `take` clears it).
    Ok(unsafe { c.value.assume_init_mut() })
}

/// Moves `value` into the storage behind `p` and marks it live.
///
/// # Safety
/// As for [`cell`].
pub(crate) unsafe fn put<C, T>(p: *mut C, value: T) -> c_int {
    // SAFETY: forwarded.
    let Some(c) = (unsafe { cell::<C, T>(p) }) else {
        return SF_EINVAL;
    };
    c.value.write(value);
    c.live = LIVE;
    SF_OK
}

/// Takes the live value out of the storage behind `p` and marks it dead.
///
/// # Safety
/// As for [`cell`].
pub(crate) unsafe fn take<C, T>(p: *mut C) -> Result<T, c_int> {
    // SAFETY: forwarded.
    let c = unsafe { cell::<C, T>(p) }.ok_or(SF_EINVAL)?;
    if c.live != LIVE {
        return Err(SF_EINVAL);
    }
    c.live = 0;
    // SAFETY: the value was initialised by `put`; `live` is now cleared, so it is read out only once.
    Ok(unsafe { c.value.assume_init_read() })
}

pub(crate) fn errno(e: shmfusion::Errno) -> c_int {
    -e.raw_os_error()
}

/// The code of every way opening or creating an object can fail (each variant named: a new one must be mapped
/// here before this builds).
fn object_error(e: ObjectError) -> c_int {
    match e {
        ObjectError::Os(e) => errno(e),
        ObjectError::Verify(v) => match v {
            VerifyError::Os(e) => errno(e),
            VerifyError::Owner { .. } | VerifyError::Mode { .. } => SF_EACCES,
            VerifyError::TooSmall { .. } => SF_EBADMSG,
        },
        ObjectError::Header(h) => match h {
            HeaderError::Type { .. } | HeaderError::Layout { .. } => SF_EPROTOTYPE,
            HeaderError::Version { .. } => SF_EPROTONOSUPPORT,
            HeaderError::NotReady { .. } => SF_ENODATA,
            HeaderError::TooShort { .. }
            | HeaderError::NotShmfusion { .. }
            | HeaderError::Endianness
            | HeaderError::Truncated { .. }
            | HeaderError::Corrupt(_) => SF_EBADMSG,
        },
        ObjectError::TooLarge => SF_EFBIG,
        ObjectError::NotRegularFile(_) => SF_ENODEV,
        ObjectError::Replaced => SF_ESTALE,
    }
}

/// The code of a buffer operation's outcome. `Lagged` stores its count in `*lagged` (if not null).
pub(crate) fn buffer_error(e: BufError, lagged: *mut u64) -> c_int {
    match e {
        BufError::Empty => SF_EAGAIN,
        BufError::Full => SF_ENOSPC,
        BufError::Lagged(n) => {
            if !lagged.is_null() && lagged.is_aligned() {
                // SAFETY: non-null and aligned; the caller passes a writable `uint64_t` or NULL.
                unsafe { lagged.write(n) };
            }
            SF_EOVERFLOW
        }
        BufError::RoleTaken { .. } => SF_EBUSY,
        BufError::Timeout => SF_ETIMEDOUT,
        BufError::WriterGone => SF_EPIPE,
        BufError::ReaderGone => SF_ECONNRESET,
        BufError::Closed => SF_ESHUTDOWN,
        // The calling process could not make its liveness anchor (a System V segment): the system's code.
        BufError::Liveness(e) => errno(e),
        BufError::Corrupt { .. } => SF_EPROTO,
        BufError::Contended => SF_EDEADLK,
        // `Error` is `#[non_exhaustive]`, so another crate must have this arm; every variant of this version is
        // named above, and an unknown one is reported as a protocol error rather than as success.
        _ => SF_EPROTO,
    }
}

/// The layout and options a descriptor asks for.
///
/// # Safety
/// A non-null `desc` must point to a readable `sf_desc` whose `type_name` is null or a NUL-terminated
/// string.
unsafe fn parse(desc: *const sf_desc) -> Result<(Layout, ObjectOptions, object::Fingerprint), c_int> {
    if desc.is_null() || !desc.is_aligned() {
        return Err(SF_EINVAL);
    }
    // SAFETY: non-null, aligned, readable by the caller's contract.
    let d = unsafe { desc.read() };
    let size = usize::try_from(d.element_size).map_err(|_| SF_EINVAL)?;
    let align = usize::try_from(d.element_align).map_err(|_| SF_EINVAL)?;
    let capacity = usize::try_from(d.capacity).map_err(|_| SF_EINVAL)?;
    let layout = match d.kind {
        SF_KIND_BROADCAST => BroadcastLayout::new(size, align, capacity).map(Layout::Broadcast),
        SF_KIND_SPSC => SpscLayout::new(size, align, capacity).map(Layout::Spsc),
        SF_KIND_LATEST if capacity == 1 => LatestLayout::new(size, align).map(Layout::Latest),
        _ => return Err(SF_EINVAL),
    }
    .map_err(|_| SF_EINVAL)?;
    if d.type_name.is_null() {
        return Err(SF_EINVAL);
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    let name = unsafe { CStr::from_ptr(d.type_name) }.to_str().map_err(|_| SF_EINVAL)?;
    if name.is_empty() {
        return Err(SF_EINVAL);
    }
    let mut options = ObjectOptions::new().type_name(name);
    if d.mode != 0 {
        if d.mode & !0o777 != 0 {
            return Err(SF_EINVAL);
        }
        options = options.mode(rustix::fs::Mode::from_bits_truncate(d.mode));
    }
    let fp = options.fingerprint_described(&layout.payload()).ok_or(SF_EINVAL)?;
    Ok((layout, options, fp))
}

/// # Safety
/// A non-null `name` must be NUL-terminated.
unsafe fn c_name<'n>(name: *const c_char) -> Result<&'n CStr, c_int> {
    if name.is_null() {
        return Err(SF_EINVAL);
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    Ok(unsafe { CStr::from_ptr(name) })
}

/// Opens or creates an object holding a broadcast ring and stores it in `obj`.
///
/// # Safety
/// See the crate docs: `obj` writable storage, `desc` readable, `name` NUL-terminated (as each applies).
unsafe fn open_into(
    obj: *mut sf_object,
    desc: *const sf_desc,
    open: impl FnOnce(&object::Fingerprint, &ObjectOptions) -> Result<Backing, ObjectError>,
) -> c_int {
    // SAFETY: forwarded.
    match unsafe { cell::<sf_object, ObjectState>(obj) } {
        None => return SF_EINVAL,
        Some(c) if c.live == LIVE => return SF_EBUSY,
        Some(_) => {}
    }
    // SAFETY: forwarded.
    let (layout, options, fp) = match unsafe { parse(desc) } {
        Ok(p) => p,
        Err(e) => return e,
    };
    match open(&fp, &options) {
        // SAFETY: forwarded.
        Ok(backing) => unsafe { put(obj, ObjectState { backing, layout }) },
        Err(e) => object_error(e),
    }
}

/// Creates a System V object under `key` (exclusively: `-EEXIST` if taken) holding an empty buffer of `desc`'s
/// kind and layout. It is removed when closed by its creator.
///
/// Thread safety: `obj` must not be used by another thread during the call.
///
/// # Safety
/// `obj` points to writable `sf_object` storage that is not open, `desc` to a readable descriptor (null pointers
/// are reported as `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_object_create_sysv(obj: *mut sf_object, key: i32, desc: *const sf_desc) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        open_into(obj, desc, |fp, o| {
            sysv::create_raw(Key::from_raw(key), fp, o).map(Backing::Sysv)
        })
    }
}

/// Opens the System V object under `key`, checking owner, mode and that its header matches `desc`.
///
/// Thread safety: as [`sf_object_create_sysv`].
///
/// # Safety
/// As [`sf_object_create_sysv`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_object_open_sysv(obj: *mut sf_object, key: i32, desc: *const sf_desc) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        open_into(obj, desc, |fp, o| {
            sysv::open_raw(Key::from_raw(key), fp, o).map(Backing::Sysv)
        })
    }
}

/// Creates a POSIX shared memory object `name` (like `"/imu"`; exclusively) holding an empty broadcast ring. The
/// name is unlinked when its creator closes it.
///
/// Thread safety: as [`sf_object_create_sysv`].
///
/// # Safety
/// As [`sf_object_create_sysv`]; `name` NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_object_create_posix(
    obj: *mut sf_object,
    name: *const c_char,
    desc: *const sf_desc,
) -> c_int {
    // SAFETY: the caller's contract.
    let name = match unsafe { c_name(name) } {
        Ok(n) => n,
        Err(e) => return e,
    };
    // SAFETY: the caller's contract.
    unsafe {
        open_into(obj, desc, |fp, o| {
            fd::posix::create_raw(name, fp, o).map(|r| Backing::Fd(r, None))
        })
    }
}

/// Opens the POSIX shared memory object `name`, with the checks of [`sf_object_open_sysv`].
///
/// Thread safety: as [`sf_object_create_sysv`].
///
/// # Safety
/// As [`sf_object_create_posix`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_object_open_posix(obj: *mut sf_object, name: *const c_char, desc: *const sf_desc) -> c_int {
    // SAFETY: the caller's contract.
    let name = match unsafe { c_name(name) } {
        Ok(n) => n,
        Err(e) => return e,
    };
    // SAFETY: the caller's contract.
    unsafe {
        open_into(obj, desc, |fp, o| {
            fd::posix::open_raw(name, fp, o).map(|r| Backing::Fd(r, None))
        })
    }
}

/// Creates a memfd object holding an empty broadcast ring; `*fd_out` receives its descriptor (close-on-exec; it
/// stays owned by the object and is closed with it: `dup` it to pass it on).
///
/// Thread safety: as [`sf_object_create_sysv`].
///
/// # Safety
/// As [`sf_object_create_posix`]; `fd_out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_object_create_memfd(
    obj: *mut sf_object,
    name: *const c_char,
    desc: *const sf_desc,
    fd_out: *mut c_int,
) -> c_int {
    use rustix::fd::AsRawFd;
    if fd_out.is_null() || !fd_out.is_aligned() {
        return SF_EINVAL;
    }
    // SAFETY: the caller's contract.
    let name = match unsafe { c_name(name) } {
        Ok(n) => n,
        Err(e) => return e,
    };
    let mut raw_fd = -1;
    // SAFETY: the caller's contract.
    let rc = unsafe {
        open_into(obj, desc, |fp, o| {
            fd::memfd::create_raw(name, fp, o).map(|(r, fd)| {
                raw_fd = fd.as_raw_fd();
                Backing::Fd(r, Some(fd))
            })
        })
    };
    if rc == SF_OK {
        // SAFETY: checked non-null and aligned above; writable by the caller's contract.
        unsafe { fd_out.write(raw_fd) };
    }
    rc
}

/// Opens the memfd object behind descriptor `memfd` (inherited or received), with the header checks of
/// [`sf_object_open_sysv`]. The object keeps its own duplicate of the descriptor.
///
/// Thread safety: as [`sf_object_create_sysv`].
///
/// # Safety
/// As [`sf_object_create_sysv`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_object_open_memfd(obj: *mut sf_object, memfd: c_int, desc: *const sf_desc) -> c_int {
    use rustix::fd::BorrowedFd;
    if memfd < 0 {
        return SF_EINVAL;
    }
    // SAFETY: a non-negative descriptor number; `fcntl_dupfd_cloexec` fails with EBADF if it is not open.
    let borrowed = unsafe { BorrowedFd::borrow_raw(memfd) };
    let owned = match rustix::io::fcntl_dupfd_cloexec(borrowed, 0) {
        Ok(fd) => fd,
        Err(e) => return errno(e),
    };
    // SAFETY: the caller's contract.
    unsafe {
        open_into(obj, desc, |fp, o| {
            fd::memfd::open_raw(&owned, fp, o).map(|r| Backing::Fd(r, Some(owned)))
        })
    }
}

/// Closes an object (a creator's close removes it from the namespace, as in Rust). Close its readers and
/// writers first.
///
/// Thread safety: `obj` must not be used by another thread during or after the call.
///
/// # Safety
/// `obj` points to `sf_object` storage (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_object_close(obj: *mut sf_object) -> c_int {
    // SAFETY: the caller's contract.
    match unsafe { take::<sf_object, ObjectState>(obj) } {
        Ok(state) => {
            drop(state);
            SF_OK
        }
        Err(e) => e,
    }
}

/// Claims the writer role of the object's broadcast ring (`SF_EBUSY` if a live process holds it; a dead
/// holder's role is taken over).
///
/// Thread safety: `obj` may be used concurrently by other calls that only read it (opening readers and
/// writers); `w` must not be used by another thread during the call.
///
/// # Safety
/// `w` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_broadcast_writer_open(w: *mut sf_broadcast_writer, obj: *mut sf_object) -> c_int {
    // SAFETY: the caller's contract.
    let state = match unsafe { live::<sf_object, ObjectState>(obj) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(view) = state.broadcast() else {
        return SF_EPROTOTYPE;
    };
    // SAFETY: the caller's contract.
    match unsafe { cell::<sf_broadcast_writer, BroadcastViewWriter<'static>>(w) } {
        None => return SF_EINVAL,
        Some(c) if c.live == LIVE => return SF_EBUSY,
        Some(_) => {}
    }
    match view.writer() {
        // SAFETY: the caller's contract.
        Ok(writer) => unsafe { put(w, writer) },
        Err(e) => buffer_error(e, core::ptr::null_mut()),
    }
}

/// Publishes one sample of exactly the element size (`SF_EINVAL` otherwise), overwriting the oldest; writes
/// its position to `*position` if not null. Never waits.
///
/// Thread safety: `w` must not be used by another thread during the call.
///
/// # Safety
/// `w` points to writer storage, `sample` to `len` readable bytes, `position` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_broadcast_publish(
    w: *mut sf_broadcast_writer,
    sample: *const c_void,
    len: usize,
    position: *mut u64,
) -> c_int {
    // SAFETY: the caller's contract.
    let writer = match unsafe { live::<sf_broadcast_writer, BroadcastViewWriter<'static>>(w) } {
        Ok(w) => w,
        Err(e) => return e,
    };
    if sample.is_null() || len != writer_element_size(writer) || (!position.is_null() && !position.is_aligned()) {
        return SF_EINVAL;
    }
    // SAFETY: non-null, `len` readable bytes by the caller's contract (a process-local buffer).
    let bytes = unsafe { core::slice::from_raw_parts(sample.cast::<u8>(), len) };
    let p = writer.publish(bytes);
    if !position.is_null() {
        // SAFETY: checked non-null and aligned; writable by the caller's contract.
        unsafe { position.write(p) };
    }
    SF_OK
}

fn writer_element_size(w: &BroadcastViewWriter<'_>) -> usize {
    w.layout().element_size()
}

/// Releases the writer role.
///
/// Thread safety: `w` must not be used by another thread during or after the call.
///
/// # Safety
/// `w` points to writer storage (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_broadcast_writer_close(w: *mut sf_broadcast_writer) -> c_int {
    // SAFETY: the caller's contract.
    match unsafe { take::<sf_broadcast_writer, BroadcastViewWriter<'static>>(w) } {
        Ok(writer) => {
            drop(writer);
            SF_OK
        }
        Err(e) => e,
    }
}

/// Where a new reader starts: at the next sample published.
pub const SF_FROM_NOW: c_int = 0;
/// Where a new reader starts: at the oldest sample still in the ring.
pub const SF_FROM_OLDEST: c_int = 1;

/// Opens a reader of the object's broadcast ring, starting at `SF_FROM_NOW` or `SF_FROM_OLDEST`. Readers never
/// write shared memory; any number may exist.
///
/// Thread safety: as [`sf_broadcast_writer_open`].
///
/// # Safety
/// `r` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_broadcast_reader_open(
    r: *mut sf_broadcast_reader,
    obj: *mut sf_object,
    from: c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    let state = match unsafe { live::<sf_object, ObjectState>(obj) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(view) = state.broadcast() else {
        return SF_EPROTOTYPE;
    };
    let reader = match from {
        SF_FROM_NOW => view.reader(),
        SF_FROM_OLDEST => view.reader_from_oldest(),
        _ => return SF_EINVAL,
    };
    // SAFETY: the caller's contract.
    match unsafe { cell::<sf_broadcast_reader, BroadcastViewReader<'static>>(r) } {
        None => SF_EINVAL,
        Some(c) if c.live == LIVE => SF_EBUSY,
        // SAFETY: the caller's contract.
        Some(_) => unsafe { put(r, reader) },
    }
}

/// Receives the next sample into `out` (`len` must be the element size), waiting up to `timeout_ns`
/// nanoseconds (0: don't wait; negative: no limit). Returns `SF_OK` and the sample's position in `*position`
/// (if not null); `SF_EAGAIN` if nothing new (with `timeout_ns == 0`), `SF_ETIMEDOUT`, `SF_EPIPE` (writer dead),
/// `SF_EOVERFLOW` if the reader was lapped (the number of samples lost in `*lagged` if not null; the reader
/// has moved on: call again), `SF_EPROTO` for inconsistent shared positions.
///
/// Thread safety: `r` must not be used by another thread during the call.
///
/// # Safety
/// `r` points to reader storage, `out` to `len` writable bytes, `position` and `lagged` are null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_broadcast_receive(
    r: *mut sf_broadcast_reader,
    out: *mut c_void,
    len: usize,
    timeout_ns: i64,
    position: *mut u64,
    lagged: *mut u64,
) -> c_int {
    // SAFETY: the caller's contract.
    let reader = match unsafe { live::<sf_broadcast_reader, BroadcastViewReader<'static>>(r) } {
        Ok(r) => r,
        Err(e) => return e,
    };
    if out.is_null() || len != reader.layout().element_size() || (!position.is_null() && !position.is_aligned()) {
        return SF_EINVAL;
    }
    // SAFETY: non-null, `len` writable bytes by the caller's contract (a process-local buffer).
    let out = unsafe { core::slice::from_raw_parts_mut(out.cast::<u8>(), len) };
    let result = match timeout_ns {
        0 => reader.try_recv_into(out),
        t if t < 0 => reader.recv_wait_into(out, None),
        t => reader.recv_wait_into(out, Some(Duration::from_nanos(t as u64))),
    };
    match result {
        Ok(p) => {
            if !position.is_null() {
                // SAFETY: checked non-null and aligned; writable by the caller's contract.
                unsafe { position.write(p) };
            }
            SF_OK
        }
        Err(e) => buffer_error(e, lagged),
    }
}

/// Closes a reader.
///
/// Thread safety: `r` must not be used by another thread during or after the call.
///
/// # Safety
/// `r` points to reader storage (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_broadcast_reader_close(r: *mut sf_broadcast_reader) -> c_int {
    // SAFETY: the caller's contract.
    match unsafe { take::<sf_broadcast_reader, BroadcastViewReader<'static>>(r) } {
        Ok(_) => SF_OK,
        Err(e) => e,
    }
}

/// A static, NUL-terminated description of a code returned by this library (or of any negative errno).
///
/// Thread safety: any thread, any time.
#[unsafe(no_mangle)]
pub extern "C" fn sf_strerror(code: c_int) -> *const c_char {
    let s: &CStr = match code {
        SF_OK => c"success",
        SF_EINVAL => c"invalid argument (null pointer, wrong length, bad layout, or handle not open)",
        SF_EAGAIN => c"nothing new to receive",
        SF_EOVERFLOW => c"reader lagged: samples were overwritten before it read them",
        SF_EBUSY => c"writer role held by a live process, or handle already open",
        SF_ETIMEDOUT => c"wait timed out",
        SF_EPIPE => c"writer process is gone",
        SF_EPROTO => c"corrupt shared positions (buggy or hostile peer)",
        SF_EPROTOTYPE => c"object has another kind, type name or layout",
        SF_EBADMSG => c"not a shmfusion object, or its header is corrupt",
        SF_EPROTONOSUPPORT => c"object written by another format version",
        SF_ENODATA => c"object not initialised by its creator",
        SF_EACCES => c"segment owned by another user or too permissive",
        SF_EFBIG => c"object too large for this platform",
        SF_ENOSPC => c"ring full (or a system limit reached)",
        SF_ECONNRESET => c"consumer process is gone",
        SF_EDEADLK => c"value kept changing during the read",
        SF_ENODEV => c"named object is not a regular file",
        SF_ESTALE => c"named object was replaced while being opened",
        SF_ESHUTDOWN => c"peer closed its end",
        -2 => c"no such object",
        -17 => c"object exists",
        -1 => c"operation not permitted",
        -9 => c"bad file descriptor",
        -12 => c"out of memory",
        _ => c"unknown error",
    };
    s.as_ptr()
}

/// Opens a handle of type `T` on the object behind `obj` into the storage behind `h`: `SF_EBUSY` if that storage
/// is already open, otherwise what `make` gives.
///
/// # Safety
/// `h` points to writable storage of type `H` (or is null), `obj` to `sf_object` storage (or is null), neither used
/// by another thread during the call.
pub(crate) unsafe fn open_handle<H, T>(
    h: *mut H,
    obj: *mut sf_object,
    make: impl FnOnce(&ObjectState) -> Result<T, c_int>,
) -> c_int {
    // SAFETY: the caller's contract.
    let state = match unsafe { live::<sf_object, ObjectState>(obj) } {
        Ok(s) => s,
        Err(e) => return e,
    };
    // SAFETY: the caller's contract.
    match unsafe { cell::<H, T>(h) } {
        None => return SF_EINVAL,
        Some(c) if c.live == LIVE => return SF_EBUSY,
        Some(_) => {}
    }
    match make(state) {
        // SAFETY: the caller's contract.
        Ok(handle) => unsafe { put(h, handle) },
        Err(e) => e,
    }
}

/// Closes the handle of type `T` in the storage behind `h`.
///
/// # Safety
/// As for [`cell`].
pub(crate) unsafe fn close_handle<H, T>(h: *mut H) -> c_int {
    // SAFETY: the caller's contract.
    match unsafe { take::<H, T>(h) } {
        Ok(handle) => {
            drop(handle);
            SF_OK
        }
        Err(e) => e,
    }
}

/// How long a call may wait, from its `timeout_ns` argument: 0 not at all, negative without limit.
pub(crate) enum Wait {
    /// Don't wait.
    No,
    /// Wait up to this long (`None`: no limit).
    Up(Option<Duration>),
}

impl Wait {
    pub(crate) fn from_ns(timeout_ns: i64) -> Self {
        match timeout_ns {
            0 => Wait::No,
            t if t < 0 => Wait::Up(None),
            t => Wait::Up(Some(Duration::from_nanos(t as u64))),
        }
    }
}

/// The `len` bytes at `p` as a sample of exactly `element_size` bytes.
///
/// # Safety
/// A non-null `p` must point to `len` readable bytes not written during the call.
pub(crate) unsafe fn sample_in<'s>(p: *const c_void, len: usize, element_size: usize) -> Result<&'s [u8], c_int> {
    if p.is_null() || len != element_size {
        return Err(SF_EINVAL);
    }
    // SAFETY: non-null, `len` readable bytes by the caller's contract (process-local memory).
    Ok(unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// The `len` bytes at `p` as room for a sample of exactly `element_size` bytes.
///
/// # Safety
/// A non-null `p` must point to `len` writable bytes not accessed otherwise during the call.
pub(crate) unsafe fn sample_out<'s>(p: *mut c_void, len: usize, element_size: usize) -> Result<&'s mut [u8], c_int> {
    if p.is_null() || len != element_size {
        return Err(SF_EINVAL);
    }
    // SAFETY: non-null, `len` writable bytes by the caller's contract (process-local memory).
    Ok(unsafe { core::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
}

/// Checks an optional out-parameter: null or aligned.
pub(crate) fn optional_out<T>(p: *mut T) -> Result<(), c_int> {
    if p.is_null() || p.is_aligned() {
        Ok(())
    } else {
        Err(SF_EINVAL)
    }
}

/// Stores `value` through an optional out-parameter checked by [`optional_out`].
///
/// # Safety
/// A non-null `p` must be writable.
pub(crate) unsafe fn set_out<T>(p: *mut T, value: T) {
    if !p.is_null() {
        // SAFETY: checked aligned by `optional_out`, writable by the caller's contract.
        unsafe { p.write(value) };
    }
}
