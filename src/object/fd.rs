//! Shared objects in memory named by a file descriptor: POSIX shared memory (`shm_open`), anonymous `memfd`
//! shared with children, and files (`mmap` of a regular file, persisting across reboots).
//!
//! The same header, validation and payload types as System V objects; buffers work unchanged on each kind.
//!
//! # Opening a name safely
//!
//! [`posix::open`] and [`file::open`] check the file before they open it read-write: a symbolic link under the
//! name is refused, never followed; a FIFO, device, directory or socket is never opened (so nothing blocks, and
//! no device's `open` runs); the file must be owned by the expected user ([`ObjectOptions::owner`], default the
//! caller's effective uid) and grant no more than [`ObjectOptions::mode`] (default `0600`). Each refusal has its
//! own [`ObjectError`].
//!
//! # Who can shrink an object (SIGBUS)
//!
//! A file mapping has no pages beyond the file's end: if anybody truncates the file, every process that maps it
//! gets `SIGBUS` at its next access to the lost pages. That is how the kernel implements shared file mappings,
//! and nothing a mapping process does can prevent it or turn it into an error (a signal handler would be
//! process-wide state that a library must not take over). So who may truncate is what matters:
//!
//! - **Another uid cannot**, by default: `ftruncate` needs write permission, and an object is only opened if it
//!   grants none to group or others, unless the caller opts in with [`ObjectOptions::mode`] (for example `0o660`
//!   to share with a group, which then trusts that group not to shrink it). Root (`CAP_DAC_OVERRIDE`) always can.
//! - **A process of the same uid can**, whatever the mode (it can `chmod` the file back): same-uid peers must be
//!   trusted not to truncate. POSIX shared memory and files cannot be sealed (`F_ADD_SEALS` is refused on them);
//!   [`memfd`] objects are sealed against shrinking and growing at creation, and [`memfd::open`] refuses an
//!   unsealed one, so a memfd shared by descriptor is the kind to use with a peer you do not trust not to
//!   truncate. System V segments cannot be resized at all.

use super::{
    CleanupAction, Fingerprint, Lifecycle, Mapping, ObjectError, ObjectOptions, RawShared, Shared, SharedState, header,
};
use crate::shm::VerifyError;
use core::ffi::CStr;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// A typed object in an `mmap`ed file descriptor.
pub type FdShared<S> = Shared<S, Mapping>;

/// An object with a payload described at run time, in an `mmap`ed file descriptor.
pub type FdRawShared = RawShared<Mapping>;

fn total_size(fp: &Fingerprint) -> Result<u64, ObjectError> {
    let total = header::total_size_of(fp).ok_or(ObjectError::TooLarge)?;
    usize::try_from(total).map_err(|_| ObjectError::TooLarge)?;
    Ok(total)
}

/// Creates an object in a new, empty descriptor: sizes it, maps it, publishes the header.
fn create_in(fd: &OwnedFd, fp: &Fingerprint, options: &ObjectOptions) -> Result<FdRawShared, ObjectError> {
    let total = total_size(fp)?;
    rustix::fs::ftruncate(fd, total)?;
    let mapping = Mapping::new(fd, total as usize)?;
    let flags = if options.lifecycle == Lifecycle::Persist {
        header::flags::PERSIST
    } else {
        0
    };
    RawShared::init(mapping, fp, flags)
}

/// Creates an object in a new, empty named file: gives it exactly the options' mode first (the umask applied
/// by `open` would otherwise take group write away from a `0o660` object, say), as `shmget` does for System V.
fn create_named(fd: &OwnedFd, fp: &Fingerprint, options: &ObjectOptions) -> Result<FdRawShared, ObjectError> {
    rustix::fs::fchmod(fd, options.mode)?;
    create_in(fd, fp, options)
}

/// Checks what `fstat` says of a named object before anything trusts it: a regular file, owned by the expected
/// user ([`ObjectOptions::owner`], default the caller's effective uid), granting no permission beyond the
/// options' mode (default `0600`: no other uid may read or write it, so no other uid can shrink it under our
/// mapping).
fn check_named(st: &rustix::fs::Stat, options: &ObjectOptions) -> Result<(), ObjectError> {
    let file_type = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if file_type != rustix::fs::FileType::RegularFile {
        return Err(ObjectError::NotRegularFile(file_type));
    }
    let uid = options.expected_owner();
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
    Ok(())
}

/// Opens an existing named object read-write, safely against names planted by other users.
///
/// `open_with(flags)` opens the name with the given flags (plus `O_CLOEXEC`). First an `O_PATH | O_NOFOLLOW`
/// handle is taken, which opens nothing (no device driver's `open`, no FIFO) and refers to a symbolic link itself
/// rather than following it; [`check_named`] decides on its `fstat`. Only then is the name opened read-write, with
/// `O_NOFOLLOW | O_NONBLOCK` (so that nothing can block), and the result must be the very file checked (same device
/// and inode), else [`ObjectError::Replaced`]. Replacing it in between takes write permission on the directory and
/// (in a sticky directory such as `/dev/shm` or `/tmp`) ownership of the file or the directory.
fn open_named(
    open_with: impl Fn(OFlags) -> rustix::io::Result<OwnedFd>,
    options: &ObjectOptions,
) -> Result<OwnedFd, ObjectError> {
    let probe = open_with(OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC)?;
    let checked = rustix::fs::fstat(&probe)?;
    check_named(&checked, options)?;
    let fd = open_with(OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC)?;
    let opened = rustix::fs::fstat(&fd)?;
    if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino) {
        return Err(ObjectError::Replaced);
    }
    check_named(&opened, options)?;
    Ok(fd)
}

/// Opens the object in `fd`, whose type, owner and mode the caller has checked: waits (bounded) for the creator
/// to size the file and publish the header, maps it and validates it.
fn open_in(fd: &OwnedFd, fp: &Fingerprint, options: &ObjectOptions) -> Result<FdRawShared, ObjectError> {
    let total = total_size(fp)?;
    // The creator sizes the file right after creating it: give it the ready timeout to do so.
    let start = super::now_ns();
    let mut size = rustix::fs::fstat(fd)?.st_size as u64;
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
    RawShared::open(mapping, fp, options)
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
        create_raw(name, &options.fingerprint::<S>(), options).map(Shared::from_raw)
    }

    /// [`create`] for a payload described by its fingerprint.
    ///
    /// # Errors
    /// As for [`create`].
    pub fn create_raw(name: &CStr, fp: &Fingerprint, options: &ObjectOptions) -> Result<FdRawShared, ObjectError> {
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = shm_open(name, flags, options.mode)?;
        let object = match create_named(&fd, fp, options) {
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

    /// Opens the existing object `name`, checking type, owner, mode, size and header; the checks on the file
    /// come before it is opened read-write, and a symbolic link is never followed (see [`file::open`]).
    ///
    /// # Errors
    /// As for [`sysv::open`](crate::object::sysv::open), and [`ObjectError::NotRegularFile`] for a symbolic
    /// link, FIFO, device or other non-regular file under the name, [`ObjectError::Replaced`].
    pub fn open<S: SharedState>(name: &CStr, options: &ObjectOptions) -> Result<FdShared<S>, ObjectError> {
        open_raw(name, &options.fingerprint::<S>(), options).map(Shared::from_raw)
    }

    /// [`open`] for a payload described by its fingerprint.
    ///
    /// # Errors
    /// As for [`open`].
    pub fn open_raw(name: &CStr, fp: &Fingerprint, options: &ObjectOptions) -> Result<FdRawShared, ObjectError> {
        let fd = open_named(|flags| shm_open(name, flags, Mode::empty()), options)?;
        open_in(&fd, fp, options)
    }

    /// `shm_open(3)` with any open flags: the name is a file under `/dev/shm`.
    fn shm_open(name: &CStr, flags: OFlags, mode: Mode) -> rustix::io::Result<OwnedFd> {
        rustix::shm::open(name, rustix::shm::OFlags::from_bits_retain(flags.bits()), mode)
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
        create_raw(name, &options.fingerprint::<S>(), options).map(|(o, fd)| (Shared::from_raw(o), fd))
    }

    /// [`create`] for a payload described by its fingerprint.
    ///
    /// # Errors
    /// As for [`create`].
    pub fn create_raw(
        name: &CStr,
        fp: &Fingerprint,
        options: &ObjectOptions,
    ) -> Result<(FdRawShared, OwnedFd), ObjectError> {
        let flags = rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING;
        let fd = rustix::fs::memfd_create(name, flags)?;
        let object = create_in(&fd, fp, options)?;
        rustix::fs::fcntl_add_seals(&fd, SEALS)?;
        Ok((object, fd))
    }

    /// Opens the object in an inherited memfd, with the checks of [`sysv::open`](crate::object::sysv::open);
    /// the memfd must be sealed against shrinking (as [`create`] does), else `EPERM`.
    ///
    /// # Errors
    /// As for [`sysv::open`](crate::object::sysv::open).
    pub fn open<S: SharedState>(fd: &OwnedFd, options: &ObjectOptions) -> Result<FdShared<S>, ObjectError> {
        open_raw(fd, &options.fingerprint::<S>(), options).map(Shared::from_raw)
    }

    /// [`open`] for a payload described by its fingerprint.
    ///
    /// # Errors
    /// As for [`open`].
    pub fn open_raw(fd: &OwnedFd, fp: &Fingerprint, options: &ObjectOptions) -> Result<FdRawShared, ObjectError> {
        if !rustix::fs::fcntl_get_seals(fd)?.contains(SealFlags::SHRINK) {
            return Err(Errno::PERM.into());
        }
        // Owner and mode say nothing here: access was granted by whoever passed the descriptor, and memfds always
        // report mode 0777.
        open_in(fd, fp, options)
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
        create_raw(path, &options.fingerprint::<S>(), options).map(Shared::from_raw)
    }

    /// [`create`] for a payload described by its fingerprint.
    ///
    /// # Errors
    /// As for [`create`].
    pub fn create_raw(path: &CStr, fp: &Fingerprint, options: &ObjectOptions) -> Result<FdRawShared, ObjectError> {
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, options.mode)?;
        let object = match create_named(&fd, fp, options) {
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

    /// Opens the existing file object at `path`, checking type, owner, mode, size and header.
    ///
    /// The file is checked before it is opened read-write: a symbolic link as the last component of `path` is
    /// refused, not followed, and a FIFO, device or other non-regular file is never opened (an `O_PATH` handle
    /// is checked first); the file must be owned by the expected user ([`ObjectOptions::owner`], default the
    /// caller's effective uid) and grant no more than the options' mode. Symbolic links in the directories
    /// leading to it are followed as usual: keep those directories writable only by users you trust.
    ///
    /// # Errors
    /// As for [`sysv::open`](crate::object::sysv::open), and [`ObjectError::NotRegularFile`] for a symbolic
    /// link, FIFO, device or other non-regular file at `path`, [`ObjectError::Replaced`].
    pub fn open<S: SharedState>(path: &CStr, options: &ObjectOptions) -> Result<FdShared<S>, ObjectError> {
        open_raw(path, &options.fingerprint::<S>(), options).map(Shared::from_raw)
    }

    /// [`open`] for a payload described by its fingerprint.
    ///
    /// # Errors
    /// As for [`open`].
    pub fn open_raw(path: &CStr, fp: &Fingerprint, options: &ObjectOptions) -> Result<FdRawShared, ObjectError> {
        let fd = open_named(|flags| rustix::fs::open(path, flags, Mode::empty()), options)?;
        open_in(&fd, fp, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_replaced_between_check_and_open_is_refused() {
        let dir = std::env::temp_dir();
        let paths = ["checked", "swapped"].map(|what| {
            let path = dir.join(std::format!("shmfusion-{what}-{}", std::process::id()));
            let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC;
            drop(rustix::fs::open(c.as_c_str(), flags, Mode::RUSR | Mode::WUSR).unwrap());
            c
        });
        // The probe (O_PATH) sees the first file, the read-write open the second: as if the name had been
        // replaced in between.
        let open_with = |flags: OFlags| {
            let which = usize::from(!flags.contains(OFlags::PATH));
            rustix::fs::open(paths[which].as_c_str(), flags, Mode::empty())
        };
        let result = open_named(open_with, &ObjectOptions::new());
        for path in &paths {
            rustix::fs::unlink(path.as_c_str()).unwrap();
        }
        assert_eq!(result.unwrap_err(), ObjectError::Replaced);
    }
}
