//! Finding and removing the System V objects of crashed processes.

use super::header::{self, READY};
use super::inspect::{Contents, Inspection, inspect};
use crate::process::ProcessIdentity;
use crate::shm::{Stat, segments};
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

/// What [`reap`] makes of one segment, and why: [`judge`]'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Not owned and created by one of the reaped users, or already marked for removal: not for this reap.
    NotTheirs,
    /// Not a shmfusion object (see [`Contents::Foreign`]).
    Foreign,
    /// Its mode lets users other than the owner write it (group or other write permission), so its header may be
    /// forged: left alone, whatever it says.
    Untrusted,
    /// Processes are attached (the kernel's count).
    Attached {
        /// How many.
        count: u64,
    },
    /// Persistent ([`Lifecycle::Persist`](super::Lifecycle::Persist) or
    /// [`Shared::persist`](super::Shared::persist)).
    Persistent,
    /// The creator is alive, or cannot be seen from this PID namespace (`pid` 0).
    CreatorAlive {
        /// The kernel's creator pid, in this process's PID namespace.
        pid: u32,
    },
    /// Abandoned: nobody attached and the creator dead. [`reap`] removes it.
    Abandoned {
        /// The dead creator's pid.
        pid: u32,
    },
}

/// Whether one of `uids` both owns and created the segment, and it is not already marked for removal.
fn theirs(stat: &Stat, uids: &[u32]) -> bool {
    let owner = stat.ownership;
    uids.contains(&owner.uid) && owner.creator_uid == owner.uid && !stat.marked_for_removal
}

/// Judges one inspected segment as [`reap_users`] does for `uids`, without removing anything (a dry run, with
/// the reason).
///
/// Only kernel facts decide, plus header fields that only the owner can have written: a segment is considered
/// only if one of `uids` both owns and created it; one whose mode grants write permission to its group or to
/// others is [`Verdict::Untrusted`], because anybody in that group could have cleared its persist flag or forged
/// its creator. The creator is the kernel's (`shm_cpid`), checked against the start time the header records when
/// the two agree on the pid (the header has the pid in the creator's own PID namespace, the kernel in ours), so a
/// reused pid is not mistaken for the creator; pid 0 (a creator in a PID namespace this one cannot see) counts as
/// alive, since nothing visible from here can tell.
pub fn judge(seen: &Inspection, uids: &[u32]) -> Verdict {
    if !theirs(&seen.stat, uids) {
        return Verdict::NotTheirs;
    }
    let contents = seen.contents();
    if contents == Contents::Foreign {
        return Verdict::Foreign;
    }
    if seen.header_writable_by_others() {
        return Verdict::Untrusted;
    }
    if seen.stat.attach_count > 0 {
        return Verdict::Attached {
            count: seen.stat.attach_count,
        };
    }
    let header = seen.header.unwrap_or_default();
    if contents == Contents::Object && header.flags & header::flags::PERSIST != 0 {
        return Verdict::Persistent;
    }
    let pid = u32::try_from(seen.stat.creator_pid).unwrap_or(0);
    let start_time = if header.state == READY && header.creator_pid == pid {
        header.creator_start_time
    } else {
        0
    };
    if pid == 0 || (ProcessIdentity { pid, start_time }).is_alive() {
        return Verdict::CreatorAlive { pid };
    }
    Verdict::Abandoned { pid }
}

/// Removes the shmfusion objects owned by the users `uids` whose users are all gone: nobody attached and the
/// creator dead, as [`judge`] decides. That includes objects whose creator died before writing the header,
/// recognised by their size signature ([`sysv::SIZE_SIGNATURE`](super::sysv::SIZE_SIGNATURE)).
///
/// Other users' segments are not even looked at. Headers are read with [`inspect`], through a read-only
/// attachment (which updates the segment's attach time). An object is removed only if, after that look, the
/// kernel still reports no attachment and the same creation; a process attaching in the window between that
/// check and the removal keeps a working mapping of an object that no longer has a key.
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
        // Other users' segments are not even attached.
        if !theirs(&stat, uids) {
            continue;
        }
        let Ok(seen) = inspect(id) else { continue };
        match judge(&seen, uids) {
            Verdict::NotTheirs => {}
            Verdict::Foreign => report.foreign += 1,
            Verdict::Untrusted => report.untrusted += 1,
            Verdict::Persistent => report.persistent += 1,
            Verdict::Attached { .. } | Verdict::CreatorAlive { .. } => report.live += 1,
            Verdict::Abandoned { .. } => match id.stat() {
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
            },
        }
    }
    Ok(report)
}
