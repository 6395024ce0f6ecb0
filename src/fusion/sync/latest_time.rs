//! Rate-based zero-order hold: the ROS 2 `message_filters` LatestTime policy.

use super::{PushError, SyncStats, Timed, collect_set};
use crate::fusion::time::Timestamp;

/// A time source for [`LatestTime`], which measures arrival rates on it (ROS passes an `rclcpp::Clock`, so that
/// simulated time works). Closures `FnMut() -> Timestamp` are clocks.
pub trait Clock {
    /// The current time.
    fn now(&mut self) -> Timestamp;
}

/// `CLOCK_MONOTONIC` through [`Timestamp::now`] (no libc): the default clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    fn now(&mut self) -> Timestamp {
        Timestamp::now()
    }
}

impl<F: FnMut() -> Timestamp> Clock for F {
    fn now(&mut self) -> Timestamp {
        self()
    }
}

/// The rate estimator's parameters (ROS `RateConfig`: `rate_ema_alpha`, `error_ema_alpha`,
/// `rate_step_change_margin_factor`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateConfig {
    /// Weight of the newest period in the rate's moving average.
    pub rate_ema_alpha: f64,
    /// Weight of the newest deviation in the moving average of the rate error.
    pub error_ema_alpha: f64,
    /// A rate this many mean errors away from the average is a step change (the estimate restarts), and a
    /// channel this late is skipped as pivot.
    pub step_change_margin: f64,
}

impl RateConfig {
    /// ROS's defaults: 0.9, 0.3, 10.
    pub const ROS: Self = Self {
        rate_ema_alpha: 0.9,
        error_ema_alpha: 0.3,
        step_change_margin: 10.0,
    };
}

impl Default for RateConfig {
    fn default() -> Self {
        Self::ROS
    }
}

/// One channel's arrival-rate estimate (ROS's `LatestTime::Rate`).
#[derive(Clone, Copy, Debug)]
struct Rate {
    config: RateConfig,
    prev: Timestamp,
    hz: f64,
    error: f64,
    hz_unset: bool,
    error_unset: bool,
}

impl Rate {
    const fn new(config: RateConfig, start: Timestamp) -> Self {
        Self {
            config,
            prev: start,
            hz: 0.0,
            error: 0.0,
            hz_unset: true,
            error_unset: true,
        }
    }

    /// Updates the estimate with an arrival at `now`; `false` (and no update) if no time has passed.
    fn update(&mut self, now: Timestamp) -> bool {
        let period = seconds_between(self.prev, now);
        if period <= 0.0 {
            return false;
        }
        let observed = 1.0 / period;
        let c = self.config;
        if self.hz_unset {
            self.hz = observed;
            self.hz_unset = false;
        } else {
            if self.error_unset {
                self.error = abs(self.hz - observed);
                self.error_unset = false;
            } else if abs(self.hz - observed) > c.step_change_margin * self.error {
                // A step change: restart from this period alone.
                self.hz = observed;
                self.error_unset = true;
                self.prev = now;
                return true;
            } else {
                self.error = c.error_ema_alpha * abs(self.hz - observed) + (1.0 - c.error_ema_alpha) * self.error;
            }
            self.hz = c.rate_ema_alpha / period + (1.0 - c.rate_ema_alpha) * self.hz;
        }
        self.prev = now;
        true
    }

    /// Whether the channel can be the pivot at `now`: it has a rate and its next message is not overdue by more
    /// than the margin.
    fn can_lead(&self, now: Timestamp) -> bool {
        let period = seconds_between(self.prev, now);
        if period != 0.0 && !self.error_unset {
            let late_by = self.hz - 1.0 / period;
            if late_by > self.config.step_change_margin * self.error {
                return false;
            }
        }
        self.hz > 0.0
    }
}

/// `to - from` in seconds, as ROS's `(now - prev).seconds()` (signed nanoseconds divided by 1e9).
fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (i128::from(to.as_nanos()) - i128::from(from.as_nanos())) as f64 / 1e9
}

/// `|x|` (`f64::abs` is not in `core` on every supported toolchain).
fn abs(x: f64) -> f64 {
    if x < 0.0 { -x } else { x }
}

/// Emits the latest message of every channel whenever the fastest channel that is on time delivers: the ROS 2
/// `message_filters` LatestTime policy (`sync_policies/latest_time.hpp`, release 6.0.6), an up-sampling of the
/// slower channels by zero-order hold, in fixed memory (one message and one rate estimate per channel).
///
/// Rates are estimated from **arrival times** read on the clock `C` (stamps are carried, not used): per channel,
/// an exponential moving average of `1 / period` and of its deviation ([`RateConfig`]); a deviation beyond
/// `step_change_margin` mean errors restarts the estimate. Behaviour, as in ROS 2:
///
/// 1. A channel's first message is only stored (it starts the channel's rate clock).
/// 2. Each later message is stored and updates the channel's rate; if no time passed since the channel's
///    previous message, nothing else happens.
/// 3. Otherwise the **pivot** is chosen: channels in decreasing rate order (lower index first among equal rates),
///    the first that has a rate and is not late (its next message is not overdue by more than the margin). If the
///    arriving channel is the pivot and every channel has a message, the latest message of every channel is
///    emitted. The same message can appear in many sets.
///
/// The clock is injectable because this crate is `no_std`: [`MonotonicClock`] by default, any [`Clock`] (a
/// simulated clock, a closure) with [`with_clock`](Self::with_clock).
///
/// Deliberate difference: ROS keeps the rate estimates in the order channels *first arrive*, but indexes them by
/// channel, so when channels first arrive out of index order, it updates and compares the wrong channels'
/// estimates; here each channel has its own. When channels first arrive in index order, the two agree.
///
/// The output depends on arrival times by design: lowest latency, no matching by stamps. See
/// [`LatestOfEach`](super::LatestOfEach) for a fixed pivot channel.
#[derive(Clone, Debug)]
pub struct LatestTime<T, const K: usize, C = MonotonicClock> {
    latest: [Option<Timed<T>>; K],
    rates: [Rate; K],
    clock: C,
    stats: SyncStats,
}

impl<T: Copy, const K: usize> LatestTime<T, K, MonotonicClock> {
    /// An empty synchroniser on `CLOCK_MONOTONIC` with ROS's rate parameters. `K` must be at least 1.
    pub const fn new() -> Self {
        Self::with_clock(MonotonicClock)
    }
}

impl<T: Copy, const K: usize> Default for LatestTime<T, K, MonotonicClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const K: usize, C: Clock> LatestTime<T, K, C> {
    /// An empty synchroniser measuring rates on `clock`, with ROS's rate parameters. `K` must be at least 1
    /// (checked at compile time).
    pub const fn with_clock(clock: C) -> Self {
        const { assert!(K >= 1, "LatestTime needs K >= 1 channels") };
        Self {
            latest: [None; K],
            rates: [Rate::new(RateConfig::ROS, Timestamp::ZERO); K],
            clock,
            stats: SyncStats::ZERO,
        }
    }

    /// Uses `config` for every channel (ROS `setRateConfig`).
    pub fn with_rate_config(mut self, config: RateConfig) -> Self {
        for r in &mut self.rates {
            r.config = config;
        }
        self
    }

    /// Uses `config` for `channel` (ROS `setRateConfigPerMessage`); an invalid channel is ignored.
    pub fn with_channel_rate_config(mut self, channel: usize, config: RateConfig) -> Self {
        if let Some(r) = self.rates.get_mut(channel) {
            r.config = config;
        }
        self
    }

    /// Counters. `dropped` counts arrivals that emitted nothing.
    pub fn stats(&self) -> SyncStats {
        self.stats
    }

    /// The latest message received on `channel`.
    pub fn latest(&self, channel: usize) -> Option<Timed<T>> {
        self.latest.get(channel).copied().flatten()
    }

    /// The estimated arrival rate of `channel` in Hz (0 until it has one).
    pub fn rate_hz(&self, channel: usize) -> f64 {
        self.rates.get(channel).map_or(0.0, |r| r.hz)
    }

    /// The clock.
    pub fn clock(&mut self) -> &mut C {
        &mut self.clock
    }

    /// Offers a message on `channel`, arriving now on the clock; calls `emit` with the set if this arrival
    /// publishes one. Returns how many sets were emitted (0 or 1). Only an invalid channel is refused.
    pub fn push(
        &mut self,
        channel: usize,
        stamp: Timestamp,
        value: T,
        emit: impl FnOnce(&[Timed<T>; K]),
    ) -> Result<usize, PushError> {
        self.stats.admit(K, channel, stamp, |_| None)?;
        let now = self.clock.now();
        let first = self.latest[channel].is_none();
        self.latest[channel] = Some(Timed { stamp, value });
        if first {
            self.rates[channel] = Rate::new(self.rates[channel].config, now);
            self.stats.dropped += 1;
            return Ok(0);
        }
        let set = if self.rates[channel].update(now) && self.pivot(now) == Some(channel) {
            collect_set::<T, K>(|c| self.latest[c])
        } else {
            None
        };
        match set {
            Some(set) => {
                self.stats.emitted += 1;
                emit(&set);
                Ok(1)
            }
            None => {
                self.stats.dropped += 1;
                Ok(0)
            }
        }
    }

    /// The fastest channel that can lead at `now` (ties to the lowest index), if any.
    fn pivot(&self, now: Timestamp) -> Option<usize> {
        let mut order: [usize; K] = core::array::from_fn(|c| c);
        // Stable insertion sort by decreasing rate.
        for i in 1..K {
            let mut j = i;
            while j > 0 && self.rates[order[j]].hz > self.rates[order[j - 1]].hz {
                order.swap(j, j - 1);
                j -= 1;
            }
        }
        order
            .into_iter()
            .find(|&c| self.latest[c].is_some() && self.rates[c].can_lead(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn publishes_on_the_fastest_channel_with_the_latest_of_the_others() {
        // Channel 0 every 10 ms, channel 1 every 30 ms; the clock is the arrival time.
        let now = core::cell::Cell::new(0u64);
        let mut s = LatestTime::<u64, 2, _>::with_clock(|| Timestamp::from_millis(now.get()));
        let mut out = Vec::new();
        for ms in (0..=120).step_by(10) {
            now.set(ms);
            if ms % 30 == 0 {
                s.push(1, Timestamp::from_millis(ms), ms, |set| {
                    out.push((ms, set.map(|m| m.value)))
                })
                .unwrap();
            }
            now.set(ms + 1);
            s.push(0, Timestamp::from_millis(ms), ms, |set| {
                out.push((ms, set.map(|m| m.value)))
            })
            .unwrap();
        }
        assert!((s.rate_hz(0) - 100.0).abs() < 1e-6 && (s.rate_hz(1) - 33.333).abs() < 0.01);
        // From channel 0's second message on, every channel-0 arrival publishes (ROS's "Leading" case).
        assert_eq!(out.first(), Some(&(10, [10, 0])));
        assert_eq!(out.last(), Some(&(120, [120, 120])));
        assert_eq!(out.len(), 12);
        assert!(out.iter().all(|&(ms, set)| set[0] == ms && set[1] == ms / 30 * 30));
    }
}
