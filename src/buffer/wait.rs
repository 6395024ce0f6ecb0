//! Blocking waits across processes: an event word for `futex(2)` plus a waiter count, spin-then-sleep.
//!
//! The protocol (no lost wake-ups, no syscall on the writer's path when nobody sleeps) is Dekker's:
//!
//! - the writer publishes (a release store of its position), then `fence(SeqCst)`, then loads the waiter count;
//!   only if it is non-zero does it bump the event word and call `FUTEX_WAKE`;
//! - a waiter loads the event word, increments the waiter count, `fence(SeqCst)`, re-checks its condition, and
//!   only then calls `FUTEX_WAIT` with the event value it loaded.
//!
//! The two sequentially consistent fences guarantee that the writer sees the waiter or the waiter sees the
//! publication. If the writer saw it, it bumps the event word after the waiter loaded it, so the kernel's
//! compare-and-sleep either refuses to sleep (`EAGAIN`) or is woken. The futex is **not** private
//! (`Flags::empty()`): the kernel keys it by the backing page, so a wake in one process reaches a sleeper in
//! another whatever the two mappings' addresses. `EINTR`, `EAGAIN`, timeouts and spurious wake-ups all lead back
//! to re-checking the condition.
//!
//! Sleeps are cut into slices of at most [`DEFAULT_LIVENESS_POLL`]; when a slice ends without a wake-up, the
//! waiter checks that the writer recorded in the shared struct is still alive, so a dead writer gives
//! [`Error::WriterGone`](super::Error::WriterGone) instead of a hang. A waiter killed while asleep leaves the
//! waiter count raised; the writer then pays one (cheap, nobody-to-wake) `FUTEX_WAKE` per publication. The
//! event word is 32 bits: a waiter misses a change only if exactly 2^32 bumps happen between its load and its
//! `FUTEX_WAIT`, and even then it only sleeps until the end of the slice.

use core::time::Duration;

use super::Error;
use super::sync::{AtomicU32, Ordering, fence, spin_hint};

/// The longest a waiter sleeps before re-checking that the writer is alive.
pub const DEFAULT_LIVENESS_POLL: Duration = Duration::from_millis(10);

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

/// The shared part of a wait: all-zero is the initial state.
#[repr(C)]
pub(crate) struct WaitCell {
    event: AtomicU32,
    waiters: AtomicU32,
    #[cfg(all(loom, test))]
    model: loom::sync::Mutex<()>,
    #[cfg(all(loom, test))]
    cond: loom::sync::Condvar,
}

impl WaitCell {
    #[cfg(all(test, not(loom), not(miri)))]
    pub(crate) const fn new() -> Self {
        Self {
            event: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    #[cfg(all(loom, test))]
    pub(crate) fn new() -> Self {
        Self {
            event: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            model: loom::sync::Mutex::new(()),
            cond: loom::sync::Condvar::new(),
        }
    }

    /// Called by the writer after each publication (after its release store).
    #[inline]
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.wake_all();
        }
    }

    /// Bumps the event word and wakes every sleeper, whether or not any is counted.
    pub(crate) fn wake_all(&self) {
        self.event.fetch_add(1, Ordering::Release);
        self.futex_wake();
    }

    /// Waits until `ready` gives a result (or an error), the timeout passes ([`Error::Timeout`]), or
    /// `peer_gone` says the writer died (`gone`).
    ///
    /// `ready` returns `Ok(Some(r))` when done, `Ok(None)` to keep waiting, `Err(e)` to stop with `e`. It must
    /// read the shared state with acquire loads (it runs after the waiter's `fence(SeqCst)`).
    pub(crate) fn wait<R>(
        &self,
        timeout: Option<Duration>,
        mut ready: impl FnMut() -> Result<Option<R>, Error>,
        mut peer_gone: impl FnMut() -> bool,
        gone: Error,
    ) -> Result<R, Error> {
        for i in 0..SPINS {
            if let Some(r) = ready()? {
                return Ok(r);
            }
            if i + YIELDS >= SPINS {
                yield_cpu();
            } else {
                spin_hint();
            }
        }
        let deadline = timeout.map(|t| now_ns().saturating_add(duration_ns(t)));
        let poll = duration_ns(DEFAULT_LIVENESS_POLL);
        let mut check_peer = true;
        loop {
            let expected = self.event.load(Ordering::Acquire);
            self.waiters.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let outcome = self.sleep_once(
                expected,
                &mut ready,
                &mut peer_gone,
                gone,
                deadline,
                poll,
                &mut check_peer,
            );
            self.waiters.fetch_sub(1, Ordering::Relaxed);
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sleep_once<R>(
        &self,
        expected: u32,
        ready: &mut impl FnMut() -> Result<Option<R>, Error>,
        peer_gone: &mut impl FnMut() -> bool,
        gone: Error,
        deadline: Option<u64>,
        poll: u64,
        check_peer: &mut bool,
    ) -> Option<Result<R, Error>> {
        match ready() {
            Ok(None) => {}
            Ok(Some(r)) => return Some(Ok(r)),
            Err(e) => return Some(Err(e)),
        }
        if *check_peer && peer_gone() {
            return Some(Err(gone));
        }
        let slice = match deadline {
            None => poll,
            Some(d) => {
                let now = now_ns();
                if now >= d {
                    return Some(Err(Error::Timeout));
                }
                (d - now).min(poll)
            }
        };
        *check_peer = self.futex_wait(expected, slice);
        None
    }

    /// `FUTEX_WAIT` (shared) for at most `slice_ns`; true when the slice ended without a wake-up.
    #[cfg(not(all(loom, test)))]
    fn futex_wait(&self, expected: u32, slice_ns: u64) -> bool {
        use rustix::io::Errno;
        use rustix::thread::futex;
        let ts = rustix::time::Timespec {
            tv_sec: (slice_ns / 1_000_000_000) as _,
            tv_nsec: (slice_ns % 1_000_000_000) as _,
        };
        match futex::wait(&self.event, futex::Flags::empty(), expected, Some(&ts)) {
            Err(Errno::TIMEDOUT) => true,
            Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => false,
            // No usable futex (seccomp, exotic emulator): degrade to polling, still bounded by the deadline.
            Err(_) => {
                rustix::thread::sched_yield();
                false
            }
        }
    }

    #[cfg(not(all(loom, test)))]
    fn futex_wake(&self) {
        let _ = rustix::thread::futex::wake(&self.event, rustix::thread::futex::Flags::empty(), i32::MAX as u32);
    }

    /// loom model of `FUTEX_WAIT`: the kernel's check-and-sleep is atomic with respect to `FUTEX_WAKE`, which a
    /// mutex reproduces; time is not modelled (a lost wake-up shows up as a loom deadlock).
    #[cfg(all(loom, test))]
    fn futex_wait(&self, expected: u32, _slice_ns: u64) -> bool {
        let guard = self.model.lock().unwrap();
        if self.event.load(Ordering::Relaxed) != expected {
            return false;
        }
        drop(self.cond.wait(guard).unwrap());
        false
    }

    #[cfg(all(loom, test))]
    fn futex_wake(&self) {
        let _guard = self.model.lock().unwrap();
        self.cond.notify_all();
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

    #[test]
    fn times_out_and_reports_a_gone_peer() {
        let w = WaitCell::new();
        let t0 = now_ns();
        let r: Result<(), _> = w.wait(
            Some(Duration::from_millis(30)),
            || Ok(None),
            || false,
            Error::WriterGone,
        );
        assert_eq!(r, Err(Error::Timeout));
        let waited = now_ns() - t0;
        assert!((30_000_000..2_000_000_000).contains(&waited), "{waited}");
        let r: Result<(), _> = w.wait(None, || Ok(None), || true, Error::WriterGone);
        assert_eq!(r, Err(Error::WriterGone));
        assert_eq!(w.waiters.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn wakes_a_sleeper_in_another_thread() {
        let w = Arc::new((WaitCell::new(), AtomicU64::new(0)));
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            for i in 1..=200u64 {
                let r = w2.0.wait(
                    Some(Duration::from_secs(10)),
                    || Ok((w2.1.load(Ordering::Acquire) >= i).then_some(())),
                    || false,
                    Error::WriterGone,
                );
                assert_eq!(r, Ok(()));
            }
        });
        for i in 1..=200u64 {
            if i % 16 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            w.1.store(i, Ordering::Release);
            w.0.notify();
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

    /// Two publications and a waiter that needs both: every interleaving of the Dekker handshake must end with
    /// the waiter awake (a lost wake-up is a loom deadlock).
    #[test]
    fn loom_wait_wake_no_lost_wakeup() {
        crate::buffer::loom_model(|| {
            let shared = Arc::new((WaitCell::new(), AtomicU64::new(0)));
            let s2 = shared.clone();
            let t = thread::spawn(move || {
                for i in 1..=2 {
                    s2.1.store(i, Ordering::Release);
                    s2.0.notify();
                }
            });
            let r = shared.0.wait(
                None,
                || Ok((shared.1.load(Ordering::Acquire) == 2).then_some(())),
                || false,
                Error::WriterGone,
            );
            assert_eq!(r, Ok(()));
            t.join().unwrap();
        });
    }
}
