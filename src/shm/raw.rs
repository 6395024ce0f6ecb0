//! The four system calls with raw arguments, for callers that need what the typed API rules out (tests of the
//! kernel's behaviour, foreign segments, addresses managed elsewhere).
//!
//! Arguments and results are the kernel's own; `shmctl` takes a plain command (an `IPC_64` bit is masked off and
//! added back only where the architecture needs it) and a buffer of the kernel's 64-style struct for it.

use rustix::io::Result;

pub use crate::sys::abi::{
    IPC_CREAT, IPC_EXCL, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT, SHM_EXEC, SHM_HUGETLB, SHM_INFO, SHM_LOCK,
    SHM_NORESERVE, SHM_RDONLY, SHM_REMAP, SHM_RND, SHM_STAT, SHM_STAT_ANY, SHM_UNLOCK,
};

/// `shmget(2)` with raw arguments; returns the id.
///
/// # Errors
/// As documented in `shmget(2)`.
pub fn shmget(key: i32, size: usize, flags: u32) -> Result<i32> {
    crate::sys::shmget(key, size, flags)
}

/// `shmat(2)` with raw arguments; returns the address of the mapping.
///
/// # Safety
/// With `SHM_REMAP` and a non-null `addr`, whatever was mapped at `addr` is replaced: nothing may use it.
///
/// # Errors
/// As documented in `shmat(2)`.
pub unsafe fn shmat(id: i32, addr: *mut u8, flags: u32) -> Result<*mut u8> {
    // SAFETY: forwarded to the caller.
    unsafe { crate::sys::shmat(id, addr, flags) }
}

/// `shmdt(2)`.
///
/// # Safety
/// Nothing may use the mapping at `addr` afterwards (in particular no [`Attachment`](super::Attachment) of it).
///
/// # Errors
/// As documented in `shmdt(2)` (`EINVAL`).
pub unsafe fn shmdt(addr: *mut u8) -> Result<()> {
    // SAFETY: forwarded to the caller.
    unsafe { crate::sys::shmdt(addr) }
}

/// `shmctl(2)` with a plain command; returns the kernel's non-negative result (an id for `SHM_STAT`, the highest
/// index for `IPC_INFO`/`SHM_INFO`, else 0).
///
/// # Safety
/// `buf` must be null or valid for reads and writes of the kernel struct `cmd` uses (`shmid64_ds`, `shminfo64`
/// or `shm_info` for this architecture, see [`kernel_struct_size`]).
///
/// # Errors
/// As documented in `shmctl(2)`.
pub unsafe fn shmctl(id: i32, cmd: u32, buf: *mut u8) -> Result<i32> {
    // SAFETY: forwarded to the caller.
    unsafe { crate::sys::shmctl(id, cmd, buf) }
}

/// The size in bytes of the kernel struct that `shmctl` command `cmd` reads or writes on this architecture
/// (0 for commands without a buffer, or unknown ones).
pub const fn kernel_struct_size(cmd: u32) -> usize {
    use crate::sys::abi;
    match cmd & 0xff {
        abi::IPC_STAT | abi::IPC_SET | abi::SHM_STAT | abi::SHM_STAT_ANY => size_of::<abi::shmid64_ds>(),
        abi::IPC_INFO => size_of::<abi::shminfo64>(),
        abi::SHM_INFO => size_of::<abi::shm_info>(),
        _ => 0,
    }
}
