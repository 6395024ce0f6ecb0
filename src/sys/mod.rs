//! The syscall boundary: System V shared-memory syscalls issued without libc.
//!
//! Everything above this module is safe code over these few functions. They take and return raw kernel values;
//! the only policy here is the one the kernel ABI forces: which entry point to use, where `IPC_64` goes, and how a
//! return value is decoded.
//!
//! - Errors are decoded only from `-4095..=-1`: a 32-bit attach address at or above 2 GiB looks negative as a
//!   signed word but is not an error.
//! - `IPC_64` is OR-ed into `shmctl` commands only where the kernel parses it (arm's `sys_old_shmctl`, and the i386
//!   `ipc()` multiplexer); the direct `shmctl` of x86_64, aarch64, riscv64 and i386 rejects it with `EINVAL`.
//! - On i386 the direct syscalls (Linux 5.1+) are used, falling back to `ipc()` when they return `ENOSYS`.

pub(crate) mod abi;
mod arch;

use linux_raw_sys::general as nr;
use rustix::io::{Errno, Result};

/// Decodes a raw return value: `-4095..=-1` is an errno, anything else a result.
#[inline]
fn decode(ret: usize) -> Result<usize> {
    if ret > (-4096isize) as usize {
        Err(Errno::from_raw_os_error(-(ret as isize) as i32))
    } else {
        Ok(ret)
    }
}

/// The `shmctl` version flag this architecture's `shmctl` entry needs (see the module docs).
#[cfg(target_arch = "arm")]
const SHMCTL_VERSION: u32 = abi::IPC_64;
#[cfg(not(any(target_arch = "arm", target_arch = "x86")))]
const SHMCTL_VERSION: u32 = 0;

/// `shmget(key, size, flags)`: returns the segment id.
pub(crate) fn shmget(key: i32, size: usize, flags: u32) -> Result<i32> {
    // SAFETY: shmget takes no pointers.
    #[cfg(not(target_arch = "x86"))]
    let ret = unsafe { arch::syscall3(nr::__NR_shmget, key as usize, size, flags as usize) };
    #[cfg(target_arch = "x86")]
    let ret = i386::shmget(key, size, flags);
    decode(ret).map(|id| id as i32)
}

/// `shmat(id, addr, flags)`: returns the address of the new mapping.
///
/// # Safety
/// A non-null `addr` with `SHM_REMAP` replaces whatever is mapped there: the caller must own that range.
pub(crate) unsafe fn shmat(id: i32, addr: *mut u8, flags: u32) -> Result<*mut u8> {
    #[cfg(not(target_arch = "x86"))]
    // SAFETY: the caller guarantees a fixed replacing address is theirs; otherwise the kernel picks a free range.
    let ret = unsafe { arch::syscall3(nr::__NR_shmat, id as usize, addr as usize, flags as usize) };
    #[cfg(target_arch = "x86")]
    // SAFETY: as above.
    let ret = unsafe { i386::shmat(id, addr, flags) };
    decode(ret).map(|a| a as *mut u8)
}

/// `shmdt(addr)`.
///
/// # Safety
/// No reference into the mapping at `addr` may be used after this call.
pub(crate) unsafe fn shmdt(addr: *mut u8) -> Result<()> {
    #[cfg(not(target_arch = "x86"))]
    // SAFETY: the caller guarantees the mapping is no longer referenced.
    let ret = unsafe { arch::syscall1(nr::__NR_shmdt, addr as usize) };
    #[cfg(target_arch = "x86")]
    // SAFETY: as above.
    let ret = unsafe { i386::shmdt(addr) };
    decode(ret).map(drop)
}

/// `shmctl(id, cmd, buf)` with a plain command (no version flag): returns the kernel's non-negative result.
///
/// # Safety
/// `buf` must be null or valid for reads and writes of the struct that `cmd` uses (zeroed by the caller: some
/// kernels and qemu-user leave padding and high time words untouched).
pub(crate) unsafe fn shmctl(id: i32, cmd: u32, buf: *mut u8) -> Result<i32> {
    let cmd = cmd & !abi::IPC_64;
    #[cfg(not(target_arch = "x86"))]
    // SAFETY: the caller guarantees `buf` fits `cmd`.
    let ret = unsafe {
        arch::syscall3(
            nr::__NR_shmctl,
            id as usize,
            (cmd | SHMCTL_VERSION) as usize,
            buf as usize,
        )
    };
    #[cfg(target_arch = "x86")]
    // SAFETY: as above.
    let ret = unsafe { i386::shmctl(id, cmd, buf) };
    decode(ret).map(|r| r as i32)
}

/// `prctl(PR_GET_AUXV, buf, len)` (Linux 6.4+): copies the aux vector into `buf`; returns its full size in bytes.
pub(crate) fn get_auxv(buf: &mut [usize]) -> Result<usize> {
    const PR_GET_AUXV: usize = 0x4155_5856;
    // SAFETY: the kernel writes at most `len` bytes into `buf`, which is valid for that many; the last two
    // arguments must be 0.
    let ret = unsafe {
        arch::syscall5(
            nr::__NR_prctl,
            PR_GET_AUXV,
            buf.as_mut_ptr() as usize,
            core::mem::size_of_val(buf),
            0,
            0,
        )
    };
    decode(ret)
}

/// `CLOCK_REALTIME` in nanoseconds since the epoch (0 if the clock cannot be read), by the `clock_gettime`
/// syscall itself.
///
/// Not through the vDSO, as rustix's `clock_gettime` does: finding a vDSO symbol means parsing the vDSO's ELF
/// image, a few KiB of code in every static program that claims a role, while the callers read this clock once
/// per role claim, where the cost of a syscall does not matter. 32-bit targets use `clock_gettime64` (Linux
/// 5.1+), whose `__kernel_timespec` has 64-bit seconds like the 64-bit targets' `clock_gettime`, and fall back to
/// the 32-bit call on older kernels.
pub(crate) fn realtime_ns() -> u64 {
    const CLOCK_REALTIME: usize = 0;
    let to_ns = |sec: i64, nsec: i64| (sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64);
    // `__kernel_timespec`: seconds and nanoseconds, both 64-bit.
    let mut ts = [0i64; 2];
    #[cfg(target_pointer_width = "64")]
    let call = nr::__NR_clock_gettime;
    #[cfg(not(target_pointer_width = "64"))]
    let call = nr::__NR_clock_gettime64;
    // SAFETY: the kernel writes one `__kernel_timespec` (16 bytes) through the pointer, which is valid for that.
    let ret = unsafe { arch::syscall3(call, CLOCK_REALTIME, ts.as_mut_ptr() as usize, 0) };
    match decode(ret) {
        Ok(_) => to_ns(ts[0], ts[1]),
        #[cfg(not(target_pointer_width = "64"))]
        Err(Errno::NOSYS) => {
            // The 32-bit `timespec` of kernels before 5.1.
            let mut old = [0i32; 2];
            // SAFETY: the kernel writes one 32-bit `timespec` (8 bytes) through the pointer, valid for that.
            let ret = unsafe { arch::syscall3(nr::__NR_clock_gettime, CLOCK_REALTIME, old.as_mut_ptr() as usize, 0) };
            decode(ret).map_or(0, |_| to_ns(old[0].into(), old[1].into()))
        }
        Err(_) => 0,
    }
}

/// `clone(SIGCHLD)`: a fork without libc. Returns 0 in the child and the child's pid in the parent.
///
/// # Safety
/// As for `fork(2)` in a multithreaded process: the child has one thread, and must not rely on locks or state
/// that other threads of the parent held.
pub(crate) unsafe fn fork() -> Result<u32> {
    const SIGCHLD: usize = 17;
    // SAFETY: with only SIGCHLD in the flags and no new stack, clone behaves as fork; the remaining arguments
    // (parent/child tid pointers, TLS) are read only for flags that are not set.
    let ret = unsafe { arch::syscall3(nr::__NR_clone, SIGCHLD, 0, 0) };
    decode(ret).map(|pid| pid as u32)
}

/// `exit_group(code)`: ends the process.
#[allow(dead_code)] // Used by the optional runtime.
pub(crate) fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group takes no pointers and does not return.
    unsafe { arch::syscall1(nr::__NR_exit_group, code as usize) };
    loop {
        core::hint::spin_loop();
    }
}

/// i386: direct syscalls where the kernel has them (5.1+), else the `ipc()` multiplexer.
#[cfg(target_arch = "x86")]
mod i386 {
    use super::{abi, arch, nr};
    use core::sync::atomic::{AtomicBool, Ordering};

    const ENOSYS: usize = (-38isize) as usize;

    /// Set once a direct syscall returned `ENOSYS`; from then on only `ipc()` is used.
    static NO_DIRECT: AtomicBool = AtomicBool::new(false);

    /// Issues `direct`, or `fallback` if the kernel has no direct SysV syscalls.
    #[inline]
    fn direct_or(direct: impl FnOnce() -> usize, fallback: impl FnOnce() -> usize) -> usize {
        if !NO_DIRECT.load(Ordering::Relaxed) {
            let ret = direct();
            if ret != ENOSYS {
                return ret;
            }
            NO_DIRECT.store(true, Ordering::Relaxed);
        }
        fallback()
    }

    pub(super) fn shmget(key: i32, size: usize, flags: u32) -> usize {
        direct_or(
            // SAFETY: shmget takes no pointers.
            || unsafe { arch::syscall3(nr::__NR_shmget, key as usize, size, flags as usize) },
            // SAFETY: ipc(SHMGET) takes no pointers.
            || unsafe {
                arch::syscall5(
                    nr::__NR_ipc,
                    abi::IPCOP_SHMGET as usize,
                    key as usize,
                    size,
                    flags as usize,
                    0,
                )
            },
        )
    }

    /// # Safety
    /// As for [`super::shmat`].
    pub(super) unsafe fn shmat(id: i32, addr: *mut u8, flags: u32) -> usize {
        direct_or(
            // SAFETY: guaranteed by the caller.
            || unsafe { arch::syscall3(nr::__NR_shmat, id as usize, addr as usize, flags as usize) },
            || {
                // ipc(SHMAT) returns 0 and writes the address through `third`.
                let mut raddr: usize = 0;
                // SAFETY: `raddr` is a valid `unsigned long` for the kernel to write; the rest as above.
                let ret = unsafe {
                    arch::syscall5(
                        nr::__NR_ipc,
                        abi::IPCOP_SHMAT as usize,
                        id as usize,
                        flags as usize,
                        &mut raddr as *mut usize as usize,
                        addr as usize,
                    )
                };
                if ret == 0 { raddr } else { ret }
            },
        )
    }

    /// # Safety
    /// As for [`super::shmdt`].
    pub(super) unsafe fn shmdt(addr: *mut u8) -> usize {
        direct_or(
            // SAFETY: guaranteed by the caller.
            || unsafe { arch::syscall1(nr::__NR_shmdt, addr as usize) },
            // SAFETY: guaranteed by the caller.
            || unsafe { arch::syscall5(nr::__NR_ipc, abi::IPCOP_SHMDT as usize, 0, 0, 0, addr as usize) },
        )
    }

    /// # Safety
    /// As for [`super::shmctl`].
    pub(super) unsafe fn shmctl(id: i32, cmd: u32, buf: *mut u8) -> usize {
        direct_or(
            // SAFETY: guaranteed by the caller; the direct entry takes the plain command.
            || unsafe { arch::syscall3(nr::__NR_shmctl, id as usize, cmd as usize, buf as usize) },
            // SAFETY: guaranteed by the caller; ipc(SHMCTL) parses the version, so IPC_64 selects 64-style structs.
            || unsafe {
                arch::syscall5(
                    nr::__NR_ipc,
                    abi::IPCOP_SHMCTL as usize,
                    id as usize,
                    (cmd | abi::IPC_64) as usize,
                    0,
                    buf as usize,
                )
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The syscall's clock agrees with std's (libc's vDSO) to well within a second, and lies between two reads of it.
    #[test]
    #[cfg_attr(miri, ignore = "syscall")]
    fn realtime_clock_agrees_with_std() {
        let std_ns = || {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            d.as_secs() * 1_000_000_000 + u64::from(d.subsec_nanos())
        };
        let before = std_ns();
        let ours = realtime_ns();
        let after = std_ns();
        // A little slack: the two readings may come from different clock sources' rounding.
        assert!(
            ours + 1_000_000 >= before && ours <= after + 1_000_000,
            "{before} <= {ours} <= {after}"
        );
        assert!(ours > 1_700_000_000 * 1_000_000_000, "{ours}");
    }

    #[test]
    fn decodes_only_the_errno_range() {
        assert_eq!(decode(0), Ok(0));
        assert_eq!(decode((-1isize) as usize), Err(Errno::PERM));
        assert_eq!(decode((-22isize) as usize), Err(Errno::INVAL));
        assert_eq!(decode((-4095isize) as usize).unwrap_err().raw_os_error(), 4095);
        // An address in the top half of a 32-bit space, or just below the errno range, is a value.
        assert_eq!(decode((-4096isize) as usize), Ok((-4096isize) as usize));
        assert_eq!(decode(0x8000_0000), Ok(0x8000_0000));
        assert_eq!(decode(0xf7f0_0000), Ok(0xf7f0_0000));
    }
}
