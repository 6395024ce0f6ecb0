//! Kernel ABI facts for System V shared memory: constants from uapi `linux/ipc.h` and `linux/shm.h`, and the
//! per-architecture structs that `shmctl` reads and writes (uapi `asm-generic/ipcbuf.h`, `asm-generic/shmbuf.h`).
//!
//! linux-raw-sys has the syscall numbers but none of these, so they live here, apart from any logic. Layouts are
//! checked at compile time against the sizes the kernel headers give (48/36, 112/84, 72/36, 48/24 bytes on
//! 64-/32-bit targets).
#![allow(non_camel_case_types, missing_docs)]

use core::mem::size_of;

// shmget flags.
pub const IPC_CREAT: u32 = 0o1000;
pub const IPC_EXCL: u32 = 0o2000;
pub const SHM_HUGETLB: u32 = 0o4000;
pub const SHM_NORESERVE: u32 = 0o10000;
pub const SHM_HUGE_SHIFT: u32 = 26;
pub const SHM_HUGE_MASK: u32 = 0x3f;

// shmat flags.
pub const SHM_RDONLY: u32 = 0o10000;
pub const SHM_RND: u32 = 0o20000;
pub const SHM_REMAP: u32 = 0o40000;
pub const SHM_EXEC: u32 = 0o100000;

// shmctl commands.
pub const IPC_RMID: u32 = 0;
pub const IPC_SET: u32 = 1;
pub const IPC_STAT: u32 = 2;
pub const IPC_INFO: u32 = 3;
pub const SHM_LOCK: u32 = 11;
pub const SHM_UNLOCK: u32 = 12;
pub const SHM_STAT: u32 = 13;
pub const SHM_INFO: u32 = 14;
pub const SHM_STAT_ANY: u32 = 15;

/// The version flag that selects the 64-style structs on entries that parse it.
pub const IPC_64: u32 = 0x100;

// Bits the kernel reports in `shm_perm.mode` (not flags one passes).
pub const SHM_DEST: u32 = 0o1000;
pub const SHM_LOCKED: u32 = 0o2000;

// i386 `ipc()` multiplexer operations.
#[cfg(target_arch = "x86")]
pub const IPCOP_SHMAT: u32 = 21;
#[cfg(target_arch = "x86")]
pub const IPCOP_SHMDT: u32 = 22;
#[cfg(target_arch = "x86")]
pub const IPCOP_SHMGET: u32 = 23;
#[cfg(target_arch = "x86")]
pub const IPCOP_SHMCTL: u32 = 24;

/// `__kernel_ulong_t`: pointer-sized on every supported architecture.
pub type kernel_ulong = usize;

/// `__kernel_mode_t`: 16 bits on arm and i386, 32 bits elsewhere.
#[cfg(any(target_arch = "arm", target_arch = "x86"))]
pub type kernel_mode = u16;
#[cfg(not(any(target_arch = "arm", target_arch = "x86")))]
pub type kernel_mode = u32;

/// `struct ipc64_perm`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ipc64_perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: kernel_mode,
    #[cfg(any(target_arch = "arm", target_arch = "x86"))]
    pub __pad1: [u8; 2],
    pub seq: u16,
    pub __pad2: u16,
    pub __unused1: kernel_ulong,
    pub __unused2: kernel_ulong,
}

/// `struct shmid64_ds` on 64-bit targets: times are `long`.
#[cfg(target_pointer_width = "64")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct shmid64_ds {
    pub shm_perm: ipc64_perm,
    pub shm_segsz: usize,
    pub shm_atime: i64,
    pub shm_dtime: i64,
    pub shm_ctime: i64,
    pub shm_cpid: i32,
    pub shm_lpid: i32,
    pub shm_nattch: kernel_ulong,
    pub __unused4: kernel_ulong,
    pub __unused5: kernel_ulong,
}

/// `struct shmid64_ds` on 32-bit targets: each time is a low and a high 32-bit word (y2038 layout, Linux 4.18+;
/// older kernels leave the high words as the caller wrote them, which is why buffers are zeroed first).
#[cfg(target_pointer_width = "32")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct shmid64_ds {
    pub shm_perm: ipc64_perm,
    pub shm_segsz: usize,
    pub shm_atime: u32,
    pub shm_atime_high: u32,
    pub shm_dtime: u32,
    pub shm_dtime_high: u32,
    pub shm_ctime: u32,
    pub shm_ctime_high: u32,
    pub shm_cpid: i32,
    pub shm_lpid: i32,
    pub shm_nattch: kernel_ulong,
    pub __unused4: kernel_ulong,
    pub __unused5: kernel_ulong,
}

impl shmid64_ds {
    /// Access, detach and change times, in seconds since the epoch.
    #[cfg(target_pointer_width = "64")]
    pub fn times(&self) -> [i64; 3] {
        [self.shm_atime, self.shm_dtime, self.shm_ctime]
    }

    /// Access, detach and change times, in seconds since the epoch, assembled as `low | high << 32`.
    #[cfg(target_pointer_width = "32")]
    pub fn times(&self) -> [i64; 3] {
        let join = |lo: u32, hi: u32| (u64::from(lo) | (u64::from(hi) << 32)) as i64;
        [
            join(self.shm_atime, self.shm_atime_high),
            join(self.shm_dtime, self.shm_dtime_high),
            join(self.shm_ctime, self.shm_ctime_high),
        ]
    }
}

/// `struct shminfo64` (IPC_INFO).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct shminfo64 {
    pub shmmax: kernel_ulong,
    pub shmmin: kernel_ulong,
    pub shmmni: kernel_ulong,
    pub shmseg: kernel_ulong,
    pub shmall: kernel_ulong,
    pub __unused1: kernel_ulong,
    pub __unused2: kernel_ulong,
    pub __unused3: kernel_ulong,
    pub __unused4: kernel_ulong,
}

/// `struct shm_info` (SHM_INFO); the same struct whatever the version flag.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct shm_info {
    pub used_ids: i32,
    pub shm_tot: kernel_ulong,
    pub shm_rss: kernel_ulong,
    pub shm_swp: kernel_ulong,
    pub swap_attempts: kernel_ulong,
    pub swap_successes: kernel_ulong,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<ipc64_perm>() == 48);
    assert!(size_of::<shmid64_ds>() == 112);
    assert!(size_of::<shminfo64>() == 72);
    assert!(size_of::<shm_info>() == 48);
    assert!(core::mem::offset_of!(shmid64_ds, shm_segsz) == 48);
    assert!(core::mem::offset_of!(shmid64_ds, shm_cpid) == 80);
    assert!(core::mem::offset_of!(shmid64_ds, shm_nattch) == 88);
};

#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<ipc64_perm>() == 36);
    assert!(size_of::<shmid64_ds>() == 84);
    assert!(size_of::<shminfo64>() == 36);
    assert!(size_of::<shm_info>() == 24);
    assert!(core::mem::offset_of!(ipc64_perm, seq) == 24);
    assert!(core::mem::offset_of!(shmid64_ds, shm_segsz) == 36);
    assert!(core::mem::offset_of!(shmid64_ds, shm_cpid) == 64);
    assert!(core::mem::offset_of!(shmid64_ds, shm_nattch) == 72);
};
