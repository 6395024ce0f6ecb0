//! The Rust side of the C ABI exchanges (the test command's `capi` suite pairs it with `capi/tests/peer.c`, built
//! with each target's gcc): typed Rust buffers and runtime-sized C handles on the same objects.
//!
//! - `capi_peer serve KEY`: creates a broadcast ring of stamped IMU samples (key `KEY`), an SPSC ring of them
//!   (`KEY + 1`) and a latest slot of a stamped quaternion (`KEY + 2`), publishes 32 samples, says `ready`, then
//!   expects the C or Zig peer (`peer echo KEY`, capi/zig/echo.zig) to push each one back with
//!   `gyro.z = 2 * seq` and to write the latest value with `header.seq` 32.
//! - `capi_peer killed KEY`: creates the SPSC ring, says `ready`, pops what a C producer (`peer spin KEY`) pushes
//!   until that producer is SIGKILLed (`WriterGone`), then takes the producer role over and uses it.
//! - `capi_peer hostile KEY`: creates all three, says `ready`, and reads them while a C peer (`peer scribble KEY`)
//!   writes garbage over the whole segments: every read must end in a value or a typed error, never a panic or a
//!   hang.
//!
//! Exits 0 when everything held; prints what did not otherwise.

use shmfusion::buffer::{BroadcastRing, Error, Latest, SpscRing};
use shmfusion::fusion::{ImuSample, Quaternion, Stamped};
use shmfusion::object::{ObjectOptions, Shared, sysv};
use shmfusion::shm::{Attachment, Key};
use std::time::Duration;

type ImuRing = BroadcastRing<Stamped<ImuSample>, 64>;
type ImuQueue = SpscRing<Stamped<ImuSample>, 8>;
type Attitude = Latest<Stamped<Quaternion>>;

const WAIT: Option<Duration> = Some(Duration::from_secs(20));
/// Samples exchanged: fewer than the broadcast ring holds, so a reader from the oldest sees them all.
const SAMPLES: u64 = 32;

fn options(type_name: &str) -> ObjectOptions {
    ObjectOptions::new().type_name(type_name)
}

struct Objects {
    ring: Shared<ImuRing, Attachment>,
    queue: Shared<ImuQueue, Attachment>,
    latest: Shared<Attitude, Attachment>,
}

fn create(key: i32) -> Result<Objects, String> {
    let imu = options("shmfusion.StampedImu");
    Ok(Objects {
        ring: sysv::create::<ImuRing>(Key::from_raw(key), &imu).map_err(|e| format!("create ring: {e}"))?,
        queue: sysv::create::<ImuQueue>(Key::from_raw(key + 1), &imu).map_err(|e| format!("create queue: {e}"))?,
        latest: sysv::create::<Attitude>(Key::from_raw(key + 2), &options("shmfusion.StampedQuaternion"))
            .map_err(|e| format!("create latest: {e}"))?,
    })
}

fn ready() {
    println!("ready");
}

fn serve(key: i32) -> Result<(), String> {
    let o = create(key)?;
    let mut w = o.ring.get().writer().map_err(|e| format!("writer: {e}"))?;
    for i in 0..SAMPLES {
        let mut s = Stamped::<ImuSample>::default();
        s.header.seq = i;
        s.payload.accel.x = i as f32;
        w.publish_one(&s);
    }
    let mut consumer = o.queue.get().consumer().map_err(|e| format!("consumer: {e}"))?;
    ready();
    for i in 0..SAMPLES {
        let s = consumer.pop_wait(WAIT).map_err(|e| format!("pop {i}: {e}"))?;
        if s.header.seq != i || s.payload.gyro.z != 2.0 * i as f32 || s.payload.accel.x != i as f32 {
            return Err(format!("sample {i} came back as {s:?}"));
        }
    }
    let (q, seq) = o.latest.get().wait_newer(0, WAIT).map_err(|e| format!("latest: {e}"))?;
    if seq != 1 || q.header.seq != SAMPLES || q.payload.w != 1.0 {
        return Err(format!("latest value {q:?} (sequence {seq})"));
    }
    println!("served {SAMPLES} samples through every buffer kind");
    Ok(())
}

fn killed(key: i32) -> Result<(), String> {
    let o = create(key)?;
    let queue = o.queue.get();
    let mut consumer = queue.consumer().map_err(|e| format!("consumer: {e}"))?;
    ready();
    let mut next = 0u64;
    loop {
        match consumer.pop_wait(WAIT) {
            Ok(s) if s.header.seq == next => next += 1,
            Ok(s) => return Err(format!("sample {} out of order (expected {next})", s.header.seq)),
            Err(Error::WriterGone) => break,
            Err(e) => return Err(format!("pop after {next} samples: {e}")),
        }
    }
    if next == 0 {
        return Err("the C producer never pushed".into());
    }
    // The dead C producer's role is taken over; the ring carries on from its position.
    let mut producer = queue
        .producer()
        .map_err(|e| format!("take over the producer role: {e}"))?;
    let mut s = Stamped::<ImuSample>::default();
    s.header.seq = next;
    producer.try_push(s).map_err(|e| format!("push after takeover: {e}"))?;
    let back = consumer.try_pop().map_err(|e| format!("pop after takeover: {e}"))?;
    if back.header.seq != next {
        return Err("wrong sample after takeover".into());
    }
    println!("received {next} samples, then WriterGone, then took the producer role over");
    Ok(())
}

fn hostile(key: i32) -> Result<(), String> {
    let o = create(key)?;
    let (ring, queue, latest) = (o.ring.get(), o.queue.get(), o.latest.get());
    let mut consumer = queue.consumer().map_err(|e| format!("consumer: {e}"))?;
    let mut reader = ring.reader_from_oldest();
    ready();
    // The scribbler's first garbage moves the latest slot's sequence away from 0.
    let mut polls = 0u64;
    while latest.sequence() == 0 {
        polls += 1;
        if polls > 20_000 {
            return Err("the scribbler never wrote".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (mut values, mut errors) = (0u64, 0u64);
    for _ in 0..20_000 {
        for r in [
            reader.try_recv().map(drop),
            consumer.try_pop().map(drop),
            latest.read().map(drop),
        ] {
            match r {
                Ok(()) => values += 1,
                Err(_) => errors += 1,
            }
        }
        // A wait on garbage ends (value, typed error or timeout), never hangs.
        let _ = latest.wait_newer(u64::MAX, Some(Duration::from_micros(10)));
    }
    println!("under a scribbling peer: {values} values, {errors} typed errors, no panic");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(key)) = (args.get(1), args.get(2).and_then(|k| k.parse::<i32>().ok())) else {
        eprintln!("usage: capi_peer serve|killed|hostile KEY");
        std::process::exit(2);
    };
    let result = match mode.as_str() {
        "serve" => serve(key),
        "killed" => killed(key),
        "hostile" => hostile(key),
        _ => Err(format!("unknown mode {mode}")),
    };
    if let Err(e) = result {
        println!("capi_peer {mode}: {e}");
        std::process::exit(1);
    }
}
