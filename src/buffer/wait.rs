//! Blocking waits across processes: an event word for `futex(2)` plus a waiter count, spin-then-sleep.
//!
//! The protocol (no lost wake-ups, no syscall on the writer's path when nobody sleeps) is Dekker's:
//!
//! - the writer (the *notifier*) publishes (a release store of its position), then orders that store before a
//!   load of the waiter count (see below for how), and only if the count is non-zero bumps the event word and
//!   calls `FUTEX_WAKE`;
//! - a waiter loads the event word, registers in the waiter count, `fence(SeqCst)`, re-checks its condition, and
//!   only then calls `FUTEX_WAIT` with the event value it loaded.
//!
//! Either the notifier sees the waiter or the waiter sees the publication. If the notifier saw it, it bumps the
//! event word after the waiter loaded it, so the kernel's compare-and-sleep either refuses to sleep (`EAGAIN`) or
//! is woken. The futex is **not** private (`Flags::empty()`): the kernel keys it by the backing page, so a wake in
//! one process reaches a sleeper in another whatever the two mappings' addresses. `EINTR`, `EAGAIN`, timeouts and
//! spurious wake-ups all lead back to re-checking the condition.
//!
//! # Asymmetric fences: nothing on the publishing path
//!
//! The notifier's ordering is where the cost is: a `fence(SeqCst)` on every publication (`lock or` on x86_64,
//! `dmb ish` on aarch64), whether or not anybody ever sleeps. Waiters are rare and already on a slow path, so the
//! cost is moved to them (the asymmetric fence of Linux's `membarrier(2)`, as in liburcu and folly):
//!
//! - A notifier whose process registered with `membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)` (once per
//!   process, when its first handle is claimed) orders its store and its load with a compiler fence only.
//! - A waiter that finds the notifier's [protocol word](WaitCell) set (see below), after registering and its
//!   `fence(SeqCst)`, calls `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` before re-checking its condition. The
//!   kernel runs a full barrier on every CPU that runs a thread of a registered process and returns once all have
//!   (a thread not running has passed through the scheduler's barrier). So the notifier's instruction stream is
//!   cut at a point P by a full barrier that lies, in time, between the waiter's registration and its re-check:
//!   if P follows the notifier's store, the waiter's re-check sees the publication; if P precedes it, P also
//!   precedes the notifier's load (the compiler fence keeps the two in program order), which then sees the
//!   registration. Either way one of the two sees the other, as with two `SeqCst` fences.
//!
//! The notifier's choice is per cell, in its protocol word (the third word of the wait line, 0 in a zero-filled
//! segment), and it may change it at any time: it stores the word (1: its next publications skip the fence, 0:
//! they fence) with release, then `fence(SeqCst)`, then publishes that way. A waiter loads the word with acquire
//! after its own `fence(SeqCst)` and before its re-check; only if it reads 1 does it issue the membarrier. Reading
//! 0 is safe whichever store it came from:
//!
//! - if the notifier has since stored 1, the waiter read a store older than that 1, so its fence precedes the
//!   notifier's fence after the 1 in the `SeqCst` order, and every later load of the waiter count by the notifier
//!   (all its fence-less publications come after that fence) sees the registration;
//! - the notifier's publications before the 0 it read (fence-less ones included) happen before the waiter's
//!   re-check, through the release store and the acquire load; those after it fence, as the symmetric protocol.
//!
//! **When the notifier fences.** A registered notifier starts asymmetric. A publication that finds a waiter
//! registered switches its cell to symmetric (before waking it): the waiters that follow read 0 and skip the
//! global barrier, so a reader that sleeps on most samples (a sensor stream slower than its reader, a wake-up
//! per request) costs one fence per publication instead of one barrier (a syscall and IPIs) per sleep. After
//! [`QUIET_PUBLICATIONS`] publications in a row without a waiter, the notifier switches back and drops the fence
//! again. A stream that nobody sleeps on never leaves the asymmetric protocol. Each switch costs the notifier one
//! `fence(SeqCst)`.
//!
//! Fallbacks, each decided once per process:
//!
//! - `membarrier` missing (`ENOSYS` on old kernels or an emulator, `EINVAL`, `EPERM` from a seccomp filter): the
//!   notifier does not register, stores 0 and keeps the `fence(SeqCst)`: the symmetric protocol above.
//! - A waiter that cannot issue the global barrier (its own seccomp filter or kernel refuses it) although the
//!   notifier's word says 1 (a peer in another container, or a hostile word) cannot close the race with the
//!   futex; it sleeps in slices of at most [`SHORT_SLICE`] and re-checks, so a missed wake-up costs at most that.
//! - Peers of earlier wait protocols are kept out by the header's format version
//!   ([`FORMAT_VERSION`](crate::object::FORMAT_VERSION) 4): those of version 2 read no protocol word, and some of
//!   version 3 load it without acquire (before the switches above); opening across either change is a typed
//!   error, never a waiter that sleeps against a notifier that skips its fence.
//!
//! Whatever a peer writes into these words, every sleep is also bounded by the liveness poll below, so no waiter
//! sleeps forever because of a notifier that does not wake it.
//!
//! The cost of the global barrier falls on waiters only, just before they sleep (after spinning): the syscall and
//! an IPI to each CPU that is running a registered process at that moment (a few microseconds; an interruption of
//! that order for those CPUs' threads, which real-time deployments with isolated cores should know about). On
//! this project's 2-vCPU VM, where an IPI exits to the hypervisor, the benchmark's wake-up of a sleeping receiver
//! (a ping-pong with 200 µs gaps: the sender goes to sleep while the receiver is waking) took about 4 to 9 µs longer
//! with a barrier before every sleep than with the symmetric protocol: hence the fall-back to the fence while
//! waiters keep sleeping (above), which leaves one barrier per episode of sleeping, not one per sleep. A first
//! sleep without the barrier, bounded by a short timeout, would avoid the IPIs too but can lose a wake-up for the
//! length of that timeout, so it is not done.
//!
//! # Peers that go away
//!
//! - **Clean release.** A writer that drops its handle marks its role closed and wakes every sleeper
//!   unconditionally; waiters check the closed mark on every round (one load) and return
//!   [`Error::Closed`](super::Error::Closed) once nothing is left to read.
//! - **Death.** At most every [`DEFAULT_LIVENESS_POLL`], whatever happens to the futex (woken, interrupted,
//!   `EAGAIN` from a busy or hostile event word, or failing altogether), a waiter asks the
//!   [liveness](crate::liveness) module about the writer; a dead one gives
//!   [`Error::WriterGone`](super::Error::WriterGone), also with `timeout: None`. A futex that fails outright
//!   degrades to sleeping in slices of at most 1 ms.
//! - **A waiter killed while asleep** cannot deregister. The count is self-healing: the waiter word holds an
//!   8-bit epoch, a 12-bit registration sequence and a 12-bit count, and a writer whose `FUTEX_WAKE` found
//!   nobody asleep [`RESET_AFTER`] times in a row resets the count to zero in a new epoch, with a
//!   compare-and-swap against the word it loaded before that wake: any registration since (which bumps the
//!   sequence) makes the reset fail. A waiter deregisters only in the epoch it registered in. So a dead waiter
//!   costs the writer at most [`RESET_AFTER`] wasted `FUTEX_WAKE`s, not one per publication forever. A live
//!   waiter whose registration a reset erased registered before the writer's load and was not asleep at the
//!   wake; the wake bumped the event word after the value that waiter loaded, so its `FUTEX_WAIT` returns
//!   `EAGAIN` and it registers again (checked by a loom model).
//!
//! The event word is 32 bits: a waiter misses a change only if exactly 2^32 bumps happen between its load and
//! its `FUTEX_WAIT`, and even then it only sleeps until the end of the slice.

use core::time::Duration;

use super::Error;
use super::sync::{AtomicU32, Ordering, fence, spin_hint};

/// The longest a waiter goes without checking that the writer is alive.
pub const DEFAULT_LIVENESS_POLL: Duration = Duration::from_millis(10);

/// Consecutive wakes that found nobody asleep after which a writer resets the waiter count (see the module docs).
pub(crate) const RESET_AFTER: u32 = 8;

/// The waiter word: epoch (bits 24-31), registration sequence (bits 12-23), waiter count (bits 0-11).
const COUNT_MASK: u32 = 0xfff;
const SEQ_SHIFT: u32 = 12;
const SEQ_MASK: u32 = 0xfff << SEQ_SHIFT;
const EPOCH_SHIFT: u32 = 24;

/// Condition checks (with a CPU pause between them) before a waiter goes to sleep.
#[cfg(not(all(loom, test)))]
const SPINS: u32 = 100;
#[cfg(all(loom, test))]
const SPINS: u32 = 1;
/// Of which the last ones yield the CPU instead of pausing (helps when the writer shares the core).
#[cfg(not(all(loom, test)))]
const YIELDS: u32 = 4;
#[cfg(all(loom, test))]
const YIELDS: u32 = 0;

/// The longest sleep of a waiter that cannot pair with a notifier that skips its fence (see the module docs).
pub(crate) const SHORT_SLICE: Duration = Duration::from_millis(1);

/// The shared part of a wait: all-zero is the initial state (symmetric protocol, no waiters).
#[repr(C)]
pub(crate) struct WaitCell {
    event: AtomicU32,
    /// The waiter word: epoch, registration sequence and count (see [`COUNT_MASK`] and the module docs).
    waiters: AtomicU32,
    /// 1 when the notifier orders its publications with a compiler fence only and relies on waiters' global
    /// membarrier (see the module docs); 0 for the symmetric protocol.
    protocol: AtomicU32,
    #[cfg(all(loom, test))]
    model: loom::sync::Mutex<usize>,
    #[cfg(all(loom, test))]
    cond: loom::sync::Condvar,
    /// Whether this model's waiters can issue the global barrier (loom models only).
    #[cfg(all(loom, test))]
    model_membarrier: bool,
}

/// Publications without a sleeper after which a notifier that fell back to the symmetric protocol because
/// waiters were sleeping returns to the asymmetric one (see the module docs): long enough that a reader which
/// sleeps now and then keeps its wake-ups free of the global barrier, short enough that a stream nobody sleeps on
/// drops the fence again almost at once. A barrier costs a waiter microseconds (more in a VM); 256 fences cost the
/// notifier a few.
#[cfg(not(all(loom, test)))]
pub(crate) const QUIET_PUBLICATIONS: u32 = 256;
/// In loom models, one quiet publication switches back, so that the models see both switches.
#[cfg(all(loom, test))]
pub(crate) const QUIET_PUBLICATIONS: u32 = 1;

/// A notifier's process-local state: how it orders its publications now, and its count of wakes that found
/// nobody asleep (see the module docs). Made by [`WaitCell::notifier`] when the notifier's role is claimed.
pub(crate) struct Notifier {
    empty_wakes: u32,
    /// Whether this process is registered for global expedited membarriers (it may skip its fence).
    registered: bool,
    /// Whether its publications skip the fence now (the cell's protocol word is 1).
    asymmetric: bool,
    /// Publications without a sleeper still to go before a registered notifier that is symmetric now switches
    /// back to asymmetric.
    quiet_left: u32,
}

/// What a waiter learns about the peer it waits for: `probe` is true when it is time to ask the liveness
/// module (a syscall); the closed mark is a plain load and is checked every round.
pub(crate) trait Peer {
    /// `Some(error)` to stop waiting with it.
    fn check(&mut self, probe: bool) -> Option<Error>;
}

impl<F: FnMut(bool) -> Option<Error>> Peer for F {
    fn check(&mut self, probe: bool) -> Option<Error> {
        self(probe)
    }
}

impl WaitCell {
    #[cfg(all(test, not(loom), not(miri)))]
    pub(crate) const fn new() -> Self {
        Self {
            event: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            protocol: AtomicU32::new(0),
        }
    }

    /// A cell whose waiters can issue the global barrier if `membarrier` (loom model).
    #[cfg(all(loom, test))]
    pub(crate) fn new() -> Self {
        Self::new_model(true)
    }

    #[cfg(all(loom, test))]
    pub(crate) fn new_model(membarrier: bool) -> Self {
        Self {
            event: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            protocol: AtomicU32::new(0),
            model: loom::sync::Mutex::new(0),
            cond: loom::sync::Condvar::new(),
            model_membarrier: membarrier,
        }
    }

    /// Makes the calling process this cell's notifier: called once the notifier's role is claimed, before its
    /// first publication. Records in the cell whether its publications skip the fence (see the module docs).
    #[cfg(not(all(loom, test)))]
    pub(crate) fn notifier(&self) -> Notifier {
        self.notifier_as(barrier::notifier_registered())
    }

    /// In loom models the notifier "registered" exactly when the model's waiters can issue the global barrier,
    /// so the buffers' own models run the asymmetric protocol.
    #[cfg(all(loom, test))]
    pub(crate) fn notifier(&self) -> Notifier {
        self.notifier_as(self.model_membarrier)
    }

    /// [`notifier`](Self::notifier) with the process's registration given (tests choose it).
    pub(crate) fn notifier_as(&self, registered: bool) -> Notifier {
        let mut notifier = Notifier {
            empty_wakes: 0,
            registered,
            asymmetric: false,
            quiet_left: 0,
        };
        self.switch_protocol(&mut notifier, registered);
        notifier
    }

    /// Records in the protocol word whether the notifier's next publications skip the fence, then `fence(SeqCst)`
    /// (see the module docs for why that fence, and the release store, make every switch safe at any time).
    fn switch_protocol(&self, notifier: &mut Notifier, asymmetric: bool) {
        self.protocol.store(u32::from(asymmetric), Ordering::Release);
        fence(Ordering::SeqCst);
        notifier.asymmetric = asymmetric;
        notifier.quiet_left = QUIET_PUBLICATIONS;
    }

    /// Called by the notifier after each publication (after its release store).
    #[inline]
    pub(crate) fn notify(&self, notifier: &mut Notifier) {
        if notifier.asymmetric {
            self.light_fence();
            let seen = self.waiters.load(Ordering::Relaxed);
            if seen & COUNT_MASK != 0 {
                self.notify_slow(seen, notifier);
            }
        } else {
            fence(Ordering::SeqCst);
            let seen = self.waiters.load(Ordering::Relaxed);
            if seen & COUNT_MASK != 0 {
                self.notify_slow(seen, notifier);
            } else if notifier.registered {
                self.quiet_publication(notifier);
            }
        }
    }

    /// A symmetric publication that found nobody asleep, by a notifier that may skip its fence: after
    /// [`QUIET_PUBLICATIONS`] of them in a row, it does so again.
    fn quiet_publication(&self, notifier: &mut Notifier) {
        notifier.quiet_left = notifier.quiet_left.saturating_sub(1);
        if notifier.quiet_left == 0 {
            self.switch_protocol(notifier, true);
        }
    }

    /// The notifier's half of the asymmetric fence: keeps its publication and its load of the waiter count in
    /// program order; the waiter's global membarrier supplies the hardware barrier between them.
    #[cfg(not(all(loom, test)))]
    #[inline(always)]
    fn light_fence(&self) {
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
    }

    /// loom cannot model `membarrier` itself. Its effect (see the module docs) is a full barrier at a point of
    /// the notifier's instruction stream that lies in time between the waiter's registration and its re-check;
    /// for this protocol every such point is as good as one between the notifier's store and its load, which is
    /// what a `SeqCst` fence here models. So with waiters that issue the barrier this is that fence, and with
    /// waiters that cannot (`model_membarrier` false) it is nothing at all: those models check that the protocol
    /// word and the short slices alone keep a waiter from missing the publication.
    #[cfg(all(loom, test))]
    fn light_fence(&self) {
        if self.model_membarrier {
            fence(Ordering::SeqCst);
        }
    }

    /// A publication that found waiters registered: wake them, and fall back to the symmetric protocol, so that
    /// the next waiters need no global barrier (see the module docs).
    #[cold]
    fn notify_slow(&self, seen: u32, notifier: &mut Notifier) {
        if notifier.asymmetric {
            self.switch_protocol(notifier, false);
        }
        notifier.quiet_left = QUIET_PUBLICATIONS;
        let empty_wakes = &mut notifier.empty_wakes;
        if self.wake_all() != 0 {
            *empty_wakes = 0;
            return;
        }
        *empty_wakes += 1;
        if *empty_wakes >= RESET_AFTER {
            *empty_wakes = 0;
            let next_epoch = ((seen >> EPOCH_SHIFT).wrapping_add(1)) << EPOCH_SHIFT;
            let _ = self
                .waiters
                .compare_exchange(seen, next_epoch, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Bumps the event word and wakes every sleeper, whether or not any is counted (a writer closing its role);
    /// returns how many were woken.
    pub(crate) fn wake_all(&self) -> usize {
        self.event.fetch_add(1, Ordering::Release);
        self.futex_wake()
    }

    /// Registers a waiter; returns the epoch to deregister in.
    fn register(&self) -> u32 {
        let mut w = self.waiters.load(Ordering::Relaxed);
        loop {
            // A saturated count stays non-zero, so the writer keeps waking.
            let count = (w & COUNT_MASK) + u32::from(w & COUNT_MASK != COUNT_MASK);
            let seq = (w & SEQ_MASK).wrapping_add(1 << SEQ_SHIFT) & SEQ_MASK;
            let next = (w & !(SEQ_MASK | COUNT_MASK)) | seq | count;
            match self
                .waiters
                .compare_exchange_weak(w, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return w >> EPOCH_SHIFT,
                Err(now) => w = now,
            }
        }
    }

    /// Deregisters a waiter registered in `epoch`; a no-op if a writer has reset the count since.
    fn deregister(&self, epoch: u32) {
        let mut w = self.waiters.load(Ordering::Relaxed);
        while w >> EPOCH_SHIFT == epoch && w & COUNT_MASK != 0 {
            match self
                .waiters
                .compare_exchange_weak(w, w - 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }

    /// Waits until `ready` gives a result (or an error), the timeout passes ([`Error::Timeout`]), or `peer`
    /// says to stop (the writer closed or died).
    ///
    /// `ready` returns `Ok(Some(r))` when done, `Ok(None)` to keep waiting, `Err(e)` to stop with `e`. It must
    /// read the shared state with acquire loads (it runs after the waiter's `fence(SeqCst)`).
    pub(crate) fn wait<R>(
        &self,
        timeout: Option<Duration>,
        mut ready: impl FnMut() -> Result<Option<R>, Error>,
        mut peer: impl Peer,
    ) -> Result<R, Error> {
        for i in 0..SPINS {
            if let Some(r) = ready()? {
                return Ok(r);
            }
            if let Some(e) = peer.check(false) {
                return last_look(&mut ready, e);
            }
            if i + YIELDS >= SPINS {
                yield_cpu();
            } else {
                spin_hint();
            }
        }
        let deadline = timeout.map(|t| now_ns().saturating_add(duration_ns(t)));
        let poll = duration_ns(DEFAULT_LIVENESS_POLL);
        let mut next_probe = 0;
        loop {
            let expected = self.event.load(Ordering::Acquire);
            let epoch = self.register();
            fence(Ordering::SeqCst);
            let short = !self.pair_with_notifier();
            let slice = if short { duration_ns(SHORT_SLICE) } else { poll };
            let outcome = self.sleep_once(
                expected,
                &mut ready,
                &mut peer,
                deadline,
                (poll, slice),
                &mut next_probe,
            );
            self.deregister(epoch);
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
    }

    /// The waiter's half of the handshake, after registering and its `fence(SeqCst)`: if the notifier skips its
    /// fence, issue the global barrier. Returns false if the waiter could not pair with the notifier (it must
    /// then sleep only in short slices).
    fn pair_with_notifier(&self) -> bool {
        // Acquire: a notifier's publications before it switched to the symmetric protocol are seen by the re-check
        // (see the module docs).
        if self.protocol.load(Ordering::Acquire) == 0 {
            return true;
        }
        self.global_barrier()
    }

    #[cfg(not(all(loom, test)))]
    fn global_barrier(&self) -> bool {
        barrier::global()
    }

    /// See [`light_fence`](Self::light_fence): the barrier's effect is modelled on the notifier's side.
    #[cfg(all(loom, test))]
    fn global_barrier(&self) -> bool {
        fence(Ordering::SeqCst);
        self.model_membarrier
    }

    /// One round of the sleep loop: re-check, probe the peer when due, then sleep for at most `slice` (the
    /// liveness poll, or [`SHORT_SLICE`]) and never past the next probe or the deadline.
    fn sleep_once<R>(
        &self,
        expected: u32,
        ready: &mut impl FnMut() -> Result<Option<R>, Error>,
        peer: &mut impl Peer,
        deadline: Option<u64>,
        (poll, slice_max): (u64, u64),
        next_probe: &mut u64,
    ) -> Option<Result<R, Error>> {
        match ready() {
            Ok(None) => {}
            Ok(Some(r)) => return Some(Ok(r)),
            Err(e) => return Some(Err(e)),
        }
        let now = now_ns();
        // Time-based, not wake-based: a futex that keeps returning early must not postpone the probe forever.
        let probe = now >= *next_probe;
        if probe {
            *next_probe = now.saturating_add(poll);
        }
        if let Some(e) = peer.check(probe) {
            return Some(last_look(ready, e));
        }
        let mut slice = next_probe.saturating_sub(now).clamp(1, poll).min(slice_max);
        if let Some(d) = deadline {
            if now >= d {
                return Some(Err(Error::Timeout));
            }
            slice = slice.min(d - now);
        }
        self.futex_wait(expected, slice);
        None
    }

    /// `FUTEX_WAIT` (shared) for at most `slice_ns`.
    #[cfg(not(all(loom, test)))]
    fn futex_wait(&self, expected: u32, slice_ns: u64) {
        use rustix::io::Errno;
        use rustix::thread::futex;
        match futex::wait(&self.event, futex::Flags::empty(), expected, Some(&timespec(slice_ns))) {
            Ok(()) | Err(Errno::TIMEDOUT | Errno::AGAIN | Errno::INTR) => {}
            // No usable futex (seccomp, exotic emulator): degrade to polling in short sleeps, still bounded by
            // the deadline and still probing the writer.
            Err(_) => {
                let _ = rustix::thread::nanosleep(&timespec(slice_ns.min(1_000_000)));
            }
        }
    }

    #[cfg(not(all(loom, test)))]
    fn futex_wake(&self) -> usize {
        rustix::thread::futex::wake(&self.event, rustix::thread::futex::Flags::empty(), i32::MAX as u32).unwrap_or(0)
    }

    /// loom model of `FUTEX_WAIT`: the kernel's check-and-sleep is atomic with respect to `FUTEX_WAKE`, which a
    /// mutex reproduces; time is not modelled (a lost wake-up shows up as a loom deadlock), except that a short
    /// slice (a waiter that could not pair with the notifier) does not sleep at all: it re-checks, as it would
    /// after at most [`SHORT_SLICE`].
    #[cfg(all(loom, test))]
    fn futex_wait(&self, expected: u32, slice_ns: u64) {
        if slice_ns <= duration_ns(SHORT_SLICE) {
            loom::thread::yield_now();
            return;
        }
        let mut sleepers = self.model.lock().unwrap();
        if self.event.load(Ordering::Relaxed) != expected {
            return;
        }
        *sleepers += 1;
        let mut sleepers = self.cond.wait(sleepers).unwrap();
        *sleepers -= 1;
    }

    #[cfg(all(loom, test))]
    fn futex_wake(&self) -> usize {
        let sleepers = self.model.lock().unwrap();
        self.cond.notify_all();
        *sleepers
    }

    /// The number of registered waiters (tests).
    #[cfg(test)]
    pub(crate) fn waiter_count(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed) & COUNT_MASK
    }
}

/// The process-wide half of the asymmetric fence: `membarrier(2)`, each capability decided once per process.
/// (Miri has no `membarrier`: the symmetric protocol; loom models the barrier in the wait cell.)
#[cfg(not(all(loom, test)))]
mod barrier {
    #[cfg(not(miri))]
    use core::sync::atomic::{AtomicU8, Ordering::Relaxed};
    #[cfg(not(miri))]
    use rustix::thread::{MembarrierCommand, membarrier, membarrier_query};

    #[cfg(not(miri))]
    const UNKNOWN: u8 = 0;
    #[cfg(not(miri))]
    const YES: u8 = 1;
    #[cfg(not(miri))]
    const NO: u8 = 2;

    /// Registers the process (`MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`); false if the kernel, an emulator or a
    /// seccomp filter refuses it, which is remembered (a forked child would be refused too). Asked at every
    /// claim, not cached: a registration belongs to an address space, and a child forked after its parent
    /// registered starts without one (its copy of a cached "yes" would be a lie). A repeated registration
    /// returns at once.
    #[cfg(not(miri))]
    pub(super) fn notifier_registered() -> bool {
        static REFUSED: AtomicU8 = AtomicU8::new(UNKNOWN);
        if REFUSED.load(Relaxed) == YES {
            return false;
        }
        let ok = membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok();
        if !ok {
            REFUSED.store(YES, Relaxed);
        }
        ok
    }

    /// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`; false if the kernel does not offer it (asked once, with
    /// `MEMBARRIER_CMD_QUERY`) or the call fails (then never tried again in this process).
    #[cfg(not(miri))]
    pub(super) fn global() -> bool {
        static OFFERED: AtomicU8 = AtomicU8::new(UNKNOWN);
        match OFFERED.load(Relaxed) {
            NO => return false,
            YES => {}
            _ => {
                let offered = membarrier_query().contains_command(MembarrierCommand::GlobalExpedited);
                OFFERED.store(if offered { YES } else { NO }, Relaxed);
                if !offered {
                    return false;
                }
            }
        }
        if membarrier(MembarrierCommand::GlobalExpedited).is_ok() {
            true
        } else {
            OFFERED.store(NO, Relaxed);
            false
        }
    }

    #[cfg(miri)]
    pub(super) fn notifier_registered() -> bool {
        false
    }

    #[cfg(miri)]
    pub(super) fn global() -> bool {
        false
    }
}

#[cfg(not(all(loom, test)))]
fn timespec(ns: u64) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: (ns / 1_000_000_000) as _,
        tv_nsec: (ns % 1_000_000_000) as _,
    }
}

/// The peer closed or died after `ready` last looked: everything it published before that is visible now (its
/// role release is ordered after its publications, and the peer check loads the role with acquire), so look once
/// more before reporting `stop`.
fn last_look<R>(ready: &mut impl FnMut() -> Result<Option<R>, Error>, stop: Error) -> Result<R, Error> {
    match ready() {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(stop),
        Err(e) => Err(e),
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `CLOCK_MONOTONIC` in nanoseconds.
#[cfg(not(all(loom, test)))]
pub(crate) fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// Time does not pass in loom models.
#[cfg(all(loom, test))]
pub(crate) fn now_ns() -> u64 {
    0
}

#[cfg(not(all(loom, test)))]
fn yield_cpu() {
    rustix::thread::sched_yield();
}

#[cfg(all(loom, test))]
fn yield_cpu() {
    loom::thread::yield_now();
}

#[cfg(all(test, not(loom), not(miri)))]
mod tests {
    use super::*;
    use crate::buffer::sync::AtomicU64;
    use std::sync::Arc;

    fn never(_: bool) -> Option<Error> {
        None
    }

    #[test]
    fn times_out_and_reports_a_gone_peer() {
        let w = WaitCell::new();
        let t0 = now_ns();
        let r: Result<(), _> = w.wait(Some(Duration::from_millis(30)), || Ok(None), never);
        assert_eq!(r, Err(Error::Timeout));
        let waited = now_ns() - t0;
        assert!((30_000_000..2_000_000_000).contains(&waited), "{waited}");
        let r: Result<(), _> = w.wait(None, || Ok(None), |probe: bool| probe.then_some(Error::WriterGone));
        assert_eq!(r, Err(Error::WriterGone));
        assert_eq!(w.waiter_count(), 0);
    }

    #[test]
    fn a_waiter_that_died_registered_costs_a_bounded_number_of_wakes() {
        let w = WaitCell::new();
        // What a waiter SIGKILLed in FUTEX_WAIT leaves behind: a registration nobody will remove.
        w.register();
        w.register();
        assert_eq!(w.waiter_count(), 2);
        let mut n = w.notifier();
        for _ in 0..RESET_AFTER {
            w.notify(&mut n);
        }
        assert_eq!(
            w.waiter_count(),
            0,
            "the writer keeps paying a FUTEX_WAKE per publication"
        );
        // A registration from before the reset does not drive a later one's count down.
        let epoch = w.waiters.load(Ordering::Relaxed) >> EPOCH_SHIFT;
        let later = w.register();
        assert_eq!(later, epoch);
        w.deregister(epoch.wrapping_sub(1));
        assert_eq!(w.waiter_count(), 1);
        w.deregister(later);
        assert_eq!(w.waiter_count(), 0);
    }

    #[test]
    fn a_dead_writer_is_noticed_without_timeout_even_if_the_futex_never_sleeps() {
        // A hostile or runaway peer bumps the event word continuously: every FUTEX_WAIT returns EAGAIN at once,
        // so the waiter never sees a slice end without a wake-up. It must still probe the writer and stop.
        let w = Arc::new(WaitCell::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bumper = {
            let (w, stop) = (w.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    w.event.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let w = w.clone();
            std::thread::spawn(move || {
                let mut probes = 0u32;
                let r: Result<(), _> = w.wait(
                    None,
                    || Ok(None),
                    |probe: bool| {
                        probes += u32::from(probe);
                        // The writer is found dead at the third probe.
                        (probes >= 3).then_some(Error::WriterGone)
                    },
                );
                let _ = tx.send(r);
            })
        };
        let r = rx.recv_timeout(Duration::from_secs(60));
        stop.store(true, Ordering::Relaxed);
        bumper.join().unwrap();
        assert_eq!(r, Ok(Err(Error::WriterGone)), "the waiter never probed the writer");
        waiter.join().unwrap();
    }

    #[test]
    fn wakes_a_sleeper_in_another_thread_with_either_protocol() {
        wakes_a_sleeper_in_another_thread(false);
        // The asymmetric protocol where this kernel offers it (without registration the notifier must not use it).
        if barrier::notifier_registered() {
            wakes_a_sleeper_in_another_thread(true);
        }
    }

    #[test]
    fn the_protocol_word_says_what_the_notifier_does() {
        let w = WaitCell::new();
        assert_eq!(w.protocol.load(Ordering::Relaxed), 0, "a zero-filled cell is symmetric");
        let n = w.notifier();
        assert_eq!(n.asymmetric, barrier::notifier_registered());
        assert_eq!(w.protocol.load(Ordering::Relaxed), u32::from(n.asymmetric));
        // A later notifier without registration (another process, another kernel) sets it back.
        let n = w.notifier_as(false);
        assert!(!n.asymmetric);
        assert_eq!(w.protocol.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_notifier_fences_while_waiters_sleep_and_stops_once_they_do_not() {
        let w = WaitCell::new();
        let mut n = w.notifier_as(true);
        assert_eq!(w.protocol.load(Ordering::Relaxed), 1);
        w.notify(&mut n);
        assert!(n.asymmetric, "nobody waits: no fence");
        let epoch = w.register();
        w.notify(&mut n);
        assert!(
            !n.asymmetric,
            "a waiter was registered: the next waiters should not need the barrier"
        );
        assert_eq!(w.protocol.load(Ordering::Relaxed), 0);
        w.deregister(epoch);
        for i in 1..QUIET_PUBLICATIONS {
            w.notify(&mut n);
            assert!(!n.asymmetric, "back to asymmetric after {i} quiet publications");
        }
        w.notify(&mut n);
        assert!(n.asymmetric);
        assert_eq!(w.protocol.load(Ordering::Relaxed), 1);
        // A notifier that could not register never skips its fence.
        let mut n = w.notifier_as(false);
        for _ in 0..2 * QUIET_PUBLICATIONS {
            w.notify(&mut n);
        }
        assert!(!n.asymmetric);
        assert_eq!(w.protocol.load(Ordering::Relaxed), 0);
    }

    /// Whether this kernel offers the barriers (printed, so that a run shows which protocol it exercised).
    #[test]
    fn membarrier_is_decided_once() {
        let registered = barrier::notifier_registered();
        let global = barrier::global();
        std::println!("membarrier: notifier registered {registered}, global barrier {global}");
        assert_eq!(barrier::notifier_registered(), registered);
        assert_eq!(barrier::global(), global);
    }

    fn wakes_a_sleeper_in_another_thread(asymmetric: bool) {
        let w = Arc::new((WaitCell::new(), AtomicU64::new(0)));
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            for i in 1..=200u64 {
                let r = w2.0.wait(
                    Some(Duration::from_secs(10)),
                    || Ok((w2.1.load(Ordering::Acquire) >= i).then_some(())),
                    never,
                );
                assert_eq!(r, Ok(()));
            }
        });
        let mut n = w.0.notifier_as(asymmetric);
        for i in 1..=200u64 {
            if i % 16 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            w.1.store(i, Ordering::Release);
            w.0.notify(&mut n);
        }
        t.join().unwrap();
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::buffer::sync::AtomicU64;
    use loom::sync::Arc;
    use loom::thread;

    /// Two publications and a waiter that needs both: every interleaving of the handshake must end with the
    /// waiter awake (a lost wake-up is a loom deadlock). The notifier takes its role (and sets the protocol word)
    /// in its own thread, racing with the waiter going to sleep.
    fn two_publications(asymmetric: bool, membarrier: bool) {
        crate::buffer::loom_model(move || {
            let shared = Arc::new((WaitCell::new_model(membarrier), AtomicU64::new(0)));
            let s2 = shared.clone();
            let t = thread::spawn(move || {
                let mut n = s2.0.notifier_as(asymmetric);
                for i in 1..=2 {
                    s2.1.store(i, Ordering::Release);
                    s2.0.notify(&mut n);
                }
            });
            let r = shared.0.wait(
                None,
                || Ok((shared.1.load(Ordering::Acquire) == 2).then_some(())),
                |_: bool| None,
            );
            assert_eq!(r, Ok(()));
            t.join().unwrap();
        });
    }

    /// The symmetric protocol: `fence(SeqCst)` on both sides.
    #[test]
    fn loom_wait_wake_no_lost_wakeup() {
        two_publications(false, true);
    }

    /// The asymmetric protocol: the notifier's compiler fence paired with the waiter's global barrier (modelled as
    /// described at `WaitCell::light_fence`).
    #[test]
    fn loom_asymmetric_wait_wake_no_lost_wakeup() {
        two_publications(true, true);
    }

    /// A notifier that skips its fence (nothing at all orders its store and its load in this model) and a waiter
    /// that cannot issue the global barrier: the waiter either reads the protocol word as 0, and then the
    /// notifier's fence at claim makes it see the registration, or reads 1 and re-checks in short slices.
    #[test]
    fn loom_asymmetric_notifier_and_a_waiter_without_membarrier() {
        two_publications(true, false);
    }

    /// The notifier switching protocols while a waiter sleeps twice: the first publication can find the waiter
    /// (the cell goes symmetric), the second finds nobody (one quiet publication switches back in models), the
    /// third wakes the second sleep, whichever protocol word each of the waiter's rounds read.
    fn protocol_switches(membarrier: bool) {
        crate::buffer::loom_model(move || {
            let shared = Arc::new((WaitCell::new_model(membarrier), AtomicU64::new(0)));
            let s2 = shared.clone();
            let t = thread::spawn(move || {
                let mut n = s2.0.notifier_as(true);
                for i in 1..=3 {
                    s2.1.store(i, Ordering::Release);
                    s2.0.notify(&mut n);
                }
            });
            for want in [1, 3] {
                let r = shared.0.wait(
                    None,
                    || Ok((shared.1.load(Ordering::Acquire) >= want).then_some(())),
                    |_: bool| None,
                );
                assert_eq!(r, Ok(()));
            }
            t.join().unwrap();
        });
    }

    /// With waiters that issue the barrier (modelled as at `WaitCell::light_fence`).
    #[test]
    fn loom_protocol_switches_lose_no_wakeup() {
        protocol_switches(true);
    }

    /// With waiters that cannot issue it, and fence-less publications that have nothing at all between their store
    /// and their load: a waiter that reads 0 sleeps without any barrier, so only the protocol word's release and
    /// fences keep it from missing a publication.
    #[test]
    fn loom_protocol_switches_without_membarrier_lose_no_wakeup() {
        protocol_switches(false);
    }

    /// A stale registration (a waiter killed asleep) makes the writer reset the count after its empty wakes,
    /// while a live waiter races with it: the live waiter must still be woken.
    #[test]
    fn loom_reset_of_a_dead_waiters_count_loses_no_wakeup() {
        crate::buffer::loom_model(|| {
            let shared = Arc::new((WaitCell::new(), AtomicU64::new(0)));
            shared.0.register();
            let s2 = shared.clone();
            let t = thread::spawn(move || {
                // Start one short of a reset, so that the first publication's empty wake resets the count.
                let mut n = s2.0.notifier();
                n.empty_wakes = RESET_AFTER - 1;
                for i in 1..=2 {
                    s2.1.store(i, Ordering::Release);
                    s2.0.notify(&mut n);
                }
            });
            let r = shared.0.wait(
                None,
                || Ok((shared.1.load(Ordering::Acquire) == 2).then_some(())),
                |_: bool| None,
            );
            assert_eq!(r, Ok(()));
            t.join().unwrap();
        });
    }

    /// A writer that closes (marks its role, then wakes everyone) while a reader goes to sleep: the reader must
    /// wake and see the mark.
    #[test]
    fn loom_close_wakes_a_sleeper() {
        crate::buffer::loom_model(|| {
            let shared = Arc::new((WaitCell::new(), AtomicU64::new(0)));
            let s2 = shared.clone();
            let t = thread::spawn(move || {
                s2.1.store(1, Ordering::Release);
                s2.0.wake_all();
            });
            let r: Result<(), _> = shared.0.wait(
                None,
                || Ok(None),
                |_: bool| (shared.1.load(Ordering::Acquire) == 1).then_some(Error::Closed),
            );
            assert_eq!(r, Err(Error::Closed));
            t.join().unwrap();
        });
    }
}
