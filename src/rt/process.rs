//! Ending the program: exit, power off, and the pid-1-aware choice between them.

use rustix::system::RebootCommand;

use super::io::stderr;

/// Ends the process (all threads) with status `code` (`exit_group`). No destructors run and nothing is flushed:
/// this runtime buffers nothing across calls.
pub fn exit(code: i32) -> ! {
    crate::sys::exit_group(code)
}

/// Whether this process is pid 1: the `init` of the kernel (or of a pid namespace).
pub fn is_init() -> bool {
    rustix::process::getpid().is_init()
}

/// Syncs file systems and powers the machine off (`reboot(LINUX_REBOOT_CMD_POWER_OFF)`): how a program running as
/// `/init` ends so that qemu-system exits cleanly.
///
/// Needs `CAP_SYS_BOOT`. If the kernel refuses (an unprivileged process, or pid 1 of a child pid namespace, which
/// the kernel ends instead), the error is printed to stderr and the process exits with status 1.
pub fn power_off() -> ! {
    power_off_or_exit(1)
}

/// Ends the program with status `code`: [`power_off`] when running as pid 1 (where `exit` would panic the
/// kernel), [`exit`] otherwise. This is what [`entry!`](crate::rt::entry) does when `main` returns, and what the
/// panic handler does with status 101.
///
/// As pid 1 the status cannot reach anyone; a line saying so is printed on stderr (the console) instead.
pub fn exit_or_power_off(code: i32) -> ! {
    if is_init() {
        let _ = super::io::write_fmt(
            stderr(),
            format_args!("shmfusion-rt: init exiting with status {code}; powering off"),
            true,
        );
        power_off_or_exit(code)
    } else {
        exit(code)
    }
}

/// Powers off, or if the kernel refuses, reports why and exits with `code`.
fn power_off_or_exit(code: i32) -> ! {
    rustix::fs::sync();
    if let Err(e) = rustix::system::reboot(RebootCommand::PowerOff) {
        let _ = super::io::write_fmt(stderr(), format_args!("shmfusion-rt: power off failed: {e}"), true);
    }
    exit(code)
}
