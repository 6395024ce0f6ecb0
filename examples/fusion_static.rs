//! `shmfusion-fusion`: the multi-process sensor-fusion scenario as a static, libc-free program, run natively,
//! under qemu-user and as `/init` on real kernels under qemu-system.
//!
//! Process topology (the parent forks three children; every arrow is a shared object in System V shared
//! memory, no sockets or pipes):
//!
//! ```text
//!   imu sensor (200 Hz) ──► BroadcastRing<Stamped<ImuSample>> ──┬─► fusion (Madgwick) ──► Latest<Attitude>
//!   mag sensor  (20 Hz) ──► BroadcastRing<Stamped<MagSample>> ──┘   (magnetometer read       │
//!                                                                    at the IMU time)         ▼
//!                                                          parent: monitor + checks ◄────────┘
//! ```
//!
//! - The **parent** creates the objects with [`Key::PRIVATE`] and [`Lifecycle::RemoveOnLastDetach`] (removed
//!   from the namespace at once, freed by the kernel at the last detach, even if every process is SIGKILLed),
//!   plus a small control block (stop flag, per-child "started" flags). It forks the children, which re-open
//!   every object by segment id ([`sysv::open_id`]: the header is validated again), then monitors the attitude
//!   slot for a few seconds (`--seconds N`, default 3), comparing each attitude it reads with the ground truth at
//!   that attitude's IMU stamp.
//! - The **sensors** sample a known motion ([`sim::Wobble`]) with consumer-MEMS noise at `CLOCK_MONOTONIC`
//!   instants on a fixed grid (paced by `clock_nanosleep(TIMER_ABSTIME)`). A sensor that was not scheduled for a
//!   while (a slow emulated CPU) publishes the samples it owes back to back, up to half its ring; older ones are
//!   dropped, as a sensor FIFO would.
//! - The **fusion** process waits (futex) for each IMU sample, reads the magnetometer at that sample's time from
//!   the shared ring itself (validated binary search: interpolated when bracketed, else the newest sample held),
//!   runs one Madgwick update and publishes attitude + IMU stamp + counters. If it falls more than a ring behind,
//!   the missed samples are counted (`Lagged`) and it carries on.
//! - At the end the parent raises the stop flag, reaps every child (SIGTERM, then SIGKILL, for one that does not
//!   leave in time), drops its handles and checks that every segment is gone. It prints `ok <name>` or
//!   `FAIL <name>: <detail>` per check and ends with exactly `shmfusion-fusion: N passed, M failed`, exiting 0
//!   iff all passed (powering off instead when it runs as pid 1).
//!
//! Build it like the self-test (see `examples/selftest.rs`):
//!
//! ```text
//! RUSTFLAGS="-C linker=rust-lld -C linker-flavor=ld.lld -C relocation-model=static \
//!     -C target-feature=+crt-static -C link-self-contained=no" \
//!     cargo build --example fusion_static --features rt --profile static --target aarch64-unknown-linux-gnu
//! ```
//!
//! Without `crt-static` the example compiles to a hosted stub that says how to build it and exits with status 2.
#![cfg_attr(target_feature = "crt-static", no_std, no_main)]

#[cfg(target_feature = "crt-static")]
mod fusion_static {
    use core::num::NonZeroU64;
    use core::sync::atomic::{AtomicU32, Ordering};
    use core::time::Duration;

    use rustix::process::{Pid, Signal, WaitOptions, getpid, getppid, kill_process, waitpid};
    use rustix::thread::{clock_nanosleep_absolute, set_current_timer_slack};
    use rustix::time::{ClockId, Timespec};
    use shmfusion::buffer::{BroadcastRing, Error as BufferError, Latest};
    use shmfusion::fusion::sim::{self, Environment, NoiseModel, SensorSim, Trajectory};
    use shmfusion::fusion::{
        ImuSample, Madgwick, MagSample, Payload, Quaternion, ReadError, SampleHeader, Stamped, TimeSeriesExt, Timestamp,
    };
    use shmfusion::object::{Lifecycle, ObjectOptions, SharedState, sysv};
    use shmfusion::rt::check::Checks;
    use shmfusion::rt::{self, Args};
    use shmfusion::shm::{Key, ShmId};

    rt::entry!(main);

    const PROGRAM: &str = "shmfusion-fusion";
    const IMU_HZ: u64 = 200;
    const MAG_HZ: u64 = 20;
    const IMU: u32 = 0;
    const MAG: u32 = 1;
    const DEFAULT_SECONDS: u64 = 3;
    /// The pass/fail bound on the RMS attitude error after convergence.
    const RMS_BOUND_DEG: f64 = 3.0;
    /// Estimates from the first second are excluded from the RMS (convergence from the accel/mag attitude).
    const WARMUP_S: f64 = 1.0;
    /// At least this many estimates after the warm-up: a monitor starved by a slow emulated CPU reads few of
    /// them, so the run is extended (up to [`MAX_EXTENSION`] times its length) until it has them.
    const MIN_ESTIMATES: u64 = 10;
    const MAX_EXTENSION: u64 = 4;
    /// Published rates must be within this band of the nominal ones (loose: emulation can starve a sensor).
    const RATE_BAND: (f64, f64) = (0.5, 1.1);
    /// The fusion process must fuse at least this fraction of the nominal IMU rate.
    const MIN_FUSED_FRACTION: f64 = 0.25;
    /// A longer gap between consecutive IMU samples restarts the filter (see [`Attitude::gap_resets`]).
    const MAX_GAP: Duration = Duration::from_millis(100);
    /// A magnetometer sample further than this from the IMU time is not used: the update is IMU-only.
    const MAG_MAX_AGE: Duration = Duration::from_millis(3 * 1000 / MAG_HZ);
    /// The time origin is this far ahead of the fork, so that every child is up before the first sample (forking
    /// and attaching is slow on an emulated CPU).
    const LEAD: Duration = Duration::from_millis(300);
    /// How long the children get to leave after the stop flag before SIGTERM, and after SIGTERM before SIGKILL.
    const STOP_GRACE: Duration = Duration::from_secs(3);
    const TERM_GRACE: Duration = Duration::from_secs(1);

    /// 2.56 s of IMU history, 3.2 s of magnetometer history: a sensor process stalled (by a slow emulated CPU)
    /// for up to half of that still publishes every sample it owes.
    type ImuRing = BroadcastRing<Stamped<ImuSample>, 512>;
    type MagRing = BroadcastRing<Stamped<MagSample>, 64>;
    type AttitudeSlot = Latest<Attitude>;

    /// The ground truth: gentle roll and pitch oscillations while the heading turns (as in `examples/fusion.rs`).
    const MOTION: sim::Wobble = sim::Wobble {
        roll_amplitude: 0.35,
        roll_frequency: 0.2,
        pitch_amplitude: 0.25,
        pitch_frequency: 0.13,
        yaw_rate: 0.3,
        initial_yaw: 1.0,
    };

    /// What the fusion process publishes (80 bytes, no padding).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
    struct Attitude {
        /// Body to NWU earth.
        q: Quaternion,
        /// The stamp of the IMU sample this estimate is for.
        imu_stamp: Timestamp,
        /// Filter updates so far.
        updates: u64,
        /// IMU samples missed because the fusion process was lapped by the sensor (`Lagged`).
        imu_lagged: u64,
        /// Updates whose magnetometer value was interpolated at the IMU time.
        mag_interpolated: u64,
        /// Updates that held the newest (or oldest) magnetometer sample instead.
        mag_held: u64,
        /// IMU-only updates: the nearest magnetometer sample was too far from the IMU time (or missing).
        mag_stale: u64,
        /// IMU samples skipped: no magnetometer sample yet, or the magnetometer read failed.
        skipped: u64,
        /// Filter restarts from the accelerometer and magnetometer after a gap of more than [`MAX_GAP`] in the
        /// IMU stamps (samples dropped by a starved sensor, or missed by a lapped fusion process): integrating
        /// one gyroscope sample over the whole gap would throw the attitude off.
        gap_resets: u64,
    }

    /// Children, by index into [`Control::started`].
    const CHILDREN: [&str; 3] = ["imu", "mag", "fusion"];

    /// The run's control block.
    #[repr(C)]
    struct Control {
        /// Set by the parent: every child leaves its loop and exits with status 0.
        stop: AtomicU32,
        /// Set by each child once it has opened its objects and taken its writer role.
        started: [AtomicU32; 3],
    }

    // SAFETY: all atomics (zero is a valid state), same layout in every process of this program.
    unsafe impl SharedState for Control {
        const KIND: &'static str = "fusion-static-control";
        const CAPACITY: u64 = 0;
        const ELEMENT_SIZE: u64 = 0;
    }

    /// The segment ids of the run's objects.
    #[derive(Clone, Copy)]
    struct Ids {
        control: ShmId,
        imu: ShmId,
        mag: ShmId,
        attitude: ShmId,
    }

    impl Ids {
        fn all(&self) -> [ShmId; 4] {
            [self.control, self.imu, self.mag, self.attitude]
        }
    }

    fn main(args: Args) -> i32 {
        let seconds = match (args.arg(1), args.arg(2)) {
            (None, _) => DEFAULT_SECONDS,
            (Some(flag), Some(n)) if flag.to_bytes() == b"--seconds" => {
                match core::str::from_utf8(n.to_bytes())
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    Some(s @ 1..=3600) => s,
                    _ => return usage(),
                }
            }
            // The kernel passes unknown boot parameters to /init: ignore them there.
            _ if rt::is_init() => DEFAULT_SECONDS,
            _ => return usage(),
        };
        let mut checks = Checks::new();
        run(&mut checks, seconds);
        checks.summary(PROGRAM)
    }

    fn usage() -> i32 {
        rt::eprintln!("usage: fusion_static [--seconds N]   (default {DEFAULT_SECONDS})");
        2
    }

    /// Sleeps until `CLOCK_MONOTONIC` reaches `t`.
    fn sleep_until(t: Timestamp) {
        let ns = t.as_nanos();
        let ts = Timespec {
            tv_sec: (ns / 1_000_000_000) as _,
            tv_nsec: (ns % 1_000_000_000) as _,
        };
        while clock_nanosleep_absolute(ClockId::Monotonic, &ts) == Err(rustix::io::Errno::INTR) {}
    }

    fn sleep(d: Duration) {
        sleep_until(Timestamp::now().saturating_add(d));
    }

    fn secs_since(t0: Timestamp, t: Timestamp) -> f64 {
        t.saturating_duration_since(t0).as_secs_f64()
    }

    fn open<S: SharedState>(id: ShmId) -> Option<sysv::SysvShared<S>> {
        match sysv::open_id::<S>(id, &ObjectOptions::new()) {
            Ok(o) => Some(o),
            Err(e) => {
                rt::eprintln!("{PROGRAM}: open segment {}: {e:?}", id.as_raw());
                None
            }
        }
    }

    /// Forks a child running `role`; the child never returns from here. It dies with the parent
    /// (`PR_SET_PDEATHSIG`), and leaves with `exit_group`, so the handles it inherited are never dropped in it.
    fn spawn(role: impl FnOnce() -> i32) -> Result<Pid, rustix::io::Errno> {
        let parent = getpid();
        // SAFETY: this program is single-threaded; the child only runs `role` and exits.
        match unsafe { shmfusion::process::fork() }? {
            Some(child) => Ok(child),
            None => {
                let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
                // Wake up on time: the default 50 µs timer slack would add to every sample's latency.
                let _ = set_current_timer_slack(NonZeroU64::new(1));
                if getppid() != Some(parent) {
                    rt::exit(1);
                }
                rt::exit(role())
            }
        }
    }

    // -----------------------------------------------------------------------------------------------------------
    // Sensor processes

    /// Publishes `measure(t)` on `ring` for the instants `t0 + k / hz` until the stop flag is raised.
    fn run_sensor<T: Payload, const N: usize>(
        ring: &BroadcastRing<Stamped<T>, N>,
        control: &Control,
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
                rt::eprintln!("{PROGRAM}: sensor {channel}: {e:?}");
                return 2;
            }
        };
        control.started[channel as usize].store(1, Ordering::Release);
        let stopping = || control.stop.load(Ordering::Acquire) != 0;
        let period = 1_000_000_000 / hz;
        let max_backlog = (N as u64 / 2) * period;
        let mut next = t0.as_nanos();
        let mut seq = 0;
        while !stopping() {
            sleep_until(Timestamp::from_nanos(next));
            let now = Timestamp::now().as_nanos();
            if now > next + max_backlog {
                next += (now - next - max_backlog).div_ceil(period) * period;
            }
            while next <= now && !stopping() {
                let stamp = Timestamp::from_nanos(next);
                let sample = Stamped::new(SampleHeader::new(channel, seq, stamp), measure(secs_since(t0, stamp)));
                writer.publish_one(&sample);
                seq += 1;
                next += period;
            }
        }
        0
    }

    fn imu_process(ids: Ids, t0: Timestamp) -> i32 {
        let (Some(control), Some(ring)) = (open::<Control>(ids.control), open::<ImuRing>(ids.imu)) else {
            return 3;
        };
        let mut sim = SensorSim::new(MOTION, Environment::default(), NoiseModel::CONSUMER_MEMS, 1);
        run_sensor(ring.get(), control.get(), IMU, IMU_HZ, t0, |t| sim.imu(t))
    }

    fn mag_process(ids: Ids, t0: Timestamp) -> i32 {
        let (Some(control), Some(ring)) = (open::<Control>(ids.control), open::<MagRing>(ids.mag)) else {
            return 3;
        };
        let mut sim = SensorSim::new(MOTION, Environment::default(), NoiseModel::CONSUMER_MEMS, 2);
        run_sensor(ring.get(), control.get(), MAG, MAG_HZ, t0, |t| sim.mag(t))
    }

    // -----------------------------------------------------------------------------------------------------------
    // Fusion process

    /// The magnetometer at an IMU sample's time.
    #[derive(Clone, Copy)]
    enum MagAt {
        /// Interpolated between the two samples around it.
        Interpolated(MagSample),
        /// Not bracketed (yet): the nearest sample, at most [`MAG_MAX_AGE`] away.
        Held(MagSample),
        /// The nearest sample is further away than that (a starved magnetometer process).
        Stale,
        /// No sample, or every read raced the writer.
        Missing,
    }

    /// Reads the magnetometer at `t` from the shared ring (validated binary search, no copy of the ring).
    fn mag_at(ring: &MagRing, t: Timestamp) -> MagAt {
        let nearest = match ring.interpolate_at(t) {
            Ok(m) => return MagAt::Interpolated(m),
            Err(ReadError::ExtrapolationFuture { .. }) => ring.latest(),
            Err(ReadError::ExtrapolationPast { .. }) => ring.nearest(t),
            Err(_) => return MagAt::Missing,
        };
        match nearest {
            Ok(s) if Duration::from_nanos(s.stamp.abs_diff(t)) <= MAG_MAX_AGE => MagAt::Held(s.value),
            Ok(_) => MagAt::Stale,
            Err(_) => MagAt::Missing,
        }
    }

    fn fusion_process(ids: Ids) -> i32 {
        let (Some(control), Some(imu), Some(mag), Some(out)) = (
            open::<Control>(ids.control),
            open::<ImuRing>(ids.imu),
            open::<MagRing>(ids.mag),
            open::<AttitudeSlot>(ids.attitude),
        ) else {
            return 3;
        };
        let (control, mag) = (control.get(), mag.get());
        let mut writer = match out.get().writer() {
            Ok(w) => w,
            Err(e) => {
                rt::eprintln!("{PROGRAM}: fusion: {e:?}");
                return 2;
            }
        };
        control.started[2].store(1, Ordering::Release);
        let mut imu_rx = imu.get().reader_from_oldest();
        let mut filter: Option<Madgwick> = None;
        let mut last_stamp = Timestamp::ZERO;
        let mut out_value = Attitude {
            q: Quaternion::IDENTITY,
            ..bytemuck::Zeroable::zeroed()
        };
        while control.stop.load(Ordering::Acquire) == 0 {
            let sample = match imu_rx.recv_wait(Some(Duration::from_millis(50))) {
                Ok((s, _)) => s,
                Err(BufferError::Lagged(n)) => {
                    out_value.imu_lagged += n;
                    continue;
                }
                Err(BufferError::Timeout | BufferError::WriterGone | BufferError::Empty) => continue,
                // The IMU process released its end: it does that only after the stop flag, so we stop too.
                Err(BufferError::Closed) => break,
                Err(e) => {
                    rt::eprintln!("{PROGRAM}: fusion: imu ring: {e:?}");
                    return 4;
                }
            };
            let stamp = sample.stamp();
            let mag_at = mag_at(mag, stamp);
            let ImuSample { accel, gyro } = sample.payload;
            let gap = last_stamp != Timestamp::ZERO && stamp.saturating_duration_since(last_stamp) > MAX_GAP;
            let dt = if last_stamp == Timestamp::ZERO || gap {
                1.0 / IMU_HZ as f32
            } else {
                stamp.saturating_duration_since(last_stamp).as_secs_f32()
            };
            last_stamp = stamp;
            if gap && filter.take().is_some() {
                out_value.gap_resets += 1;
            }
            let f = match (&mut filter, mag_at) {
                (Some(f), _) => f,
                // (Re)start from the accelerometer and a current magnetometer sample only.
                (None, MagAt::Interpolated(m) | MagAt::Held(m)) => {
                    match Madgwick::from_accel_mag(accel, m.field, Madgwick::DEFAULT_BETA) {
                        Some(f) => filter.insert(f),
                        None => {
                            out_value.skipped += 1;
                            continue;
                        }
                    }
                }
                (None, MagAt::Stale | MagAt::Missing) => {
                    out_value.skipped += 1;
                    continue;
                }
            };
            let updated = match mag_at {
                MagAt::Interpolated(m) | MagAt::Held(m) => f.update(gyro, accel, m.field, dt),
                MagAt::Stale | MagAt::Missing => f.update_imu(gyro, accel, dt),
            };
            if let Ok(q) = updated {
                out_value.q = q;
                out_value.imu_stamp = stamp;
                out_value.updates += 1;
                match mag_at {
                    MagAt::Interpolated(_) => out_value.mag_interpolated += 1,
                    MagAt::Held(_) => out_value.mag_held += 1,
                    MagAt::Stale | MagAt::Missing => out_value.mag_stale += 1,
                }
                writer.write(&out_value);
            }
        }
        0
    }

    // -----------------------------------------------------------------------------------------------------------
    // The parent: monitor and checks

    /// What the monitor measured.
    #[derive(Default)]
    struct Stats {
        /// Attitudes read.
        reads: u64,
        /// After the warm-up: count, sum of squared errors (deg²), maximum (deg).
        converged: u64,
        sum_sq: f64,
        max_deg: f64,
        /// Latency "IMU stamped → attitude read by the monitor": sum and maximum (µs).
        latency_sum_us: u64,
        latency_max_us: u64,
        last: Option<Attitude>,
        last_error_deg: f64,
    }

    impl Stats {
        fn rms(&self) -> f64 {
            if self.converged == 0 {
                f64::NAN
            } else {
                libm::sqrt(self.sum_sq / self.converged as f64)
            }
        }
    }

    /// How a child ended.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum End {
        Running,
        Exited(i32),
        Signaled(i32),
    }

    fn end_of(status: rustix::process::WaitStatus) -> End {
        match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => End::Exited(code),
            (None, Some(sig)) => End::Signaled(sig),
            _ => End::Signaled(-1),
        }
    }

    /// Reaps `pid` if it has ended (without blocking).
    fn poll_child(pid: Pid, end: &mut End) {
        if *end == End::Running
            && let Ok(Some((_, status))) = waitpid(Some(pid), WaitOptions::NOHANG)
        {
            *end = end_of(status);
        }
    }

    /// Raises the stop flag and reaps every child; those still running after [`STOP_GRACE`] get SIGTERM, then
    /// SIGKILL. Returns whether each one had to be signalled.
    fn stop_children(control: &Control, pids: &[Option<Pid>; 3], ends: &mut [End; 3]) -> [bool; 3] {
        control.stop.store(1, Ordering::Release);
        let mut signalled = [false; 3];
        let deadline = Timestamp::now().saturating_add(STOP_GRACE);
        for (sig, grace) in [
            (None, Duration::ZERO),
            (Some(Signal::TERM), TERM_GRACE),
            (Some(Signal::KILL), STOP_GRACE),
        ] {
            let deadline = if sig.is_none() {
                deadline
            } else {
                Timestamp::now().saturating_add(grace)
            };
            for (i, pid) in pids.iter().enumerate() {
                if let (Some(pid), Some(sig), End::Running) = (pid, sig, ends[i]) {
                    let _ = kill_process(*pid, sig);
                    signalled[i] = true;
                }
            }
            loop {
                for (i, pid) in pids.iter().enumerate() {
                    if let Some(pid) = pid {
                        poll_child(*pid, &mut ends[i]);
                    }
                }
                let running = pids
                    .iter()
                    .zip(ends.iter())
                    .any(|(p, e)| p.is_some() && *e == End::Running);
                if !running || Timestamp::now() > deadline {
                    break;
                }
                sleep(Duration::from_millis(5));
            }
        }
        signalled
    }

    fn run(checks: &mut Checks, seconds: u64) {
        let options = ObjectOptions::new().lifecycle(Lifecycle::RemoveOnLastDetach);
        let created = (
            sysv::create::<Control>(Key::PRIVATE, &options),
            sysv::create::<ImuRing>(Key::PRIVATE, &options),
            sysv::create::<MagRing>(Key::PRIVATE, &options),
            sysv::create::<AttitudeSlot>(Key::PRIVATE, &options),
        );
        let (Ok(control), Ok(imu), Ok(mag), Ok(attitude)) = created else {
            checks.check_that(
                "objects.create",
                false,
                format_args!(
                    "control {:?} imu {:?} mag {:?} attitude {:?}",
                    created.0.err(),
                    created.1.err(),
                    created.2.err(),
                    created.3.err()
                ),
            );
            return;
        };
        let ids = Ids {
            control: control.region().id(),
            imu: imu.region().id(),
            mag: mag.region().id(),
            attitude: attitude.region().id(),
        };
        checks.check("objects.create", Ok::<_, ()>(()));
        rt::println!(
            "{PROGRAM}: IMU {IMU_HZ} Hz, magnetometer {MAG_HZ} Hz -> Madgwick fusion -> monitor, {seconds} s; \
             segments control {} imu {} mag {} attitude {}",
            ids.control.as_raw(),
            ids.imu.as_raw(),
            ids.mag.as_raw(),
            ids.attitude.as_raw()
        );

        // A common time origin, a little ahead so that every child is up before the first sample.
        let t0 = Timestamp::now().saturating_add(LEAD);
        let forked = [
            spawn(|| imu_process(ids, t0)),
            spawn(|| mag_process(ids, t0)),
            spawn(|| fusion_process(ids)),
        ];
        let pids = [forked[0].ok(), forked[1].ok(), forked[2].ok()];
        checks.check_that(
            "children.fork",
            pids.iter().all(Option::is_some),
            format_args!("{forked:?}"),
        );
        let mut ends = [End::Running; 3];
        sleep_until(t0);

        let (stats, early) = monitor(attitude.get(), t0, seconds, &pids, &mut ends);
        let end_at = Timestamp::now();
        let published = (imu.get().tail(), mag.get().tail(), attitude.get().sequence());
        let started = control.get().started.each_ref().map(|s| s.load(Ordering::Acquire) != 0);
        let signalled = stop_children(control.get(), &pids, &mut ends);

        checks.check_that(
            "children.started",
            started.iter().all(|&s| s),
            format_args!("started (imu, mag, fusion): {started:?}"),
        );
        checks.check_that(
            "children.ran_until_stopped",
            early.is_none(),
            format_args!(
                "{:?} ended early: {:?}",
                early.map(|i| CHILDREN[i]),
                early.map(|i| ends[i])
            ),
        );
        checks.check_that(
            "children.exited_cleanly",
            pids.iter().all(Option::is_some) && ends.iter().all(|e| *e == End::Exited(0)) && !signalled.contains(&true),
            format_args!("ends (imu, mag, fusion): {ends:?}, signalled: {signalled:?}"),
        );
        // Every child was reaped: no zombie, no child left.
        let left = waitpid(None, WaitOptions::NOHANG);
        checks.check_that(
            "children.none_left",
            matches!(left, Err(rustix::io::Errno::CHILD)),
            format_args!("waitpid(-1, WNOHANG): {left:?}"),
        );

        let duration = secs_since(t0, end_at);
        let (imu_hz, mag_hz) = (published.0 as f64 / duration, published.1 as f64 / duration);
        let last = stats.last.unwrap_or(Attitude {
            q: Quaternion::IDENTITY,
            ..bytemuck::Zeroable::zeroed()
        });
        let fused_hz = published.2 as f64 / duration;
        rt::println!(
            "summary over {duration:.2} s: published imu {} ({imu_hz:.1} Hz), mag {} ({mag_hz:.1} Hz); fused {} \
             ({fused_hz:.1} Hz; magnetometer interpolated {}, held {}, stale {}; imu lagged {}, skipped {}, gap resets {}); monitor \
             read {} \
             attitudes, latency mean {} us, max {} us",
            published.0,
            published.1,
            published.2,
            last.mag_interpolated,
            last.mag_held,
            last.mag_stale,
            last.imu_lagged,
            last.skipped,
            last.gap_resets,
            stats.reads,
            stats.latency_sum_us.checked_div(stats.reads).unwrap_or(0),
            stats.latency_max_us,
        );
        let in_band = |hz: f64, nominal: u64| hz >= RATE_BAND.0 * nominal as f64 && hz <= RATE_BAND.1 * nominal as f64;
        checks.check_that(
            "samples.imu_rate",
            published.0 > 0 && in_band(imu_hz, IMU_HZ),
            format_args!(
                "{} samples, {imu_hz:.1} Hz, nominal {IMU_HZ} Hz, band {RATE_BAND:?}",
                published.0
            ),
        );
        checks.check_that(
            "samples.mag_rate",
            published.1 > 0 && in_band(mag_hz, MAG_HZ),
            format_args!(
                "{} samples, {mag_hz:.1} Hz, nominal {MAG_HZ} Hz, band {RATE_BAND:?}",
                published.1
            ),
        );
        checks.check_that(
            "fusion.rate",
            published.2 > 0 && fused_hz >= MIN_FUSED_FRACTION * IMU_HZ as f64,
            format_args!(
                "{} updates, {fused_hz:.1} Hz, at least {:.0} Hz expected (imu lagged {}, skipped {})",
                published.2,
                MIN_FUSED_FRACTION * IMU_HZ as f64,
                last.imu_lagged,
                last.skipped
            ),
        );
        checks.check_that(
            "fusion.accounting",
            last.updates + last.imu_lagged + last.skipped <= published.0
                && last.mag_interpolated + last.mag_held + last.mag_stale == last.updates,
            format_args!(
                "updates {} + lagged {} + skipped {} vs {} published; interpolated {} + held {} + stale {}",
                last.updates,
                last.imu_lagged,
                last.skipped,
                published.0,
                last.mag_interpolated,
                last.mag_held,
                last.mag_stale
            ),
        );
        let rms = stats.rms();
        rt::println!(
            "attitude error vs ground truth after {WARMUP_S:.1} s: RMS {rms:.3} deg, max {:.3} deg ({} estimates; \
             last {:.3} deg)",
            stats.max_deg,
            stats.converged,
            stats.last_error_deg
        );
        checks.check_that(
            "fusion.attitude_rms",
            stats.converged >= MIN_ESTIMATES && rms < RMS_BOUND_DEG,
            format_args!(
                "RMS {rms:.3} deg over {} estimates, bound {RMS_BOUND_DEG} deg",
                stats.converged
            ),
        );

        // Every process has detached (the children exited): dropping the parent's handles frees the segments.
        drop((control, imu, mag, attitude));
        let mut gone = [None; 4];
        for (g, id) in gone.iter_mut().zip(ids.all()) {
            *g = Some(id.stat().err());
        }
        checks.check_that(
            "shm.segments_removed",
            gone.iter()
                .all(|g| matches!(g, Some(Some(rustix::io::Errno::INVAL | rustix::io::Errno::IDRM)))),
            format_args!("stat errors (control, imu, mag, attitude): {gone:?}"),
        );
    }

    /// Reads attitudes for `seconds` (extended for [`MIN_ESTIMATES`]), printing a status line per second. Returns the statistics and the index of
    /// a child that ended before being asked to, if any (the monitor then stops at once).
    fn monitor(
        slot: &AttitudeSlot,
        t0: Timestamp,
        seconds: u64,
        pids: &[Option<Pid>; 3],
        ends: &mut [End; 3],
    ) -> (Stats, Option<usize>) {
        let mut stats = Stats::default();
        let mut seen = 0;
        let mut next_status = 1u64;
        let (mut window_sum_sq, mut window_n) = (0.0f64, 0u64);
        let (mut window_fused, mut window_start) = (slot.sequence(), t0);
        loop {
            let now = Timestamp::now();
            let elapsed = secs_since(t0, now);
            if elapsed >= next_status as f64 {
                for (i, pid) in pids.iter().enumerate() {
                    if let Some(pid) = pid {
                        poll_child(*pid, &mut ends[i]);
                        if ends[i] != End::Running {
                            return (stats, Some(i));
                        }
                    }
                }
                let fused = slot.sequence();
                let window_rms = if window_n == 0 {
                    f64::NAN
                } else {
                    libm::sqrt(window_sum_sq / window_n as f64)
                };
                rt::println!(
                    "t {elapsed:.1} s: fused {:.0} /s, error now {:.2} deg, window RMS {window_rms:.2} deg, imu lagged {}",
                    (fused - window_fused) as f64 / secs_since(window_start, now),
                    stats.last_error_deg,
                    stats.last.map_or(0, |a| a.imu_lagged)
                );
                (window_sum_sq, window_n, window_fused, window_start) = (0.0, 0, fused, now);
                next_status = elapsed as u64 + 1;
            }
            let enough = stats.converged >= MIN_ESTIMATES || elapsed >= (MAX_EXTENSION * seconds) as f64;
            if elapsed >= seconds as f64 && enough {
                return (stats, None);
            }
            match slot.wait_newer(seen, Some(Duration::from_millis(20))) {
                Ok((a, seq)) => {
                    seen = seq;
                    let read_at = Timestamp::now();
                    let latency = read_at.saturating_duration_since(a.imu_stamp).as_micros() as u64;
                    stats.reads += 1;
                    stats.latency_sum_us += latency;
                    stats.latency_max_us = stats.latency_max_us.max(latency);
                    let t = secs_since(t0, a.imu_stamp);
                    let error = f64::from(a.q.angle_to(MOTION.attitude(t)).to_degrees());
                    stats.last_error_deg = error;
                    stats.last = Some(a);
                    window_sum_sq += error * error;
                    window_n += 1;
                    if t >= WARMUP_S {
                        stats.converged += 1;
                        stats.sum_sq += error * error;
                        stats.max_deg = stats.max_deg.max(error);
                    }
                }
                // Closed: the fusion process left after the stop flag (the result is judged on what was read).
                Err(BufferError::Timeout | BufferError::Empty | BufferError::WriterGone | BufferError::Closed) => {}
                Err(e) => {
                    rt::eprintln!("{PROGRAM}: attitude slot: {e:?}");
                }
            }
        }
    }
}

#[cfg(not(target_feature = "crt-static"))]
fn main() {
    eprintln!(
        "shmfusion-fusion: built without the static link flags, so nothing was run; build with \
         RUSTFLAGS=\"-C linker=rust-lld -C linker-flavor=ld.lld -C relocation-model=static \
         -C target-feature=+crt-static -C link-self-contained=no\" (see the source)"
    );
    std::process::exit(2);
}
