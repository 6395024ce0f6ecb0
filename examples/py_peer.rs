//! The Rust side of the Python binding tests (`python/tests`): a process using the core's typed API on objects
//! that Python opens or created.
//!
//! - `py_peer serve KEY`: creates a broadcast ring of 64 `Stamped<ImuSample>` at KEY (100 samples published,
//!   sample `i` stamped `1000 * i` ns with accel `(i, 2i, 3i)`), a latest slot of `Stamped<Quaternion>` at KEY+1
//!   (one write) and an SPSC ring of 16 `Stamped<GnssFix>` at KEY+2 (3 pushed); prints `ready` and keeps them
//!   until its standard input closes.
//! - `py_peer consume KEY N`: opens the SPSC ring of 64 `Stamped<ImuSample>` that Python created at KEY, pops N
//!   samples (up to 5 s each) and checks sample `i` has seq `i` and accel `(i, 2i, 3i)`; prints `consumed N`.
//! - `py_peer consume-blocks KEY N`: opens Python's runtime-sized block ring at KEY as the typed
//!   `SpscRing<[u64; 4], 8>` (type name `shmfusion.block`), pops N records and checks record `i` is
//!   `[i, 2i, 3i, 4i]`; prints `consumed N`.
//! - `py_peer publish-and-die KEY`: claims the writer of Python's broadcast ring of 16 `Stamped<ImuSample>` at
//!   KEY, publishes one sample and exits without releasing the role (as a crash would), so that readers see a
//!   writer that is gone.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use shmfusion::buffer::{BroadcastRing, Latest, SpscRing};
use shmfusion::fusion::{GnssFix, ImuSample, Quaternion, SampleHeader, Stamped, Timestamp, Vector3};
use shmfusion::object::{ObjectOptions, sysv};
use shmfusion::shm::Key;

fn imu(i: u64) -> Stamped<ImuSample> {
    let f = i as f32;
    Stamped::new(
        SampleHeader::new(7, i, Timestamp::from_nanos(1000 * i)),
        ImuSample {
            accel: Vector3::new(f, 2.0 * f, 3.0 * f),
            gyro: Vector3::new(-f, 0.5, 0.25),
        },
    )
}

fn run(args: &[String]) -> Result<(), String> {
    let key = |s: &String| {
        s.parse::<i32>()
            .map(Key::from_raw)
            .map_err(|e| format!("bad key {s}: {e}"))
    };
    let o = ObjectOptions::new();
    match args {
        [cmd, k] if cmd == "serve" => {
            let k = key(k)?;
            let imu_ring = sysv::create::<BroadcastRing<Stamped<ImuSample>, 64>>(k, &o).map_err(|e| e.to_string())?;
            let mut w = imu_ring.get().writer().map_err(|e| e.to_string())?;
            for i in 0..100 {
                w.publish_one(&imu(i));
            }
            let attitude = sysv::create::<Latest<Stamped<Quaternion>>>(Key::from_raw(k.as_raw() + 1), &o)
                .map_err(|e| e.to_string())?;
            let q = Quaternion::from_axis_angle(Vector3::new(0.0, 0.0, 1.0), 0.5);
            let mut lw = attitude.get().writer().map_err(|e| e.to_string())?;
            lw.write(&Stamped::new(
                SampleHeader::new(3, 42, Timestamp::from_nanos(123_456)),
                q,
            ));
            let fixes = sysv::create::<SpscRing<Stamped<GnssFix>, 16>>(Key::from_raw(k.as_raw() + 2), &o)
                .map_err(|e| e.to_string())?;
            let mut p = fixes.get().producer().map_err(|e| e.to_string())?;
            for i in 0..3u32 {
                let fix = GnssFix {
                    latitude_deg: 48.0 + f64::from(i),
                    longitude_deg: 11.5,
                    altitude_m: 500.0,
                    horizontal_accuracy_m: 1.5,
                    vertical_accuracy_m: 2.5,
                    fix_type: GnssFix::FIX_3D,
                    satellites: 9 + i,
                };
                let header = SampleHeader::new(2, u64::from(i), Timestamp::from_nanos(u64::from(i)));
                p.try_push(Stamped::new(header, fix)).map_err(|e| e.to_string())?;
            }
            println!("ready");
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            Ok(())
        }
        [cmd, k, n] if cmd == "consume" => {
            let n: u64 = n.parse().map_err(|e| format!("bad count {n}: {e}"))?;
            let ring = sysv::open::<SpscRing<Stamped<ImuSample>, 64>>(key(k)?, &o).map_err(|e| e.to_string())?;
            let mut c = ring.get().consumer().map_err(|e| e.to_string())?;
            for i in 0..n {
                let s = c
                    .pop_wait(Some(Duration::from_secs(5)))
                    .map_err(|e| format!("sample {i}: {e}"))?;
                let want = imu(i);
                if (s.header.seq, s.payload.accel) != (want.header.seq, want.payload.accel) {
                    return Err(format!("sample {i}: got {s:?}"));
                }
            }
            println!("consumed {n}");
            Ok(())
        }
        [cmd, k, n] if cmd == "consume-blocks" => {
            let n: u64 = n.parse().map_err(|e| format!("bad count {n}: {e}"))?;
            let o = ObjectOptions::new().type_name("shmfusion.block");
            let ring = sysv::open::<SpscRing<[u64; 4], 8>>(key(k)?, &o).map_err(|e| e.to_string())?;
            let mut c = ring.get().consumer().map_err(|e| e.to_string())?;
            for i in 0..n {
                let r = c
                    .pop_wait(Some(Duration::from_secs(5)))
                    .map_err(|e| format!("record {i}: {e}"))?;
                if r != [i, 2 * i, 3 * i, 4 * i] {
                    return Err(format!("record {i}: got {r:?}"));
                }
            }
            println!("consumed {n}");
            Ok(())
        }
        [cmd, k] if cmd == "publish-and-die" => {
            let ring = sysv::open::<BroadcastRing<Stamped<ImuSample>, 16>>(key(k)?, &o).map_err(|e| e.to_string())?;
            let mut w = ring.get().writer().map_err(|e| e.to_string())?;
            w.publish_one(&imu(1));
            println!("published");
            // No destructors: the writer role stays recorded for this process, which is about to be gone.
            std::process::exit(0)
        }
        _ => Err("usage: py_peer serve KEY | consume KEY N | consume-blocks KEY N | publish-and-die KEY".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("py_peer: {e}");
            ExitCode::FAILURE
        }
    }
}
