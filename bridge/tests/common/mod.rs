//! Test harness: network namespaces joined by a veth pair, bridge processes, a 1 kHz producer and a consumer.
//! Every resource is owned by a guard whose `Drop` releases it, so a failing assertion cleans up too; every wait
//! is bounded.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use shmfusion::buffer::BroadcastRing;
use shmfusion::fusion::{ImuSample, Quaternion, SampleHeader, Stamped, Timestamp, Vector3};
use shmfusion::object::{ObjectOptions, sysv};
use shmfusion::shm::Key;

/// The bridge program cargo built for this test.
pub fn bridge_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shmfusion-bridge"))
}

pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn sh(args: &[&str]) -> Result<String, String> {
    run(Command::new(args[0]).args(&args[1..]))
}

/// Two network namespaces, `a` (10.X.Y.1) and `b` (10.X.Y.2), joined by a veth pair; deleted on drop.
pub struct NetPair {
    pub a: String,
    pub b: String,
    pub veth_a: String,
    pub veth_b: String,
    pub addr_a: String,
    pub addr_b: String,
}

impl NetPair {
    pub fn new(tag: u8) -> NetPair {
        let id = std::process::id() % 10_000;
        let pair = NetPair {
            a: format!("sfb{id}{tag}a"),
            b: format!("sfb{id}{tag}b"),
            veth_a: format!("sfv{id}{tag}a"),
            veth_b: format!("sfv{id}{tag}b"),
            addr_a: format!("10.213.{tag}.1"),
            addr_b: format!("10.213.{tag}.2"),
        };
        let steps: Vec<Vec<String>> = vec![
            vec!["ip".into(), "netns".into(), "add".into(), pair.a.clone()],
            vec!["ip".into(), "netns".into(), "add".into(), pair.b.clone()],
            format!(
                "ip link add {} netns {} type veth peer name {} netns {}",
                pair.veth_a, pair.a, pair.veth_b, pair.b
            )
            .split(' ')
            .map(String::from)
            .collect(),
        ];
        for s in &steps {
            let args: Vec<&str> = s.iter().map(String::as_str).collect();
            if let Err(e) = sh(&args) {
                drop(pair);
                panic!("network setup: {e}");
            }
        }
        for (ns, dev, addr) in [
            (&pair.a, &pair.veth_a, &pair.addr_a),
            (&pair.b, &pair.veth_b, &pair.addr_b),
        ] {
            for cmd in [
                format!("ip netns exec {ns} ip addr add {addr}/24 dev {dev}"),
                format!("ip netns exec {ns} ip link set {dev} up"),
                format!("ip netns exec {ns} ip link set lo up"),
            ] {
                let args: Vec<&str> = cmd.split(' ').collect();
                sh(&args).unwrap_or_else(|e| panic!("network setup: {e}"));
            }
        }
        pair
    }

    /// Drops every packet on `b`'s side of the link (input and output) until [`NetPair::heal`].
    pub fn cut_with_nft(&self) {
        let script = format!(
            "table inet sfbridge {{ chain input {{ type filter hook input priority 0; policy accept; iifname \"{0}\" drop; }}; \
             chain output {{ type filter hook output priority 0; policy accept; oifname \"{0}\" drop; }}; }}",
            self.veth_b
        );
        sh(&["ip", "netns", "exec", &self.b, "nft", &script]).expect("nft drop");
    }

    pub fn heal_nft(&self) {
        sh(&[
            "ip", "netns", "exec", &self.b, "nft", "delete", "table", "inet", "sfbridge",
        ])
        .expect("nft delete");
    }

    pub fn link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        sh(&["ip", "netns", "exec", &self.b, "ip", "link", "set", &self.veth_b, state]).expect("link state");
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the other end.
        for ns in [&self.a, &self.b] {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}

/// Namespaces whose names start with this test binary's prefix (for the leak check).
pub fn our_namespaces() -> Vec<String> {
    let id = std::process::id() % 10_000;
    let list = sh(&["ip", "netns", "list"]).unwrap_or_default();
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("sfb{id}")))
        .map(String::from)
        .collect()
}

/// A bridge process (optionally inside a namespace); SIGTERM then SIGKILL on drop, reaped either way.
pub struct BridgeProc {
    pub child: Option<Child>,
    pub lines: Arc<Mutex<Vec<String>>>,
    ready: mpsc::Receiver<()>,
}

impl BridgeProc {
    pub fn start(netns: Option<&str>, program: &[String], args: &[String]) -> BridgeProc {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(program);
                c
            }
            None => {
                let mut c = Command::new(&program[0]);
                c.args(&program[1..]);
                c
            }
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, ready) = mpsc::channel();
        for (stream, is_out) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                true,
            ),
            (Box::new(child.stderr.take().unwrap()), false),
        ] {
            let lines = lines.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if is_out && line.starts_with("shmfusion-bridge ready") {
                        let _ = tx.send(());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        BridgeProc {
            child: Some(child),
            lines,
            ready,
        }
    }

    pub fn bridge(netns: Option<&str>, args: &[String]) -> BridgeProc {
        Self::start(netns, &[bridge_bin().display().to_string()], args)
    }

    /// Waits (at most `limit`) for the "ready" line.
    pub fn wait_ready(&self, limit: Duration) {
        if self.ready.recv_timeout(limit).is_err() {
            panic!("bridge not ready within {limit:?}; output:\n{}", self.output());
        }
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling a child we spawned and have not reaped yet (its pid cannot be reused).
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns the output.
    pub fn stop(&mut self) -> String {
        if let Some(mut c) = self.child.take() {
            // SAFETY: as in `kill9`.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    // SAFETY: as above.
                    unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
                    let _ = c.wait();
                    panic!("bridge did not stop within 10 s after SIGTERM:\n{}", self.output());
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        // Let the reader threads drain the pipes.
        thread::sleep(Duration::from_millis(100));
        self.output()
    }
}

impl Drop for BridgeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: as in `kill9`.
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

/// Removes the System V segment of `key` if there is one (after a bridge was SIGKILLed).
pub fn remove_key(key: i32) {
    // SAFETY: plain System V calls on a key of this test; IPC_RMID takes no buffer.
    unsafe {
        let id = libc::shmget(key, 0, 0);
        if id >= 0 {
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

/// Fresh System V keys for one test, removed (if still there) on drop.
pub struct Keys(pub [i32; 8]);

impl Keys {
    pub fn new(tag: i32) -> Keys {
        let base = 0x5f00_0000 | ((std::process::id() as i32 & 0xfff) << 8) | (tag << 4);
        let mut k = [0; 8];
        for (i, v) in k.iter_mut().enumerate() {
            *v = base + i as i32;
        }
        Keys(k)
    }

    /// Keys that still name a segment.
    pub fn left(&self) -> Vec<i32> {
        // SAFETY: shmget without IPC_CREAT only looks the key up.
        self.0
            .iter()
            .copied()
            .filter(|&k| unsafe { libc::shmget(k, 0, 0) } >= 0)
            .collect()
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        for k in self.0 {
            remove_key(k);
        }
    }
}

/// The deterministic IMU payload of sample `seq` (checked bit for bit on the far side).
pub fn imu_payload(seq: u64) -> ImuSample {
    let t = seq as f32 * 0.001;
    ImuSample {
        accel: Vector3::new(t.sin(), t.cos(), 9.81 + seq as f32 * 1e-6),
        gyro: Vector3::new(seq as f32, -(seq as f32) * 0.5, 0.25),
    }
}

pub fn attitude_payload(seq: u64) -> Quaternion {
    let a = seq as f32 * 0.01;
    Quaternion::new((a / 2.0).cos(), 0.0, 0.0, (a / 2.0).sin())
}

pub type ImuRing = BroadcastRing<Stamped<ImuSample>, 512>;
pub type ImuImportRing = BroadcastRing<Stamped<ImuSample>, 4096>;
pub type AttitudeRing = BroadcastRing<Stamped<Quaternion>, 64>;
pub type AttitudeImportRing = BroadcastRing<Stamped<Quaternion>, 256>;

/// A producer thread: publishes IMU at `hz` (and attitude every tenth sample) into new rings; records when each
/// sequence number was published (monotonic ns).
pub struct Producer {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
    pub published: Arc<Mutex<Vec<u64>>>,
}

pub const IMU_CHANNEL: u32 = 1;
pub const ATTITUDE_CHANNEL: u32 = 2;

impl Producer {
    pub fn start(imu_key: i32, attitude_key: Option<i32>, hz: u64) -> Producer {
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let handle = {
            let stop = stop.clone();
            let published = published.clone();
            thread::spawn(move || {
                let imu = sysv::create::<ImuRing>(Key::from_raw(imu_key), &ObjectOptions::new()).expect("imu ring");
                let att = attitude_key.map(|k| {
                    sysv::create::<AttitudeRing>(Key::from_raw(k), &ObjectOptions::new()).expect("attitude ring")
                });
                let mut w = imu.get().writer().expect("imu writer");
                let mut aw = att.as_ref().map(|a| a.get().writer().expect("attitude writer"));
                let _ = tx.send(());
                let period = 1_000_000_000 / hz;
                let t0 = Timestamp::now().as_nanos();
                let mut seq = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let due = t0 + seq * period;
                    let now = Timestamp::now().as_nanos();
                    if now < due {
                        thread::sleep(Duration::from_nanos(due - now));
                    }
                    let stamp = Timestamp::now();
                    let header = SampleHeader {
                        stamp,
                        seq,
                        channel: IMU_CHANNEL,
                        flags: (seq % 7) as u32,
                    };
                    w.publish_one(&Stamped::new(header, imu_payload(seq)));
                    if seq % 10 == 0 {
                        if let Some(aw) = aw.as_mut() {
                            let h = SampleHeader {
                                stamp,
                                seq: seq / 10,
                                channel: ATTITUDE_CHANNEL,
                                flags: 0,
                            };
                            aw.publish_one(&Stamped::new(h, attitude_payload(seq / 10)));
                        }
                    }
                    published.lock().unwrap().push(stamp.as_nanos());
                    seq += 1;
                }
                // Dropping the objects removes the rings (the producer created them).
            })
        };
        rx.recv_timeout(Duration::from_secs(10))
            .expect("producer did not start");
        Producer {
            stop,
            handle: Some(handle),
            published,
        }
    }

    pub fn count(&self) -> u64 {
        self.published.lock().unwrap().len() as u64
    }

    /// Publish time of `seq`.
    pub fn time_of(&self, seq: u64) -> Option<u64> {
        self.published.lock().unwrap().get(seq as usize).copied()
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the consumer saw on an imported IMU ring.
#[derive(Default)]
pub struct Seen {
    pub samples: Vec<(Stamped<ImuSample>, u64)>,
    pub lagged: u64,
}

/// Reads an imported IMU ring until `stop`; waits (bounded) for the ring to exist.
pub struct Consumer {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
    pub seen: Arc<Mutex<Seen>>,
}

impl Consumer {
    pub fn start(key: i32) -> Consumer {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let handle = {
            let stop = stop.clone();
            let seen = seen.clone();
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                let ring = loop {
                    match sysv::open::<ImuImportRing>(Key::from_raw(key), &ObjectOptions::new()) {
                        Ok(r) => break r,
                        Err(_) if Instant::now() < deadline && !stop.load(Ordering::SeqCst) => {
                            thread::sleep(Duration::from_millis(20))
                        }
                        Err(e) => panic!("imported ring {key:#x}: {e}"),
                    }
                };
                let mut reader = ring.get().reader_from_oldest();
                while !stop.load(Ordering::SeqCst) {
                    match reader.try_recv() {
                        Ok((s, _)) => {
                            let now = Timestamp::now().as_nanos();
                            seen.lock().unwrap().samples.push((s, now));
                        }
                        Err(shmfusion::buffer::Error::Lagged(n)) => seen.lock().unwrap().lagged += n,
                        Err(_) => thread::sleep(Duration::from_micros(200)),
                    }
                }
            })
        };
        Consumer {
            stop,
            handle: Some(handle),
            seen,
        }
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().samples.len()
    }

    /// Waits until at least `n` samples arrived or `limit` passed; returns whether they did.
    pub fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.count() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub fn stop(&mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Percentile (0..=100) of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i]
}

/// Reads the import bridge's statistics from its stats slot.
pub fn read_stats(key: i32) -> Option<shmfusion_bridge::stats::BridgeStats> {
    let slot = sysv::open::<shmfusion_bridge::stats::StatsSlot>(Key::from_raw(key), &ObjectOptions::new()).ok()?;
    slot.get().read().ok().map(|(s, _)| s)
}
