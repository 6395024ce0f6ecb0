//! The smallest useful shmfusion producer as a static, libc-free program: it creates a latest-value slot of a
//! 64-byte sample in a new private System V segment (removed by the kernel at the last detach, even if the program
//! is killed), publishes 2,000,000 samples (a few tenths of a second: long enough to be seen running) and exits 0.
//! `cargo xtask bench` reports its stripped size (the goal is under 16 KiB) and its peak resident set size.
//!
//! Build it like the self-test (see `examples/selftest.rs`); without `crt-static` and `panic = "abort"` it compiles
//! to a hosted stub that exits with status 2.
#![cfg_attr(all(target_feature = "crt-static", panic = "abort"), no_std, no_main)]

#[cfg(all(target_feature = "crt-static", panic = "abort"))]
mod producer {
    use shmfusion::buffer::Latest;
    use shmfusion::object::{Lifecycle, ObjectOptions, sysv};
    use shmfusion::rt::{self, Args};
    use shmfusion::shm::Key;

    rt::entry!(main);

    /// Long enough for `cargo xtask bench` to poll the peak resident set size while it runs.
    const SAMPLES: u64 = 2_000_000;

    fn main(_: Args) -> i32 {
        let options = ObjectOptions::new().lifecycle(Lifecycle::RemoveOnLastDetach);
        let Ok(slot) = sysv::create::<Latest<[u64; 8]>>(Key::PRIVATE, &options) else {
            return 1;
        };
        let Ok(mut writer) = slot.get().writer() else {
            return 1;
        };
        for i in 1..=SAMPLES {
            writer.write(&[i; 8]);
        }
        if slot.get().sequence() == SAMPLES { 0 } else { 1 }
    }
}

#[cfg(not(all(target_feature = "crt-static", panic = "abort")))]
fn main() {
    eprintln!("producer_static: built without the static link flags or panic=abort (see examples/selftest.rs)");
    std::process::exit(2);
}
