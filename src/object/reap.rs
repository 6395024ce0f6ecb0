//! Finding and removing the System V objects of crashed processes.

use super::header::{self, Header, MAGIC};
use crate::process::ProcessIdentity;
use crate::shm::{AttachOptions, segments};
use core::sync::atomic::Ordering;
use rustix::io::Result;

/// What [`reap`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReapReport {
    /// shmfusion objects removed: nobody attached, creator dead.
    pub removed: u32,
    /// shmfusion objects left alone because somebody is attached or the creator lives.
    pub live: u32,
    /// shmfusion objects left alone because they were created with [`Lifecycle::Persist`](super::Lifecycle).
    pub persistent: u32,
    /// Segments of the caller's user that are not shmfusion objects (never touched beyond a look at the header).
    pub foreign: u32,
}

/// Removes the shmfusion objects of the calling user whose users are all gone: nobody attached and the creator
/// dead (a dead pid, or a live pid with another start time). That includes objects whose creator died before
/// writing the header, recognised by their size signature ([`sysv::SIZE_SIGNATURE`](super::sysv::SIZE_SIGNATURE)). Live objects, persistent objects, other users'
/// segments and segments that are not shmfusion objects are left alone.
///
/// To read a header, `reap` briefly attaches (which updates the segment's attach time). It attaches read-write
/// although it only loads: 64-bit atomic loads are only sound on writable memory on 32-bit targets. It removes an
/// object only when, while it is attached, the attach count is exactly its own one; a process attaching in the
/// window between that check and the removal keeps a working mapping of an object that no longer has a key.
///
/// # Errors
/// Those of [`segments`]; errors on individual segments (gone meanwhile, not readable) skip them.
pub fn reap() -> Result<ReapReport> {
    let uid = rustix::process::geteuid().as_raw();
    let mut report = ReapReport::default();
    for (id, stat) in segments()? {
        if stat.ownership.creator_uid != uid || stat.marked_for_removal {
            continue;
        }
        if stat.size < core::mem::size_of::<Header>() {
            report.foreign += 1;
            continue;
        }
        if stat.attach_count > 0 {
            // Could be ours or not: only count it if it is.
            if let Ok(map) = id.attach(AttachOptions::new()) {
                // SAFETY: the mapping holds at least a header (size checked above) and is page-aligned; every
                // header field is an atomic, valid for any content; we only load.
                let header = unsafe { &*map.as_ptr().cast::<Header>() };
                if header.magic.load(Ordering::Relaxed) == MAGIC {
                    report.live += 1;
                } else {
                    report.foreign += 1;
                }
            }
            continue;
        }
        let Ok(map) = id.attach(AttachOptions::new()) else {
            continue;
        };
        // SAFETY: as above.
        let header = unsafe { &*map.as_ptr().cast::<Header>() };
        let magic = header.magic.load(Ordering::Relaxed);
        let state = header.state.load(Ordering::Acquire);
        // A creator killed before writing the header left a zero header in a segment with the size signature.
        let abandoned = magic == 0 && state == header::EMPTY && super::sysv::has_size_signature(stat.size);
        if magic != MAGIC && !abandoned {
            report.foreign += 1;
            continue;
        }
        if header.flags.load(Ordering::Relaxed) & header::flags::PERSIST != 0 {
            report.persistent += 1;
            continue;
        }
        // A creator that died before publishing left only the kernel's record of its pid.
        let creator = if state == header::READY {
            ProcessIdentity {
                pid: header.creator_pid.load(Ordering::Relaxed),
                start_time: header.creator_start_time.load(Ordering::Relaxed),
            }
        } else {
            ProcessIdentity {
                pid: stat.creator_pid as u32,
                start_time: 0,
            }
        };
        if creator.is_alive() {
            report.live += 1;
            continue;
        }
        match id.stat() {
            Ok(now) if now.attach_count == 1 && !now.marked_for_removal => {
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
