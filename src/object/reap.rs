//! Finding and removing the System V objects of crashed processes.

use super::header::{self, READY};
use super::inspect::{Contents, inspect};
use crate::process::ProcessIdentity;
use crate::shm::segments;
use rustix::io::{Errno, Result};

/// What [`reap`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReapReport {
    /// shmfusion objects removed: nobody attached, creator dead.
    pub removed: u32,
    /// shmfusion objects left alone because somebody is attached, the creator lives, or its liveness cannot be
    /// told (a creator in a PID namespace this process cannot see).
    pub live: u32,
    /// shmfusion objects left alone because they were created with [`Lifecycle::Persist`](super::Lifecycle) or
    /// made persistent with [`Shared::persist`](super::Shared::persist).
    pub persistent: u32,
    /// Segments of the reaped users that are not shmfusion objects (never touched beyond a read-only look).
    pub foreign: u32,
    /// Segments of the reaped users whose mode lets another user write them (group or other write permission):
    /// their headers may be forged, so they are left alone. Remove them explicitly.
    pub untrusted: u32,
}

/// Removes the shmfusion objects of the calling user (its effective uid) whose users are all gone. See
/// [`reap_users`], of which this is the case `reap_users(&[geteuid()])`: a root caller reaps root's segments only.
///
/// # Errors
/// Those of [`segments`].
pub fn reap() -> Result<ReapReport> {
    reap_users(&[rustix::process::geteuid().as_raw()])
}

/// Removes the shmfusion objects owned by the users `uids` whose users are all gone: nobody attached and the
/// creator dead. That includes objects whose creator died before writing the header, recognised by their size
/// signature ([`sysv::SIZE_SIGNATURE`](super::sysv::SIZE_SIGNATURE)).
///
/// A segment is considered only if the kernel says one of `uids` both owns and created it. Every decision rests on
/// what the kernel records (owner, creator, mode, attach count, creator pid) and on header fields that only the
/// owner could have written: a segment whose mode grants write permission to its group or to others is counted as
/// [`ReapReport::untrusted`] and left alone, because anybody in that group could have cleared its persist flag
/// or forged its creator. Live objects, persistent objects and segments that are not shmfusion objects are left
/// alone. The creator's liveness is the kernel's creator pid (`shm_cpid`), checked against the start time the
/// header records when the two agree on the pid; a creator outside this process's PID namespace (pid 0) counts
/// as alive, since nothing visible from here can tell.
///
/// Headers are read with [`inspect`], through a read-only attachment (which updates the segment's attach time).
/// An object is removed only if, after that look, the kernel still reports no attachment and the same creation;
/// a process attaching in the window between that check and the removal keeps a working mapping of an object
/// that no longer has a key.
///
/// # Errors
/// `EPERM` when a caller other than root names a uid other than its own; those of [`segments`]. Errors on
/// individual segments (gone meanwhile, not readable) skip them.
pub fn reap_users(uids: &[u32]) -> Result<ReapReport> {
    let me = rustix::process::geteuid().as_raw();
    if me != 0 && uids.iter().any(|&uid| uid != me) {
        return Err(Errno::PERM);
    }
    let mut report = ReapReport::default();
    for (id, stat) in segments()? {
        let owner = stat.ownership;
        if !uids.contains(&owner.uid) || owner.creator_uid != owner.uid || stat.marked_for_removal {
            continue;
        }
        let Ok(seen) = inspect(id) else { continue };
        let contents = seen.contents();
        if contents == Contents::Foreign {
            report.foreign += 1;
            continue;
        }
        if seen.header_writable_by_others() {
            report.untrusted += 1;
            continue;
        }
        if seen.stat.attach_count > 0 {
            report.live += 1;
            continue;
        }
        let header = seen.header.unwrap_or_default();
        if contents == Contents::Object && header.flags & header::flags::PERSIST != 0 {
            report.persistent += 1;
            continue;
        }
        let Ok(creator_pid) = u32::try_from(seen.stat.creator_pid) else {
            report.live += 1;
            continue;
        };
        // The header's start time tells a reused pid from the creator, when the header speaks of the same pid
        // (it records the pid in the creator's own namespace, the kernel in ours).
        let start_time = if header.state == READY && header.creator_pid == creator_pid {
            header.creator_start_time
        } else {
            0
        };
        let creator = ProcessIdentity {
            pid: creator_pid,
            start_time,
        };
        if creator_pid == 0 || creator.is_alive() {
            report.live += 1;
            continue;
        }
        match id.stat() {
            Ok(now)
                if now.attach_count == 0
                    && !now.marked_for_removal
                    && now.creator_pid == seen.stat.creator_pid
                    && now.change_time == seen.stat.change_time
                    && now.ownership == seen.stat.ownership
                    && now.mode == seen.stat.mode =>
            {
                if id.remove().is_ok() {
                    report.removed += 1;
                }
            }
            Ok(_) => report.live += 1,
            Err(_) => {}
        }
    }
    Ok(report)
}
