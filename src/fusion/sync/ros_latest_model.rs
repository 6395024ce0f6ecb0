//! Test-only reference model of ROS 2 `message_filters`' LatestTime policy (release 6.0.6,
//! `include/message_filters/sync_policies/latest_time.hpp`), written from that file's logic in its own terms: the
//! latest event per topic, a vector of rate estimates appended in the order topics first arrive and indexed by
//! topic (as ROS does; the differential test keeps first arrivals in topic order, where that is well defined),
//! `compute_hz`'s step-change retry loop, and `find_pivot` over the rates stably sorted by decreasing `hz`. It
//! allocates freely and shares no code with the library's `LatestTime`.

extern crate std;

use std::vec::Vec;

/// ROS's `RateConfig` tuple: `(rate_ema_alpha, error_ema_alpha, rate_step_change_margin_factor)`.
pub(super) type RateTuple = (f64, f64, f64);

/// ROS's `LatestTime::Rate`.
#[derive(Clone, Debug)]
struct RosRate {
    prev: i64,
    hz: f64,
    error: f64,
    rate_ema_alpha: f64,
    error_ema_alpha: f64,
    margin_factor: f64,
    do_hz_init: bool,
    do_error_init: bool,
}

/// `(now - prev).seconds()`: signed nanoseconds as a double, divided by 1e9 (`std::chrono::duration<double>`).
fn seconds(now: i64, prev: i64) -> f64 {
    (now - prev) as f64 / 1e9
}

impl RosRate {
    fn compute_hz(&mut self, now: i64) -> bool {
        loop {
            let period = seconds(now, self.prev);
            if period <= 0.0 {
                return false;
            }
            if self.do_hz_init {
                self.hz = 1.0 / period;
                self.do_hz_init = false;
                break;
            }
            if self.do_error_init {
                self.error = (self.hz - 1.0 / period).abs();
                self.do_error_init = false;
            } else {
                if (self.hz - 1.0 / period).abs() > self.margin_factor * self.error {
                    // Step change: both estimates restart and the same period is measured again.
                    self.do_hz_init = true;
                    self.do_error_init = true;
                    continue;
                }
                self.error =
                    self.error_ema_alpha * (self.hz - 1.0 / period).abs() + (1.0 - self.error_ema_alpha) * self.error;
            }
            self.hz = self.rate_ema_alpha / period + (1.0 - self.rate_ema_alpha) * self.hz;
            break;
        }
        self.prev = now;
        true
    }
}

pub(super) struct RosLatestTime {
    events: Vec<Option<usize>>,
    rates: Vec<RosRate>,
    /// ROS's `rate_configs_`: empty (defaults), one for all, or one per topic.
    configs: Vec<RateTuple>,
}

impl RosLatestTime {
    pub fn new(topics: usize, configs: Vec<RateTuple>) -> Self {
        Self {
            events: std::vec![None; topics],
            rates: Vec::new(),
            configs,
        }
    }

    /// The estimated rate of `topic`'s slot in ROS's rate vector.
    pub fn hz(&self, topic: usize) -> f64 {
        self.rates.get(topic).map_or(0.0, |r| r.hz)
    }

    /// `add<i>(evt)` at clock time `now`: the published set of event identifiers, if any.
    pub fn add(&mut self, i: usize, id: usize, now: i64) -> Option<Vec<usize>> {
        if self.events[i].is_none() {
            let (rate_ema_alpha, error_ema_alpha, margin_factor) = match self.configs.len() {
                n if n == self.events.len() => self.configs[i],
                1 => self.configs[0],
                _ => (0.9, 0.3, 10.0),
            };
            self.rates.push(RosRate {
                prev: now,
                hz: 0.0,
                error: 0.0,
                rate_ema_alpha,
                error_ema_alpha,
                margin_factor,
                do_hz_init: true,
                do_error_init: true,
            });
            self.events[i] = Some(id);
            return None;
        }
        self.events[i] = Some(id);
        let valid_rate = self.rates[i].compute_hz(now);
        if valid_rate && self.find_pivot(now) == Some(i) && self.events.iter().all(Option::is_some) {
            return Some(self.events.iter().map(|e| e.unwrap()).collect());
        }
        None
    }

    fn find_pivot(&self, now: i64) -> Option<usize> {
        let mut sorted: Vec<usize> = (0..self.rates.len()).collect();
        // `std::stable_sort` with `v[i1] > v[i2]`.
        sorted.sort_by(|&a, &b| self.rates[b].hz.partial_cmp(&self.rates[a].hz).unwrap());
        for pivot in sorted {
            let r = &self.rates[pivot];
            let period = seconds(now, r.prev);
            if period == 0.0 {
                if r.hz > 0.0 {
                    return Some(pivot);
                }
                continue;
            }
            if !r.do_error_init && r.hz - 1.0 / period > r.margin_factor * r.error {
                continue;
            }
            if r.hz > 0.0 {
                return Some(pivot);
            }
        }
        None
    }
}
