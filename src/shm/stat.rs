//! The typed status of a segment (`shmctl(IPC_STAT)`).

use super::Key;
use crate::sys::abi;
use rustix::fs::Mode;

/// Who owns and who created a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// Owner user id (changeable with `IPC_SET`).
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Creator user id (fixed).
    pub creator_uid: u32,
    /// Creator group id (fixed).
    pub creator_gid: u32,
}

/// A segment's status, decoded from the kernel's `shmid64_ds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// The key; [`Key::PRIVATE`] once the segment is marked for removal.
    pub key: Key,
    /// Owner and creator.
    pub ownership: Ownership,
    /// The permission bits (`0o777` only).
    pub mode: Mode,
    /// Size in bytes.
    pub size: usize,
    /// Last attach time, seconds since the epoch (0: never).
    pub attach_time: i64,
    /// Last detach time, seconds since the epoch (0: never).
    pub detach_time: i64,
    /// Creation or last `IPC_SET` time, seconds since the epoch.
    pub change_time: i64,
    /// Pid of the creator.
    pub creator_pid: i32,
    /// Pid of the last process to attach or detach.
    pub last_pid: i32,
    /// Number of current attachments (forked children count too).
    pub attach_count: u64,
    /// Marked for removal (`SHM_DEST`): destroyed at the last detach.
    pub marked_for_removal: bool,
    /// Locked in memory (`SHM_LOCKED`).
    pub locked: bool,
    /// The slot usage sequence number (the high part of the id).
    pub seq: u16,
}

impl Stat {
    pub(crate) fn from_kernel(ds: &abi::shmid64_ds) -> Self {
        // Only the low 16 bits of `mode` are meaningful: arm and i386 have a 16-bit mode, and qemu-user writes only
        // 16 bits on every target, leaving the rest as it was.
        #[allow(clippy::useless_conversion)] // u16 on arm and i686.
        let mode = u32::from(ds.shm_perm.mode) & 0xffff;
        let [attach_time, detach_time, change_time] = ds.times();
        Self {
            key: Key::from_raw(ds.shm_perm.key),
            ownership: Ownership {
                uid: ds.shm_perm.uid,
                gid: ds.shm_perm.gid,
                creator_uid: ds.shm_perm.cuid,
                creator_gid: ds.shm_perm.cgid,
            },
            mode: Mode::from_bits_truncate(mode & 0o777),
            size: ds.shm_segsz,
            attach_time,
            detach_time,
            change_time,
            creator_pid: ds.shm_cpid,
            last_pid: ds.shm_lpid,
            attach_count: ds.shm_nattch as u64,
            marked_for_removal: mode & abi::SHM_DEST != 0,
            locked: mode & abi::SHM_LOCKED != 0,
            seq: ds.shm_perm.seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_mode_bits_and_flags() {
        let mut ds = abi::shmid64_ds::default();
        ds.shm_perm.mode = (0o640 | abi::SHM_DEST | abi::SHM_LOCKED) as abi::kernel_mode;
        ds.shm_segsz = 8192;
        ds.shm_nattch = 3;
        let st = Stat::from_kernel(&ds);
        assert_eq!(st.mode.bits(), 0o640);
        assert!(st.marked_for_removal && st.locked);
        assert_eq!((st.size, st.attach_count), (8192, 3));
    }

    #[cfg(not(any(target_arch = "arm", target_arch = "x86")))]
    #[test]
    fn ignores_garbage_in_the_upper_mode_bits() {
        let mut ds = abi::shmid64_ds::default();
        ds.shm_perm.mode = 0xabcd_0000 | 0o600;
        let st = Stat::from_kernel(&ds);
        assert_eq!(st.mode.bits(), 0o600);
        assert!(!st.marked_for_removal && !st.locked);
    }

    #[cfg(target_pointer_width = "32")]
    #[test]
    fn assembles_64_bit_times_from_two_words() {
        let mut ds = abi::shmid64_ds::default();
        ds.shm_ctime = 0x8000_0001;
        ds.shm_ctime_high = 0x1;
        assert_eq!(Stat::from_kernel(&ds).change_time, 0x1_8000_0001);
    }
}
