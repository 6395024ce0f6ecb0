//! Helpers shared by the `shm_*` integration tests: unique keys, leak-proof cleanup guards, forked children that
//! report results through a pipe, address-space reservations, and qemu-user detection.
//!
//! Everything here uses libc directly (never the library under test), so a bug in shmfusion cannot hide a leak.
#![allow(dead_code)]

use std::ffi::CStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The unprivileged user and group the multi-process tests drop to.
pub const NOBODY: u32 = 65534;

/// Marks a result slot the child never filled (it died, or returned early).
pub const NOT_RUN: i64 = i64::MIN;

/// Serialises the tests of one binary.
///
/// Every test takes it: a forked child inherits (and, on exit, detaches) every attachment of the process, which
/// changes `shm_nattch`, `shm_lpid` and the times of segments other tests are checking; and fixed-address attaches
/// need the address space to stay as the test left it.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A key no segment uses right now, unique to this process and call: `tag` in the top byte, a hash of the pid and
/// a counter below. Keys already in use (by anyone) are skipped.
pub fn unique_key(tag: u8) -> i32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let pid = u64::from(std::process::id());
    loop {
        let n = u64::from(COUNTER.fetch_add(1, Ordering::Relaxed));
        let h = ((pid << 20) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let key = ((u32::from(tag) << 24) | ((h >> 40) as u32 & 0x00ff_ffff)) as i32;
        if key == 0 {
            continue;
        }
        // SAFETY: shmget takes no pointers; size 0 and no flags only looks the key up.
        if unsafe { libc::shmget(key, 0, 0) } < 0 && errno() == libc::ENOENT {
            return key;
        }
    }
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Removes the segment with this id when dropped (`IPC_RMID` through libc; errors ignored).
#[must_use]
#[derive(Debug)]
pub struct RmId(pub i32);

impl Drop for RmId {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// Removes whatever segment has this key when dropped, whoever created it (for segments made by children).
#[must_use]
#[derive(Debug)]
pub struct RmKey(pub i32);

impl Drop for RmKey {
    fn drop(&mut self) {
        // A removed segment's key reads as IPC_PRIVATE, so this ends; the bound only guards against a racing creator.
        for _ in 0..8 {
            // SAFETY: shmget takes no pointers; IPC_RMID takes no buffer.
            let id = unsafe { libc::shmget(self.0, 0, 0) };
            if id < 0 {
                break;
            }
            unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
}

/// Whether the tests run as root (the multi-process permission tests need to `setuid`).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// The current wall-clock time in whole seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Reads a decimal number from a file such as `/proc/sys/kernel/shmmax`.
pub fn read_number(path: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("parsing {path} ({text:?}): {e}"))
}

/// The machine name `uname(2)` reports (the emulated CPU under qemu-user).
pub fn machine() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::uname(&mut u) }, 0);
    // SAFETY: uname NUL-terminates the field.
    unsafe { CStr::from_ptr(u.machine.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Whether this binary runs under qemu-user.
///
/// qemu fakes `/proc/self/exe` (and `/proc/<pid>/exe`) to name the guest binary, but not the per-thread link
/// `/proc/<pid>/task/<tid>/exe`, which therefore names the emulator. This depends on nothing the tests check.
/// `SHMFUSION_UNDER_QEMU=1` or `=0` overrides the detection.
pub fn under_qemu() -> bool {
    static UNDER_QEMU: OnceLock<bool> = OnceLock::new();
    *UNDER_QEMU.get_or_init(|| {
        if let Ok(v) = std::env::var("SHMFUSION_UNDER_QEMU") {
            return v == "1";
        }
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let link = format!("/proc/{}/task/{tid}/exe", std::process::id());
        std::fs::read_link(&link)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().contains("qemu")))
            .unwrap_or(false)
    })
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `_exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// A forked child. Dropping it unwaited kills (`SIGKILL`) and reaps it, so no child outlives its test.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

impl Child {
    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for the child to end.
    pub fn wait(mut self) -> Exit {
        self.reaped = true;
        reap(self.pid)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: `pid` is our unreaped child, so it cannot have been recycled.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            reap(self.pid);
        }
    }
}

fn reap(pid: libc::pid_t) -> Exit {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int for waitpid to write.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        assert!(r < 0 && errno() == libc::EINTR, "waitpid({pid}): errno {}", errno());
    }
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Forks; the child runs `f` and `_exit`s with its result (120 if it panicked), never returning into the test
/// harness. `f` must not allocate: the test process has other threads, one of which may have held the allocator's
/// lock at the fork.
pub fn fork(f: impl FnOnce() -> i32) -> Child {
    // SAFETY: the child only runs `f` (async-signal-safe by contract) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: errno {}", errno());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(120);
        // SAFETY: ends the child without running the parent's destructors or harness.
        unsafe { libc::_exit(code) };
    }
    Child { pid, reaped: false }
}

/// Runs `f` in a forked child that fills `N` result slots (initially [`NOT_RUN`]) and returns its exit code; the
/// parent gets the exit status and the slots. See [`fork`] for what `f` may do.
pub fn run_child<const N: usize>(f: impl FnOnce(&mut [i64; N]) -> i32) -> (Exit, [i64; N]) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [rfd, wfd] = fds;
    let child = fork(|| {
        // SAFETY: plain descriptor operations on our own pipe.
        unsafe { libc::close(rfd) };
        let mut out = [NOT_RUN; N];
        let code = f(&mut out);
        write_all(wfd, as_bytes(&out));
        code
    });
    // SAFETY: as above.
    unsafe { libc::close(wfd) };
    let mut out = [NOT_RUN; N];
    // SAFETY: i64 has no invalid bit patterns, so the slots may be filled byte-wise.
    let buf = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), N * 8) };
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into the unfilled tail of `buf`.
        let n = unsafe { libc::read(rfd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n > 0 {
            got += n as usize;
        } else if n == 0 || errno() != libc::EINTR {
            break;
        }
    }
    // SAFETY: as above.
    unsafe { libc::close(rfd) };
    if got != buf.len() {
        out = [NOT_RUN; N];
    }
    (child.wait(), out)
}

fn as_bytes<const N: usize>(v: &[i64; N]) -> &[u8] {
    // SAFETY: any initialised memory may be viewed as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), N * 8) }
}

/// Writes all of `data` to `fd` (no allocation: usable in a forked child).
pub fn write_all(fd: i32, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        // SAFETY: `data` is valid for reads of its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n > 0 {
            data = &data[n as usize..];
        } else if n == 0 || errno() != libc::EINTR {
            return false;
        }
    }
    true
}

/// Writes `value` in decimal to a file such as `/proc/sys/kernel/shmmni` (no allocation: for forked children).
pub fn write_number(path: &CStr, value: u64) -> bool {
    let mut buf = [0u8; 24];
    let mut i = buf.len() - 1;
    buf[i] = b'\n';
    let mut v = value;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY) };
    if fd < 0 {
        return false;
    }
    let ok = write_all(fd, &buf[i..]);
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    ok
}

/// Drops to `uid`/`gid` with no supplementary groups (and so no capabilities). For forked children only.
pub fn drop_privileges(uid: u32, gid: u32) -> bool {
    // SAFETY: plain credential syscalls; the child is single-threaded.
    unsafe { libc::setgroups(0, std::ptr::null()) == 0 && libc::setgid(gid) == 0 && libc::setuid(uid) == 0 }
}

/// The type of `setrlimit`'s resource argument (and of the `RLIMIT_*` constants) in this libc.
#[cfg(target_env = "musl")]
pub type Resource = libc::c_int;
/// The type of `setrlimit`'s resource argument (and of the `RLIMIT_*` constants) in this libc.
#[cfg(not(target_env = "musl"))]
pub type Resource = libc::__rlimit_resource_t;

/// Sets a resource limit (soft and hard) to `value`. For forked children.
pub fn set_rlimit(resource: Resource, value: u64) -> bool {
    let lim = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: `lim` is a valid rlimit.
    unsafe { libc::setrlimit(resource, &lim) == 0 }
}

/// An `mmap`ed `PROT_NONE` range, unmapped on drop: room for fixed-address attaches.
#[derive(Debug)]
pub struct Reservation {
    raw: *mut u8,
    raw_len: usize,
    /// The start, aligned as asked.
    pub base: *mut u8,
}

impl Reservation {
    /// Reserves at least `len` bytes starting at a multiple of `align` (a power of two, at least a page).
    pub fn new(len: usize, align: usize) -> Self {
        Self::new_at(std::ptr::null_mut(), len, align)
    }

    /// As [`Reservation::new`], with an address hint for the kernel.
    pub fn new_at(hint: *mut u8, len: usize, align: usize) -> Self {
        let raw_len = len + align;
        // SAFETY: a fresh anonymous PROT_NONE mapping (a hint is not MAP_FIXED, so nothing is replaced).
        let raw = unsafe {
            libc::mmap(
                hint.cast(),
                raw_len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(raw, libc::MAP_FAILED, "mmap: errno {}", errno());
        let raw = raw.cast::<u8>();
        let base = ((raw as usize + align - 1) & !(align - 1)) as *mut u8;
        Self { raw, raw_len, base }
    }

    /// The address `offset` bytes past the aligned start.
    pub fn at(&self, offset: usize) -> *mut u8 {
        self.base.wrapping_add(offset)
    }

    /// Unmaps `len` bytes at `offset`, leaving a hole that a fixed attach without `SHM_REMAP` may use.
    pub fn punch(&self, offset: usize, len: usize) {
        // SAFETY: the range lies inside our own reservation, which nothing uses.
        assert_eq!(unsafe { libc::munmap(self.at(offset).cast(), len) }, 0);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: our own range; shm attaches placed inside it were detached before (or are unmapped with it).
        unsafe { libc::munmap(self.raw.cast(), self.raw_len) };
    }
}

/// The ids of every segment in this IPC namespace, from `/proc/sysvipc/shm` (for leak checks).
pub fn system_segment_ids() -> Vec<i32> {
    let text = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// xorshift64*: a seeded generator for the hostile-peer tests (no allocation, fine in a forked child).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (not quite uniform: fine for fuzzing).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True once in `one_in` draws on average.
    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}
