//! Randomised hostile-peer fuzzing of every object kind another process can reach, in one process: a scribbler
//! thread keeps writing adversarial and random words over the whole mapping of each object (header, positions,
//! sequence numbers, slot stamps, role and liveness words, waiter counts, protocol words, payloads) while the
//! test, between calls, plants chosen values itself and drives every public operation on it: SPSC rings (typed
//! and runtime-sized), broadcast rings (typed and runtime-sized) and the time-indexed reads over them,
//! synchronisers fed what those reads return, latest-value slots (typed and runtime-sized), standalone roles,
//! opening, inspecting and viewing the scribbled objects read-only. Blocking calls use short timeouts.
//!
//! Checked on every call: no panic (`catch_unwind`), every call returns (a watchdog aborts the test if one call
//! takes more than `SHMFUSION_FUZZ_HANG_S`, default 10 s, 60 s under emulation: a hang detector, not a timing
//! test), only the documented errors of that call, and the invariants a caller relies on whatever the peer wrote
//! (a broadcast sample is returned under the reader's position, a lag is at least 1, a bracket surrounds its
//! query time).
//!
//! Iterations: `SHMFUSION_FUZZ_ITERS` (default 5000 natively, 500 under emulation: a few seconds in a debug
//! build), seed `SHMFUSION_FUZZ_SEED`. Run long: `SHMFUSION_FUZZ_ITERS=1000000 cargo test --release --test
//! hostile_fuzz`.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Rng;
use shmfusion::buffer::inspect::{BufferKind, BufferView};
use shmfusion::buffer::{
    BroadcastLayout, BroadcastRing, BroadcastView, Error, Latest, LatestLayout, LatestView, POSITION_LIMIT, SpscLayout,
    SpscRing, SpscView,
};
use shmfusion::fusion::sync::{ApproximateEpsilonTime, ApproximateTime, ExactTime, LatestOfEach, LatestTime, SlopTime};
use shmfusion::fusion::{ImuSample, ReadError, SampleHeader, Stamped, TimeSeriesExt, Timestamp};
use shmfusion::liveness::Role;
use shmfusion::object::{self, Lifecycle, ObjectOptions, SharedState, sysv};
use shmfusion::shm::Key;

type Imu = Stamped<ImuSample>;
type Spsc = SpscRing<[u64; 3], 8>;
type Bcast = BroadcastRing<Imu, 8>;
type Slot = Latest<[u64; 5]>;

fn emulated() -> bool {
    common::under_qemu() || !cfg!(any(target_arch = "x86_64", target_arch = "x86"))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// An object's whole mapping as atomic words.
#[derive(Clone, Copy)]
struct Words {
    base: *const AtomicU64,
    len: usize,
}
// SAFETY: the words are atomics in a mapping that outlives every thread using them (joined before it is dropped).
unsafe impl Send for Words {}
// SAFETY: as for `Send`: shared access goes through atomics only.
unsafe impl Sync for Words {}

impl Words {
    fn of_raw<R: object::Region>(o: &object::RawShared<R>) -> Self {
        let header = o.header() as *const object::Header;
        let len = (o.header().payload_offset.load(Ordering::Relaxed) + o.fingerprint().size) as usize / 8;
        Self {
            base: header.cast(),
            len,
        }
    }
    fn of<S: SharedState>(o: &sysv::SysvShared<S>) -> Self {
        Self::of_raw(o.raw())
    }
    fn at(&self, i: usize) -> &AtomicU64 {
        // SAFETY: `i % len` words into a live, 8-aligned mapping; shared words are only accessed atomically.
        unsafe { &*self.base.add(i % self.len) }
    }
    /// The first payload word (the header is 256 bytes).
    fn payload_word(&self, rng: &mut Rng) -> &AtomicU64 {
        self.at(32 + rng.below(self.len as u64 - 32) as usize)
    }
}

/// A value a hostile peer would write over `old`: bit flips, limits, odd (mid-write) stamps, off by one, copies
/// of other words (own role tokens, other positions), positions around [`POSITION_LIMIT`], role-like tokens.
fn hostile_value(rng: &mut Rng, old: u64, w: &Words) -> u64 {
    match rng.below(16) {
        0 => old ^ (1 << 63),
        1 => u64::MAX - rng.below(4),
        2 => 0,
        3 => old.wrapping_add(1),
        4 => old.wrapping_sub(1),
        5 => old | 1,
        6 => w.at(rng.next() as usize).load(Ordering::Relaxed),
        7 => POSITION_LIMIT - 2 + rng.below(5),
        8 => 1,
        9 => (1 << 63) | rng.next(),
        10 => old.wrapping_add(rng.below(64)),
        11 => old.wrapping_sub(rng.below(64)),
        12 => rng.below(32),
        13 => (old & 0xffff_ffff) | (rng.next() << 32),
        14 => (old & !0xffff_ffff) | (rng.next() & 0xffff_ffff),
        _ => rng.next(),
    }
}

/// Between calls: one to three hostile payload words, half of the time.
fn maybe_scribble(rng: &mut Rng, w: &Words) {
    if rng.chance(2) {
        let n = 1 + rng.below(3) as usize;
        scribble(rng, w, n, false);
    }
}

fn scribble(rng: &mut Rng, w: &Words, n: usize, header_too: bool) {
    for _ in 0..n {
        let word = if header_too && rng.chance(8) {
            w.at(rng.below(32) as usize)
        } else {
            w.payload_word(rng)
        };
        let old = word.load(Ordering::Relaxed);
        word.store(hostile_value(rng, old, w), Ordering::Relaxed);
    }
}

/// What every call reports to the watchdog.
static BEAT: AtomicU64 = AtomicU64::new(0);
static OP: AtomicUsize = AtomicUsize::new(0);
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn now_ms() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

const OPS: [&str; 12] = [
    "spsc",
    "spsc-view",
    "broadcast",
    "broadcast-view",
    "series",
    "sync",
    "latest",
    "latest-view",
    "role",
    "open",
    "inspect",
    "idle",
];

/// Runs `f` as operation `op`, catching a panic; returns the panic message if there was one.
fn guarded(op: usize, f: impl FnOnce()) -> Option<String> {
    OP.store(op, Ordering::Relaxed);
    BEAT.store(now_ms(), Ordering::Relaxed);
    let r = catch_unwind(AssertUnwindSafe(f));
    OP.store(OPS.len() - 1, Ordering::Relaxed);
    BEAT.store(now_ms(), Ordering::Relaxed);
    r.err().map(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// Fails (aborts: a hung call cannot be unwound) when a call takes longer than `limit`.
fn watchdog(limit: Duration, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let beat = BEAT.load(Ordering::Relaxed);
        let op = OP.load(Ordering::Relaxed);
        if op != OPS.len() - 1 && now_ms().saturating_sub(beat) > limit.as_millis() as u64 {
            eprintln!("HANG: a '{}' call has not returned for {limit:?}", OPS[op]);
            std::process::abort();
        }
    }
}

/// Unexpected results, by description (the test fails if there is any).
#[derive(Default)]
struct Findings(std::collections::BTreeMap<String, u64>);
impl Findings {
    fn add(&mut self, what: String) {
        *self.0.entry(what).or_default() += 1;
    }
}

/// Checks a buffer error against the set a call documents.
fn allowed(f: &mut Findings, op: &str, r: Result<(), Error>, ok: &[fn(&Error) -> bool]) {
    if let Err(e) = r {
        if let Error::Lagged(0) = e {
            f.add(format!("{op}: Lagged(0)"));
        }
        if !ok.iter().any(|p| p(&e)) {
            f.add(format!("{op}: undocumented {e:?}"));
        }
    }
}

fn full(e: &Error) -> bool {
    matches!(e, Error::Full)
}
fn empty(e: &Error) -> bool {
    matches!(e, Error::Empty)
}
fn corrupt(e: &Error) -> bool {
    matches!(e, Error::Corrupt { .. })
}
fn lagged(e: &Error) -> bool {
    matches!(e, Error::Lagged(_))
}
fn contended(e: &Error) -> bool {
    matches!(e, Error::Contended)
}
fn claim(e: &Error) -> bool {
    matches!(e, Error::RoleTaken { .. } | Error::Liveness(_) | Error::Corrupt { .. })
}
fn waited(e: &Error) -> bool {
    matches!(
        e,
        Error::Timeout | Error::WriterGone | Error::ReaderGone | Error::Closed
    )
}

const SHORT: Option<Duration> = Some(Duration::from_millis(1));

fn timeout(rng: &mut Rng) -> Option<Duration> {
    match rng.below(4) {
        0 => Some(Duration::ZERO),
        1 => Some(Duration::from_micros(rng.below(3000))),
        _ => SHORT,
    }
}

fn drive_spsc(rng: &mut Rng, ring: &Spsc, w: &Words, f: &mut Findings) {
    let (p, c) = (ring.producer(), ring.consumer());
    if let Err(e) = &p {
        allowed(f, "spsc producer", Err(*e), &[claim]);
    }
    if let Err(e) = &c {
        allowed(f, "spsc consumer", Err(*e), &[claim]);
    }
    let (mut p, mut c) = (p.ok(), c.ok());
    let _ = (ring.positions(), ring.len(), ring.is_empty());
    let _ = (ring.producer_holder(), ring.consumer_holder());
    for _ in 0..rng.below(12) {
        maybe_scribble(rng, w);
        let v = [rng.next(); 3];
        match (rng.below(8), p.as_mut(), c.as_mut()) {
            (0, Some(p), _) => allowed(f, "spsc try_push", p.try_push(v), &[full, corrupt]),
            (1, Some(p), _) => {
                let vs = [v; 5];
                let n = rng.below(6) as usize;
                match p.push_slice(&vs[..n]) {
                    Ok(k) if k > n => f.add("spsc push_slice: more than given".into()),
                    r => allowed(f, "spsc push_slice", r.map(|_| ()), &[corrupt]),
                }
            }
            (2, Some(p), _) => allowed(f, "spsc push_wait", p.push_wait(v, timeout(rng)), &[corrupt, waited]),
            (3, Some(p), _) => allowed(
                f,
                "spsc reserve",
                p.reserve().map(|mut s| {
                    s.write(&v);
                    s.commit()
                }),
                &[full, corrupt],
            ),
            (4, _, Some(c)) => allowed(f, "spsc try_pop", c.try_pop().map(|_| ()), &[empty, corrupt]),
            (5, _, Some(c)) => {
                let mut out = [[0u64; 3]; 5];
                let n = rng.below(6) as usize;
                match c.pop_slice(&mut out[..n]) {
                    Ok(k) if k > n => f.add("spsc pop_slice: more than room".into()),
                    r => allowed(f, "spsc pop_slice", r.map(|_| ()), &[empty, corrupt]),
                }
            }
            (6, _, Some(c)) => allowed(
                f,
                "spsc pop_wait",
                c.pop_wait(timeout(rng)).map(|_| ()),
                &[corrupt, waited],
            ),
            (7, _, Some(c)) => allowed(
                f,
                "spsc peek",
                c.peek().map(|s| {
                    let _ = s.read();
                    if rng.chance(2) {
                        s.release()
                    }
                }),
                &[empty, corrupt],
            ),
            _ => {}
        }
    }
}

fn drive_spsc_view(rng: &mut Rng, o: &sysv::SysvRawShared, layout: &SpscLayout, w: &Words, f: &mut Findings) {
    let view = match SpscView::new(o, layout) {
        Ok(v) => v,
        Err(e) => return f.add(format!("spsc view: {e:?}")),
    };
    let (mut p, mut c) = (view.producer().ok(), view.consumer().ok());
    let _ = (
        view.positions(),
        view.len(),
        view.producer_holder(),
        view.consumer_holder(),
    );
    let size = layout.element_size();
    for _ in 0..rng.below(12) {
        maybe_scribble(rng, w);
        let v = vec![rng.next() as u8; size];
        let mut out = vec![0u8; size];
        match (rng.below(5), p.as_mut(), c.as_mut()) {
            (0, Some(p), _) => allowed(f, "spsc view try_push", p.try_push(&v), &[full, corrupt]),
            (1, Some(p), _) => allowed(
                f,
                "spsc view push_wait",
                p.push_wait(&v, timeout(rng)),
                &[corrupt, waited],
            ),
            (2, _, Some(c)) => allowed(f, "spsc view try_pop", c.try_pop_into(&mut out), &[empty, corrupt]),
            (3, _, Some(c)) => allowed(
                f,
                "spsc view pop_wait",
                c.pop_wait_into(&mut out, timeout(rng)),
                &[corrupt, waited],
            ),
            (4, Some(p), _) => allowed(
                f,
                "spsc view reserve",
                p.reserve().map(|mut s| {
                    s.bytes().store(0, &v);
                    s.commit()
                }),
                &[full, corrupt],
            ),
            _ => {}
        }
    }
}

/// Checks a successful broadcast receive: at the reader's position, which then moves just past it.
fn received(f: &mut Findings, op: &str, before: u64, pos: u64, after: u64) {
    if pos >= POSITION_LIMIT || after != pos + 1 || pos < before {
        f.add(format!("{op}: sample at {pos}, cursor {before} -> {after}"));
    }
}

fn drive_broadcast(rng: &mut Rng, ring: &Bcast, w: &Words, f: &mut Findings) {
    let mut writer = match ring.writer() {
        Ok(wr) => Some(wr),
        Err(e) => {
            allowed(f, "broadcast writer", Err(e), &[claim]);
            None
        }
    };
    let _ = (ring.tail(), ring.writer_holder());
    let mut readers = [ring.reader(), ring.reader_from_oldest(), ring.reader_at(rng.next())];
    for _ in 0..rng.below(16) {
        maybe_scribble(rng, w);
        let r = &mut readers[rng.below(3) as usize];
        let before = r.position();
        match rng.below(6) {
            0 | 1 => {
                if let Some(wr) = writer.as_mut() {
                    let stamp = Timestamp::from_nanos(wr.position().wrapping_mul(1000));
                    let s = Stamped::new(SampleHeader::new(1, wr.position(), stamp), ImuSample::default());
                    if rng.chance(4) {
                        wr.publish_slice(&[s; 3]);
                    } else {
                        wr.publish_one(&s);
                    }
                }
            }
            2 => match r.try_recv() {
                Ok((_, pos)) => received(f, "broadcast try_recv", before, pos, r.position()),
                Err(e) => allowed(f, "broadcast try_recv", Err(e), &[empty, lagged, corrupt]),
            },
            3 => match r.recv_wait(timeout(rng)) {
                Ok((_, pos)) => received(f, "broadcast recv_wait", before, pos, r.position()),
                Err(e) => allowed(f, "broadcast recv_wait", Err(e), &[lagged, corrupt, waited]),
            },
            4 => {
                let _ = r.skip_to_latest();
            }
            _ => {
                let mut out = Imu::default();
                match r.try_recv_into(&mut out) {
                    Ok(pos) => received(f, "broadcast try_recv_into", before, pos, r.position()),
                    Err(e) => allowed(f, "broadcast try_recv_into", Err(e), &[empty, lagged, corrupt]),
                }
            }
        }
    }
}

fn drive_broadcast_view(rng: &mut Rng, o: &sysv::SysvRawShared, layout: &BroadcastLayout, w: &Words, f: &mut Findings) {
    let view = match BroadcastView::new(o, layout) {
        Ok(v) => v,
        Err(e) => return f.add(format!("broadcast view: {e:?}")),
    };
    let mut writer = view.writer().ok();
    let _ = (view.tail(), view.writer_holder());
    let mut readers = [view.reader(), view.reader_from_oldest(), view.reader_at(rng.next())];
    let mut out = vec![0u8; layout.element_size()];
    for _ in 0..rng.below(16) {
        maybe_scribble(rng, w);
        let r = &mut readers[rng.below(3) as usize];
        let before = r.position();
        match rng.below(4) {
            0 => {
                if let Some(wr) = writer.as_mut() {
                    wr.publish(&out.clone());
                }
            }
            1 => match r.try_recv_into(&mut out) {
                Ok(pos) => received(f, "broadcast view try_recv", before, pos, r.position()),
                Err(e) => allowed(f, "broadcast view try_recv", Err(e), &[empty, lagged, corrupt]),
            },
            2 => match r.recv_wait_into(&mut out, timeout(rng)) {
                Ok(pos) => received(f, "broadcast view recv_wait", before, pos, r.position()),
                Err(e) => allowed(f, "broadcast view recv_wait", Err(e), &[lagged, corrupt, waited]),
            },
            _ => {
                let _ = r.skip_to_latest();
            }
        }
    }
}

/// Time-indexed reads over a scribbled ring; every `Ok` must be a real bracket of the query time.
fn drive_series(rng: &mut Rng, ring: &Bcast, w: &Words, f: &mut Findings) -> Vec<Timestamp> {
    let mut stamps = Vec::new();
    for _ in 0..rng.below(6) {
        maybe_scribble(rng, w);
        let t = Timestamp::from_nanos(match rng.below(4) {
            0 => rng.next(),
            1 => ring.tail().wrapping_mul(1000).wrapping_sub(rng.below(9000)),
            2 => u64::MAX - rng.below(3),
            _ => rng.below(3),
        });
        match ring.bracket(t) {
            Ok(b) => {
                stamps.push(b.before.stamp);
                let exact = b.before.seq == b.after.seq && b.before.stamp == t;
                let around = b.after.seq == b.before.seq.wrapping_add(1) && b.before.stamp <= t && t <= b.after.stamp;
                if !(exact || around) {
                    f.add(format!("bracket({t:?}) = {:?}..{:?}", b.before.seq, b.after.seq));
                }
                let _ = b.interpolate(t);
                let _ = b.ratio(t);
            }
            Err(ReadError::Corrupt | ReadError::Empty | ReadError::NonMonotonic | ReadError::Overwritten) => {}
            Err(ReadError::ExtrapolationPast { .. } | ReadError::ExtrapolationFuture { .. }) => {}
            #[allow(unreachable_patterns)]
            Err(e) => f.add(format!("bracket: undocumented {e:?}")),
        }
        let _ = ring.nearest(t);
        let _ = ring.interpolate_at(t);
        if let Ok(s) = ring.latest() {
            if s.seq >= POSITION_LIMIT {
                f.add(format!("latest at {}", s.seq));
            }
            stamps.push(s.stamp);
        }
    }
    stamps
}

/// Synchronisers fed stamps read out of a hostile ring (and extreme ones): never a panic.
fn drive_sync(rng: &mut Rng, stamps: &[Timestamp]) {
    let mut exact = ExactTime::<u64, 2, 4>::default();
    let mut approx = ApproximateTime::<u64, 2, 4>::new();
    let mut eps = ApproximateEpsilonTime::<u64, 2, 4>::new(Duration::from_nanos(rng.next() >> rng.below(64)));
    let mut slop = SlopTime::<u64, 2, 4>::new(Duration::from_nanos(rng.next() >> rng.below(64)));
    let mut latest_time = LatestTime::<u64, 2>::new();
    let mut each = LatestOfEach::<u64, 2>::new(0);
    let extreme = [0, 1, u64::MAX, u64::MAX - 1, i64::MAX as u64, i64::MAX as u64 + 1];
    for i in 0..12 {
        let t = match rng.below(3) {
            0 if !stamps.is_empty() => stamps[rng.below(stamps.len() as u64) as usize],
            1 => Timestamp::from_nanos(extreme[rng.below(extreme.len() as u64) as usize]),
            _ => Timestamp::from_nanos(rng.next()),
        };
        let ch = rng.below(3) as usize;
        let _ = exact.push(ch, t, i, |_| {});
        let _ = approx.push(ch, t, i, |_| {});
        let _ = eps.push(ch, t, i, |_| {});
        let _ = slop.push(ch, t, i, |_| {});
        let _ = latest_time.push(ch, t, i, |_| {});
        let _ = each.push(ch, t, i, |_| {});
    }
    let _ = (latest_time.rate_hz(0), latest_time.rate_hz(1));
}

fn drive_latest(rng: &mut Rng, slot: &Slot, w: &Words, f: &mut Findings) {
    let mut writer = match slot.writer() {
        Ok(wr) => Some(wr),
        Err(e) => {
            allowed(f, "latest writer", Err(e), &[claim]);
            None
        }
    };
    let _ = (slot.sequence(), slot.writer_holder());
    for _ in 0..rng.below(10) {
        maybe_scribble(rng, w);
        match (rng.below(4), writer.as_mut()) {
            (0, Some(wr)) => {
                wr.write(&[rng.next(); 5]);
            }
            (1, _) => match slot.read() {
                Ok((_, 0)) => f.add("latest read: sequence 0".into()),
                r => allowed(f, "latest read", r.map(|_| ()), &[empty, contended]),
            },
            (2, _) => {
                let after = match rng.below(3) {
                    0 => slot.sequence(),
                    1 => u64::MAX,
                    _ => rng.next(),
                };
                match slot.wait_newer(after, timeout(rng)) {
                    Ok((_, seq)) if seq <= after => f.add("latest wait_newer: not newer".into()),
                    r => allowed(f, "latest wait_newer", r.map(|_| ()), &[empty, contended, waited]),
                }
            }
            _ => {
                let mut out = [0u64; 5];
                allowed(
                    f,
                    "latest read_into",
                    slot.read_into(&mut out).map(|_| ()),
                    &[empty, contended],
                );
            }
        }
    }
}

fn drive_latest_view(rng: &mut Rng, o: &sysv::SysvRawShared, layout: &LatestLayout, w: &Words, f: &mut Findings) {
    let view = match LatestView::new(o, layout) {
        Ok(v) => v,
        Err(e) => return f.add(format!("latest view: {e:?}")),
    };
    let mut writer = view.writer().ok();
    let _ = (view.sequence(), view.writer_holder());
    let mut out = vec![0u8; layout.element_size()];
    for _ in 0..rng.below(10) {
        maybe_scribble(rng, w);
        match (rng.below(3), writer.as_mut()) {
            (0, Some(wr)) => {
                wr.write(&out.clone());
            }
            (1, _) => allowed(
                f,
                "latest view read",
                view.read_into(&mut out).map(|_| ()),
                &[empty, contended],
            ),
            _ => allowed(
                f,
                "latest view wait_newer",
                view.wait_newer_into(rng.next() >> rng.below(64), &mut out, timeout(rng))
                    .map(|_| ()),
                &[empty, contended, waited],
            ),
        }
    }
}

fn drive_role(rng: &mut Rng, role: &Role, w: &Words) {
    for _ in 0..rng.below(6) {
        maybe_scribble(rng, w);
        let _ = (role.holder(), role.is_closed());
        let record = role.record();
        let _ = (record.holder(), record.liveness(), record.is_free());
        if let Ok(mut g) = role.claim() {
            maybe_scribble(rng, w);
            let _ = g.is_held();
            let _ = g.release();
        }
    }
}

/// Opens every scribbled object again (typed and raw), inspects it and views its payload read-only.
fn drive_open(rng: &mut Rng, objects: &[(shmfusion::shm::ShmId, Words, [u64; 32])], f: &mut Findings) {
    let opts = ObjectOptions::new().ready_timeout_ns(rng.below(2_000_000));
    let (id, w, header) = objects[rng.below(objects.len() as u64) as usize];
    // The header as created, so that damage does not pile up and the deep checks stay reachable.
    for (i, v) in header.iter().enumerate() {
        w.at(i).store(*v, Ordering::Relaxed);
    }
    if rng.chance(2) {
        let n = 1 + rng.below(4) as usize;
        scribble(rng, &w, n, true);
    }
    let _ = sysv::open_id::<Spsc>(id, &opts).map(|o| o.get().positions());
    let _ = sysv::open_id::<Bcast>(id, &opts).map(|o| o.get().tail());
    let _ = sysv::open_id::<Slot>(id, &opts).map(|o| o.get().sequence());
    let _ = sysv::open_id::<Role>(id, &opts).map(|o| o.get().holder());
    match object::inspect(id) {
        Ok(i) => {
            let _ = (i.contents(), i.header_writable_by_others());
            if let Some(h) = i.header {
                let _ = h.creator.holder();
                view_payload(rng, &w, h, f);
            }
        }
        Err(e) => f.add(format!("inspect: {e:?}")),
    }
}

/// A read-only view of `w`'s payload under `header`, some of its fields changed.
fn view_payload(rng: &mut Rng, w: &Words, mut h: object::Snapshot, f: &mut Findings) {
    for _ in 0..rng.below(3) {
        let v = hostile_value(rng, 0, w);
        match rng.below(5) {
            0 => h.capacity = v,
            1 => h.element_size = v,
            2 => h.payload_size = v,
            3 => h.payload_offset = v,
            _ => h.kind_hash = v,
        }
    }
    // SAFETY: the mapping's words, viewed as bytes: atomics of the same size and alignment 1; accessed atomically.
    let all = unsafe { std::slice::from_raw_parts(w.base.cast::<core::sync::atomic::AtomicU8>(), w.len * 8) };
    let payload = all
        .get(h.payload_offset.min(all.len() as u64) as usize..)
        .unwrap_or(&[]);
    if let Ok(view) = BufferView::new(payload, &h) {
        let mut s = view.state();
        // Directed: move the position word by 2^63, where every slot stamp `2 (p + 1)` names a second position.
        if rng.chance(2) && s.written != 0 {
            let first = h.payload_offset as usize / 8;
            if let Some(word) = (first..w.len)
                .map(|i| w.at(i))
                .find(|x| x.load(Ordering::Relaxed) == s.written)
            {
                word.store(s.written ^ (1 << 63), Ordering::Relaxed);
                s = view.state();
            }
        }
        let _ = (s.writer.holder(), s.consumer.holder(), view.kind(), view.capacity());
        let mut out = vec![0u8; rng.below(view.element_size() as u64 + 1) as usize];
        for pos in [
            rng.next(),
            s.written.wrapping_sub(1),
            s.written.wrapping_sub(rng.below(16)),
        ] {
            match view.read(pos, &mut out) {
                // Beyond the limit a slot stamp names two positions: such a read would be another sample.
                Ok(()) if view.kind() == BufferKind::BroadcastRing && pos >= POSITION_LIMIT => {
                    f.add(format!("buffer view read: a sample at position {pos:#x}"))
                }
                Err(Error::Lagged(0)) => f.add("buffer view read: Lagged(0)".into()),
                _ => {}
            }
        }
    }
}

fn private() -> ObjectOptions {
    ObjectOptions::new().lifecycle(Lifecycle::RemoveOnLastDetach)
}

#[test]
fn hostile_bytes_never_panic_hang_or_give_undocumented_errors() {
    let iters = env_u64("SHMFUSION_FUZZ_ITERS", if emulated() { 500 } else { 5000 });
    let seed = env_u64("SHMFUSION_FUZZ_SEED", 0x5eed_1234 ^ u64::from(std::process::id()));
    let hang = Duration::from_secs(env_u64("SHMFUSION_FUZZ_HANG_S", if emulated() { 60 } else { 10 }));
    println!("hostile fuzz: {iters} iterations, seed {seed:#x}");

    let spsc = sysv::create::<Spsc>(Key::PRIVATE, &private()).unwrap();
    let bcast = sysv::create::<Bcast>(Key::PRIVATE, &private()).unwrap();
    let slot = sysv::create::<Slot>(Key::PRIVATE, &private()).unwrap();
    let role = sysv::create::<Role>(Key::PRIVATE, &private()).unwrap();
    let spsc_layout = SpscLayout::new(13, 1, 4).unwrap();
    let bcast_layout = BroadcastLayout::new(21, 4, 4).unwrap();
    let latest_layout = LatestLayout::new(11, 1).unwrap();
    let typed = private().type_name("hostile-fuzz");
    let raw = |desc| sysv::create_raw(Key::PRIVATE, &typed.fingerprint_described(&desc).unwrap(), &private());
    let spsc_raw = raw(spsc_layout.payload()).unwrap();
    let bcast_raw = raw(bcast_layout.payload()).unwrap();
    let latest_raw = raw(latest_layout.payload()).unwrap();
    let words = [
        Words::of(&spsc),
        Words::of(&bcast),
        Words::of(&slot),
        Words::of(&role),
        Words::of_raw(&spsc_raw),
        Words::of_raw(&bcast_raw),
        Words::of_raw(&latest_raw),
    ];
    let ids = [
        spsc.region().id(),
        bcast.region().id(),
        slot.region().id(),
        role.region().id(),
        spsc_raw.region().id(),
        bcast_raw.region().id(),
        latest_raw.region().id(),
    ];
    let objects: Vec<_> = ids
        .into_iter()
        .zip(words)
        .map(|(id, w)| (id, w, core::array::from_fn(|i| w.at(i).load(Ordering::Relaxed))))
        .collect();

    let stop = AtomicBool::new(false);
    let mut findings = Findings::default();
    let mut panics = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| watchdog(hang, &stop));
        // The concurrent scribbler: payload words of every object, now and then a header word.
        s.spawn(|| {
            let mut rng = Rng(seed.rotate_left(17) | 1);
            while !stop.load(Ordering::Relaxed) {
                let w = words[rng.below(words.len() as u64) as usize];
                let header_too = rng.chance(64);
                scribble(&mut rng, &w, 16, header_too);
                std::thread::yield_now();
            }
        });
        let mut rng = Rng(seed | 1);
        for _ in 0..iters {
            let op = rng.below(11) as usize;
            let f = &mut findings;
            let panic = guarded(op, || match op {
                0 => drive_spsc(&mut rng, spsc.get(), &words[0], f),
                1 => drive_spsc_view(&mut rng, &spsc_raw, &spsc_layout, &words[4], f),
                2 => drive_broadcast(&mut rng, bcast.get(), &words[1], f),
                3 => drive_broadcast_view(&mut rng, &bcast_raw, &bcast_layout, &words[5], f),
                4 => {
                    let _ = drive_series(&mut rng, bcast.get(), &words[1], f);
                }
                5 => {
                    let stamps = drive_series(&mut rng, bcast.get(), &words[1], f);
                    drive_sync(&mut rng, &stamps);
                }
                6 => drive_latest(&mut rng, slot.get(), &words[2], f),
                7 => drive_latest_view(&mut rng, &latest_raw, &latest_layout, &words[6], f),
                8 => drive_role(&mut rng, role.get(), &words[3]),
                9 => drive_open(&mut rng, &objects, f),
                _ => {
                    let (_, w, _) = objects[rng.below(objects.len() as u64) as usize];
                    let _ = object::inspect(objects[0].0);
                    scribble(&mut rng, &w, 8, false);
                }
            });
            if let Some(p) = panic {
                panics.push(format!("{}: {p}", OPS[op]));
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    for (what, n) in &findings.0 {
        println!("  finding: {what} (x{n})");
    }
    for p in &panics {
        println!("  panic: {p}");
    }
    assert!(panics.is_empty(), "{} panics", panics.len());
    assert!(
        findings.0.is_empty(),
        "{} kinds of unexpected results",
        findings.0.len()
    );
}
