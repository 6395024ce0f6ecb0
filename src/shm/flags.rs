//! Flags for `shmget` and `shmat`.

use crate::sys::abi;

bitflags::bitflags! {
    /// Flags for `shmget(2)` beyond the permission bits.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct GetFlags: u32 {
        /// `IPC_CREAT`: create the segment if the key has none.
        const CREATE = abi::IPC_CREAT;
        /// `IPC_EXCL`: with `CREATE`, fail with `EEXIST` if the key already has a segment.
        const EXCLUSIVE = abi::IPC_EXCL;
        /// `SHM_HUGETLB`: back the segment with huge pages (see [`HugePageSize`]).
        const HUGETLB = abi::SHM_HUGETLB;
        /// `SHM_NORESERVE`: do not reserve swap space for the segment.
        const NORESERVE = abi::SHM_NORESERVE;
    }
}

bitflags::bitflags! {
    /// Flags for `shmat(2)`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct AttachFlags: u32 {
        /// `SHM_RDONLY`: map read-only; a write faults (enforced by the MMU).
        const RDONLY = abi::SHM_RDONLY;
        /// `SHM_RND`: round a given address down to [`shmlba`](super::shmlba).
        const RND = abi::SHM_RND;
        /// `SHM_REMAP`: replace any mapping at the given address (Linux-specific).
        const REMAP = abi::SHM_REMAP;
        /// `SHM_EXEC`: map executable; needs execute permission on the segment.
        const EXEC = abi::SHM_EXEC;
    }
}

/// The huge page size for a `SHM_HUGETLB` segment, encoded as log2 of the size in bits 26..32 of the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugePageSize(u8);

impl HugePageSize {
    /// The system's default huge page size.
    pub const DEFAULT: Self = Self(0);
    /// 64 KiB pages (aarch64 with 4K base pages, contiguous PTEs).
    pub const SIZE_64KB: Self = Self(16);
    /// 2 MiB pages.
    pub const SIZE_2MB: Self = Self(21);
    /// 32 MiB pages (aarch64).
    pub const SIZE_32MB: Self = Self(25);
    /// 1 GiB pages.
    pub const SIZE_1GB: Self = Self(30);

    /// A page size of `2^log2` bytes; `None` if it does not fit the 6-bit field.
    pub const fn from_log2(log2: u8) -> Option<Self> {
        if log2 as u32 <= abi::SHM_HUGE_MASK {
            Some(Self(log2))
        } else {
            None
        }
    }

    /// The bits to OR into `shmget` flags.
    pub(crate) const fn bits(self) -> u32 {
        (self.0 as u32) << abi::SHM_HUGE_SHIFT
    }
}
