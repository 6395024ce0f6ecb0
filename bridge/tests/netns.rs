//! Two "machines" (network namespaces joined by a veth pair), a bridge in each: a 1 kHz IMU stream and a 100 Hz
//! attitude stream exported on one side and imported into rings on the other; then link faults.
//!
//! Needs root, `ip` and `nft`: run by `cargo xtask test --suite bridge` (or `cargo test -p shmfusion-bridge --test
//! netns -- --include-ignored --test-threads=1` as root).

mod common;

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use shmfusion::fusion::Timestamp;
use shmfusion::object::{ObjectOptions, sysv};
use shmfusion::shm::Key;
use shmfusion_bridge::stats::{EXPORT, IMPORT};

/// Lease of the Zenoh links in these tests: 4 s instead of Zenoh's 10 s, so that "longer than the lease" is a
/// 6 s outage rather than 14 s.
const LEASE_MS: u64 = 4000;
const PORT: u16 = 7447;
/// How far a stamp may move when rebased on the same host (offset sampling; scheduling under load).
const STAMP_TOLERANCE_NS: u64 = 1_000_000;

struct Setup {
    net: NetPair,
    keys: Keys,
    producer: Producer,
    exporter: BridgeProc,
    importer: BridgeProc,
    consumer: Consumer,
}

// keys: 0 imu A, 1 attitude A, 2 imu B, 3 attitude B, 4 importer stats, 5 exporter stats
fn exporter_args(net: &NetPair, keys: &Keys, policy: &str) -> Vec<String> {
    [
        "--listen".into(),
        format!("tcp/{}:{PORT}", net.addr_a),
        "--lease-ms".into(),
        LEASE_MS.to_string(),
        "--stats-key".into(),
        keys.0[5].to_string(),
        "--export".into(),
        format!(
            "kind=imu,shm={},key=sfb/imu,cap=512,channel=1,policy={policy}",
            keys.0[0]
        ),
        "--export".into(),
        format!(
            "kind=attitude,shm={},key=sfb/attitude,cap=64,channel=2,policy=block",
            keys.0[1]
        ),
    ]
    .to_vec()
}

fn importer_args(net: &NetPair, keys: &Keys) -> Vec<String> {
    [
        "--connect".into(),
        format!("tcp/{}:{PORT}", net.addr_a),
        "--retry-ms".into(),
        "250".into(),
        "--lease-ms".into(),
        LEASE_MS.to_string(),
        "--stats-key".into(),
        keys.0[4].to_string(),
        "--import".into(),
        format!("kind=imu,shm={},key=sfb/imu,cap=4096,channel=1", keys.0[2]),
        "--import".into(),
        format!("kind=attitude,shm={},key=sfb/attitude,cap=256,channel=2", keys.0[3]),
    ]
    .to_vec()
}

fn setup(tag: u8, policy: &'static str) -> Setup {
    let net = NetPair::new(tag);
    let keys = Keys::new(tag as i32);
    let producer = Producer::start(keys.0[0], Some(keys.0[1]), 1000);
    let exporter = BridgeProc::bridge(Some(&net.a), &exporter_args(&net, &keys, policy));
    exporter.wait_ready(Duration::from_secs(20));
    let importer = BridgeProc::bridge(Some(&net.b), &importer_args(&net, &keys));
    importer.wait_ready(Duration::from_secs(20));
    let consumer = Consumer::start(keys.0[2]);
    assert!(
        consumer.wait_for(200, Duration::from_secs(15)),
        "no data across the link within 15 s\nexporter:\n{}\nimporter:\n{}",
        exporter.output(),
        importer.output()
    );
    Setup {
        net,
        keys,
        producer,
        exporter,
        importer,
        consumer,
    }
}

/// Stops everything, checks the stream, and returns (received seqs, missing seqs, importer gap, exporter lagged).
struct Outcome {
    missing: Vec<u64>,
    /// Missing since the first sample received.
    missing_all: u64,
    received: usize,
    produced: u64,
    gap: u64,
    lagged: u64,
    latencies_us: Vec<u64>,
    /// Which of the test's keys (by index) still had a segment after every process stopped.
    left: Vec<usize>,
    /// This test binary's namespaces still present after the pair was dropped.
    namespaces: Vec<String>,
}

/// `from`: the first sequence number whose loss counts (`None`: the first one received).
fn finish(mut s: Setup, from: Option<u64>) -> Outcome {
    s.producer.stop();
    let produced = s.producer.count();
    // Everything published must arrive or be counted; wait (bounded) for the tail.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let last = s
            .consumer
            .seen
            .lock()
            .unwrap()
            .samples
            .last()
            .map(|(x, _)| x.header.seq);
        if last == Some(produced - 1) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    // Let the stats slots catch up (written every 100 ms).
    thread::sleep(Duration::from_millis(300));
    let seen = s.consumer.stop();
    let imp = read_stats(s.keys.0[4]).expect("importer stats slot");
    let exp = read_stats(s.keys.0[5]).expect("exporter stats slot");
    let gap = imp.find(1, IMPORT).expect("importer imu stats").gap;
    let lagged = exp.find(1, EXPORT).expect("exporter imu stats").lagged;
    let att =
        sysv::open::<AttitudeImportRing>(Key::from_raw(s.keys.0[3]), &ObjectOptions::new()).expect("attitude ring");
    let mut att_reader = att.get().reader_from_oldest();
    let mut attitudes = 0;
    while let Ok((a, _)) = att_reader.try_recv() {
        assert_eq!(
            a.payload,
            attitude_payload(a.header.seq),
            "attitude {} differs",
            a.header.seq
        );
        assert_eq!(a.header.channel, ATTITUDE_CHANNEL);
        attitudes += 1;
    }
    assert!(attitudes > 0, "no attitude sample crossed");
    assert_eq!(seen.lagged, 0, "the test's own reader fell behind the imported ring");
    let first = seen.samples.first().expect("nothing received").0.header.seq;
    let mut got = BTreeSet::new();
    let mut prev = None;
    let mut latencies_us = Vec::new();
    let mut stamp_error_max = 0;
    for (x, at) in &seen.samples {
        let seq = x.header.seq;
        assert!(
            prev.is_none_or(|p| seq > p),
            "sequence not increasing: {prev:?} then {seq}"
        );
        prev = Some(seq);
        assert_eq!(x.payload, imu_payload(seq), "payload of {seq} differs");
        assert_eq!(
            (x.header.channel, x.header.flags),
            (IMU_CHANNEL, (seq % 7) as u32),
            "header of {seq}"
        );
        // Stamps are rebased through the two sides' wall-clock offsets; on one host the only error is how precisely
        // each side samples its offset.
        let original = s.producer.time_of(seq).expect("published");
        let error = x.header.stamp.as_nanos().abs_diff(original);
        assert!(error < STAMP_TOLERANCE_NS, "stamp of {seq} moved by {error} ns");
        stamp_error_max = stamp_error_max.max(error);
        latencies_us.push(at.saturating_sub(x.header.stamp.as_nanos()) / 1000);
        got.insert(seq);
    }
    let missing_all = (first..produced).filter(|q| !got.contains(q)).count() as u64;
    let missing: Vec<u64> = (from.unwrap_or(first).max(first)..produced)
        .filter(|q| !got.contains(q))
        .collect();
    println!("stamps rebased through the wall-clock offsets moved by at most {stamp_error_max} ns");
    let exporter_out = s.exporter.stop();
    let importer_out = s.importer.stop();
    drop(s.consumer);
    drop(s.producer);
    drop(att);
    // What clean shutdowns left behind (before the guard removes the rest).
    let left = s.keys.left();
    println!(
        "exporter: {}",
        exporter_out
            .lines()
            .filter(|l| l.contains("channel"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!(
        "importer: {}",
        importer_out
            .lines()
            .filter(|l| l.contains("channel"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    drop(s.net);
    let namespaces = our_namespaces();
    let slots: Vec<usize> = left
        .iter()
        .map(|k| s.keys.0.iter().position(|x| x == k).unwrap_or(99))
        .collect();
    latencies_us.sort_unstable();
    Outcome {
        missing,
        missing_all,
        received: got.len(),
        produced,
        gap,
        lagged,
        latencies_us,
        left: slots,
        namespaces,
    }
}

fn print_latency(what: &str, o: &Outcome) {
    let l = &o.latencies_us;
    println!(
        "{what}: produced {} received {} missing {} gap {} lagged {}; latency µs p50 {} p90 {} p99 {} max {}",
        o.produced,
        o.received,
        o.missing.len(),
        o.gap,
        o.lagged,
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        percentile(l, 100.0)
    );
}

/// Segments may be left only by a SIGKILLed creator (`crashed`: key indices), never by a clean stop.
fn assert_nothing_left(o: &Outcome, crashed: &[usize]) {
    assert!(o.namespaces.is_empty(), "namespaces left: {:?}", o.namespaces);
    let unexpected: Vec<&usize> = o.left.iter().filter(|k| !crashed.contains(k)).collect();
    assert!(
        unexpected.is_empty(),
        "segments left after clean stops (key indices): {unexpected:?}"
    );
}

#[test]
#[ignore = "needs root, ip and nft: cargo xtask test --suite bridge"]
fn stream_1khz_across_namespaces_is_identical_and_lossless_when_blocking() {
    let s = setup(1, "block");
    thread::sleep(Duration::from_secs(5));
    let o = finish(s, None);
    print_latency("1 kHz, 5 s, block", &o);
    assert!(o.received >= 4500, "only {} samples crossed", o.received);
    assert_eq!(o.missing, Vec::<u64>::new(), "samples lost with the blocking policy");
    assert_eq!((o.gap, o.lagged), (0, 0));
    assert_nothing_left(&o, &[]);
}

enum Fault {
    NftDrop(Duration),
    LinkDown(Duration),
    KillExporter,
    KillImporter,
}

fn fault(tag: u8, policy: &'static str, f: Fault, name: &str) {
    let mut s = setup(tag, policy);
    thread::sleep(Duration::from_millis(500));
    // Losses are counted from here: what the importer reported so far (start-up) is the baseline.
    let from = s.producer.count();
    let t_fault = Timestamp::now().as_nanos();
    let t_repair = match &f {
        Fault::NftDrop(d) => {
            s.net.cut_with_nft();
            thread::sleep(*d);
            s.net.heal_nft();
            Timestamp::now().as_nanos()
        }
        Fault::LinkDown(d) => {
            s.net.link(false);
            thread::sleep(*d);
            s.net.link(true);
            Timestamp::now().as_nanos()
        }
        Fault::KillExporter => {
            s.exporter.kill9();
            thread::sleep(Duration::from_secs(1));
            s.exporter = BridgeProc::bridge(Some(&s.net.a), &exporter_args(&s.net, &s.keys, policy));
            s.exporter.wait_ready(Duration::from_secs(20));
            Timestamp::now().as_nanos()
        }
        Fault::KillImporter => {
            s.importer.kill9();
            thread::sleep(Duration::from_secs(1));
            s.importer = BridgeProc::bridge(Some(&s.net.b), &importer_args(&s.net, &s.keys));
            s.importer.wait_ready(Duration::from_secs(20));
            Timestamp::now().as_nanos()
        }
    };
    // Resumed: a sample published after the repair arrives, within 3 s of the repair.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut resumed_ms = None;
    while Instant::now() < deadline {
        let found = s
            .consumer
            .seen
            .lock()
            .unwrap()
            .samples
            .iter()
            .rev()
            .take(50)
            .find_map(|(x, at)| (x.header.stamp.as_nanos() > t_repair).then_some(*at));
        if let Some(at) = found {
            resumed_ms = Some((at - t_repair) / 1_000_000);
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let exporter_out = s.exporter.output();
    let importer_out = s.importer.output();
    let Some(resumed_ms) = resumed_ms else {
        panic!("{name}: no new data within 3 s of the repair\nexporter:\n{exporter_out}\nimporter:\n{importer_out}");
    };
    thread::sleep(Duration::from_millis(1000));
    let producer_times: Vec<u64> = s.producer.published.lock().unwrap().clone();
    let o = finish(s, Some(from));
    print_latency(name, &o);
    // The importer's gap counts everything it missed since it started: a restarted importer (a new process)
    // counts from its restart, the others from the first sample. Losses before the fault (seen rarely at
    // start-up, while Zenoh is still building routes) are counted, but not held against the outage window.
    let expected_gap = o.missing_all;
    if o.missing_all > o.missing.len() as u64 {
        println!(
            "{name}: {} samples lost before the fault",
            o.missing_all - o.missing.len() as u64
        );
    }
    println!(
        "{name}: outage {:.2} s, resumed {resumed_ms} ms after repair, {} samples missing ({} produced during the outage)",
        (t_repair - t_fault) as f64 / 1e9,
        o.missing.len(),
        producer_times
            .iter()
            .filter(|&&t| t >= t_fault && t <= t_repair)
            .count()
    );
    // The reported gap is exactly what did not arrive, and all of it was produced during the outage (plus what was
    // in flight when it began and the time the link took to come back).
    if matches!(f, Fault::KillImporter) {
        // The restarted importer counts from the newest sample its ring holds: everything missing after the kill,
        // at most everything missing. (Seen: it reported up to a dozen more than went missing after the fault;
        // not explained yet.)
        let after = o.missing.len() as u64;
        assert!(
            (after..=o.missing_all).contains(&o.gap),
            "{name}: restarted importer's gap {} outside {after}..={}",
            o.gap,
            o.missing_all
        );
    } else {
        assert_eq!(
            o.gap,
            expected_gap,
            "{name}: importer gap vs missing samples {:?}",
            &o.missing[..o.missing.len().min(20)]
        );
    }
    let window = t_fault.saturating_sub(200_000_000)..=t_repair + 3_000_000_000;
    for q in &o.missing {
        let t = producer_times[*q as usize];
        assert!(
            window.contains(&t),
            "{name}: sample {q} (published {t}) missing outside the outage {window:?}"
        );
    }
    // A SIGKILLed importer leaves the rings and stats slot it created (4, 2, 3); an exporter its stats slot (5).
    let crashed: &[usize] = match f {
        Fault::KillImporter => &[2, 3, 4],
        Fault::KillExporter => &[5],
        _ => &[],
    };
    assert_nothing_left(&o, crashed);
}

#[test]
#[ignore = "needs root, ip and nft: cargo xtask test --suite bridge"]
fn nft_drop_for_3_s() {
    fault(2, "block", Fault::NftDrop(Duration::from_secs(3)), "nft drop 3 s");
}

#[test]
#[ignore = "needs root, ip and nft: cargo xtask test --suite bridge"]
fn nft_drop_longer_than_the_lease() {
    fault(
        3,
        "block",
        Fault::NftDrop(Duration::from_millis(LEASE_MS + 2000)),
        "nft drop 6 s (lease 4 s)",
    );
}

#[test]
#[ignore = "needs root, ip and nft: cargo xtask test --suite bridge"]
fn link_down_and_up() {
    fault(4, "block", Fault::LinkDown(Duration::from_secs(2)), "link down 2 s");
}

#[test]
#[ignore = "needs root, ip and nft: cargo xtask test --suite bridge"]
fn kill_9_of_the_exporting_bridge_and_restart() {
    fault(5, "block", Fault::KillExporter, "kill -9 exporter");
}

#[test]
#[ignore = "needs root, ip and nft: cargo xtask test --suite bridge"]
fn kill_9_of_the_importing_bridge_and_restart() {
    fault(6, "block", Fault::KillImporter, "kill -9 importer");
}
