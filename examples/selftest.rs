//! `shmfusion-selftest`: a libc-free, static self-test program, run natively, under qemu-user and as `/init`
//! on real kernels under qemu-system.
//!
//! It prints `ok <name>` or `FAIL <name>: <detail>` per check and ends with exactly
//! `shmfusion-selftest: N passed, M failed`, exiting with status 0 iff M == 0 (powering off instead when it runs
//! as pid 1).
//!
//! Build it with the static, libc-free link flags, which turn on `crt-static`,
//!
//! ```text
//! RUSTFLAGS="-C linker=rust-lld -C linker-flavor=ld.lld -C relocation-model=static \
//!     -C target-feature=+crt-static -C link-self-contained=no" \
//!     cargo build --example selftest --features rt --profile static --target riscv64gc-unknown-linux-gnu
//! ```
//!
//! and with `panic = "abort"` (the `static` profile; for `dev` add `--config 'profile.dev.panic="abort"'`).
//! Without both (an ordinary build, such as the one `cargo test --features rt` makes of every example, also on
//! musl targets where `crt-static` is the default) the C start files would be linked and clash with the
//! runtime's `_start`, and rustc rejects unwinding `no_std` binaries, so the example then compiles to a hosted
//! stub that says how to build it and exits with status 2.
#![cfg_attr(all(target_feature = "crt-static", panic = "abort"), no_std, no_main)]

#[cfg(all(target_feature = "crt-static", panic = "abort"))]
mod selftest {
    use core::hint::black_box;
    use core::ptr;

    use shmfusion::rt::aux::AT_PAGESZ;
    use shmfusion::rt::check::Checks;
    use shmfusion::rt::{self, Args};

    rt::entry!(main);

    fn main(args: Args) -> i32 {
        let mut checks = Checks::new();
        check_args(&mut checks, &args);
        check_auxv(&mut checks, &args);
        check_mem(&mut checks);
        check_shm(&mut checks);
        check_flags(&mut checks);
        check_processes(&mut checks);
        check_objects(&mut checks);
        checks.summary("shmfusion-selftest")
    }

    /// A result's error through `Display` ("ok" for success).
    struct ErrText<'a, T, E>(&'a Result<T, E>);

    impl<T, E: core::fmt::Display> core::fmt::Display for ErrText<'_, T, E> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self.0 {
                Ok(_) => f.write_str("ok"),
                Err(e) => e.fmt(f),
            }
        }
    }

    /// A compact, numeric rendering of a status for failure details (keeps bitflags' and derive(Debug)'s
    /// formatting code out of the binary).
    struct StatBrief<'a>(&'a shmfusion::Result<shmfusion::shm::Stat>);

    impl core::fmt::Display for StatBrief<'_> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self.0 {
                Ok(s) => write!(
                    f,
                    "key {:#x} size {} mode {:o} uid {}/{} creator {}/{} cpid {} lpid {} nattch {} times {}/{}/{} dest {} locked {}",
                    s.key.as_raw(),
                    s.size,
                    s.mode.bits(),
                    s.ownership.uid,
                    s.ownership.gid,
                    s.ownership.creator_uid,
                    s.ownership.creator_gid,
                    s.creator_pid,
                    s.last_pid,
                    s.attach_count,
                    s.attach_time,
                    s.detach_time,
                    s.change_time,
                    s.marked_for_removal,
                    s.locked
                ),
                Err(e) => write!(f, "errno {}", e.raw_os_error()),
            }
        }
    }

    /// The System V surface on this kernel: every call, the typed stat fields against what was set, the ABI
    /// details that qemu-user hides (IPC_64 placement, 16-bit mode on arm/i686, zeroed padding, 64-bit times),
    /// limits, usage, iteration, read-only attaches, removal while attached.
    fn check_shm(checks: &mut Checks) {
        use rustix::fs::Mode;
        use shmfusion::shm::{self, AttachOptions, Expected, Key, Options, VerifyError};

        let euid = rustix::process::geteuid().as_raw();
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime).tv_sec;

        let limits = shm::limits();
        checks.check_that(
            "shm.limits",
            limits.is_ok_and(|l| l.max_size > 0 && l.min_size == 1 && l.max_segments >= 1),
            format_args!("{limits:?}"),
        );
        let lba = shm::shmlba();
        let expected_lba = if cfg!(target_arch = "arm") {
            4 * shm::page_size()
        } else {
            shm::page_size()
        };
        checks.check_that("shm.shmlba", lba == expected_lba && lba >= 4096, format_args!("{lba}"));

        let key = Key::from_raw(0x5e1f_0000 | (pid & 0xffff));
        let segment = match Options::new(8192).create_exclusive(key) {
            Ok(s) => s,
            Err(e) => {
                checks.check_that("shm.create_exclusive", false, format_args!("{e:?}"));
                return;
            }
        };
        let _guard = segment.remove_on_drop();
        checks.check("shm.create_exclusive", Ok::<_, ()>(()));
        checks.check_that(
            "shm.exclusive_again_is_eexist",
            Options::new(8192).create_exclusive(key) == Err(shmfusion::Errno::EXIST),
            format_args!("expected EEXIST"),
        );
        let opened = Options::new(4096).open(key);
        checks.check_that(
            "shm.open_by_key",
            opened.is_ok_and(|o| o.id() == segment.id() && o.size() == 8192),
            format_args!("{opened:?}"),
        );
        checks.check_that(
            "shm.open_missing_is_enoent",
            Options::new(1).open(Key::from_raw(0x5e1e_0000 | (pid & 0xffff))).err() == Some(shmfusion::Errno::NOENT),
            format_args!("expected ENOENT"),
        );

        // IPC_STAT through the per-arch shmctl entry: EINVAL here means a wrong IPC_64 choice.
        let st = segment.stat();
        checks.check_that(
            "shm.stat_fields",
            st.is_ok_and(|st| {
                st.key == key
                    && st.size == 8192
                    && st.mode.bits() == 0o600
                    && st.ownership.uid == euid
                    && st.ownership.creator_uid == euid
                    && st.creator_pid == pid
                    && st.attach_count == 0
                    && !st.marked_for_removal
                    && !st.locked
                    && (st.change_time - now).abs() < 600
                    && st.attach_time == 0
            }),
            format_args!("{} (euid {euid}, pid {pid}, now {now})", StatBrief(&st)),
        );

        let map = segment.attach(AttachOptions::new());
        let roundtrip = map.as_ref().map(|m| {
            let _ = m.write(100, b"shmfusion");
            let mut back = [0u8; 9];
            let _ = m.read(100, &mut back);
            back == *b"shmfusion"
        });
        checks.check_that(
            "shm.attach_read_write",
            roundtrip == Ok(true),
            format_args!("{roundtrip:?}"),
        );
        let second = segment.attach(AttachOptions::new().read_only());
        let st = segment.stat();
        checks.check_that(
            "shm.stat_after_attach",
            st.is_ok_and(|st| st.attach_count == 2 && st.last_pid == pid && (st.attach_time - now).abs() < 600),
            format_args!("{}", StatBrief(&st)),
        );
        let ro_write = second.as_ref().map(|m| m.write(0, b"x"));
        let ro_read = second.as_ref().map(|m| {
            let mut b = [0u8; 9];
            let _ = m.read(100, &mut b);
            b == *b"shmfusion"
        });
        checks.check_that(
            "shm.read_only_attach",
            ro_write == Ok(Err(shmfusion::Errno::ACCESS)) && ro_read == Ok(true),
            format_args!("{ro_write:?} {ro_read:?}"),
        );
        drop(second);

        // IPC_SET: the mode must come back as set (a 32-bit read of arm's 16-bit mode would not).
        let set = segment.set(
            euid,
            rustix::process::getegid().as_raw(),
            Mode::from_bits_truncate(0o640),
        );
        let st = segment.stat();
        checks.check_that(
            "shm.set_mode",
            set.is_ok() && st.is_ok_and(|st| st.mode.bits() == 0o640),
            format_args!("{:?} {}", set.err(), StatBrief(&st)),
        );
        let lock = segment.lock().and_then(|()| segment.stat());
        let unlock = segment.unlock().and_then(|()| segment.stat());
        checks.check_that(
            "shm.lock_unlock",
            lock.is_ok_and(|s| s.locked) && unlock.is_ok_and(|s| !s.locked),
            format_args!("{} / {}", StatBrief(&lock), StatBrief(&unlock)),
        );
        let usage = shm::usage();
        checks.check_that(
            "shm.usage",
            usage.is_ok_and(|u| u.segments >= 1 && u.total_pages >= 2),
            format_args!("{usage:?}"),
        );
        let found = shm::segments().map(|mut it| it.any(|(id, st)| id == segment.id() && st.size == 8192));
        checks.check_that("shm.iterate_segments", found == Ok(true), format_args!("{found:?}"));

        let verified = shm::open_verified(key, &Expected::new(8192).allowed_mode(Mode::from_bits_truncate(0o640)));
        let too_open = shm::open_verified(key, &Expected::new(8192));
        checks.check_that(
            "shm.open_verified",
            verified.is_ok() && matches!(too_open, Err(VerifyError::Mode { .. })),
            format_args!("{} / {}", ErrText(&verified), ErrText(&too_open)),
        );

        // Removal while attached: key gone, id still attachable, data intact, destroyed at last detach.
        let removed = segment.remove();
        let st = segment.stat();
        let by_id = segment.attach(AttachOptions::new());
        let data_ok = by_id.as_ref().map(|m| {
            let mut b = [0u8; 9];
            let _ = m.read(100, &mut b);
            b == *b"shmfusion"
        });
        checks.check_that(
            "shm.remove_while_attached",
            removed.is_ok()
                && st.is_ok_and(|st| st.marked_for_removal && st.key == Key::PRIVATE)
                && Options::new(1).open(key).err() == Some(shmfusion::Errno::NOENT)
                && data_ok == Ok(true),
            format_args!("{:?} {} {data_ok:?}", removed.err(), StatBrief(&st)),
        );
        drop(by_id);
        drop(map);
        let gone = segment.stat();
        checks.check_that(
            "shm.destroyed_after_last_detach",
            gone.err() == Some(shmfusion::Errno::INVAL) || gone.err() == Some(shmfusion::Errno::IDRM),
            format_args!("{}", StatBrief(&gone)),
        );
    }

    /// Runs `child` in a forked process and returns how it ended: `Ok(status)` or `Err(signal)`.
    fn in_child(child: impl FnOnce() -> i32) -> Result<i32, i32> {
        use rustix::process::{WaitOptions, waitpid};
        // SAFETY: this program is single-threaded.
        match unsafe { shmfusion::process::fork() } {
            Ok(None) => rt::exit(child()),
            Ok(Some(pid)) => match waitpid(Some(pid), WaitOptions::empty()) {
                Ok(Some((_, status))) => status.exit_status().ok_or(status.terminating_signal().unwrap_or(-1)),
                _ => Err(-1),
            },
            Err(_) => Err(-2),
        }
    }

    /// The attach flags and creation flags the kernel supports: SHM_RND against SHMLBA, SHM_REMAP, SHM_EXEC,
    /// SHM_NORESERVE, huge pages (none reserved: ENOMEM, or EPERM without the capability), and SHM_STAT_ANY.
    fn check_flags(checks: &mut Checks) {
        use core::ptr::NonNull;
        use shmfusion::Errno;
        use shmfusion::shm::{self, AttachOptions, HugePageSize, Key, Options, raw};

        let Ok(segment) = Options::new(8192).no_reserve().create_exclusive(Key::PRIVATE) else {
            checks.check_that("shm.noreserve", false, format_args!("create failed"));
            return;
        };
        let _guard = segment.remove_on_drop();
        checks.check("shm.noreserve", Ok::<_, ()>(()));
        let lba = shm::shmlba();
        // Find a free, SHMLBA-aligned address: map a scratch segment of 8 x SHMLBA where the kernel (or
        // qemu-user) likes, unmap it, and use the vacated range.
        let scratch = Options::new(8 * lba).create_exclusive(Key::PRIVATE);
        let base = scratch.as_ref().map_err(|e| *e).and_then(|seg| {
            let _gone = seg.remove_on_drop();
            seg.attach(AttachOptions::new())
                .map(|m| (m.as_ptr() as usize + 2 * lba - 1) & !(lba - 1))
        });
        if let Ok(base) = base {
            let at = NonNull::new((base + 4097) as *mut u8).unwrap();
            let rounded = segment.attach(AttachOptions::new().at(at).round());
            checks.check_that(
                "shm.attach_rnd",
                rounded
                    .as_ref()
                    .is_ok_and(|m| m.as_ptr() as usize == (base + 4097) & !(lba - 1)),
                format_args!(
                    "{:?} for {at:?} with SHMLBA {lba}",
                    rounded.as_ref().map(|m| m.as_ptr())
                ),
            );
            let unaligned = segment.attach(AttachOptions::new().at(at));
            checks.check_that(
                "shm.attach_unaligned_einval",
                unaligned.as_ref().err() == Some(&Errno::INVAL),
                format_args!("{:?}", unaligned.as_ref().map(|m| m.as_ptr())),
            );
            if let Ok(first) = &rounded {
                let target = NonNull::new(first.as_ptr()).unwrap();
                let overlap = segment.attach(AttachOptions::new().at(target));
                // SAFETY: the range is our own attachment `first`, which is not used while replaced.
                let remapped = segment.attach(unsafe { AttachOptions::new().at(target).remap() });
                checks.check_that(
                    "shm.attach_remap",
                    overlap.is_err() && remapped.as_ref().is_ok_and(|m| m.as_ptr() == first.as_ptr()),
                    format_args!(
                        "overlap {:?} remap {:?}",
                        overlap.map(|m| m.as_ptr()),
                        remapped.map(|m| m.as_ptr())
                    ),
                );
                // `remapped` replaced `first` at the same address; forget one of the two so it detaches once.
                core::mem::forget(rounded);
            }
        }
        let exec = segment.attach(AttachOptions::new().executable());
        checks.check_that(
            "shm.attach_exec",
            exec.is_ok(),
            format_args!("{:?}", exec.map(|m| m.as_ptr())),
        );
        let huge = Options::new(2 << 20)
            .huge_pages(HugePageSize::SIZE_2MB)
            .create_exclusive(Key::PRIVATE);
        let huge_ok = match &huge {
            Ok(s) => s.remove().is_ok(),
            Err(e) => matches!(*e, Errno::NOMEM | Errno::PERM | Errno::INVAL | Errno::NOSPC),
        };
        checks.check_that(
            "shm.hugetlb",
            huge_ok,
            format_args!("{}", ErrText(&huge.map(|s| s.size()))),
        );
        // SHM_STAT_ANY by index: supported by real kernels (4.17+); qemu-user answers EINVAL.
        let index = segment.id().as_raw() & 0x7fff;
        let mut buf = [0u8; raw::kernel_struct_size(raw::SHM_STAT_ANY)];
        // SAFETY: `buf` has the size of this architecture's shmid64_ds.
        let any = unsafe { raw::shmctl(index, raw::SHM_STAT_ANY, buf.as_mut_ptr()) };
        let real_kernel = rt::is_init() || cfg!(any(target_arch = "x86_64", target_arch = "x86"));
        checks.check_that(
            "shm.stat_any",
            any == Ok(segment.id().as_raw()) || (!real_kernel && any == Err(Errno::INVAL)),
            format_args!("{any:?} for index {index} (id {})", segment.id().as_raw()),
        );
    }

    /// Multi-process behaviour: permissions as another user, attach counts across forked children, the MMU
    /// enforcing read-only attaches, and reaping the object of a process that died without cleaning up.
    fn check_processes(checks: &mut Checks) {
        use rustix::fs::Mode;
        use shmfusion::Errno;
        use shmfusion::shm::{AttachOptions, Key, Options};

        if rustix::process::geteuid().as_raw() != 0 {
            rt::println!("skip proc.*: needs root to change users");
            return;
        }
        let Ok(segment) = Options::new(4096).create_exclusive(Key::PRIVATE) else {
            checks.check_that("proc.setup", false, format_args!("create failed"));
            return;
        };
        let _guard = segment.remove_on_drop();
        let id = segment.id();
        // As uid 65534: no access to a 0600 segment of root's.
        let as_nobody = in_child(|| {
            if rustix::thread::set_thread_gid(rustix::process::Gid::from_raw(65534)).is_err()
                || rustix::thread::set_thread_uid(rustix::process::Uid::from_raw(65534)).is_err()
            {
                return 10;
            }
            let attach = id.attach(AttachOptions::new()).err() == Some(Errno::ACCESS);
            let stat = id.stat().err() == Some(Errno::ACCESS);
            let remove = id.remove().err() == Some(Errno::PERM);
            let set = id.set(65534, 65534, Mode::from_bits_truncate(0o666)).err() == Some(Errno::PERM);
            let lock = id.lock().err() == Some(Errno::PERM);
            if attach && stat && remove && set && lock { 0 } else { 11 }
        });
        checks.check_that(
            "proc.permissions_as_nobody",
            as_nobody == Ok(0),
            format_args!("{as_nobody:?}"),
        );

        // Attach counts: children inherit the attachment.
        let map = segment.attach(AttachOptions::new());
        let counted = in_child(
            || match in_child(|| segment.stat().map_or(1, |s| s.attach_count as i32)) {
                Ok(n) => n,
                Err(_) => 99,
            },
        );
        let after = segment.stat().map(|s| s.attach_count);
        checks.check_that(
            "proc.attach_count_across_fork",
            counted == Ok(3) && after == Ok(1),
            format_args!("child saw {counted:?}, then {after:?}"),
        );
        drop(map);

        // A read-only attach faults on write: the child dies of SIGSEGV.
        let faulted = in_child(|| {
            let Ok(ro) = segment.attach(AttachOptions::new().read_only()) else {
                return 20;
            };
            ro.bytes()[0].store(1, core::sync::atomic::Ordering::Relaxed);
            21
        });
        checks.check_that("proc.read_only_fault", faulted == Err(11), format_args!("{faulted:?}"));

        // A process that creates an object and dies without cleaning up leaves it to `reap`.
        use shmfusion::object::{ObjectOptions, SharedState, reap, sysv};
        #[repr(C)]
        struct Word(core::sync::atomic::AtomicU64);
        // SAFETY: zero is valid; all atomics; same layout everywhere.
        unsafe impl SharedState for Word {
            const KIND: &'static str = "selftest-word";
            const CAPACITY: u64 = 0;
            const ELEMENT_SIZE: u64 = 0;
        }
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        let key = Key::from_raw(0x5e30_0000 | (pid & 0xffff));
        let died = in_child(|| match sysv::create::<Word>(key, &ObjectOptions::new()) {
            Ok(object) => {
                core::mem::forget(object);
                rt::exit(0)
            }
            Err(_) => 30,
        });
        let before = Options::new(1).open(key).is_ok();
        let report = reap();
        let after = Options::new(1).open(key).err() == Some(Errno::NOENT);
        checks.check_that(
            "object.reap_dead_creator",
            died == Ok(0) && before && report.is_ok_and(|r| r.removed >= 1) && after,
            format_args!("child {died:?}, existed {before}, {report:?}, gone {after}"),
        );
    }

    /// Typed objects on this kernel: create, open, mismatch refused, reap leaves live objects alone.
    fn check_objects(checks: &mut Checks) {
        use core::sync::atomic::{AtomicU64, Ordering};
        use shmfusion::object::{HeaderError, ObjectError, ObjectOptions, SharedState, reap, sysv};
        use shmfusion::shm::Key;

        #[repr(C)]
        struct Cells([AtomicU64; 8]);
        // SAFETY: zero is valid; all atomics; same layout everywhere.
        unsafe impl SharedState for Cells {
            const KIND: &'static str = "selftest-cells";
            const CAPACITY: u64 = 8;
            const ELEMENT_SIZE: u64 = 8;
        }
        #[repr(C)]
        struct Other(AtomicU64);
        // SAFETY: as above.
        unsafe impl SharedState for Other {
            const KIND: &'static str = "selftest-other";
            const CAPACITY: u64 = 0;
            const ELEMENT_SIZE: u64 = 0;
        }

        let pid = rustix::process::getpid().as_raw_nonzero().get();
        let key = Key::from_raw(0x5e20_0000 | (pid & 0xffff));
        let options = ObjectOptions::new().ready_timeout_ns(10_000_000);
        let created = sysv::open_or_create::<Cells>(key, &options);
        let Ok((object, true)) = created else {
            checks.check_that("object.create", false, format_args!("{}", ErrText(&created)));
            return;
        };
        object.get().0[3].store(0xfeed, Ordering::Relaxed);
        let opened = sysv::open_or_create::<Cells>(key, &options);
        checks.check_that(
            "object.open_or_create",
            opened
                .as_ref()
                .is_ok_and(|(o, created)| !created && o.get().0[3].load(Ordering::Relaxed) == 0xfeed),
            format_args!("{}", ErrText(&opened)),
        );
        let wrong = sysv::open::<Other>(key, &options);
        checks.check_that(
            "object.type_mismatch",
            matches!(wrong, Err(ObjectError::Header(HeaderError::Type { .. }))),
            format_args!("{}", ErrText(&wrong)),
        );
        drop(opened);
        let report = reap();
        checks.check_that(
            "object.reap_spares_live",
            report.is_ok_and(|r| r.live >= 1) && sysv::open::<Cells>(key, &options).is_ok(),
            format_args!("{report:?}"),
        );
    }

    /// argc/argv are decoded: at least the program name, as many strings as argc, and the same view from
    /// `rt::args()`.
    fn check_args(checks: &mut Checks, args: &Args) {
        let argc = args.argc();
        let counted = args.args().count();
        let name_len = args.arg(0).map_or(0, |a| a.to_bytes().len());
        let global = rt::args().map(|g| (g.argc(), g.arg(0)));
        // The detail avoids `Debug` for `CStr`: its escaping pulls kilobytes of Unicode tables into the binary.
        checks.check_that(
            "rt.args",
            argc >= 1 && counted == argc && name_len > 0 && global == Some((argc, args.arg(0))),
            format_args!(
                "argc {argc}, {counted} strings, argv[0] length {name_len}, rt::args() same: {}",
                global == Some((argc, args.arg(0)))
            ),
        );
    }

    /// The auxiliary vector is found after the environment and has a sane AT_PAGESZ.
    fn check_auxv(checks: &mut Checks, args: &Args) {
        let entries = args.auxv().count();
        let page = args.aux(AT_PAGESZ);
        checks.check_that(
            "rt.auxv",
            page.is_some_and(|p| p >= 4096 && p.is_power_of_two()),
            format_args!("AT_PAGESZ {page:?} among {entries} entries"),
        );
    }

    /// `memmove` (both directions), `memcpy`, `memset`, `memcmp` and `bcmp`, reached the way `core` reaches them,
    /// with lengths and offsets the optimiser cannot see, checked against closed-form expectations (a reference
    /// copy loop could itself be compiled into a `memmove` call).
    fn check_mem(checks: &mut Checks) {
        const N: usize = 64;
        let mut first_failure = None;
        let mut fail = |what: &'static str, len: usize, a: usize, b: usize| {
            first_failure.get_or_insert((what, len, a, b));
        };
        for len in [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 40] {
            for a in 0..9 {
                for b in 0..9 {
                    let (len, a, b) = (black_box(len), black_box(a), black_box(b));

                    // memmove within one buffer: a -> b, overlapping in either direction.
                    let mut buf: [u8; N] = core::array::from_fn(|i| i as u8);
                    // SAFETY: a + len and b + len are at most 48 <= N.
                    unsafe { ptr::copy(buf.as_ptr().add(a), buf.as_mut_ptr().add(b), len) };
                    let moved = (0..N).all(|i| {
                        let expect = if (b..b + len).contains(&i) { i - b + a } else { i };
                        buf[i] == expect as u8
                    });
                    if !moved {
                        fail("memmove", len, a, b);
                    }

                    // memcpy between buffers.
                    let src: [u8; N] = core::array::from_fn(|i| (i as u8).wrapping_mul(3).wrapping_add(1));
                    let mut dst = [0xEEu8; N];
                    // SAFETY: both ranges end at most at 48 <= N, in different buffers.
                    unsafe { ptr::copy_nonoverlapping(src.as_ptr().add(a), dst.as_mut_ptr().add(b), len) };
                    let copied = (0..N).all(|i| {
                        let expect = if (b..b + len).contains(&i) {
                            src[i - b + a]
                        } else {
                            0xEE
                        };
                        dst[i] == expect
                    });
                    if !copied {
                        fail("memcpy", len, a, b);
                    }

                    // memset.
                    let mut buf = [0x11u8; N];
                    // SAFETY: b + len <= 48 <= N.
                    unsafe { ptr::write_bytes(buf.as_mut_ptr().add(b), 0xA5, len) };
                    let set = (0..N).all(|i| buf[i] == if (b..b + len).contains(&i) { 0xA5 } else { 0x11 });
                    if !set {
                        fail("memset", len, a, b);
                    }

                    // memcmp and bcmp: equal ranges, then one byte raised by 0x80 (tests unsigned compare).
                    let x: [u8; N] = core::array::from_fn(|i| (i as u8).wrapping_mul(5));
                    // Indexes shifted by b - a so that y[b..b + len] == x[a..a + len].
                    let mut y: [u8; N] =
                        core::array::from_fn(|i| (i.wrapping_sub(b).wrapping_add(a) as u8).wrapping_mul(5));
                    let (xs, ys) = (&x[a..a + len], &y[b..b + len]);
                    if xs != ys || xs.cmp(ys) != core::cmp::Ordering::Equal {
                        fail("memcmp/bcmp equal", len, a, b);
                    }
                    if len > 0 {
                        let at = black_box(len / 2);
                        y[b + at] = y[b + at].wrapping_add(0x80);
                        let ys = &y[b..b + len];
                        let expect = x[a + at].cmp(&y[b + at]);
                        if xs == ys || xs.cmp(ys) != expect {
                            fail("memcmp/bcmp differ", len, a, b);
                        }
                    }
                }
            }
        }
        checks.check_that(
            "rt.mem",
            first_failure.is_none(),
            format_args!("first failure (what, len, src offset, dst offset): {first_failure:?}"),
        );
    }
}

#[cfg(not(all(target_feature = "crt-static", panic = "abort")))]
fn main() {
    eprintln!(
        "shmfusion-selftest: built without the static link flags or without panic=abort, so nothing was run; \
         build with RUSTFLAGS=\"-C linker=rust-lld -C linker-flavor=ld.lld -C relocation-model=static \
         -C target-feature=+crt-static -C link-self-contained=no\" and --profile static (see the source)"
    );
    std::process::exit(2);
}
