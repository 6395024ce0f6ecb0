//! Process plumbing for the benchmark: shared anonymous memory, fork with CPU pinning, bounded waits, CPU time.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A `MAP_SHARED | MAP_ANONYMOUS` mapping: inherited by forked children, so both sides of a case see it.
pub struct SharedMem {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedMem {
    /// `len` zeroed bytes (rounded up to whole pages by the kernel).
    pub fn new(len: usize) -> io::Result<Self> {
        // SAFETY: a new anonymous mapping at a kernel-chosen address; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len.max(1),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            ptr: NonNull::new(p.cast()).expect("mmap returned null"),
            len: len.max(1),
        })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The `i`-th 64-bit word (the mapping is page-aligned, so every word is aligned).
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!((i + 1) * 8 <= self.len);
        // SAFETY: in bounds and aligned (checked above, page-aligned base); the mapping lives as long as `self`
        // and is only ever accessed through atomics (or, for the raw ring, synchronised by them).
        unsafe { &*self.ptr.as_ptr().add(i * 8).cast::<AtomicU64>() }
    }

    /// The 32-bit word at byte `offset` (for futexes, which are 32-bit).
    pub fn word32(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len);
        // SAFETY: in bounds and aligned (checked above); only accessed through atomics and futex calls.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicU32>() }
    }
}

impl Drop for SharedMem {
    fn drop(&mut self) {
        // SAFETY: our own mapping; nothing borrows it past `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory accessed through atomics.
unsafe impl Send for SharedMem {}
// SAFETY: as above.
unsafe impl Sync for SharedMem {}

/// The two CPUs the sides of each case run on: the first two this process may use.
pub fn cpu_pair() -> (usize, usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, filled in by the kernel.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size given.
    let ok = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } == 0;
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE.
        .filter(|&i| ok && unsafe { libc::CPU_ISSET(i, &set) })
        .collect();
    match cpus.as_slice() {
        [a, b, ..] => (*a, *b),
        [a] => (*a, *a),
        [] => (0, 0),
    }
}

/// Pins the calling thread to one CPU.
pub fn pin(cpu: usize) {
    // SAFETY: as in `cpu_pair`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is a CPU number below CPU_SETSIZE, `set` a valid set.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: as above; pid 0 is the calling thread.
    let _ = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
}

/// Forks a child pinned to `cpu` that runs `f` and exits (0 on success, 1 on an error or panic, with the message
/// on stderr). The parent must be single-threaded (it is: the benchmark's orchestrator starts no threads).
pub fn fork_pinned(cpu: usize, f: impl FnOnce() -> Result<(), String>) -> io::Result<libc::pid_t> {
    // SAFETY: fork in a single-threaded process; the child only runs `f` and then `_exit`s.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            pin(cpu);
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    eprintln!("bench child: {e}");
                    1
                }
                Err(_) => 1,
            };
            // SAFETY: ends the child without running the parent's exit handlers or destructors (which would,
            // for instance, remove the parent's shared objects).
            unsafe { libc::_exit(code) }
        }
        pid => Ok(pid),
    }
}

/// Waits for all `pids` (our own children); kills the remaining ones with SIGKILL after `limit`, or as soon as one
/// of them fails. Sleeps in `poll` on pidfds meanwhile, so that the orchestrator takes no CPU from the two sides.
pub fn wait_all(pids: &[libc::pid_t], limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut left: Vec<(libc::pid_t, libc::c_int)> = pids
        .iter()
        // SAFETY: pidfd_open on our own child; -1 (old kernel) falls back to a timed poll below.
        .map(|&pid| {
            (pid, unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }
                as libc::c_int)
        })
        .collect();
    let mut failed = Vec::new();
    loop {
        left.retain(|&(pid, fd)| {
            let mut status = 0;
            // SAFETY: `pid` is a child of ours; `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == 0 {
                return true;
            }
            if r == pid && !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                failed.push(format!("child {pid} ended with status {status:#x}"));
            }
            if fd >= 0 {
                // SAFETY: our own pidfd, closed once.
                unsafe { libc::close(fd) };
            }
            false
        });
        if left.is_empty() {
            break;
        }
        // A side that failed leaves the other waiting for a message that never comes: stop it too.
        let over = start.elapsed() > limit;
        if over || !failed.is_empty() {
            for &(pid, fd) in &left {
                // SAFETY: signals, reaps and closes only our own child and pidfd.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                    if fd >= 0 {
                        libc::close(fd);
                    }
                }
            }
            if over {
                return Err(format!(
                    "timed out after {limit:?}; killed {:?}",
                    left.iter().map(|l| l.0).collect::<Vec<_>>()
                ));
            }
            break;
        }
        let mut fds: Vec<libc::pollfd> = left
            .iter()
            .filter(|l| l.1 >= 0)
            .map(|l| libc::pollfd {
                fd: l.1,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let wait_ms = if fds.len() == left.len() { 1000 } else { 10 };
        // SAFETY: `fds` is a valid array of pollfd of the length given.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for all processes, so one side can stamp and the other subtract.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Spins until `word` holds at least `n` (a start barrier between the two sides of a case).
pub fn barrier(word: &AtomicU64, n: u64) {
    word.fetch_add(1, Ordering::AcqRel);
    while word.load(Ordering::Acquire) < n {
        std::hint::spin_loop();
    }
}

/// `FUTEX_WAIT` (shared, not private: the word is shared between processes) while `word == expected`.
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a valid, aligned 32-bit word for the duration of the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// `FUTEX_WAKE` of one waiter on `word`.
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
}

/// Peak resident set size (`VmHWM`, KiB) of `cmd` while it runs, polled from /proc every millisecond, and its
/// exit status. (`wait4`'s `ru_maxrss` would not do: it keeps the high-water mark of the memory the child had
/// before `exec`, the spawning process's.)
pub fn run_for_rss(cmd: &mut std::process::Command) -> io::Result<(i32, u64)> {
    let mut child = cmd.spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut hwm = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            let kib = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            hwm = hwm.max(kib.unwrap_or(0));
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status.code().unwrap_or(-1), hwm));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
