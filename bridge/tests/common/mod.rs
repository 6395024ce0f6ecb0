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
use shmfusion::fusion::{ImuSample, Payload, Quaternion, SampleHeader, Stamped, Timestamp, Vector3};
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

/// The most TCP waits between retransmissions in the test namespaces (`net.ipv4.tcp_rto_max_ms`).
pub const RTO_MAX_MS: u32 = 1000;

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
            // TCP doubles its retransmission timeout on a dead link (0.2, 0.4, 0.8, 1.6, 3.2 s ...), so after a
            // 3 s outage its next try can come 3 s after the repair. Cap it at 1 s, as a robot's network should
            // be set up (README "Beyond one machine"); Linux 6.15+ has the setting, per network namespace.
            let set = Command::new("ip")
                .args(["netns", "exec", ns, "sh", "-c"])
                .arg(format!("echo {RTO_MAX_MS} > /proc/sys/net/ipv4/tcp_rto_max_ms"))
                .output();
            if !set.is_ok_and(|o| o.status.success()) {
                println!("note: cannot cap TCP's retransmission timeout in {ns} (Linux before 6.15?)");
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

/// The fusion demo (examples/fusion.rs), built by `cargo build --example fusion` into the same target dir (where
/// `cargo xtask test` builds it), or `SHMFUSION_FUSION`.
pub fn fusion_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SHMFUSION_FUSION") {
        return PathBuf::from(p);
    }
    // This test runs from <target>/debug/deps/.
    let exe = std::env::current_exe().expect("test executable");
    let path = exe.parent().and_then(|d| d.parent()).map(|d| d.join("examples/fusion"));
    match path {
        Some(p) if p.exists() => p,
        _ => panic!(
            "the fusion demo is not built: `cargo build --example fusion` (same CARGO_TARGET_DIR) or set SHMFUSION_FUSION"
        ),
    }
}

/// A child process (a bridge, optionally inside a namespace, or the fusion demo); SIGTERM then SIGKILL on drop,
/// reaped either way.
pub struct BridgeProc {
    pub child: Option<Child>,
    pub lines: Arc<Mutex<Vec<String>>>,
    ready: mpsc::Receiver<()>,
}

impl BridgeProc {
    /// Starts `program` with `args`; it is ready once it prints a line starting with `ready_line`.
    pub fn start(netns: Option<&str>, program: &[String], args: &[String], ready_line: &'static str) -> BridgeProc {
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
                    if is_out && line.starts_with(ready_line) {
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
        Self::start(
            netns,
            &[bridge_bin().display().to_string()],
            args,
            "shmfusion-bridge ready",
        )
    }

    /// The fusion demo's fusion stage: fuses the IMU ring under `imu_key` into a new attitude slot under
    /// `attitude_key` until the IMU ring is closed.
    pub fn fusion(imu_key: i32, attitude_key: i32) -> BridgeProc {
        let p = Self::start(
            None,
            &[fusion_bin().display().to_string()],
            &[
                "--imu-key".into(),
                imu_key.to_string(),
                "--attitude-key".into(),
                attitude_key.to_string(),
            ],
            "ready",
        );
        p.wait_ready(Duration::from_secs(20));
        p
    }

    /// Waits (bounded) for the process to end by itself; returns its output, or `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    thread::sleep(Duration::from_millis(100));
                    return Some(self.output());
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits (at most `limit`) for the "ready" line.
    pub fn wait_ready(&self, limit: Duration) {
        if self.ready.recv_timeout(limit).is_err() {
            panic!("not ready within {limit:?}; output:\n{}", self.output());
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

/// The IMU ring's type name: the C library's (capi/examples/imu_driver.c creates the same ring), which the fusion
/// demo opens.
pub const IMU_TYPE: &str = "shmfusion.StampedImu";
/// The attitude slot's type name, as the fusion demo creates it.
pub const ATTITUDE_TYPE: &str = "shmfusion.StampedQuaternion";

/// The motion the IMU measures (the C driver's, capi/examples/imu_driver.c): turning in place at 0.5 rad/s of yaw
/// while rocking in roll (0.15 rad at 0.25 Hz), pitch 0.
pub const YAW_RATE: f64 = 0.5;
pub const ROLL_AMPLITUDE: f64 = 0.15;
pub const ROLL_HZ: f64 = 0.25;

/// `(roll, pitch, yaw)` in radians at `t` seconds.
pub fn motion(t: f64) -> (f64, f64, f64) {
    let roll = ROLL_AMPLITUDE * (2.0 * std::f64::consts::PI * ROLL_HZ * t).sin();
    (roll, 0.0, YAW_RATE * t)
}

/// The deterministic IMU payload of sample `seq` (at `seq` ms): the ideal readings of [`motion`], as the C driver
/// computes them (checked bit for bit on the far side).
pub fn imu_payload(seq: u64) -> ImuSample {
    const GRAVITY: f64 = 9.80665;
    let t = seq as f64 * 1e-3;
    let w = 2.0 * std::f64::consts::PI * ROLL_HZ;
    let roll = motion(t).0;
    let roll_rate = ROLL_AMPLITUDE * w * (w * t).cos();
    ImuSample {
        accel: Vector3::new(0.0, (GRAVITY * roll.sin()) as f32, (GRAVITY * roll.cos()) as f32),
        gyro: Vector3::new(
            roll_rate as f32,
            (YAW_RATE * roll.sin()) as f32,
            (YAW_RATE * roll.cos()) as f32,
        ),
    }
}

/// A deterministic attitude for sample `seq` (a slow yaw turn).
pub fn attitude_payload(seq: u64) -> Quaternion {
    let a = seq as f32 * 0.01;
    Quaternion::new((a / 2.0).cos(), 0.0, 0.0, (a / 2.0).sin())
}

pub type ImuRing = BroadcastRing<Stamped<ImuSample>, 512>;
pub type ImuImportRing = BroadcastRing<Stamped<ImuSample>, 4096>;
pub type AttitudeImportRing = BroadcastRing<Stamped<Quaternion>, 4096>;

/// A producer thread standing in for the C IMU driver: publishes IMU samples at `hz` into a new ring (the
/// driver's: 512 samples, its type name), stamped on a grid of `1/hz` from its start (as a driver stamps sensor
/// samples); records when each sequence number was actually published (monotonic ns).
pub struct Producer {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
    pub published: Arc<Mutex<Vec<u64>>>,
    go: Option<mpsc::Sender<()>>,
    t0_rx: mpsc::Receiver<u64>,
    t0: u64,
    period: u64,
}

pub const IMU_CHANNEL: u32 = 1;

impl Producer {
    /// Creates the ring; publishing starts with [`Producer::go`], so that a reader started in between (the fusion
    /// process) sees the stream from its first sample.
    pub fn start(imu_key: i32, hz: u64) -> Producer {
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(Mutex::new(Vec::new()));
        let (created_tx, created) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<()>();
        let (t0_tx, t0_rx) = mpsc::channel();
        let period = 1_000_000_000 / hz;
        let handle = {
            let stop = stop.clone();
            let published = published.clone();
            thread::spawn(move || {
                let options = ObjectOptions::new().type_name(IMU_TYPE);
                let imu = sysv::create::<ImuRing>(Key::from_raw(imu_key), &options).expect("imu ring");
                let mut w = imu.get().writer().expect("imu writer");
                let _ = created_tx.send(());
                if go_rx.recv().is_err() {
                    return;
                }
                let t0 = Timestamp::now().as_nanos();
                let _ = t0_tx.send(t0);
                let mut seq = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let due = t0 + seq * period;
                    let now = Timestamp::now().as_nanos();
                    if now < due {
                        thread::sleep(Duration::from_nanos(due - now));
                    }
                    let header = SampleHeader {
                        stamp: Timestamp::from_nanos(due),
                        seq,
                        channel: IMU_CHANNEL,
                        flags: (seq % 7) as u32,
                    };
                    w.publish_one(&Stamped::new(header, imu_payload(seq)));
                    published.lock().unwrap().push(Timestamp::now().as_nanos());
                    seq += 1;
                }
                // A clean close tells readers (the fusion process) that nothing more comes; dropping the object
                // removes the ring (the producer created it).
                drop(w);
            })
        };
        created
            .recv_timeout(Duration::from_secs(10))
            .expect("producer did not create its ring");
        Producer {
            stop,
            handle: Some(handle),
            published,
            go: Some(go),
            t0_rx,
            t0: 0,
            period,
        }
    }

    /// Starts publishing.
    pub fn go(&mut self) {
        if let Some(go) = self.go.take() {
            let _ = go.send(());
            self.t0 = self
                .t0_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("producer did not start");
        }
    }

    pub fn count(&self) -> u64 {
        self.published.lock().unwrap().len() as u64
    }

    /// When `seq` was published (monotonic ns).
    pub fn time_of(&self, seq: u64) -> Option<u64> {
        self.published.lock().unwrap().get(seq as usize).copied()
    }

    /// The stamp of `seq` (its slot on the sampling grid).
    pub fn stamp_of(&self, seq: u64) -> u64 {
        self.t0 + seq * self.period
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // A producer that never started publishing ends when its go channel closes.
        self.go = None;
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

/// What the consumer saw on an imported ring: each sample with when it was read (monotonic ns).
pub struct Seen<T> {
    pub samples: Vec<(Stamped<T>, u64)>,
    pub lagged: u64,
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen {
            samples: Vec::new(),
            lagged: 0,
        }
    }
}

/// Reads an imported ring (`BroadcastRing<Stamped<T>, 4096>` of type `type_name`) until `stop`; waits (bounded)
/// for the ring to exist.
pub struct Consumer<T: Payload> {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
    pub seen: Arc<Mutex<Seen<T>>>,
}

impl<T: Payload + Send + Sync + 'static> Consumer<T> {
    pub fn start(key: i32, type_name: &'static str) -> Consumer<T> {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let handle = {
            let stop = stop.clone();
            let seen = seen.clone();
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                let options = ObjectOptions::new().type_name(type_name);
                let ring = loop {
                    match sysv::open::<BroadcastRing<Stamped<T>, 4096>>(Key::from_raw(key), &options) {
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

    pub fn stop(&mut self) -> Seen<T> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl<T: Payload> Drop for Consumer<T> {
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

/// Every thread's stack of a live process, by gdb (for a hang's report); a note if gdb is missing or fails.
pub fn backtraces(pid: i32) -> String {
    let out = Command::new("timeout")
        .args([
            "60",
            "gdb",
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt 40",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => format!("gdb failed: {}\n{}", o.status, String::from_utf8_lossy(&o.stderr)),
        Err(e) => format!("no gdb: {e}"),
    }
}
