//! Looking at a buffer without touching it: state and samples read out of a read-only mapping.
//!
//! An operator's tool (`shmfusion list`, `inspect`, `watch`, `record`) must see what is in a ring or a slot
//! without claiming a role, without attaching read-write and without knowing the element type at compile time.
//! [`BufferView`] does that on a byte view of the payload (for example [`Attachment::bytes`] of a `SHM_RDONLY`
//! attachment): it recognises the kind from the header, checks that the payload size is exactly what that kind
//! with that capacity and element size occupies, and reads positions, role holders and elements with the same
//! validation protocol the typed readers use.
//!
//! Every load is a `Relaxed` load of an [`AtomicU8`], ordered with acquire fences: byte loads are atomic on every
//! target and never need write access (64-bit atomic loads on 32-bit targets can be emulated with instructions
//! that write), and a multi-byte value torn by a concurrent writer is caught by the same sequence checks that
//! catch torn elements. Nothing found in the mapping can make a view panic, read out of bounds or loop.
//!
//! [`Attachment::bytes`]: crate::shm::Attachment::bytes

use core::sync::atomic::{AtomicU8, Ordering, fence};

use super::{
    BroadcastLayout, BroadcastRing, Error, Latest, LatestLayout, SpscLayout, SpscRing, broadcast, latest, ring,
};
use crate::liveness::RoleRecord;
use crate::object::{SharedState, Snapshot, fnv1a};

/// The kinds of buffer this crate places in shared objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BufferKind {
    /// [`SpscRing`].
    SpscRing,
    /// [`Latest`].
    Latest,
    /// [`BroadcastRing`].
    BroadcastRing,
}

impl BufferKind {
    /// Every kind.
    pub const ALL: [BufferKind; 3] = [BufferKind::SpscRing, BufferKind::Latest, BufferKind::BroadcastRing];

    /// The kind's stable name, its [`SharedState::KIND`].
    pub const fn name(self) -> &'static str {
        match self {
            BufferKind::SpscRing => <SpscRing<u64, 1> as SharedState>::KIND,
            BufferKind::Latest => <Latest<u64> as SharedState>::KIND,
            BufferKind::BroadcastRing => <BroadcastRing<u64, 1> as SharedState>::KIND,
        }
    }

    /// The kind whose name hashes to `kind_hash` (a header's [`Snapshot::kind_hash`]).
    pub fn from_kind_hash(kind_hash: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| fnv1a(k.name().as_bytes()) == kind_hash)
    }
}

/// Why a payload cannot be viewed as a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InspectError {
    /// The header names no buffer kind of this crate (a user-defined [`SharedState`]).
    UnknownKind,
    /// Capacity, element size and payload size do not fit together for this kind (corrupt, or a buffer built by
    /// another version of this crate).
    Layout,
    /// The byte view is shorter than the payload size the header claims.
    Truncated,
}

impl core::fmt::Display for InspectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            InspectError::UnknownKind => "not a buffer kind of this library",
            InspectError::Layout => "capacity, element size and payload size do not match the kind's layout",
            InspectError::Truncated => "mapping shorter than the payload",
        })
    }
}

impl core::error::Error for InspectError {}

/// A buffer's state at one instant, as far as shared memory tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferState {
    /// Samples written so far: the ring's tail (publish count), or the latest slot's sequence count.
    pub written: u64,
    /// Samples a reader could still get: `tail - head` for an SPSC ring, `min(tail, capacity)` for a broadcast
    /// ring, 0 or 1 for a latest slot. Saturates when positions are inconsistent.
    pub fill: u64,
    /// The SPSC consumer's position (samples popped); `None` for other kinds.
    pub head: Option<u64>,
    /// The writer (producer) role: its words as read; [`RoleRecord::holder`] judges the holder.
    pub writer: RoleRecord,
    /// The SPSC consumer role (all-zero, free, for other kinds).
    pub consumer: RoleRecord,
}

/// A read-only view of a buffer's payload bytes; see the module docs.
#[derive(Clone, Copy, Debug)]
pub struct BufferView<'a> {
    bytes: &'a [AtomicU8],
    kind: BufferKind,
    capacity: u64,
    element_size: usize,
    /// `element_size` rounded up to 8: the storage of one element.
    cell: usize,
}

impl<'a> BufferView<'a> {
    /// Views `payload` (the bytes from the header's payload offset on) as the buffer the header describes.
    ///
    /// # Errors
    /// [`InspectError::UnknownKind`] for a kind that is not a buffer; [`InspectError::Layout`] when the header's
    /// capacity, element size and payload size are not exactly those of that kind (a capacity that is not a power
    /// of two, an element size whose storage would not give the payload size, ...); [`InspectError::Truncated`]
    /// when `payload` is shorter than the payload size.
    pub fn new(payload: &'a [AtomicU8], header: &Snapshot) -> Result<Self, InspectError> {
        let kind = BufferKind::from_kind_hash(header.kind_hash).ok_or(InspectError::UnknownKind)?;
        let element_size = usize::try_from(header.element_size).map_err(|_| InspectError::Layout)?;
        let capacity = usize::try_from(header.capacity).map_err(|_| InspectError::Layout)?;
        let cell = element_size.checked_next_multiple_of(8).ok_or(InspectError::Layout)?;
        // The runtime layouts place every byte as the typed buffers do; the element alignment never moves one
        // (slots are whole 8-byte units), so 1 stands for any.
        let size = match kind {
            BufferKind::SpscRing => SpscLayout::new(element_size, 1, capacity).map(|l| l.payload()),
            BufferKind::BroadcastRing => BroadcastLayout::new(element_size, 1, capacity).map(|l| l.payload()),
            BufferKind::Latest if capacity != 1 => Err(super::LayoutError::Capacity),
            BufferKind::Latest => LatestLayout::new(element_size, 1).map(|l| l.payload()),
        };
        if size.map(|desc| desc.size).ok() != Some(header.payload_size) {
            return Err(InspectError::Layout);
        }
        let bytes = payload
            .get(..header.payload_size as usize)
            .ok_or(InspectError::Truncated)?;
        Ok(Self {
            bytes,
            kind,
            capacity: capacity as u64,
            element_size,
            cell,
        })
    }

    /// The buffer's kind.
    pub fn kind(&self) -> BufferKind {
        self.kind
    }

    /// The number of elements it holds.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The size of one element in bytes.
    pub fn element_size(&self) -> usize {
        self.element_size
    }

    /// A `u64` at `offset`, byte by byte (offsets are computed from a validated layout and always in bounds;
    /// an impossible out-of-bounds offset reads as 0 rather than panicking).
    fn u64_at(&self, offset: usize) -> u64 {
        u64::from_ne_bytes(self.array_at(offset))
    }

    fn array_at<const L: usize>(&self, offset: usize) -> [u8; L] {
        let mut b = [0u8; L];
        if let Some(src) = self.bytes.get(offset..offset.saturating_add(L)) {
            for (d, s) in b.iter_mut().zip(src) {
                *d = s.load(Ordering::Relaxed);
            }
        }
        b
    }

    fn role_at(&self, offset: usize) -> RoleRecord {
        RoleRecord::read_with(
            |o| self.u64_at(offset + o),
            |o| u32::from_ne_bytes(self.array_at(offset + o)),
        )
    }

    /// Copies `out.len()` (at most the element size) bytes of the element stored at `offset`.
    fn copy_at(&self, offset: usize, out: &mut [u8]) {
        let n = out.len().min(self.element_size);
        if let Some(src) = self.bytes.get(offset..offset.saturating_add(n)) {
            for (d, s) in out.iter_mut().zip(src) {
                *d = s.load(Ordering::Relaxed);
            }
        }
    }

    /// The buffer's positions and role holders now.
    pub fn state(&self) -> BufferState {
        match self.kind {
            BufferKind::SpscRing => {
                let head = self.u64_at(ring::layout::HEAD);
                let tail = self.u64_at(ring::layout::TAIL);
                fence(Ordering::Acquire);
                BufferState {
                    written: tail,
                    fill: tail.saturating_sub(head).min(self.capacity),
                    head: Some(head),
                    writer: self.role_at(ring::layout::PRODUCER_ROLE),
                    consumer: self.role_at(ring::layout::CONSUMER_ROLE),
                }
            }
            BufferKind::BroadcastRing => {
                let tail = self.u64_at(broadcast::layout::TAIL);
                fence(Ordering::Acquire);
                BufferState {
                    written: tail,
                    fill: tail.min(self.capacity),
                    head: None,
                    writer: self.role_at(broadcast::layout::ROLE),
                    consumer: RoleRecord::default(),
                }
            }
            BufferKind::Latest => {
                let seq = self.u64_at(latest::layout::SEQ);
                fence(Ordering::Acquire);
                BufferState {
                    written: seq,
                    fill: u64::from(seq > 0),
                    head: None,
                    writer: self.role_at(latest::layout::role(self.cell)),
                    consumer: RoleRecord::default(),
                }
            }
        }
    }

    /// Copies element `position` (0 for the first sample ever written) into `out` (up to the element size;
    /// the rest of `out` is left alone), checking that it is complete and was not overwritten during the copy.
    /// A latest-value slot holds only the element at position `written - 1`.
    ///
    /// # Errors
    /// [`Error::Empty`] if the position has not been written yet (or, for an SPSC ring, was consumed already);
    /// [`Error::Lagged`] if it has been overwritten (with how many positions it is behind the oldest one still
    /// held); [`Error::Contended`] if a writer changed it during the copy; [`Error::Corrupt`] if the positions in
    /// the mapping cannot be real (as the typed readers: an SPSC ring holding more than its capacity or a
    /// consumer ahead of its producer, a broadcast tail beyond [`POSITION_LIMIT`](super::POSITION_LIMIT)), where
    /// the slot could hold a sample of another position.
    pub fn read(&self, position: u64, out: &mut [u8]) -> Result<(), Error> {
        let state = self.state();
        let tail = state.written;
        match (self.kind, state.head) {
            (BufferKind::SpscRing, Some(head)) => {
                super::ring::check(head, tail, self.capacity)?;
            }
            // Beyond the limit, `2 (p + 1)` wraps and a slot stamp can name two positions.
            (BufferKind::BroadcastRing, _) if tail > super::POSITION_LIMIT => {
                return Err(Error::Corrupt { head: position, tail });
            }
            _ => {}
        }
        if position >= state.written {
            return Err(Error::Empty);
        }
        let oldest = match self.kind {
            BufferKind::SpscRing => state.head.unwrap_or(0),
            BufferKind::BroadcastRing => state.written.saturating_sub(self.capacity),
            BufferKind::Latest => state.written - 1,
        };
        if position < oldest {
            return Err(match self.kind {
                BufferKind::SpscRing => Error::Empty,
                _ => Error::Lagged(oldest - position),
            });
        }
        let slot = (position & (self.capacity - 1)) as usize;
        match self.kind {
            BufferKind::SpscRing => {
                self.copy_at(ring::layout::SLOTS + slot * self.cell, out);
                fence(Ordering::Acquire);
                // The producer reuses a slot only after the consumer has moved past it.
                let head = self.u64_at(ring::layout::HEAD);
                if head > position {
                    return Err(Error::Contended);
                }
            }
            BufferKind::BroadcastRing => {
                let at = broadcast::layout::SLOTS + slot * (broadcast::layout::SLOT_DATA + self.cell);
                let expected = position.wrapping_add(1).wrapping_mul(2);
                let s0 = self.u64_at(at + broadcast::layout::SLOT_SEQ);
                fence(Ordering::Acquire);
                if s0 != expected {
                    return Err(if s0 > expected {
                        Error::Lagged(1)
                    } else {
                        Error::Contended
                    });
                }
                self.copy_at(at + broadcast::layout::SLOT_DATA, out);
                fence(Ordering::Acquire);
                if self.u64_at(at + broadcast::layout::SLOT_SEQ) != s0 {
                    return Err(Error::Contended);
                }
            }
            BufferKind::Latest => {
                let copy = latest::layout::COPIES + (state.written & 1) as usize * self.cell;
                self.copy_at(copy, out);
                fence(Ordering::Acquire);
                if self.u64_at(latest::layout::SEQ) != state.written {
                    return Err(Error::Contended);
                }
            }
        }
        Ok(())
    }
}

// These tests read real SysV objects (shmget/shmat and the liveness anchor are inline-assembly system calls,
// which Miri cannot run); the byte-level reads they exercise are the same atomic loads Miri checks elsewhere.
#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use crate::object::{ObjectOptions, sysv};
    use crate::shm::{AttachOptions, Key};

    /// The payload bytes of a read-only attachment of the object with this id, with its header snapshot.
    fn read_only<S: SharedState>(object: &sysv::SysvShared<S>) -> (crate::shm::Attachment, Snapshot) {
        let map = object.region().id().attach(AttachOptions::new().read_only()).unwrap();
        assert!(map.is_read_only());
        let snap = object.header().snapshot();
        (map, snap)
    }

    fn view<'a>(map: &'a crate::shm::Attachment, snap: &Snapshot) -> Result<BufferView<'a>, InspectError> {
        BufferView::new(&map.bytes()[snap.payload_offset as usize..], snap)
    }

    fn private<S: SharedState>() -> sysv::SysvShared<S> {
        sysv::create::<S>(Key::PRIVATE, &ObjectOptions::new()).unwrap()
    }

    #[test]
    fn broadcast_ring_positions_elements_and_writer() {
        let object = private::<BroadcastRing<[u8; 12], 4>>();
        let (map, snap) = read_only(&object);
        let v = view(&map, &snap).unwrap();
        assert_eq!(
            (v.kind(), v.capacity(), v.element_size()),
            (BufferKind::BroadcastRing, 4, 12)
        );
        assert_eq!(v.state().writer.holder(), None);
        let mut out = [0u8; 12];
        assert_eq!(v.read(0, &mut out), Err(Error::Empty));
        let mut w = object.get().writer().unwrap();
        for i in 0..6u8 {
            w.publish_one(&[i; 12]);
        }
        let s = v.state();
        assert_eq!(
            (s.written, s.fill, s.writer.holder().and_then(|h| h.pid)),
            (6, 4, Some(std::process::id()))
        );
        assert_eq!(s.writer.liveness(), Some(crate::liveness::Liveness::Alive));
        v.read(5, &mut out).unwrap();
        assert_eq!(out, [5; 12]);
        v.read(2, &mut out).unwrap();
        assert_eq!(out, [2; 12]);
        assert_eq!(v.read(1, &mut out), Err(Error::Lagged(1)));
        assert_eq!(v.read(6, &mut out), Err(Error::Empty));
        drop(w);
        assert_eq!(v.state().writer.holder(), None);
        assert!(v.state().writer.is_closed());
    }

    #[test]
    fn latest_slot() {
        let object = private::<Latest<[u64; 3]>>();
        let (map, snap) = read_only(&object);
        let v = view(&map, &snap).unwrap();
        assert_eq!((v.kind(), v.state().fill), (BufferKind::Latest, 0));
        let mut w = object.get().writer().unwrap();
        w.write(&[1, 2, 3]);
        w.write(&[4, 5, 6]);
        let s = v.state();
        assert_eq!(
            (s.written, s.fill, s.writer.holder().and_then(|h| h.pid)),
            (2, 1, Some(std::process::id()))
        );
        let mut out = [0u8; 24];
        v.read(1, &mut out).unwrap();
        assert_eq!(out, bytemuck::cast::<[u64; 3], [u8; 24]>([4, 5, 6]));
        assert_eq!(v.read(0, &mut out), Err(Error::Lagged(1)));
    }

    #[test]
    fn spsc_ring_fill_and_roles() {
        let object = private::<SpscRing<u32, 8>>();
        let (map, snap) = read_only(&object);
        let v = view(&map, &snap).unwrap();
        let mut p = object.get().producer().unwrap();
        let mut c = object.get().consumer().unwrap();
        for i in 0..5u32 {
            p.try_push(i).unwrap();
        }
        c.try_pop().unwrap();
        let s = v.state();
        assert_eq!((s.written, s.head, s.fill), (5, Some(1), 4));
        assert!(s.writer.holder().is_some() && s.consumer.holder().is_some());
        let mut out = [0u8; 4];
        v.read(4, &mut out).unwrap();
        assert_eq!(u32::from_ne_bytes(out), 4);
        assert_eq!(v.read(0, &mut out), Err(Error::Empty));
    }

    /// Stores `value` over the payload word at `offset`, as a hostile peer would.
    fn plant<S: SharedState>(object: &sysv::SysvShared<S>, offset: usize, value: u64) {
        let word = object
            .raw()
            .payload()
            .as_ptr()
            .wrapping_add(offset)
            .cast::<core::sync::atomic::AtomicU64>();
        // SAFETY: `offset` is the 8-aligned offset of a position word inside the live payload, which every
        // process accesses atomically only.
        unsafe { (*word).store(value, Ordering::Relaxed) };
    }

    #[test]
    fn a_broadcast_tail_beyond_the_position_limit_is_corrupt_not_an_old_sample_under_a_new_position() {
        let object = private::<BroadcastRing<u64, 4>>();
        let (map, snap) = read_only(&object);
        let v = view(&map, &snap).unwrap();
        let mut w = object.get().writer().unwrap();
        for i in 0..3u64 {
            w.publish_one(&(100 + i));
        }
        // Past the limit, `2 (p + 1)` wraps: position 2^63 + 1 would match the stamp of position 1.
        let tail = (1u64 << 63) + 3;
        plant(&object, broadcast::layout::TAIL, tail);
        let mut out = [0u8; 8];
        let position = (1u64 << 63) + 1;
        assert_eq!(v.read(position, &mut out), Err(Error::Corrupt { head: position, tail }));
        plant(&object, broadcast::layout::TAIL, 3);
        v.read(1, &mut out).unwrap();
        assert_eq!(u64::from_ne_bytes(out), 101);
    }

    #[test]
    fn spsc_positions_that_cannot_both_be_right_are_corrupt() {
        let object = private::<SpscRing<u32, 4>>();
        let (map, snap) = read_only(&object);
        let v = view(&map, &snap).unwrap();
        let mut p = object.get().producer().unwrap();
        for i in 0..4u32 {
            p.try_push(i).unwrap();
        }
        let mut out = [0u8; 4];
        // Six published and none consumed in a ring of four: position 5 would be slot 1, which holds sample 1.
        plant(&object, ring::layout::TAIL, 6);
        assert_eq!(v.read(5, &mut out), Err(Error::Corrupt { head: 0, tail: 6 }));
        // A consumer ahead of the producer.
        plant(&object, ring::layout::TAIL, 4);
        plant(&object, ring::layout::HEAD, 9);
        assert_eq!(v.read(3, &mut out), Err(Error::Corrupt { head: 9, tail: 4 }));
        plant(&object, ring::layout::HEAD, 0);
        v.read(3, &mut out).unwrap();
        assert_eq!(u32::from_ne_bytes(out), 3);
    }

    #[test]
    fn refuses_what_does_not_fit_the_kind() {
        let object = private::<BroadcastRing<u64, 4>>();
        let (map, mut snap) = read_only(&object);
        let bytes = &map.bytes()[snap.payload_offset as usize..];
        snap.capacity = 3;
        assert_eq!(BufferView::new(bytes, &snap).err(), Some(InspectError::Layout));
        snap.capacity = 16;
        assert_eq!(BufferView::new(bytes, &snap).err(), Some(InspectError::Layout));
        snap.capacity = 4;
        snap.element_size = u64::MAX;
        assert_eq!(BufferView::new(bytes, &snap).err(), Some(InspectError::Layout));
        snap.element_size = 8;
        assert_eq!(
            BufferView::new(&bytes[..64], &snap).err(),
            Some(InspectError::Truncated)
        );
        snap.kind_hash = fnv1a(b"something else");
        assert_eq!(BufferView::new(bytes, &snap).err(), Some(InspectError::UnknownKind));
    }
}
