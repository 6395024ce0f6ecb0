//! System V segments and POSIX shm objects left behind by the tests.
//!
//! The run normally happens in a private IPC namespace (see `main`): then it starts with no
//! segments, sees only its own, cannot collide with keys of other runs on the same machine,
//! and whatever it leaked is freed by the kernel when the namespace ends, after being reported.
//!
//! POSIX shm objects (`shm_open`, files in `/dev/shm`) are not in the IPC namespace. Where it can,
//! `main` also gives the run a mount namespace with a fresh tmpfs on `/dev/shm`, so that it sees
//! only its own objects and whatever it leaked goes with the namespace, after being reported;
//! otherwise it sees the machine's. Either way the check compares the objects present at the end
//! with a listing taken at the start, and counts those made since that no process holds.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct Segment {
    pub shmid: String,
    pub line: String,
}

/// The segments in `/proc/sysvipc/shm`, which shows the reader's IPC namespace.
pub fn segments() -> Result<Vec<Segment>, String> {
    let text = fs::read_to_string("/proc/sysvipc/shm").map_err(|e| format!("/proc/sysvipc/shm: {e}"))?;
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        // key shmid perms size cpid lpid nattch uid ...
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 {
            continue;
        }
        out.push(Segment {
            shmid: f[1].to_string(),
            line: format!(
                "key {} shmid {} perms {} size {} cpid {} nattch {}",
                f[0], f[1], f[2], f[3], f[4], f[6]
            ),
        });
    }
    Ok(out)
}

/// Segments present now that were not present in `before`.
pub fn new_since(before: &[Segment]) -> Result<Vec<Segment>, String> {
    let old: HashSet<&str> = before.iter().map(|s| s.shmid.as_str()).collect();
    Ok(segments()?
        .into_iter()
        .filter(|s| !old.contains(s.shmid.as_str()))
        .collect())
}

/// Where Linux keeps POSIX shm objects (`shm_open(3)`: a tmpfs, one file per object).
pub const POSIX_SHM_DIR: &str = "/dev/shm";

/// One entry of the POSIX shm directory. A name removed and made again is another object: the
/// inode tells them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PosixObject {
    pub path: PathBuf,
    pub inode: u64,
    pub line: String,
}

/// The entries of `dir` (normally [`POSIX_SHM_DIR`]); none if it does not exist.
pub fn posix_objects(dir: &Path) -> Result<Vec<PosixObject>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        // Gone between the listing and the stat: not left behind.
        let Ok(m) = fs::symlink_metadata(&path) else {
            continue;
        };
        out.push(PosixObject {
            line: format!(
                "{} size {} mode {:o} uid {}",
                path.display(),
                m.len(),
                m.mode() & 0o7777,
                m.uid()
            ),
            path,
            inode: m.ino(),
        });
    }
    Ok(out)
}

/// What the run's POSIX shm check found.
#[derive(Debug, Default)]
pub struct PosixLeaks {
    /// Made during the run, still there, and held by no process: left behind.
    pub left: Vec<PosixObject>,
    /// Made during the run and still open or mapped by a live process (with its pid). Every
    /// command of the run has ended by then, so the holder is outside the run (another run on a
    /// shared machine), unless the run left a process behind.
    pub held: Vec<(PosixObject, u32)>,
}

/// Entries of `dir` present now that were not in `before`, split into left behind and still held.
pub fn posix_new_since(dir: &Path, before: &[PosixObject]) -> Result<PosixLeaks, String> {
    let old: HashSet<(&Path, u64)> = before.iter().map(|o| (o.path.as_path(), o.inode)).collect();
    let new: Vec<PosixObject> = posix_objects(dir)?
        .into_iter()
        .filter(|o| !old.contains(&(o.path.as_path(), o.inode)))
        .collect();
    let mut leaks = PosixLeaks::default();
    if new.is_empty() {
        return Ok(leaks);
    }
    let holders = holders();
    for o in new {
        match holders.iter().find(|(path, _)| *path == o.path) {
            Some(&(_, pid)) => leaks.held.push((o, pid)),
            None => leaks.left.push(o),
        }
    }
    Ok(leaks)
}

/// Every file some live process has open (`/proc/PID/fd`) or mapped (`/proc/PID/maps`), with that
/// process. Processes that cannot be read (gone, or another user's without privilege) are skipped.
fn holders() -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(fds) = fs::read_dir(p.path().join("fd")) {
            out.extend(
                fds.flatten()
                    .filter_map(|fd| Some((fs::read_link(fd.path()).ok()?, pid))),
            );
        }
        if let Ok(maps) = fs::read_to_string(p.path().join("maps")) {
            // address perms offset dev inode path
            out.extend(
                maps.lines()
                    .filter_map(|l| l.split_whitespace().nth(5))
                    .filter(|path| path.starts_with('/'))
                    .map(|path| (PathBuf::from(path), pid)),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of the test's own standing in for `/dev/shm`, removed at the end.
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn posix_objects_made_after_the_listing_are_left_unless_held() {
        let dir = Dir(std::env::temp_dir().join(format!("xtask-leak-{}", std::process::id())));
        fs::create_dir_all(&dir.0).unwrap();
        fs::write(dir.0.join("old"), b"x").unwrap();
        let before = posix_objects(&dir.0).unwrap();
        assert_eq!(before.len(), 1);
        assert!(posix_new_since(&dir.0, &before).unwrap().left.is_empty());

        fs::write(dir.0.join("left"), b"x").unwrap();
        let held_path = dir.0.join("held");
        let _open = fs::File::create(&held_path).unwrap();
        // Same name, another object (made before the old one goes, so that it cannot reuse its inode).
        fs::write(dir.0.join("new"), b"y").unwrap();
        fs::rename(dir.0.join("new"), dir.0.join("old")).unwrap();

        let leaks = posix_new_since(&dir.0, &before).unwrap();
        let mut left: Vec<_> = leaks
            .left
            .iter()
            .map(|o| o.path.file_name().unwrap().to_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["left", "old"]);
        assert_eq!(leaks.held.len(), 1);
        assert_eq!(leaks.held[0].0.path, held_path);
        assert_eq!(leaks.held[0].1, std::process::id());
        assert!(leaks.left[0].line.contains("size 1 mode"), "{}", leaks.left[0].line);
    }

    #[test]
    fn a_missing_directory_has_no_objects() {
        let gone = std::env::temp_dir().join(format!("xtask-leak-none-{}", std::process::id()));
        assert!(posix_objects(&gone).unwrap().is_empty());
    }
}
