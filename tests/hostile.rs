//! The hostile-peer suite: a scribbler process writes adversarial and random words over every buffer kind, a time
//! series and their object headers, while honest writers and readers in other processes run with end-to-end
//! protected payloads ([`Protected`]: counter, data id, CRC-32C); a SIGKILL storm hits a writer and object
//! creators; planted segments and objects (too small, garbage, each header field changed, another uid, symlinks,
//! FIFOs) are opened. It prints its figures and fails on any panic, crash, hang, leaked segment or accepted torn
//! sample with E2E on. Without E2E (a plain `Latest` read by the same reader), torn values accepted are counted
//! and printed only: the buffers guarantee memory safety and bounded operation under a hostile peer, not the
//! integrity of values.
//!
//! Durations: `SHMFUSION_HOSTILE_MS` (default 3000 natively, 1200 under qemu-user), kills
//! `SHMFUSION_HOSTILE_KILLS` (default 60, 15 under qemu-user).
//!
//! Run: `cargo test --release --test hostile -- --nocapture` (prints the figures).

mod common;

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Child, Exit, Rng, fork};
use shmfusion::buffer::{BroadcastRing, Error, Latest, SpscRing};
use shmfusion::fusion::{
    E2eReceiver, E2eSender, ImuSample, Protected, SampleHeader, Stamped, TimeSeriesExt, Timestamp,
};
use shmfusion::object::{self, Lifecycle, ObjectOptions, SharedState, fd, sysv};
use shmfusion::shm::{self, AttachOptions, GetFlags, Key, Mode};

type Imu = Stamped<ImuSample>;
type Sealed = Protected<Imu>;
type LatestE2e = Latest<Sealed>;
type LatestPlain = Latest<Imu>;
type Spsc = SpscRing<Sealed, 64>;
type Series = BroadcastRing<Stamped<Sealed>, 64>;

const ID_LATEST: u32 = 0x4e01;
const ID_SPSC: u32 = 0x4e02;
const ID_SERIES: u32 = 0x4e03;
const ID_STORM: u32 = 0x4e04;

/// The figures, in a shared anonymous page every process adds to.
#[repr(C)]
struct Stats([AtomicU64; STAT_NAMES.len()]);

const HOSTILE_WRITES: usize = 0;
const E2E_ACCEPTED: usize = 1;
const E2E_REFUSED: usize = 2;
const E2E_TORN_ACCEPTED: usize = 3;
const PLAIN_ACCEPTED: usize = 4;
const PLAIN_TORN_ACCEPTED: usize = 5;
const BUFFER_ERRORS: usize = 6;
const SERIES_ACCEPTED: usize = 7;
const SERIES_TORN_ACCEPTED: usize = 8;
const HONEST_WRITES: usize = 9;
const STORM_CLAIM_REFUSED: usize = 10;
const SERIES_WRONG_POSITION: usize = 11;
const ROLES_CLAIMED: usize = 12;
const STAT_NAMES: [&str; 13] = [
    "hostile writes",
    "E2E accepted",
    "E2E refused",
    "E2E torn accepted",
    "plain accepted",
    "plain torn accepted",
    "buffer errors",
    "series accepted",
    "series torn accepted",
    "honest writes",
    "storm claims refused",
    "E2E-valid samples under another position",
    "honest processes holding their roles",
];

impl Stats {
    fn add(&self, i: usize, n: u64) {
        self.0[i].fetch_add(n, Ordering::Relaxed);
    }
    fn get(&self, i: usize) -> u64 {
        self.0[i].load(Ordering::Relaxed)
    }
}

fn shared_stats() -> &'static Stats {
    // SAFETY: a fresh anonymous shared mapping, zero-filled (all-zero atomics are valid), never unmapped; forked
    // children share it.
    unsafe {
        let p = libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        &*p.cast::<Stats>()
    }
}

fn emulated() -> bool {
    common::under_qemu() || !cfg!(any(target_arch = "x86_64", target_arch = "x86"))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What an honest writer publishes as its `counter`-th value.
fn honest(counter: u64) -> Imu {
    let mut v = ImuSample::default();
    v.accel.x = counter as f32;
    v.accel.y = (counter % 977) as f32;
    v.gyro.z = -((counter % 131) as f32);
    // Wrapping: `is_honest` calls this with whatever sequence number a scribbler left.
    Stamped::new(
        SampleHeader::new(7, counter, Timestamp::from_nanos(counter.wrapping_mul(1000))),
        v,
    )
}

fn is_honest(v: &Imu) -> bool {
    *v == honest(v.header.seq)
}

/// An object's whole mapping (header and payload) as atomic words, for the scribbler.
#[derive(Clone, Copy)]
struct Words {
    base: *const AtomicU64,
    len: usize,
}

impl Words {
    fn of<S: SharedState>(o: &sysv::SysvShared<S>) -> Self {
        let header = o.header() as *const object::Header;
        let len = (o.header().payload_offset.load(Ordering::Relaxed) as usize + size_of::<S>()) / 8;
        Self {
            base: header.cast(),
            len,
        }
    }
    fn at(&self, i: usize) -> &AtomicU64 {
        // SAFETY: `i < len` words of a live, 8-aligned mapping (callers take `i % len`); shared words are only
        // ever accessed atomically.
        unsafe { &*self.base.add(i % self.len) }
    }
}

/// Scribbles until `deadline`: adversarial values (flipped top bits, near-limits, odd sequences, off by one,
/// copies of other words) and random ones at random words of random objects.
///
/// It starts once the honest writer and reader hold their roles: a peer that can write a role word can always
/// keep others from claiming it (refused with a typed error, as the SIGKILL storm counts); what is tested is that
/// it never breaks processes already running.
fn scribble(targets: &[Words], stats: &Stats, deadline: Instant, seed: u64) -> i32 {
    while stats.get(ROLES_CLAIMED) < 2 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    let mut rng = Rng(seed | 1);
    let mut n = 0u64;
    while Instant::now() < deadline {
        for _ in 0..64 {
            let w = targets[(rng.next() % targets.len() as u64) as usize];
            let word = w.at(rng.next() as usize);
            let old = word.load(Ordering::Relaxed);
            let value = match rng.next() % 10 {
                0 => old ^ (1 << 63),
                1 => u64::MAX - (rng.next() % 4),
                2 => 0,
                3 => old.wrapping_add(1),
                4 => old.wrapping_sub(1),
                5 => old | 1,
                6 => w.at(rng.next() as usize).load(Ordering::Relaxed),
                7 => (1 << 62) + (rng.next() % 3),
                _ => rng.next(),
            };
            word.store(value, Ordering::Relaxed);
            n += 1;
        }
        std::thread::yield_now();
    }
    stats.add(HOSTILE_WRITES, n);
    0
}

struct Objects {
    latest: sysv::SysvShared<LatestE2e>,
    plain: sysv::SysvShared<LatestPlain>,
    spsc: sysv::SysvShared<Spsc>,
    series: sysv::SysvShared<Series>,
    storm: sysv::SysvShared<LatestE2e>,
}

fn unique_key(n: i32) -> Key {
    Key::from_raw(0x4d00_0000 | ((std::process::id() as i32 & 0x7ff) << 12) | (n & 0xfff))
}

fn private() -> ObjectOptions {
    ObjectOptions::new()
        .lifecycle(Lifecycle::RemoveOnLastDetach)
        .ready_timeout_ns(50_000_000)
}

fn writer(o: &Objects, stats: &Stats, deadline: Instant) -> i32 {
    let (mut tx_l, mut tx_s, mut tx_b) = (
        E2eSender::new(ID_LATEST),
        E2eSender::new(ID_SPSC),
        E2eSender::new(ID_SERIES),
    );
    let (Ok(mut wl), Ok(mut wp), Ok(mut ws), Ok(mut wb)) = (
        o.latest.get().writer(),
        o.plain.get().writer(),
        o.spsc.get().producer(),
        o.series.get().writer(),
    ) else {
        return 3;
    };
    stats.add(ROLES_CLAIMED, 1);
    let mut n = 0u64;
    let mut spsc_next = tx_s.protect(honest(1));
    while Instant::now() < deadline {
        for _ in 0..32 {
            n += 1;
            wl.write(&tx_l.protect(honest(n)));
            wp.write(&honest(n));
            if ws.try_push(spsc_next).is_ok() {
                spsc_next = tx_s.protect(honest(tx_s.counter() + 1));
            }
            // The time series' counter is its position + 1: a reader can check both.
            let value = honest(wb.position() + 1);
            wb.publish_one(&Stamped::new(value.header, tx_b.protect(value)));
        }
        std::thread::yield_now();
    }
    stats.add(HONEST_WRITES, n);
    0
}

/// The reading process: every buffer, with and without E2E, and time-series queries.
fn reader(o: &Objects, stats: &Stats, deadline: Instant) -> i32 {
    let mut rx_s = E2eReceiver::new(ID_SPSC);
    let mut rx_b = E2eReceiver::new(ID_SERIES);
    let Ok(mut consumer) = o.spsc.get().consumer() else {
        return 4;
    };
    stats.add(ROLES_CLAIMED, 1);
    let mut bcast = o.series.get().reader();
    let mut local = [0u64; STAT_NAMES.len()];
    let mut i = 0u64;
    while Instant::now() < deadline {
        i += 1;
        // Latest values: each read checked on its own (CRC, data id, honesty); a restarted or killed writer
        // legitimately repeats or skips counters.
        for (slot, id) in [(o.latest.get(), ID_LATEST), (o.storm.get(), ID_STORM)] {
            match slot.read() {
                Ok((sealed, _)) => e2e(&mut local, &mut E2eReceiver::new(id), &sealed),
                Err(_) => local[BUFFER_ERRORS] += 1,
            }
        }
        match o.plain.get().read() {
            Ok((v, _)) if is_honest(&v) => local[PLAIN_ACCEPTED] += 1,
            Ok(_) => local[PLAIN_TORN_ACCEPTED] += 1,
            Err(_) => local[BUFFER_ERRORS] += 1,
        }
        match consumer.try_pop() {
            Ok(sealed) => e2e(&mut local, &mut rx_s, &sealed),
            Err(Error::Empty) => {}
            Err(_) => {
                local[BUFFER_ERRORS] += 1;
                rx_s = E2eReceiver::new(ID_SPSC);
            }
        }
        match bcast.try_recv() {
            Ok((s, pos)) => match rx_b.check(&s.payload) {
                Ok(c) if c.counter == pos + 1 && c.value.header.seq == c.counter => {
                    local[if is_honest(&c.value) {
                        E2E_ACCEPTED
                    } else {
                        E2E_TORN_ACCEPTED
                    }] += 1
                }
                Ok(c) if c.counter != pos + 1 => local[SERIES_WRONG_POSITION] += 1,
                _ => {
                    local[E2E_REFUSED] += 1;
                    rx_b = E2eReceiver::new(ID_SERIES);
                }
            },
            Err(Error::Empty | Error::Lagged(_)) => {}
            Err(_) => {
                local[BUFFER_ERRORS] += 1;
                bcast = o.series.get().reader();
            }
        }
        if i % 8 == 0 {
            let ring = o.series.get();
            let t = Timestamp::from_nanos(ring.tail().min(1 << 40).saturating_sub(5) * 1000);
            for got in [ring.latest(), ring.nearest(t)] {
                match got {
                    // The stamp the search used is outside the protection: it must equal the sealed one.
                    Ok(s) => match E2eReceiver::new(ID_SERIES).check(&s.value) {
                        Ok(c) if c.counter != s.seq + 1 => local[SERIES_WRONG_POSITION] += 1,
                        Ok(c) if c.value.header.stamp == s.stamp && c.value.header.seq == c.counter => {
                            local[if is_honest(&c.value) {
                                SERIES_ACCEPTED
                            } else {
                                SERIES_TORN_ACCEPTED
                            }] += 1
                        }
                        _ => local[E2E_REFUSED] += 1,
                    },
                    Err(_) => local[BUFFER_ERRORS] += 1,
                }
            }
        }
    }
    for (k, v) in local.iter().enumerate() {
        stats.add(k, *v);
    }
    0
}

/// Checks a sealed value: accepted only if CRC, data id and counter pass; counted as torn-accepted if it passes
/// but is not what the honest writer sealed under that counter.
fn e2e(local: &mut [u64; STAT_NAMES.len()], rx: &mut E2eReceiver, sealed: &Sealed) {
    match rx.check(sealed) {
        Ok(c) if c.value.header.seq == c.counter => {
            local[if is_honest(&c.value) {
                E2E_ACCEPTED
            } else {
                E2E_TORN_ACCEPTED
            }] += 1
        }
        _ => local[E2E_REFUSED] += 1,
    }
}

/// Kills a writer of the storm slot `kills` times at random moments; each new writer takes the dead one's role
/// over and carries the counter on.
fn storm_writes(o: &Objects, stats: &Stats, kills: u64, rng: &mut Rng) -> (u64, Vec<Exit>) {
    let mut odd = Vec::new();
    for _ in 0..kills {
        let child = fork(|| {
            let slot = o.storm.get();
            let last = slot.read().map(|(s, _)| s.counter()).unwrap_or(0);
            let Ok(mut w) = slot.writer() else {
                stats.add(STORM_CLAIM_REFUSED, 1);
                return 0;
            };
            let mut tx = E2eSender::after(ID_STORM, last);
            loop {
                // Wrapping: the counter it continues from may be a scribbler's.
                let next = tx.counter().wrapping_add(1);
                w.write(&tx.protect(honest(next)));
            }
        });
        std::thread::sleep(Duration::from_micros(200 + rng.next() % 3000));
        kill(&child);
        match child.wait() {
            Exit::Signal(libc::SIGKILL) | Exit::Code(0) => {}
            other => odd.push(other),
        }
    }
    (kills, odd)
}

fn kill(child: &Child) {
    // SAFETY: our own unreaped child.
    unsafe { libc::kill(child.pid(), libc::SIGKILL) };
}

/// Kills processes that are creating objects under `keys`, then reaps; returns how many segments are left.
fn storm_creates(kills: u64, first_key: i32, rng: &mut Rng) -> (u64, usize) {
    const PER_CHILD: i32 = 8;
    for k in 0..kills as i32 {
        let base = first_key + k * PER_CHILD;
        // Keys made here: `unique_key` in the child would use the child's pid, and the sweep below would miss them.
        let keys: [Key; PER_CHILD as usize] = core::array::from_fn(|i| unique_key(base + i as i32));
        let child = fork(|| {
            let mut keep = [const { None }; PER_CHILD as usize];
            for (slot, &key) in keep.iter_mut().zip(&keys) {
                let o = sysv::create::<LatestE2e>(key, &ObjectOptions::new());
                *slot = o.ok().map(core::mem::ManuallyDrop::new);
            }
            loop {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        std::thread::sleep(Duration::from_micros(rng.next() % 1500));
        kill(&child);
        child.wait();
    }
    // A creator killed before it stamped the header leaves an object that nobody can judge: reap removes it once
    // it is older than the creation grace (the documented bound on recovering such a key).
    std::thread::sleep(Duration::from_secs(sysv::CREATE_GRACE_S as u64 + 1));
    let _ = object::reap();
    let left = (first_key..first_key + kills as i32 * PER_CHILD)
        .filter(|&k| shm::get(unique_key(k), 0, GetFlags::empty(), Mode::empty()).is_ok())
        .count();
    // Whatever reap left (it may judge a half-built object differently) is removed here, and counted above.
    for k in first_key..first_key + kills as i32 * PER_CHILD {
        if let Ok(id) = shm::get(unique_key(k), 0, GetFlags::empty(), Mode::empty()) {
            let _ = id.remove();
        }
    }
    (kills, left)
}

/// Plants segments and objects that must be refused with a typed error; returns how many were planted and the
/// descriptions of those that were not refused.
fn plants(key_base: i32) -> (u64, Vec<String>) {
    let mut planted = 0u64;
    let mut accepted = Vec::new();
    let opts = ObjectOptions::new().ready_timeout_ns(20_000_000);
    let mut refused = |what: String, r: Result<(), object::ObjectError>| {
        planted += 1;
        if r.is_ok() {
            accepted.push(what);
        }
    };
    let open = |key: Key| sysv::open::<LatestE2e>(key, &opts).map(|_| ());
    // Too small, and garbage.
    for (i, size) in [16usize, 255, 4096].into_iter().enumerate() {
        let key = unique_key(key_base + i as i32);
        let seg = shm::Options::new(size).create_exclusive(key).unwrap();
        if size == 4096 {
            let at = seg.attach(AttachOptions::new()).unwrap();
            let mut rng = Rng(0x9e37 + size as u64);
            for w in 0..size / 8 {
                // SAFETY: inside the fresh 4096-byte attachment, 8-aligned; nobody else maps it.
                unsafe { (*at.as_ptr().cast::<AtomicU64>().add(w)).store(rng.next(), Ordering::Relaxed) };
            }
        }
        refused(format!("segment of {size} bytes"), open(key));
        let _ = seg.remove();
    }
    // A real object with each header word changed.
    let words = size_of::<object::Header>() / 8;
    for w in 0..words {
        let key = unique_key(key_base + 10 + w as i32);
        let o = sysv::create::<LatestE2e>(key, &ObjectOptions::new()).unwrap();
        let header = Words::of(&o);
        let old = header.at(w).load(Ordering::Relaxed);
        header.at(w).store(old ^ 0x0101_0101_0101_0101, Ordering::Relaxed);
        let r = open(key);
        // Fields that are not part of validation (flags, creator, reserved, writer slots) may open; the
        // others must not.
        let validated = matches!(w, 0..=9);
        if validated {
            refused(format!("header word {w} changed"), r);
        } else {
            // Not validated (flags, creator, reserved, writer slots): opening may succeed; it must not panic.
            refused(
                format!("unvalidated header word {w} changed"),
                Err(r.err().unwrap_or(object::ObjectError::Os(rustix::io::Errno::INVAL))),
            );
        }
    }
    // Another uid's segment under the key.
    {
        let key = unique_key(key_base + 100);
        let o = sysv::create::<LatestE2e>(key, &ObjectOptions::new()).unwrap();
        let id = shm::get(key, 0, GetFlags::empty(), Mode::empty()).unwrap();
        id.set(65534, 65534, Mode::RUSR | Mode::WUSR).unwrap();
        refused("another uid's object".into(), open(key));
        drop(o);
        let _ = id.remove();
    }
    // POSIX: a symlink to our object and a FIFO, planted in /dev/shm.
    if std::path::Path::new("/dev/shm").is_dir() {
        let tag = std::process::id();
        let real = CString::new(format!("/sfh-real-{tag}")).unwrap();
        let _o = fd::posix::create::<LatestE2e>(&real, &ObjectOptions::new()).unwrap();
        let link = format!("/dev/shm/sfh-link-{tag}");
        std::os::unix::fs::symlink(format!("/dev/shm/sfh-real-{tag}"), &link).unwrap();
        let name = CString::new(format!("/sfh-link-{tag}")).unwrap();
        refused(
            "symlink in /dev/shm".into(),
            fd::posix::open::<LatestE2e>(&name, &opts).map(|_| ()),
        );
        let _ = std::fs::remove_file(&link);
        let fifo = CString::new(format!("/dev/shm/sfh-fifo-{tag}")).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let name = CString::new(format!("/sfh-fifo-{tag}")).unwrap();
        let t0 = Instant::now();
        refused(
            "FIFO in /dev/shm".into(),
            fd::posix::open::<LatestE2e>(&name, &opts).map(|_| ()),
        );
        assert!(t0.elapsed() < Duration::from_secs(5), "opening a FIFO blocked");
        // SAFETY: a valid C string.
        unsafe { libc::unlink(fifo.as_ptr()) };
    }
    (planted, accepted)
}

/// Waits for `child` until `deadline`; kills it (a hang) if it is still running then.
fn finish(child: Child, deadline: Instant) -> Result<Exit, &'static str> {
    while Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: our own child; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(child.pid(), &mut status, libc::WNOHANG) };
        if r == child.pid() {
            core::mem::forget(child);
            return Ok(if libc::WIFSIGNALED(status) {
                Exit::Signal(libc::WTERMSIG(status))
            } else {
                Exit::Code(libc::WEXITSTATUS(status))
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(child); // kills and reaps
    Err("hang")
}

#[test]
fn hostile_peers_never_crash_hang_leak_or_pass_a_torn_sample_with_e2e() {
    let ms = env_u64("SHMFUSION_HOSTILE_MS", if emulated() { 1200 } else { 3000 });
    let kills = env_u64("SHMFUSION_HOSTILE_KILLS", if emulated() { 15 } else { 60 });
    let stats = shared_stats();
    let segments_before = common::system_segment_ids();
    let o = Objects {
        latest: sysv::create(unique_key(1), &private()).unwrap(),
        plain: sysv::create(unique_key(2), &private()).unwrap(),
        spsc: sysv::create(unique_key(3), &private()).unwrap(),
        series: sysv::create(unique_key(4), &private()).unwrap(),
        storm: sysv::create(unique_key(5), &private()).unwrap(),
    };
    let targets = [
        Words::of(&o.latest),
        Words::of(&o.plain),
        Words::of(&o.spsc),
        Words::of(&o.series),
        Words::of(&o.storm),
    ];
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_millis(ms);
    let grace = deadline + Duration::from_secs(if emulated() { 30 } else { 10 });
    let children = [
        fork(|| writer(&o, stats, deadline)),
        fork(|| reader(&o, stats, deadline)),
        fork(|| scribble(&targets, stats, deadline, 0x5eed ^ u64::from(std::process::id()))),
    ];
    let mut rng = Rng(0xc0ffee ^ u64::from(std::process::id()));
    let (write_kills, storm_odd) = storm_writes(&o, stats, kills, &mut rng);
    let (create_kills, leaked_creates) = storm_creates(kills / 3 + 1, 200, &mut rng);
    let (planted, not_refused) = plants(1000);
    let mut panics = 0;
    let mut crashes = 0;
    let mut hangs = 0;
    for (name, child) in ["writer", "reader", "scribbler"].into_iter().zip(children) {
        match finish(child, grace) {
            Ok(Exit::Code(0)) => {}
            Ok(Exit::Code(120)) => {
                eprintln!("{name} panicked");
                panics += 1
            }
            Ok(other) => {
                eprintln!("{name} ended with {other:?}");
                crashes += 1
            }
            Err(_) => {
                eprintln!("{name} hung");
                hangs += 1
            }
        }
    }
    crashes += storm_odd.len();
    drop(o);
    // New segments, except liveness anchors marked for removal: the kernel frees those when their process exits
    // (this process's own anchor among them), so they are not leaks.
    let left_behind: Vec<_> = common::system_segment_ids()
        .into_iter()
        .filter(|id| !segments_before.contains(id))
        .filter_map(|id| Some((id, shm::ShmId::from_raw(id).stat().ok()?)))
        .filter(|(_, st)| !(shmfusion::liveness::is_anchor(st) && st.marked_for_removal))
        .collect();
    for (id, st) in &left_behind {
        println!("  left behind: segment {id}: {st:?}");
    }
    let leaks = left_behind.len() + leaked_creates;
    println!(
        "hostile peers over {:.1} s: {} kills ({write_kills} writing, {create_kills} creating), {planted} plants, {panics} panics, {crashes} crashes, {hangs} hangs, {leaks} leaks",
        t0.elapsed().as_secs_f64(),
        write_kills + create_kills,
    );
    for (name, i) in STAT_NAMES.iter().zip(0..) {
        println!("  {name}: {}", stats.get(i));
    }
    assert_eq!((panics, crashes, hangs), (0, 0, 0), "panics, crashes, hangs");
    assert_eq!(leaks, 0, "segments left behind");
    assert!(not_refused.is_empty(), "planted objects opened: {not_refused:?}");
    assert_eq!(stats.get(ROLES_CLAIMED), 2, "writer and reader claimed their roles");
    assert!(stats.get(HOSTILE_WRITES) > 0 && stats.get(HONEST_WRITES) > 0);
    assert!(stats.get(E2E_ACCEPTED) > 0, "the E2E reader accepted nothing at all");
    assert_eq!(
        stats.get(E2E_TORN_ACCEPTED),
        0,
        "torn or foreign samples accepted with E2E on"
    );
    assert_eq!(
        stats.get(SERIES_TORN_ACCEPTED),
        0,
        "torn time-series samples accepted with E2E on"
    );
    assert_eq!(
        stats.get(SERIES_WRONG_POSITION),
        0,
        "a sample returned under a position it was not written at"
    );
}
