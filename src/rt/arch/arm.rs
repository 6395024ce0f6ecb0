//! arm (EABI, ARM state) `_start`: the kernel leaves `sp` pointing at `argc`. AAPCS wants `sp` 8-byte aligned at
//! public interfaces; it is aligned to 16 here (through `r1`: data-processing writes to `sp` are deprecated).

/// Expands to the arm `_start`, calling `$start(initial_sp)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_start_asm {
    ($start:path) => {
        ::core::arch::global_asm!(
            ".text",
            ".arm",
            ".globl _start",
            ".type _start, %function",
            "_start:",
            "mov fp, #0",
            "mov lr, #0",
            "mov r0, sp",
            "bic r1, r0, #15",
            "mov sp, r1",
            "bl {start}",
            "udf #0",
            ".size _start, . - _start",
            start = sym $start,
        );
    };
}
