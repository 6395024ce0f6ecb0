//! Booting a static program as `/init` on a real Linux kernel under qemu-system.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::proc::{self, Output};
use crate::targets::Kernel;

/// A one-file initramfs: `/init` in the `newc` cpio format that the kernel unpacks.
pub fn initramfs(init: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_entry(&mut out, "init", 0o100_755, init);
    push_entry(&mut out, "TRAILER!!!", 0, &[]);
    out
}

fn push_entry(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
    let nlink = u32::from(mode != 0);
    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
    // namesize (with the NUL), check.
    let fields = [
        1,
        mode,
        0,
        0,
        nlink,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Boots `kernel_image` with `initrd` and returns the console. `/init` gets `args` as argv
/// (everything after `--` on the kernel command line goes to init).
///
/// When `/init` exits the kernel panics; `panic=-1` reboots at once and `-no-reboot` turns
/// that into a qemu exit, so a finished program ends the boot without waiting for the timeout.
pub fn boot(
    kernel: &Kernel,
    kernel_image: &Path,
    initrd: &Path,
    args: &[String],
    timeout: Duration,
) -> std::io::Result<Output> {
    let mut append = format!("console={} panic=-1 quiet", kernel.console);
    if !args.is_empty() {
        append.push_str(" -- ");
        append.push_str(&args.join(" "));
    }
    let mut cmd = Command::new(kernel.qemu);
    cmd.args(kernel.machine)
        // No NIC: the default one wants an option ROM that only a recommended package ships.
        .args(["-m", "256M", "-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(kernel_image)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &append]);
    proc::run(&mut cmd, timeout)
}

#[cfg(test)]
mod tests {
    #[test]
    fn initramfs_is_newc_with_init_and_trailer() {
        let cpio = super::initramfs(b"12345");
        assert_eq!(&cpio[..6], b"070701");
        assert_eq!(&cpio[110..115], b"init\0");
        // 110-byte header + "init\0" padded to 116, then the data.
        assert_eq!(&cpio[116..121], b"12345");
        assert_eq!(&cpio[6 + 8..6 + 16], b"000081ED"); // mode 0100755
        assert_eq!(&cpio[6 + 48..6 + 56], b"00000005"); // filesize
        assert_eq!(cpio.len() % 4, 0);
        assert!(cpio.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
