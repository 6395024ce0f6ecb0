//! Typed shared objects: header validation errors, open-or-create races between processes, reaping after
//! crashes, key squatting, and the other shared-memory kinds.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shmfusion::liveness::{ClaimError, Liveness, Role};
use shmfusion::object::{self, HeaderError, Lifecycle, ObjectError, ObjectOptions, SharedState, fd, reap, sysv};
use shmfusion::shm::{self, GetFlags, Key, VerifyError};
use std::sync::atomic::AtomicI32;

#[repr(C)]
struct Counter {
    value: AtomicU64,
    opens: AtomicU32,
    _pad: AtomicU32,
}
// SAFETY: zero is valid; all atomics; same layout everywhere.
unsafe impl SharedState for Counter {
    const KIND: &'static str = "test-counter";
    const CAPACITY: u64 = 0;
    const ELEMENT_SIZE: u64 = 0;
}

#[repr(C)]
struct Table<const N: usize> {
    cells: [AtomicU64; N],
}
// SAFETY: zero is valid; all atomics; same layout everywhere.
unsafe impl<const N: usize> SharedState for Table<N> {
    const KIND: &'static str = "test-table";
    const CAPACITY: u64 = N as u64;
    const ELEMENT_SIZE: u64 = 8;
}

/// A key unique to this process and call site, so parallel tests never collide.
fn unique_key() -> Key {
    static NEXT: AtomicI32 = AtomicI32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Key::from_raw(0x3a00_0000 | ((std::process::id() as i32 & 0x7ff) << 13) | (n & 0x1fff))
}

/// Removes whatever segment `key` names when dropped (test cleanup, even on panic).
struct KeyCleanup(Key);
impl Drop for KeyCleanup {
    fn drop(&mut self) {
        while let Ok(id) = shm::get(self.0, 0, GetFlags::empty(), rustix::fs::Mode::empty()) {
            if id.remove().is_err() {
                break;
            }
        }
    }
}

/// Forked children inherit every attachment the parent has at that moment, including those another test thread
/// (or `reap`) holds briefly, which changes attach counts. Tests that fork or reap take this lock.
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fork_lock() -> std::sync::MutexGuard<'static, ()> {
    FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn opts() -> ObjectOptions {
    ObjectOptions::new().ready_timeout_ns(50_000_000)
}

#[test]
fn create_then_open_shares_one_object() {
    let key = unique_key();
    let _c = KeyCleanup(key);
    let a = sysv::create::<Counter>(key, &opts()).unwrap();
    let b = sysv::open::<Counter>(key, &opts()).unwrap();
    a.get().value.store(42, Ordering::Relaxed);
    assert_eq!(b.get().value.load(Ordering::Relaxed), 42);
    assert_eq!(
        sysv::create::<Counter>(key, &opts()).unwrap_err(),
        ObjectError::Os(rustix::io::Errno::EXIST)
    );
    assert!(a.removes_on_drop() && !b.removes_on_drop());
    drop(a);
    // The creator's drop removed the key; the opener keeps a working mapping.
    assert_eq!(b.get().value.load(Ordering::Relaxed), 42);
    assert!(matches!(
        sysv::open::<Counter>(key, &opts()),
        Err(ObjectError::Os(rustix::io::Errno::NOENT))
    ));
}

#[test]
fn each_mismatch_has_its_own_error() {
    let key = unique_key();
    let _c = KeyCleanup(key);
    let created = sysv::create::<Table<16>>(key, &opts()).unwrap();
    // Another type.
    assert!(matches!(
        sysv::open::<Counter>(key, &opts()),
        Err(ObjectError::Header(HeaderError::Type { .. }))
    ));
    // Same type name and kind, other capacity: the explicit type name makes only the layout differ.
    let named = opts().type_name("table");
    let key2 = unique_key();
    let _c2 = KeyCleanup(key2);
    let _t = sysv::create::<Table<16>>(key2, &named).unwrap();
    match sysv::open::<Table<8>>(key2, &named) {
        Err(ObjectError::Header(HeaderError::Layout { found })) => assert_eq!(found.capacity, 16),
        other => panic!("expected a layout error, got {other:?}"),
    }
    // A larger expected size than the segment has is refused before attaching.
    assert!(matches!(
        sysv::open::<Table<1024>>(key2, &named),
        Err(ObjectError::Verify(VerifyError::TooSmall { .. }))
    ));
    // Version and byte order, by editing the creator's header.
    let header = created.header();
    header.version.store(99, Ordering::Relaxed);
    assert_eq!(
        sysv::open::<Table<16>>(key, &opts()).unwrap_err(),
        ObjectError::Header(HeaderError::Version {
            found: 99,
            expected: object::FORMAT_VERSION
        })
    );
    header.version.store(object::FORMAT_VERSION, Ordering::Relaxed);
    header.magic.store(object::MAGIC.swap_bytes(), Ordering::Relaxed);
    assert_eq!(
        sysv::open::<Table<16>>(key, &opts()).unwrap_err(),
        ObjectError::Header(HeaderError::Endianness)
    );
    header.magic.store(0x1234, Ordering::Relaxed);
    assert_eq!(
        sysv::open::<Table<16>>(key, &opts()).unwrap_err(),
        ObjectError::Header(HeaderError::NotShmfusion { found: 0x1234 })
    );
    header.magic.store(object::MAGIC, Ordering::Relaxed);
    header.total_size.store(u64::MAX, Ordering::Relaxed);
    assert!(matches!(
        sysv::open::<Table<16>>(key, &opts()),
        Err(ObjectError::Header(HeaderError::Truncated { .. }))
    ));
    header.total_size.store(0, Ordering::Relaxed);
    assert!(matches!(
        sysv::open::<Table<16>>(key, &opts()),
        Err(ObjectError::Header(HeaderError::Corrupt(_)))
    ));
}

#[test]
fn a_segment_nobody_initialises_is_refused_after_the_timeout() {
    let key = unique_key();
    let _c = KeyCleanup(key);
    // A bare segment of the right size whose "creator" (us, alive) never publishes.
    let _seg = shm::Options::new(8192).create_exclusive(key).unwrap();
    let err = sysv::open::<Counter>(key, &opts()).unwrap_err();
    assert_eq!(err, ObjectError::Header(HeaderError::NotReady { state: object::EMPTY }));
}

#[test]
fn remove_on_last_detach_objects_are_shared_by_id() {
    // A child forked meanwhile by another test would inherit the attachments and keep the segment alive.
    let _lock = fork_lock();
    let object = sysv::create::<Counter>(Key::PRIVATE, &opts().lifecycle(Lifecycle::RemoveOnLastDetach)).unwrap();
    let id = object.region().id();
    assert!(id.stat().unwrap().marked_for_removal);
    let other = sysv::open_id::<Counter>(id, &opts()).unwrap();
    object.get().value.store(7, Ordering::Relaxed);
    assert_eq!(other.get().value.load(Ordering::Relaxed), 7);
    drop(object);
    drop(other);
    assert!(id.stat().is_err(), "destroyed after the last detach");
}

#[test]
fn the_header_names_a_live_creator() {
    let object = sysv::create::<Counter>(Key::PRIVATE, &opts()).unwrap();
    let creator = object.creator().expect("stamped");
    assert_eq!(creator.pid, Some(std::process::id()));
    assert_eq!(creator.liveness, Liveness::Alive);
    assert_ne!(creator.since_unix_ns, 0);
}

/// A custom shared object with a role of its own: the same liveness as the buffers' roles.
#[repr(C)]
#[derive(Default)]
struct Guarded {
    role: Role,
    value: AtomicU64,
}
// SAFETY: zero is a free role and a zero value; all atomics; same layout everywhere.
unsafe impl SharedState for Guarded {
    const KIND: &'static str = "test-guarded";
    const CAPACITY: u64 = 0;
    const ELEMENT_SIZE: u64 = 0;
}

#[test]
fn an_embedded_role_of_a_dead_process_is_taken_over_and_a_live_one_is_not() {
    let _lock = fork_lock();
    let object = sysv::create::<Guarded>(Key::PRIVATE, &opts()).unwrap();
    let role = &object.get().role;
    // A child claims the role and dies holding it (SIGKILL: no release).
    let status = in_child(|| match role.claim() {
        Ok(guard) => {
            core::mem::forget(guard);
            // SAFETY: raising a signal on ourselves.
            unsafe { libc::raise(libc::SIGKILL) };
            1
        }
        Err(_) => 2,
    });
    assert_eq!(status, 128 + libc::SIGKILL);
    assert_eq!(role.holder().map(|h| h.liveness), Some(Liveness::Dead));
    let mut mine = role.claim().expect("a dead holder's role is taken over");
    // Held by this live process: a child cannot take it.
    let refused = in_child(|| match role.claim() {
        Err(ClaimError::Taken(h)) if h.liveness == Liveness::Alive => 0,
        _ => 1,
    });
    assert_eq!(refused, 0);
    assert!(mine.release());
    assert!(role.is_closed());
}

/// A payload aligned more strictly than any page.
#[repr(C, align(4194304))]
struct OverAligned(AtomicU64);
// SAFETY: zero is valid; all atomics; same layout everywhere.
unsafe impl SharedState for OverAligned {
    const KIND: &'static str = "test-over-aligned";
    const CAPACITY: u64 = 0;
    const ELEMENT_SIZE: u64 = 0;
}

#[test]
fn a_payload_aligned_beyond_the_page_is_refused_not_misplaced() {
    // Mappings are only page-aligned: `get` must never hand out a misaligned reference. Several objects are
    // kept mapped at once so that their bases differ.
    let mut objects = Vec::new();
    for _ in 0..8 {
        match sysv::create::<OverAligned>(Key::PRIVATE, &opts()) {
            Ok(object) => {
                let addr = object.get() as *const OverAligned as usize;
                assert_eq!(addr % core::mem::align_of::<OverAligned>(), 0, "misaligned payload");
                objects.push(object);
            }
            Err(e) => assert_eq!(e, ObjectError::Os(rustix::io::Errno::INVAL)),
        }
    }
}

/// Runs `child` in a forked process and returns its exit status (or 128 + signal). The child must not allocate.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only runs `child` (syscalls, no allocation or locks) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = child();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    wait(pid)
}

fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: `pid` is our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

fn under_qemu() -> bool {
    std::env::var_os("SHMFUSION_UNDER_QEMU").is_some() || !cfg!(any(target_arch = "x86_64", target_arch = "x86"))
}

#[test]
fn open_or_create_races_end_with_one_creator() {
    let _lock = fork_lock();
    let rounds = if under_qemu() { 50 } else { 1000 };
    // A start line in anonymous shared memory so both children call `open_or_create` at the same moment.
    // SAFETY: a fresh anonymous mapping.
    let start = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(start, libc::MAP_FAILED);
    // SAFETY: the mapping is 4096 bytes, aligned, zeroed, and only accessed atomically.
    let go = unsafe { &*(start as *const AtomicU32) };
    for round in 0..rounds {
        let key = unique_key();
        let _c = KeyCleanup(key);
        go.store(0, Ordering::SeqCst);
        let racer = || {
            while go.load(Ordering::Acquire) == 0 {
                core::hint::spin_loop();
            }
            match sysv::open_or_create::<Counter>(key, &opts().lifecycle(Lifecycle::Persist)) {
                Ok((object, created)) => {
                    object.get().opens.fetch_add(1, Ordering::AcqRel);
                    if created { 1 } else { 2 }
                }
                Err(_) => 3,
            }
        };
        // SAFETY: as in `in_child`.
        let pids: Vec<i32> = (0..2)
            .map(|_| {
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    let code = racer();
                    unsafe { libc::_exit(code) };
                }
                pid
            })
            .collect();
        go.store(1, Ordering::Release);
        let mut codes: Vec<i32> = pids.into_iter().map(wait).collect();
        codes.sort();
        assert_eq!(codes, vec![1, 2], "round {round}: one creator and one opener");
        let object = sysv::open::<Counter>(key, &opts()).unwrap();
        assert_eq!(
            object.get().opens.load(Ordering::Acquire),
            2,
            "round {round}: both used the same object"
        );
    }
    // SAFETY: unmapping our own mapping; `go` is not used afterwards.
    unsafe { libc::munmap(start, 4096) };
}

#[test]
fn reap_removes_objects_of_killed_producers_and_never_live_ones() {
    let _lock = fork_lock();
    let producers = if under_qemu() { 40 } else { 200 };
    let live_key = unique_key();
    let _live_cleanup = KeyCleanup(live_key);
    let live = sysv::create::<Counter>(live_key, &opts()).unwrap();
    let base = 0x3b00_0000 | ((std::process::id() as i32 & 0x3fff) << 8);
    let keys: Vec<Key> = (0..producers).map(|i| Key::from_raw(base + i)).collect();
    let _cleanups: Vec<_> = keys.iter().map(|&k| KeyCleanup(k)).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    for &key in &keys {
        // SAFETY: as in `in_child`: the child creates its object and writes until killed.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            if let Ok(object) = sysv::create::<Table<64>>(key, &opts()) {
                let mut i = 0u64;
                loop {
                    object.get().cells[(i % 64) as usize].store(i, Ordering::Relaxed);
                    i = i.wrapping_add(1);
                }
            }
            unsafe { libc::_exit(0) };
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_micros(seed % 3000));
        // SAFETY: `pid` is our child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait(pid);
    }
    let mut report = reap().unwrap();
    let survivors = keys
        .iter()
        .filter(|&&k| shm::get(k, 0, GetFlags::empty(), rustix::fs::Mode::empty()).is_ok())
        .count();
    if survivors > 0 {
        // Producers killed between `shmget` and stamping the header (a window of one `shmat`) left segments
        // without a creator stamp: `reap` leaves them to a possibly live creator for the documented grace period,
        // and must remove them once it is over.
        std::thread::sleep(std::time::Duration::from_secs(sysv::CREATE_GRACE_S as u64 + 2));
        report = reap().unwrap();
    }
    eprintln!("reap: {survivors} of {producers} killed producers had not stamped their header; {report:?}");
    for &key in &keys {
        assert!(
            shm::get(key, 0, GetFlags::empty(), rustix::fs::Mode::empty()).is_err(),
            "a killed producer's object survived reap: {report:?}"
        );
    }
    assert!(report.live >= 1, "{report:?}");
    // The live object is untouched and still opens.
    live.get().value.store(5, Ordering::Relaxed);
    assert_eq!(
        sysv::open::<Counter>(live_key, &opts())
            .unwrap()
            .get()
            .value
            .load(Ordering::Relaxed),
        5
    );
}

#[test]
fn a_key_squatted_by_another_user_is_refused() {
    let _lock = fork_lock();
    let key = unique_key();
    let _c = KeyCleanup(key);
    let status = in_child(|| {
        // SAFETY: dropping privileges in the child only.
        if unsafe { libc::setgid(65534) } != 0 || unsafe { libc::setuid(65534) } != 0 {
            return 10;
        }
        let mode = rustix::fs::Mode::from_bits_truncate(0o666);
        match shm::Options::new(4096).mode(mode).create_exclusive(key) {
            Ok(_) => 0,
            Err(_) => 11,
        }
    });
    assert_eq!(status, 0, "the squatter child failed");
    match sysv::open::<Counter>(key, &opts()) {
        Err(ObjectError::Verify(VerifyError::Owner { uid: 65534, .. })) => {}
        other => panic!("expected an ownership error, got {other:?}"),
    }
    assert!(matches!(
        sysv::open_or_create::<Counter>(key, &opts()),
        Err(ObjectError::Verify(VerifyError::Owner { .. }))
    ));
}

#[test]
fn posix_memfd_and_file_objects_behave_like_sysv_ones() {
    let _lock = fork_lock();
    let name = std::ffi::CString::new(format!("/shmfusion-test-{}", std::process::id())).unwrap();
    let a = fd::posix::create::<Table<8>>(&name, &opts()).unwrap();
    let b = fd::posix::open::<Table<8>>(&name, &opts()).unwrap();
    a.get().cells[3].store(33, Ordering::Relaxed);
    assert_eq!(b.get().cells[3].load(Ordering::Relaxed), 33);
    assert!(matches!(
        fd::posix::open::<Counter>(&name, &opts()),
        Err(ObjectError::Header(HeaderError::Type { .. }))
    ));
    drop(a);
    assert!(
        fd::posix::open::<Table<8>>(&name, &opts()).is_err(),
        "unlinked when the creator dropped"
    );

    let (m, memfd) = fd::memfd::create::<Counter>(c"shmfusion-test", &opts()).unwrap();
    let m2 = fd::memfd::open::<Counter>(&memfd, &opts()).unwrap();
    m.get().value.store(9, Ordering::Relaxed);
    assert_eq!(m2.get().value.load(Ordering::Relaxed), 9);
    let seen = in_child(|| m.get().value.load(Ordering::Relaxed) as i32);
    assert_eq!(seen, 9, "a forked child sees the memfd object");

    let path = std::env::temp_dir().join(format!("shmfusion-test-{}.obj", std::process::id()));
    let path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    {
        let f = fd::file::create::<Counter>(&path, &opts().lifecycle(Lifecycle::Persist)).unwrap();
        f.get().value.store(1234, Ordering::Relaxed);
    }
    // Persisted in the file: a later open finds the value.
    let f = fd::file::open::<Counter>(&path, &opts()).unwrap();
    assert_eq!(f.get().value.load(Ordering::Relaxed), 1234);
    drop(f);
    std::fs::remove_file(path.to_str().unwrap()).unwrap();
}

#[test]
fn buffers_work_unchanged_in_every_kind_of_object() {
    use shmfusion::buffer::{BroadcastRing, Latest};
    type Ring = BroadcastRing<[u64; 4], 16>;
    fn exercise(ring: &Ring, slot: &Latest<u64>) {
        let mut writer = ring.writer().unwrap();
        let mut reader = ring.reader_from_oldest();
        for i in 0..20u64 {
            writer.publish_one(&[i; 4]);
        }
        // 20 published into 16 slots: at least the oldest 4 are reported as lost, and reading resumes right
        // after them, in order.
        let Err(shmfusion::buffer::Error::Lagged(lost)) = reader.try_recv() else {
            panic!("expected a lag")
        };
        assert!(lost >= 4);
        for i in lost..20 {
            assert_eq!(reader.try_recv().unwrap(), ([i; 4], i));
        }
        slot.writer().unwrap().write(&99);
        assert_eq!(slot.read().unwrap(), (99, 1));
    }
    let ring = sysv::create::<Ring>(Key::PRIVATE, &opts()).unwrap();
    let slot = sysv::create::<Latest<u64>>(Key::PRIVATE, &opts()).unwrap();
    exercise(ring.get(), slot.get());

    let name = std::ffi::CString::new(format!("/shmfusion-buf-{}", std::process::id())).unwrap();
    let slot_name = std::ffi::CString::new(format!("/shmfusion-slot-{}", std::process::id())).unwrap();
    let ring = fd::posix::create::<Ring>(&name, &opts()).unwrap();
    let slot = fd::posix::create::<Latest<u64>>(&slot_name, &opts()).unwrap();
    exercise(ring.get(), slot.get());

    let (ring, _fd) = fd::memfd::create::<Ring>(c"ring", &opts()).unwrap();
    let (slot, _fd2) = fd::memfd::create::<Latest<u64>>(c"slot", &opts()).unwrap();
    exercise(ring.get(), slot.get());

    let dir = std::env::temp_dir();
    let ring_path = std::ffi::CString::new(
        dir.join(format!("shmfusion-ring-{}", std::process::id()))
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let slot_path = std::ffi::CString::new(
        dir.join(format!("shmfusion-slot-{}", std::process::id()))
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let ring = fd::file::create::<Ring>(&ring_path, &opts()).unwrap();
    let slot = fd::file::create::<Latest<u64>>(&slot_path, &opts()).unwrap();
    exercise(ring.get(), slot.get());
}

#[test]
fn memfd_objects_are_sealed_against_resizing() {
    let (_object, memfd) = fd::memfd::create::<Counter>(c"sealed", &opts()).unwrap();
    assert_eq!(
        rustix::fs::ftruncate(&memfd, 0),
        Err(rustix::io::Errno::PERM),
        "shrinking is sealed"
    );
    // An unsealed memfd (which anyone holding it could shrink under our mapping) is refused.
    let loose = rustix::fs::memfd_create(c"loose", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&loose, 8192).unwrap();
    assert_eq!(
        fd::memfd::open::<Counter>(&loose, &opts()).unwrap_err(),
        ObjectError::Os(rustix::io::Errno::PERM)
    );
}

/// Drops the calling (forked) process to uid and gid 65534 (nobody); false if that failed.
fn become_nobody() -> bool {
    // SAFETY: plain syscalls, in a forked child only.
    unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 }
}

/// Runs `create` in a forked child that then exits, so the object's creator is dead; returns the child's status.
fn created_by_a_dead_child(create: impl FnOnce() -> i32) -> i32 {
    in_child(create)
}

#[test]
fn persist_survives_reap_after_the_creator_is_gone() {
    let _lock = fork_lock();
    let key = unique_key();
    let _c = KeyCleanup(key);
    let status = created_by_a_dead_child(|| match sysv::create::<Counter>(key, &opts()) {
        Ok(mut object) => {
            object.get().value.store(42, Ordering::Relaxed);
            object.persist();
            0
        }
        Err(_) => 1,
    });
    assert_eq!(status, 0);
    let seen = object::inspect(shm::Options::new(0).open(key).unwrap().id()).unwrap();
    assert_eq!(object::judge(&seen, &[0]), object::Verdict::Persistent);
    let report = reap().unwrap();
    let object = sysv::open::<Counter>(key, &opts())
        .unwrap_or_else(|e| panic!("reap removed a persisted object ({e}): {report:?}"));
    assert_eq!(object.get().value.load(Ordering::Relaxed), 42);
    assert_ne!(
        object.header().flags.load(Ordering::Relaxed) & 1,
        0,
        "the header records the persistence"
    );
    assert!(report.persistent >= 1, "{report:?}");
}

#[test]
fn inspect_reads_headers_through_a_read_only_attachment() {
    let _lock = fork_lock();
    let object = sysv::create::<Table<4>>(Key::PRIVATE, &opts()).unwrap();
    let id = object.region().id();
    let seen = object::inspect(id).unwrap();
    assert_eq!(seen.contents(), object::Contents::Object);
    assert_eq!(seen.header, Some(object.header().snapshot()));
    assert_eq!(
        seen.stat.attach_count, 1,
        "the inspection's own attachment is not counted"
    );
    assert!(!seen.header_writable_by_others());
    assert_eq!(id.stat().unwrap().attach_count, 1, "the inspection detached");

    // A segment too small for a header, and one holding garbage.
    let tiny = shm::Options::new(64).create_exclusive(Key::PRIVATE).unwrap();
    let _tiny_guard = tiny.remove_on_drop();
    let seen = object::inspect(tiny.id()).unwrap();
    assert_eq!((seen.header, seen.contents()), (None, object::Contents::Foreign));
    let junk = shm::Options::new(4096).create_exclusive(Key::PRIVATE).unwrap();
    let _junk_guard = junk.remove_on_drop();
    junk.attach(shm::AttachOptions::new())
        .unwrap()
        .write(0, &[0xa5; 256])
        .unwrap();
    assert_eq!(
        object::inspect(junk.id()).unwrap().contents(),
        object::Contents::Foreign
    );

    // A segment its owner may only read (mode 0400), as seen by that owner: a read-write attach is refused by the
    // kernel, the read-only inspection works (also on 32-bit targets, whose 64-bit atomic loads may be writes).
    let key = unique_key();
    let _c = KeyCleanup(key);
    let status = in_child(|| {
        if !become_nobody() {
            return 10;
        }
        let Ok(object) = sysv::create::<Table<4>>(key, &opts().lifecycle(Lifecycle::Persist)) else {
            return 11;
        };
        let id = object.region().id();
        if id.set(65534, 65534, shm::Mode::RUSR).is_err() {
            return 12;
        }
        if id.attach(shm::AttachOptions::new()).is_ok() {
            return 13;
        }
        match object::inspect(id) {
            Ok(seen) if seen.header == Some(object.header().snapshot()) => 0,
            Ok(_) => 14,
            Err(_) => 15,
        }
    });
    assert_eq!(status, 0, "inspection as the owner of a read-only segment");
}

#[test]
fn reap_reads_read_only_and_acts_only_for_the_owner() {
    let _lock = fork_lock();
    // An abandoned object of nobody's whose mode lets its owner only read it: a reap that attached read-write
    // could not even look at it.
    let key = unique_key();
    let _c = KeyCleanup(key);
    let status = created_by_a_dead_child(|| {
        if !become_nobody() {
            return 10;
        }
        let Ok(object) = sysv::create::<Counter>(key, &opts().lifecycle(Lifecycle::Persist)) else {
            return 11;
        };
        // Not persistent after all: clear the flag the option set, then drop write permission.
        object.header().flags.store(0, Ordering::Relaxed);
        match object.region().id().set(65534, 65534, shm::Mode::RUSR) {
            Ok(()) => 0,
            Err(_) => 12,
        }
    });
    assert_eq!(status, 0);
    // Root's plain reap acts on root's segments only; naming the user is root's explicit choice.
    let seen = object::inspect(shm::Options::new(0).open(key).unwrap().id()).unwrap();
    assert_eq!(object::judge(&seen, &[0]), object::Verdict::NotTheirs);
    assert!(matches!(
        object::judge(&seen, &[65534]),
        object::Verdict::Abandoned { .. }
    ));
    let report = reap().unwrap();
    assert!(
        shm::get(key, 0, GetFlags::empty(), shm::Mode::empty()).is_ok(),
        "root's reap removed another user's object: {report:?}"
    );
    // A user may not reap for others.
    let status = in_child(|| {
        if !become_nobody() {
            return 10;
        }
        match object::reap_users(&[0]) {
            Err(rustix::io::Errno::PERM) => {}
            _ => return 11,
        }
        // Its own reap removes its abandoned object, read through a read-only attachment.
        match reap() {
            Ok(report) if report.removed >= 1 => 0,
            Ok(_) => 12,
            Err(_) => 13,
        }
    });
    assert_eq!(status, 0, "nobody's reap");
    assert!(shm::get(key, 0, GetFlags::empty(), shm::Mode::empty()).is_err());
}

#[test]
fn reap_never_trusts_a_header_others_may_write() {
    let _lock = fork_lock();
    // A persistent object shared with a group (mode 0660) by a creator that has exited. A group member clears its
    // persist flag (its creator is dead already): reap must not believe it.
    let key = unique_key();
    let _c = KeyCleanup(key);
    let mode = shm::Mode::from_bits_truncate(0o660);
    let status = created_by_a_dead_child(|| {
        match sysv::create::<Counter>(key, &opts().mode(mode).lifecycle(Lifecycle::Persist)) {
            Ok(object) => {
                object.get().value.store(7, Ordering::Relaxed);
                0
            }
            Err(_) => 1,
        }
    });
    assert_eq!(status, 0);
    {
        let segment = shm::Options::new(0).open(key).unwrap();
        let map = segment.attach(shm::AttachOptions::new()).unwrap();
        // SAFETY: the mapping holds a header (the object was created above); all its fields are atomics.
        let header = unsafe { &*map.as_ptr().cast::<object::Header>() };
        header.flags.store(0, Ordering::Relaxed);
    }
    let id = shm::Options::new(0).open(key).unwrap().id();
    assert_eq!(
        object::judge(&object::inspect(id).unwrap(), &[0]),
        object::Verdict::Untrusted
    );
    let report = object::reap_users(&[0]).unwrap();
    let object = sysv::open::<Counter>(key, &opts().mode(mode))
        .unwrap_or_else(|e| panic!("reap removed a group-writable object on forged header fields ({e}): {report:?}"));
    assert_eq!(object.get().value.load(Ordering::Relaxed), 7);
    assert!(report.untrusted >= 1, "{report:?}");
}

/// Removes a path when dropped (test cleanup, even on panic).
struct PathCleanup(std::path::PathBuf);
impl Drop for PathCleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0).or_else(|_| std::fs::remove_dir(&self.0));
    }
}

fn c_path(path: &std::path::Path) -> std::ffi::CString {
    std::ffi::CString::new(path.to_str().unwrap()).unwrap()
}

/// As uid 65534 in a forked child: a symlink at `link` to `target`, or a FIFO at `link` when `target` is `None`.
fn plant_as_nobody(link: &std::path::Path, target: Option<&std::path::Path>) {
    let link = c_path(link);
    let target = target.map(c_path);
    let status = in_child(|| {
        if !become_nobody() {
            return 10;
        }
        // SAFETY: valid NUL-terminated paths.
        let r = match &target {
            Some(target) => unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) },
            None => unsafe { libc::mkfifo(link.as_ptr(), 0o666) },
        };
        if r == 0 { 0 } else { 11 }
    });
    assert_eq!(status, 0, "planting {link:?} as nobody");
}

fn assert_not_regular<T: std::fmt::Debug>(r: Result<T, ObjectError>, file_type: object::FileType, what: &str) {
    match r {
        Err(ObjectError::NotRegularFile(t)) => assert_eq!(t, file_type, "{what}"),
        other => panic!("{what}: expected NotRegularFile({file_type:?}), got {other:?}"),
    }
}

#[test]
fn planted_symlinks_fifos_and_devices_are_refused_before_opening() {
    use object::FileType;
    let _lock = fork_lock();
    let pid = std::process::id();
    let shm_dir = std::path::Path::new("/dev/shm");
    // Root's own 0600 object, the target of the planted links.
    let victim = std::ffi::CString::new(format!("/shmfusion-victim-{pid}")).unwrap();
    let _victim = fd::posix::create::<Counter>(&victim, &opts()).unwrap();
    let victim_path = shm_dir.join(format!("shmfusion-victim-{pid}"));

    // In /dev/shm: a symlink to root's object, a symlink to a device, a FIFO; each refused with a typed error.
    for (stem, target, file_type) in [
        ("link", Some(victim_path.as_path()), FileType::Symlink),
        ("dev", Some(std::path::Path::new("/dev/zero")), FileType::Symlink),
        ("fifo", None, FileType::Fifo),
    ] {
        let planted = shm_dir.join(format!("shmfusion-{stem}-{pid}"));
        let _cleanup = PathCleanup(planted.clone());
        plant_as_nobody(&planted, target);
        let name = std::ffi::CString::new(format!("/shmfusion-{stem}-{pid}")).unwrap();
        assert_not_regular(fd::posix::open::<Counter>(&name, &opts()), file_type, stem);
    }

    // A FIFO and a device of root's own are never opened either (a FIFO would block a reader, a device's open
    // can have effects), whatever their owner and mode.
    let own_fifo = shm_dir.join(format!("shmfusion-own-fifo-{pid}"));
    let _of = PathCleanup(own_fifo.clone());
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path(&own_fifo).as_ptr(), 0o600) }, 0);
    let name = std::ffi::CString::new(format!("/shmfusion-own-fifo-{pid}")).unwrap();
    assert_not_regular(
        fd::posix::open::<Counter>(&name, &opts()),
        FileType::Fifo,
        "root's FIFO",
    );
    assert_not_regular(
        fd::file::open::<Counter>(c"/dev/zero", &opts().mode(shm::Mode::from_bits_truncate(0o666))),
        FileType::CharacterDevice,
        "a device",
    );

    // In a sticky, world-writable directory (like /tmp): a symlink to root's file object, and a FIFO.
    let dir = std::env::temp_dir().join(format!("shmfusion-sticky-{pid}"));
    std::fs::create_dir(&dir).unwrap();
    let _dir = PathCleanup(dir.clone());
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let target = dir.join("calibration");
    let _t = PathCleanup(target.clone());
    let _file = fd::file::create::<Counter>(&c_path(&target), &opts()).unwrap();
    let link = dir.join("planted");
    let _pl = PathCleanup(link.clone());
    plant_as_nobody(&link, Some(&target));
    assert_not_regular(
        fd::file::open::<Counter>(&c_path(&link), &opts()),
        FileType::Symlink,
        "symlink in /tmp",
    );
    let fifo = dir.join("fifo");
    let _pf = PathCleanup(fifo.clone());
    plant_as_nobody(&fifo, None);
    assert_not_regular(
        fd::file::open::<Counter>(&c_path(&fifo), &opts()),
        FileType::Fifo,
        "FIFO in /tmp",
    );
    // The real objects still open.
    assert!(fd::posix::open::<Counter>(&victim, &opts()).is_ok());
    assert!(fd::file::open::<Counter>(&c_path(&target), &opts()).is_ok());
}

#[test]
fn posix_objects_writable_by_others_are_refused_unless_opted_in_and_shrinking_is_sigbus() {
    let _lock = fork_lock();
    let pid = std::process::id();
    // Group-writable: refused by default (a group member could truncate it under our mapping), opened on opt-in.
    let name = std::ffi::CString::new(format!("/shmfusion-group-{pid}")).unwrap();
    let shared_mode = shm::Mode::from_bits_truncate(0o660);
    let _created = fd::posix::create::<Counter>(&name, &opts().mode(shared_mode)).unwrap();
    match fd::posix::open::<Counter>(&name, &opts()) {
        Err(ObjectError::Verify(VerifyError::Mode { found, .. })) => assert_eq!(found, shared_mode),
        other => panic!("a group-writable object was trusted by default: {other:?}"),
    }
    assert!(fd::posix::open::<Counter>(&name, &opts().mode(shared_mode)).is_ok());

    // Another user's object is refused, whatever its mode.
    let foreign = std::ffi::CString::new(format!("/shmfusion-foreign-{pid}")).unwrap();
    let _f = PathCleanup(std::path::Path::new("/dev/shm").join(&foreign.to_str().unwrap()[1..]));
    let status = in_child(|| {
        if !become_nobody() {
            return 10;
        }
        match fd::posix::create::<Counter>(&foreign, &opts().lifecycle(Lifecycle::Persist)) {
            Ok(_) => 0,
            Err(_) => 11,
        }
    });
    assert_eq!(status, 0);
    assert!(matches!(
        fd::posix::open::<Counter>(&foreign, &opts()),
        Err(ObjectError::Verify(VerifyError::Owner { uid: 65534, .. }))
    ));

    // The physical limit: a same-uid peer's ftruncate kills a process that maps the object at its next access
    // (SIGBUS), and POSIX shared memory cannot be sealed against it; memfd objects can (and are).
    let name = std::ffi::CString::new(format!("/shmfusion-shrink-{pid}")).unwrap();
    let object = fd::posix::create::<Counter>(&name, &opts()).unwrap();
    let fd = rustix::shm::open(name.as_c_str(), rustix::shm::OFlags::RDWR, shm::Mode::empty()).unwrap();
    assert_eq!(
        rustix::fs::fcntl_add_seals(&fd, rustix::fs::SealFlags::SHRINK),
        Err(rustix::io::Errno::PERM),
        "POSIX shared memory cannot be sealed"
    );
    rustix::fs::ftruncate(&fd, 0).unwrap();
    let status = in_child(|| object.get().value.load(Ordering::Relaxed) as i32);
    assert_eq!(status, 128 + libc::SIGBUS, "a read after a shrink is a SIGBUS");
}

#[test]
fn an_object_of_a_named_owner_opens_only_with_that_owner() {
    let _lock = fork_lock();
    let pid = std::process::id();
    // A service running as nobody creates a POSIX and a SysV object; root opens them only by naming nobody.
    let name = std::ffi::CString::new(format!("/shmfusion-service-{pid}")).unwrap();
    let _p = PathCleanup(std::path::Path::new("/dev/shm").join(&name.to_str().unwrap()[1..]));
    let key = unique_key();
    let _k = KeyCleanup(key);
    let status = in_child(|| {
        if !become_nobody() {
            return 10;
        }
        let persist = opts().lifecycle(Lifecycle::Persist);
        match (
            fd::posix::create::<Counter>(&name, &persist),
            sysv::create::<Counter>(key, &persist),
        ) {
            (Ok(_), Ok(_)) => 0,
            _ => 11,
        }
    });
    assert_eq!(status, 0);
    assert!(matches!(
        fd::posix::open::<Counter>(&name, &opts()),
        Err(ObjectError::Verify(VerifyError::Owner { uid: 65534, .. }))
    ));
    assert!(matches!(
        sysv::open::<Counter>(key, &opts()),
        Err(ObjectError::Verify(VerifyError::Owner { uid: 65534, .. }))
    ));
    assert!(fd::posix::open::<Counter>(&name, &opts().owner(65534)).is_ok());
    assert!(sysv::open::<Counter>(key, &opts().owner(65534)).is_ok());
    // Naming an owner is a requirement, not a waiver: any other owner is refused.
    assert!(matches!(
        fd::posix::open::<Counter>(&name, &opts().owner(0)),
        Err(ObjectError::Verify(VerifyError::Owner { .. }))
    ));
}
