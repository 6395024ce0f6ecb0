//! riscv64 `_start`: the kernel leaves `sp` pointing at `argc`. As in every static binary's start, `gp` is loaded
//! with `__global_pointer$` first, with relaxation off so the linker cannot rewrite that very load relative to
//! the `gp` it is setting up. The psABI wants `sp` 16-byte aligned.

/// Expands to the riscv64 `_start`, calling `$start(initial_sp)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_start_asm {
    ($start:path) => {
        ::core::arch::global_asm!(
            ".text",
            ".globl _start",
            ".type _start, @function",
            "_start:",
            ".option push",
            ".option norelax",
            "lla gp, __global_pointer$",
            ".option pop",
            "li fp, 0",
            "li ra, 0",
            "mv a0, sp",
            "andi sp, sp, -16",
            "call {start}",
            "unimp",
            ".size _start, . - _start",
            start = sym $start,
        );
    };
}
