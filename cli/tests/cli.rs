//! The `shmfusion` binary against objects this test creates, `ipcs -m`/`ipcmk`, and Python readers nobody here
//! wrote (`mcap`, `mcap-ros2-support`, `jsonschema`).
//!
//! Every test runs itself again inside private IPC and mount namespaces (a fresh tmpfs on `/dev/shm`), so that
//! `list` and `reap` see, and can touch, only this test's objects; needs root and `unshare`. The Python checks
//! need a Python with `mcap`, `mcap-ros2-support` and `jsonschema`: `$SHMFUSION_PYTHON`, else
//! `.cache/pyvenv/bin/python` at the workspace root (what `cargo xtask test`'s setup creates). Every `--json`
//! output is validated against `cli/schema/shmfusion.schema.json`.

use std::process::Command;
use std::time::{Duration, Instant};

use shmfusion::buffer::{BroadcastRing, Latest};
use shmfusion::fusion::{ImuSample, MagSample, Quaternion, SampleHeader, Stamped, Timestamp, Vector3};
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

/// Runs the calling test (`name`) again in private IPC and mount namespaces with a fresh tmpfs on `/dev/shm`, and
/// returns false in the outer run (which only checks that the inner one passed) and true in the inner one.
fn isolated(name: &str) -> bool {
    const INNER: &str = "SHMFUSION_CLI_TEST_ISOLATED";
    if std::env::var_os(INNER).is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--ipc", "--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o mode=1777 shmfusion-test /dev/shm && exec "$0" "$@""#)
        .arg(exe)
        .args([
            name,
            "--exact",
            "--nocapture",
            "--include-ignored",
            "--test-threads",
            "1",
        ])
        .env(INNER, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{name} in private namespaces: {}\n{text}",
        out.status
    );
    assert!(
        text.contains("1 passed"),
        "{name} did not run in private namespaces:\n{text}"
    );
    false
}

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/shmfusion.schema.json");

/// Validates a document against the schema with Python's `jsonschema`; returns the validator's complaint.
fn schema_errors(doc: &str) -> Option<String> {
    let script = "import sys, json, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  jsonschema.Draft202012Validator(schema).validate(json.load(sys.stdin))";
    let mut child = Command::new(python())
        .args(["-c", script, SCHEMA])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), doc.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs a `--json` command, checks exit 0 and the schema, and parses the output.
fn json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = shmfusion(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    if let Some(e) = schema_errors(&out) {
        panic!("{args:?}: output does not match the schema:\n{e}\n{out}");
    }
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
    if !isolated("list_and_inspect_decode_objects_and_match_ipcs") {
        return;
    }
    let ring = sysv::create::<BroadcastRing<Stamped<ImuSample>, 64>>(key(1), &ObjectOptions::new()).unwrap();
    let mut w = ring.get().writer().unwrap();
    for i in 0..100 {
        w.publish_one(&imu(i));
    }
    let name = format!("/shmfusion-cli-test-{}", std::process::id());
    let cname = std::ffi::CString::new(name.clone()).unwrap();
    let slot = fd::posix::create::<Latest<Quaternion>>(&cname, &ObjectOptions::new()).unwrap();
    slot.get().writer().unwrap().write(&Quaternion::IDENTITY);
    // The other kind and region pairs: an SPSC ring of magnetometer samples in SysV with a producer and a
    // consumer, a broadcast ring of GNSS fixes in POSIX shared memory.
    let spsc =
        sysv::create::<shmfusion::buffer::SpscRing<Stamped<MagSample>, 32>>(key(7), &ObjectOptions::new()).unwrap();
    let mut producer = spsc.get().producer().unwrap();
    let consumer = spsc.get().consumer().unwrap();
    for i in 0..5 {
        producer.try_push(mag(i)).unwrap();
    }
    let gnss = fd::posix::create::<BroadcastRing<Stamped<shmfusion::fusion::GnssFix>, 16>>(
        c"/cli-test-gnss",
        &ObjectOptions::new(),
    )
    .unwrap();
    drop(gnss.get().writer().unwrap());

    let list = json(&["list", "--json"]);
    assert_eq!(list["schema_version"], 1);
    let found = |at: &str, v: serde_json::Value| {
        list["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o[at] == v)
            .unwrap_or_else(|| panic!("{at} {v} not listed"))["shmfusion"]
            .clone()
    };
    let s = found("id", spsc.region().id().as_raw().into());
    assert_eq!(
        (s["kind"].as_str(), s["element_type"].as_str()),
        (Some("spsc-ring"), Some("stamped-mag"))
    );
    assert_eq!(
        (s["written"].as_u64(), s["fill"].as_u64(), s["capacity"].as_u64()),
        (Some(5), Some(5), Some(32))
    );
    assert_eq!(s["writer"]["pid"], std::process::id());
    assert_eq!(s["consumer"]["pid"], std::process::id());
    let g = found("name", "/cli-test-gnss".into());
    assert_eq!(
        (g["kind"].as_str(), g["element_type"].as_str()),
        (Some("broadcast-ring"), Some("stamped-gnss"))
    );
    assert_eq!((g["written"].as_u64(), g["writer"].is_null()), (Some(0), true));
    drop(consumer);
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
    // This process created objects, so it has a liveness anchor: listed as one, not as an unknown segment.
    let anchors: Vec<_> = objects
        .iter()
        .filter(|o| o["creator_pid"] == std::process::id() && o["note"] == "liveness anchor of a live process")
        .collect();
    assert_eq!(anchors.len(), 1, "{objects:#?}");
    assert_eq!(
        (&anchors[0]["mode"], &anchors[0]["marked_for_removal"]),
        (&"400".into(), &true.into())
    );

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
    // The text form: one labelled line per fact, samples as name=value pairs.
    let (code, text, _) = shmfusion(&[
        "inspect",
        &format!("0x{:08x}", key(1).as_raw() as u32),
        "--samples",
        "1",
    ]);
    assert_eq!(code, 0);
    for want in [
        format!("object      SysV segment id {id}, key 0x{:08x}", key(1).as_raw() as u32),
        "shmfusion   broadcast-ring of stamped-imu".to_owned(),
        format!("writer      pid {} alive", std::process::id()),
        "written     100, fill 64/64".to_owned(),
        "sample #99   accel=[0.099".to_owned(),
    ] {
        assert!(text.contains(&want), "no `{want}` in:\n{text}");
    }
    assert!(text.contains(" seq=99 "), "{text}");
    let inspect = json(&["inspect", &name, "--json"]);
    assert_eq!(inspect["samples"][0]["value"]["w"], 1.0);

    // Inspecting changed nothing: the writer still holds its role and the counts are as they were.
    assert_eq!(ring.get().writer_holder().and_then(|h| h.pid), Some(std::process::id()));
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
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/pyvenv/bin/python").to_owned())
}

fn mag(i: u64) -> Stamped<MagSample> {
    let f = i as f32;
    Stamped::new(
        SampleHeader::new(2, i, Timestamp::from_nanos(1_000_000_000 + i * 20_000_000)),
        MagSample::new(Vector3::new(21.5 + 0.01 * f, -3.25, 40.0)),
    )
}

/// What the Python readers print about a recording: channels, and per message the MCAP times and the decoded
/// ROS 2 fields.
const PY_READER: &str = r#"
import sys, json
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
with open(sys.argv[1], "rb") as f:
    reader = make_reader(f, decoder_factories=[DecoderFactory()])
    summary = reader.get_summary()
    channels = sorted((c.topic, summary.schemas[c.schema_id].name, c.message_encoding) for c in summary.channels.values())
    out = {"channels": channels, "messages": []}
    for schema, channel, message, ros in reader.iter_decoded_messages():
        m = {"topic": channel.topic, "log": message.log_time, "pub": message.publish_time, "seq": message.sequence,
             "sec": ros.header.stamp.sec, "nanosec": ros.header.stamp.nanosec, "frame": ros.header.frame_id}
        if schema.name == "sensor_msgs/msg/Imu":
            m.update(ax=ros.linear_acceleration.x, gy=ros.angular_velocity.y, az=ros.linear_acceleration.z,
                     oc0=ros.orientation_covariance[0])
        else:
            m.update(bx=ros.magnetic_field.x, bz=ros.magnetic_field.z)
        out["messages"].append(m)
print(json.dumps(out))
"#;

#[test]
fn record_to_mcap_read_by_python_and_play_back() {
    if !isolated("record_to_mcap_read_by_python_and_play_back") {
        return;
    }
    // A 5 s run: IMU at 200 Hz and magnetometer at 50 Hz, recorded while they are published.
    let imu_ring = sysv::create::<BroadcastRing<Stamped<ImuSample>, 1024>>(key(2), &ObjectOptions::new()).unwrap();
    let mag_ring = sysv::create::<BroadcastRing<Stamped<MagSample>, 256>>(key(6), &ObjectOptions::new()).unwrap();
    let dir = std::env::temp_dir().join(format!("shmfusion-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("run.mcap");
    let imu_target = format!("/imu=id:{}", imu_ring.region().id().as_raw());
    let mag_target = format!("/mag=0x{:08x}", key(6).as_raw() as u32);
    let mut recorder = Command::new(env!("CARGO_BIN_EXE_shmfusion"))
        .args([
            "record",
            &imu_target,
            &mag_target,
            "-o",
            file.to_str().unwrap(),
            "--duration",
            "6.5",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Publishing starts once the recorder follows both rings (it records from where they are when it starts).
    let mut said = std::io::BufRead::lines(std::io::BufReader::new(recorder.stderr.take().unwrap()));
    for _ in 0..2 {
        let line = said.next().unwrap().unwrap();
        assert!(line.starts_with("recording"), "{line}");
    }
    let mut imu_writer = imu_ring.get().writer().unwrap();
    let mut mag_writer = mag_ring.get().writer().unwrap();
    let start = Instant::now();
    for i in 0..1000 {
        imu_writer.publish_one(&imu(i));
        if i % 4 == 0 {
            mag_writer.publish_one(&mag(i / 4));
        }
        while start.elapsed() < Duration::from_millis(5 * (i + 1)) {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let summary: Vec<String> = said.map(Result::unwrap).collect();
    assert!(recorder.wait().unwrap().success(), "{summary:?}");
    assert!(
        summary.iter().any(|l| l.starts_with("/imu: 1000 messages, 0 lost")),
        "{summary:?}"
    );

    let out = Command::new(python())
        .args(["-c", PY_READER, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        read["channels"],
        serde_json::json!([
            ["/imu", "sensor_msgs/msg/Imu", "cdr"],
            ["/mag", "sensor_msgs/msg/MagneticField", "cdr"]
        ])
    );
    let messages = read["messages"].as_array().unwrap();
    let of = |topic: &str| messages.iter().filter(|m| m["topic"] == topic).collect::<Vec<_>>();
    let (imus, mags) = (of("/imu"), of("/mag"));
    assert_eq!((imus.len(), mags.len()), (1000, 250));
    for (i, m) in imus.iter().enumerate() {
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
        assert!((m["az"].as_f64().unwrap() - f64::from(s.payload.accel.z)).abs() < 1e-12);
        assert_eq!(m["oc0"], -1.0);
    }
    for (i, m) in mags.iter().enumerate() {
        let s = mag(i as u64);
        assert_eq!(m["pub"], s.header.stamp.as_nanos());
        // µT in the ring, tesla in ROS 2.
        assert!((m["bx"].as_f64().unwrap() - f64::from(s.payload.field.x) * 1e-6).abs() < 1e-15);
        assert!((m["bz"].as_f64().unwrap() - 40e-6).abs() < 1e-15);
    }
    // Log times are when the recorder read the samples: in order, and within the run.
    let logs: Vec<u64> = imus.iter().map(|m| m["log"].as_u64().unwrap()).collect();
    assert!(logs.windows(2).all(|w| w[0] <= w[1]));
    let span = (logs[999] - logs[0]) as f64 / 1e9;
    assert!((4.0..6.5).contains(&span), "{span} s");

    // Play it back, ten times faster, into rings under known keys (base, base + 1), and read every sample back.
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
    let (mut played, mut keys) = (None, std::collections::BTreeMap::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        // `/imu -> sysv id 5 key 0x5c001203 (imu, capacity 8192)`
        if let Some((topic, rest)) = line.split_once(" -> sysv id ") {
            let k = rest.split_whitespace().nth(2).unwrap().trim_start_matches("0x");
            keys.insert(
                topic.to_owned(),
                Key::from_raw(u32::from_str_radix(k, 16).unwrap() as i32),
            );
        }
        if line.starts_with("played") {
            played = Some(line);
            break;
        }
    }
    assert!(played.unwrap().starts_with("played 1250 messages"));
    let mut want_keys: Vec<i32> = keys.values().map(|k| k.as_raw()).collect();
    want_keys.sort();
    assert_eq!(want_keys, [base as i32, base as i32 + 1]);
    let imu_back = sysv::open::<BroadcastRing<Stamped<ImuSample>, 8192>>(keys["/imu"], &ObjectOptions::new()).unwrap();
    let mag_back = sysv::open::<BroadcastRing<Stamped<MagSample>, 8192>>(keys["/mag"], &ObjectOptions::new()).unwrap();
    let mut r = imu_back.get().reader_at(0);
    for i in 0..1000 {
        // Stamp, sequence, channel id (from the recording's metadata) and payload.
        assert_eq!(r.try_recv().unwrap().0, imu(i));
    }
    let mut r = mag_back.get().reader_at(0);
    for i in 0..250 {
        let (got, _) = r.try_recv().unwrap();
        let want = mag(i);
        assert_eq!((got.header, got.payload.field.z), (want.header, want.payload.field.z));
        // Through tesla and back as f64: within an ulp or so of the f32.
        assert!((got.payload.field.x - want.payload.field.x).abs() <= 4e-6, "{got:?}");
    }
    drop((imu_back, mag_back));
    // SAFETY: kill(2) of the child this test started.
    unsafe { libc::kill(player.id() as i32, libc::SIGTERM) };
    assert!(player.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `f` in a forked child (optionally as user `nobody` first) that then exits without any cleanup, as a
/// crashed process would: its objects stay behind with nobody attached and their creator dead.
fn in_dying_child(as_nobody: bool, f: impl FnOnce() -> bool) {
    // SAFETY: the child only makes system calls (setgid/setuid, the core's allocation-free object creation)
    // and `_exit`s; it never returns into the test harness.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            let ok = (!as_nobody || (libc::setgid(65534) == 0 && libc::setuid(65534) == 0)) && f();
            libc::_exit(if ok { 0 } else { 1 });
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child failed"
        );
    }
}

fn sysv_id(k: Key) -> i32 {
    // SAFETY: shmget with size 0 only looks the key up.
    unsafe { libc::shmget(k.as_raw(), 0, 0) }
}

#[test]
fn reap_removes_exactly_the_abandoned_objects_of_the_caller() {
    if !isolated("reap_removes_exactly_the_abandoned_objects_of_the_caller") {
        return;
    }
    type Ring = BroadcastRing<Stamped<ImuSample>, 16>;
    let options = ObjectOptions::new();
    // Keys are made here: `key` depends on the pid, which differs in the children.
    let keys: Vec<Key> = (10..14).map(key).collect();
    // Live: created and attached by this process.
    let live = sysv::create::<Ring>(key(10), &options).unwrap();
    // Dead: its creator exited without removing it.
    in_dying_child(false, || {
        std::mem::forget(sysv::create::<Ring>(keys[1], &ObjectOptions::new()));
        true
    });
    // Persisted, creator dead.
    in_dying_child(false, || {
        let o = ObjectOptions::new().lifecycle(shmfusion::object::Lifecycle::Persist);
        std::mem::forget(sysv::create::<Ring>(keys[2], &o));
        true
    });
    // Another user's, creator dead.
    in_dying_child(true, || {
        std::mem::forget(sysv::create::<Ring>(keys[3], &ObjectOptions::new()));
        true
    });
    // A dead POSIX object, and a plain segment that is not shmfusion's.
    let posix = std::ffi::CString::new("/reap-dead").unwrap();
    in_dying_child(false, || {
        std::mem::forget(fd::posix::create::<Latest<Quaternion>>(&posix, &ObjectOptions::new()));
        true
    });
    let plain = ipcmk(4096, "0600");
    let ids: Vec<i32> = keys.iter().map(|&k| sysv_id(k)).collect();
    assert!(ids.iter().all(|&id| id >= 0), "{ids:?}");

    let rules = |doc: &serde_json::Value| -> Vec<(String, String, bool)> {
        doc["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let at = v.get("id").map_or_else(|| v["name"].to_string(), |id| id.to_string());
                (
                    at,
                    v["rule"].as_str().unwrap().to_owned(),
                    v["remove"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let mut want = vec![
        (ids[0].to_string(), "attached".to_owned(), false),
        (ids[1].to_string(), "abandoned".to_owned(), true),
        (ids[2].to_string(), "persistent".to_owned(), false),
        (ids[3].to_string(), "not-theirs".to_owned(), false),
        (plain.to_string(), "foreign".to_owned(), false),
        ("\"/reap-dead\"".to_owned(), "abandoned".to_owned(), true),
    ];
    want.sort();
    let dry = json(&["reap", "--json"]);
    assert_eq!(dry["dry_run"], true);
    // This process's liveness anchor (its objects' creator stamp) is a segment too: marked for removal, not
    // anybody's to reap.
    let anchor = |id: &str| {
        id.parse::<i32>()
            .ok()
            .and_then(|id| shmfusion::shm::ShmId::from_raw(id).stat().ok())
            .is_some_and(|st| shmfusion::liveness::is_anchor(&st))
    };
    let mut got: Vec<_> = rules(&dry).into_iter().filter(|(at, _, _)| !anchor(at)).collect();
    got.sort();
    assert_eq!(got, want);
    // The dry run removed nothing.
    assert!(ids.iter().all(|&id| sysv_id_exists(id)));
    assert!(std::path::Path::new("/dev/shm/reap-dead").exists());

    let done = json(&["reap", "--yes", "--json"]);
    assert_eq!(done["dry_run"], false);
    for v in done["verdicts"].as_array().unwrap() {
        assert_eq!(
            v["removed"].as_bool(),
            v["remove"].as_bool().unwrap().then_some(true),
            "{v}"
        );
    }
    assert!(!sysv_id_exists(ids[1]));
    assert!(!std::path::Path::new("/dev/shm/reap-dead").exists());
    for id in [ids[0], ids[2], ids[3], plain] {
        assert!(sysv_id_exists(id), "{id} was removed");
    }
    // rm refuses the kept ones with the core's reason, and says so in its exit code.
    let (code, _, err) = shmfusion(&["rm", &ids[2].to_string()]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("persistent"), "{err}");
    let (code, _, err) = shmfusion(&["rm", &format!("id:{}", ids[3])]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("not owned"), "{err}");
    drop(live);
}

/// A plain segment made by util-linux's `ipcmk`; returns its id.
fn ipcmk(size: usize, mode: &str) -> i32 {
    let out = Command::new("ipcmk")
        .args(["-M", &size.to_string(), "-p", mode])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // "Shared memory id: 32768"
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().rsplit(' ').next().unwrap().parse().unwrap()
}

fn sysv_id_exists(id: i32) -> bool {
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT fills the buffer passed.
    unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) == 0 }
}

/// `ipcs -m` (and `ipcs -m -p`) rows by id: the whitespace-separated fields.
fn ipcs(extra: &[&str]) -> Vec<Vec<String>> {
    let out = Command::new("ipcs").arg("-m").args(extra).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|f| f.len() > 2 && f[1].parse::<i32>().is_ok() || f.first().is_some_and(|x| x.parse::<i32>().is_ok()))
        .collect()
}

#[test]
fn plain_segments_of_the_c_library_and_ipcmk_are_listed_like_ipcs() {
    if !isolated("plain_segments_of_the_c_library_and_ipcmk_are_listed_like_ipcs") {
        return;
    }
    // The C library's shmget, and one attachment so that nattch is not 0.
    // SAFETY: plain libc calls on a segment this test owns.
    let (c_id, c_map) = unsafe {
        let id = libc::shmget(key(20).as_raw(), 10_000, libc::IPC_CREAT | libc::IPC_EXCL | 0o640);
        assert!(id >= 0);
        let map = libc::shmat(id, std::ptr::null(), 0);
        assert_ne!(map as isize, -1);
        (id, map)
    };
    let mk_id = ipcmk(8192, "0644");
    let list = json(&["list", "--json"]);
    let objects = list["objects"].as_array().unwrap();
    let rows = ipcs(&[]);
    let pids = ipcs(&["-p"]);
    let mut text_rows = 0;
    let (_, text, _) = shmfusion(&["list"]);
    for id in [c_id, mk_id] {
        let o = objects.iter().find(|o| o["id"] == id).expect("listed");
        assert!(o["shmfusion"].is_null());
        assert!(o["note"].as_str().unwrap().contains("not a shmfusion object"), "{o}");
        let row = rows.iter().find(|r| r[1] == id.to_string()).expect("in ipcs -m");
        // key, perms, bytes, nattch as ipcs prints them.
        assert_eq!(row[0], o["key"].as_str().unwrap());
        assert_eq!(row[3], o["mode"].as_str().unwrap());
        assert_eq!(row[4], o["size"].to_string());
        assert_eq!(row[5], o["attach_count"].to_string());
        let p = pids.iter().find(|r| r[0] == id.to_string()).expect("in ipcs -m -p");
        assert_eq!(p[2], o["creator_pid"].to_string());
        // The text table has a row with the same id, key, mode and size.
        let line = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(1) == Some(&id.to_string().as_str()))
            .expect("in the text list");
        assert_eq!(
            (line[0], line[3], line[4]),
            (row[0].as_str(), row[3].as_str(), row[4].as_str())
        );
        text_rows += 1;
    }
    assert_eq!(text_rows, 2);
    assert_eq!(objects.iter().find(|o| o["id"] == c_id).unwrap()["mode"], "640");
    // A plain segment has no creator role: only the kernel's creator pid is shown.
    assert!(objects.iter().find(|o| o["id"] == mk_id).unwrap()["creator_pid"].is_u64());
    let inspect = json(&["inspect", &c_id.to_string(), "--json"]);
    assert!(inspect["header"].is_null() && inspect["samples"].as_array().unwrap().is_empty());
    // SAFETY: detaching the attachment made above.
    unsafe { libc::shmdt(c_map) };
}

#[test]
fn the_schema_rejects_what_it_does_not_describe() {
    let good = r#"{"schema_version": 1, "objects": []}"#;
    assert_eq!(schema_errors(good), None);
    for bad in [
        r#"{"schema_version": 2, "objects": []}"#,
        r#"{"schema_version": 1, "objects": [{"source": "sysv", "id": 1}]}"#,
        r#"{"schema_version": 1, "dry_run": true, "verdicts": [{"source": "posix", "name": "/x", "remove": true, "rule": "maybe", "reason": "", "removed": null}]}"#,
    ] {
        assert!(schema_errors(bad).is_some(), "accepted {bad}");
    }
}

#[test]
#[ignore = "needs $SHMFUSION_CLI_STATIC, the static aarch64 build: `cargo xtask test --suite cli` makes it"]
fn static_aarch64_build_lists_under_qemu() {
    if !isolated("static_aarch64_build_lists_under_qemu") {
        return;
    }
    let bin = std::env::var("SHMFUSION_CLI_STATIC").expect("SHMFUSION_CLI_STATIC: the static aarch64 shmfusion");
    let ring = sysv::create::<BroadcastRing<Stamped<ImuSample>, 64>>(key(30), &ObjectOptions::new()).unwrap();
    let mut w = ring.get().writer().unwrap();
    for i in 0..10 {
        w.publish_one(&imu(i));
    }
    let slot = fd::posix::create::<Latest<Quaternion>>(c"/static-slot", &ObjectOptions::new()).unwrap();
    slot.get().writer().unwrap().write(&Quaternion::IDENTITY);
    let out = Command::new("qemu-aarch64-static")
        .args([bin.as_str(), "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(e) = schema_errors(&text) {
        panic!("aarch64 list --json does not match the schema:\n{e}\n{text}");
    }
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    let objects = list["objects"].as_array().unwrap();
    let o = objects
        .iter()
        .find(|o| o["id"] == ring.region().id().as_raw())
        .expect("ring listed");
    assert_eq!(o["shmfusion"]["kind"], "broadcast-ring");
    assert_eq!(o["shmfusion"]["element_type"], "stamped-imu");
    assert_eq!(o["shmfusion"]["written"], 10);
    let p = objects
        .iter()
        .find(|o| o["name"] == "/static-slot")
        .expect("slot listed");
    assert_eq!(p["shmfusion"]["kind"], "latest");
}

/// A publisher in a forked child: takes the writer role of the ring at `k` and publishes `sample(0)`,
/// `sample(1)`, ... at `hz` (absolute deadlines, so the rate holds on a busy machine) until killed. Returns its pid.
fn publisher<T: shmfusion::Shareable>(k: Key, hz: u64, sample: fn(u64) -> T) -> i32 {
    // SAFETY: the child only makes system calls (the core's allocation-free open and publish, clock_nanosleep)
    // and `_exit`s; it never returns into the test harness.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            let Ok(ring) = sysv::open::<BroadcastRing<T, 256>>(k, &ObjectOptions::new()) else {
                libc::_exit(1)
            };
            let Ok(mut w) = ring.get().writer() else { libc::_exit(2) };
            let mut next = monotonic();
            for i in 0.. {
                w.publish_one(&sample(i));
                tick(&mut next, hz);
            }
            libc::_exit(3);
        }
        pid
    }
}

fn tick(next: &mut libc::timespec, hz: u64) {
    next.tv_nsec += (1_000_000_000 / hz) as libc::c_long;
    if next.tv_nsec >= 1_000_000_000 {
        next.tv_nsec -= 1_000_000_000;
        next.tv_sec += 1;
    }
    // SAFETY: sleeps until an absolute CLOCK_MONOTONIC time given by a valid timespec.
    unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, next, std::ptr::null_mut()) };
}

fn monotonic() -> libc::timespec {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the timespec passed.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t
}

/// The watch screen's row for `channel`: channel, kind, type, rate, lag, writer pid, liveness, fill, written.
fn watch_row(screen: &str, channel: &str) -> Vec<String> {
    screen
        .lines()
        .find(|l| l.contains(channel))
        .unwrap_or_else(|| panic!("{channel} not on the screen:\n{screen}"))
        .replace('│', " ")
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn watch_in_tmux_shows_rates_and_follows_a_dying_writer() {
    if !isolated("watch_in_tmux_shows_rates_and_follows_a_dying_writer") {
        return;
    }
    type Imu = BroadcastRing<Stamped<ImuSample>, 256>;
    type Mag = BroadcastRing<Stamped<MagSample>, 256>;
    let (fast_key, slow_key) = (key(40), key(41));
    let fast = sysv::create::<Imu>(fast_key, &ObjectOptions::new()).unwrap();
    let slow = sysv::create::<Mag>(slow_key, &ObjectOptions::new()).unwrap();
    let socket = std::env::temp_dir().join(format!("shmfusion-watch-{}.sock", std::process::id()));
    let fast_pid = publisher(fast_key, 200, imu);
    let slow_pid = publisher(slow_key, 50, |i| {
        Stamped::new(mag(i).header, MagSample::new(Vector3::new(21.5, -3.25, 40.0)))
    });
    let _cleanup = Cleanup {
        socket: socket.clone(),
        pids: vec![fast_pid, slow_pid],
    };
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux").arg("-S").arg(&socket).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let watch = format!("{} watch --interval-ms 200", env!("CARGO_BIN_EXE_shmfusion"));
    tmux(&["new-session", "-d", "-x", "150", "-y", "40", &watch]);
    // The real rates, over the last two seconds before the screen is read (watch averages over two seconds).
    std::thread::sleep(Duration::from_millis(1500));
    let (t0, f0, s0) = (Instant::now(), fast.get().tail(), slow.get().tail());
    std::thread::sleep(Duration::from_secs(2));
    let screen = tmux(&["capture-pane", "-p"]);
    let secs = t0.elapsed().as_secs_f64();
    let real = [
        (fast.get().tail() - f0) as f64 / secs,
        (slow.get().tail() - s0) as f64 / secs,
    ];
    let names = [
        format!("0x{:08x}", fast_key.as_raw() as u32),
        format!("0x{:08x}", slow_key.as_raw() as u32),
    ];
    for ((name, real), (ty, pid)) in names
        .iter()
        .zip(real)
        .zip([("stamped-imu", fast_pid), ("stamped-mag", slow_pid)])
    {
        let row = watch_row(&screen, name);
        assert_eq!((row[1].as_str(), row[2].as_str()), ("broadcast-ring", ty), "{screen}");
        let shown: f64 = row[3].parse().unwrap();
        assert!(
            (shown - real).abs() <= 0.1 * real,
            "{name}: watch shows {shown} Hz, real {real:.1} Hz\n{screen}"
        );
        assert_eq!(
            (row[5].as_str(), row[6].as_str()),
            (pid.to_string().as_str(), "alive"),
            "{screen}"
        );
    }
    // The publishers ran at about the rates asked for.
    assert!(
        (real[0] - 200.0).abs() < 20.0 && (real[1] - 50.0).abs() < 5.0,
        "{real:?}"
    );
    // Selecting the second channel shows its latest sample.
    tmux(&["send-keys", "Down"]);
    std::thread::sleep(Duration::from_millis(600));
    let screen = tmux(&["capture-pane", "-p"]);
    assert!(screen.contains("\"field\":[21.5,-3.25,40.0]"), "{screen}");

    // SIGKILL the slow writer: the screen follows.
    // SAFETY: kill and waitpid of the child this test forked.
    unsafe {
        libc::kill(slow_pid, libc::SIGKILL);
        libc::waitpid(slow_pid, std::ptr::null_mut(), 0);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let screen = tmux(&["capture-pane", "-p"]);
    let row = watch_row(&screen, &names[1]);
    assert_eq!(
        (row[5].as_str(), row[6].as_str()),
        (slow_pid.to_string().as_str(), "DEAD"),
        "{screen}"
    );
    let row = watch_row(&screen, &names[0]);
    assert_eq!(row[6], "alive", "{screen}");
    tmux(&["send-keys", "q"]);
}

/// Ends what the watch test started, also when it fails: its tmux server (by its own socket) and its publishers
/// (by pid).
struct Cleanup {
    socket: std::path::PathBuf,
    pids: Vec<i32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
        let _ = std::fs::remove_file(&self.socket);
        for &pid in &self.pids {
            // SAFETY: kill and waitpid of children this test forked (an already reaped one gives ESRCH/ECHILD).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}
