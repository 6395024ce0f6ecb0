//! i386 `_start`: the kernel leaves `esp` pointing at `argc`. The i386 System V ABI as used by Linux wants `esp`
//! 16-byte aligned at the `call`; the single stack argument is pushed after 12 bytes of padding to keep that.

/// Expands to the i386 `_start`, calling `$start(initial_sp)` (cdecl: the argument on the stack).
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
            "mov eax, esp",
            "and esp, -16",
            "sub esp, 12",
            "push eax",
            "call {start}",
            "ud2",
            ".size _start, . - _start",
            start = sym $start,
        );
    };
}
