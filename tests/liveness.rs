//! Liveness across PID namespaces, with real namespaces: processes that share the IPC namespace (and so the
//! segments) but not the PID namespace, as containers started with `--ipc=host` do.
//!
//! Each test forks a "middle" process that calls `unshare(CLONE_NEWPID)` and forks the "inner" process, pid 1 of
//! a new PID namespace; the test process itself is the "outer" one. They need root and a kernel that implements
//! PID namespaces; elsewhere (not root, or a kernel or emulator that refuses `unshare`) each test prints why it
//! is skipped and passes without checking anything.

use core::sync::atomic::{AtomicU32, Ordering};
use shmfusion::buffer::{Error, Latest};
use shmfusion::liveness::{ClaimError, Liveness, Role};
use shmfusion::object::{HeaderError, ObjectError, ObjectOptions, sysv};
use shmfusion::shm::{self, GetFlags, Key};
use std::sync::{Mutex, MutexGuard};

/// Forks are serialised: a child forked by one test would inherit another test's attachments.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A page shared with every forked process, for flags.
struct Flags(*mut AtomicU32);
// SAFETY: the page is only accessed through atomics.
unsafe impl Sync for Flags {}

impl Flags {
    fn new() -> Self {
        // SAFETY: a fresh anonymous shared mapping; zero-filled atomics.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        Flags(p.cast())
    }
    fn get(&self, i: usize) -> &AtomicU32 {
        // SAFETY: in bounds of the page; valid for the mapping's life.
        unsafe { &*self.0.add(i) }
    }
    fn wait_for(&self, i: usize, value: u32) {
        let start = std::time::Instant::now();
        while self.get(i).load(Ordering::Acquire) != value {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "flag {i} never became {value}"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

impl Drop for Flags {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.0.cast(), 4096) };
    }
}

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<&'static str> {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root for unshare(CLONE_NEWPID)");
    }
    // Probe: a child that unshares and forks pid 1 of a new namespace.
    let status = fork_wait(|| {
        // SAFETY: plain syscalls in a forked child.
        if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
            return 1;
        }
        match unsafe { libc::fork() } {
            0 => unsafe { libc::_exit(if libc::getpid() == 1 { 0 } else { 2 }) },
            -1 => 3,
            pid => wait(pid),
        }
    });
    (status != 0).then_some("this kernel or emulator does not give a child its own PID namespace")
}

macro_rules! require_namespaces {
    () => {
        let _serial = serial();
        if let Some(why) = skip_reason() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: `pid` is our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

fn fork(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `child` (syscalls, no allocation or locks) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = child();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    pid
}

fn fork_wait(child: impl FnOnce() -> i32) -> i32 {
    wait(fork(child))
}

/// Forks the middle process, which runs `inner` as pid 1 of a new PID namespace. With `reap`, the middle waits
/// for the inner process and exits with its status; without, it leaves it a zombie until `flags[9]` is 1.
/// Returns the middle's pid.
fn in_new_pid_namespace(flags: &Flags, reap: bool, inner: impl FnOnce() -> i32) -> i32 {
    fork(|| {
        // SAFETY: plain syscalls in a forked child.
        if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
            return 100;
        }
        let pid = fork(|| {
            // SAFETY: as above.
            if unsafe { libc::getpid() } != 1 {
                return 101;
            }
            inner()
        });
        if reap {
            wait(pid)
        } else {
            flags.wait_for(9, 1);
            wait(pid)
        }
    })
}

fn slot() -> sysv::SysvShared<Latest<u64>> {
    sysv::create::<Latest<u64>>(Key::PRIVATE, &ObjectOptions::new()).unwrap()
}

#[test]
fn a_process_in_a_child_pid_namespace_cannot_take_a_live_outer_writer() {
    require_namespaces!();
    let object = slot();
    let mut writer = object.get().writer().unwrap();
    writer.write(&1);
    let flags = Flags::new();
    let status = wait(in_new_pid_namespace(&flags, true, || match object.get().writer() {
        Err(Error::RoleTaken { holder }) if holder.liveness == Liveness::Alive && holder.pid.is_none() => 0,
        Err(Error::RoleTaken { .. }) => 2,
        Ok(_) => 1,
        Err(_) => 3,
    }));
    assert_eq!(
        status, 0,
        "the inner process took the role from a live outer writer (1) or misreported it"
    );
    writer.write(&2);
    assert_eq!(object.get().read(), Ok((2, 2)));
}

#[test]
fn an_outer_process_cannot_take_a_live_inner_writer_and_recovers_it_after_its_death() {
    require_namespaces!();
    let object = slot();
    let flags = Flags::new();
    let middle = in_new_pid_namespace(&flags, true, || {
        let Ok(mut writer) = object.get().writer() else {
            return 1;
        };
        writer.write(&7);
        flags.get(0).store(1, Ordering::Release);
        flags.wait_for(1, 1);
        // Dies holding the role (no release).
        core::mem::forget(writer);
        0
    });
    flags.wait_for(0, 1);
    match object.get().writer() {
        Err(Error::RoleTaken { holder }) => {
            assert_eq!(holder.liveness, Liveness::Alive);
            assert_eq!(holder.own_pid, 1, "recorded its pid in its own namespace");
            assert_eq!(holder.pid, None, "a pid of another PID namespace is not given as ours");
            assert_ne!(holder.since_unix_ns, 0);
        }
        other => panic!("took a live inner writer's role: {:?}", other.err()),
    }
    flags.get(1).store(1, Ordering::Release);
    assert_eq!(wait(middle), 0);
    // Dead now: its role is recovered at once, not held by "pid 1" forever.
    let mut writer = object
        .get()
        .writer()
        .expect("the dead inner writer's role is recovered");
    assert_eq!(writer.write(&8), 2);
}

#[test]
fn an_inner_process_recovers_the_role_of_a_dead_outer_writer() {
    require_namespaces!();
    let object = slot();
    let died = fork_wait(|| {
        let Ok(writer) = object.get().writer() else { return 1 };
        core::mem::forget(writer);
        0
    });
    assert_eq!(died, 0);
    let flags = Flags::new();
    let status = wait(in_new_pid_namespace(&flags, true, || match object.get().writer() {
        Ok(_) => 0,
        Err(_) => 1,
    }));
    assert_eq!(status, 0, "the inner process could not take over a dead outer writer");
}

#[test]
fn a_zombie_holder_counts_as_dead_in_the_same_and_in_another_namespace() {
    require_namespaces!();
    let object = slot();
    // Same namespace: a child claims and is killed; we do not reap it yet, so it is a zombie.
    let pid = fork(|| {
        let Ok(writer) = object.get().writer() else { return 1 };
        core::mem::forget(writer);
        // SAFETY: raising a signal on ourselves.
        unsafe { libc::raise(libc::SIGKILL) };
        2
    });
    // Wait until it is a zombie without reaping it.
    // SAFETY: `pid` is our child; WNOWAIT leaves it unreaped.
    let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
    assert_eq!(
        unsafe { libc::waitid(libc::P_PID, pid as u32, &mut info, libc::WEXITED | libc::WNOWAIT) },
        0
    );
    // SAFETY: `kill(pid, 0)` on our unreaped child still succeeds: it exists as a zombie.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the child is a zombie");
    let taken = object.get().writer().map(drop);
    assert_eq!(wait(pid), 128 + libc::SIGKILL);
    assert_eq!(taken, Ok(()), "a zombie holder was counted alive");

    // Another namespace: the inner writer exits without releasing (pid 1 of a namespace ignores its own
    // SIGKILL) and is left a zombie by the middle process.
    let flags = Flags::new();
    let middle = in_new_pid_namespace(&flags, false, || {
        let Ok(writer) = object.get().writer() else { return 1 };
        core::mem::forget(writer);
        flags.get(0).store(1, Ordering::Release);
        0
    });
    flags.wait_for(0, 1);
    // The inner process dies right after the flag; its anchor goes before it is a zombie. Poll briefly (its
    // death is asynchronous to us), then check.
    let mut taken = object.get().writer().map(drop);
    for _ in 0..10_000 {
        if taken.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        taken = object.get().writer().map(drop);
    }
    flags.get(9).store(1, Ordering::Release);
    assert_eq!(wait(middle), 0);
    assert_eq!(taken, Ok(()), "a zombie inner holder was counted alive");
}

#[test]
fn a_half_built_segment_of_a_live_creator_in_another_namespace_is_not_removed() {
    require_namespaces!();
    // The outer process is a creator between `shmget` and its first store (attached nowhere, header zero),
    // as `sysv::create` is for a moment; an inner process racing to open or create the same key must not remove
    // the segment from under it (from the inner namespace, the creator's pid reads as 0).
    let key = Key::from_raw(0x3c00_0000 | (std::process::id() as i32 & 0xffff));
    let size = 2 * 4096 + sysv::SIZE_SIGNATURE;
    let id = shm::get(
        key,
        size,
        GetFlags::CREATE | GetFlags::EXCLUSIVE,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    let flags = Flags::new();
    let status = wait(in_new_pid_namespace(&flags, true, || {
        let options = ObjectOptions::new().ready_timeout_ns(20_000_000);
        match sysv::open_or_create::<Latest<u64>>(key, &options) {
            Err(ObjectError::Header(HeaderError::NotReady { .. })) => 0,
            Ok((_, true)) => 1,
            Ok((_, false)) => 2,
            Err(_) => 3,
        }
    }));
    let still_there = shm::get(key, 0, GetFlags::empty(), rustix::fs::Mode::empty());
    let _ = id.remove();
    assert_eq!(
        still_there,
        Ok(id),
        "the live creator's segment was removed (inner status {status})"
    );
    assert_eq!(status, 0, "the inner open_or_create did not report NotReady");
}

/// Makes a forked child another user (groups, gid and uid); false if the kernel refused.
fn become_user(uid: u32) -> bool {
    // SAFETY: plain syscalls in a forked child.
    unsafe { libc::setgroups(0, core::ptr::null()) == 0 && libc::setgid(uid) == 0 && libc::setuid(uid) == 0 }
}

/// A role held by a process of another user: an observer of a third uid may not inspect the holder's anchor
/// (`IPC_STAT` gives `EACCES`), which must count as alive (never taken over); once the holder has exited
/// without releasing, the same observer recovers the role.
#[test]
fn a_holder_of_another_uid_is_alive_to_an_observer_that_cannot_inspect_its_anchor() {
    let _serial = serial();
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run processes as other users");
        return;
    }
    let flags = Flags::new();
    // SAFETY: 8-aligned, inside the shared page, zero-filled (a free role), touched only through atomics.
    let role: &Role = unsafe { &*flags.0.cast::<u8>().add(1024).cast::<Role>() };
    let holder = fork(|| {
        if !become_user(65534) {
            return 10;
        }
        let Ok(guard) = role.claim() else { return 11 };
        flags.get(0).store(1, Ordering::Release);
        flags.wait_for(1, 1);
        // Dies holding the role: the observer must recover it from the anchor's disappearance alone.
        core::mem::forget(guard);
        0
    });
    flags.wait_for(0, 1);
    let observed = fork_wait(|| {
        if !become_user(65533) {
            return 20;
        }
        // The token's low 32 bits are the anchor's segment id (see the liveness module docs).
        let anchor = shm::ShmId::from_raw(role.record().token as u32 as i32);
        if anchor.stat().err() != Some(shmfusion::Errno::ACCESS) {
            return 21;
        }
        match role.claim() {
            Err(ClaimError::Taken(h)) if h.liveness == Liveness::Alive => 0,
            _ => 22,
        }
    });
    flags.get(1).store(1, Ordering::Release);
    assert_eq!(wait(holder), 0, "holder");
    assert_eq!(observed, 0, "observer while the holder lives");
    let recovered = fork_wait(|| {
        if !become_user(65533) {
            return 30;
        }
        match role.claim() {
            Ok(_) => 0,
            Err(_) => 31,
        }
    });
    assert_eq!(recovered, 0, "observer after the holder's exit");
}
