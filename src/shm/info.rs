//! System-wide limits (`IPC_INFO`) and usage (`SHM_INFO`).

use crate::sys::{self, abi};
use rustix::io::Result;

/// System limits for shared memory (`shmctl(IPC_INFO)`); also in `/proc/sys/kernel/shm*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest segment size in bytes (`SHMMAX`; clamped to `INT_MAX` for 32-bit processes on 64-bit kernels).
    pub max_size: u64,
    /// Smallest segment size in bytes (`SHMMIN`, always 1).
    pub min_size: u64,
    /// Most segments system-wide (`SHMMNI`).
    pub max_segments: u64,
    /// Most segments one process may attach (`SHMSEG`; Linux reports `SHMMNI`).
    pub max_segments_per_process: u64,
    /// Most pages of shared memory system-wide (`SHMALL`).
    pub max_total_pages: u64,
    /// The highest index in use in the kernel's segment table (what `IPC_INFO` returns).
    pub highest_index: u32,
}

/// Current system usage (`shmctl(SHM_INFO)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Segments currently existing.
    pub segments: u32,
    /// Pages of shared memory allocated.
    pub total_pages: u64,
    /// Pages resident in memory.
    pub resident_pages: u64,
    /// Pages swapped out.
    pub swapped_pages: u64,
    /// The highest index in use in the kernel's segment table.
    pub highest_index: u32,
}

/// `shmctl(IPC_INFO)`. See [`Limits`].
///
/// # Errors
/// `EFAULT` only for a bad buffer, which cannot happen here; `EINVAL` on a kernel without SysV IPC.
pub fn limits() -> Result<Limits> {
    let mut info = abi::shminfo64::default();
    // SAFETY: `info` is a zeroed shminfo64, the struct IPC_INFO writes with the 64-style version.
    let highest = unsafe { sys::shmctl(0, abi::IPC_INFO, (&mut info as *mut abi::shminfo64).cast()) }?;
    Ok(Limits {
        max_size: info.shmmax as u64,
        min_size: info.shmmin as u64,
        max_segments: info.shmmni as u64,
        max_segments_per_process: info.shmseg as u64,
        max_total_pages: info.shmall as u64,
        highest_index: highest as u32,
    })
}

/// `shmctl(SHM_INFO)`. See [`Usage`].
///
/// # Errors
/// `EINVAL` on a kernel without SysV IPC.
pub fn usage() -> Result<Usage> {
    let mut info = abi::shm_info::default();
    // SAFETY: `info` is a zeroed shm_info, the struct SHM_INFO writes.
    let highest = unsafe { sys::shmctl(0, abi::SHM_INFO, (&mut info as *mut abi::shm_info).cast()) }?;
    Ok(Usage {
        segments: info.used_ids as u32,
        total_pages: info.shm_tot as u64,
        resident_pages: info.shm_rss as u64,
        swapped_pages: info.shm_swp as u64,
        highest_index: highest as u32,
    })
}
