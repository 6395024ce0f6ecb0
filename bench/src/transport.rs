//! The transports compared: one-directional channels that carry `size`-byte messages between two processes.
//!
//! A channel is set up in the orchestrator (shared objects, file descriptors) before the two sides fork; each side
//! then takes its end ([`Channel::tx`] or [`Channel::rx`]). Every receiver copies the whole message out (into the
//! caller's buffer), and every sender copies it in, so that zero-copy transports and copying ones do the same work
//! per message.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmfusion::buffer::{BroadcastRing, Error, Latest, SpscRing};
use shmfusion::object::ObjectOptions;
use shmfusion::object::sysv::{self, SysvShared};
use shmfusion::shm::Key;

use crate::sys::{self, SharedMem};

/// The sending end of a channel, in one process.
pub trait Tx {
    fn send(&mut self, msg: &[u8]);
}

/// The receiving end of a channel, in another process.
pub trait Rx {
    fn recv(&mut self, msg: &mut [u8]);
}

/// One direction of a transport, set up before the fork.
pub trait Channel {
    fn tx(&self) -> Box<dyn Tx + '_>;
    fn rx(&self) -> Box<dyn Rx + '_>;
}

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Two processes ping-pong one shared atomic word: the cache-line transfer floor (8 B only).
    Floor,
    /// shmfusion SPSC ring, `try_push` / `try_pop` by value, busy poll.
    SpscValue,
    /// shmfusion SPSC ring, `reserve`/`commit` and `peek`/`release` copying through `SharedBytes`, busy poll.
    SpscInPlace,
    /// shmfusion SPSC ring, `push_wait` / `pop_wait` (spin, then futex).
    SpscWait,
    /// shmfusion broadcast ring, `publish_one` / `try_recv_into`, busy poll.
    Broadcast,
    /// shmfusion broadcast ring, `publish_one` / `recv_wait`.
    BroadcastWait,
    /// shmfusion latest-value slot, `write` / `read_into` on a new sequence number, busy poll.
    Latest,
    /// shmfusion latest-value slot, `write` / `wait_newer`.
    LatestWait,
    /// An anonymous pipe, blocking.
    Pipe,
    /// A Unix stream socket pair, blocking.
    UnixStream,
    /// A Unix datagram socket pair, blocking (one datagram per message; at most 64 KiB).
    UnixDgram,
    /// An eventfd (the 8-byte counter is the message), blocking.
    Eventfd,
    /// A bare shared futex word: store, `FUTEX_WAKE`; `FUTEX_WAIT` until it changes (8 B only).
    Futex,
    /// A raw shared ring (head/tail atomics, `memcpy` of the payload), busy poll: the copy floor.
    RawRing,
    /// iceoryx2 0.10 publish-subscribe, `loan_slice_uninit` + `write_from_slice`, busy `receive`.
    Iceoryx2,
    /// The same, with an iceoryx2 event service beside it: the sender notifies after each sample, the receiver
    /// sleeps in the listener's `blocking_wait` when nothing has arrived.
    Iceoryx2Event,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Floor => "floor (shared atomic)",
            Kind::SpscValue => "shmfusion spsc by value",
            Kind::SpscInPlace => "shmfusion spsc in place",
            Kind::SpscWait => "shmfusion spsc blocking",
            Kind::Broadcast => "shmfusion broadcast",
            Kind::BroadcastWait => "shmfusion broadcast blocking",
            Kind::Latest => "shmfusion latest",
            Kind::LatestWait => "shmfusion latest blocking",
            Kind::Pipe => "pipe",
            Kind::UnixStream => "unix stream",
            Kind::UnixDgram => "unix datagram",
            Kind::Eventfd => "eventfd",
            Kind::Futex => "bare futex",
            Kind::RawRing => "raw shared ring (memcpy)",
            Kind::Iceoryx2 => "iceoryx2 0.10",
            Kind::Iceoryx2Event => "iceoryx2 0.10 event",
        }
    }

    /// Whether the receiver sleeps in the kernel when nothing has arrived.
    pub fn blocking(self) -> bool {
        matches!(
            self,
            Kind::SpscWait
                | Kind::BroadcastWait
                | Kind::LatestWait
                | Kind::Pipe
                | Kind::UnixStream
                | Kind::UnixDgram
                | Kind::Eventfd
                | Kind::Futex
                | Kind::Iceoryx2Event
        )
    }

    /// Message sizes this transport carries (by-value and blocking shmfusion reads return the value on the stack,
    /// so they stop at 1 KiB and 64 KiB).
    pub fn sizes(self) -> &'static [usize] {
        const ALL: &[usize] = &[8, 64, 1024, 65536, 1 << 20];
        match self {
            Kind::Floor | Kind::Eventfd | Kind::Futex => &ALL[..1],
            Kind::SpscValue | Kind::Iceoryx2Event => &ALL[..3],
            Kind::SpscWait | Kind::BroadcastWait | Kind::LatestWait | Kind::UnixDgram => &ALL[..4],
            _ => ALL,
        }
    }
}

/// Slots of the shmfusion rings and the raw ring for each message size (the same for both, so that they are
/// compared like for like).
macro_rules! with_size {
    ($size:expr, $f:ident($($arg:expr),*)) => {
        match $size {
            8 => $f::<8, 1024>($($arg),*),
            64 => $f::<64, 512>($($arg),*),
            1024 => $f::<1024, 64>($($arg),*),
            65536 => $f::<65536, 8>($($arg),*),
            1048576 => $f::<1048576, 4>($($arg),*),
            s => return Err(format!("no ring type for {s}-byte messages")),
        }
    };
}

/// The slots a ring of `size`-byte messages has (as in [`with_size`]).
pub fn slots(size: usize) -> usize {
    match size {
        8 => 1024,
        64 => 512,
        1024 => 64,
        65536 => 8,
        _ => 4,
    }
}

/// Sets up one direction of `kind` for `size`-byte messages. `pair` is the other direction for [`Kind::Floor`]
/// (whose two directions share one word) and ignored otherwise.
pub fn channel(kind: Kind, size: usize, id: u64) -> Result<Box<dyn Channel>, String> {
    Ok(match kind {
        Kind::Floor => unreachable!("the floor is set up as a pair: floor_pair"),
        Kind::SpscValue | Kind::SpscInPlace | Kind::SpscWait => with_size!(size, spsc(kind)),
        Kind::Broadcast | Kind::BroadcastWait => with_size!(size, broadcast(kind)),
        Kind::Latest | Kind::LatestWait => with_size!(size, latest(kind)),
        Kind::Pipe => Box::new(FdChannel::pipe()?),
        Kind::UnixStream => Box::new(FdChannel::socketpair(libc::SOCK_STREAM)?),
        Kind::UnixDgram => Box::new(FdChannel::socketpair(libc::SOCK_DGRAM)?),
        Kind::Eventfd => Box::new(FdChannel::eventfd()?),
        Kind::Futex => Box::new(FutexChannel(SharedMem::new(4096).map_err(|e| e.to_string())?)),
        Kind::RawRing => Box::new(RawRing::new(size, slots(size))?),
        Kind::Iceoryx2 => iceoryx2_channel(size, id, false)?,
        Kind::Iceoryx2Event => iceoryx2_channel(size, id, true)?,
    })
}

#[cfg(feature = "iceoryx2")]
fn iceoryx2_channel(size: usize, id: u64, event: bool) -> Result<Box<dyn Channel>, String> {
    Ok(Box::new(crate::iox::IoxChannel::new(size, id, event)))
}

#[cfg(not(feature = "iceoryx2"))]
fn iceoryx2_channel(_: usize, _: u64, _: bool) -> Result<Box<dyn Channel>, String> {
    Err("built without the iceoryx2 feature".into())
}

/// A new System V object of type `S` under a key of our own (the next free one after a pid-derived base).
pub fn create_object<S: shmfusion::object::SharedState>() -> Result<SysvShared<S>, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = 0x5b00_0000 | ((std::process::id() as i32 & 0x3fff) << 10);
    let mut last = String::new();
    for _ in 0..64 {
        let k = NEXT.fetch_add(1, Ordering::Relaxed) as i32 & 0x3ff;
        match sysv::create::<S>(Key::from_raw(base | k), &ObjectOptions::new()) {
            Ok(o) => return Ok(o),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("cannot create a System V object: {last}"))
}

fn unexpected(e: Error) -> ! {
    panic!("unexpected buffer error: {e}")
}

// ---------------------------------------------------------------------------------------------------------------
// shmfusion

struct Spsc<const S: usize, const N: usize> {
    obj: SysvShared<SpscRing<[u8; S], N>>,
    kind: Kind,
}

fn spsc<const S: usize, const N: usize>(kind: Kind) -> Box<dyn Channel> {
    Box::new(Spsc::<S, N> {
        obj: create_object().expect("spsc ring"),
        kind,
    })
}

impl<const S: usize, const N: usize> Channel for Spsc<S, N> {
    fn tx(&self) -> Box<dyn Tx + '_> {
        let p = self.obj.get().producer().unwrap_or_else(|e| unexpected(e));
        match self.kind {
            Kind::SpscInPlace => Box::new(SpscInPlaceTx(p)),
            Kind::SpscWait => Box::new(SpscWaitTx(p)),
            _ => Box::new(SpscValueTx(p)),
        }
    }
    fn rx(&self) -> Box<dyn Rx + '_> {
        let c = self.obj.get().consumer().unwrap_or_else(|e| unexpected(e));
        match self.kind {
            Kind::SpscInPlace => Box::new(SpscInPlaceRx(c)),
            Kind::SpscWait => Box::new(SpscWaitRx(c)),
            _ => Box::new(SpscValueRx(c)),
        }
    }
}

use shmfusion::buffer::{Consumer, Producer};

struct SpscValueTx<'a, const S: usize, const N: usize>(Producer<'a, [u8; S], N>);
impl<const S: usize, const N: usize> Tx for SpscValueTx<'_, S, N> {
    fn send(&mut self, msg: &[u8]) {
        let v: [u8; S] = msg.try_into().expect("message size");
        loop {
            match self.0.try_push(v) {
                Ok(()) => return,
                Err(Error::Full) => std::hint::spin_loop(),
                Err(e) => unexpected(e),
            }
        }
    }
}

struct SpscValueRx<'a, const S: usize, const N: usize>(Consumer<'a, [u8; S], N>);
impl<const S: usize, const N: usize> Rx for SpscValueRx<'_, S, N> {
    fn recv(&mut self, msg: &mut [u8]) {
        loop {
            match self.0.try_pop() {
                Ok(v) => return msg.copy_from_slice(&v),
                Err(Error::Empty) => std::hint::spin_loop(),
                Err(e) => unexpected(e),
            }
        }
    }
}

struct SpscInPlaceTx<'a, const S: usize, const N: usize>(Producer<'a, [u8; S], N>);
impl<const S: usize, const N: usize> Tx for SpscInPlaceTx<'_, S, N> {
    fn send(&mut self, msg: &[u8]) {
        loop {
            match self.0.reserve() {
                Ok(mut slot) => {
                    slot.bytes().store(0, msg);
                    return slot.commit();
                }
                Err(Error::Full) => std::hint::spin_loop(),
                Err(e) => unexpected(e),
            }
        }
    }
}

struct SpscInPlaceRx<'a, const S: usize, const N: usize>(Consumer<'a, [u8; S], N>);
impl<const S: usize, const N: usize> Rx for SpscInPlaceRx<'_, S, N> {
    fn recv(&mut self, msg: &mut [u8]) {
        loop {
            match self.0.peek() {
                Ok(slot) => {
                    slot.bytes().load(0, msg);
                    return slot.release();
                }
                Err(Error::Empty) => std::hint::spin_loop(),
                Err(e) => unexpected(e),
            }
        }
    }
}

struct SpscWaitTx<'a, const S: usize, const N: usize>(Producer<'a, [u8; S], N>);
impl<const S: usize, const N: usize> Tx for SpscWaitTx<'_, S, N> {
    fn send(&mut self, msg: &[u8]) {
        let v: [u8; S] = msg.try_into().expect("message size");
        self.0.push_wait(v, None).unwrap_or_else(|e| unexpected(e));
    }
}

struct SpscWaitRx<'a, const S: usize, const N: usize>(Consumer<'a, [u8; S], N>);
impl<const S: usize, const N: usize> Rx for SpscWaitRx<'_, S, N> {
    fn recv(&mut self, msg: &mut [u8]) {
        let v = self.0.pop_wait(None).unwrap_or_else(|e| unexpected(e));
        msg.copy_from_slice(&v);
    }
}

struct Bcast<const S: usize, const N: usize> {
    obj: SysvShared<BroadcastRing<[u8; S], N>>,
    wait: bool,
}

fn broadcast<const S: usize, const N: usize>(kind: Kind) -> Box<dyn Channel> {
    Box::new(Bcast::<S, N> {
        obj: create_object().expect("broadcast ring"),
        wait: kind == Kind::BroadcastWait,
    })
}

impl<const S: usize, const N: usize> Channel for Bcast<S, N> {
    fn tx(&self) -> Box<dyn Tx + '_> {
        let mut w = self.obj.get().writer().unwrap_or_else(|e| unexpected(e));
        Box::new(move |msg: &[u8]| {
            w.publish_one(bytemuck_array::<S>(msg));
        })
    }
    fn rx(&self) -> Box<dyn Rx + '_> {
        // A fresh ring: reading from position 0 sees the first message even if it was published before we started.
        let mut r = self.obj.get().reader_at(0);
        let wait = self.wait;
        rx_fn(move |msg: &mut [u8]| {
            if wait {
                let (v, _) = r.recv_wait(None).unwrap_or_else(|e| unexpected(e));
                return msg.copy_from_slice(&v);
            }
            loop {
                match r.try_recv_into(bytemuck_array_mut::<S>(msg)) {
                    Ok(_) => return,
                    Err(Error::Empty) => std::hint::spin_loop(),
                    Err(e) => unexpected(e),
                }
            }
        })
    }
}

struct Slot<const S: usize> {
    obj: SysvShared<Latest<[u8; S]>>,
    wait: bool,
}

fn latest<const S: usize, const N: usize>(kind: Kind) -> Box<dyn Channel> {
    Box::new(Slot::<S> {
        obj: create_object().expect("latest slot"),
        wait: kind == Kind::LatestWait,
    })
}

impl<const S: usize> Channel for Slot<S> {
    fn tx(&self) -> Box<dyn Tx + '_> {
        let mut w = self.obj.get().writer().unwrap_or_else(|e| unexpected(e));
        Box::new(move |msg: &[u8]| {
            w.write(bytemuck_array::<S>(msg));
        })
    }
    fn rx(&self) -> Box<dyn Rx + '_> {
        let slot = self.obj.get();
        let wait = self.wait;
        let mut seen = 0u64;
        rx_fn(move |msg: &mut [u8]| {
            if wait {
                let (v, seq) = slot.wait_newer(seen, None).unwrap_or_else(|e| unexpected(e));
                seen = seq;
                return msg.copy_from_slice(&v);
            }
            loop {
                if slot.sequence() > seen {
                    match slot.read_into(bytemuck_array_mut::<S>(msg)) {
                        Ok(seq) => {
                            seen = seq;
                            return;
                        }
                        Err(Error::Contended) => {}
                        Err(e) => unexpected(e),
                    }
                }
                std::hint::spin_loop();
            }
        })
    }
}

fn bytemuck_array<const S: usize>(msg: &[u8]) -> &[u8; S] {
    msg.try_into().expect("message size")
}

fn bytemuck_array_mut<const S: usize>(msg: &mut [u8]) -> &mut [u8; S] {
    msg.try_into().expect("message size")
}

impl<F: FnMut(&[u8])> Tx for F {
    fn send(&mut self, msg: &[u8]) {
        self(msg)
    }
}

/// Wraps a receiving closure (a separate type: a closure cannot implement both `Tx` and `Rx` blanket impls).
struct RxFn<F>(F);
impl<F: FnMut(&mut [u8])> Rx for RxFn<F> {
    fn recv(&mut self, msg: &mut [u8]) {
        (self.0)(msg)
    }
}

fn rx_fn<'a>(f: impl FnMut(&mut [u8]) + 'a) -> Box<dyn Rx + 'a> {
    Box::new(RxFn(f))
}

// ---------------------------------------------------------------------------------------------------------------
// rtrb, between two threads of one process: 8-byte messages (the token) through the same sides as the others.

/// One direction of an `rtrb` ring of 8-byte messages; each end is taken once, by the thread that uses it.
pub struct RtrbChannel {
    tx: std::sync::Mutex<Option<rtrb::Producer<u64>>>,
    rx: std::sync::Mutex<Option<rtrb::Consumer<u64>>>,
}

impl RtrbChannel {
    pub fn new() -> Self {
        let (tx, rx) = rtrb::RingBuffer::new(slots(8));
        Self {
            tx: std::sync::Mutex::new(Some(tx)),
            rx: std::sync::Mutex::new(Some(rx)),
        }
    }
}

/// An end's state on lines of its own: the two ends' cached positions, written on every message by two threads of
/// one process, must not share a line through the allocator (processes cannot share private memory).
#[repr(align(128))]
struct Lines<T>(T);

impl<T> Lines<T> {
    /// The state (a method, so that a closure captures the whole aligned value, not just its field).
    fn get(&mut self) -> &mut T {
        &mut self.0
    }
}

impl Channel for RtrbChannel {
    fn tx(&self) -> Box<dyn Tx + '_> {
        let mut p = Lines(
            self.tx
                .lock()
                .expect("rtrb producer")
                .take()
                .expect("rtrb producer taken twice"),
        );
        Box::new(move |msg: &[u8]| {
            let v = token(msg);
            while p.get().push(v).is_err() {
                std::hint::spin_loop();
            }
        })
    }
    fn rx(&self) -> Box<dyn Rx + '_> {
        let mut c = Lines(
            self.rx
                .lock()
                .expect("rtrb consumer")
                .take()
                .expect("rtrb consumer taken twice"),
        );
        rx_fn(move |msg: &mut [u8]| {
            loop {
                if let Ok(v) = c.get().pop() {
                    return set_token(msg, v);
                }
                std::hint::spin_loop();
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The floor: one shared word carries both directions (odd: ping, even: pong).

/// Both directions of a ping-pong.
pub type Pair = (Box<dyn Channel>, Box<dyn Channel>);

/// Both directions of the floor case over one shared 64-bit word.
pub fn floor_pair() -> Result<Pair, String> {
    let mem = std::rc::Rc::new(SharedMem::new(4096).map_err(|e| e.to_string())?);
    Ok((Box::new(Floor(mem.clone(), 1)), Box::new(Floor(mem, 2))))
}

/// `Floor(word, 1)` carries pings (`2t + 1`), `Floor(word, 2)` pongs (`2t + 2`), `t` being the message token.
struct Floor(std::rc::Rc<SharedMem>, u64);

impl Channel for Floor {
    fn tx(&self) -> Box<dyn Tx + '_> {
        let (w, add) = (self.0.word(0), self.1);
        Box::new(move |msg: &[u8]| w.store(2 * token(msg) + add, Ordering::Release))
    }
    fn rx(&self) -> Box<dyn Rx + '_> {
        let (w, add) = (self.0.word(0), self.1);
        let mut last = 0u64;
        rx_fn(move |msg: &mut [u8]| {
            loop {
                let v = w.load(Ordering::Acquire);
                if v != last && v >= add && (v - add) % 2 == 0 {
                    last = v;
                    return set_token(msg, (v - add) / 2);
                }
                std::hint::spin_loop();
            }
        })
    }
}

/// The first 8 bytes of a message: its token (a sequence number, or a send time).
pub fn token(msg: &[u8]) -> u64 {
    u64::from_ne_bytes(msg[..8].try_into().expect("messages are at least 8 bytes"))
}

pub fn set_token(msg: &mut [u8], t: u64) {
    msg[..8].copy_from_slice(&t.to_ne_bytes());
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel transports.

struct FdChannel {
    read: RawFd,
    write: RawFd,
    eventfd: bool,
}

fn check(r: libc::c_int) -> Result<libc::c_int, String> {
    if r < 0 {
        Err(io::Error::last_os_error().to_string())
    } else {
        Ok(r)
    }
}

impl FdChannel {
    fn pipe() -> Result<Self, String> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        check(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        Ok(Self {
            read: fds[0],
            write: fds[1],
            eventfd: false,
        })
    }

    fn socketpair(ty: libc::c_int) -> Result<Self, String> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        check(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
        if ty == libc::SOCK_DGRAM {
            // 64 KiB datagrams need more than the default send buffer on some kernels.
            let size: libc::c_int = 1 << 20;
            for fd in fds {
                // SAFETY: a valid socket and a valid option value of the size given.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_SNDBUF,
                        (&size as *const libc::c_int).cast(),
                        4,
                    )
                };
            }
        }
        Ok(Self {
            read: fds[0],
            write: fds[1],
            eventfd: false,
        })
    }

    fn eventfd() -> Result<Self, String> {
        // SAFETY: plain syscall.
        let fd = check(unsafe { libc::eventfd(0, 0) })?;
        Ok(Self {
            read: fd,
            write: fd,
            eventfd: true,
        })
    }
}

impl Drop for FdChannel {
    fn drop(&mut self) {
        // SAFETY: our own descriptors, closed once.
        unsafe {
            libc::close(self.read);
            if self.write != self.read {
                libc::close(self.write);
            }
        }
    }
}

impl Channel for FdChannel {
    fn tx(&self) -> Box<dyn Tx + '_> {
        let (fd, eventfd) = (self.write, self.eventfd);
        Box::new(move |msg: &[u8]| {
            if eventfd {
                // The counter carries the token (+1: a zero write would not wake the reader).
                let v = token(msg) + 1;
                // SAFETY: 8 valid bytes.
                let n = unsafe { libc::write(fd, (&v as *const u64).cast(), 8) };
                assert_eq!(n, 8, "eventfd write: {}", io::Error::last_os_error());
                return;
            }
            let mut done = 0;
            while done < msg.len() {
                // SAFETY: the unsent rest of `msg`.
                let n = unsafe { libc::write(fd, msg[done..].as_ptr().cast(), msg.len() - done) };
                assert!(n > 0, "write: {}", io::Error::last_os_error());
                done += n as usize;
            }
        })
    }
    fn rx(&self) -> Box<dyn Rx + '_> {
        let (fd, eventfd) = (self.read, self.eventfd);
        rx_fn(move |msg: &mut [u8]| {
            if eventfd {
                let mut v = 0u64;
                // SAFETY: 8 writable bytes.
                let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
                assert_eq!(n, 8, "eventfd read: {}", io::Error::last_os_error());
                return set_token(msg, v - 1);
            }
            let mut done = 0;
            while done < msg.len() {
                // SAFETY: the unfilled rest of `msg`.
                let n = unsafe { libc::read(fd, msg[done..].as_mut_ptr().cast(), msg.len() - done) };
                assert!(n > 0, "read: {}", io::Error::last_os_error());
                done += n as usize;
            }
        })
    }
}

/// A bare futex word per direction: the sender stores the token (a 64-bit word beside the futex word), bumps the
/// futex word and wakes; the receiver waits in `FUTEX_WAIT` until the futex word changes.
struct FutexChannel(SharedMem);

impl Channel for FutexChannel {
    fn tx(&self) -> Box<dyn Tx + '_> {
        let (word, tok) = (self.0.word32(0), self.0.word(1));
        Box::new(move |msg: &[u8]| {
            tok.store(token(msg), Ordering::Relaxed);
            word.fetch_add(1, Ordering::Release);
            sys::futex_wake(word);
        })
    }
    fn rx(&self) -> Box<dyn Rx + '_> {
        let (word, tok) = (self.0.word32(0), self.0.word(1));
        let mut last = 0u32;
        rx_fn(move |msg: &mut [u8]| {
            loop {
                let v = word.load(Ordering::Acquire);
                if v != last {
                    last = v;
                    return set_token(msg, tok.load(Ordering::Relaxed));
                }
                sys::futex_wait(word, v);
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The copy floor: a raw shared ring, plain memcpy of the payload between acquire/release index updates.

struct RawRing {
    mem: SharedMem,
    size: usize,
    slots: usize,
}

/// Head and tail each on their own 128-byte line; slots from byte 256.
const RAW_DATA: usize = 256;

impl RawRing {
    fn new(size: usize, slots: usize) -> Result<Self, String> {
        Ok(Self {
            mem: SharedMem::new(RAW_DATA + size * slots).map_err(|e| e.to_string())?,
            size,
            slots,
        })
    }
}

impl Channel for RawRing {
    fn tx(&self) -> Box<dyn Tx + '_> {
        let (head, tail) = (self.mem.word(0), self.mem.word(16));
        let (base, size, slots) = (self.mem.as_ptr(), self.size, self.slots as u64);
        let mut next = 0u64;
        Box::new(move |msg: &[u8]| {
            while next - tail.load(Ordering::Acquire) >= slots {
                std::hint::spin_loop();
            }
            // SAFETY: the slot is inside the mapping, and the consumer does not touch it until `head` moves past it
            // (the acquire load above saw it release the slot).
            unsafe {
                let dst = base.add(RAW_DATA + (next % slots) as usize * size);
                std::ptr::copy_nonoverlapping(msg.as_ptr(), dst, size);
            }
            next += 1;
            head.store(next, Ordering::Release);
        })
    }
    fn rx(&self) -> Box<dyn Rx + '_> {
        let (head, tail) = (self.mem.word(0), self.mem.word(16));
        let (base, size, slots) = (self.mem.as_ptr(), self.size, self.slots as u64);
        let mut next = 0u64;
        rx_fn(move |msg: &mut [u8]| {
            while head.load(Ordering::Acquire) == next {
                std::hint::spin_loop();
            }
            // SAFETY: the producer published this slot (release store of `head`, seen by the acquire load above)
            // and does not reuse it until `tail` moves past it.
            unsafe {
                let src = base.add(RAW_DATA + (next % slots) as usize * size);
                std::ptr::copy_nonoverlapping(src, msg.as_mut_ptr(), size);
            }
            next += 1;
            tail.store(next, Ordering::Release);
        })
    }
}

/// Sleeps for the gap between messages in the wake-up measurement (the receiver falls asleep meanwhile).
pub fn gap() {
    std::thread::sleep(Duration::from_micros(200));
}
