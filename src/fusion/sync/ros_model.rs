//! Test-only reference model of ROS 2 `message_filters`' ApproximateTime policy (release 6.0.6,
//! `include/message_filters/sync_policies/approximate_time.hpp`), written from the algorithm as that file
//! describes it, in its own terms: per-topic deques of unexamined messages and `past` vectors of messages the
//! search has moved over, a candidate with its pivot, the virtual search over inter-message lower bounds, and the
//! overflow rule that recovers every hidden message and drops the offending topic's oldest. It allocates freely,
//! uses `f64` for the age penalty like ROS (`Duration * double`, truncated toward zero), and shares no code with
//! the library's cursor-based implementation, which the differential property tests compare it with.

extern crate std;

use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

/// A message: its stamp and an identifier to compare outputs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Msg {
    pub stamp: i64,
    pub id: usize,
}

pub(super) struct RosApproximateTime {
    queue_size: usize,
    deques: Vec<VecDeque<Msg>>,
    past: Vec<Vec<Msg>>,
    /// The candidate set, by message, and its pivot topic; `None` when there is no candidate.
    candidate: Option<(Vec<Msg>, usize)>,
    candidate_start: i64,
    candidate_end: i64,
    pivot_time: i64,
    has_dropped: Vec<bool>,
    lower_bounds: Vec<i64>,
    age_penalty: f64,
    max_interval: i64,
    /// Sets emitted, by message identifier.
    pub out: Vec<Vec<usize>>,
    pub dropped: u64,
    pub overflowed: u64,
}

impl RosApproximateTime {
    pub fn new(topics: usize, queue_size: usize, age_penalty: f64, max_interval: Option<i64>, bounds: &[i64]) -> Self {
        Self {
            queue_size,
            deques: vec![VecDeque::new(); topics],
            past: vec![Vec::new(); topics],
            candidate: None,
            candidate_start: 0,
            candidate_end: 0,
            pivot_time: 0,
            has_dropped: vec![false; topics],
            lower_bounds: bounds.to_vec(),
            age_penalty,
            // ROS's default: int32 max seconds plus 999999999 ns.
            max_interval: max_interval.unwrap_or(i64::from(i32::MAX) * 1_000_000_000 + 999_999_999),
            out: Vec::new(),
            dropped: 0,
            overflowed: 0,
        }
    }

    fn topics(&self) -> usize {
        self.deques.len()
    }

    fn all_non_empty(&self) -> bool {
        self.deques.iter().all(|d| !d.is_empty())
    }

    fn penalised(&self, d: i64) -> i64 {
        (d as f64 * (1.0 + self.age_penalty)) as i64
    }

    /// Messages held for `topic` (deque and past).
    pub fn held(&self, topic: usize) -> usize {
        self.deques[topic].len() + self.past[topic].len()
    }

    pub fn add(&mut self, topic: usize, msg: Msg) {
        self.deques[topic].push_back(msg);
        if self.deques[topic].len() == 1 && self.all_non_empty() {
            self.process();
        }
        if self.held(topic) > self.queue_size {
            self.recover_all();
            self.deques[topic].pop_front();
            self.overflowed += 1;
            self.has_dropped[topic] = true;
            if self.candidate.take().is_some() {
                self.process();
            }
        }
    }

    fn recover_all(&mut self) {
        for t in 0..self.topics() {
            while let Some(m) = self.past[t].pop() {
                self.deques[t].push_front(m);
            }
        }
    }

    /// (topic, time) of the earliest head (first topic among ties) and of the latest (last topic among ties).
    fn boundaries(times: &[i64]) -> ((usize, i64), (usize, i64)) {
        let mut start = (0, times[0]);
        let mut end = (0, times[0]);
        for (t, &time) in times.iter().enumerate() {
            if time < start.1 {
                start = (t, time);
            }
            if time >= end.1 {
                end = (t, time);
            }
        }
        (start, end)
    }

    fn move_front_to_past(&mut self, topic: usize) {
        let m = self.deques[topic].pop_front().expect("moving from an empty deque");
        self.past[topic].push(m);
    }

    fn make_candidate(&mut self, pivot: usize) {
        let set = self.deques.iter().map(|d| *d.front().unwrap()).collect();
        self.candidate = Some((set, pivot));
        for p in &mut self.past {
            self.dropped += p.len() as u64;
            p.clear();
        }
    }

    fn publish(&mut self) {
        let (set, _) = self.candidate.take().unwrap();
        self.out.push(set.iter().map(|m| m.id).collect());
        self.recover_all();
        for d in &mut self.deques {
            d.pop_front();
        }
    }

    fn process(&mut self) {
        while self.all_non_empty() {
            let heads: Vec<i64> = self.deques.iter().map(|d| d.front().unwrap().stamp).collect();
            let ((start_topic, start_time), (end_topic, end_time)) = Self::boundaries(&heads);
            for t in 0..self.topics() {
                if t != end_topic {
                    self.has_dropped[t] = false;
                }
            }
            match self.candidate {
                None => {
                    if end_time - start_time > self.max_interval || self.has_dropped[end_topic] {
                        self.deques[start_topic].pop_front();
                        self.dropped += 1;
                        continue;
                    }
                    self.make_candidate(end_topic);
                    self.candidate_start = start_time;
                    self.candidate_end = end_time;
                    self.pivot_time = end_time;
                    self.move_front_to_past(start_topic);
                }
                Some(_) => {
                    if self.penalised(end_time - self.candidate_end) >= start_time - self.candidate_start {
                        self.move_front_to_past(start_topic);
                    } else {
                        let pivot = self.candidate.as_ref().unwrap().1;
                        self.make_candidate(pivot);
                        self.candidate_start = start_time;
                        self.candidate_end = end_time;
                        self.move_front_to_past(start_topic);
                    }
                }
            }
            let pivot = self.candidate.as_ref().unwrap().1;
            if start_topic == pivot
                || self.penalised(end_time - self.candidate_end) >= self.pivot_time - self.candidate_start
            {
                self.publish();
            } else if !self.all_non_empty() {
                let mut moves = vec![0usize; self.topics()];
                loop {
                    let times: Vec<i64> = (0..self.topics())
                        .map(|t| match self.deques[t].front() {
                            Some(m) => m.stamp,
                            None => {
                                let last = self.past[t].last().expect("a candidate topic with no message").stamp;
                                (last + self.lower_bounds[t]).max(self.pivot_time)
                            }
                        })
                        .collect();
                    let ((vs_topic, vs), (_, ve)) = Self::boundaries(&times);
                    if self.penalised(ve - self.candidate_end) >= self.pivot_time - self.candidate_start {
                        self.publish();
                        break;
                    }
                    if self.penalised(ve - self.candidate_end) < vs - self.candidate_start {
                        for (t, &moved) in moves.iter().enumerate() {
                            for _ in 0..moved {
                                let m = self.past[t].pop().unwrap();
                                self.deques[t].push_front(m);
                            }
                        }
                        break;
                    }
                    self.move_front_to_past(vs_topic);
                    moves[vs_topic] += 1;
                }
            }
        }
    }
}
