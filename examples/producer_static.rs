//! The smallest useful shmfusion producer as a static, libc-free program: it creates a latest-value slot of a
//! 64-byte sample in a new private System V segment (removed by the kernel at the last detach, even if the program
//! is killed), publishes N samples (argument 1, default 100,000) and exits 0. `cargo xtask bench` reports its
//! stripped size (the goal is under 16 KiB) and its peak resident set size.
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

    fn main(args: Args) -> i32 {
        let n = match args.arg(1) {
            Some(a) => match parse(a.to_bytes()) {
                Some(n) => n,
                None => return 2,
            },
            None => 100_000,
        };
        let options = ObjectOptions::new().lifecycle(Lifecycle::RemoveOnLastDetach);
        let Ok(slot) = sysv::create::<Latest<[u64; 8]>>(Key::PRIVATE, &options) else {
            return 1;
        };
        let Ok(mut writer) = slot.get().writer() else {
            return 1;
        };
        for i in 1..=n {
            writer.write(&[i; 8]);
        }
        if slot.get().sequence() == n { 0 } else { 1 }
    }

    /// Parses a decimal count.
    fn parse(digits: &[u8]) -> Option<u64> {
        digits.iter().try_fold(0u64, |n, &d| {
            d.is_ascii_digit().then_some(())?;
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    }
}

#[cfg(not(all(target_feature = "crt-static", panic = "abort")))]
fn main() {
    eprintln!("producer_static: built without the static link flags or panic=abort (see examples/selftest.rs)");
    std::process::exit(2);
}
