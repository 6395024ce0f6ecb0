//! Process helpers: a libc-free `fork`.
//!
//! Whether a process is alive is not decided here from pids: see [`liveness`](crate::liveness), which works across
//! PID namespaces and counts zombies as dead.

use rustix::process::Pid;

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

#[cfg(test)]
mod tests {
    use super::*;

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
