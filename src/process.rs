//! Process identity that survives pid reuse: a pid plus the process's start time.
//!
//! Shared objects record who created them and who holds a role (producer, writer) so that another process can
//! tell a live holder from a dead one. A bare pid is not enough: after a crash the kernel may give the same pid to
//! an unrelated process. The start time (field 22 of `/proc/<pid>/stat`, in clock ticks since boot) tells the two
//! apart. Where `/proc` is not mounted (a bare `/init` on a board) the start time is recorded as 0 and liveness
//! falls back to `kill(pid, 0)` alone.

use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, test_kill_process};

/// How far two readings of one process's start time may differ (qemu-user's emulated `/proc/self/stat` is seen
/// one tick off from outside).
const START_TIME_TOLERANCE_TICKS: u64 = 2;

/// A process's identity: pid and start time (0 when `/proc` is unavailable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessIdentity {
    /// The process id (thread-group id).
    pub pid: u32,
    /// Start time in clock ticks since boot, from `/proc/<pid>/stat`; 0 when unknown.
    pub start_time: u64,
}

impl ProcessIdentity {
    /// The calling process.
    pub fn current() -> Self {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        Self {
            pid,
            start_time: start_time_of(pid).unwrap_or(0),
        }
    }

    /// Whether this identity still names a running process.
    ///
    /// `false` when no process has the pid (`ESRCH`), or when a process has it but started at another time (the
    /// pid was reused). A process of another user counts as alive (`EPERM` from `kill(pid, 0)`). A pid of 0 or one
    /// that does not fit a `pid_t` is never alive. Zombies count as alive until reaped by their parent.
    pub fn is_alive(&self) -> bool {
        let Some(pid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else {
            return false;
        };
        match test_kill_process(pid) {
            Ok(()) | Err(rustix::io::Errno::PERM) => {}
            Err(_) => return false,
        }
        match (self.start_time, start_time_of(self.pid)) {
            (0, _) | (_, None) => true,
            // qemu-user emulates /proc/self/stat and can be a tick off from what other processes read; a reused
            // pid starting within the same few ticks as its predecessor would have to wrap the pid space first.
            (recorded, Some(now)) => recorded.abs_diff(now) <= START_TIME_TOLERANCE_TICKS,
        }
    }
}

/// Forks the calling process without libc (`clone(SIGCHLD)`): returns `None` in the child and the child's pid in
/// the parent. Meant for libc-free programs (for example a static `/init` starting sensor processes); programs
/// linked with a C library should call its `fork`, which also runs its at-fork handlers.
///
/// # Safety
/// The child starts with one thread. In a multithreaded process, it must not use locks or state that other
/// threads held at the time of the fork.
///
/// # Errors
/// `EAGAIN` (process limit), `ENOMEM`.
pub unsafe fn fork() -> rustix::io::Result<Option<Pid>> {
    // SAFETY: forwarded to the caller.
    let pid = unsafe { crate::sys::fork() }?;
    Ok(i32::try_from(pid).ok().and_then(Pid::from_raw))
}

/// Reads field 22 (`starttime`) of `/proc/<pid>/stat`.
fn start_time_of(pid: u32) -> Option<u64> {
    let mut path = heapless::String::<32>::new();
    core::fmt::write(&mut path, format_args!("/proc/{pid}/stat\0")).ok()?;
    let path = core::ffi::CStr::from_bytes_with_nul(path.as_bytes()).ok()?;
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
    parse_start_time(&buf[..len])
}

/// Field 22 of a `stat` line; the command name (field 2) may contain spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = core::str::from_utf8(&stat[close + 1..]).ok()?;
    // After ")" come field 3 (state) onwards; starttime is field 22, the 20th of these.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_time_with_awkward_command_names() {
        let line = b"42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10\n";
        assert_eq!(parse_start_time(line), Some(987654));
        assert_eq!(parse_start_time(b"42 (x) S 1"), None);
        assert_eq!(parse_start_time(b"garbage"), None);
    }

    #[test]
    fn current_process_is_alive_and_a_reused_pid_is_not() {
        let me = ProcessIdentity::current();
        assert!(me.is_alive());
        assert_ne!(me.start_time, 0, "/proc is mounted on test hosts");
        let reused = ProcessIdentity {
            start_time: me.start_time + 1 + START_TIME_TOLERANCE_TICKS,
            ..me
        };
        assert!(!reused.is_alive());
        assert!(!ProcessIdentity { pid: 0, start_time: 0 }.is_alive());
        assert!(
            !ProcessIdentity {
                pid: u32::MAX,
                start_time: 0
            }
            .is_alive()
        );
    }

    #[test]
    fn fork_returns_the_child_pid_and_runs_the_child() {
        // SAFETY: the child only exits.
        match unsafe { fork() }.unwrap() {
            None => crate::sys::exit_group(7),
            Some(child) => {
                let (pid, status) = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty())
                    .unwrap()
                    .unwrap();
                assert_eq!(pid, child);
                assert_eq!(status.exit_status(), Some(7));
            }
        }
    }
}
