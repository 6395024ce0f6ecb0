//! Loss accounting from sequence numbers.

/// What one received sequence number means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The first sample seen, or the next one.
    InOrder,
    /// `n` samples before this one never arrived.
    Gap(u64),
    /// Not newer than what was already delivered (a duplicate or a late sample): drop it.
    Stale,
    /// The sender's sequence started again (seq 0 after a higher one): a new producer; counting restarts.
    Restart,
}

/// Follows one channel's sequence numbers and counts what went missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceTracker {
    next: Option<u64>,
    /// Samples accepted (in order or after a gap).
    pub received: u64,
    /// Samples missing according to the sequence numbers.
    pub gap: u64,
    /// Samples dropped as duplicates or late.
    pub stale: u64,
    /// Times the sequence restarted from 0.
    pub restarts: u64,
}

impl SequenceTracker {
    /// A tracker that has seen nothing.
    pub const fn new() -> Self {
        Self {
            next: None,
            received: 0,
            gap: 0,
            stale: 0,
            restarts: 0,
        }
    }

    /// A tracker that resumes after `last` (for example the newest sample already in a ring after a restart).
    pub const fn resuming_after(last: u64) -> Self {
        Self {
            next: Some(last.wrapping_add(1)),
            received: 0,
            gap: 0,
            stale: 0,
            restarts: 0,
        }
    }

    /// The sequence number expected next, if any sample was seen.
    pub const fn expected(&self) -> Option<u64> {
        self.next
    }

    /// Records `seq` and says what it means.
    pub fn observe(&mut self, seq: u64) -> Arrival {
        let arrival = match self.next {
            None => Arrival::InOrder,
            Some(next) if seq == next => Arrival::InOrder,
            Some(next) if seq > next => Arrival::Gap(seq - next),
            Some(_) if seq == 0 => Arrival::Restart,
            Some(_) => Arrival::Stale,
        };
        match arrival {
            Arrival::Stale => self.stale += 1,
            Arrival::Gap(n) => {
                self.gap += n;
                self.received += 1;
            }
            Arrival::Restart => {
                self.restarts += 1;
                self.received += 1;
            }
            Arrival::InOrder => self.received += 1,
        }
        if arrival != Arrival::Stale {
            self.next = Some(seq.wrapping_add(1));
        }
        arrival
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_duplicates_and_restarts() {
        let mut t = SequenceTracker::new();
        assert_eq!(t.observe(5), Arrival::InOrder);
        assert_eq!(t.observe(6), Arrival::InOrder);
        assert_eq!(t.observe(10), Arrival::Gap(3));
        assert_eq!(t.observe(10), Arrival::Stale);
        assert_eq!(t.observe(8), Arrival::Stale);
        assert_eq!(t.observe(11), Arrival::InOrder);
        assert_eq!(t.observe(0), Arrival::Restart);
        assert_eq!(t.observe(1), Arrival::InOrder);
        assert_eq!((t.received, t.gap, t.stale, t.restarts), (6, 3, 2, 1));
    }

    #[test]
    fn resuming_counts_the_samples_missed_while_away() {
        let mut t = SequenceTracker::resuming_after(99);
        assert_eq!(t.observe(100), Arrival::InOrder);
        let mut t = SequenceTracker::resuming_after(99);
        assert_eq!(t.observe(150), Arrival::Gap(50));
        assert_eq!(t.gap, 50);
    }
}
