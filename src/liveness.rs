//! Liveness of role holders and object creators, across PID namespaces, without pids.
//!
//! Every role in shared memory (a ring's producer and consumer, a latest-value slot's or broadcast ring's
//! writer, an object's creator) is a [`Role`]: one 64-bit token word, claimed with a compare-and-swap, plus
//! diagnostic fields. This module is the only place that decides whether the holder of a token is alive.
//!
//! # The anchor: a kernel-tracked fact instead of a pid guess
//!
//! The first time a process claims a role (or creates an object), it creates its **anchor**: a tiny private
//! System V segment (`IPC_PRIVATE`, mode `0400`, one page at most), attaches it read-only, marks it
//! `MADV_DONTFORK` so that children do not inherit the mapping, and immediately marks it for removal
//! (`IPC_RMID`). From then on the kernel keeps the segment exactly as long as the process has it mapped, and
//! destroys it when the process's memory is torn down. The token written into a role names the anchor: its
//! segment id, its size (a 12-bit nonce: the size is `1 + nonce` bytes) and a tag of the holder's IPC namespace.
//!
//! To judge a holder, an observer looks the anchor up by id (`shmctl(IPC_STAT)`): a segment marked for
//! removal, with `IPC_PRIVATE` key, the token's size and a non-zero attach count means **alive**; no such
//! segment (`EINVAL`, `EIDRM`) or another segment under the id means **dead**. Why this is right:
//!
//! - **Across PID namespaces.** Segment ids live in the IPC namespace, which processes sharing a System V object
//!   necessarily share. No pid is ever interpreted: a holder in a child PID namespace (pid 1 there) and an
//!   observer on the host judge the same segment. (Pids and `/proc/<pid>/stat` start times mean another process,
//!   or nothing, in another PID namespace; `/proc` start times are also shifted by the reader's time namespace.)
//! - **Zombies are dead.** `do_exit` unmaps the process's memory (`exit_mm`) before the process becomes a
//!   zombie (`exit_notify`), so the anchor is destroyed before `kill(pid, 0)` would stop succeeding.
//! - **Stopped is alive.** A `SIGSTOP`ped, ptrace-stopped or frozen holder keeps its mapping: its role is never
//!   taken over. Heartbeats cannot tell these apart from death, which is why there are none.
//! - **Bounded recovery.** A dead holder's role is free for the taking as soon as the kernel has torn down its
//!   memory: recovery time is zero after death, with no timeout to tune. (A forked child does not keep its
//!   parent's anchor: `MADV_DONTFORK`. `exec` ends the process's roles, as its memory is replaced.)
//! - **Everywhere the crate runs.** It needs only the System V calls the crate issues itself: no libc, no
//!   `/proc`, no file system (a static `/init` has none of these), no robust-futex list (which glibc owns, and
//!   which qemu-user does not implement). Under qemu-user the segment is a real host segment tied to the
//!   emulator process, so the same facts hold; only `MADV_DONTFORK` is ignored there, so under emulation a
//!   forked child that outlives its parent keeps the parent's roles alive until it exits (never the reverse).
//!
//! An observer in another **IPC** namespace cannot look the anchor up (POSIX shared memory, memfds and files can
//! be shared across IPC namespaces). The token carries a 19-bit tag of the holder's IPC namespace (the identity
//! of `/proc/self/ns/ipc`; 0 where `/proc` is not mounted); an observer with another tag judges the holder
//! [`Liveness::Unknown`] and never takes the role over. Such a role is recovered when its holder releases it, or
//! by a process in the holder's IPC namespace.
//!
//! Cost: one segment and one page per process that holds a role or creates an object (counted against
//! `SHMMNI`, 4096 by default); no cost at all on any data path. Claims cost a few syscalls.
//!
//! # Diagnostics
//!
//! A claimant also records, for humans and tools, its pid in its own PID namespace, the identities of its PID
//! and IPC namespaces and the `CLOCK_REALTIME` time of the claim ([`Holder`]). These are never used to decide
//! liveness: a hostile peer can write them, so they are only as trustworthy as the peers.
//!
//! # Limits
//!
//! - A process killed between creating its anchor and marking it for removal (a window of two syscalls, once per
//!   process) leaves an unattached segment of at most one page behind.
//! - An anchor's id (an index plus the IPC namespace's creation sequence number) comes back only after that
//!   sequence wraps (65536 creations in the namespace, 128 with the `ipcmni_extend` boot option) with the same
//!   index free; such a segment then also has to match the anchor's size (a 4-bit nonce), key and removal mark
//!   to make a dead holder look alive. Never the reverse: a live anchor's id cannot be taken.
//! - `exec` replaces the process's memory, anchor included: its roles end there (observers see the holder dead;
//!   the new program claims with a new anchor). An anchor of another user cannot be inspected (`EACCES`): its
//!   existence alone counts as alive.
//! - A role held by a live process cannot be taken, whatever it does (a hostile holder can hold a role
//!   forever); [`Role::holder`] says who holds it and since when.

use core::sync::atomic::{AtomicUsize, Ordering};

// Loom's atomics under the crate's loom models, so that a role release orders the buffers' data for the model.
use crate::buffer::sync::{AtomicU32, AtomicU64};

use rustix::io::Errno;

use crate::shm::{AttachOptions, Key, Options, ShmId};

/// The token of a role whose last holder released it cleanly (the buffers report this as "closed").
const CLOSED: u64 = 1;
/// Set in every holder's token, so that no holder's token is 0 (free) or [`CLOSED`].
const HELD_BIT: u64 = 1 << 63;
const TAG_SHIFT: u32 = 44;
const TAG_MASK: u64 = (1 << 19) - 1;
const NONCE_SHIFT: u32 = 32;
const NONCE_MASK: u64 = 0xf;

/// What an observer can tell about a holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The holder's anchor exists: the process has not exited (it may be stopped).
    Alive,
    /// The holder's anchor is gone: the process has exited (a zombie counts as exited).
    Dead,
    /// The holder cannot be judged from here (another IPC namespace, or an unexpected error): treated as alive,
    /// so its role is never taken over.
    Unknown,
}

/// Who holds a role, as recorded by the holder (see the [module docs](self) for what is trusted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The holder's pid in the observer's PID namespace: `Some` only when the holder recorded the observer's
    /// PID namespace (a pid from another namespace would name an unrelated process here).
    pub pid: Option<u32>,
    /// The pid the holder has in its own PID namespace (0: not recorded yet).
    pub own_pid: u32,
    /// The identity of the holder's PID namespace (the device and inode of `/proc/self/ns/pid`, folded into
    /// 64 bits; 0 when unknown, for example without `/proc`).
    pub pid_namespace: u64,
    /// The identity of the holder's IPC namespace (as [`pid_namespace`](Self::pid_namespace), for
    /// `/proc/self/ns/ipc`).
    pub ipc_namespace: u64,
    /// When the role was claimed: `CLOCK_REALTIME` nanoseconds since the Unix epoch (0: not recorded yet).
    pub since_unix_ns: u64,
    /// Whether the holder is alive, as judged when this was read.
    pub liveness: Liveness,
}

/// Why a role could not be claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// A live (or unjudgeable) process holds it.
    Taken(Holder),
    /// The calling process could not create its anchor segment (`ENOSPC`: `SHMMNI` reached, `ENOMEM`,
    /// `ENOSYS`: no System V IPC in this kernel).
    Os(Errno),
}

/// A role in shared memory: free when all-zero. Embed it (like the buffers do) to give any shared object a
/// claimable role with cross-namespace liveness.
///
/// Layout (48 bytes, the same on every target): the token word, the token the diagnostic fields describe, the
/// holder's pid and a reserved word, its PID and IPC namespace identities, the claim time.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Role {
    token: AtomicU64,
    details_of: AtomicU64,
    pid: AtomicU32,
    reserved: AtomicU32,
    pid_ns: AtomicU64,
    ipc_ns: AtomicU64,
    since_ns: AtomicU64,
}

#[cfg(not(all(loom, test)))]
const _: () = assert!(core::mem::size_of::<Role>() == RoleRecord::SIZE);

// SAFETY: all-zero is a free role; only atomics, `repr(C)`, the same layout on every target (asserted above).
unsafe impl crate::object::SharedState for Role {
    const KIND: &'static str = "role";
    const CAPACITY: u64 = 0;
    const ELEMENT_SIZE: u64 = 0;
}

/// The calling process as a claimant: its anchor token and diagnostic identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Me {
    pub(crate) token: u64,
    pub(crate) pid: u32,
    pub(crate) pid_ns: u64,
    pub(crate) ipc_ns: u64,
}

#[cfg(test)]
impl Me {
    /// A made-up claimant for tests that judge with a model instead of the kernel.
    pub(crate) const fn fake(n: u32) -> Self {
        Self {
            token: HELD_BIT | n as u64,
            pid: n,
            pid_ns: 0,
            ipc_ns: 0,
        }
    }
}

/// A copy of a role's words as read out of shared memory, judged only when asked: what [`Role::record`] returns,
/// what object snapshots carry for the creator, and what tools that only keep a read-only byte view of a segment
/// build with [`RoleRecord::read_with`]. Every field is a claim of whoever wrote the role last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RoleRecord {
    /// The token word: 0 when the role was never held, 1 when its last holder released it cleanly, otherwise the
    /// holder's anchor (see the [module docs](self)).
    pub token: u64,
    /// The token the diagnostic fields below describe (they belong to another holder unless equal to `token`).
    pub details_of: u64,
    /// The holder's pid in its own PID namespace.
    pub pid: u32,
    /// The holder's PID namespace identity (see [`Holder::pid_namespace`]).
    pub pid_namespace: u64,
    /// The holder's IPC namespace identity.
    pub ipc_namespace: u64,
    /// The claim time, `CLOCK_REALTIME` nanoseconds.
    pub since_unix_ns: u64,
}

impl RoleRecord {
    /// The size of a [`Role`] in shared memory.
    pub const SIZE: usize = 48;

    /// Reads a role's words through `u64_at` and `u32_at`, which load the value at a byte offset from the role's
    /// start (for example byte by byte out of a read-only mapping): the token first, then, after an acquire fence,
    /// the diagnostic fields.
    pub fn read_with(u64_at: impl Fn(usize) -> u64, u32_at: impl Fn(usize) -> u32) -> Self {
        use core::mem::offset_of;
        let token = u64_at(offset_of!(Role, token));
        core::sync::atomic::fence(Ordering::Acquire);
        Self {
            token,
            details_of: u64_at(offset_of!(Role, details_of)),
            pid: u32_at(offset_of!(Role, pid)),
            pid_namespace: u64_at(offset_of!(Role, pid_ns)),
            ipc_namespace: u64_at(offset_of!(Role, ipc_ns)),
            since_unix_ns: u64_at(offset_of!(Role, since_ns)),
        }
    }

    /// Whether nobody holds the role (never held, or released).
    pub fn is_free(&self) -> bool {
        self.token == 0 || self.token == CLOSED
    }

    /// Whether the last holder released the role cleanly.
    pub fn is_closed(&self) -> bool {
        self.token == CLOSED
    }

    /// The holder's liveness, judged now by this process (`None` when free).
    pub fn liveness(&self) -> Option<Liveness> {
        (!self.is_free()).then(|| judge(self.token))
    }

    /// The holder, judged now by this process (`None` when free).
    pub fn holder(&self) -> Option<Holder> {
        self.holder_judged(judge)
    }

    pub(crate) fn holder_judged(&self, judge: Judge) -> Option<Holder> {
        (!self.is_free()).then(|| self.describe(judge(self.token)))
    }

    fn describe(&self, liveness: Liveness) -> Holder {
        // The details are written after the token; until then (or while a later claim is writing them) they
        // belong to another holder.
        if self.details_of != self.token {
            return Holder {
                pid: None,
                own_pid: 0,
                pid_namespace: 0,
                ipc_namespace: 0,
                since_unix_ns: 0,
                liveness,
            };
        }
        let here = namespace_id(c"/proc/self/ns/pid");
        Holder {
            pid: (self.pid_namespace == here && self.pid != 0).then_some(self.pid),
            own_pid: self.pid,
            pid_namespace: self.pid_namespace,
            ipc_namespace: self.ipc_namespace,
            since_unix_ns: self.since_unix_ns,
            liveness,
        }
    }
}

/// How a claimant judges tokens (the real [`judge`], or a model in tests).
pub(crate) type Judge = fn(u64) -> Liveness;

impl Role {
    /// A free role (for process-local use; shared memory starts zero-filled).
    #[cfg(not(all(loom, test)))]
    pub const fn new() -> Self {
        Self {
            token: AtomicU64::new(0),
            details_of: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            reserved: AtomicU32::new(0),
            pid_ns: AtomicU64::new(0),
            ipc_ns: AtomicU64::new(0),
            since_ns: AtomicU64::new(0),
        }
    }

    /// A free role (loom models).
    #[cfg(all(loom, test))]
    pub fn new() -> Self {
        Self {
            token: AtomicU64::new(0),
            details_of: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            reserved: AtomicU32::new(0),
            pid_ns: AtomicU64::new(0),
            ipc_ns: AtomicU64::new(0),
            since_ns: AtomicU64::new(0),
        }
    }

    /// Claims the role for the calling process; a dead holder's role is taken over.
    ///
    /// # Errors
    /// [`ClaimError::Taken`] if a live process holds it (including the calling process itself, through another
    /// handle), or if its holder cannot be judged from here; [`ClaimError::Os`] if the process has no anchor.
    pub fn claim(&self) -> Result<RoleGuard<'_>, ClaimError> {
        let me = current().map_err(ClaimError::Os)?;
        self.claim_as(&me, judge)
    }

    /// The current holder, judged now; `None` if the role is free.
    pub fn holder(&self) -> Option<Holder> {
        self.holder_judged(judge)
    }

    /// Whether the role is free because its last holder released it cleanly (rather than never held, or taken
    /// over from a dead holder).
    pub fn is_closed(&self) -> bool {
        self.token.load(Ordering::Acquire) == CLOSED
    }

    /// The liveness of the current holder (`None` when free).
    pub(crate) fn holder_liveness(&self, judge: Judge) -> Option<Liveness> {
        match self.token.load(Ordering::Acquire) {
            0 | CLOSED => None,
            token => Some(judge(token)),
        }
    }

    pub(crate) fn holder_judged(&self, judge: Judge) -> Option<Holder> {
        self.record().holder_judged(judge)
    }

    /// A copy of the role's words, with loads that are sound on a read-only mapping too (relaxed, no wider than
    /// a register; see [`load_u64`](crate::object::load_u64)): the token first, then, after an acquire
    /// fence, the diagnostic fields.
    pub fn record(&self) -> RoleRecord {
        #[cfg(not(all(loom, test)))]
        let load = crate::object::load_u64;
        #[cfg(all(loom, test))]
        let load = |w: &AtomicU64| w.load(Ordering::Relaxed);
        let token = load(&self.token);
        crate::buffer::sync::fence(Ordering::Acquire);
        RoleRecord {
            token,
            details_of: load(&self.details_of),
            pid: self.pid.load(Ordering::Relaxed),
            pid_namespace: load(&self.pid_ns),
            ipc_namespace: load(&self.ipc_ns),
            since_unix_ns: load(&self.since_ns),
        }
    }

    /// The holder's record as of `token` (as just seen by a claim).
    fn describe(&self, token: u64, liveness: Liveness) -> Holder {
        RoleRecord { token, ..self.record() }.describe(liveness)
    }

    /// Claims the role for `me`, judging a current holder with `judge`.
    pub(crate) fn claim_as(&self, me: &Me, judge: Judge) -> Result<RoleGuard<'_>, ClaimError> {
        let mut current = self.token.load(Ordering::Acquire);
        // Each failed compare-and-swap means another claimant changed the token; a few rounds settle any honest
        // race, a hostile peer flipping the word gets `Taken`.
        for _ in 0..4 {
            if current != 0 && current != CLOSED {
                let liveness = if current == me.token {
                    Liveness::Alive
                } else {
                    judge(current)
                };
                if liveness != Liveness::Dead {
                    return Err(ClaimError::Taken(self.describe(current, liveness)));
                }
            }
            match self
                .token
                .compare_exchange(current, me.token, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.write_details(me);
                    return Ok(RoleGuard {
                        role: self,
                        token: me.token,
                        released: false,
                    });
                }
                Err(now) => current = now,
            }
        }
        Err(ClaimError::Taken(self.describe(current, judge(current))))
    }

    /// Records `me` as the holder without a claim: for a creator stamping the zero-filled header of an object
    /// nobody else can see yet.
    pub(crate) fn stamp(&self, me: &Me) {
        self.token.store(me.token, Ordering::Release);
        self.write_details(me);
    }

    fn write_details(&self, me: &Me) {
        self.pid.store(me.pid, Ordering::Relaxed);
        self.pid_ns.store(me.pid_ns, Ordering::Relaxed);
        self.ipc_ns.store(me.ipc_ns, Ordering::Relaxed);
        self.since_ns.store(realtime_ns(), Ordering::Relaxed);
        self.details_of.store(me.token, Ordering::Release);
    }
}

/// A held role. Dropping it (or [`release`](Self::release)) frees the role, marked closed, unless someone has
/// taken it over meanwhile.
#[derive(Debug)]
pub struct RoleGuard<'a> {
    role: &'a Role,
    token: u64,
    released: bool,
}

impl RoleGuard<'_> {
    /// Releases the role now (idempotent); returns whether it was still ours.
    pub fn release(&mut self) -> bool {
        if core::mem::replace(&mut self.released, true) {
            return false;
        }
        self.role
            .token
            .compare_exchange(self.token, CLOSED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Whether this guard's process still holds the role (a peer may have overwritten the token).
    pub fn is_held(&self) -> bool {
        !self.released && self.role.token.load(Ordering::Acquire) == self.token
    }
}

impl Drop for RoleGuard<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Judges the holder of `token` (see the [module docs](self)).
pub(crate) fn judge(token: u64) -> Liveness {
    if token & HELD_BIT == 0 {
        return Liveness::Dead;
    }
    if tag_of(namespace_id(c"/proc/self/ns/ipc")) != (token >> TAG_SHIFT) & TAG_MASK {
        return Liveness::Unknown;
    }
    let id = ShmId::from_raw((token as u32) as i32);
    match id.stat() {
        Ok(st) => {
            let anchor = st.marked_for_removal
                && st.key.is_private()
                && st.attach_count > 0
                && st.size as u64 == anchor_size((token >> NONCE_SHIFT) & NONCE_MASK);
            if anchor { Liveness::Alive } else { Liveness::Dead }
        }
        // It exists, but belongs to a user whose segments we may not inspect: only a live anchor can exist.
        Err(Errno::ACCESS) => Liveness::Alive,
        Err(Errno::INVAL | Errno::IDRM) => Liveness::Dead,
        Err(_) => Liveness::Unknown,
    }
}

/// Anchor sizes are `0xa5 + 256 * nonce` bytes (always within one page): the nonce makes a reused id unlikely
/// to match, the remainder lets [`reap`](crate::object::reap) recognise a leaked anchor.
fn anchor_size(nonce: u64) -> u64 {
    ANCHOR_SIZE_REMAINDER + 256 * nonce
}

const ANCHOR_SIZE_REMAINDER: u64 = 0xa5;

/// Whether a segment looks like a liveness anchor (see the [module docs](self)): private, mode `0400`, an anchor's
/// size. Every process that holds a role or created an object has one, marked for removal while it lives; tools
/// listing segments can tell them from users' segments with this.
pub fn is_anchor(st: &crate::shm::Stat) -> bool {
    st.key.is_private()
        && st.mode.bits() & 0o777 == 0o400
        && st.size as u64 % 256 == ANCHOR_SIZE_REMAINDER
        && (st.size as u64) < anchor_size(NONCE_MASK + 1)
}

/// Whether a segment is an anchor its creator never marked for removal (it was killed between `shmget` and
/// `IPC_RMID`, two syscalls once per process): private, mode `0400`, an anchor size, nobody attached (the
/// caller checks whose it is). Such a segment can only be removed by a sweep; [`reap`](crate::object::reap) does it. A live
/// process caught in that window has its `shmat` fail and creates another anchor.
pub(crate) fn is_leaked_anchor(st: &crate::shm::Stat) -> bool {
    is_anchor(st) && !st.marked_for_removal && st.attach_count == 0
}

fn tag_of(ns: u64) -> u64 {
    if ns == 0 {
        return 0;
    }
    let tag = crate::object::fnv1a(&ns.to_le_bytes()) & TAG_MASK;
    if tag == 0 { 1 } else { tag }
}

/// The identity of a namespace file (`st_dev` and `st_ino` folded into 64 bits); 0 when it cannot be read.
#[cfg(not(miri))]
fn namespace_id(path: &core::ffi::CStr) -> u64 {
    match rustix::fs::stat(path) {
        Ok(st) => {
            // The field types differ between targets.
            #[allow(clippy::unnecessary_cast)]
            let id = ((st.st_dev as u64) << 32) ^ (st.st_ino as u64);
            if id == 0 { 1 } else { id }
        }
        Err(_) => 0,
    }
}

/// Miri runs no syscalls: role claims in the buffers' Miri tests record "unknown".
#[cfg(miri)]
fn namespace_id(_: &core::ffi::CStr) -> u64 {
    0
}

#[cfg(miri)]
fn realtime_ns() -> u64 {
    1
}

#[cfg(not(miri))]
fn realtime_ns() -> u64 {
    crate::sys::realtime_ns()
}

/// The process's anchor, cached. `LOCK` holds the pid of the process whose thread is creating the anchor: a
/// forked child that finds its parent's pid there knows the lock holder is not one of its threads.
static LOCK: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static CACHED_PID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static CACHED_TOKEN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static CACHED_ADDR: AtomicUsize = AtomicUsize::new(0);
static CACHED_PID_NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static CACHED_IPC_NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The calling process as a claimant, creating its anchor on first use (and again in a forked child, which
/// has its own pid and, thanks to `MADV_DONTFORK`, no mapping of its parent's anchor).
pub(crate) fn current() -> Result<Me, Errno> {
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    loop {
        match LOCK.compare_exchange(0, pid, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => break,
            Err(owner) if owner != pid => {
                // Left by a thread of the process we were forked from.
                if LOCK
                    .compare_exchange(owner, pid, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    break;
                }
            }
            Err(_) => rustix::thread::sched_yield(),
        }
    }
    let result = cached_or_new(pid);
    LOCK.store(0, Ordering::Release);
    result
}

fn cached_or_new(pid: u32) -> Result<Me, Errno> {
    let token = CACHED_TOKEN.load(Ordering::Relaxed);
    if token != 0 && CACHED_PID.load(Ordering::Relaxed) == pid && still_mapped(CACHED_ADDR.load(Ordering::Relaxed)) {
        return Ok(Me {
            token,
            pid,
            pid_ns: CACHED_PID_NS.load(Ordering::Relaxed),
            ipc_ns: CACHED_IPC_NS.load(Ordering::Relaxed),
        });
    }
    let ipc_ns = namespace_id(c"/proc/self/ns/ipc");
    let pid_ns = namespace_id(c"/proc/self/ns/pid");
    let (token, addr) = create_anchor(pid, tag_of(ipc_ns))?;
    CACHED_TOKEN.store(token, Ordering::Relaxed);
    CACHED_PID.store(pid, Ordering::Relaxed);
    CACHED_ADDR.store(addr, Ordering::Relaxed);
    CACHED_PID_NS.store(pid_ns, Ordering::Relaxed);
    CACHED_IPC_NS.store(ipc_ns, Ordering::Relaxed);
    Ok(Me {
        token,
        pid,
        pid_ns,
        ipc_ns,
    })
}

/// Whether this process still maps the page at `addr` (`madvise` fails with `ENOMEM` on an unmapped range).
fn still_mapped(addr: usize) -> bool {
    // SAFETY: `MADV_NORMAL` changes nothing about a mapping; it only reports whether the range is mapped.
    addr != 0
        && unsafe { rustix::mm::madvise(addr as *mut _, crate::shm::page_size(), rustix::mm::Advice::Normal) }.is_ok()
}

/// Creates, attaches and marks for removal a new anchor; returns its token and address. The mapping is never
/// detached: it ends with the process.
fn create_anchor(pid: u32, tag: u64) -> Result<(u64, usize), Errno> {
    let nonce = (realtime_ns() ^ u64::from(pid).wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 7 & NONCE_MASK;
    let size = anchor_size(nonce) as usize;
    let mut tries = 0;
    let (segment, attachment) = loop {
        let segment = Options::new(size)
            .mode(rustix::fs::Mode::RUSR)
            .create_exclusive(Key::PRIVATE)?;
        let attached = segment.attach(AttachOptions::new().read_only());
        // Marked for removal right away: from now on the kernel destroys it when the last mapping goes.
        let removed = segment.remove();
        match (attached, removed) {
            (Ok(attachment), Ok(())) => break (segment, attachment),
            // A concurrent `reap` took the unattached segment for a leaked anchor: make another.
            (Err(Errno::INVAL | Errno::IDRM), _) if tries < 4 => tries += 1,
            (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
        }
    };
    let addr = attachment.as_ptr() as usize;
    // SAFETY: `addr` is the start of the anchor's mapping, at least one byte long (so one page); DONTFORK only
    // keeps it out of children.
    let _ = unsafe {
        rustix::mm::madvise(
            addr as *mut _,
            crate::shm::page_size(),
            rustix::mm::Advice::LinuxDontFork,
        )
    };
    core::mem::forget(attachment);
    let id = segment.id().as_raw() as u32;
    Ok((
        HELD_BIT | (tag << TAG_SHIFT) | (nonce << NONCE_SHIFT) | u64::from(id),
        addr,
    ))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const A: Me = Me {
        token: HELD_BIT | 100,
        pid: 100,
        pid_ns: 7,
        ipc_ns: 8,
    };
    const B: Me = Me {
        token: HELD_BIT | 200,
        pid: 200,
        pid_ns: 7,
        ipc_ns: 8,
    };
    fn alive(_: u64) -> Liveness {
        Liveness::Alive
    }
    fn a_dead(t: u64) -> Liveness {
        if t == A.token { Liveness::Dead } else { Liveness::Alive }
    }
    fn unknown(_: u64) -> Liveness {
        Liveness::Unknown
    }

    #[test]
    fn claim_release_close_and_takeover() {
        let role = Role::new();
        assert_eq!(role.holder_judged(alive), None);
        assert!(!role.is_closed());
        let mut g = role.claim_as(&A, alive).unwrap();
        let h = role.holder_judged(alive).unwrap();
        assert_eq!((h.own_pid, h.pid_namespace, h.liveness), (100, 7, Liveness::Alive));
        assert_ne!(h.since_unix_ns, 0);
        assert!(matches!(role.claim_as(&B, alive), Err(ClaimError::Taken(h)) if h.own_pid == 100));
        // The same process claiming again is refused even if its own anchor looks dead to the judge.
        assert!(matches!(role.claim_as(&A, a_dead), Err(ClaimError::Taken(_))));
        // Unjudgeable holders are never taken over.
        assert!(matches!(role.claim_as(&B, unknown), Err(ClaimError::Taken(h)) if h.liveness == Liveness::Unknown));
        // A is dead: B takes over; A's late release must not free (or close) B's role.
        let g2 = role.claim_as(&B, a_dead).unwrap();
        assert!(!g.release());
        assert!(!g.is_held() && g2.is_held());
        assert_eq!(role.holder_judged(alive).unwrap().own_pid, 200);
        drop(g2);
        assert!(role.is_closed());
        assert_eq!(role.holder_judged(alive), None);
        // A closed role is free.
        let _g3 = role.claim_as(&A, alive).unwrap();
        assert!(!role.is_closed());
    }

    #[test]
    fn details_of_another_token_are_not_reported() {
        let role = Role::new();
        role.stamp(&A);
        role.token.store(B.token, Ordering::Relaxed);
        let h = role.holder_judged(alive).unwrap();
        assert_eq!((h.own_pid, h.pid, h.since_unix_ns), (0, None, 0));
    }

    #[test]
    #[cfg_attr(miri, ignore = "needs System V IPC")]
    fn the_real_anchor_is_alive_and_judged_here() {
        let me = current().unwrap();
        assert_eq!(current().unwrap(), me, "cached");
        assert_eq!(judge(me.token), Liveness::Alive);
        let id = ShmId::from_raw((me.token as u32) as i32);
        let st = id.stat().unwrap();
        assert!(st.marked_for_removal && st.key.is_private());
        // Another size under the same id, or no segment, is not this anchor.
        assert_eq!(judge(me.token ^ (1 << NONCE_SHIFT)), Liveness::Dead);
        assert_eq!(
            judge(HELD_BIT | (me.token & (TAG_MASK << TAG_SHIFT)) | 0x7fff_fff0),
            Liveness::Dead
        );
        // Another IPC namespace's tag cannot be judged.
        assert_eq!(judge(me.token ^ (1 << TAG_SHIFT)), Liveness::Unknown);
        let role = Role::new();
        let _g = role.claim().unwrap();
        let h = role.holder().unwrap();
        assert_eq!(h.pid, Some(rustix::process::getpid().as_raw_nonzero().get() as u32));
        assert_eq!(h.liveness, Liveness::Alive);
        assert!(matches!(role.claim(), Err(ClaimError::Taken(_))));
    }
}
