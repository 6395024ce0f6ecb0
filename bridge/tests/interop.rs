//! Interop with clients nobody in this project wrote: the bridge exports IMU, magnetometer, GNSS and attitude rings
//! in the `ros2` format, and a Python program using `eclipse-zenoh`, `rosbags` and `zenoh-ros2-sdk` lists the
//! topics, decodes the payloads and parses the attachments (`tests/interop.py`).
//!
//! Needs the Python virtual environment `cargo xtask test` sets up (`.cache/bridge-py`, or
//! `SHMFUSION_BRIDGE_PYTHON`): run by `cargo xtask test --suite bridge`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use shmfusion::buffer::BroadcastRing;
use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion, SampleHeader, Stamped, Timestamp, Vector3};
use shmfusion::object::{ObjectOptions, sysv};
use shmfusion::shm::Key;
use shmfusion_bridge::clock;
use shmfusion_bridge::rmw::{self, Distro};
use shmfusion_bridge::ros2map::types;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SHMFUSION_BRIDGE_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/pyvenv/bin/python")
}

fn mag_payload(seq: u64) -> MagSample {
    MagSample::new(Vector3::new(20.0 + seq as f32 * 0.5, -5.25, 40.125))
}

fn gnss_payload(seq: u64) -> GnssFix {
    GnssFix {
        latitude_deg: 48.1 + seq as f64 * 1e-6,
        longitude_deg: 11.6,
        altitude_m: 520.5,
        horizontal_accuracy_m: 1.5,
        vertical_accuracy_m: 3.0,
        fix_type: GnssFix::FIX_3D,
        satellites: 9,
    }
}

/// The names in `/dev/shm`, where Linux keeps POSIX shm objects.
fn posix_shm_objects() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the POSIX shm objects the Python client reported mapping (`SHM <path>` lines) that did not exist before
/// it started and are still there after it ended: Zenoh's exit handler removes its own, but not if the process was
/// killed or crashed on the way out.
fn remove_left_by_python(stdout: &str, before: &BTreeSet<String>) {
    for path in stdout.lines().filter_map(|l| l.strip_prefix("SHM ")) {
        let Some(name) = path.strip_prefix("/dev/shm/") else {
            continue;
        };
        if !before.contains(name) && std::fs::remove_file(path).is_ok() {
            eprintln!("removed {path}, left behind by the Python client");
        }
    }
}

#[test]
#[ignore = "needs the Python venv: cargo xtask test --suite bridge"]
fn ros2_payloads_keys_attachments_and_tokens_read_by_python_clients() {
    let py = python();
    assert!(
        py.exists(),
        "{} missing: run `cargo xtask test --suite bridge` (its setup makes the venv)",
        py.display()
    );
    let keys = Keys::new(9);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let k = keys.0;
    let producer = {
        let stop = stop.clone();
        thread::spawn(move || {
            let o = ObjectOptions::new();
            let imu = sysv::create::<BroadcastRing<Stamped<ImuSample>, 512>>(Key::from_raw(k[0]), &o).unwrap();
            let mag = sysv::create::<BroadcastRing<Stamped<MagSample>, 64>>(Key::from_raw(k[1]), &o).unwrap();
            let gnss = sysv::create::<BroadcastRing<Stamped<GnssFix>, 16>>(Key::from_raw(k[2]), &o).unwrap();
            let att = sysv::create::<BroadcastRing<Stamped<Quaternion>, 64>>(Key::from_raw(k[3]), &o).unwrap();
            let (mut wi, mut wm, mut wg, mut wa) = (
                imu.get().writer().unwrap(),
                mag.get().writer().unwrap(),
                gnss.get().writer().unwrap(),
                att.get().writer().unwrap(),
            );
            tx.send(()).unwrap();
            let mut seq = 0;
            while !stop.load(Ordering::SeqCst) {
                let h = |c| SampleHeader::new(c, seq, Timestamp::now());
                wi.publish_one(&Stamped::new(h(1), imu_payload(seq)));
                wm.publish_one(&Stamped::new(h(2), mag_payload(seq)));
                wg.publish_one(&Stamped::new(h(3), gnss_payload(seq)));
                wa.publish_one(&Stamped::new(h(4), attitude_payload(seq)));
                seq += 1;
                thread::sleep(Duration::from_millis(10));
            }
        })
    };
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let spec = |kind: &str, key: i32, cap: usize, topic: &str, channel: u32| {
        format!("kind={kind},shm={key},topic={topic},cap={cap},format=ros2,frame={topic}_link,channel={channel}")
    };
    let args: Vec<String> = vec![
        "--listen".into(),
        format!("tcp/127.0.0.1:{port}"),
        "--export".into(),
        spec("imu", k[0], 512, "imu", 1),
        "--export".into(),
        spec("mag", k[1], 64, "mag", 2),
        "--export".into(),
        spec("gnss", k[2], 16, "gnss", 3),
        "--export".into(),
        spec("attitude", k[3], 64, "attitude", 4),
    ];
    let mut bridge = BridgeProc::bridge(None, &args);
    bridge.wait_ready(Duration::from_secs(20));
    let offset = clock::wall_offset_ns();
    let shm_before = posix_shm_objects();
    let mut child = Command::new(&py)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop.py"))
        .args([port.to_string(), "20".into(), "40".into()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    remove_left_by_python(&String::from_utf8_lossy(&out.stdout), &shm_before);
    stop.store(true, Ordering::SeqCst);
    producer.join().unwrap();
    let bridge_out = bridge.stop();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let context = format!(
        "python stdout:\n{text}\nstderr:\n{}\nbridge:\n{bridge_out}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python failed: {}\n{context}", out.status);

    let all = [
        types::IMU,
        types::MAGNETIC_FIELD,
        types::NAV_SAT_FIX,
        types::QUATERNION_STAMPED,
    ];
    // Type hashes: rosbags recomputes them from each distribution's definitions.
    let mut hashes = 0;
    for l in text.lines().filter(|l| l.starts_with("HASH ")) {
        let f: Vec<&str> = l.split(' ').collect();
        let ty = all.iter().find(|t| t.name == f[2]).expect("hash of an unknown type");
        assert_eq!(ty.hash, f[3], "{} in {}", f[2], f[1]);
        hashes += 1;
    }
    assert_eq!(hashes, 8, "{context}");
    // `ros2 topic list --show-types`, as zenoh-ros2-sdk computes it from the liveliness tokens.
    let topics: BTreeSet<&str> = text.lines().filter_map(|l| l.strip_prefix("TOPIC ")).collect();
    for want in [
        "/imu sensor_msgs/msg/Imu",
        "/mag sensor_msgs/msg/MagneticField",
        "/gnss sensor_msgs/msg/NavSatFix",
        "/attitude geometry_msgs/msg/QuaternionStamped",
    ] {
        assert!(topics.contains(want), "topic list lacks {want}: {topics:?}\n{context}");
    }
    let tokens: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("TOKEN ")).collect();
    let node = tokens
        .iter()
        .find(|t| t.contains("/NN/"))
        .unwrap_or_else(|| panic!("no node token\n{context}"));
    let zid = node.split('/').nth(2).unwrap();
    assert_eq!(*node, rmw::node_token(0, zid, 0, "", "shmfusion_bridge"));
    // Samples: key, attachment, stamp and field values.
    let mut per_key: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
    for l in text.lines().filter(|l| l.starts_with("SAMPLE ")) {
        let f: Vec<&str> = l.split(' ').collect();
        let (key, att_len, att_seq, att_ts, gid, stamp, frame) = (f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
        let vals: Vec<f64> = f[8..].iter().map(|v| v.parse().unwrap()).collect();
        let ty = all
            .iter()
            .find(|t| key == rmw::topic_key(0, key.split('/').nth(1).unwrap(), t, Distro::Jazzy))
            .unwrap_or_else(|| panic!("unexpected key {key}"));
        assert_eq!(att_len, "33", "attachment size");
        let seq: u64 = att_seq.parse::<u64>().unwrap() - 1;
        let ts: i64 = att_ts.parse().unwrap();
        assert!(
            (ts - clock::wall_now_ns()).abs() < 120_000_000_000,
            "source timestamp {ts} is not a wall-clock time"
        );
        assert_eq!(gid.len(), 32);
        let stamp: i64 = stamp.parse().unwrap();
        assert!(
            (stamp - ts).abs() < 1_000_000_000,
            "header stamp {stamp} vs source timestamp {ts}"
        );
        let _ = offset;
        let topic = key.split('/').nth(1).unwrap();
        assert_eq!(frame, format!("{topic}_link"));
        let expect: Vec<f64> = match ty.name {
            "sensor_msgs/msg/Imu" => {
                let p = imu_payload(seq);
                vec![p.accel.x, p.accel.y, p.accel.z, p.gyro.x, p.gyro.y, p.gyro.z]
                    .into_iter()
                    .map(f64::from)
                    .chain([-1.0])
                    .collect()
            }
            "sensor_msgs/msg/MagneticField" => {
                let p = mag_payload(seq);
                [p.field.x, p.field.y, p.field.z]
                    .into_iter()
                    .map(|v| f64::from(v) * 1e-6)
                    .collect()
            }
            "sensor_msgs/msg/NavSatFix" => {
                let p = gnss_payload(seq);
                vec![p.latitude_deg, p.longitude_deg, p.altitude_m, 0.0, 1.5 * 1.5, 2.0]
            }
            _ => {
                let q = attitude_payload(seq);
                [q.w, q.x, q.y, q.z].into_iter().map(f64::from).collect()
            }
        };
        assert_eq!(vals, expect, "{key} seq {seq}");
        let e = per_key.entry(key.to_owned()).or_default();
        e.0 += 1;
        e.1.insert(gid.to_owned());
    }
    assert_eq!(per_key.len(), 4, "{context}");
    let mut gids = BTreeSet::new();
    for (key, (n, g)) in &per_key {
        assert!(*n >= 20, "{key}: {n} samples");
        assert_eq!(g.len(), 1, "{key}: one publisher GID");
        gids.extend(g.iter().cloned());
    }
    assert_eq!(gids.len(), 4, "each publisher has its own GID");
    // Each publisher token names its data key: <domain>/<topic>/<type>/<hash>.
    for ty in all {
        assert!(
            tokens
                .iter()
                .any(|t| t.contains("/MP/%/%/shmfusion_bridge/%")
                    && t.contains(&format!("/{}/{}/", ty.dds_name, ty.hash))),
            "no publisher token for {}\n{context}",
            ty.name
        );
    }
    println!(
        "python clients read {} samples on 4 topics; topic list {topics:?}",
        per_key.values().map(|v| v.0).sum::<usize>()
    );
}
