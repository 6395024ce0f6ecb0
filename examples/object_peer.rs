//! One side of a cross-build object check: `object_peer create KEY` creates a typed object, fills it, and waits
//! (up to 10 s) for an opener to answer; `object_peer open KEY` opens it, checks the contents and answers.
//!
//! The test command runs the two sides as different builds (x86_64 and i686) to show that a 64-bit and a 32-bit
//! program share one object: same header, same payload layout.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shmfusion::object::{ObjectOptions, SharedState, sysv};
use shmfusion::shm::Key;
use std::time::{Duration, Instant};

/// The shared payload: the same declaration in both builds.
#[repr(C)]
struct Exchange {
    values: [AtomicU64; 32],
    /// Set by the creator once `values` are filled.
    filled: AtomicU32,
    answered: AtomicU32,
    opener_pointer_width: AtomicU32,
    _reserved: AtomicU32,
}

// SAFETY: zero is valid; all atomics; fixed-width fields, identical layout on 32- and 64-bit targets.
unsafe impl SharedState for Exchange {
    const KIND: &'static str = "object-peer-exchange";
    const CAPACITY: u64 = 32;
    const ELEMENT_SIZE: u64 = 8;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(key)) = (args.get(1), args.get(2).and_then(|k| k.parse::<i32>().ok())) else {
        eprintln!("usage: object_peer create|open KEY");
        std::process::exit(2);
    };
    // The Rust type path is the same in both builds, but name it explicitly as separate programs should.
    let options = ObjectOptions::new().type_name("object-peer-exchange");
    let key = Key::from_raw(key);
    let width = usize::BITS;
    match mode.as_str() {
        "create" => {
            let object = sysv::create::<Exchange>(key, &options).expect("create");
            for (i, v) in object.get().values.iter().enumerate() {
                v.store(0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 1), Ordering::Relaxed);
            }
            object.get().filled.store(1, Ordering::Release);
            println!("created by a {width}-bit process");
            let deadline = Instant::now() + Duration::from_secs(10);
            while object.get().answered.load(Ordering::Acquire) == 0 {
                if Instant::now() > deadline {
                    eprintln!("no answer from the opener");
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let other = object.get().opener_pointer_width.load(Ordering::Relaxed);
            println!("answered by a {other}-bit process: ok");
        }
        "open" => {
            let deadline = Instant::now() + Duration::from_secs(10);
            let object = loop {
                match sysv::open::<Exchange>(key, &options) {
                    Ok(object) => break object,
                    Err(e) if Instant::now() > deadline => {
                        eprintln!("open failed: {e}");
                        std::process::exit(1);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            };
            // The object is published before the creator fills it: wait for its go-ahead.
            while object.get().filled.load(Ordering::Acquire) == 0 {
                if Instant::now() > deadline {
                    eprintln!("the creator never filled the object");
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            for (i, v) in object.get().values.iter().enumerate() {
                let expected = 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 1);
                if v.load(Ordering::Relaxed) != expected {
                    eprintln!("value {i} differs");
                    std::process::exit(1);
                }
            }
            object.get().opener_pointer_width.store(width, Ordering::Relaxed);
            object.get().answered.store(1, Ordering::Release);
            println!("opened by a {width}-bit process: ok");
        }
        _ => std::process::exit(2),
    }
}
