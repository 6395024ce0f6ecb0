//! The `shmfusion` binary against objects this test creates, `ipcs -m`, and the Python MCAP readers.
//!
//! The Python checks need a Python with `mcap` and `mcap-ros2-support` installed: `$SHMFUSION_PYTHON`, else
//! `.cache/venv/bin/python` at the workspace root (what `cargo xtask test`'s setup creates).

use std::process::Command;
use std::time::{Duration, Instant};

use shmfusion::buffer::{BroadcastRing, Latest};
use shmfusion::fusion::{ImuSample, Quaternion, SampleHeader, Stamped, Timestamp, Vector3};
use shmfusion::object::{ObjectOptions, fd, sysv};
use shmfusion::shm::Key;

fn shmfusion(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shmfusion"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = shmfusion(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

fn key(n: i32) -> Key {
    Key::from_raw(0x5c00_0000 | ((std::process::id() as i32 & 0xfff) << 8) | n)
}

fn imu(i: u64) -> Stamped<ImuSample> {
    let f = i as f32;
    Stamped::new(
        SampleHeader::new(1, i, Timestamp::from_nanos(1_000_000_000 + i * 5_000_000)),
        ImuSample {
            accel: Vector3::new(0.001 * f, -0.5, 9.81),
            gyro: Vector3::new(0.0, 0.01 * f, -0.25),
        },
    )
}

#[test]
fn list_and_inspect_decode_objects_and_match_ipcs() {
    let ring = sysv::create::<BroadcastRing<Stamped<ImuSample>, 64>>(key(1), &ObjectOptions::new()).unwrap();
    let mut w = ring.get().writer().unwrap();
    for i in 0..100 {
        w.publish_one(&imu(i));
    }
    let name = format!("/shmfusion-cli-test-{}", std::process::id());
    let cname = std::ffi::CString::new(name.clone()).unwrap();
    let slot = fd::posix::create::<Latest<Quaternion>>(&cname, &ObjectOptions::new()).unwrap();
    slot.get().writer().unwrap().write(&Quaternion::IDENTITY);

    let list = json(&["list", "--json"]);
    assert_eq!(list["schema_version"], 1);
    let objects = list["objects"].as_array().unwrap();
    let id = ring.region().id().as_raw();
    let o = objects.iter().find(|o| o["id"] == id).expect("ring listed");
    let sf = &o["shmfusion"];
    assert_eq!(sf["kind"], "broadcast-ring");
    assert_eq!(sf["element_type"], "stamped-imu");
    assert_eq!(sf["capacity"], 64);
    assert_eq!(sf["written"], 100);
    assert_eq!(sf["fill"], 64);
    assert_eq!(sf["writer"]["pid"], std::process::id());
    assert_eq!(sf["writer"]["alive"], true);
    assert_eq!(sf["last_write_ns"], 1_000_000_000u64 + 99 * 5_000_000);
    let p = objects
        .iter()
        .find(|o| o["name"] == name.as_str())
        .expect("posix slot listed");
    assert_eq!(p["shmfusion"]["kind"], "latest");
    assert_eq!(p["shmfusion"]["element_type"], "quaternion");
    assert_eq!(p["mode"], "600");

    // The SysV columns agree with `ipcs -m` for the same id: key, owner, perms, bytes, nattch.
    let ipcs = Command::new("ipcs").args(["-m"]).output().unwrap();
    let ipcs = String::from_utf8_lossy(&ipcs.stdout);
    let row: Vec<&str> = ipcs
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&id.to_string().as_str()))
        .unwrap_or_else(|| panic!("id {id} not in ipcs -m:\n{ipcs}"));
    assert_eq!(row[0], o["key"].as_str().unwrap());
    assert_eq!(row[3], o["mode"].as_str().unwrap());
    assert_eq!(row[4], o["size"].to_string());
    assert_eq!(row[5], o["attach_count"].to_string());

    let inspect = json(&[
        "inspect",
        &format!("0x{:08x}", key(1).as_raw() as u32),
        "--json",
        "--samples",
        "2",
    ]);
    let samples = inspect["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1]["position"], 99);
    assert_eq!(samples[1]["value"]["seq"], 99);
    assert!((samples[1]["value"]["accel"][0].as_f64().unwrap() - 0.099).abs() < 1e-6);
    let inspect = json(&["inspect", &name, "--json"]);
    assert_eq!(inspect["samples"][0]["value"]["w"], 1.0);

    // Inspecting changed nothing: the writer still holds its role and the counts are as they were.
    assert_eq!(ring.get().writer_holder().map(|h| h.pid), Some(std::process::id()));
    assert_eq!(ring.get().tail(), 100);
    let (code, _, err) = shmfusion(&["inspect", "0x7fffffee"]);
    assert_eq!(code, 3, "{err}");
    // A live, attached object of ours is refused by rm.
    let (code, _, err) = shmfusion(&["rm", &id.to_string()]);
    assert_eq!(code, 4);
    assert!(err.contains("attached"), "{err}");
}

fn python() -> String {
    std::env::var("SHMFUSION_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/venv/bin/python").to_owned())
}

#[test]
fn record_to_mcap_read_by_python_and_play_back() {
    let ring = sysv::create::<BroadcastRing<Stamped<ImuSample>, 1024>>(key(2), &ObjectOptions::new()).unwrap();
    let dir = std::env::temp_dir().join(format!("shmfusion-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("run.mcap");
    let target = format!("/imu=id:{}", ring.region().id().as_raw());
    let mut recorder = Command::new(env!("CARGO_BIN_EXE_shmfusion"))
        .args(["record", &target, "-o", file.to_str().unwrap(), "--duration", "1.5"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut w = ring.get().writer().unwrap();
    let start = Instant::now();
    for i in 0..200 {
        w.publish_one(&imu(i));
        while start.elapsed() < Duration::from_millis(2 * (i + 1)) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert!(recorder.wait().unwrap().success());

    let script = r#"
import sys, json
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
with open(sys.argv[1], "rb") as f:
    reader = make_reader(f, decoder_factories=[DecoderFactory()])
    summary = reader.get_summary()
    channels = sorted((c.topic, summary.schemas[c.schema_id].name, c.message_encoding) for c in summary.channels.values())
    out = {"channels": channels, "messages": []}
    for schema, channel, message, ros in reader.iter_decoded_messages():
        out["messages"].append({"log": message.log_time, "pub": message.publish_time, "seq": message.sequence,
            "sec": ros.header.stamp.sec, "nanosec": ros.header.stamp.nanosec, "frame": ros.header.frame_id,
            "ax": ros.linear_acceleration.x, "gy": ros.angular_velocity.y, "oc0": ros.orientation_covariance[0]})
print(json.dumps(out))
"#;
    let out = Command::new(python())
        .args(["-c", script, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        read["channels"],
        serde_json::json!([["/imu", "sensor_msgs/msg/Imu", "cdr"]])
    );
    let messages = read["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 200);
    for (i, m) in messages.iter().enumerate() {
        let s = imu(i as u64);
        let stamp = s.header.stamp.as_nanos();
        assert_eq!(m["pub"], stamp);
        assert_eq!(
            m["sec"].as_u64().unwrap() * 1_000_000_000 + m["nanosec"].as_u64().unwrap(),
            stamp
        );
        assert_eq!(m["seq"], i);
        assert_eq!(m["frame"], "imu");
        // Exact in the file; the JSON hop through Python and serde_json may move the last digit.
        assert!((m["ax"].as_f64().unwrap() - f64::from(s.payload.accel.x)).abs() < 1e-12);
        assert!((m["gy"].as_f64().unwrap() - f64::from(s.payload.gyro.y)).abs() < 1e-12);
        assert_eq!(m["oc0"], -1.0);
    }

    // Play it back, ten times faster, into a ring under a known key, and read every sample back.
    let base = key(3).as_raw() as u32;
    let mut player = Command::new(env!("CARGO_BIN_EXE_shmfusion"))
        .args([
            "play",
            file.to_str().unwrap(),
            "--speed",
            "10",
            "--key-base",
            &format!("{base:x}"),
            "--linger",
            "5",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(player.stdout.take().unwrap()));
    let mut played = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("played") {
            played = Some(line);
            break;
        }
    }
    assert!(played.unwrap().starts_with("played 200 messages"));
    let ring = sysv::open::<BroadcastRing<Stamped<ImuSample>, 8192>>(Key::from_raw(base as i32), &ObjectOptions::new())
        .unwrap();
    let mut r = ring.get().reader_at(0);
    for i in 0..200 {
        let (got, _) = r.try_recv().unwrap();
        let want = imu(i);
        assert_eq!(
            (got.header.stamp, got.header.seq, got.payload),
            (want.header.stamp, want.header.seq, want.payload)
        );
    }
    drop(ring);
    // SAFETY: kill(2) of the child this test started.
    unsafe { libc::kill(player.id() as i32, libc::SIGTERM) };
    assert!(player.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}
