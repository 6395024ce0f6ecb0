//! Cross-process latency and throughput of the buffers (a benchmark, not a test).
//!
//! Each measurement maps a fresh `memfd` shared with a child process (this example re-executed with
//! `BENCH_CHILD=<mode>`), so producer and consumer really are separate processes, as in production.
//!
//! Run: `cargo run --release --example bench_buffers` (sizes scale with `BENCH_SCALE`, default 1.0). Numbers on a
//! shared 2-vCPU VM are noisy; pin cores on real hardware (`taskset`) for figures worth comparing.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use shmfusion::buffer::{BroadcastRing, Error, Latest, SpscRing};
use shmfusion::fusion::{E2eReceiver, E2eSender, Protected};

type Ring = SpscRing<u64, 4096>;
type Slot = Latest<[u64; 8]>;
type Bcast = BroadcastRing<[u64; 4], 1024>;
/// The latest-value payload again, sealed end to end (counter, data id, CRC-32C).
type SlotE2e = Latest<Protected<Eight>>;

/// `[u64; 8]` as a sample payload (for [`Protected`]).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Eight([u64; 8]);
shmfusion::impl_payload!(Eight);
const E2E_ID: u32 = 0xbe0c;

const PAGE: usize = 4096;
const RING_A: usize = 0;
const RING_B: usize = std::mem::size_of::<Ring>().next_multiple_of(PAGE);
const SLOT: usize = RING_B * 2;
const BCAST: usize = SLOT + std::mem::size_of::<Slot>().next_multiple_of(PAGE);
const SLOT_E2E: usize = BCAST + std::mem::size_of::<Bcast>().next_multiple_of(PAGE);
const LEN: usize = SLOT_E2E + std::mem::size_of::<SlotE2e>().next_multiple_of(PAGE);

fn scale(n: u64) -> u64 {
    let s: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * s) as u64).max(1)
}

struct Shm {
    _fd: Option<OwnedFd>,
    fd_num: i32,
    base: *mut u8,
}

impl Shm {
    fn create() -> Self {
        let fd = rustix::fs::memfd_create("shmfusion-bench", rustix::fs::MemfdFlags::empty()).unwrap();
        rustix::fs::ftruncate(&fd, LEN as u64).unwrap();
        let fd_num = fd.as_raw_fd();
        Self {
            base: map(fd_num),
            fd_num,
            _fd: Some(fd),
        }
    }
    fn inherited() -> Self {
        let fd_num = std::env::var("BENCH_FD").unwrap().parse().unwrap();
        Self {
            base: map(fd_num),
            fd_num,
            _fd: None,
        }
    }
    fn at<T>(&self, off: usize) -> &T {
        // SAFETY: page-aligned offset inside a zero-filled shared mapping that outlives the process's use of it;
        // the buffer types are valid all-zero and accessed only through atomics.
        unsafe { &*(self.base.add(off) as *const T) }
    }
    fn spawn(&self, mode: &str, count: u64) -> Child {
        Command::new(std::env::current_exe().unwrap())
            .env("BENCH_CHILD", mode)
            .env("BENCH_FD", self.fd_num.to_string())
            .env("BENCH_COUNT", count.to_string())
            .spawn()
            .unwrap()
    }
}

fn map(fd: i32) -> *mut u8 {
    use rustix::mm::{MapFlags, ProtFlags, mmap};
    // SAFETY: `fd` is a live memfd of `LEN` bytes (ours or inherited).
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    // SAFETY: a new shared mapping at a kernel-chosen address.
    unsafe {
        mmap(
            std::ptr::null_mut(),
            LEN,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            fd,
            0,
        )
    }
    .unwrap()
    .cast()
}

fn child(mode: &str) {
    let shm = Shm::inherited();
    let count: u64 = std::env::var("BENCH_COUNT").unwrap().parse().unwrap();
    let a: &Ring = shm.at(RING_A);
    let b: &Ring = shm.at(RING_B);
    match mode {
        "batch" => {
            let mut p = a.producer().unwrap();
            let mut buf = [0u64; 64];
            let mut i = 0;
            while i < count {
                let n = 64.min(count - i) as usize;
                for (k, x) in buf[..n].iter_mut().enumerate() {
                    *x = i + k as u64;
                }
                i += p.push_slice(&buf[..n]).unwrap() as u64;
            }
        }
        "single" => {
            let mut p = a.producer().unwrap();
            let mut i = 0;
            while i < count {
                if p.try_push(i).is_ok() {
                    i += 1;
                }
            }
        }
        "echo-spin" | "echo-futex" => {
            let mut c = a.consumer().unwrap();
            let mut p = b.producer().unwrap();
            for _ in 0..count {
                let v = if mode == "echo-spin" {
                    loop {
                        if let Ok(v) = c.try_pop() {
                            break v;
                        }
                    }
                } else {
                    c.pop_wait(Some(Duration::from_secs(10))).unwrap()
                };
                p.try_push(v).unwrap();
            }
        }
        "latest" => {
            let slot: &Slot = shm.at(SLOT);
            let mut w = slot.writer().unwrap();
            for i in 1..=count {
                w.write(&[i; 8]);
            }
        }
        "latest-e2e" => {
            let slot: &SlotE2e = shm.at(SLOT_E2E);
            let mut w = slot.writer().unwrap();
            let mut tx = E2eSender::new(E2E_ID);
            for i in 1..=count {
                w.write(&tx.protect(Eight([i; 8])));
            }
        }
        "bcast" => {
            let r: &Bcast = shm.at(BCAST);
            let mut w = r.writer().unwrap();
            // Wait for the reader to attach (it starts at position 0 anyway).
            for i in 0..count {
                w.publish_one(&[i, i, i, i]);
            }
        }
        _ => panic!("unknown mode {mode}"),
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    if let Ok(mode) = std::env::var("BENCH_CHILD") {
        child(&mode);
        return;
    }
    println!("shmfusion buffers, cross-process (memfd), {} B per u64 sample", 8);

    // Throughput with batches (one release store per push_slice / pop_slice).
    for (mode, n) in [("batch", scale(50_000_000)), ("single", scale(10_000_000))] {
        let shm = Shm::create();
        let a: &Ring = shm.at(RING_A);
        let mut c = a.consumer().unwrap();
        let mut ch = shm.spawn(mode, n);
        let mut buf = [0u64; 256];
        let mut next = 0u64;
        let mut t0 = None;
        while next < n {
            let got = if mode == "batch" {
                c.pop_slice(&mut buf).unwrap()
            } else {
                match c.try_pop() {
                    Ok(v) => {
                        buf[0] = v;
                        1
                    }
                    Err(_) => 0,
                }
            };
            if got > 0 && t0.is_none() {
                t0 = Some(Instant::now());
            }
            for &v in &buf[..got] {
                assert_eq!(v, next);
                next += 1;
            }
        }
        let dt = t0.unwrap().elapsed();
        ch.wait().unwrap();
        println!(
            "spsc {mode:>6}: {n} samples in {dt:.2?}: {:.1} M samples/s, {:.2} ns/sample",
            n as f64 / dt.as_secs_f64() / 1e6,
            dt.as_nanos() as f64 / n as f64
        );
    }

    // One-way latency from ping-pong round trips.
    for (mode, n) in [("echo-spin", scale(200_000)), ("echo-futex", scale(20_000))] {
        let shm = Shm::create();
        let a: &Ring = shm.at(RING_A);
        let b: &Ring = shm.at(RING_B);
        let mut p = a.producer().unwrap();
        let mut c = b.consumer().unwrap();
        let mut ch = shm.spawn(mode, n);
        let mut rtt = Vec::with_capacity(n as usize);
        for i in 0..n {
            let t = Instant::now();
            p.try_push(i).unwrap();
            let v = if mode == "echo-spin" {
                loop {
                    if let Ok(v) = c.try_pop() {
                        break v;
                    }
                }
            } else {
                c.pop_wait(Some(Duration::from_secs(10))).unwrap()
            };
            rtt.push(t.elapsed().as_nanos() as u64);
            assert_eq!(v, i);
        }
        ch.wait().unwrap();
        rtt.sort_unstable();
        println!(
            "spsc {mode:>10} one-way latency (RTT/2): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns ({n} round trips)",
            percentile(&rtt, 0.5) / 2,
            percentile(&rtt, 0.99) / 2,
            percentile(&rtt, 0.999) / 2,
            rtt[rtt.len() - 1] / 2
        );
    }

    // Latest value: reads while another process writes as fast as it can.
    {
        let shm = Shm::create();
        let slot: &Slot = shm.at(SLOT);
        let n = scale(20_000_000);
        let mut ch = shm.spawn("latest", n);
        while slot.sequence() == 0 {
            std::hint::spin_loop();
        }
        let (mut ok, mut contended, mut reads) = (0u64, 0u64, 0u64);
        let t0 = Instant::now();
        while slot.sequence() < n {
            match slot.read() {
                Ok((v, seq)) => {
                    assert!(v.iter().all(|&x| x == seq));
                    ok += 1;
                }
                Err(Error::Contended) => contended += 1,
                Err(e) => panic!("{e}"),
            }
            reads += 1;
        }
        let dt = t0.elapsed();
        ch.wait().unwrap();
        println!(
            "latest [u64; 8]: writer {:.1} M writes/s; reader {:.1} ns/read under write load ({ok} ok, {contended} contended)",
            n as f64 / dt.as_secs_f64() / 1e6,
            dt.as_nanos() as f64 / reads as f64
        );
    }

    // The same with end-to-end protection: the writer seals, the reader checks every value it reads.
    {
        let shm = Shm::create();
        let slot: &SlotE2e = shm.at(SLOT_E2E);
        let n = scale(20_000_000);
        let mut ch = shm.spawn("latest-e2e", n);
        while slot.sequence() == 0 {
            std::hint::spin_loop();
        }
        let mut rx = E2eReceiver::new(E2E_ID);
        let (mut ok, mut contended, mut reads) = (0u64, 0u64, 0u64);
        let t0 = Instant::now();
        while slot.sequence() < n {
            match slot.read() {
                Ok((sealed, seq)) => {
                    let checked = rx.check(&sealed).expect("an honest writer's value passes the check");
                    assert!(checked.value.0.iter().all(|&x| x == seq) && checked.counter == seq);
                    ok += 1;
                }
                Err(Error::Contended) => contended += 1,
                Err(e) => panic!("{e}"),
            }
            reads += 1;
        }
        let dt = t0.elapsed();
        ch.wait().unwrap();
        println!(
            "latest [u64; 8] + E2E (CRC-32C): writer {:.1} M writes/s; reader {:.1} ns/read+check under write load ({ok} ok, {contended} contended)",
            n as f64 / dt.as_secs_f64() / 1e6,
            dt.as_nanos() as f64 / reads as f64
        );
    }

    // Broadcast: one writer, one reader in another process.
    {
        let shm = Shm::create();
        let ring: &Bcast = shm.at(BCAST);
        let n = scale(20_000_000);
        let mut r = ring.reader_at(0);
        let mut ch = shm.spawn("bcast", n);
        let (mut got, mut lost) = (0u64, 0u64);
        let mut t0 = None;
        while r.position() < n {
            match r.try_recv() {
                Ok((v, p)) => {
                    assert_eq!(v[3], p);
                    got += 1;
                    t0.get_or_insert_with(Instant::now);
                }
                Err(Error::Lagged(k)) => lost += k,
                Err(Error::Empty) => std::hint::spin_loop(),
                Err(e) => panic!("{e}"),
            }
        }
        let dt = t0.map(|t| t.elapsed()).unwrap_or_default();
        ch.wait().unwrap();
        println!(
            "broadcast [u64; 4]: {n} published, {got} received, {lost} lagged, {:.1} M samples/s seen by the reader",
            n as f64 / dt.as_secs_f64() / 1e6
        );
    }
}
