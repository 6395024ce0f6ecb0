//! Per-architecture syscall instructions: the only `asm!` in the crate's syscall path.
//!
//! Each module exports `syscall1`, `syscall3` and `syscall5` with the same signatures (x86 uses `syscall5` for the
//! `ipc()` multiplexer too). They return the raw kernel return value; decoding errors is the caller's business.

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

#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::*;
#[cfg(target_arch = "arm")]
pub(crate) use arm::*;
#[cfg(target_arch = "riscv64")]
pub(crate) use riscv64::*;
#[cfg(target_arch = "x86")]
pub(crate) use x86::*;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;

#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "x86",
    target_arch = "x86_64"
)))]
compile_error!("shmfusion supports x86_64, x86, aarch64, arm (EABI) and riscv64 Linux");
