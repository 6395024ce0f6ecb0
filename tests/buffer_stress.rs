//! Multi-process stress of the buffers: producer/writer and consumer/readers in separate processes over a
//! shared `memfd` mapping (not the SysV layer), with a checksum in every sample.
//!
//! Children are this test binary re-executed with `SHMFUSION_STRESS_ROLE` set (`std::process::Command`, which
//! also works under qemu-user: without binfmt_misc the child is started through the emulator named by
//! `SHMFUSION_CHILD_RUNNER`, or the Debian `qemu-<arch>-static -L /usr/<triple>` default). The memfd is
//! inherited (no `CLOEXEC`) and its number passed in `SHMFUSION_STRESS_FD`.
//!
//! Sizes: `SHMFUSION_STRESS_SAMPLES` (default 10,000,000 on x86/x86_64, 200,000 elsewhere, i.e. under emulation)
//! and `SHMFUSION_STRESS_KILLS` (default 1,000 on x86/x86_64, 100 elsewhere).
//!
//! Run: `cargo test --release --test buffer_stress -- --nocapture` (prints the figures).

use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmfusion::buffer::{BroadcastRing, Error, Latest, SpscRing};

const ROLE: &str = "SHMFUSION_STRESS_ROLE";
const FD: &str = "SHMFUSION_STRESS_FD";
const COUNT: &str = "SHMFUSION_STRESS_COUNT";

fn host() -> bool {
    cfg!(any(target_arch = "x86_64", target_arch = "x86"))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn samples() -> u64 {
    env_u64(
        "SHMFUSION_STRESS_SAMPLES",
        if emulated() { 200_000 } else { 10_000_000 },
    )
}

fn kills() -> u64 {
    env_u64("SHMFUSION_STRESS_KILLS", if emulated() { 100 } else { 1_000 })
}

// ---------------------------------------------------------------------------------------------------------------
// Samples with checksums.

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Sample {
    seq: u64,
    payload: [u32; 5],
    check: u32,
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Sample {
    fn new(seq: u64) -> Self {
        let h = mix(seq);
        let payload = [h as u32, (h >> 32) as u32, seq as u32, (seq >> 32) as u32, !(h as u32)];
        let check = payload.iter().fold(0x1234_5678u32, |a, &p| a.rotate_left(5) ^ p);
        Self { seq, payload, check }
    }
    fn valid(&self) -> bool {
        *self == Self::new(self.seq)
    }
}

/// A larger value for the latest slot: 256 bytes, every word derived from `n`.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Big {
    n: u64,
    words: [u64; 31],
}

impl Big {
    fn new(n: u64) -> Self {
        Self {
            n,
            words: std::array::from_fn(|i| mix(n ^ ((i as u64) << 56))),
        }
    }
    fn valid(&self) -> bool {
        *self == Self::new(self.n)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Shared memory and child processes.

struct Shared {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is only accessed through the buffers' atomics.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    fn create(len: usize) -> Self {
        use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
        // No CLOEXEC: children inherit it.
        let fd = memfd_create("shmfusion-buffer-stress", MemfdFlags::empty()).unwrap();
        ftruncate(&fd, len as u64).unwrap();
        let ptr = map(fd.as_raw_fd(), len);
        Self { fd, ptr, len }
    }

    /// The object at `offset` (page aligned), which must be a `SharedState` valid when zeroed.
    fn at<T>(&self, offset: usize) -> &T {
        assert!(offset % 4096 == 0 && offset + std::mem::size_of::<T>() <= self.len);
        // SAFETY: the mapping is page aligned, zero-filled at creation and lives as long as `self`; the buffer
        // types are valid when all-zero and are only accessed through atomics.
        unsafe { &*(self.ptr.add(offset) as *const T) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; no references into it outlive `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), self.len) };
    }
}

fn map(fd: i32, len: usize) -> *mut u8 {
    use rustix::mm::{MapFlags, ProtFlags, mmap};
    // SAFETY: the fd is a valid memfd of at least `len` bytes, open for the life of the process (inherited or
    // owned by `Shared`).
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    // SAFETY: a fresh shared mapping chosen by the kernel; nothing else is mapped over.
    unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            fd,
            0,
        )
    }
    .unwrap()
    .cast()
}

/// The child's view of the parent's memfd.
fn child_mapping<T>(offset: usize) -> &'static T {
    let fd: i32 = std::env::var(FD).unwrap().parse().unwrap();
    let len = rustix::fs::fstat(unsafe { BorrowedFd::borrow_raw(fd) })
        .unwrap()
        .st_size as usize;
    let ptr = map(fd, len);
    // SAFETY: as in `Shared::at`; the mapping is never unmapped in the child.
    unsafe { &*(ptr.add(offset) as *const T) }
}

fn runner() -> Option<Vec<String>> {
    let (qemu, sysroot) = if cfg!(target_arch = "arm") {
        ("qemu-arm-static", "/usr/arm-linux-gnueabihf")
    } else if cfg!(target_arch = "aarch64") {
        ("qemu-aarch64-static", "/usr/aarch64-linux-gnu")
    } else if cfg!(target_arch = "riscv64") {
        ("qemu-riscv64-static", "/usr/riscv64-linux-gnu")
    } else {
        return None;
    };
    Some(vec![qemu.into(), "-L".into(), sysroot.into()])
}

/// How to start a child: directly, or through an emulator when this binary cannot be executed by the kernel
/// (qemu-user without binfmt_misc). Probed once by running `<exe> --list`.
fn launcher() -> &'static [String] {
    static L: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    L.get_or_init(|| {
        if let Ok(r) = std::env::var("SHMFUSION_CHILD_RUNNER") {
            return r.split_whitespace().map(String::from).collect();
        }
        let exe = std::env::current_exe().unwrap();
        let native = Command::new(&exe)
            .arg("--list")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if native {
            Vec::new()
        } else {
            runner().expect("cannot execute children and no emulator known")
        }
    })
}

/// Whether children run under an emulator (then the default sizes are the small ones).
fn emulated() -> bool {
    !host() || !launcher().is_empty()
}

/// A child process that is SIGKILLed and reaped when dropped (so a failing test leaves no process behind).
struct ChildGuard(Child);

impl std::ops::Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Re-executes this test binary to run `test` in role `role` with the memfd of `shm`.
fn spawn_child(test: &str, role: &str, shm: &Shared, count: u64) -> ChildGuard {
    let exe = std::env::current_exe().unwrap();
    let l = launcher();
    let mut c = if l.is_empty() {
        Command::new(&exe)
    } else {
        let mut c = Command::new(&l[0]);
        c.args(&l[1..]).arg(&exe);
        c
    };
    c.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(FD, shm.fd.as_raw_fd().to_string())
        .env(COUNT, count.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    ChildGuard(c.spawn().unwrap())
}

/// Sets the flag when dropped during a panic, so helper threads stop and the scope can unwind.
struct AbortOnPanic<'a>(&'a AtomicBool);
impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// In a child: runs `f` if this process was started for `role`, then exits; otherwise returns.
fn child_role(role: &str, f: impl FnOnce() -> i32) {
    if std::env::var(ROLE).as_deref() == Ok(role) {
        std::process::exit(f());
    }
}

fn is_child() -> bool {
    std::env::var(ROLE).is_ok()
}

struct Rng(u64);
impl Rng {
    fn seeded() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Self(mix(t ^ u64::from(std::process::id())))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 = mix(self.0);
        self.0 % n
    }
}

// ---------------------------------------------------------------------------------------------------------------
// SPSC ring: 10 million samples, no loss, duplicate or reorder.

type Ring = SpscRing<Sample, 1024>;
const RING_BYTES: usize = std::mem::size_of::<Ring>().next_multiple_of(4096);

/// Producer child: pushes `COUNT` samples (`u64::MAX`: until killed) from the ring's current position, mixing
/// single pushes, batches, blocking pushes and in-place writes.
fn produce() -> i32 {
    let ring: &Ring = child_mapping(0);
    let mut p = match ring.producer() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("producer claim: {e}");
            return 3;
        }
    };
    let count = env_u64(COUNT, 0);
    let start = p.position();
    let end = start.saturating_add(count);
    let mut rng = Rng::seeded();
    let mut batch = [Sample::new(0); 64];
    // Under qemu-user a live consumer can look dead (qemu emulates /proc/self/stat, so the start time the
    // consumer recorded differs from the one other processes read): treat ReaderGone as "keep trying".
    let push_wait = |p: &mut shmfusion::buffer::Producer<'_, Sample, 1024>, s: Sample| loop {
        match p.push_wait(s, Some(Duration::from_secs(20))) {
            Err(Error::ReaderGone) => std::thread::sleep(Duration::from_micros(100)),
            r => break r.unwrap(),
        }
    };
    while p.position() < end {
        let pos = p.position();
        match rng.below(8) {
            0 => push_wait(&mut p, Sample::new(pos)),
            1 => match p.reserve() {
                Ok(mut slot) => {
                    slot.write(&Sample::new(pos));
                    slot.commit();
                }
                Err(Error::Full) => std::hint::spin_loop(),
                Err(e) => panic!("{e}"),
            },
            _ => {
                let n = (1 + rng.below(64)).min(end - pos) as usize;
                for (i, s) in batch[..n].iter_mut().enumerate() {
                    *s = Sample::new(pos + i as u64);
                }
                if p.push_slice(&batch[..n]).unwrap() == 0 {
                    push_wait(&mut p, Sample::new(pos));
                }
            }
        }
    }
    0
}

/// Consumes until `stop` says so and the ring is drained, checking every sample; returns (received, writer-gone
/// reports).
fn consume(ring: &Ring, until: impl Fn(u64) -> bool) -> (u64, u64) {
    let mut c = ring.consumer().unwrap();
    let mut buf = [Sample::new(0); 256];
    let mut gone = 0;
    let mut next = c.position();
    let first = next;
    while !until(next) {
        let n = c.pop_slice(&mut buf).unwrap();
        for s in &buf[..n] {
            assert!(s.valid(), "corrupt sample at {next}: {s:?}");
            assert_eq!(s.seq, next, "loss, duplicate or reorder");
            next += 1;
        }
        if n == 0 {
            match c.pop_wait(Some(Duration::from_millis(50))) {
                Ok(s) => {
                    assert!(s.valid(), "corrupt sample at {next}: {s:?}");
                    assert_eq!(s.seq, next, "loss, duplicate or reorder");
                    next += 1;
                }
                Err(Error::Timeout) => {}
                Err(Error::WriterGone) => {
                    gone += 1;
                    std::thread::sleep(Duration::from_micros(200));
                }
                // A producer released its end and everything it pushed was received: only the end of a run.
                Err(Error::Closed) => assert!(until(next), "the producer closed its end at {next}"),
                Err(e) => panic!("{e}"),
            }
        }
    }
    (next - first, gone)
}

#[test]
fn spsc_ring_across_processes_keeps_every_sample() {
    const NAME: &str = "spsc_ring_across_processes_keeps_every_sample";
    child_role("spsc-producer", produce);
    if is_child() {
        return;
    }
    let total = samples();
    let shm = Shared::create(RING_BYTES);
    let ring: &Ring = shm.at(0);
    let t0 = Instant::now();
    let mut child = spawn_child(NAME, "spsc-producer", &shm, total);
    let (got, gone) = consume(ring, |n| n >= total);
    assert!(child.wait().unwrap().success());
    let dt = t0.elapsed();
    assert_eq!(got, total);
    // Liveness is the kernel's (the producer's anchor segment), also under qemu-user: never a spurious report.
    assert_eq!(gone, 0, "a live producer was reported gone");
    assert!(ring.is_empty());
    eprintln!(
        "spsc: {total} samples ({} B each) across processes in {dt:.2?} ({:.1} M samples/s incl. process start)",
        std::mem::size_of::<Sample>(),
        total as f64 / dt.as_secs_f64() / 1e6
    );
}

#[test]
fn spsc_producer_killed_at_random_points_is_taken_over() {
    const NAME: &str = "spsc_producer_killed_at_random_points_is_taken_over";
    child_role("spsc-producer", produce);
    if is_child() {
        return;
    }
    let kills = kills();
    let shm = Shared::create(RING_BYTES);
    let ring: &Ring = shm.at(0);
    let done = AtomicBool::new(false);
    let abort = AtomicBool::new(false);
    let final_tail = AtomicU64::new(u64::MAX);
    let t0 = Instant::now();
    let mut rng = Rng::seeded();
    let mut mid_stream = 0;
    let (got, gone) = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            consume(ring, |n| {
                abort.load(Ordering::Acquire)
                    || (done.load(Ordering::Acquire) && n >= final_tail.load(Ordering::Acquire))
            })
        });
        let _guard = AbortOnPanic(&abort);
        for _ in 0..kills {
            let start = Instant::now();
            let mut child = spawn_child(NAME, "spsc-producer", &shm, u64::MAX);
            // Wait until this child holds the role (it took the dead one's over), then a random time.
            while ring.producer_holder().and_then(|h| h.pid) != Some(child.id())
                && start.elapsed() < Duration::from_secs(20)
            {
                if let Ok(Some(st)) = child.try_wait() {
                    panic!("producer exited early: {st}");
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            assert_eq!(
                ring.producer_holder().and_then(|h| h.pid),
                Some(child.id()),
                "new producer took over"
            );
            // Half the kills land while the new producer starts up (its first claim also registers the process for
            // membarrier, which costs a few milliseconds under qemu-user), half once it is publishing.
            if rng.below(2) == 1 {
                let claimed_at = ring.positions().1;
                while ring.positions().1 == claimed_at && start.elapsed() < Duration::from_secs(20) {
                    if let Ok(Some(st)) = child.try_wait() {
                        panic!("producer exited early: {st}");
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            let t_start = ring.positions().1;
            std::thread::sleep(Duration::from_micros(rng.below(2_000)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            if ring.positions().1 > t_start {
                mid_stream += 1;
            }
        }
        // The last producer is dead: the consumer drains up to the published tail.
        let p = ring.producer().unwrap();
        final_tail.store(p.position(), Ordering::Release);
        done.store(true, Ordering::Release);
        drop(p);
        consumer.join().unwrap()
    });
    let dt = t0.elapsed();
    let tail = final_tail.load(Ordering::Relaxed);
    assert!(
        got >= tail && tail > 0,
        "{got} samples received, the last producer's tail {tail}"
    );
    assert!(mid_stream > 0, "no producer was killed while publishing");
    assert!(gone > 0, "the consumer never saw the dead producer");
    eprintln!(
        "spsc kills: {kills} producers SIGKILLed ({mid_stream} mid-stream), {got} samples checked, writer-gone \
         reported {gone} times, in {dt:.2?}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Latest value and broadcast ring: a writer killed at random points; readers never see a torn value, never hang.

type Slot = Latest<Big>;
type Bcast = BroadcastRing<Sample, 256>;
const SLOT_BYTES: usize = std::mem::size_of::<Slot>().next_multiple_of(4096);
const BCAST_BYTES: usize = std::mem::size_of::<Bcast>().next_multiple_of(4096);

fn write_forever() -> i32 {
    let slot: &Slot = child_mapping(0);
    let bcast: &Bcast = child_mapping(SLOT_BYTES);
    let (mut lw, mut bw) = match (slot.writer(), bcast.writer()) {
        (Ok(l), Ok(b)) => (l, b),
        (l, b) => {
            eprintln!("writer claim: {:?} {:?}", l.err(), b.err());
            return 3;
        }
    };
    let mut rng = Rng::seeded();
    loop {
        let n = lw.sequence() + 1;
        assert_eq!(lw.write(&Big::new(n)), n);
        let p = bw.position();
        if rng.below(4) == 0 {
            let batch: Vec<Sample> = (p..p + 1 + rng.below(16)).map(Sample::new).collect();
            bw.publish_slice(&batch);
        } else {
            bw.publish_one(&Sample::new(p));
        }
    }
}

#[test]
fn latest_and_broadcast_writer_killed_at_random_points() {
    const NAME: &str = "latest_and_broadcast_writer_killed_at_random_points";
    child_role("writer", write_forever);
    if is_child() {
        return;
    }
    let kills = kills();
    let shm = Shared::create(SLOT_BYTES + BCAST_BYTES);
    let slot: &Slot = shm.at(0);
    let bcast: &Bcast = shm.at(SLOT_BYTES);
    let done = AtomicBool::new(false);
    let t0 = Instant::now();
    let mut rng = Rng::seeded();
    let (reads, bstats) = std::thread::scope(|s| {
        let latest_reader = s.spawn(|| {
            let (mut last, mut reads, mut contended) = (0u64, 0u64, 0u64);
            while !done.load(Ordering::Acquire) {
                match slot.read() {
                    Ok((v, seq)) => {
                        assert!(v.valid(), "torn latest value {}", v.n);
                        assert_eq!(v.n, seq);
                        assert!(seq >= last, "sequence went back");
                        last = seq;
                        reads += 1;
                    }
                    Err(Error::Empty) => {}
                    Err(Error::Contended) => contended += 1,
                    Err(e) => panic!("{e}"),
                }
                match slot.wait_newer(last, Some(Duration::from_millis(20))) {
                    Ok((v, seq)) => assert!(v.valid() && v.n == seq && seq > last, "torn latest value {}", v.n),
                    Err(Error::Timeout) | Err(Error::Contended) => {}
                    Err(Error::WriterGone) => std::thread::sleep(Duration::from_micros(200)),
                    Err(e) => panic!("{e}"),
                }
            }
            (reads, contended)
        });
        let bcast_reader = s.spawn(|| {
            let mut r = bcast.reader_at(0);
            let (mut got, mut lost, mut gone) = (0u64, 0u64, 0u64);
            loop {
                match r.recv_wait(Some(Duration::from_millis(20))) {
                    Ok((v, p)) => {
                        assert!(v.valid(), "torn broadcast sample at {p}");
                        assert_eq!(v.seq, p);
                        got += 1;
                    }
                    Err(Error::Lagged(n)) => lost += n,
                    Err(Error::Timeout) => {}
                    Err(Error::WriterGone) => {
                        gone += 1;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(e) => panic!("{e}"),
                }
                if done.load(Ordering::Acquire) && r.position() >= bcast.tail() {
                    break;
                }
            }
            assert_eq!(
                got + lost,
                r.position(),
                "every position delivered or counted as lagged"
            );
            (got, lost, gone)
        });
        let _guard = AbortOnPanic(&done);
        for _ in 0..kills {
            let start = Instant::now();
            let mut child = spawn_child(NAME, "writer", &shm, 0);
            while bcast.writer_holder().and_then(|h| h.pid) != Some(child.id())
                && start.elapsed() < Duration::from_secs(20)
            {
                if let Ok(Some(st)) = child.try_wait() {
                    panic!("writer exited early: {st}");
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            std::thread::sleep(Duration::from_micros(rng.below(2_000)));
            child.kill().unwrap();
            child.wait().unwrap();
        }
        done.store(true, Ordering::Release);
        (latest_reader.join().unwrap(), bcast_reader.join().unwrap())
    });
    let dt = t0.elapsed();
    assert!(slot.sequence() > 0 && bcast.tail() > 0);
    eprintln!(
        "latest/broadcast kills: {kills} writers SIGKILLed in {dt:.2?}; latest: {} reads ({} contended), seq {}; \
         broadcast: {} received, {} lagged, writer-gone {}, tail {}",
        reads.0,
        reads.1,
        slot.sequence(),
        bstats.0,
        bstats.1,
        bstats.2,
        bcast.tail()
    );
}
