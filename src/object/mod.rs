//! Typed shared objects: a validated header in front of a payload, race-free open-or-create, leak-free lifecycles.
//!
//! A shared object is a segment (System V by default; POSIX shared memory, memfd or a file with [`fd`]) that
//! starts with a [`Header`] and holds one payload of a [`SharedState`] type, such as a ring or a latest-value
//! slot. Two separately built programs, even a 32-bit and a 64-bit one, open the same object safely: the opener
//! checks the creator's user and the segment's mode before attaching, waits until the creator has published the
//! header, and validates every header field against its own expectation, with a distinct [`ObjectError`] per
//! mismatch. Nothing found in a segment can make this library read or write out of bounds, panic or hang.
//!
//! ```
//! use shmfusion::object::{ObjectOptions, sysv};
//! use shmfusion::shm::Key;
//! use core::sync::atomic::{AtomicU64, Ordering};
//!
//! #[repr(C)]
//! #[derive(Default)]
//! struct Counter(AtomicU64);
//! // SAFETY: zero is a valid counter, all access is atomic, the layout is the same everywhere.
//! unsafe impl shmfusion::object::SharedState for Counter {
//!     const KIND: &'static str = "doc-counter";
//!     const CAPACITY: u64 = 0;
//!     const ELEMENT_SIZE: u64 = 0;
//! }
//!
//! # fn main() -> Result<(), shmfusion::object::ObjectError> {
//! let key = Key::from_raw(0x5f00_0000 | (std::process::id() as i32 & 0xffff));
//! let (created, is_new) = sysv::open_or_create::<Counter>(key, &ObjectOptions::new())?;
//! assert!(is_new);
//! let opened = sysv::open::<Counter>(key, &ObjectOptions::new())?;
//! created.get().0.fetch_add(1, Ordering::Relaxed);
//! assert_eq!(opened.get().0.load(Ordering::Relaxed), 1);
//! # Ok(())
//! # }
//! ```

pub mod fd;
mod header;
mod inspect;
// Loom models replace the buffers' atomics, so the buffers are not shared types there.
#[cfg(not(all(loom, test)))]
pub mod layout;
mod reap;
mod region;
pub mod sysv;
pub mod view;

pub use header::{
    EMPTY, FORMAT_VERSION, Fingerprint, Header, HeaderError, INITIALISING, MAGIC, READY, Snapshot, fnv1a, load_u64,
    total_size_of, validate,
};
pub use inspect::{Contents, Inspection, inspect};
pub use reap::{Evidence, ReapReport, Verdict, judge, judge_evidence, reap, reap_users, remove_if_abandoned};
pub use region::{Mapping, Region};

use crate::shm::VerifyError;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use rustix::fs::Mode;
use rustix::io::Errno;

/// A type that can live in shared memory as the state of a shared object (a ring, a latest-value slot, ...).
///
/// # Safety
///
/// Implementors guarantee that:
/// - an all-zero byte pattern is a valid value, and it is the object's initial ("empty") state, so a freshly
///   created, zero-filled segment holds a ready object;
/// - every byte of the type that may change after creation is read and written only through atomics, so other
///   processes racing on it can never cause undefined behaviour;
/// - it contains no pointers and its layout (`#[repr(C)]`, fixed-width fields) is identical on 32- and 64-bit
///   targets, so separately built programs agree on it;
/// - no value found in it, however corrupt, can make safe code panic, read or write out of bounds, or loop
///   forever.
pub unsafe trait SharedState: Sync + Sized {
    /// A short, stable name for the kind of object (e.g. `"spsc-ring"`), part of the layout fingerprint.
    const KIND: &'static str;
    /// The number of elements it holds (0 when not a container), part of the layout fingerprint.
    const CAPACITY: u64;
    /// The size in bytes of one element (0 when not a container), part of the layout fingerprint.
    const ELEMENT_SIZE: u64;

    /// Initialises `place` to the empty state (every byte zero) and returns it.
    ///
    /// Shared memory needs no such step: segments are zero-filled. This is for an object in process-local memory
    /// (the stack, a `Box::new_zeroed`, ...). Zeroing in place, rather than building a value and moving it,
    /// also initialises padding bytes, which atomic word copies of slots may read.
    fn init_zeroed(place: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        // SAFETY: every byte of the place is set to zero, and the trait's contract makes all-zero a valid, empty
        // value.
        unsafe {
            place.as_mut_ptr().write_bytes(0, 1);
            place.assume_init_mut()
        }
    }
}

/// What happens to an object when its users go away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lifecycle {
    /// Removed when the creator's handle drops (other attached processes keep their mapping until they detach),
    /// and by [`reap`] once the creator is dead and nobody is attached. The default.
    #[default]
    UntilCreatorGone,
    /// Removed from the namespace right after creation: it lives exactly as long as somebody has it attached.
    /// Others can no longer find it by key or name: share it by id ([`sysv::open_id`]) or by inherited fd.
    RemoveOnLastDetach,
    /// Persists until removed explicitly, surviving every process; [`reap`] leaves it alone. With
    /// [`fd::file`] it even survives reboots.
    Persist,
}

/// How to create or open an object.
#[derive(Clone, Copy, Debug)]
pub struct ObjectOptions {
    type_id: Option<u64>,
    lifecycle: Lifecycle,
    mode: Mode,
    owner: Option<u32>,
    ready_timeout_ns: u64,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ObjectOptions {
    /// Defaults: type identity from the payload's type name, [`Lifecycle::UntilCreatorGone`], mode `0600`, and
    /// up to one second of waiting for a creator that is still initialising.
    pub const fn new() -> Self {
        Self {
            type_id: None,
            lifecycle: Lifecycle::UntilCreatorGone,
            mode: Mode::RUSR.union(Mode::WUSR),
            owner: None,
            ready_timeout_ns: 1_000_000_000,
        }
    }

    /// An explicit type identity, for programs whose payload types have different Rust paths (for example a C
    /// peer, or the same struct defined in two crates). Use the same string on both sides.
    pub const fn type_name(mut self, name: &str) -> Self {
        self.type_id = Some(fnv1a(name.as_bytes()));
        self
    }

    /// The lifecycle (creators only).
    pub const fn lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// The permission bits: of a new object, and the most an opened one may grant (default `0600`).
    pub const fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The user that must own (and, for System V, have created) an object to be opened (openers only; default:
    /// the caller's effective uid). For an object a service running as another user creates: nobody but that
    /// user and root can then have written or resized it, as long as [`mode`](Self::mode) allows no group or
    /// other write.
    pub const fn owner(mut self, uid: u32) -> Self {
        self.owner = Some(uid);
        self
    }

    /// The owner an opened object must have: [`owner`](Self::owner), or the caller's effective uid.
    pub(crate) fn expected_owner(&self) -> u32 {
        match self.owner {
            Some(uid) => uid,
            None => rustix::process::geteuid().as_raw(),
        }
    }

    /// How long an opener waits for a creator that is still initialising the header.
    pub const fn ready_timeout_ns(mut self, ns: u64) -> Self {
        self.ready_timeout_ns = ns;
        self
    }

    /// The fingerprint a payload of type `S` has under these options (the type identity defaults to the Rust
    /// type name).
    pub fn fingerprint<S: SharedState>(&self) -> Fingerprint {
        let default_type = fnv1a(core::any::type_name::<S>().as_bytes());
        PayloadDesc::of::<S>().fingerprint(self.type_id.unwrap_or(default_type))
    }

    /// The fingerprint of a payload described at run time (see [`PayloadDesc`]), or `None` if no
    /// [`type_name`](Self::type_name) was given: a described payload has no Rust type name to default to.
    pub fn fingerprint_described(&self, desc: &PayloadDesc) -> Option<Fingerprint> {
        self.type_id.map(|type_id| desc.fingerprint(type_id))
    }
}

/// A payload's layout given at run time: what [`SharedState`]'s constants and `size_of`/`align_of` give for a
/// typed payload. Runtime-sized buffers (for example [`BroadcastLayout`](crate::buffer::BroadcastLayout)) compute
/// it so that their objects carry the same fingerprint as the typed buffer of the same layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadDesc {
    /// The object kind ([`SharedState::KIND`]).
    pub kind: &'static str,
    /// The payload size in bytes (`size_of`).
    pub size: u64,
    /// The payload alignment (`align_of`).
    pub align: u32,
    /// [`SharedState::CAPACITY`].
    pub capacity: u64,
    /// [`SharedState::ELEMENT_SIZE`].
    pub element_size: u64,
}

impl PayloadDesc {
    /// The description of the typed payload `S`.
    pub const fn of<S: SharedState>() -> Self {
        Self {
            kind: S::KIND,
            size: core::mem::size_of::<S>() as u64,
            align: core::mem::align_of::<S>() as u32,
            capacity: S::CAPACITY,
            element_size: S::ELEMENT_SIZE,
        }
    }

    fn fingerprint(&self, type_id: u64) -> Fingerprint {
        Fingerprint {
            kind_hash: fnv1a(self.kind.as_bytes()),
            type_id,
            size: self.size,
            align: self.align,
            capacity: self.capacity,
            element_size: self.element_size,
        }
    }
}

/// Why an object could not be created or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// A system call failed; also `EINVAL` for a payload type aligned more strictly than a page, which no
    /// mapping can place.
    Os(Errno),
    /// The segment's owner, creator, mode or size is not what was expected (see [`VerifyError`]): for example a
    /// key squatted by another user.
    Verify(VerifyError),
    /// The header was refused (see [`HeaderError`]).
    Header(HeaderError),
    /// The payload type is too large for this platform's address space.
    TooLarge,
    /// A named object ([`fd::posix`], [`fd::file`]) is not a regular file: a symbolic link (never followed), a
    /// FIFO, a device, a directory or a socket. Nothing but a regular file is opened for reading and writing.
    NotRegularFile(FileType),
    /// The name was replaced by another file between its checks and its opening.
    Replaced,
}

/// The type of a file, as [`ObjectError::NotRegularFile`] reports it (rustix's type, re-exported).
pub use rustix::fs::FileType;

impl From<Errno> for ObjectError {
    fn from(e: Errno) -> Self {
        ObjectError::Os(e)
    }
}

impl From<VerifyError> for ObjectError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Os(e) => ObjectError::Os(e),
            e => ObjectError::Verify(e),
        }
    }
}

impl From<HeaderError> for ObjectError {
    fn from(e: HeaderError) -> Self {
        ObjectError::Header(e)
    }
}

impl core::error::Error for ObjectError {}

impl core::fmt::Display for ObjectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ObjectError::Os(e) => write!(f, "{e}"),
            ObjectError::Verify(e) => write!(f, "{e}"),
            ObjectError::Header(e) => write!(f, "{e}"),
            ObjectError::TooLarge => write!(f, "payload too large for this platform"),
            ObjectError::NotRegularFile(t) => write!(f, "not a regular file but {t:?}"),
            ObjectError::Replaced => write!(f, "the name was replaced while it was being opened"),
        }
    }
}

/// A typed shared object: a mapped region holding a validated header and a payload of type `S` (a [`RawShared`]
/// whose fingerprint is `S`'s).
pub struct Shared<S: SharedState, R: Region = crate::shm::Attachment> {
    raw: RawShared<R>,
    _state: PhantomData<S>,
}

/// A shared object whose payload is described at run time ([`PayloadDesc`]): a mapped region holding a validated
/// header and `fingerprint().size` payload bytes. This is what every open and create path builds; a [`Shared`] is
/// one whose fingerprint comes from a Rust type.
pub struct RawShared<R: Region = crate::shm::Attachment> {
    region: R,
    payload: NonNull<u8>,
    fingerprint: Fingerprint,
    cleanup: Option<CleanupAction>,
}

/// Removal performed when a creator's handle drops.
#[derive(Debug)]
pub(crate) enum CleanupAction {
    Sysv(crate::shm::RemoveGuard),
    Unlink(heapless::String<256>),
    UnlinkShm(heapless::String<256>),
}

impl CleanupAction {
    fn run(self) {
        match self {
            CleanupAction::Sysv(guard) => drop(guard),
            CleanupAction::Unlink(path) => {
                if let Ok(path) = cstr(&path) {
                    let _ = rustix::fs::unlink(path);
                }
            }
            CleanupAction::UnlinkShm(name) => {
                if let Ok(name) = cstr(&name) {
                    let _ = rustix::shm::unlink(name);
                }
            }
        }
    }
}

impl<S: SharedState, R: Region + core::fmt::Debug> core::fmt::Debug for Shared<S, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared")
            .field("kind", &S::KIND)
            .field("region", &self.raw.region)
            .field("removes_on_drop", &self.raw.cleanup.is_some())
            .finish()
    }
}

impl<R: Region + core::fmt::Debug> core::fmt::Debug for RawShared<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawShared")
            .field("fingerprint", &self.fingerprint)
            .field("region", &self.region)
            .field("removes_on_drop", &self.cleanup.is_some())
            .finish()
    }
}

impl<R: Region> Drop for RawShared<R> {
    fn drop(&mut self) {
        if let Some(action) = self.cleanup.take() {
            action.run();
        }
    }
}

fn cstr(s: &heapless::String<256>) -> Result<&core::ffi::CStr, Errno> {
    core::ffi::CStr::from_bytes_with_nul(s.as_bytes()).map_err(|_| Errno::INVAL)
}

// SAFETY: the payload is only reached through `S: Sync` (whose shared bytes are atomics) or through the raw
// pointer, whose users take their own care; the region is Send/Sync where `R` is.
unsafe impl<R: Region + Send> Send for RawShared<R> {}
// SAFETY: as above.
unsafe impl<R: Region + Sync> Sync for RawShared<R> {}

impl<S: SharedState, R: Region> Shared<S, R> {
    /// Types a raw object whose fingerprint was computed from `S` (by [`ObjectOptions::fingerprint`]), which
    /// validation checked against the header and the mapping.
    pub(crate) fn from_raw(raw: RawShared<R>) -> Self {
        debug_assert_eq!(raw.fingerprint.size, core::mem::size_of::<S>() as u64);
        Self {
            raw,
            _state: PhantomData,
        }
    }

    /// The payload.
    pub fn get(&self) -> &S {
        // SAFETY: the payload was validated to lie inside the region with `size_of::<S>()` bytes (the fingerprint
        // is `S`'s, see `from_raw`), aligned for `S`; the region lives as long as `self`; `S: SharedState` makes
        // any content a valid `S` whose shared bytes are only touched atomically.
        unsafe { self.raw.payload.cast::<S>().as_ref() }
    }

    /// The untyped object.
    pub fn raw(&self) -> &RawShared<R> {
        &self.raw
    }

    /// The header.
    pub fn header(&self) -> &Header {
        self.raw.header()
    }

    /// The region the object lives in.
    pub fn region(&self) -> &R {
        &self.raw.region
    }

    /// Whether this handle removes the object when it drops (it created it with
    /// [`Lifecycle::UntilCreatorGone`]).
    pub fn removes_on_drop(&self) -> bool {
        self.raw.removes_on_drop()
    }

    /// Keeps the object after this handle drops, even if it created it, and marks it persistent in its header
    /// (see [`RawShared::persist`]): [`reap`] leaves it alone.
    pub fn persist(&mut self) {
        self.raw.persist();
    }

    /// The process that created the object, judged now (see [`RawShared::creator`]).
    pub fn creator(&self) -> Option<crate::liveness::Holder> {
        self.raw.creator()
    }
}

impl<R: Region> RawShared<R> {
    /// The payload's first byte: `fingerprint().size` bytes, aligned to `fingerprint().align`, valid while `self`
    /// lives. Other processes access them concurrently: use atomics only (a runtime-sized buffer view does).
    pub fn payload(&self) -> NonNull<u8> {
        self.payload
    }

    /// The fingerprint the header was validated against (or written with).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The header.
    pub fn header(&self) -> &Header {
        header_of(&self.region)
    }

    /// The region the object lives in.
    pub fn region(&self) -> &R {
        &self.region
    }

    /// Whether this handle removes the object when it drops (it created it with
    /// [`Lifecycle::UntilCreatorGone`]).
    pub fn removes_on_drop(&self) -> bool {
        self.cleanup.is_some()
    }

    /// Keeps the object after this handle drops, even if it created it, and marks it persistent in its header
    /// (the one record of its lifecycle that every process sees), so that [`reap`] leaves it alone after its
    /// creator is gone, exactly as if it had been created with [`Lifecycle::Persist`].
    pub fn persist(&mut self) {
        self.header().flags.fetch_or(header::flags::PERSIST, Ordering::AcqRel);
        if let Some(CleanupAction::Sysv(guard)) = self.cleanup.take() {
            let _ = guard.disarm();
        }
    }

    /// The process that created the object, judged now (see [`liveness`](crate::liveness)); `None` if the
    /// creator never stamped the header (it died right after creating the segment).
    pub fn creator(&self) -> Option<crate::liveness::Holder> {
        self.header().creator.holder()
    }

    /// Creates the object in a fresh, zero-filled region: writes and publishes the header.
    pub(crate) fn init(region: R, fp: &Fingerprint, flags: u32) -> Result<Self, ObjectError> {
        if !region.writable() {
            return Err(ObjectError::Os(Errno::ACCESS));
        }
        let total = header::total_size_of(fp).ok_or(ObjectError::TooLarge)?;
        if (region.len() as u64) < total {
            return Err(ObjectError::Header(HeaderError::Truncated {
                claimed: total,
                actual: region.len() as u64,
            }));
        }
        let me = crate::liveness::current().map_err(ObjectError::Os)?;
        let uid = rustix::process::geteuid().as_raw();
        let header = header_of(&region);
        header.creator.stamp(&me);
        header.publish(fp, total, flags, uid);
        Self::validated(region, fp)
    }

    /// Opens the object in a mapped region: waits for the creator to publish (bounded), then validates.
    pub(crate) fn open(region: R, fp: &Fingerprint, options: &ObjectOptions) -> Result<Self, ObjectError> {
        // The payload is handed out as `&S`, whose atomics can be stored to: a read-only mapping would fault.
        if !region.writable() {
            return Err(ObjectError::Os(Errno::ACCESS));
        }
        if region.len() < core::mem::size_of::<Header>() {
            return Err(HeaderError::TooShort {
                len: region.len() as u64,
            }
            .into());
        }
        wait_ready(header_of(&region), options.ready_timeout_ns);
        Self::validated(region, fp)
    }

    fn validated(region: R, fp: &Fingerprint) -> Result<Self, ObjectError> {
        // A mapping is only page-aligned, so a payload aligned more strictly could not be placed.
        if fp.align as usize > crate::shm::page_size() {
            return Err(ObjectError::Os(Errno::INVAL));
        }
        let snap = header_of(&region).snapshot();
        let offset = validate(&snap, fp, region.len() as u64)?;
        // SAFETY: `validate` checked `offset + fp.size <= len`; the region base is page-aligned, the payload
        // alignment at most a page (checked above) and the offset a multiple of it, so the pointer is in bounds
        // and aligned.
        let payload = unsafe { NonNull::new_unchecked(region.base().as_ptr().add(offset as usize)) };
        Ok(Self {
            region,
            payload,
            fingerprint: *fp,
            cleanup: None,
        })
    }

    pub(crate) fn with_cleanup(mut self, cleanup: Option<CleanupAction>) -> Self {
        self.cleanup = cleanup;
        self
    }
}

/// The header at the start of a region at least a header long.
fn header_of<R: Region>(region: &R) -> &Header {
    debug_assert!(region.len() >= core::mem::size_of::<Header>());
    // SAFETY: every constructor of `Shared` and every caller checks that the region holds a header; the base is
    // page-aligned (more than `Header`'s 64); all-zero or any other bytes are a valid `Header` of atomics.
    unsafe { region.base().cast::<Header>().as_ref() }
}

/// Spins, then sleeps, until the header is `READY`, the creator (once it has stamped the header) is found dead,
/// or the timeout passes.
fn wait_ready(header: &Header, timeout_ns: u64) {
    let creator_dead =
        || header.creator.holder_liveness(crate::liveness::judge) == Some(crate::liveness::Liveness::Dead);
    let start = now_ns();
    let mut round = 0u32;
    while header.state.load(Ordering::Acquire) != header::READY {
        round = round.saturating_add(1);
        if round < 64 {
            core::hint::spin_loop();
            continue;
        }
        if now_ns().saturating_sub(start) >= timeout_ns || (round % 16 == 0 && creator_dead()) {
            return;
        }
        let nap = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000,
        };
        let _ = rustix::thread::nanosleep(&nap);
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds.
pub(crate) fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::{AttachOptions, Key, Options};
    use core::sync::atomic::AtomicU64;

    #[repr(C)]
    struct Counter(AtomicU64);
    // SAFETY: zero is valid; all atomics; same layout everywhere.
    unsafe impl SharedState for Counter {
        const KIND: &'static str = "unit-counter";
        const CAPACITY: u64 = 0;
        const ELEMENT_SIZE: u64 = 0;
    }

    #[test]
    fn a_read_only_attachment_never_holds_a_typed_object() {
        let options = ObjectOptions::new();
        let object = sysv::create::<Counter>(Key::PRIVATE, &options).unwrap();
        let id = object.region().id();
        let read_only = id.attach(AttachOptions::new().read_only()).unwrap();
        assert!(!read_only.writable());
        let fp = options.fingerprint::<Counter>();
        let opened = RawShared::open(read_only, &fp, &options);
        assert_eq!(opened.unwrap_err(), ObjectError::Os(Errno::ACCESS));
        let fresh = Options::new(4096).create_exclusive(Key::PRIVATE).unwrap();
        let _guard = fresh.remove_on_drop();
        let read_only = fresh.attach(AttachOptions::new().read_only()).unwrap();
        let created = RawShared::init(read_only, &fp, 0);
        assert_eq!(created.unwrap_err(), ObjectError::Os(Errno::ACCESS));
        assert!(object.region().writable());
    }
}
