//! Multi-process sensor fusion over System V shared memory: `cargo run --release --example fusion [-- --seconds N]`.
//!
//! Process topology (one parent, four forked children; every arrow is a shared object, no sockets or pipes):
//!
//! ```text
//!   imu sensor  (1 kHz) ──► BroadcastRing<Stamped<ImuSample>>  ─┬──────────────► fusion (Madgwick AHRS)
//!   mag sensor  (100 Hz) ─► BroadcastRing<Stamped<MagSample>>  ─┘ (interpolated        │
//!   gnss sensor (10 Hz) ──► BroadcastRing<Stamped<GnssFix>> ──┐   at the IMU time)     ▼
//!                                                             └──► monitor ◄── Latest<Attitude>
//!                                                                 (parent)
//! ```
//!
//! - The **parent** creates the four objects with [`Key::PRIVATE`] and [`Lifecycle::RemoveOnLastDetach`]: they
//!   are removed from the namespace right away (`ipcs -m` shows them as `dest`) and the kernel frees them when
//!   the last process detaches, so no segment is left behind even if every process is killed with SIGKILL. (The
//!   default, [`Lifecycle::UntilCreatorGone`], would also remove them when the parent's handles drop, but not if
//!   the parent is SIGKILLed.) It installs a SIGINT/SIGTERM handler that only sets a flag, forks the children,
//!   and becomes the **monitor**: it prints rates, end-to-end latency and attitude error once a second, then a
//!   summary, stops and reaps the children, drops the objects and checks that their segments are gone.
//! - Each **child** opens the objects it needs by segment id ([`sysv::open_id`], which validates the header just
//!   as `sysv::open(key)` does for keyed objects shared with separately started programs), does its job until the
//!   flag is set, and leaves with `_exit` (the handles it inherited from the parent are never dropped in it).
//! - **Sensors** sample a known ground-truth motion ([`sim::Wobble`]) with consumer-MEMS noise
//!   ([`NoiseModel::CONSUMER_MEMS`]) at `CLOCK_MONOTONIC` instants on a fixed grid, and publish stamped samples.
//! - **Fusion** waits (futex) for each IMU sample, aligns the magnetometer to the IMU sample's time (linear
//!   interpolation between the two magnetometer samples around it, or the newest one if it is not bracketed
//!   yet), runs one Madgwick update, and writes the attitude with the IMU sample's timestamp to a latest-value
//!   slot.
//! - The **monitor** waits on that slot; latency is "IMU sample stamped → its fused attitude read by the monitor",
//!   and the error is the angle between the fused attitude and the ground truth at the IMU sample's time.
//!
//! With `--imu-key K --attitude-key A [--seconds N]` it runs only the fusion stage, between separately started
//! programs in any language: it opens the IMU broadcast ring a C driver created under SysV key `K` (512 samples
//! of `Stamped<ImuSample>`, type name `shmfusion.StampedImu`: capi/examples/imu_driver.c), creates a latest slot
//! of `Stamped<Quaternion>` under key `A` (`shmfusion.StampedQuaternion`, read by capi/zig/attitude.zig), fuses
//! each IMU sample (Madgwick, no magnetometer: heading from the gyroscope) and stops when the driver closes its
//! ring (or after `N` s, or on SIGINT/SIGTERM); the slot is removed when it exits. See README "C and Zig".

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shmfusion::buffer::{BroadcastRing, Error as BufferError, Latest};
use shmfusion::fusion::sim::{self, Environment, NoiseModel, SensorSim, Trajectory};
use shmfusion::fusion::{
    GnssFix, ImuSample, Madgwick, MagSample, Payload, Quaternion, ReadError, SampleHeader, SliceSeries, Stamped,
    TimeSeriesExt, Timestamp,
};
use shmfusion::object::{Lifecycle, ObjectOptions, SharedState, sysv};
use shmfusion::shm::{Key, ShmId};

const IMU_HZ: u64 = 1000;
const MAG_HZ: u64 = 100;
const GNSS_HZ: u64 = 10;
/// Channel ids in the sample headers.
const IMU: u32 = 0;
const MAG: u32 = 1;
const GNSS: u32 = 2;

/// The pass/fail bound on the RMS attitude error after convergence.
const RMS_BOUND_DEG: f64 = 2.0;
/// Samples from the first second are excluded from the RMS (convergence).
const WARMUP_S: f64 = 1.0;

type ImuRing = BroadcastRing<Stamped<ImuSample>, 512>;
type MagRing = BroadcastRing<Stamped<MagSample>, 64>;
type GnssRing = BroadcastRing<Stamped<GnssFix>, 16>;
type AttitudeSlot = Latest<Attitude>;

/// What the fusion process publishes (64 bytes, no padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Attitude {
    /// Body to NWU earth.
    q: Quaternion,
    /// The stamp of the IMU sample this estimate is for.
    imu_stamp: Timestamp,
    /// The IMU sample's sequence number.
    imu_seq: u64,
    /// Samples the fusion process missed because its ring reader was lapped.
    imu_lagged: u64,
    mag_lagged: u64,
    /// Updates whose magnetometer value was interpolated at the IMU time (the others held the newest sample).
    mag_interpolated: u64,
    /// Filter updates so far.
    updates: u64,
}

/// The ground truth: gentle roll and pitch oscillations while the heading turns.
const MOTION: sim::Wobble = sim::Wobble {
    roll_amplitude: 0.35,
    roll_frequency: 0.2,
    pitch_amplitude: 0.25,
    pitch_frequency: 0.13,
    yaw_rate: 0.3,
    initial_yaw: 1.0,
};

/// Set by SIGINT/SIGTERM; every loop in every process checks it.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic (async-signal-safe). No
        // SA_RESTART, so sleeps return early on a signal.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Sleeps until `CLOCK_MONOTONIC` reaches `ns` (or a stop is requested).
fn sleep_until(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec; no remaining-time output with TIMER_ABSTIME.
    while !stopping()
        && unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) }
            == libc::EINTR
    {}
}

/// Seconds since the run's time origin.
fn secs_since(t0: Timestamp, t: Timestamp) -> f64 {
    t.saturating_duration_since(t0).as_secs_f64()
}

/// The segment ids of the run's objects (what a child needs to open them).
#[derive(Clone, Copy)]
struct Ids {
    imu: ShmId,
    mag: ShmId,
    gnss: ShmId,
    attitude: ShmId,
}

fn open<S: SharedState>(id: ShmId) -> sysv::SysvShared<S> {
    sysv::open_id::<S>(id, &ObjectOptions::new()).unwrap_or_else(|e| panic!("open segment {}: {e}", id.as_raw()))
}

/// Forks a child running `role`; the child never returns from here. Children die with the parent
/// (`PR_SET_PDEATHSIG`), so a SIGKILLed parent leaves no orphan publishing into freed segments.
fn spawn(role: impl FnOnce() -> i32) -> libc::pid_t {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: the process is single-threaded at this point; the child only runs `role` and `_exit`s.
    let parent = unsafe { libc::getpid() };
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            // SAFETY: plain syscalls; `_exit` skips destructors, so the parent's inherited handles (which would
            // remove the segments on drop) are left alone.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // Wake up on time (the default 50 µs timer slack would add to every sample's latency).
                libc::prctl(libc::PR_SET_TIMERSLACK, 1);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                let code = catch_unwind(AssertUnwindSafe(role)).unwrap_or(101);
                libc::_exit(code)
            }
        }
        pid => pid,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Sensor processes

/// Publishes `measure(t)` on `ring` for the instants `t0 + k / hz` until stopped.
///
/// Like a sensor with a hardware clock and a FIFO, each sample is stamped with the instant it was measured (on
/// the grid), and published as soon as this process runs; if the process was not scheduled for a while, the
/// samples it owes are published late, back to back (at most `N / 2`: beyond that, the rest are dropped).
fn run_sensor<T: Payload, const N: usize>(
    ring: &BroadcastRing<Stamped<T>, N>,
    channel: u32,
    hz: u64,
    t0: Timestamp,
    mut measure: impl FnMut(f64) -> T,
) -> i32
where
    Stamped<T>: shmfusion::Shareable,
{
    let mut writer = match ring.writer() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("sensor {channel}: {e}");
            return 1;
        }
    };
    let period = 1_000_000_000 / hz;
    let mut next = t0.as_nanos();
    let mut seq = 0;
    while !stopping() {
        sleep_until(next);
        let now = Timestamp::now().as_nanos();
        let max_backlog = (N as u64 / 2) * period;
        if now > next + max_backlog {
            next += (now - next - max_backlog).div_ceil(period) * period;
        }
        while next <= now && !stopping() {
            let stamp = Timestamp::from_nanos(next);
            let header = SampleHeader {
                stamp,
                seq,
                channel,
                flags: 0,
            };
            writer.publish_one(&Stamped::new(header, measure(secs_since(t0, stamp))));
            seq += 1;
            next += period;
        }
    }
    0
}

fn imu_process(id: ShmId, t0: Timestamp) -> i32 {
    let ring = open::<ImuRing>(id);
    let mut sim = SensorSim::new(MOTION, Environment::default(), NoiseModel::CONSUMER_MEMS, 1);
    run_sensor(ring.get(), IMU, IMU_HZ, t0, |t| sim.imu(t))
}

fn mag_process(id: ShmId, t0: Timestamp) -> i32 {
    let ring = open::<MagRing>(id);
    let mut sim = SensorSim::new(MOTION, Environment::default(), NoiseModel::CONSUMER_MEMS, 2);
    run_sensor(ring.get(), MAG, MAG_HZ, t0, |t| sim.mag(t))
}

fn gnss_process(id: ShmId, t0: Timestamp) -> i32 {
    let ring = open::<GnssRing>(id);
    let mut sim = SensorSim::new(MOTION, Environment::default(), NoiseModel::CONSUMER_MEMS, 3);
    run_sensor(ring.get(), GNSS, GNSS_HZ, t0, |t| sim.gnss(t))
}

// ---------------------------------------------------------------------------------------------------------------
// Fusion process

/// The last few magnetometer samples, oldest first, for time-indexed reads.
struct MagHistory {
    samples: [(Timestamp, MagSample); 8],
    len: usize,
}

impl MagHistory {
    fn push(&mut self, s: &Stamped<MagSample>) {
        if self.len == self.samples.len() {
            self.samples.copy_within(1.., 0);
            self.len -= 1;
        }
        self.samples[self.len] = (s.stamp(), s.payload);
        self.len += 1;
    }

    /// The field at `t`, and whether it was interpolated (otherwise the nearest edge sample is held).
    fn at(&self, t: Timestamp) -> Option<(MagSample, bool)> {
        let history = &self.samples[..self.len];
        match SliceSeries::new(0, history).interpolate_at(t) {
            Ok(m) => Some((m, true)),
            Err(ReadError::ExtrapolationFuture { .. }) => history.last().map(|s| (s.1, false)),
            Err(ReadError::ExtrapolationPast { .. }) => history.first().map(|s| (s.1, false)),
            Err(_) => None,
        }
    }
}

fn fusion_process(ids: Ids) -> i32 {
    let (imu, mag, out) = (
        open::<ImuRing>(ids.imu),
        open::<MagRing>(ids.mag),
        open::<AttitudeSlot>(ids.attitude),
    );
    let mut writer = match out.get().writer() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("fusion: {e}");
            return 1;
        }
    };
    let mut imu_rx = imu.get().reader_from_oldest();
    let mut mag_rx = mag.get().reader_from_oldest();
    let mut mags = MagHistory {
        samples: [(Timestamp::ZERO, MagSample::default()); 8],
        len: 0,
    };
    let mut filter: Option<Madgwick> = None;
    let mut last_stamp = Timestamp::ZERO;
    let mut out_value = Attitude {
        q: Quaternion::IDENTITY,
        imu_stamp: Timestamp::ZERO,
        imu_seq: 0,
        imu_lagged: 0,
        mag_lagged: 0,
        mag_interpolated: 0,
        updates: 0,
    };
    while !stopping() {
        let imu_sample = match imu_rx.recv_wait(Some(Duration::from_millis(50))) {
            Ok((s, _)) => s,
            Err(BufferError::Lagged(n)) => {
                out_value.imu_lagged += n;
                continue;
            }
            Err(BufferError::Timeout | BufferError::WriterGone) => continue,
            // The IMU process released its end: it only does that when asked to stop, so we stop too.
            Err(BufferError::Closed) => break,
            Err(e) => {
                eprintln!("fusion: imu ring: {e}");
                return 1;
            }
        };
        // Take in every magnetometer sample published so far.
        loop {
            match mag_rx.try_recv() {
                Ok((m, _)) => mags.push(&m),
                Err(BufferError::Lagged(n)) => out_value.mag_lagged += n,
                Err(_) => break,
            }
        }
        let stamp = imu_sample.stamp();
        let Some((m, interpolated)) = mags.at(stamp) else {
            continue; // no magnetometer sample yet
        };
        let ImuSample { accel, gyro } = imu_sample.payload;
        let f = match &mut filter {
            Some(f) => f,
            None => match Madgwick::from_accel_mag(accel, m.field, Madgwick::DEFAULT_BETA) {
                Some(f) => filter.insert(f),
                None => continue,
            },
        };
        let dt = if last_stamp == Timestamp::ZERO {
            1.0 / IMU_HZ as f32
        } else {
            stamp.saturating_duration_since(last_stamp).as_secs_f32()
        };
        last_stamp = stamp;
        if let Ok(q) = f.update(gyro, accel, m.field, dt) {
            out_value.q = q;
            out_value.imu_stamp = stamp;
            out_value.imu_seq = imu_sample.header.seq;
            out_value.mag_interpolated += u64::from(interpolated);
            out_value.updates += 1;
            writer.write(&out_value);
        }
    }
    0
}

// ---------------------------------------------------------------------------------------------------------------
// Monitor (the parent)

/// Published-sample counters at one instant, for rates.
#[derive(Clone, Copy)]
struct Counts {
    at: Timestamp,
    imu: u64,
    mag: u64,
    gnss: u64,
    fused: u64,
}

/// What the monitor measured.
#[derive(Default)]
struct Stats {
    /// End-to-end latencies (µs) of every attitude the monitor saw.
    latency_us: Vec<u32>,
    /// Attitude errors (degrees) with the sample's time since the start.
    errors: Vec<(f64, f64)>,
    gnss_fixes: u64,
    gnss_lagged: u64,
    last_fix: GnssFix,
    last: Option<Attitude>,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rms(errors: &[(f64, f64)], after: f64) -> (f64, f64, usize) {
    let kept: Vec<f64> = errors.iter().filter(|e| e.0 >= after).map(|e| e.1).collect();
    if kept.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    let rms = (kept.iter().map(|e| e * e).sum::<f64>() / kept.len() as f64).sqrt();
    (rms, kept.iter().cloned().fold(0.0, f64::max), kept.len())
}

struct Monitor<'a> {
    imu: &'a ImuRing,
    mag: &'a MagRing,
    gnss: &'a GnssRing,
    attitude: &'a AttitudeSlot,
    t0: Timestamp,
}

impl Monitor<'_> {
    fn counts(&self) -> Counts {
        Counts {
            at: Timestamp::now(),
            imu: self.imu.tail(),
            mag: self.mag.tail(),
            gnss: self.gnss.tail(),
            fused: self.attitude.sequence(),
        }
    }

    /// Runs for `seconds` (or until a stop is requested or a child dies), printing a status line per second.
    fn run(&self, seconds: f64, children: &[(&str, libc::pid_t)]) -> Result<Stats, String> {
        let mut stats = Stats::default();
        let mut gnss_rx = self.gnss.reader();
        let mut seen = 0;
        let mut window = (self.counts(), 0usize, 0usize); // counters, latency index, error index
        println!(
            "{:>4} | {:>5} {:>4} {:>4} {:>5} Hz | latency µs {:>5} {:>5} {:>6} | error ° {:>5} {:>5} | lagged imu mag gnss",
            "t s", "imu", "mag", "gnss", "fused", "p50", "p99", "max", "now", "rms"
        );
        loop {
            let elapsed = secs_since(self.t0, Timestamp::now());
            let ending = stopping() || elapsed >= seconds;
            let c = self.counts();
            let window_s = secs_since(window.0.at, c.at);
            if window_s >= 1.0 || (ending && window_s >= 0.5) {
                if let Some(dead) = dead_child(children) {
                    return Err(dead);
                }
                self.status(elapsed, &window.0, &c, &stats, window.1, window.2);
                window = (c, stats.latency_us.len(), stats.errors.len());
            }
            if ending {
                break;
            }
            match self.attitude.wait_newer(seen, Some(Duration::from_millis(20))) {
                Ok((a, seq)) => {
                    let read_at = Timestamp::now();
                    let latency = read_at.saturating_duration_since(a.imu_stamp).as_micros();
                    stats.latency_us.push(latency.min(u128::from(u32::MAX)) as u32);
                    let t = secs_since(self.t0, a.imu_stamp);
                    let error = f64::from(a.q.angle_to(MOTION.attitude(t)).to_degrees());
                    stats.errors.push((t, error));
                    stats.last = Some(a);
                    seen = seq;
                }
                Err(BufferError::Timeout | BufferError::Empty) => {}
                Err(BufferError::WriterGone) => return Err("the fusion process is gone".into()),
                // The fusion process left cleanly, which it does only on a stop request (as in `dead_child`).
                Err(BufferError::Closed) => STOP.store(true, Ordering::Relaxed),
                Err(e) => return Err(format!("attitude slot: {e}")),
            }
            loop {
                match gnss_rx.try_recv() {
                    Ok((fix, _)) => {
                        stats.gnss_fixes += 1;
                        stats.last_fix = fix.payload;
                    }
                    Err(BufferError::Lagged(n)) => stats.gnss_lagged += n,
                    Err(_) => break,
                }
            }
        }
        Ok(stats)
    }

    fn status(&self, elapsed: f64, from: &Counts, to: &Counts, stats: &Stats, lat_from: usize, err_from: usize) {
        let dt = secs_since(from.at, to.at);
        let rate = |a: u64, b: u64| (b - a) as f64 / dt;
        let mut lat = stats.latency_us[lat_from..].to_vec();
        lat.sort_unstable();
        let (window_rms, _, _) = rms(&stats.errors[err_from..], 0.0);
        let now_err = stats.errors.last().map_or(f64::NAN, |e| e.1);
        let (imu_lagged, mag_lagged) = stats.last.map_or((0, 0), |a| (a.imu_lagged, a.mag_lagged));
        println!(
            "{:>4.1} | {:>5.0} {:>4.0} {:>4.0} {:>5.0}    |            {:>5} {:>5} {:>6} |         {:>5.2} {:>5.2} |        {:>3} {:>3} {:>4}",
            elapsed,
            rate(from.imu, to.imu),
            rate(from.mag, to.mag),
            rate(from.gnss, to.gnss),
            rate(from.fused, to.fused),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0),
            now_err,
            window_rms,
            imu_lagged,
            mag_lagged,
            stats.gnss_lagged,
        );
    }
}

/// `Some(description)` if a child has died. A child that exited cleanly saw a stop request (a Ctrl-C reaches
/// the whole process group, and may reach a child first): then the monitor stops too.
fn dead_child(children: &[(&str, libc::pid_t)]) -> Option<String> {
    for &(name, pid) in children {
        let mut status = 0;
        // SAFETY: plain syscall on our own child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                STOP.store(true, Ordering::Relaxed);
                return None;
            }
            return Some(format!("the {name} process died (wait status {status:#x})"));
        }
    }
    None
}

/// Asks every child to stop (SIGTERM: they finish their loop), waits up to a second, then SIGKILLs the rest; all
/// are reaped. Children that already died (and were reaped by `dead_child`) are skipped by `waitpid` failing.
fn stop_children(children: &[(&str, libc::pid_t)]) {
    for &(_, pid) in children {
        // SAFETY: plain syscall on our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Timestamp::now().saturating_add(Duration::from_secs(1));
    for &(name, pid) in children {
        loop {
            let mut status = 0;
            // SAFETY: plain syscalls on our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid || r == -1 {
                if r == pid && !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                    eprintln!("note: the {name} process ended with status {status:#x}");
                }
                break;
            }
            if Timestamp::now() > deadline {
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                eprintln!("note: the {name} process had to be killed");
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// What to run: the self-contained demo, or fusion alone between an external IMU driver and external readers.
enum Mode {
    Demo {
        seconds: f64,
    },
    External {
        imu_key: i32,
        attitude_key: i32,
        seconds: f64,
    },
}

fn parse_args() -> Mode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut seconds, mut imu_key, mut attitude_key) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--seconds" => match value.parse::<f64>() {
                Ok(s) if s > 0.0 && s.is_finite() => seconds = Some(s),
                _ => usage(),
            },
            "--imu-key" => imu_key = Some(parse_key(value)),
            "--attitude-key" => attitude_key = Some(parse_key(value)),
            _ => usage(),
        }
    }
    match (imu_key, attitude_key) {
        (None, None) => Mode::Demo {
            seconds: seconds.unwrap_or(5.0),
        },
        (Some(imu_key), Some(attitude_key)) => Mode::External {
            imu_key,
            attitude_key,
            seconds: seconds.unwrap_or(f64::INFINITY),
        },
        _ => usage(),
    }
}

/// A System V key, decimal or `0x` hexadecimal.
fn parse_key(text: &str) -> i32 {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).map(|k| k as i32),
        None => text.parse::<i32>(),
    };
    parsed.unwrap_or_else(|_| usage())
}

fn usage() -> ! {
    eprintln!(
        "usage: fusion [--seconds N]                                  the whole demo (default 5 s)\n       \
         fusion --imu-key K --attitude-key A [--seconds N]  fuse an external IMU ring (K) into a latest slot (A)"
    );
    std::process::exit(2)
}

// ---------------------------------------------------------------------------------------------------------------
// Fusion between separately started programs (the C IMU driver, capi/examples/imu_driver.c, and the Zig attitude
// reader, capi/zig/attitude.zig)

/// The ring the C driver creates: `sf_desc_sample(SF_KIND_BROADCAST, SF_SAMPLE_IMU, 512)`.
type ExternalImuRing = BroadcastRing<Stamped<ImuSample>, 512>;
/// What other programs read: `sf_desc_sample(SF_KIND_LATEST, SF_SAMPLE_QUATERNION, 1)`.
type ExternalAttitude = Latest<Stamped<Quaternion>>;

/// Opens the IMU ring under `imu_key`, creates the attitude slot under `attitude_key` (removed when this process
/// ends), says `ready`, and fuses every IMU sample (Madgwick without magnetometer: heading from the gyroscope)
/// into a stamped quaternion carrying the IMU sample's stamp and sequence number, until the driver closes its
/// ring, `seconds` pass, or a signal asks to stop.
fn run_external(imu_key: i32, attitude_key: i32, seconds: f64) -> Result<(), String> {
    let imu = sysv::open::<ExternalImuRing>(
        Key::from_raw(imu_key),
        &ObjectOptions::new().type_name("shmfusion.StampedImu"),
    )
    .map_err(|e| format!("open the IMU ring (key {imu_key:#x}): {e}"))?;
    let attitude = sysv::create::<ExternalAttitude>(
        Key::from_raw(attitude_key),
        &ObjectOptions::new().type_name("shmfusion.StampedQuaternion"),
    )
    .map_err(|e| format!("create the attitude slot (key {attitude_key:#x}): {e}"))?;
    let mut writer = attitude.get().writer().map_err(|e| format!("attitude writer: {e}"))?;
    let mut reader = imu.get().reader_from_oldest();
    println!("ready: fusing IMU key {imu_key:#x} into attitude key {attitude_key:#x}");
    let mut filter = Madgwick::new(Madgwick::DEFAULT_BETA);
    let (mut last_stamp, mut fused, mut lagged) = (None::<Timestamp>, 0u64, 0u64);
    let end = Timestamp::now().saturating_add(Duration::from_secs_f64(seconds.min(1e9)));
    let outcome = loop {
        if stopping() || Timestamp::now() >= end {
            break Ok("stopped");
        }
        let sample = match reader.recv_wait(Some(Duration::from_millis(50))) {
            Ok((s, _)) => s,
            Err(BufferError::Lagged(n)) => {
                lagged += n;
                continue;
            }
            Err(BufferError::Timeout) => continue,
            Err(BufferError::Closed) => break Ok("the IMU driver closed its ring"),
            Err(BufferError::WriterGone) => break Err("the IMU driver died".to_string()),
            Err(e) => break Err(format!("IMU ring: {e}")),
        };
        let stamp = sample.stamp();
        let dt = last_stamp.map_or(1.0 / IMU_HZ as f32, |last| {
            stamp.saturating_duration_since(last).as_secs_f32()
        });
        last_stamp = Some(stamp);
        let ImuSample { accel, gyro } = sample.payload;
        if let Ok(q) = filter.update_imu(gyro, accel, dt) {
            writer.write(&Stamped::new(sample.header, q));
            fused += 1;
        }
    };
    println!(
        "fused {fused} IMU samples ({lagged} missed); {}",
        outcome.as_deref().unwrap_or("stopped on an error")
    );
    outcome.map(drop)
}

/// The whole run; the objects are dropped (and their segments removed) when it returns. Returns the RMS attitude
/// error after convergence (NaN if none), whether the run was interrupted, and the segment ids.
fn run(seconds: f64) -> Result<(f64, bool, Ids), String> {
    let options = ObjectOptions::new().lifecycle(Lifecycle::RemoveOnLastDetach);
    let create_err = |e| format!("create object: {e}");
    let imu = sysv::create::<ImuRing>(Key::PRIVATE, &options).map_err(create_err)?;
    let mag = sysv::create::<MagRing>(Key::PRIVATE, &options).map_err(create_err)?;
    let gnss = sysv::create::<GnssRing>(Key::PRIVATE, &options).map_err(create_err)?;
    let attitude = sysv::create::<AttitudeSlot>(Key::PRIVATE, &options).map_err(create_err)?;
    let ids = Ids {
        imu: imu.region().id(),
        mag: mag.region().id(),
        gnss: gnss.region().id(),
        attitude: attitude.region().id(),
    };
    println!(
        "shmfusion demo: IMU {IMU_HZ} Hz, magnetometer {MAG_HZ} Hz, GNSS {GNSS_HZ} Hz -> Madgwick fusion -> monitor, \
         {seconds} s"
    );
    println!(
        "segments (SysV, private, freed on last detach): imu {} mag {} gnss {} attitude {}",
        ids.imu.as_raw(),
        ids.mag.as_raw(),
        ids.gnss.as_raw(),
        ids.attitude.as_raw()
    );

    // A common time origin, a little ahead so that every child is up before the first sample.
    let t0 = Timestamp::now().saturating_add(Duration::from_millis(50));
    let children = [
        ("fusion", spawn(|| fusion_process(ids))),
        ("imu", spawn(|| imu_process(ids.imu, t0))),
        ("mag", spawn(|| mag_process(ids.mag, t0))),
        ("gnss", spawn(|| gnss_process(ids.gnss, t0))),
    ];
    sleep_until(t0.as_nanos());

    let monitor = Monitor {
        imu: imu.get(),
        mag: mag.get(),
        gnss: gnss.get(),
        attitude: attitude.get(),
        t0,
    };
    let result = monitor.run(seconds, &children);
    let end = monitor.counts();
    let interrupted = stopping();
    stop_children(&children);
    let stats = result?;
    let duration = secs_since(t0, end.at);
    if interrupted {
        println!("interrupted after {duration:.1} s");
    }

    let last = stats.last.ok_or("no fused attitude was published")?;
    let (imu_n, mag_n, gnss_n) = (end.imu, end.mag, end.gnss);
    println!(
        "summary over {duration:.1} s: published imu {imu_n} ({:.0} Hz), mag {mag_n} ({:.0} Hz), gnss {gnss_n} \
         ({:.0} Hz); fused {} ({} with the magnetometer interpolated, the rest holding the newest sample); \
         monitor saw {}",
        imu_n as f64 / duration,
        mag_n as f64 / duration,
        gnss_n as f64 / duration,
        end.fused,
        last.mag_interpolated,
        stats.latency_us.len()
    );
    let mut lat = stats.latency_us.clone();
    lat.sort_unstable();
    println!(
        "latency (IMU stamp -> fused attitude read by the monitor): p50 {} µs, p99 {} µs, max {} µs",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0)
    );
    println!(
        "lagged samples: fusion imu {}, fusion mag {}, monitor gnss {}; last GNSS fix {:.6}° {:.6}° {:.1} m ({} fixes read)",
        last.imu_lagged,
        last.mag_lagged,
        stats.gnss_lagged,
        stats.last_fix.latitude_deg,
        stats.last_fix.longitude_deg,
        stats.last_fix.altitude_m,
        stats.gnss_fixes
    );
    let warmup = WARMUP_S.min(duration / 2.0);
    let (rms_deg, max_deg, n) = rms(&stats.errors, warmup);
    println!(
        "attitude error vs ground truth after {warmup:.1} s: RMS {rms_deg:.2}°, max {max_deg:.2}° ({n} estimates)"
    );
    Ok((if n > 0 { rms_deg } else { f64::NAN }, interrupted, ids))
}

fn main() {
    let mode = parse_args();
    install_signal_handlers();
    let seconds = match mode {
        Mode::Demo { seconds } => seconds,
        Mode::External {
            imu_key,
            attitude_key,
            seconds,
        } => {
            if let Err(e) = run_external(imu_key, attitude_key, seconds) {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
            return;
        }
    };
    let (rms_deg, interrupted, ids) = match run(seconds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    // The objects are dropped: their segments must be gone.
    let left: Vec<i32> = [ids.imu, ids.mag, ids.gnss, ids.attitude]
        .iter()
        .filter(|id| id.stat().is_ok())
        .map(|id| id.as_raw())
        .collect();
    if left.is_empty() {
        println!("shared memory: all 4 segments removed");
    } else {
        println!("shared memory: segments {left:?} still exist");
    }
    let pass = rms_deg < RMS_BOUND_DEG && left.is_empty();
    println!(
        "attitude RMS error {rms_deg:.2}° {} {RMS_BOUND_DEG}°, no segment left: {}",
        if rms_deg < RMS_BOUND_DEG { "<" } else { ">=" },
        if pass { "PASS" } else { "FAIL" }
    );
    std::process::exit(match (interrupted, pass) {
        (true, _) => 130,
        (false, true) => 0,
        (false, false) => 1,
    });
}
