//! x86_64 `_start`: the kernel leaves `rsp` pointing at `argc` (16-byte aligned by the ABI, aligned again here).
//! The System V ABI wants `rsp + 8` 16-byte aligned at a function's entry, which `call` gives from an aligned
//! `rsp`.

/// Expands to the x86_64 `_start`, calling `$start(initial_sp)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_start_asm {
    ($start:path) => {
        ::core::arch::global_asm!(
            ".text",
            ".globl _start",
            ".type _start, @function",
            "_start:",
            "xor ebp, ebp",
            "mov rdi, rsp",
            "and rsp, -16",
            "call {start}",
            "ud2",
            ".size _start, . - _start",
            start = sym $start,
        );
    };
}
