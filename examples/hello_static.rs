//! The smallest libc-free program on the `rt` runtime, and a smoke test of its exits:
//!
//! - `hello_static` prints its arguments, the number of environment variables and the page size; exits 0;
//! - `hello_static exit N` exits with status N;
//! - `hello_static panic` panics: the message goes to stderr and the status is 101.
//!
//! As pid 1 each of these powers the machine off instead. Build it like the self-test (see `selftest.rs`); without
//! `crt-static` and `panic = "abort"` it compiles to a hosted stub.
#![cfg_attr(all(target_feature = "crt-static", panic = "abort"), no_std, no_main)]

#[cfg(all(target_feature = "crt-static", panic = "abort"))]
mod hello {
    use shmfusion::rt::{self, Args};

    rt::entry!(main);

    fn main(args: Args) -> i32 {
        match (args.arg(1).map(|a| a.to_bytes()), args.arg(2)) {
            (Some(b"panic"), _) => panic!("asked to panic with {} arguments", args.argc()),
            (Some(b"exit"), Some(code)) => parse(code.to_bytes()).unwrap_or(2),
            _ => {
                for (i, arg) in args.args().enumerate() {
                    rt::println!("argv[{i}] = {arg:?}");
                }
                rt::println!(
                    "{} environment variables, page size {:?}",
                    args.env().count(),
                    args.page_size()
                );
                0
            }
        }
    }

    /// Parses a small decimal number.
    fn parse(digits: &[u8]) -> Option<i32> {
        digits.iter().try_fold(0i32, |n, &d| {
            d.is_ascii_digit().then_some(())?;
            n.checked_mul(10)?.checked_add(i32::from(d - b'0'))
        })
    }
}

#[cfg(not(all(target_feature = "crt-static", panic = "abort")))]
fn main() {
    eprintln!("hello_static: built without the static link flags or panic=abort (see examples/selftest.rs)");
    std::process::exit(2);
}
