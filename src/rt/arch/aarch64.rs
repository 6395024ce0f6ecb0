//! aarch64 `_start`: the kernel leaves `sp` pointing at `argc`. AAPCS64 requires `sp` 16-byte aligned at all
//! times; it is aligned again here (`and` with an immediate may write `sp`).

/// Expands to the aarch64 `_start`, calling `$start(initial_sp)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_start_asm {
    ($start:path) => {
        ::core::arch::global_asm!(
            ".text",
            ".globl _start",
            ".type _start, %function",
            "_start:",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, sp",
            "and sp, x0, #-16",
            "bl {start}",
            "udf #0",
            ".size _start, . - _start",
            start = sym $start,
        );
    };
}
