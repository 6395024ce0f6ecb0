//! `shmfusion-stress`: multi-process stress of the buffers as a static, libc-free program, run natively, under
//! qemu-user and as `/init` on real kernels under qemu-system.
//!
//! - **ring**: a forked producer pushes samples (each with a sequence number and a checksum) through an SPSC ring
//!   in a System V object; the parent consumes them: no loss, no duplicate, no reorder, no torn sample.
//! - **latest** and **broadcast**: 100 times each, a forked writer claims the writer role (taking it over from
//!   the previous, killed writer) and writes checksummed samples as fast as it can; the parent reads throughout
//!   and kills the writer with SIGKILL at a random point. No read ever returns a torn sample, nothing hangs, and
//!   every new writer takes over and makes progress.
//!
//! Ends with exactly `shmfusion-stress: N passed, M failed` (exit 0 iff all passed; powers off as pid 1).
//! Build it like the self-test (see `examples/selftest.rs`).
#![cfg_attr(all(target_feature = "crt-static", panic = "abort"), no_std, no_main)]

#[cfg(all(target_feature = "crt-static", panic = "abort"))]
mod stress_static {
    use core::time::Duration;

    use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};
    use shmfusion::buffer::{BroadcastRing, Error as BufferError, Latest, SpscRing};
    use shmfusion::object::{Lifecycle, ObjectOptions, sysv};
    use shmfusion::rt::check::Checks;
    use shmfusion::rt::{self, Args};
    use shmfusion::shm::Key;

    rt::entry!(main);

    const RING_SAMPLES: u64 = 200_000;
    const KILLS: u32 = 100;

    /// A sample whose last word is a checksum of the others: a torn copy shows.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    struct Sample {
        seq: u64,
        data: [u64; 6],
        sum: u64,
    }

    impl Sample {
        fn new(seq: u64, writer: u64) -> Self {
            let mut data = [0u64; 6];
            for (i, d) in data.iter_mut().enumerate() {
                *d = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(i as u32 * 7) ^ writer;
            }
            let mut s = Self { seq, data, sum: 0 };
            s.sum = s.checksum();
            s
        }

        fn checksum(&self) -> u64 {
            self.data
                .iter()
                .fold(self.seq ^ 0x5555, |acc, d| acc.rotate_left(5) ^ d)
        }

        fn intact(&self) -> bool {
            self.sum == self.checksum()
        }
    }

    fn options() -> ObjectOptions {
        ObjectOptions::new().lifecycle(Lifecycle::RemoveOnLastDetach)
    }

    fn now_ns() -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
    }

    /// A small deterministic random source for kill points.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn spawn(child: impl FnOnce() -> i32) -> Option<Pid> {
        // SAFETY: this program is single-threaded.
        match unsafe { shmfusion::process::fork() } {
            Ok(None) => rt::exit(child()),
            Ok(Some(pid)) => Some(pid),
            Err(_) => None,
        }
    }

    fn reap(pid: Pid) -> bool {
        matches!(waitpid(Some(pid), WaitOptions::empty()), Ok(Some(_)))
    }

    fn main(_args: Args) -> i32 {
        let mut checks = Checks::new();
        ring_transfer(&mut checks);
        latest_kills(&mut checks);
        broadcast_kills(&mut checks);
        checks.summary("shmfusion-stress")
    }

    /// Producer and consumer in separate processes through an SPSC ring.
    fn ring_transfer(checks: &mut Checks) {
        type Ring = SpscRing<Sample, 1024>;
        let Ok(object) = sysv::create::<Ring>(Key::PRIVATE, &options()) else {
            checks.check_that("ring.create", false, format_args!("create failed"));
            return;
        };
        let ring = object.get();
        let producer = spawn(|| {
            let Ok(mut producer) = ring.producer() else { return 3 };
            for seq in 0..RING_SAMPLES {
                if producer
                    .push_wait(Sample::new(seq, 0), Some(Duration::from_secs(20)))
                    .is_err()
                {
                    return 4;
                }
            }
            0
        });
        let Ok(mut consumer) = ring.consumer() else {
            checks.check_that("ring.consumer", false, format_args!("role taken"));
            return;
        };
        let (mut expected, mut bad, mut error) = (0u64, 0u64, None);
        let start = now_ns();
        while expected < RING_SAMPLES {
            match consumer.pop_wait(Some(Duration::from_secs(20))) {
                Ok(s) => {
                    if s.seq != expected || !s.intact() {
                        bad += 1;
                    }
                    expected += 1;
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let elapsed_ms = (now_ns() - start) / 1_000_000;
        let exited = producer.map(|p| waitpid(Some(p), WaitOptions::empty()));
        let status = exited.and_then(|w| w.ok().flatten()).and_then(|(_, s)| s.exit_status());
        checks.check_that(
            "ring.transfer",
            expected == RING_SAMPLES && bad == 0 && error.is_none() && status == Some(0),
            format_args!(
                "{expected} of {RING_SAMPLES} received, {bad} out of order or torn, error {error:?}, producer {status:?}"
            ),
        );
        rt::println!("ring: {RING_SAMPLES} samples across processes in {elapsed_ms} ms");
    }

    /// Writers of a latest-value slot killed at random points.
    fn latest_kills(checks: &mut Checks) {
        let Ok(object) = sysv::create::<Latest<Sample>>(Key::PRIVATE, &options()) else {
            checks.check_that("latest.create", false, format_args!("create failed"));
            return;
        };
        let slot = object.get();
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d ^ now_ns());
        let (mut torn, mut reads, mut progressed, mut stuck) = (0u64, 0u64, 0u32, 0u32);
        for round in 0..KILLS {
            let before = slot.sequence();
            let Some(pid) = spawn(|| {
                let Ok(mut writer) = slot.writer() else { return 5 };
                let mut seq = 0u64;
                loop {
                    writer.write(&Sample::new(seq, u64::from(round)));
                    seq = seq.wrapping_add(1);
                }
            }) else {
                break;
            };
            // Read until the new writer shows progress (or 2 s), then for a random while, then kill it.
            let deadline = now_ns() + 2_000_000_000;
            while slot.sequence() <= before + 1 && now_ns() < deadline {
                if let Ok((s, _)) = slot.read() {
                    reads += 1;
                    torn += u64::from(!s.intact());
                }
            }
            if slot.sequence() > before + 1 {
                progressed += 1;
            }
            let until = now_ns() + rng.next() % 2_000_000;
            while now_ns() < until {
                if let Ok((s, _)) = slot.read() {
                    reads += 1;
                    torn += u64::from(!s.intact());
                }
            }
            let _ = kill_process(pid, Signal::KILL);
            if !reap(pid) {
                stuck += 1;
            }
            // After the writer's death, reads still return a whole sample.
            if let Ok((s, _)) = slot.read() {
                reads += 1;
                torn += u64::from(!s.intact());
            }
        }
        checks.check_that(
            "latest.writer_killed_100_times",
            torn == 0 && progressed == KILLS && stuck == 0,
            format_args!("{torn} torn of {reads} reads, {progressed} of {KILLS} writers took over, {stuck} not reaped"),
        );
    }

    /// Writers of a broadcast ring killed at random points; a reader that never writes shared memory.
    fn broadcast_kills(checks: &mut Checks) {
        type Ring = BroadcastRing<Sample, 64>;
        let Ok(object) = sysv::create::<Ring>(Key::PRIVATE, &options()) else {
            checks.check_that("broadcast.create", false, format_args!("create failed"));
            return;
        };
        let ring = object.get();
        let mut reader = ring.reader_from_oldest();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ now_ns());
        let (mut torn, mut received, mut lagged, mut progressed, mut other_errors) = (0u64, 0u64, 0u64, 0u32, 0u64);
        let mut read_some = |reader: &mut shmfusion::buffer::BroadcastReader<'_, Sample, 64>| match reader.try_recv() {
            Ok((s, _)) => {
                received += 1;
                torn += u64::from(!s.intact());
            }
            Err(BufferError::Lagged(n)) => lagged += n,
            Err(BufferError::Empty) => {}
            Err(_) => other_errors += 1,
        };
        for round in 0..KILLS {
            let before = ring.tail();
            let Some(pid) = spawn(|| {
                let Ok(mut writer) = ring.writer() else { return 5 };
                let mut seq = 0u64;
                loop {
                    writer.publish_one(&Sample::new(seq, u64::from(round)));
                    seq = seq.wrapping_add(1);
                }
            }) else {
                break;
            };
            let deadline = now_ns() + 2_000_000_000;
            while ring.tail() <= before + 1 && now_ns() < deadline {
                read_some(&mut reader);
            }
            if ring.tail() > before + 1 {
                progressed += 1;
            }
            let until = now_ns() + rng.next() % 2_000_000;
            while now_ns() < until {
                read_some(&mut reader);
            }
            let _ = kill_process(pid, Signal::KILL);
            let _ = reap(pid);
            // Drain what is left: every position is either received or counted as lagged.
            while reader.position() < ring.tail() {
                read_some(&mut reader);
            }
        }
        let accounted = received + lagged == ring.tail();
        checks.check_that(
            "broadcast.writer_killed_100_times",
            torn == 0 && progressed == KILLS && other_errors == 0 && accounted,
            format_args!(
                "{torn} torn of {received} received, {lagged} lagged, tail {}, {progressed} of {KILLS} writers took over, {other_errors} other errors",
                ring.tail()
            ),
        );
    }
}

#[cfg(not(all(target_feature = "crt-static", panic = "abort")))]
fn main() {
    eprintln!("stress_static is a static, libc-free program: build it with --features rt --profile static");
    eprintln!("and RUSTFLAGS with +crt-static (see examples/selftest.rs); `cargo xtask test` does.");
    std::process::exit(2);
}
