//! SysV segments left behind by the tests.
//!
//! The run normally happens in a private IPC namespace (see `main`): then it starts with no
//! segments, sees only its own, cannot collide with keys of other runs on the same machine,
//! and whatever it leaked is freed by the kernel when the namespace ends, after being reported.

use std::collections::HashSet;
use std::fs;

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
