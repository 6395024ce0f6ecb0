//! What may be removed: only objects of the caller's user that are provably abandoned, each with its reason.

use serde::Serialize;
use shmfusion::object::sysv::has_size_signature;
use shmfusion::shm::ShmId;

use crate::objects::{Location, Object, Opened};

/// The decision about one object.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    #[serde(flatten)]
    pub location: Location,
    /// Whether it is provably abandoned and the caller's: `reap --yes` and `rm` remove exactly these.
    pub remove: bool,
    pub reason: String,
    /// Set after an attempt: whether the removal happened.
    pub removed: Option<bool>,
}

/// Processes that map `/dev/shm/<name>` (from `/proc/*/maps`; processes whose maps are unreadable are not seen).
fn posix_users(name: &str) -> Vec<u32> {
    let path = format!("/dev/shm{name}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(maps) = std::fs::read_to_string(entry.path().join("maps")) {
            if maps
                .lines()
                .any(|l| l.ends_with(&path) || l.ends_with(&format!("{path} (deleted)")))
            {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Decides about one object for a caller with effective uid `uid`.
pub fn judge(opened: &Opened, uid: u32) -> Verdict {
    let o: &Object = &opened.object;
    let keep = |reason: String| Verdict {
        location: o.location.clone(),
        remove: false,
        reason,
        removed: None,
    };
    let remove = |reason: String| Verdict {
        location: o.location.clone(),
        remove: true,
        reason,
        removed: None,
    };
    if o.creator_uid != uid || o.owner_uid != uid {
        return keep(format!(
            "owned by uid {} (created by uid {}), not by you (uid {uid})",
            o.owner_uid, o.creator_uid
        ));
    }
    if o.marked_for_removal {
        return keep("already marked for removal; the kernel frees it on the last detach".into());
    }
    let attached = match (&o.location, o.attach_count) {
        (Location::Sysv { .. }, Some(n)) => n,
        (Location::Posix { name }, _) => posix_users(name).len() as u64,
        _ => 0,
    };
    let Some(sf) = &o.shmfusion else {
        // A creator killed between shmget and writing the header leaves a zero, signed segment.
        let zero_header = opened.map.is_none() && o.note.as_deref().is_some_and(|n| n.contains("state 0"));
        if let (Location::Sysv { .. }, Some(creator)) = (&o.location, o.creator) {
            if zero_header && has_size_signature(o.size as usize) && attached == 0 && !creator.alive {
                return remove(format!(
                    "unfinished shmfusion object: creator pid {} died before writing the header, nobody attached",
                    creator.pid
                ));
            }
        }
        return keep(format!(
            "not a shmfusion object ({})",
            o.note.as_deref().unwrap_or("no header")
        ));
    };
    if sf.lifecycle == "persist" {
        return keep("persistent object (created to outlive its processes)".into());
    }
    if attached > 0 {
        return keep(format!("attached by {attached} process(es)"));
    }
    if sf.creator.alive {
        return keep(format!("creator pid {} is alive", sf.creator.pid));
    }
    let live_role = sf
        .writer
        .iter()
        .chain(&sf.consumer)
        .chain(&sf.registered_writers)
        .find(|p| p.alive);
    if let Some(p) = live_role {
        return keep(format!("role holder pid {} is alive", p.pid));
    }
    remove(format!("creator pid {} is dead and nobody is attached", sf.creator.pid))
}

/// Removes an object judged removable, re-checking the SysV attach count right before.
pub fn execute(opened: &Opened, verdict: &mut Verdict) {
    let ok = match &verdict.location {
        Location::Sysv { id, .. } => {
            let id = ShmId::from_raw(*id);
            // Our own read-only attachment, if any, counts; it is dropped with `opened` later, so allow it.
            let ours = u64::from(opened.map.is_some());
            match id.stat() {
                Ok(s) if s.attach_count <= ours && !s.marked_for_removal => id.remove().is_ok(),
                Ok(s) => {
                    verdict.reason = format!("attach count became {} meanwhile: left alone", s.attach_count - ours);
                    false
                }
                Err(e) => {
                    verdict.reason = format!("gone meanwhile: {e}");
                    false
                }
            }
        }
        Location::Posix { name } => std::fs::remove_file(format!("/dev/shm{name}")).is_ok(),
    };
    verdict.removed = Some(ok);
}
