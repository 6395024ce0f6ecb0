//! What we test on: the targets, how each one runs, and the static programs we boot.

use crate::elf;

pub struct Target {
    pub triple: &'static str,
    /// qemu-user binary for static programs; `None` runs them natively on this kernel.
    pub qemu_user: Option<&'static str>,
    /// binutils `strip` that knows this target (the cross gcc packages bring them).
    pub strip: &'static str,
    pub elf_machine: u16,
    /// The real-kernel boot, for targets whose kernel this machine cannot run natively.
    pub kernel: Option<Kernel>,
}

pub struct Kernel {
    /// Debian architecture of the kernel package.
    pub deb_arch: &'static str,
    /// Package `linux-image-6.12.<N>+deb13-<flavour>`.
    pub flavour: &'static str,
    pub qemu: &'static str,
    /// Machine arguments before the common ones (see `qemu::boot`).
    pub machine: &'static [&'static str],
    pub console: &'static str,
}

pub const TARGETS: &[Target] = &[
    Target {
        triple: "x86_64-unknown-linux-gnu",
        qemu_user: None,
        strip: "strip",
        elf_machine: elf::EM_X86_64,
        kernel: None,
    },
    // The x86_64 kernel's IA-32 compat layer gives a real 32-bit kernel ABI natively.
    Target {
        triple: "i686-unknown-linux-musl",
        qemu_user: None,
        strip: "strip",
        elf_machine: elf::EM_386,
        kernel: None,
    },
    Target {
        triple: "aarch64-unknown-linux-gnu",
        qemu_user: Some("qemu-aarch64-static"),
        strip: "aarch64-linux-gnu-strip",
        elf_machine: elf::EM_AARCH64,
        kernel: Some(Kernel {
            deb_arch: "arm64",
            flavour: "arm64-unsigned",
            qemu: "qemu-system-aarch64",
            machine: &["-machine", "virt", "-cpu", "cortex-a57"],
            console: "ttyAMA0",
        }),
    },
    Target {
        triple: "armv7-unknown-linux-gnueabihf",
        qemu_user: Some("qemu-arm-static"),
        strip: "arm-linux-gnueabihf-strip",
        elf_machine: elf::EM_ARM,
        kernel: Some(Kernel {
            deb_arch: "armhf",
            flavour: "armmp",
            qemu: "qemu-system-arm",
            machine: &["-machine", "virt"],
            console: "ttyAMA0",
        }),
    },
    Target {
        triple: "riscv64gc-unknown-linux-gnu",
        qemu_user: Some("qemu-riscv64-static"),
        strip: "riscv64-linux-gnu-strip",
        elf_machine: elf::EM_RISCV,
        kernel: Some(Kernel {
            deb_arch: "riscv64",
            flavour: "riscv64",
            qemu: "qemu-system-riscv64",
            // OpenSBI (Debian package opensbi, a dependency of qemu-system-riscv) as firmware.
            machine: &["-machine", "virt", "-bios", "default"],
            console: "ttyS0",
        }),
    },
];

/// A libc-free static program: `examples/<name>.rs`, built with `--features rt`, that prints
/// `ok <check>` / `FAIL <check>: <detail>` lines and finally `<result_prefix>: N passed, M failed`.
pub struct Program {
    pub example: &'static str,
    pub result_prefix: &'static str,
    /// Stripped size limit in bytes.
    pub max_size: Option<u64>,
}

/// Every static program is built, checked, run natively or under qemu-user, and booted as
/// `/init` on the real kernels. Adding one is one line here.
#[rustfmt::skip]
pub const PROGRAMS: &[Program] = &[
    Program { example: "selftest", result_prefix: "shmfusion-selftest", max_size: Some(64 * 1024) },
    Program { example: "fusion_static", result_prefix: "shmfusion-fusion", max_size: None },
    Program { example: "stress_static", result_prefix: "shmfusion-stress", max_size: None },
];
