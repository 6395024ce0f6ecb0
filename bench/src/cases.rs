//! The cases, their plan (which transport, size and measurement) and how one run of a case is carried out.

use std::sync::atomic::Ordering;
use std::time::Duration;

use shmfusion::buffer::{Error, SpscRing};

use crate::sys::{self, SharedMem, barrier, now_ns};
use crate::transport::{self, Channel, Kind, set_token, token};

/// How a case is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One-way latency as half the round trip of a ping-pong (the sender stamps before sending and after the echo).
    PingPong,
    /// One-way latency of a wake-up: the sender sleeps 200 µs before each message (so the receiver is asleep),
    /// stamps it with CLOCK_MONOTONIC, and the receiver subtracts on arrival.
    Wake,
    /// Throughput: the producer sends as fast as it can, the consumer times the whole stream.
    Stream,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::PingPong => "pingpong",
            Mode::Wake => "wake",
            Mode::Stream => "stream",
        }
    }
}

/// What a case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Transport(Kind),
    /// `rtrb` between two threads of one process, one item per call (through the same `Tx`/`Rx` sides as the other
    /// transports).
    Rtrb,
    /// `rtrb` with `write_chunk_uninit` (64) / `read_chunk` (up to 256), copying in from and out to a buffer.
    RtrbChunks,
    /// shmfusion SPSC `push_slice` (64) / `pop_slice` (up to 256) between processes.
    SpscBatch,
    /// The same batches through a raw shared ring of 1024 `u64` (positions, plain `memcpy` of each run): what a
    /// batched stream between two processes costs without a library around the copy (a reference).
    RawBatch,
}

impl Subject {
    pub fn name(self) -> &'static str {
        match self {
            Subject::Transport(k) => k.name(),
            Subject::Rtrb => "rtrb (threads)",
            Subject::RtrbChunks => "rtrb chunks (threads)",
            Subject::SpscBatch => "shmfusion spsc batched",
            Subject::RawBatch => "raw shared ring batched (memcpy)",
        }
    }
}

pub struct Case {
    pub subject: Subject,
    pub mode: Mode,
    pub size: usize,
    /// Timed iterations (round trips, wake-ups or messages).
    pub iters: usize,
}

impl Case {
    pub fn key(&self) -> String {
        key(self.mode, self.subject.name(), self.size)
    }
}

pub fn key(mode: Mode, name: &str, size: usize) -> String {
    format!("{}/{}/{}", mode.name(), name, size)
}

/// One run of one case.
#[derive(Default, Clone)]
pub struct Outcome {
    /// One-way latencies in ns (latency modes).
    pub samples: Vec<u64>,
    /// Wall time of the whole stream in ns (stream mode).
    pub elapsed_ns: u64,
    /// CPU time of both sides during the timed part.
    pub cpu_ns: u64,
    /// Messages in the timed part (each one-way hop of a ping-pong counts).
    pub messages: u64,
    pub error: Option<String>,
}

const ALL_KINDS: &[Kind] = &[
    Kind::Floor,
    Kind::SpscValue,
    Kind::SpscInPlace,
    Kind::SpscWait,
    Kind::Broadcast,
    Kind::BroadcastWait,
    Kind::Latest,
    Kind::LatestWait,
    Kind::Pipe,
    Kind::UnixStream,
    Kind::UnixDgram,
    Kind::Eventfd,
    Kind::Futex,
    Kind::RawRing,
    #[cfg(feature = "iceoryx2")]
    Kind::Iceoryx2,
    #[cfg(feature = "iceoryx2")]
    Kind::Iceoryx2Event,
];

/// Every case, with iteration counts scaled by `scale` (1.0: the README's run).
pub fn plan(scale: f64) -> Vec<Case> {
    let n = |base: usize| ((base as f64 * scale) as usize).max(20);
    let mut plan = Vec::new();
    for &k in ALL_KINDS {
        for &size in k.sizes() {
            // Large messages get more iterations than their cost alone would ask for: at 150 round trips of
            // 1 MiB (37 at the default scale) one descheduled round trip moved a round's p50, and the per-round
            // ratios spread from 0.76 to 2.02.
            let base = match size {
                8 | 64 => 20_000,
                1024 => 10_000,
                65536 => 2_000,
                _ => 600,
            };
            let base = if k.blocking() { base / 2 } else { base };
            plan.push(Case {
                subject: Subject::Transport(k),
                mode: Mode::PingPong,
                size,
                iters: n(base),
            });
        }
    }
    plan.push(Case {
        subject: Subject::Rtrb,
        mode: Mode::PingPong,
        size: 8,
        iters: n(20_000),
    });
    for k in [
        Kind::SpscWait,
        Kind::BroadcastWait,
        Kind::LatestWait,
        Kind::Futex,
        Kind::Pipe,
        Kind::Eventfd,
        #[cfg(feature = "iceoryx2")]
        Kind::Iceoryx2Event,
    ] {
        plan.push(Case {
            subject: Subject::Transport(k),
            mode: Mode::Wake,
            size: 8,
            iters: n(1_000),
        });
    }
    // iceoryx2 is left out of the throughput cases: with `RetryUntilDelivered` and safe overflow off its
    // subscriber still missed samples once its buffer was full (1 KiB: samples 0..63, then 6106) and stalled at
    // 64 KiB, so its figures would not be throughput of delivered messages.
    let stream_kinds = [
        Kind::SpscValue,
        Kind::SpscInPlace,
        Kind::RawRing,
        Kind::Pipe,
        Kind::UnixStream,
    ];
    for k in stream_kinds {
        for &size in k.sizes() {
            let base = match size {
                8 => 2_000_000,
                64 => 1_000_000,
                1024 => 200_000,
                65536 => 40_000,
                _ => 4_000,
            };
            let base = if matches!(k, Kind::Pipe | Kind::UnixStream) {
                base / 10
            } else {
                base
            };
            plan.push(Case {
                subject: Subject::Transport(k),
                mode: Mode::Stream,
                size,
                iters: n(base),
            });
        }
    }
    for subject in [
        Subject::SpscBatch,
        Subject::RawBatch,
        Subject::Rtrb,
        Subject::RtrbChunks,
    ] {
        plan.push(Case {
            subject,
            mode: Mode::Stream,
            size: 8,
            iters: n(2_000_000),
        });
    }
    plan
}

/// Runs every case once per round, in the same order each round; `results[case][round]`.
pub fn run(plan: &[Case], rounds: usize) -> Vec<Vec<Outcome>> {
    let mut results = vec![Vec::with_capacity(rounds); plan.len()];
    let mut id = 0u64;
    for round in 0..rounds {
        let t0 = std::time::Instant::now();
        for (i, case) in plan.iter().enumerate() {
            id += 1;
            let out = run_one(case, id);
            if let Some(e) = &out.error {
                eprintln!("round {round}: {}: {e}", case.key());
            }
            results[i].push(out);
        }
        eprintln!(
            "round {}/{rounds} done in {:.1} s",
            round + 1,
            t0.elapsed().as_secs_f64()
        );
    }
    results
}

/// Result words in the shared mapping: barrier, the two sides' CPU times, elapsed time; samples from word 8.
const BARRIER: usize = 0;
const CPU_A: usize = 1;
const CPU_B: usize = 2;
const ELAPSED: usize = 3;
const SAMPLES: usize = 8;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn run_one(case: &Case, id: u64) -> Outcome {
    match try_run(case, id) {
        Ok(o) => o,
        Err(e) => Outcome {
            error: Some(e),
            ..Outcome::default()
        },
    }
}

fn try_run(case: &Case, id: u64) -> Result<Outcome, String> {
    let warm = (case.iters / 10).max(10);
    let res = SharedMem::new((SAMPLES + case.iters) * 8).map_err(|e| e.to_string())?;
    let (cpu_a, cpu_b) = sys::cpu_pair();
    match (case.subject, case.mode) {
        (Subject::Transport(kind), Mode::PingPong | Mode::Wake) => {
            let (a, b) = if kind == Kind::Floor {
                transport::floor_pair()?
            } else {
                (
                    transport::channel(kind, case.size, id * 2)?,
                    transport::channel(kind, case.size, id * 2 + 1)?,
                )
            };
            let wake = case.mode == Mode::Wake;
            let echo = sys::fork_pinned(cpu_b, || echo(&*a, &*b, case, warm, wake, &res)).map_err(|e| e.to_string())?;
            let send = sys::fork_pinned(cpu_a, || ping(&*a, &*b, case, warm, wake, &res));
            let send = match send {
                Ok(p) => p,
                Err(e) => {
                    let _ = sys::wait_all(&[echo], Duration::ZERO);
                    return Err(e.to_string());
                }
            };
            let r = sys::wait_all(&[send, echo], Duration::from_secs(120));
            drop((a, b));
            r?;
        }
        (Subject::Transport(kind), Mode::Stream) => {
            let a = transport::channel(kind, case.size, id * 2)?;
            let cons = sys::fork_pinned(cpu_b, || consume(&*a, case, &res)).map_err(|e| e.to_string())?;
            let prod = sys::fork_pinned(cpu_a, || produce(&*a, case, &res)).map_err(|e| e.to_string())?;
            let r = sys::wait_all(&[prod, cons], Duration::from_secs(120));
            drop(a);
            r?;
        }
        (Subject::SpscBatch, _) => {
            let ring = crate::transport::create_object::<SpscRing<u64, 1024>>()?;
            let cons = sys::fork_pinned(cpu_b, || batch_consume(ring.get(), case, &res)).map_err(|e| e.to_string())?;
            let prod = sys::fork_pinned(cpu_a, || batch_produce(ring.get(), case, &res)).map_err(|e| e.to_string())?;
            sys::wait_all(&[prod, cons], Duration::from_secs(120))?;
        }
        (Subject::RawBatch, _) => {
            let ring = SharedMem::new(RAW_BATCH_DATA + RAW_BATCH_SLOTS * 8).map_err(|e| e.to_string())?;
            let cons = sys::fork_pinned(cpu_b, || raw_batch_consume(&ring, case, &res)).map_err(|e| e.to_string())?;
            let prod = sys::fork_pinned(cpu_a, || raw_batch_produce(&ring, case, &res)).map_err(|e| e.to_string())?;
            sys::wait_all(&[prod, cons], Duration::from_secs(120))?;
        }
        (Subject::Rtrb | Subject::RtrbChunks, mode) => {
            let pid = sys::fork_pinned(cpu_a, || crate::cases::rtrb_case(case, mode, warm, cpu_b, &res))
                .map_err(|e| e.to_string())?;
            sys::wait_all(&[pid], Duration::from_secs(120))?;
        }
    }
    let cpu_ns = res.word(CPU_A).load(Ordering::Acquire) + res.word(CPU_B).load(Ordering::Acquire);
    let mut out = Outcome {
        cpu_ns,
        ..Outcome::default()
    };
    match case.mode {
        Mode::Stream => {
            out.elapsed_ns = res.word(ELAPSED).load(Ordering::Acquire);
            out.messages = case.iters as u64;
        }
        Mode::PingPong | Mode::Wake => {
            out.samples = (0..case.iters)
                .map(|i| res.word(SAMPLES + i).load(Ordering::Acquire))
                .collect();
            out.messages = 2 * case.iters as u64;
        }
    }
    Ok(out)
}

/// A side's message buffer, with a cache line's worth of bytes around it: when the two sides are threads of one
/// process (`rtrb`), their buffers, written on every message, must not share a line through the allocator.
struct Message {
    buf: Vec<u8>,
    size: usize,
}

const GUARD: usize = 128;

impl Message {
    fn new(size: usize, fill: u8) -> Self {
        Self {
            buf: vec![fill; size + 2 * GUARD],
            size,
        }
    }
}

impl std::ops::Deref for Message {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[GUARD..GUARD + self.size]
    }
}

impl std::ops::DerefMut for Message {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[GUARD..GUARD + self.size]
    }
}

/// The sending side of a ping-pong or wake-up case: sends, waits for the echo, checks its token.
fn ping(a: &dyn Channel, b: &dyn Channel, case: &Case, warm: usize, wake: bool, res: &SharedMem) -> Result<(), String> {
    // Receiving ends first: a publisher may wait for its subscriber (iceoryx2).
    let mut rx = b.rx();
    let mut tx = a.tx();
    let mut msg = Message::new(case.size, 0x5a);
    let mut back = Message::new(case.size, 0);
    barrier(res.word(BARRIER), 2);
    let cpu0 = thread_cpu_ns();
    for i in 0..warm + case.iters {
        if wake {
            transport::gap();
        }
        let t0 = now_ns();
        let tok = if wake { t0 } else { i as u64 };
        set_token(&mut msg, tok);
        tx.send(&msg);
        rx.recv(&mut back);
        let t1 = now_ns();
        if token(&back) != tok {
            return Err(format!("echo {} for {tok}", token(&back)));
        }
        if !wake && i >= warm {
            res.word(SAMPLES + i - warm).store((t1 - t0) / 2, Ordering::Relaxed);
        }
    }
    res.word(CPU_A).store(thread_cpu_ns() - cpu0, Ordering::Release);
    Ok(())
}

/// The echoing side: receives and sends the message back; in wake-up cases it records the one-way time.
fn echo(a: &dyn Channel, b: &dyn Channel, case: &Case, warm: usize, wake: bool, res: &SharedMem) -> Result<(), String> {
    let mut rx = a.rx();
    let mut tx = b.tx();
    let mut msg = Message::new(case.size, 0);
    barrier(res.word(BARRIER), 2);
    let cpu0 = thread_cpu_ns();
    for i in 0..warm + case.iters {
        rx.recv(&mut msg);
        if wake && i >= warm {
            res.word(SAMPLES + i - warm)
                .store(now_ns().saturating_sub(token(&msg)), Ordering::Relaxed);
        }
        tx.send(&msg);
    }
    res.word(CPU_B).store(thread_cpu_ns() - cpu0, Ordering::Release);
    Ok(())
}

fn produce(a: &dyn Channel, case: &Case, res: &SharedMem) -> Result<(), String> {
    let mut tx = a.tx();
    let mut msg = Message::new(case.size, 0x5a);
    barrier(res.word(BARRIER), 2);
    let cpu0 = thread_cpu_ns();
    for i in 0..case.iters {
        set_token(&mut msg, i as u64);
        tx.send(&msg);
    }
    res.word(CPU_A).store(thread_cpu_ns() - cpu0, Ordering::Release);
    Ok(())
}

fn consume(a: &dyn Channel, case: &Case, res: &SharedMem) -> Result<(), String> {
    let mut rx = a.rx();
    let mut msg = Message::new(case.size, 0);
    barrier(res.word(BARRIER), 2);
    let (t0, cpu0) = (now_ns(), thread_cpu_ns());
    for i in 0..case.iters {
        rx.recv(&mut msg);
        if token(&msg) != i as u64 {
            return Err(format!("message {i} carried token {}", token(&msg)));
        }
    }
    res.word(ELAPSED).store(now_ns() - t0, Ordering::Release);
    res.word(CPU_B).store(thread_cpu_ns() - cpu0, Ordering::Release);
    Ok(())
}

/// The producer of a batched stream: batches of 64 consecutive numbers, each handed to `push` (which copies in as
/// many as fit and says how many) until all of it is in.
fn produce_batches(
    case: &Case,
    res: &SharedMem,
    mut push: impl FnMut(&[u64]) -> Result<usize, String>,
) -> Result<(), String> {
    let mut buf = [0u64; 64];
    barrier(res.word(BARRIER), 2);
    let cpu0 = thread_cpu_ns();
    let mut i = 0usize;
    while i < case.iters {
        let n = 64.min(case.iters - i);
        for (k, x) in buf[..n].iter_mut().enumerate() {
            *x = (i + k) as u64;
        }
        let mut done = 0;
        while done < n {
            done += push(&buf[done..n])?;
        }
        i += n;
    }
    res.word(CPU_A).store(thread_cpu_ns() - cpu0, Ordering::Release);
    Ok(())
}

/// The consumer of a batched stream: `pop` copies out up to 256 items (0 when there are none), which are checked
/// against the sequence.
fn consume_batches(
    case: &Case,
    res: &SharedMem,
    mut pop: impl FnMut(&mut [u64]) -> Result<usize, String>,
) -> Result<(), String> {
    let mut buf = [0u64; 256];
    barrier(res.word(BARRIER), 2);
    let (t0, cpu0) = (now_ns(), thread_cpu_ns());
    let mut next = 0u64;
    while next < case.iters as u64 {
        let n = pop(&mut buf)?;
        for &x in &buf[..n] {
            if x != next {
                return Err(format!("item {next} was {x}"));
            }
            next += 1;
        }
    }
    res.word(ELAPSED).store(now_ns() - t0, Ordering::Release);
    res.word(CPU_B).store(thread_cpu_ns() - cpu0, Ordering::Release);
    Ok(())
}

fn batch_produce(ring: &SpscRing<u64, 1024>, case: &Case, res: &SharedMem) -> Result<(), String> {
    let mut p = ring.producer().map_err(|e| e.to_string())?;
    produce_batches(case, res, |batch| p.push_slice(batch).map_err(|e| e.to_string()))
}

fn batch_consume(ring: &SpscRing<u64, 1024>, case: &Case, res: &SharedMem) -> Result<(), String> {
    let mut c = ring.consumer().map_err(|e| e.to_string())?;
    consume_batches(case, res, |buf| match c.pop_slice(buf) {
        Ok(n) => Ok(n),
        Err(Error::Empty) => Ok(0),
        Err(e) => Err(e.to_string()),
    })
}

/// Slots of the raw batched ring (as many as the shmfusion ring of the batched case).
const RAW_BATCH_SLOTS: usize = 1024;
/// The raw batched ring's producer position at word 0, consumer position at word 16 (lines of their own), items
/// from byte 256.
const RAW_BATCH_DATA: usize = 256;

/// The raw batched ring's item `i` (a pointer into the shared mapping).
fn raw_batch_item(ring: &SharedMem, i: u64) -> *mut u64 {
    // SAFETY: `i % RAW_BATCH_SLOTS` is a slot inside the mapping (`RAW_BATCH_DATA + RAW_BATCH_SLOTS * 8` bytes);
    // the mapping is page-aligned, so the item is 8-byte aligned.
    unsafe {
        ring.as_ptr()
            .add(RAW_BATCH_DATA)
            .cast::<u64>()
            .add(i as usize % RAW_BATCH_SLOTS)
    }
}

/// [`batch_produce`] through the raw ring: as many items as are free (the consumer's position reloaded only when
/// the cached one says too few), copied with `memcpy` in at most two runs (at the wrap), one release store.
fn raw_batch_produce(ring: &SharedMem, case: &Case, res: &SharedMem) -> Result<(), String> {
    let (head, tail) = (ring.word(0), ring.word(16));
    let (mut next, mut seen_tail) = (0u64, 0u64);
    produce_batches(case, res, |batch| {
        let cap = RAW_BATCH_SLOTS as u64;
        if cap - (next - seen_tail) < batch.len() as u64 {
            seen_tail = tail.load(Ordering::Acquire);
        }
        let k = ((cap - (next - seen_tail)) as usize).min(batch.len());
        let first = k.min(RAW_BATCH_SLOTS - next as usize % RAW_BATCH_SLOTS);
        // SAFETY: the `k` slots from `next` are free (the consumer released them: acquire load of `tail`), and the
        // consumer does not read them until the release store of `head` below; each run stays inside the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(batch.as_ptr(), raw_batch_item(ring, next), first);
            std::ptr::copy_nonoverlapping(batch[first..].as_ptr(), raw_batch_item(ring, 0), k - first);
        }
        next += k as u64;
        head.store(next, Ordering::Release);
        Ok(k)
    })
}

/// [`batch_consume`] through the raw ring: up to 256 available items, copied out in at most two runs, one
/// release store.
fn raw_batch_consume(ring: &SharedMem, case: &Case, res: &SharedMem) -> Result<(), String> {
    let (head, tail) = (ring.word(0), ring.word(16));
    let mut next = 0u64;
    consume_batches(case, res, |buf| {
        let n = ((head.load(Ordering::Acquire) - next) as usize).min(buf.len());
        let first = n.min(RAW_BATCH_SLOTS - next as usize % RAW_BATCH_SLOTS);
        // SAFETY: the producer published these `n` items (release store of `head`, seen by the acquire load above)
        // and does not reuse their slots until the release store of `tail` below; each run stays inside the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(raw_batch_item(ring, next), buf.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(raw_batch_item(ring, 0), buf[first..].as_mut_ptr(), n - first);
        }
        next += n as u64;
        tail.store(next, Ordering::Release);
        Ok(n)
    })
}

/// `rtrb` between this (forked) process's main thread and a second thread pinned to `other_cpu`, through the same
/// sides as the other transports: one item per call goes through [`Tx`](transport::Tx) / [`Rx`](transport::Rx)
/// and the `ping`/`echo`/`produce`/`consume` loops (message copied in and out, the same spin on full and empty),
/// chunks copy in from and out to a buffer as `push_slice` / `pop_slice` do.
fn rtrb_case(case: &Case, mode: Mode, warm: usize, other_cpu: usize, res: &SharedMem) -> Result<(), String> {
    let joined = |r: std::thread::Result<Result<(), String>>| r.map_err(|_| "rtrb thread panicked".to_string())?;
    let (a, b) = (&transport::RtrbChannel::new(), &transport::RtrbChannel::new());
    std::thread::scope(|s| match (case.subject, mode) {
        (Subject::RtrbChunks, _) => {
            let (tx, rx) = rtrb::RingBuffer::<u64>::new(1024);
            let consumer = s.spawn(move || {
                sys::pin(other_cpu);
                rtrb_chunks_consume(rx, case, res)
            });
            let r = rtrb_chunks_produce(tx, case, res);
            joined(consumer.join()).and(r)
        }
        (_, Mode::PingPong | Mode::Wake) => {
            let echoer = s.spawn(move || {
                sys::pin(other_cpu);
                echo(a, b, case, warm, false, res)
            });
            let r = ping(a, b, case, warm, false, res);
            joined(echoer.join()).and(r)
        }
        (_, Mode::Stream) => {
            let consumer = s.spawn(move || {
                sys::pin(other_cpu);
                consume(a, case, res)
            });
            let r = produce(a, case, res);
            joined(consumer.join()).and(r)
        }
    })
}

/// [`batch_produce`] with `rtrb`'s chunks.
fn rtrb_chunks_produce(mut tx: rtrb::Producer<u64>, case: &Case, res: &SharedMem) -> Result<(), String> {
    produce_batches(case, res, |batch| {
        let k = tx.slots().min(batch.len());
        if k == 0 {
            return Ok(0);
        }
        let chunk = tx.write_chunk_uninit(k).map_err(|e| e.to_string())?;
        Ok(chunk.fill_from_iter(batch.iter().copied()))
    })
}

/// [`batch_consume`] with `rtrb`'s chunks.
fn rtrb_chunks_consume(mut rx: rtrb::Consumer<u64>, case: &Case, res: &SharedMem) -> Result<(), String> {
    consume_batches(case, res, |buf| {
        let n = rx.slots().min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let chunk = rx.read_chunk(n).map_err(|e| e.to_string())?;
        let (first, second) = chunk.as_slices();
        buf[..first.len()].copy_from_slice(first);
        buf[first.len()..n].copy_from_slice(second);
        chunk.commit_all();
        Ok(n)
    })
}
