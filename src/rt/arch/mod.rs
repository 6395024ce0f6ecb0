//! Per-architecture program entry: the `_start` symbol, written in assembly.
//!
//! Each file defines one hidden, exported `macro_rules!` macro, `__shmfusion_rt_start_asm!(path)`, that expands to
//! a `global_asm!` block defining `_start`. The macro is expanded by [`entry!`](crate::rt::entry) in the binary
//! crate, never in this library, so the library itself defines no `_start` and cannot clash with a C runtime's
//! `crt1.o` in ordinary (hosted) builds and tests.
//!
//! Every `_start` does the same thing: clear the frame-pointer/return-address registers so a debugger sees the
//! outermost frame, pass the initial stack pointer (which points at `argc`) as the first argument, align the
//! stack as the architecture's calling convention requires at a call, and call the given
//! `unsafe extern "C" fn(*mut usize) -> !`. An undefined-instruction trap follows in case it ever returns.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "arm")]
mod arm;
#[cfg(target_arch = "riscv64")]
mod riscv64;
#[cfg(target_arch = "x86")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "x86",
    target_arch = "x86_64"
)))]
compile_error!("shmfusion's `rt` feature supports x86_64, x86, aarch64, arm (EABI) and riscv64 only");
