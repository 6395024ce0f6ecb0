//! One exchange between a native bridge and a bridge cross-built for aarch64 or riscv64 running under qemu-user:
//! a native exporter, a foreign importer writing into a ring this test reads, over loopback.
//!
//! `cargo xtask test --suite bridge-cross` cross-builds the program and passes `SHMFUSION_BRIDGE_CROSS`
//! (`triple=path;...`).

mod common;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use common::*;
use shmfusion::fusion::ImuSample;

fn runner(triple: &str) -> Vec<String> {
    let (qemu, sysroot) = match triple.split('-').next() {
        Some("aarch64") => ("qemu-aarch64-static", "/usr/aarch64-linux-gnu"),
        Some("riscv64gc") => ("qemu-riscv64-static", "/usr/riscv64-linux-gnu"),
        _ => panic!("no runner for {triple}"),
    };
    vec![qemu.into(), "-L".into(), sysroot.into()]
}

fn exchange(triple: &str, program: &str, tag: u8) {
    let keys = Keys::new(10 + tag as i32);
    let port = 30000 + (std::process::id() % 10000) as u16 + tag as u16;
    let mut producer = Producer::start(keys.0[0], 1000);
    producer.go();
    let mut exporter = BridgeProc::bridge(
        None,
        &[
            "--listen".into(),
            format!("tcp/127.0.0.1:{port}"),
            "--export".into(),
            format!(
                "kind=imu,shm={},type={IMU_TYPE},key=sfb/cross/imu,cap=512,channel=1",
                keys.0[0]
            ),
        ],
    );
    exporter.wait_ready(Duration::from_secs(20));
    let mut cmd = runner(triple);
    cmd.push(program.into());
    let mut importer = BridgeProc::start(
        None,
        &cmd,
        &[
            "--connect".into(),
            format!("tcp/127.0.0.1:{port}"),
            "--retry-ms".into(),
            "250".into(),
            "--import".into(),
            format!(
                "kind=imu,shm={},type={IMU_TYPE},key=sfb/cross/imu,cap=4096,channel=1",
                keys.0[2]
            ),
        ],
        "shmfusion-bridge ready",
    );
    importer.wait_ready(Duration::from_secs(60));
    let mut consumer = Consumer::<ImuSample>::start(keys.0[2], IMU_TYPE);
    assert!(
        consumer.wait_for(100, Duration::from_secs(20)),
        "{triple}: nothing crossed\nexporter:\n{}\nimporter:\n{}",
        exporter.output(),
        importer.output()
    );
    // Nothing may be missing from the first sample on: the exporter (policy block) forwards only once the
    // importer's subscriber matches (see netns.rs, `setup`).
    thread::sleep(Duration::from_secs(2));
    producer.stop();
    let produced = producer.count();
    // Wait (bounded) for the tail: the emulated importer runs behind.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline
        && consumer.seen.lock().unwrap().samples.last().map(|(x, _)| x.header.seq) != Some(produced - 1)
    {
        thread::sleep(Duration::from_millis(20));
    }
    let seen = consumer.stop();
    let first = seen.samples[0].0.header.seq;
    let mut got = BTreeSet::new();
    let mut lat = Vec::new();
    for (s, at) in &seen.samples {
        assert_eq!(
            s.payload,
            imu_payload(s.header.seq),
            "{triple}: payload of {}",
            s.header.seq
        );
        assert!(
            s.header.stamp.as_nanos().abs_diff(producer.stamp_of(s.header.seq)) < 2_000_000,
            "{triple}: stamp of {}",
            s.header.seq
        );
        let published = producer.time_of(s.header.seq).expect("published");
        lat.push(at.saturating_sub(published) / 1000);
        got.insert(s.header.seq);
    }
    lat.sort_unstable();
    let missing: Vec<u64> = (first..produced).filter(|q| !got.contains(q)).collect();
    let imp = importer.stop();
    exporter.stop();
    println!(
        "{triple} under qemu-user importing from native: {} samples, latency µs p50 {} p99 {} max {}",
        got.len(),
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        percentile(&lat, 100.0)
    );
    assert!(missing.is_empty(), "{triple}: missing {missing:?}\n{imp}");
    assert!(got.len() > 1000, "{triple}: only {} samples", got.len());
}

#[test]
#[ignore = "needs the cross-built bridge: cargo xtask test --suite bridge-cross"]
fn native_exporter_and_qemu_user_importer() {
    let list = std::env::var("SHMFUSION_BRIDGE_CROSS")
        .expect("SHMFUSION_BRIDGE_CROSS (triple=path;...) is set by cargo xtask test --suite bridge-cross");
    let mut n = 0;
    for (i, entry) in list.split(';').filter(|e| !e.is_empty()).enumerate() {
        let (triple, path) = entry.split_once('=').expect("triple=path");
        exchange(triple, path, i as u8);
        n += 1;
    }
    assert!(n >= 2, "expected aarch64 and riscv64 programs, got {list:?}");
}
