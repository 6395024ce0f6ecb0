//! Shared objects in memory named by a file descriptor: POSIX shared memory (`shm_open`), anonymous `memfd`
//! shared with children, and files (`mmap` of a regular file, persisting across reboots).
//!
//! The same header, validation and payload types as System V objects; buffers work unchanged on each kind.

use super::{CleanupAction, Lifecycle, Mapping, ObjectError, ObjectOptions, Shared, SharedState, header};
use crate::shm::VerifyError;
use core::ffi::CStr;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// A typed object in an `mmap`ed file descriptor.
pub type FdShared<S> = Shared<S, Mapping>;

fn total_size<S: SharedState>(options: &ObjectOptions) -> Result<(super::Fingerprint, u64), ObjectError> {
    let fp = options.fingerprint::<S>();
    let total = header::total_size_of(&fp).ok_or(ObjectError::TooLarge)?;
    usize::try_from(total).map_err(|_| ObjectError::TooLarge)?;
    Ok((fp, total))
}

/// Creates an object in a new, empty descriptor: sizes it, maps it, publishes the header.
fn create_in<S: SharedState>(fd: &OwnedFd, options: &ObjectOptions) -> Result<FdShared<S>, ObjectError> {
    let (fp, total) = total_size::<S>(options)?;
    rustix::fs::ftruncate(fd, total)?;
    let mapping = Mapping::new(fd, total as usize)?;
    let flags = if options.lifecycle == Lifecycle::Persist {
        header::flags::PERSIST
    } else {
        0
    };
    Shared::init(mapping, &fp, flags)
}

/// Opens the object in `fd`: checks owner and mode like [`open_verified`](crate::shm::open_verified), waits
/// (bounded) for the creator to size the file and publish the header, maps it and validates it.
///
/// `named` is false for an inherited memfd: its access was granted by whoever passed the descriptor, and memfds
/// always report mode `0777`, so owner and mode say nothing there.
fn open_in<S: SharedState>(fd: &OwnedFd, options: &ObjectOptions, named: bool) -> Result<FdShared<S>, ObjectError> {
    let (fp, total) = total_size::<S>(options)?;
    let st = rustix::fs::fstat(fd)?;
    if named {
        let uid = rustix::process::geteuid().as_raw();
        if st.st_uid != uid {
            return Err(VerifyError::Owner {
                uid: st.st_uid,
                creator_uid: st.st_uid,
                expected: uid,
            }
            .into());
        }
        let mode = Mode::from_bits_truncate(st.st_mode & 0o777);
        if !options.mode.contains(mode) {
            return Err(VerifyError::Mode {
                found: mode,
                allowed: options.mode,
            }
            .into());
        }
    }
    // The creator sizes the file right after creating it: give it the ready timeout to do so.
    let start = super::now_ns();
    let mut size = st.st_size as u64;
    while size < total && super::now_ns().saturating_sub(start) < options.ready_timeout_ns {
        let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000,
        });
        size = rustix::fs::fstat(fd)?.st_size as u64;
    }
    if size < total {
        return Err(VerifyError::TooSmall {
            size: size as usize,
            required: total as usize,
        }
        .into());
    }
    // Map the whole file as it is, so the header's size claims are checked against reality.
    let mapping = Mapping::new(fd, usize::try_from(size).map_err(|_| ObjectError::TooLarge)?)?;
    Shared::open(mapping, &fp, options, || true)
}

fn owned_name(name: &CStr) -> Result<heapless::String<256>, ObjectError> {
    let mut s = heapless::String::new();
    let text = name.to_str().map_err(|_| Errno::INVAL)?;
    s.push_str(text).map_err(|_| Errno::NAMETOOLONG)?;
    s.push('\0').map_err(|_| Errno::NAMETOOLONG)?;
    Ok(s)
}

/// POSIX shared memory objects (`shm_open(3)`, under `/dev/shm`).
pub mod posix {
    use super::*;

    /// Creates a new object named `name` (like `/imu`; exclusive: `EEXIST` if taken). With
    /// [`Lifecycle::UntilCreatorGone`] the name is unlinked when the handle drops; with
    /// [`Lifecycle::RemoveOnLastDetach`] right away.
    ///
    /// # Errors
    /// Those of `shm_open`, `ftruncate` and `mmap`.
    pub fn create<S: SharedState>(name: &CStr, options: &ObjectOptions) -> Result<FdShared<S>, ObjectError> {
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR;
        let fd = rustix::shm::open(name, rustix::shm::OFlags::from_bits_retain(flags.bits()), options.mode)?;
        let object = match create_in::<S>(&fd, options) {
            Ok(object) => object,
            Err(e) => {
                let _ = rustix::shm::unlink(name);
                return Err(e);
            }
        };
        let cleanup = match options.lifecycle {
            Lifecycle::UntilCreatorGone => Some(CleanupAction::UnlinkShm(owned_name(name)?)),
            Lifecycle::RemoveOnLastDetach => {
                rustix::shm::unlink(name)?;
                None
            }
            Lifecycle::Persist => None,
        };
        Ok(object.with_cleanup(cleanup))
    }

    /// Opens the existing object `name`, checking owner, mode, size and header.
    ///
    /// # Errors
    /// As for [`sysv::open`](crate::object::sysv::open).
    pub fn open<S: SharedState>(name: &CStr, options: &ObjectOptions) -> Result<FdShared<S>, ObjectError> {
        let fd = rustix::shm::open(name, rustix::shm::OFlags::RDWR, Mode::empty())?;
        open_in::<S>(&fd, options, true)
    }
}

/// Anonymous memory files (`memfd_create(2)`), shared with children through an inherited descriptor.
pub mod memfd {
    use super::*;

    use rustix::fs::SealFlags;

    /// The seals a memfd object carries: its size is fixed, so no holder of the descriptor can shrink it under
    /// another process's mapping (which would make that process's next access a SIGBUS).
    const SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW).union(SealFlags::SEAL);

    /// Creates an object in a new memfd, sized and sealed against resizing; returns the object and the
    /// descriptor to pass on (it is close-on-exec: clear that for a child that `exec`s). The memory lives while a
    /// descriptor or mapping exists.
    ///
    /// # Errors
    /// Those of `memfd_create`, `ftruncate`, `fcntl(F_ADD_SEALS)` and `mmap`.
    pub fn create<S: SharedState>(name: &CStr, options: &ObjectOptions) -> Result<(FdShared<S>, OwnedFd), ObjectError> {
        let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
        let fd = rustix::fs::memfd_create(name, flags)?;
        let object = create_in::<S>(&fd, options)?;
        rustix::fs::fcntl_add_seals(&fd, SEALS)?;
        Ok((object, fd))
    }

    /// Opens the object in an inherited memfd, with the checks of [`sysv::open`](crate::object::sysv::open);
    /// the memfd must be sealed against shrinking (as [`create`] does), else `EPERM`.
    ///
    /// # Errors
    /// As for [`sysv::open`](crate::object::sysv::open).
    pub fn open<S: SharedState>(fd: &OwnedFd, options: &ObjectOptions) -> Result<FdShared<S>, ObjectError> {
        if !rustix::fs::fcntl_get_seals(fd)?.contains(SealFlags::SHRINK) {
            return Err(Errno::PERM.into());
        }
        open_in::<S>(fd, options, false)
    }
}

/// Regular files mapped shared: objects that persist across reboots (for example calibration or a last known
/// state). The file is created with the options' mode; with [`Lifecycle::UntilCreatorGone`] it is unlinked when
/// the creator's handle drops.
pub mod file {
    use super::*;

    /// Creates a new file object at `path` (exclusive: `EEXIST` if it exists).
    ///
    /// # Errors
    /// Those of `open`, `ftruncate` and `mmap`.
    pub fn create<S: SharedState>(path: &CStr, options: &ObjectOptions) -> Result<FdShared<S>, ObjectError> {
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, options.mode)?;
        let object = match create_in::<S>(&fd, options) {
            Ok(object) => object,
            Err(e) => {
                let _ = rustix::fs::unlink(path);
                return Err(e);
            }
        };
        let cleanup = match options.lifecycle {
            Lifecycle::UntilCreatorGone => Some(CleanupAction::Unlink(owned_name(path)?)),
            Lifecycle::RemoveOnLastDetach => {
                rustix::fs::unlink(path)?;
                None
            }
            Lifecycle::Persist => None,
        };
        Ok(object.with_cleanup(cleanup))
    }

    /// Opens the existing file object at `path`, checking owner, mode, size and header.
    ///
    /// # Errors
    /// As for [`sysv::open`](crate::object::sysv::open).
    pub fn open<S: SharedState>(path: &CStr, options: &ObjectOptions) -> Result<FdShared<S>, ObjectError> {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
        open_in::<S>(&fd, options, true)
    }
}
