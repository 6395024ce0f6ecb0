//! What may be removed: the core's [`judge_evidence`](shmfusion::object::judge_evidence) decides for every
//! object, with its reason; this module only gathers the evidence (for POSIX objects: `fstat` and who maps them)
//! and acts.

use serde::Serialize;
use shmfusion::object::{self, Evidence, Verdict as Decision};
use shmfusion::shm::{ShmId, segments};

use crate::objects::{self, Location};

/// The decision about one object.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    #[serde(flatten)]
    pub location: Location,
    /// Whether it is provably abandoned and the caller's: `reap --yes` and `rm` remove exactly these.
    pub remove: bool,
    /// The core's rule (`abandoned`, `attached`, `creator-alive`, ...: see the schema).
    pub rule: &'static str,
    pub reason: String,
    /// Set after an attempt: whether the removal happened.
    pub removed: Option<bool>,
}

impl Verdict {
    fn new(location: Location, d: Decision) -> Self {
        Self {
            location,
            remove: d.removable(),
            rule: d.rule(),
            reason: d.to_string(),
            removed: None,
        }
    }
}

/// Processes other than this one that map `/dev/shm/<name>` (from `/proc/*/maps`; processes whose maps are
/// unreadable are not seen).
fn posix_users(name: &str) -> u64 {
    let path = format!("/dev/shm{name}");
    let deleted = format!("{path} (deleted)");
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(maps) = std::fs::read_to_string(entry.path().join("maps"))
            && maps.lines().any(|l| l.ends_with(&path) || l.ends_with(&deleted))
        {
            n += 1;
        }
    }
    n
}

/// The evidence about a POSIX object: the file's owner and mode, who maps it, its header (files record no
/// creator, so the header names it).
fn posix_evidence(name: &str) -> Option<Evidence> {
    let o = objects::open_posix(name.trim_start_matches('/'))?;
    let mode = u32::from_str_radix(&o.object.mode, 8).unwrap_or(0o777);
    Some(Evidence {
        owner_uid: o.object.owner_uid,
        creator_uid: o.object.creator_uid,
        mode,
        size: o.object.size as usize,
        attach_count: posix_users(name),
        marked_for_removal: false,
        kernel_creator_pid: None,
        change_time: std::fs::metadata(format!("/dev/shm{name}"))
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ctime(&m)),
        header: o.header.map(|h| h.snapshot),
    })
}

fn sysv_location(id: ShmId, key: i32) -> Location {
    Location::Sysv {
        id: id.as_raw(),
        key: format!("0x{:08x}", key as u32),
    }
}

/// Judges (and with `act`, removes) one SysV segment. The look is the core's brief read-only inspection, so
/// this tool holds no attachment that would count as a user.
fn sysv(id: ShmId, uid: u32, act: bool) -> Option<Verdict> {
    let seen = object::inspect(id).ok()?;
    let location = sysv_location(id, seen.stat.key.as_raw());
    let decision = object::judge_evidence(&Evidence::of_segment(&seen), &[uid]);
    let mut v = Verdict::new(location.clone(), decision);
    if act && decision.removable() {
        match object::remove_if_abandoned(&seen, &[uid]) {
            Ok(d) => {
                v = Verdict::new(location, d);
                v.removed = Some(d.removable());
            }
            Err(e) => {
                v.reason = format!("{}; removal failed: {e}", v.reason);
                v.removed = Some(false);
            }
        }
    }
    Some(v)
}

/// Judges (and with `act`, removes) one POSIX object, judging it again right before unlinking it.
fn posix(name: &str, uid: u32, act: bool) -> Option<Verdict> {
    let location = Location::Posix { name: name.to_owned() };
    let decision = object::judge_evidence(&posix_evidence(name)?, &[uid]);
    let mut v = Verdict::new(location.clone(), decision);
    if act && decision.removable() {
        let again = posix_evidence(name).map(|e| object::judge_evidence(&e, &[uid]));
        if again != Some(decision) {
            v = Verdict::new(location, Decision::Changed);
            v.removed = Some(false);
        } else {
            let result = std::fs::remove_file(format!("/dev/shm{name}"));
            if let Err(e) = &result {
                v.reason = format!("{}; removal failed: {e}", v.reason);
            }
            v.removed = Some(result.is_ok());
        }
    }
    Some(v)
}

/// Every object's verdict for the caller `uid`, SysV segments first; with `act`, the removable ones are removed.
pub fn all(uid: u32, act: bool) -> std::io::Result<Vec<Verdict>> {
    let mut out: Vec<Verdict> = segments()
        .map_err(std::io::Error::from)?
        .filter_map(|(id, _)| sysv(id, uid, act))
        .collect();
    out.extend(
        objects::posix_names()
            .iter()
            .filter_map(|n| posix(&format!("/{n}"), uid, act)),
    );
    Ok(out)
}

/// The verdict on one object; `None` when it does not exist.
pub fn one(target: &objects::Target, uid: u32, act: bool) -> Option<Verdict> {
    match target {
        objects::Target::Name(name) => posix(&format!("/{name}"), uid, act),
        _ => {
            let o = objects::find(target)?;
            let Location::Sysv { id, .. } = o.object.location else {
                return None;
            };
            // Our own look's attachment must be gone before the core counts attachments.
            drop(o);
            sysv(ShmId::from_raw(id), uid, act)
        }
    }
}
