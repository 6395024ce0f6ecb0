//! Role claims (producer, consumer, writer) recorded in shared memory.
//!
//! A role is a 64-bit token word: 0 when free, otherwise `pid << 32 | (start_time as u32)` of the holder, set
//! with a compare-and-swap so that exactly one claimant wins. The holder's full start time is stored next to it
//! after the claim, so others can check the holder's liveness with
//! [`ProcessIdentity::is_alive`](crate::process::ProcessIdentity::is_alive); while it is not yet written (or
//! left by an earlier holder, detected by the low 32 bits not matching) liveness falls back to the pid alone.

use super::Error;
use super::sync::{AtomicU64, Ordering};
use crate::process::ProcessIdentity;

/// A role's record in a shared struct. All-zero: free.
#[repr(C)]
pub(crate) struct RoleCell {
    token: AtomicU64,
    start_time: AtomicU64,
}

/// Who holds a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Nobody.
    Free,
    /// The process with this identity (start time 0 when unknown).
    Held(ProcessIdentity),
}

fn token_of(id: &ProcessIdentity) -> u64 {
    // pid 0 is never a process; keep such a token non-zero anyway so it cannot look free.
    (u64::from(id.pid) << 32) | u64::from(id.start_time as u32) | u64::from(id.pid == 0)
}

impl RoleCell {
    #[cfg(all(test, not(loom)))]
    pub(crate) const fn new() -> Self {
        Self {
            token: AtomicU64::new(0),
            start_time: AtomicU64::new(0),
        }
    }

    #[cfg(all(loom, test))]
    pub(crate) fn new() -> Self {
        Self {
            token: AtomicU64::new(0),
            start_time: AtomicU64::new(0),
        }
    }

    fn holder_of(&self, token: u64) -> Holder {
        if token == 0 {
            return Holder::Free;
        }
        holder_from_words(token, self.start_time.load(Ordering::Acquire))
    }

    /// The current holder.
    pub(crate) fn holder(&self) -> Holder {
        self.holder_of(self.token.load(Ordering::Acquire))
    }

    /// Whether the role is held by a process that `alive` says is dead.
    pub(crate) fn holder_dead(&self, alive: fn(&ProcessIdentity) -> bool) -> bool {
        match self.holder() {
            Holder::Free => false,
            Holder::Held(id) => !alive(&id),
        }
    }

    /// Claims the role for `me`, taking it over if its holder is dead according to `alive`.
    pub(crate) fn claim(
        &self,
        me: &ProcessIdentity,
        alive: fn(&ProcessIdentity) -> bool,
    ) -> Result<RoleGuard<'_>, Error> {
        let mine = token_of(me);
        let mut current = self.token.load(Ordering::Acquire);
        // Each failed CAS means another claimant changed the token; a few rounds settle any honest race.
        for _ in 0..4 {
            if let Holder::Held(holder) = self.holder_of(current) {
                if alive(&holder) {
                    return Err(Error::RoleTaken { pid: holder.pid });
                }
            }
            match self
                .token
                .compare_exchange(current, mine, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.start_time.store(me.start_time, Ordering::Release);
                    return Ok(RoleGuard {
                        cell: self,
                        token: mine,
                    });
                }
                Err(now) => current = now,
            }
        }
        Err(Error::RoleTaken {
            pid: (current >> 32) as u32,
        })
    }
}

/// Who holds a role, from its two words as read (by [`RoleCell::holder`], or copied out of a read-only mapping).
pub(crate) fn holder_from_words(token: u64, start: u64) -> Holder {
    if token == 0 {
        return Holder::Free;
    }
    let pid = (token >> 32) as u32;
    let start_time = if start as u32 == token as u32 { start } else { 0 };
    Holder::Held(ProcessIdentity { pid, start_time })
}

/// Offsets of a role's words in a [`RoleCell`], for reading one out of a read-only mapping.
#[cfg(not(all(loom, test)))]
pub(crate) const TOKEN_OFFSET: usize = core::mem::offset_of!(RoleCell, token);
/// See [`TOKEN_OFFSET`].
#[cfg(not(all(loom, test)))]
pub(crate) const START_TIME_OFFSET: usize = core::mem::offset_of!(RoleCell, start_time);

/// A held role; dropping it releases the role (unless someone else has taken it over meanwhile).
pub(crate) struct RoleGuard<'a> {
    cell: &'a RoleCell,
    token: u64,
}

impl Drop for RoleGuard<'_> {
    fn drop(&mut self) {
        let _ = self
            .cell
            .token
            .compare_exchange(self.token, 0, Ordering::Release, Ordering::Relaxed);
    }
}

/// Liveness as the kernel sees it.
pub(crate) fn is_alive(id: &ProcessIdentity) -> bool {
    id.is_alive()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const A: ProcessIdentity = ProcessIdentity {
        pid: 100,
        start_time: 0x1_0000_0005,
    };
    const B: ProcessIdentity = ProcessIdentity {
        pid: 200,
        start_time: 7,
    };

    #[test]
    fn claim_release_and_takeover() {
        let cell = RoleCell::new();
        assert_eq!(cell.holder(), Holder::Free);
        let g = cell.claim(&A, |_| true).unwrap();
        assert_eq!(cell.holder(), Holder::Held(A));
        assert_eq!(cell.claim(&B, |_| true).err(), Some(Error::RoleTaken { pid: 100 }));
        assert_eq!(cell.claim(&A, |_| true).err(), Some(Error::RoleTaken { pid: 100 }));
        assert!(!cell.holder_dead(|_| true));
        assert!(cell.holder_dead(|_| false));
        // A is "dead": B takes over; A's late release must not free B's role.
        let g2 = cell.claim(&B, |id| id.pid != 100).unwrap();
        assert_eq!(cell.holder(), Holder::Held(B));
        drop(g);
        assert_eq!(cell.holder(), Holder::Held(B));
        drop(g2);
        assert_eq!(cell.holder(), Holder::Free);
    }

    #[test]
    fn stale_start_time_falls_back_to_pid() {
        let cell = RoleCell::new();
        cell.start_time.store(99, Ordering::Relaxed);
        cell.token.store(token_of(&B), Ordering::Relaxed);
        assert_eq!(
            cell.holder(),
            Holder::Held(ProcessIdentity {
                pid: 200,
                start_time: 0
            })
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "needs kill(2) and /proc")]
    fn real_liveness() {
        let cell = RoleCell::new();
        let me = ProcessIdentity::current();
        let _g = cell.claim(&me, is_alive).unwrap();
        assert!(!cell.holder_dead(is_alive));
        assert_eq!(cell.claim(&me, is_alive).err(), Some(Error::RoleTaken { pid: me.pid }));
    }
}
