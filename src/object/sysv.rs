//! Shared objects in System V segments (the default kind).

use super::{
    CleanupAction, Fingerprint, Lifecycle, ObjectError, ObjectOptions, RawShared, Shared, SharedState, header,
};
use crate::shm::{AttachOptions, Attachment, Expected, Key, Options, ShmId, open_verified};
use rustix::io::Errno;

/// A typed object in a System V segment.
pub type SysvShared<S> = super::Shared<S, Attachment>;

/// An object with a payload described at run time, in a System V segment.
pub type SysvRawShared = RawShared<Attachment>;

/// The remainder modulo 4096 of every shmfusion SysV segment's size.
///
/// A creator killed between `shmget` and writing the header leaves a zero-filled segment with no magic; this size
/// signature is how [`reap`](super::reap) still recognises it as an abandoned shmfusion object. The extra bytes
/// cost nothing: mappings are whole pages anyway.
pub const SIZE_SIGNATURE: usize = 0xf5;

/// Whether a segment size carries the shmfusion signature.
pub fn has_size_signature(size: usize) -> bool {
    size % 4096 == SIZE_SIGNATURE
}

fn segment_size(fp: &Fingerprint) -> Result<usize, ObjectError> {
    let total = header::total_size_of(fp).ok_or(ObjectError::TooLarge)?;
    total
        .checked_next_multiple_of(4096)
        .and_then(|s| s.checked_add(SIZE_SIGNATURE as u64))
        .and_then(|s| usize::try_from(s).ok())
        .ok_or(ObjectError::TooLarge)
}

/// How long a segment whose creator never stamped its header is presumed to belong to a creator still between
/// `shmget` and its first store (a window of microseconds), in seconds of the segment's change time (which has
/// one-second resolution). Past it, such a segment with nobody attached is abandoned: its creator died before
/// attaching. This bounds the recovery of such a key to at most `CREATE_GRACE_S + 1` seconds after creation.
pub const CREATE_GRACE_S: i64 = 2;

/// Removes the segment under `key` if it is an abandoned creation: ours, signed, no published header, and
/// [`reap::judge`](super::reap::judge) finds it abandoned (nobody attached, creator dead, or never stamped and past
/// [`CREATE_GRACE_S`]). Read through [`inspect`](super::inspect()) only. Returns whether it did.
fn remove_if_abandoned(key: Key) -> bool {
    let Ok(segment) = open_verified(key, &Expected::new(0).allowed_mode(rustix::fs::Mode::RWXU)) else {
        return false;
    };
    let Ok(seen) = super::inspect(segment.id()) else {
        return false;
    };
    let uid = rustix::process::geteuid().as_raw();
    seen.header.is_some_and(|h| h.state != header::READY)
        && matches!(
            super::reap::remove_if_abandoned(&seen, &[uid]),
            Ok(super::reap::Verdict::Abandoned { .. })
        )
}

/// Creates a new object under `key` (exclusively: `EEXIST` if the key is taken), mode from the options.
///
/// The header is written and published before this returns, so no opener ever sees a half-built object.
/// [`Key::PRIVATE`] creates an object shared by id.
///
/// # Errors
/// [`ObjectError::Os`] with the errors of `shmget`/`shmat`.
pub fn create<S: SharedState>(key: Key, options: &ObjectOptions) -> Result<SysvShared<S>, ObjectError> {
    create_raw(key, &options.fingerprint::<S>(), options).map(Shared::from_raw)
}

/// [`create`] for a payload described by its fingerprint (see
/// [`ObjectOptions::fingerprint_described`](super::ObjectOptions::fingerprint_described)).
///
/// # Errors
/// As for [`create`].
pub fn create_raw(key: Key, fp: &Fingerprint, options: &ObjectOptions) -> Result<SysvRawShared, ObjectError> {
    let size = segment_size(fp)?;
    // The creator's anchor first, so that the window in which the new segment has no creator stamp is only the
    // `shmat` below (see `CREATE_GRACE_S`).
    crate::liveness::current()?;
    let segment = Options::new(size).mode(options.mode).create_exclusive(key)?;
    let guard = segment.remove_on_drop();
    let attachment = segment.attach(AttachOptions::new())?;
    let flags = if options.lifecycle == Lifecycle::Persist {
        header::flags::PERSIST
    } else {
        0
    };
    let object = RawShared::init(attachment, fp, flags)?;
    let cleanup = match options.lifecycle {
        Lifecycle::UntilCreatorGone => Some(CleanupAction::Sysv(guard)),
        Lifecycle::RemoveOnLastDetach => {
            guard.remove()?;
            None
        }
        Lifecycle::Persist => {
            let _ = guard.disarm();
            None
        }
    };
    Ok(object.with_cleanup(cleanup))
}

/// Opens the existing object under `key`, after checking that the caller's user owns and created the segment,
/// that its mode grants no more than the options' mode, and that it is large enough; then waits (bounded) for the
/// creator to publish the header and validates it against `S`.
///
/// # Errors
/// [`ObjectError::Verify`] for a segment of another user (key squatting), too permissive or too small;
/// [`ObjectError::Header`] for a foreign, corrupt, unfinished or mismatched object; [`ObjectError::Os`] otherwise
/// (`ENOENT`: no such key).
pub fn open<S: SharedState>(key: Key, options: &ObjectOptions) -> Result<SysvShared<S>, ObjectError> {
    open_raw(key, &options.fingerprint::<S>(), options).map(Shared::from_raw)
}

/// [`open`] for a payload described by its fingerprint.
///
/// # Errors
/// As for [`open`].
pub fn open_raw(key: Key, fp: &Fingerprint, options: &ObjectOptions) -> Result<SysvRawShared, ObjectError> {
    let expected = Expected::new(segment_size(fp)?)
        .uid(options.expected_owner())
        .allowed_mode(options.mode);
    let segment = open_verified(key, &expected)?;
    attach_and_validate(segment.id(), fp, options)
}

/// Opens an object by segment id (for objects created with [`Lifecycle::RemoveOnLastDetach`] or
/// [`Key::PRIVATE`]), with the same checks as [`open`].
///
/// # Errors
/// As for [`open`].
pub fn open_id<S: SharedState>(id: ShmId, options: &ObjectOptions) -> Result<SysvShared<S>, ObjectError> {
    open_id_raw(id, &options.fingerprint::<S>(), options).map(Shared::from_raw)
}

/// [`open_id`] for a payload described by its fingerprint.
///
/// # Errors
/// As for [`open`].
pub fn open_id_raw(id: ShmId, fp: &Fingerprint, options: &ObjectOptions) -> Result<SysvRawShared, ObjectError> {
    let expected = Expected::new(segment_size(fp)?)
        .uid(options.expected_owner())
        .allowed_mode(options.mode);
    crate::shm::verify::check(&id.stat()?, &expected)?;
    attach_and_validate(id, fp, options)
}

fn attach_and_validate(id: ShmId, fp: &Fingerprint, options: &ObjectOptions) -> Result<SysvRawShared, ObjectError> {
    let attachment = id.attach(AttachOptions::new())?;
    RawShared::open(attachment, fp, options)
}

/// Opens the object under `key`, or creates it if there is none; returns the object and whether this call created
/// it. Of any number of processes racing here, exactly one creates and the others open the object it created,
/// never a second object and never an unfinished one.
///
/// # Errors
/// As for [`create`] and [`open`]; `EAGAIN` if the key kept appearing and disappearing (another process creating
/// and removing it in a tight loop).
pub fn open_or_create<S: SharedState>(key: Key, options: &ObjectOptions) -> Result<(SysvShared<S>, bool), ObjectError> {
    open_or_create_raw(key, &options.fingerprint::<S>(), options).map(|(o, new)| (Shared::from_raw(o), new))
}

/// [`open_or_create`] for a payload described by its fingerprint.
///
/// # Errors
/// As for [`open_or_create`].
pub fn open_or_create_raw(
    key: Key,
    fp: &Fingerprint,
    options: &ObjectOptions,
) -> Result<(SysvRawShared, bool), ObjectError> {
    if key.is_private() {
        return create_raw(key, fp, options).map(|o| (o, true));
    }
    for _ in 0..64 {
        match create_raw(key, fp, options) {
            Ok(object) => return Ok((object, true)),
            Err(ObjectError::Os(Errno::EXIST)) => {}
            Err(e) => return Err(e),
        }
        match open_raw(key, fp, options) {
            Ok(object) => return Ok((object, false)),
            // Removed between our create and open attempts (its creator went away): try again.
            Err(ObjectError::Os(Errno::NOENT | Errno::IDRM | Errno::INVAL)) => {}
            // A creator that died before publishing: clear its leftovers and try again.
            Err(e @ ObjectError::Header(super::HeaderError::NotReady { .. })) => {
                if !remove_if_abandoned(key) {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ObjectError::Os(Errno::AGAIN))
}
