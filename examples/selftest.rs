//! `shmfusion-selftest`: a libc-free, static self-test program, run natively, under qemu-user and as `/init`
//! on real kernels under qemu-system.
//!
//! It prints `ok <name>` or `FAIL <name>: <detail>` per check and ends with exactly
//! `shmfusion-selftest: N passed, M failed`, exiting with status 0 iff M == 0 (powering off instead when it runs
//! as pid 1).
//!
//! Build it with the static, libc-free link flags, which turn on `crt-static`:
//!
//! ```text
//! RUSTFLAGS="-C linker=rust-lld -C linker-flavor=ld.lld -C relocation-model=static \
//!     -C target-feature=+crt-static -C link-self-contained=no" \
//!     cargo build --example selftest --features rt --profile static --target riscv64gc-unknown-linux-gnu
//! ```
//!
//! Without `crt-static` (an ordinary host build, such as the one `cargo test --features rt` makes of every
//! example) the C start files would be linked and clash with the runtime's `_start`, so the example then
//! compiles to a hosted stub that says how to build it and exits with status 2.
#![cfg_attr(target_feature = "crt-static", no_std, no_main)]

#[cfg(target_feature = "crt-static")]
mod selftest {
    use core::hint::black_box;
    use core::ptr;

    use shmfusion::rt::aux::AT_PAGESZ;
    use shmfusion::rt::check::Checks;
    use shmfusion::rt::{self, Args};

    rt::entry!(main);

    fn main(args: Args) -> i32 {
        let mut checks = Checks::new();
        check_args(&mut checks, &args);
        check_auxv(&mut checks, &args);
        check_mem(&mut checks);
        // Shared-memory checks go here.
        checks.summary("shmfusion-selftest")
    }

    /// argc/argv are decoded: at least the program name, as many strings as argc, and the same view from
    /// `rt::args()`.
    fn check_args(checks: &mut Checks, args: &Args) {
        let argc = args.argc();
        let counted = args.args().count();
        let name_len = args.arg(0).map_or(0, |a| a.to_bytes().len());
        let global = rt::args().map(|g| (g.argc(), g.arg(0)));
        checks.check_that(
            "rt.args",
            argc >= 1 && counted == argc && name_len > 0 && global == Some((argc, args.arg(0))),
            format_args!("argc {argc}, {counted} strings, argv[0] length {name_len}, rt::args() {global:?}"),
        );
    }

    /// The auxiliary vector is found after the environment and has a sane AT_PAGESZ.
    fn check_auxv(checks: &mut Checks, args: &Args) {
        let entries = args.auxv().count();
        let page = args.aux(AT_PAGESZ);
        checks.check_that(
            "rt.auxv",
            page.is_some_and(|p| p >= 4096 && p.is_power_of_two()),
            format_args!("AT_PAGESZ {page:?} among {entries} entries"),
        );
    }

    /// `memmove` (both directions), `memcpy`, `memset`, `memcmp` and `bcmp`, reached the way `core` reaches them,
    /// with lengths and offsets the optimiser cannot see, checked against closed-form expectations (a reference
    /// copy loop could itself be compiled into a `memmove` call).
    fn check_mem(checks: &mut Checks) {
        const N: usize = 64;
        let mut first_failure = None;
        let mut fail = |what: &'static str, len: usize, a: usize, b: usize| {
            first_failure.get_or_insert((what, len, a, b));
        };
        for len in [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 40] {
            for a in 0..9 {
                for b in 0..9 {
                    let (len, a, b) = (black_box(len), black_box(a), black_box(b));

                    // memmove within one buffer: a -> b, overlapping in either direction.
                    let mut buf: [u8; N] = core::array::from_fn(|i| i as u8);
                    // SAFETY: a + len and b + len are at most 48 <= N.
                    unsafe { ptr::copy(buf.as_ptr().add(a), buf.as_mut_ptr().add(b), len) };
                    let moved = (0..N).all(|i| {
                        let expect = if (b..b + len).contains(&i) { i - b + a } else { i };
                        buf[i] == expect as u8
                    });
                    if !moved {
                        fail("memmove", len, a, b);
                    }

                    // memcpy between buffers.
                    let src: [u8; N] = core::array::from_fn(|i| (i as u8).wrapping_mul(3).wrapping_add(1));
                    let mut dst = [0xEEu8; N];
                    // SAFETY: both ranges end at most at 48 <= N, in different buffers.
                    unsafe { ptr::copy_nonoverlapping(src.as_ptr().add(a), dst.as_mut_ptr().add(b), len) };
                    let copied = (0..N).all(|i| {
                        let expect = if (b..b + len).contains(&i) {
                            src[i - b + a]
                        } else {
                            0xEE
                        };
                        dst[i] == expect
                    });
                    if !copied {
                        fail("memcpy", len, a, b);
                    }

                    // memset.
                    let mut buf = [0x11u8; N];
                    // SAFETY: b + len <= 48 <= N.
                    unsafe { ptr::write_bytes(buf.as_mut_ptr().add(b), 0xA5, len) };
                    let set = (0..N).all(|i| buf[i] == if (b..b + len).contains(&i) { 0xA5 } else { 0x11 });
                    if !set {
                        fail("memset", len, a, b);
                    }

                    // memcmp and bcmp: equal ranges, then one byte raised by 0x80 (tests unsigned compare).
                    let x: [u8; N] = core::array::from_fn(|i| (i as u8).wrapping_mul(5));
                    let mut y = [0u8; N];
                    for i in 0..N {
                        // Indexes shifted by b - a so that y[b..b + len] == x[a..a + len].
                        y[i] = (i.wrapping_sub(b).wrapping_add(a) as u8).wrapping_mul(5);
                    }
                    let (xs, ys) = (&x[a..a + len], &y[b..b + len]);
                    if xs != ys || xs.cmp(ys) != core::cmp::Ordering::Equal {
                        fail("memcmp/bcmp equal", len, a, b);
                    }
                    if len > 0 {
                        let at = black_box(len / 2);
                        y[b + at] = y[b + at].wrapping_add(0x80);
                        let ys = &y[b..b + len];
                        let expect = x[a + at].cmp(&y[b + at]);
                        if xs == ys || xs.cmp(ys) != expect {
                            fail("memcmp/bcmp differ", len, a, b);
                        }
                    }
                }
            }
        }
        checks.check_that(
            "rt.mem",
            first_failure.is_none(),
            format_args!("first failure (what, len, src offset, dst offset): {first_failure:?}"),
        );
    }
}

#[cfg(not(target_feature = "crt-static"))]
fn main() {
    eprintln!(
        "shmfusion-selftest: built without the static link flags, so nothing was run; build with \
         RUSTFLAGS=\"-C linker=rust-lld -C linker-flavor=ld.lld -C relocation-model=static \
         -C target-feature=+crt-static -C link-self-contained=no\" (see the source)"
    );
    std::process::exit(2);
}
