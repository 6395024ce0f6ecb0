//! A minimal program runtime for libc-free, static Linux binaries (feature `rt`).
//!
//! It provides what a `#![no_std]`, `#![no_main]` program needs when no C library is linked: the `_start` entry
//! point (per architecture, in [`arch`](self) assembly), argument/environment/auxiliary-vector decoding
//! ([`Args`]), the C memory functions `core` calls ([`mem`]), a panic handler, exit and power-off helpers, and
//! formatted output ([`print!`], [`println!`], [`eprint!`], [`eprintln!`]). Nothing allocates.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//!
//! use shmfusion::rt::{self, Args};
//!
//! rt::entry!(main);
//!
//! fn main(args: Args) -> i32 {
//!     rt::println!("hello from {:?}", args.arg(0));
//!     0
//! }
//! ```
//!
//! Build with the flags for static, libc-free binaries (the `static` profile has `panic = "abort"` and LTO):
//!
//! ```text
//! RUSTFLAGS="-C linker=rust-lld -C linker-flavor=ld.lld -C relocation-model=static \
//!     -C target-feature=+crt-static -C link-self-contained=no" \
//!     cargo build --features rt --profile static --target aarch64-unknown-linux-gnu --example selftest
//! ```
//!
//! `-C relocation-model=static` matters: the runtime does not relocate itself, so a static-PIE would crash. On
//! musl targets add `-C link-self-contained=no`, or rustc links musl's own `crt1.o`, whose `_start` clashes.
//!
//! Optionally add `-C link-arg=-T<checkout>/src/rt/no-unwind.ld -C link-arg=--no-eh-frame-hdr` (what the test
//! command does): the linker script discards the `.eh_frame` unwind tables, which no panic of this runtime reads
//! (panics abort) but which LTO emits for every function, about 4 KiB of a minimal program.
//!
//! # Where the symbols live
//!
//! All symbols that a C runtime also defines (`_start`, `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`,
//! `strlen`, `getauxval`, `rust_eh_personality`) and the `#[panic_handler]` are emitted by [`entry!`] into the binary crate
//! that invokes it, never into this library. So enabling `rt` cannot break an ordinary hosted build or
//! `cargo test --features rt`: only a binary that asks for this runtime gets it.
//!
//! # Running as `/init`
//!
//! When `main` returns or the program panics as pid 1, the runtime powers the machine off
//! ([`exit_or_power_off`]) instead of exiting, which would panic the kernel.

mod arch;
mod args;
pub mod aux;
pub mod check;
pub mod io;
pub mod mem;
mod process;

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

pub use args::{Args, CStrs, args};
pub use aux::{AuxEntry, AuxIter};
pub use process::{exit, exit_or_power_off, is_init, power_off};

#[doc(inline)]
pub use crate::__shmfusion_rt_entry as entry;
#[doc(inline)]
pub use crate::__shmfusion_rt_eprint as eprint;
#[doc(inline)]
pub use crate::__shmfusion_rt_eprintln as eprintln;
#[doc(inline)]
pub use crate::__shmfusion_rt_print as print;
#[doc(inline)]
pub use crate::__shmfusion_rt_println as println;

/// The exit status of a panicking program, as with std.
pub const PANIC_EXIT_STATUS: i32 = 101;

/// Set by the first panic, so that a panic while reporting a panic exits at once.
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Reports a panic on stderr (`panicked at <file>:<line>:<column>:` and the message) and ends the program with
/// status [`PANIC_EXIT_STATUS`] through [`exit_or_power_off`].
///
/// [`entry!`] installs a `#[panic_handler]` that calls this; a program with its own handler may call it too.
pub fn on_panic(info: &PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let _ = match info.location() {
            Some(at) => io::write_fmt(
                io::stderr(),
                format_args!(
                    "panicked at {}:{}:{}:\n{}",
                    at.file(),
                    at.line(),
                    at.column(),
                    info.message()
                ),
                true,
            ),
            None => io::write_fmt(io::stderr(), format_args!("panicked:\n{}", info.message()), true),
        };
    }
    exit_or_power_off(PANIC_EXIT_STATUS)
}

/// Signature of the `.init_array` constructors, as glibc and musl call them.
type InitFn = unsafe extern "C" fn(i32, *const *const u8, *const *const u8);

unsafe extern "C" {
    // Defined by the linker around the `.init_array` output section (equal when there is none).
    static __init_array_start: [InitFn; 0];
    static __init_array_end: [InitFn; 0];
}

/// The Rust side of `_start`: decodes the initial stack, runs the `.init_array` constructors, calls `main` and
/// ends the program with its return value. Called by the code [`entry!`] generates.
///
/// # Safety
/// `sp` must be the initial stack pointer the kernel gave the process (pointing at `argc`), and this must be the
/// first code to run in the process, once.
#[doc(hidden)]
pub unsafe fn __start(sp: *mut usize, main: fn(Args) -> i32) -> ! {
    // SAFETY: the caller guarantees `sp` is the untouched initial stack pointer.
    let args = unsafe {
        args::record_initial_stack(sp);
        Args::from_initial_stack(sp)
    };
    // SAFETY: the linker delimits an array of constructor pointers between these symbols; each is called once,
    // with (argc, argv, envp), before `main`, as a C runtime does.
    unsafe {
        let mut f = (&raw const __init_array_start).cast::<InitFn>();
        let end = (&raw const __init_array_end).cast::<InitFn>();
        let (argv, envp) = args.raw_argv_envp();
        while f < end {
            (*f)(args.argc() as i32, argv, envp);
            f = f.add(1);
        }
    }
    exit_or_power_off(main(args))
}

/// Defines this binary's entry point and runtime symbols, calling `main` with the program's [`Args`] and exiting
/// with its return value.
///
/// `main` must be a path to a `fn(Args) -> i32`. Use it once, at module level, in a `#![no_std]`, `#![no_main]`
/// binary crate. It expands to:
///
/// - `_start` for this architecture, which calls `main` through the runtime (see the [module docs](self));
/// - `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp` and `strlen` (from [`mem`]), and `getauxval`
///   ([`aux::getauxval`], which `compiler_builtins` calls on aarch64);
/// - a `#[panic_handler]` calling [`on_panic`];
/// - a `rust_eh_personality` stub: the precompiled `core` refers to it from its unwind tables, which builds
///   without LTO link. Panics never unwind here, so it is never called.
///
/// The binary must be built with `panic = "abort"`: rustc rejects `no_std` binaries that unwind. The `static`
/// profile has it; for the `dev` profile pass `--config 'profile.dev.panic="abort"'` (or set it in the profile).
///
/// When `main` returns, the program ends through [`exit_or_power_off`].
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_entry {
    ($main:path) => {
        /// Called by `_start` with the initial stack pointer.
        ///
        /// # Safety
        /// Only `_start` may call it.
        unsafe extern "C" fn __shmfusion_rt_start(sp: *mut usize) -> ! {
            // SAFETY: `_start` passes the kernel's initial stack pointer, once, before anything else runs.
            unsafe { $crate::rt::__start(sp, $main) }
        }

        $crate::__shmfusion_rt_start_asm!(__shmfusion_rt_start);

        $crate::__shmfusion_rt_mem_symbols!();

        /// C `getauxval`, which `compiler_builtins` calls on aarch64 (see `shmfusion::rt::aux::getauxval`).
        #[unsafe(no_mangle)]
        extern "C" fn getauxval(key: usize) -> usize {
            $crate::rt::aux::getauxval(key)
        }

        #[panic_handler]
        fn __shmfusion_rt_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::rt::on_panic(info)
        }

        /// Never called: panics do not unwind in this runtime. The precompiled `core` (built for unwinding) refers
        /// to it from its unwind tables, which an unoptimised build links.
        #[unsafe(no_mangle)]
        extern "C" fn rust_eh_personality() {}
    };
}
