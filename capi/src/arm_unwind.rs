//! ARM EHABI personality routines for links that have no unwinder (armv7 only).
//!
//! On ARM every function has an entry in the `.ARM.exidx` unwind table, and the entry names its personality
//! routine through a relocation: `__aeabi_unwind_cpp_pr0`/`pr1` for the compact models, `rust_eh_personality` in
//! the `.ARM.extab` entries of the precompiled `compiler_builtins`, which the Rust toolchain builds with
//! `panic = "unwind"`. The linker must resolve those names even though nothing ever unwinds through this library:
//! it is built with `panic = "abort"`, raises no exception and calls no user code, so no unwinder can meet one of
//! its frames.
//!
//! - `rust_eh_personality` is defined here, weak and hidden, refusing to unwind. A hosted C program gets the
//!   `__aeabi_unwind_cpp_pr*` routines from libgcc but nothing defines this Rust one. Weak: another Rust library
//!   in the same program (a `std` one) brings the real routine, which wins without a duplicate-symbol error.
//!   Hidden: never exported, so it cannot interpose on another module's routine at run time.
//! - `__aeabi_unwind_cpp_pr0`/`pr1` are NOT defined here: libgcc defines `pr1` and `pr2` as weak symbols, so a
//!   weak definition in this library (linked before libgcc) would replace them, and the C program's own frames
//!   with `pr1` entries could no longer be unwound (C++ exceptions, `pthread_cancel`). Only a program without
//!   any unwinder, a `-nostdlib` one, needs them; it maps them onto [`shmfusion_refuse_unwind`] at link time:
//!   `-Wl,--defsym=__aeabi_unwind_cpp_pr0=shmfusion_refuse_unwind,--defsym=__aeabi_unwind_cpp_pr1=...` (the
//!   `nostdlib_ldflags` variable of `shmfusion.pc`). Sound there because such a program has no unwinder that could
//!   call them.
//!
//! Both routines return `_URC_FAILURE` (9): the unwinder stops, as at a `cantunwind` entry (a C++ runtime then
//! calls `std::terminate`), instead of running code that assumes Rust unwinding state.
#![cfg(target_arch = "arm")]

core::arch::global_asm!(
    ".pushsection .text.shmfusion_refuse_unwind, \"ax\", %progbits",
    ".weak rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality, %function",
    ".globl shmfusion_refuse_unwind",
    ".hidden shmfusion_refuse_unwind",
    ".type shmfusion_refuse_unwind, %function",
    ".p2align 2",
    "rust_eh_personality:",
    "shmfusion_refuse_unwind:",
    // _URC_FAILURE: this frame cannot be unwound.
    "mov r0, #9",
    "bx lr",
    ".size shmfusion_refuse_unwind, . - shmfusion_refuse_unwind",
    ".size rust_eh_personality, . - rust_eh_personality",
    ".popsection",
);
