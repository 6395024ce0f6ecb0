//! Finding and removing the objects of crashed processes: one set of rules ([`judge_evidence`]) for [`reap`], for
//! operator tools that show what they would remove and why, and for their removals.

use core::fmt;

use super::header::{self, Snapshot};
use super::inspect::{Contents, Inspection, contents_of, inspect};
use crate::liveness::{Holder, Liveness};
use crate::shm::segments;
use rustix::io::{Errno, Result};

/// What [`reap`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReapReport {
    /// shmfusion objects removed: nobody attached, creator dead.
    pub removed: u32,
    /// shmfusion objects left alone because somebody is attached, the creator lives, or its liveness cannot be
    /// told (a creator in another IPC namespace, see [`liveness`](crate::liveness)).
    pub live: u32,
    /// shmfusion objects left alone because they were created with [`Lifecycle::Persist`](super::Lifecycle) or
    /// made persistent with [`Shared::persist`](super::Shared::persist).
    pub persistent: u32,
    /// Segments of the reaped users that are not shmfusion objects (never touched beyond a read-only look).
    pub foreign: u32,
    /// Segments of the reaped users whose mode lets another user write them (group or other write permission):
    /// their headers may be forged, so they are left alone. Remove them explicitly.
    pub untrusted: u32,
    /// Liveness anchors of the reaped users that their process was killed before marking for removal (see
    /// [`liveness`](crate::liveness)): removed.
    pub anchors: u32,
}

/// What is known about an object when deciding whether it is abandoned: the kernel's facts and a copy of its
/// header. [`Evidence::of_segment`] takes them from an [`Inspection`]; tools fill them in for POSIX shared memory
/// and files from `fstat` and from who maps the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// Owner (SysV `shm_perm.uid`, a file's uid).
    pub owner_uid: u32,
    /// Creator (SysV `shm_perm.cuid`; a file's uid, as files keep no creator).
    pub creator_uid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: usize,
    /// Processes attached (SysV `shm_nattch`) or mapping the object.
    pub attach_count: u64,
    /// Already removed, waiting for its last detach (SysV `SHM_DEST`).
    pub marked_for_removal: bool,
    /// The creator's pid as the kernel records it in this process's PID namespace (SysV `shm_cpid`; 0 when the
    /// creator is outside it). `None` where the kernel records none (POSIX shared memory, files). For display
    /// only: the creator's liveness is judged by the header's creator role (see [`Evidence::creator`]).
    pub kernel_creator_pid: Option<u32>,
    /// When the object was created or last changed, seconds since the epoch (SysV `shm_ctime`, a file's
    /// `st_ctime`): how old a creation whose creator has not stamped the header is. `None`: unknown, such a
    /// creation is never judged abandoned.
    pub change_time: Option<i64>,
    /// A copy of the header, `None` when there is none to read.
    pub header: Option<Snapshot>,
}

impl Evidence {
    /// The evidence of an inspected System V segment.
    pub fn of_segment(seen: &Inspection) -> Self {
        let s = &seen.stat;
        Self {
            owner_uid: s.ownership.uid,
            creator_uid: s.ownership.creator_uid,
            mode: s.mode.bits(),
            size: s.size,
            attach_count: s.attach_count,
            marked_for_removal: s.marked_for_removal,
            // A negative pid is no pid: treated as a creator outside this namespace.
            kernel_creator_pid: Some(u32::try_from(s.creator_pid).unwrap_or(0)),
            change_time: Some(s.change_time),
            header: seen.header,
        }
    }

    /// What the object holds, judged from its header and size.
    pub fn contents(&self) -> Contents {
        contents_of(self.header, self.size)
    }

    /// The creator as the header's creator role records it, judged now (see [`liveness`](crate::liveness): valid
    /// across PID namespaces, zombies dead, a creator in another IPC namespace [`Liveness::Unknown`]); `None` when
    /// the creator has not stamped the header (it is between `shmget` and its first store, or died there) or the
    /// object is not a shmfusion object.
    pub fn creator(&self) -> Option<Holder> {
        if self.contents() == Contents::Foreign {
            return None;
        }
        self.header.and_then(|h| h.creator.holder())
    }
}

/// What [`reap`] makes of one object, and why: [`judge`]'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Not owned and created by one of the reaped users: not for this reap.
    NotTheirs,
    /// Already marked for removal: the kernel frees it on the last detach.
    MarkedForRemoval,
    /// Not a shmfusion object (see [`Contents::Foreign`]).
    Foreign,
    /// Its mode lets users other than the owner write it (group or other write permission), so its header may be
    /// forged: left alone, whatever it says.
    Untrusted,
    /// Processes are attached (the kernel's count) or map it.
    Attached {
        /// How many.
        count: u64,
    },
    /// Persistent ([`Lifecycle::Persist`](super::Lifecycle::Persist) or
    /// [`Shared::persist`](super::Shared::persist)).
    Persistent,
    /// The creator is alive or cannot be judged from here (see [`liveness`](crate::liveness)), or it has not
    /// stamped the header yet and the object is younger than [`CREATE_GRACE_S`](super::sysv::CREATE_GRACE_S).
    CreatorAlive {
        /// The creator as the header records it; `None` when it has not stamped the header.
        creator: Option<Holder>,
    },
    /// Abandoned: nobody attached and the creator dead (including a creator that died before publishing the
    /// header: see [`Contents::Unpublished`]; one that never stamped it counts as dead
    /// [`CREATE_GRACE_S`](super::sysv::CREATE_GRACE_S) after creation). [`reap`] removes it.
    Abandoned {
        /// The dead creator as the header records it; `None` when it never stamped the header.
        creator: Option<Holder>,
    },
    /// Judged abandoned, but the kernel's facts changed before the removal (somebody attached, or the segment was
    /// replaced): left alone. Only [`remove_if_abandoned`] says this.
    Changed,
}

impl Verdict {
    /// Whether the object may be removed.
    pub fn removable(&self) -> bool {
        matches!(self, Verdict::Abandoned { .. })
    }

    /// A stable name for scripts: `not-theirs`, `marked-for-removal`, `foreign`, `untrusted`, `attached`,
    /// `persistent`, `creator-alive`, `abandoned` or `changed`.
    pub fn rule(&self) -> &'static str {
        match self {
            Verdict::NotTheirs => "not-theirs",
            Verdict::MarkedForRemoval => "marked-for-removal",
            Verdict::Foreign => "foreign",
            Verdict::Untrusted => "untrusted",
            Verdict::Attached { .. } => "attached",
            Verdict::Persistent => "persistent",
            Verdict::CreatorAlive { .. } => "creator-alive",
            Verdict::Abandoned { .. } => "abandoned",
            Verdict::Changed => "changed",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::NotTheirs => f.write_str("not owned and created by a reaped user"),
            Verdict::MarkedForRemoval => f.write_str("already marked for removal; freed on the last detach"),
            Verdict::Foreign => f.write_str("not a shmfusion object"),
            Verdict::Untrusted => f.write_str("group or others may write it, so its header proves nothing"),
            Verdict::Attached { count } => write!(f, "attached by {count} process(es)"),
            Verdict::Persistent => f.write_str("persistent object (created to outlive its processes)"),
            Verdict::CreatorAlive { creator: None } => {
                f.write_str("its creator has not stamped the header yet (within the creation grace period)")
            }
            Verdict::CreatorAlive { creator: Some(h) } if h.liveness == Liveness::Unknown => {
                write!(
                    f,
                    "creator {} cannot be judged from here (another IPC namespace)",
                    Who(h)
                )
            }
            Verdict::CreatorAlive { creator: Some(h) } => write!(f, "creator {} is alive", Who(h)),
            Verdict::Abandoned { creator: None } => {
                f.write_str("its creator died before stamping the header and nobody is attached")
            }
            Verdict::Abandoned { creator: Some(h) } => {
                write!(f, "creator {} is dead and nobody is attached", Who(h))
            }
            Verdict::Changed => f.write_str("changed since it was looked at: left alone"),
        }
    }
}

/// A holder for messages: its pid here, or its own pid and namespace when it is another PID namespace's.
struct Who<'a>(&'a Holder);

impl fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.pid {
            Some(pid) => write!(f, "pid {pid}"),
            None => write!(f, "pid {} of PID namespace {:#x}", self.0.own_pid, self.0.pid_namespace),
        }
    }
}

/// Judges one inspected segment as [`reap_users`] does for `uids`, without removing anything (a dry run, with
/// the reason): [`judge_evidence`] of [`Evidence::of_segment`].
pub fn judge(seen: &Inspection, uids: &[u32]) -> Verdict {
    judge_evidence(&Evidence::of_segment(seen), uids)
}

/// Decides whether an object is abandoned by one of the users `uids`: the one set of rules of [`reap`] and of
/// tools (dry runs, removals of single objects, POSIX objects).
///
/// Only kernel facts decide, plus header fields that only the owner can have written: an object is considered
/// only if one of `uids` both owns and created it and it is not already marked for removal; one whose mode grants
/// write permission to its group or to others is [`Verdict::Untrusted`], because anybody in that group could have
/// cleared its persist flag or forged its creator. The creator is judged by the liveness anchor that the header's
/// creator role names (see [`liveness`](crate::liveness): no pid is interpreted, so a creator in another PID
/// namespace is judged like any other; one in another IPC namespace counts as alive). A creator that has not
/// stamped the header counts as alive for [`CREATE_GRACE_S`](super::sysv::CREATE_GRACE_S) seconds after the
/// object's change time, and forever when that time is unknown.
pub fn judge_evidence(e: &Evidence, uids: &[u32]) -> Verdict {
    if !uids.contains(&e.owner_uid) || e.creator_uid != e.owner_uid {
        return Verdict::NotTheirs;
    }
    if e.marked_for_removal {
        return Verdict::MarkedForRemoval;
    }
    let contents = e.contents();
    if contents == Contents::Foreign {
        return Verdict::Foreign;
    }
    if e.mode & 0o022 != 0 {
        return Verdict::Untrusted;
    }
    if e.attach_count > 0 {
        return Verdict::Attached { count: e.attach_count };
    }
    let flags = e.header.map_or(0, |h| h.flags);
    if contents == Contents::Object && flags & header::flags::PERSIST != 0 {
        return Verdict::Persistent;
    }
    let creator = e.creator();
    let abandoned = match creator {
        Some(holder) => holder.liveness == Liveness::Dead,
        None => e.change_time.is_some_and(|t| {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime).tv_sec;
            now.saturating_sub(t) > super::sysv::CREATE_GRACE_S
        }),
    };
    if abandoned {
        Verdict::Abandoned { creator }
    } else {
        Verdict::CreatorAlive { creator }
    }
}

/// Removes an inspected System V segment if its [`judge`]ment for `uids` says it is abandoned, and returns the
/// verdict ([`Verdict::Changed`] when the kernel's facts changed since the inspection: then nothing is removed).
///
/// The segment is removed only if, right before, the kernel still reports no attachment and the same creation;
/// a process attaching in the window between that check and the removal keeps a working mapping of an object
/// that no longer has a key.
///
/// # Errors
/// `EPERM` when a caller other than root names a uid other than its own; those of `shmctl(IPC_STAT)` and
/// `shmctl(IPC_RMID)` (`EINVAL`/`EIDRM` for a segment that is gone).
pub fn remove_if_abandoned(seen: &Inspection, uids: &[u32]) -> Result<Verdict> {
    let me = rustix::process::geteuid().as_raw();
    if me != 0 && uids.iter().any(|&uid| uid != me) {
        return Err(Errno::PERM);
    }
    let decided = judge(seen, uids);
    if !decided.removable() {
        return Ok(decided);
    }
    let now = seen.id.stat()?;
    let then = &seen.stat;
    let unchanged = now.attach_count == 0
        && !now.marked_for_removal
        && now.creator_pid == then.creator_pid
        && now.change_time == then.change_time
        && now.ownership == then.ownership
        && now.mode == then.mode;
    if !unchanged {
        return Ok(Verdict::Changed);
    }
    seen.id.remove()?;
    Ok(decided)
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
/// creator dead, as [`judge`] decides. That includes objects whose creator died before writing the header, recognised by their size
/// signature ([`sysv::SIZE_SIGNATURE`](super::sysv::SIZE_SIGNATURE)).
///
/// A segment is considered only if the kernel says one of `uids` both owns and created it. Every decision rests on
/// what the kernel records (owner, creator, mode, attach count, creator pid) and on header fields that only the
/// owner could have written: a segment whose mode grants write permission to its group or to others is counted as
/// [`ReapReport::untrusted`] and left alone, because anybody in that group could have cleared its persist flag
/// or forged its creator. Live objects, persistent objects and segments that are not shmfusion objects are left
/// alone. The rules are those of [`judge`]; removals go through [`remove_if_abandoned`].
///
/// Headers are read with [`inspect`], through a read-only attachment (which updates the segment's attach time).
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
        // Other users' segments are not even looked at.
        if !uids.contains(&owner.uid) || owner.creator_uid != owner.uid || stat.marked_for_removal {
            continue;
        }
        if crate::liveness::is_leaked_anchor(&stat) {
            if id.remove().is_ok() {
                report.anchors += 1;
            }
            continue;
        }
        let Ok(seen) = inspect(id) else { continue };
        let counter = match remove_if_abandoned(&seen, uids) {
            Ok(Verdict::Abandoned { .. }) => &mut report.removed,
            Ok(Verdict::Foreign) => &mut report.foreign,
            Ok(Verdict::Untrusted) => &mut report.untrusted,
            Ok(Verdict::Persistent) => &mut report.persistent,
            Ok(Verdict::NotTheirs | Verdict::MarkedForRemoval) | Err(_) => continue,
            Ok(_) => &mut report.live,
        };
        *counter += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liveness::RoleRecord;
    use crate::object::{MAGIC, READY, sysv::SIZE_SIGNATURE};

    /// A creator role naming this process's anchor (alive) or an anchor id that does not exist (dead).
    fn creator(alive: bool) -> RoleRecord {
        let me = crate::liveness::current().unwrap();
        // The low 32 bits of a token are the anchor's segment id; 0x7fff_fff0 is no segment.
        let token = if alive {
            me.token
        } else {
            (me.token & !0xffff_ffff) | 0x7fff_fff0
        };
        RoleRecord {
            token,
            details_of: token,
            pid: 4242,
            ..RoleRecord::default()
        }
    }

    fn evidence(alive: bool) -> Evidence {
        Evidence {
            owner_uid: 1000,
            creator_uid: 1000,
            mode: 0o600,
            size: 4096 + SIZE_SIGNATURE,
            attach_count: 0,
            marked_for_removal: false,
            kernel_creator_pid: Some(0),
            change_time: Some(0),
            header: Some(Snapshot {
                magic: MAGIC,
                state: READY,
                creator: creator(alive),
                ..Snapshot::default()
            }),
        }
    }

    /// A creator killed between setting `INITIALISING` and storing the magic left a half-written header: its
    /// object is abandoned, not foreign (a foreign verdict would leak it forever).
    #[test]
    fn a_creator_killed_while_initialising_is_abandoned_not_foreign() {
        let mut e = evidence(false);
        e.header = e.header.map(|h| Snapshot {
            magic: 0,
            state: crate::object::INITIALISING,
            ..h
        });
        assert_eq!(e.contents(), Contents::Unpublished);
        assert!(matches!(judge_evidence(&e, &[1000]), Verdict::Abandoned { .. }));
    }

    #[test]
    fn each_rule_keeps_or_removes() {
        let e = evidence(false);
        let v = judge_evidence(&e, &[1000]);
        assert!(
            matches!(v, Verdict::Abandoned { creator: Some(h) } if h.own_pid == 4242 && h.liveness == Liveness::Dead)
        );
        assert!(v.removable());
        let persistent = Evidence {
            header: e.header.map(|h| Snapshot {
                flags: header::flags::PERSIST,
                ..h
            }),
            ..e
        };
        let cases = [
            (Evidence { creator_uid: 0, ..e }, "not-theirs"),
            (Evidence { owner_uid: 0, ..e }, "not-theirs"),
            (
                Evidence {
                    marked_for_removal: true,
                    ..e
                },
                "marked-for-removal",
            ),
            (Evidence { header: None, ..e }, "foreign"),
            (Evidence { mode: 0o620, ..e }, "untrusted"),
            (Evidence { attach_count: 2, ..e }, "attached"),
            (persistent, "persistent"),
            (evidence(true), "creator-alive"),
        ];
        for (e, rule) in cases {
            let v = judge_evidence(&e, &[1000]);
            assert_eq!(v.rule(), rule, "{v}");
            assert!(!v.removable());
        }
    }

    #[test]
    fn unfinished_objects_and_the_creation_grace_period() {
        // A zero header with the size signature: the creator died before publishing.
        let zero = Evidence {
            header: Some(Snapshot {
                creator: creator(false),
                ..Snapshot::default()
            }),
            ..evidence(false)
        };
        assert!(judge_evidence(&zero, &[1000]).removable());
        // Without the size signature a zero header is anybody's segment.
        assert_eq!(
            judge_evidence(&Evidence { size: 8192, ..zero }, &[1000]),
            Verdict::Foreign
        );
        // Not even stamped: abandoned only once the grace period is over, never when the age is unknown.
        let unstamped = Evidence {
            header: Some(Snapshot::default()),
            ..zero
        };
        assert_eq!(
            judge_evidence(&unstamped, &[1000]),
            Verdict::Abandoned { creator: None }
        );
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime).tv_sec;
        for change_time in [Some(now), None] {
            let young = Evidence {
                change_time,
                ..unstamped
            };
            assert_eq!(judge_evidence(&young, &[1000]), Verdict::CreatorAlive { creator: None });
        }
    }
}
