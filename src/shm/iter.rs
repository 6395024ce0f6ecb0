//! Iteration over every segment on the system (`SHM_STAT_ANY`, or `SHM_STAT` where unsupported).

use super::{ShmId, Stat, limits};
use crate::sys::{self, abi};
use rustix::io::{Errno, Result};

/// An iterator over every segment in this IPC namespace, as `(id, status)`.
///
/// It walks the kernel's table by index up to the highest index in use when the iteration started, with
/// `SHM_STAT_ANY` (Linux 4.17+), which needs no read permission, like `/proc/sysvipc/shm`. Where that command
/// is unsupported (older kernels, qemu-user) it falls back to `SHM_STAT`, which skips segments the caller may not
/// read. Segments created or destroyed during the walk may or may not be seen.
#[derive(Debug)]
pub struct Segments {
    next: u32,
    last: u32,
    stat_any: bool,
}

/// All segments on the system. See [`Segments`].
///
/// # Errors
/// Those of [`limits`].
pub fn segments() -> Result<Segments> {
    Ok(Segments {
        next: 0,
        last: limits()?.highest_index,
        stat_any: true,
    })
}

impl Segments {
    fn stat_index(index: u32, cmd: u32) -> Result<(ShmId, Stat)> {
        let mut ds = abi::shmid64_ds::default();
        // SAFETY: `ds` is a zeroed shmid64_ds, the struct SHM_STAT/SHM_STAT_ANY write.
        let id = unsafe { sys::shmctl(index as i32, cmd, (&mut ds as *mut abi::shmid64_ds).cast()) }?;
        Ok((ShmId::from_raw(id), Stat::from_kernel(&ds)))
    }
}

impl Iterator for Segments {
    type Item = (ShmId, Stat);

    fn next(&mut self) -> Option<Self::Item> {
        while self.next <= self.last {
            let index = self.next;
            self.next += 1;
            if self.stat_any {
                match Self::stat_index(index, abi::SHM_STAT_ANY) {
                    Ok(found) => return Some(found),
                    // EINVAL means either an unused index or an unknown command: SHM_STAT tells them apart, since
                    // it succeeds or says EACCES on a used index.
                    Err(Errno::INVAL) => {}
                    Err(_) => continue,
                }
            }
            match Self::stat_index(index, abi::SHM_STAT) {
                Ok(found) => {
                    self.stat_any = false;
                    return Some(found);
                }
                Err(Errno::ACCESS) => self.stat_any = false,
                Err(_) => {}
            }
        }
        None
    }
}
