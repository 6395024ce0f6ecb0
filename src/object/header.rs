//! The segment header at offset 0 of every shmfusion object, and its validation.
//!
//! The header is `#[repr(C)]`, made of fixed-width atomics only, and has the same layout on 32- and 64-bit
//! targets, so a 32-bit and a 64-bit program share one object. It is written by the creator before it sets
//! `state` to [`READY`] with a release store; an opener reads `state` with acquire and then validates every field
//! against what it expects. Another process may be buggy or hostile, so validation trusts nothing: every offset
//! and size is checked with overflow-free arithmetic against the mapping's real length.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use crate::liveness::{Role, RoleRecord};

/// The magic number: `"shmfusn\x01"` read as a little-endian `u64`. Read with the other byte order it shows up
/// byte-swapped, which tells an endianness mismatch from garbage.
pub const MAGIC: u64 = u64::from_le_bytes(*b"shmfusn\x01");

/// The format version this library writes and reads.
///
/// 3: the buffers' wait lines carry the notifier's protocol word, and notifiers may skip their fence (the
/// asymmetric wake-up protocol of the buffers' wait module); a process of version 2 would sleep without the barrier
/// such a notifier relies on, so the two refuse each other's objects.
///
/// 4: the notifier may switch its wait line between the two protocols at any time (protocol word stored with
/// release after a fence, loaded by waiters with acquire). Builds of version 3 existed both before and after that
/// change, and a waiter of the earlier one loads the protocol word without acquire, so it may sleep against a
/// notifier that has just switched; version 4 keeps every version-3 process out, whichever it is.
pub const FORMAT_VERSION: u32 = 4;

/// `state`: the segment is new (zero-filled) or its creator has not started.
pub const EMPTY: u32 = 0;
/// `state`: the creator is writing the header.
pub const INITIALISING: u32 = 1;
/// `state`: the header is complete and the payload is ready.
pub const READY: u32 = 2;

/// Where the payload may start at the earliest: after the header, on a cache-line boundary.
pub const PAYLOAD_MIN_OFFSET: u64 = 256;

/// Lifecycle flags stored in the header.
pub mod flags {
    /// The object persists until explicitly removed; `reap` leaves it alone.
    pub const PERSIST: u32 = 1;
}

/// The header at offset 0 of a shmfusion segment.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: AtomicU64,
    /// [`FORMAT_VERSION`].
    pub version: AtomicU32,
    /// [`EMPTY`], [`INITIALISING`] or [`READY`].
    pub state: AtomicU32,
    /// Total size of the object in bytes (header + payload).
    pub total_size: AtomicU64,
    /// Offset of the payload from the start of the segment.
    pub payload_offset: AtomicU64,
    /// Size of the payload type.
    pub payload_size: AtomicU64,
    /// Alignment of the payload type.
    pub payload_align: AtomicU32,
    /// Lifecycle flags (bit 0: persistent, left alone by `reap`).
    pub flags: AtomicU32,
    /// FNV-1a hash of the payload's [`SharedState::KIND`](super::SharedState::KIND).
    pub kind_hash: AtomicU64,
    /// The payload's type identity (given by the user, or derived from the type name).
    pub type_id: AtomicU64,
    /// The payload's element capacity.
    pub capacity: AtomicU64,
    /// The payload's element size.
    pub element_size: AtomicU64,
    /// The creating user's effective uid.
    pub creator_uid: AtomicU32,
    /// Reserved, zero.
    pub reserved0: AtomicU32,
    /// The creating process, as a [`Role`] it holds for as long as it lives (never released): stamped before
    /// anything else, so an opener can tell a creator still initialising from a dead one, across PID
    /// namespaces (see [`liveness`](crate::liveness)).
    pub creator: Role,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 15],
}

#[cfg(not(all(loom, test)))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Header>() == 256);
    assert!(offset_of!(Header, state) == 12);
    assert!(offset_of!(Header, kind_hash) == 48);
    assert!(offset_of!(Header, creator_uid) == 80);
    assert!(offset_of!(Header, creator) == 88);
    assert!(PAYLOAD_MIN_OFFSET as usize >= size_of::<Header>());
};

/// FNV-1a, 64 bit: a stable hash for type names and kinds.
pub const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Loads a 64-bit header field in a way that is sound on a read-only mapping (`SHM_RDONLY`, `PROT_READ`).
///
/// Rust guarantees atomic loads on read-only memory only for relaxed loads no wider than a register. On 64-bit
/// targets that is a plain relaxed `AtomicU64` load. On 32-bit targets a 64-bit atomic load may be a
/// read-modify-write (`cmpxchg8b` on i686, `ldrexd`/`strexd` on armv7) that faults on a read-only page, so the
/// field is read as two relaxed 32-bit halves: high, low, high again, retried (a bounded number of times) until the
/// high half is unchanged, so that a value being rewritten by another process is not returned torn in the usual
/// case. A peer that keeps rewriting a field can still make the result a mix of two values; callers validate every
/// field, so that is no worse than any other value a peer can write.
///
/// Mixing access sizes on one location is only defined when the accesses do not race. Within this library the
/// fields read this way are stored (64 bits wide) only by the creator before it publishes `READY`, and
/// [`inspect`](super::inspect) does not read the header of a segment this process is itself creating; other
/// processes' stores are hardware accesses outside this process's memory model.
pub fn load_u64(field: &AtomicU64) -> u64 {
    #[cfg(target_pointer_width = "64")]
    {
        field.load(Ordering::Relaxed)
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        let base = (field as *const AtomicU64).cast::<AtomicU32>();
        let (low_index, high_index) = if cfg!(target_endian = "little") { (0, 1) } else { (1, 0) };
        // SAFETY: an `AtomicU64` is 8 bytes aligned to at least 4, so its two halves are valid, aligned
        // `AtomicU32`s for as long as `field` is borrowed.
        let (low, high) = unsafe { (&*base.add(low_index), &*base.add(high_index)) };
        let mut hi = high.load(Ordering::Relaxed);
        let mut lo = low.load(Ordering::Relaxed);
        for _ in 0..8 {
            let again = high.load(Ordering::Relaxed);
            if again == hi {
                break;
            }
            hi = again;
            lo = low.load(Ordering::Relaxed);
        }
        (u64::from(hi) << 32) | u64::from(lo)
    }
}

/// The layout fingerprint of a payload: what both sides must agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash of the object kind.
    pub kind_hash: u64,
    /// Type identity.
    pub type_id: u64,
    /// Size of the payload type.
    pub size: u64,
    /// Alignment of the payload type.
    pub align: u32,
    /// Element capacity.
    pub capacity: u64,
    /// Element size.
    pub element_size: u64,
}

/// Where the payload starts for a given alignment.
pub const fn payload_offset(align: u32) -> u64 {
    let align = if (align as u64) < 64 { 64 } else { align as u64 };
    PAYLOAD_MIN_OFFSET.div_ceil(align) * align
}

/// The total size an object with this fingerprint needs; `None` on overflow.
pub const fn total_size_of(fp: &Fingerprint) -> Option<u64> {
    payload_offset(fp.align).checked_add(fp.size)
}

/// A plain copy of the header fields that validation looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Header::magic`].
    pub magic: u64,
    /// See [`Header::version`].
    pub version: u32,
    /// See [`Header::state`].
    pub state: u32,
    /// See [`Header::total_size`].
    pub total_size: u64,
    /// See [`Header::payload_offset`].
    pub payload_offset: u64,
    /// See [`Header::payload_size`].
    pub payload_size: u64,
    /// See [`Header::payload_align`].
    pub payload_align: u32,
    /// See [`Header::flags`].
    pub flags: u32,
    /// See [`Header::kind_hash`].
    pub kind_hash: u64,
    /// See [`Header::type_id`].
    pub type_id: u64,
    /// See [`Header::capacity`].
    pub capacity: u64,
    /// See [`Header::element_size`].
    pub element_size: u64,
    /// See [`Header::creator_uid`].
    pub creator_uid: u32,
    /// See [`Header::creator`]: its words as read; [`RoleRecord::holder`] judges the creator.
    pub creator: RoleRecord,
}

impl Header {
    /// Reads every field once, with loads that are sound on a read-only mapping too: `state` first, relaxed and
    /// followed by an acquire fence, so that a `READY` state makes the rest visible; then every other field with
    /// relaxed loads no wider than a register (see [`load_u64`]).
    ///
    /// Every field copied here is written only by the creator and only before it publishes `READY` (`flags`, a
    /// 32-bit word, is the one exception: [`Shared::persist`](super::Shared::persist) sets a bit in it later).
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        Snapshot {
            state,
            magic: load_u64(&self.magic),
            version: self.version.load(Ordering::Relaxed),
            total_size: load_u64(&self.total_size),
            payload_offset: load_u64(&self.payload_offset),
            payload_size: load_u64(&self.payload_size),
            payload_align: self.payload_align.load(Ordering::Relaxed),
            flags: self.flags.load(Ordering::Relaxed),
            kind_hash: load_u64(&self.kind_hash),
            type_id: load_u64(&self.type_id),
            capacity: load_u64(&self.capacity),
            element_size: load_u64(&self.element_size),
            creator_uid: self.creator_uid.load(Ordering::Relaxed),
            creator: self.creator.record(),
        }
    }

    /// Writes the header of a new object and publishes it (`state = READY`, release). The caller is the creator
    /// and the only one writing; it has stamped [`creator`](Self::creator) already.
    pub fn publish(&self, fp: &Fingerprint, total_size: u64, flags: u32, creator_uid: u32) {
        self.state.store(INITIALISING, Ordering::Relaxed);
        self.magic.store(MAGIC, Ordering::Relaxed);
        self.version.store(FORMAT_VERSION, Ordering::Relaxed);
        self.total_size.store(total_size, Ordering::Relaxed);
        self.payload_offset.store(payload_offset(fp.align), Ordering::Relaxed);
        self.payload_size.store(fp.size, Ordering::Relaxed);
        self.payload_align.store(fp.align, Ordering::Relaxed);
        self.flags.store(flags, Ordering::Relaxed);
        self.kind_hash.store(fp.kind_hash, Ordering::Relaxed);
        self.type_id.store(fp.type_id, Ordering::Relaxed);
        self.capacity.store(fp.capacity, Ordering::Relaxed);
        self.element_size.store(fp.element_size, Ordering::Relaxed);
        self.creator_uid.store(creator_uid, Ordering::Relaxed);
        self.state.store(READY, Ordering::Release);
    }
}

/// Why a header was refused. Each mismatch has its own variant so that a user can tell a version skew from a
/// wrong type or a foreign segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The mapping is too small to hold a header at all.
    TooShort {
        /// Bytes available.
        len: u64,
    },
    /// No shmfusion magic: a foreign segment, or garbage.
    NotShmfusion {
        /// The first eight bytes found.
        found: u64,
    },
    /// Written by a machine of the other byte order.
    Endianness,
    /// Another format version.
    Version {
        /// Found in the header.
        found: u32,
        /// Understood by this library.
        expected: u32,
    },
    /// The creator has not finished initialising (or died while doing so).
    NotReady {
        /// The state found.
        state: u32,
    },
    /// Another kind of object or another payload type.
    Type {
        /// Kind hash found.
        found_kind: u64,
        /// Type id found.
        found_type: u64,
    },
    /// Same type name but another layout: size, alignment, capacity or element size differ (e.g. built with
    /// another capacity).
    Layout {
        /// The fingerprint found.
        found: Fingerprint,
    },
    /// Offsets or sizes inconsistent with each other or with the real mapping.
    Corrupt(&'static str),
    /// The mapping is smaller than the header claims.
    Truncated {
        /// Size the header claims.
        claimed: u64,
        /// Size of the real mapping.
        actual: u64,
    },
}

impl core::error::Error for HeaderError {}

impl core::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HeaderError::TooShort { len } => {
                write!(f, "segment of {len} bytes cannot hold a header")
            }
            HeaderError::NotShmfusion { found } => {
                write!(f, "not a shmfusion segment (magic {found:#018x})")
            }
            HeaderError::Endianness => write!(f, "segment written with the other byte order"),
            HeaderError::Version { found, expected } => {
                write!(f, "format version {found}, expected {expected}")
            }
            HeaderError::NotReady { state } => write!(f, "object not initialised (state {state})"),
            HeaderError::Type { .. } => write!(f, "another object kind or payload type"),
            HeaderError::Layout { found } => write!(f, "payload layout differs: {found:?}"),
            HeaderError::Corrupt(what) => write!(f, "corrupt header: {what}"),
            HeaderError::Truncated { claimed, actual } => {
                write!(f, "header claims {claimed} bytes, mapping has {actual}")
            }
        }
    }
}

/// Validates a header snapshot against the expected fingerprint and the real mapping length. Pure and total:
/// any input gives `Ok` or an error, never a panic; on `Ok` the payload `[payload_offset, payload_offset +
/// expected.size)` lies inside the mapping and is aligned for the payload type (given a mapping base aligned to
/// at least the payload alignment, which pages are).
pub fn validate(snap: &Snapshot, expected: &Fingerprint, mapping_len: u64) -> Result<u64, HeaderError> {
    if mapping_len < core::mem::size_of::<Header>() as u64 {
        return Err(HeaderError::TooShort { len: mapping_len });
    }
    if snap.state != READY && (snap.magic == 0 || snap.magic == MAGIC) {
        return Err(HeaderError::NotReady { state: snap.state });
    }
    if snap.magic != MAGIC {
        if snap.magic == MAGIC.swap_bytes() {
            return Err(HeaderError::Endianness);
        }
        return Err(HeaderError::NotShmfusion { found: snap.magic });
    }
    if snap.version != FORMAT_VERSION {
        return Err(HeaderError::Version {
            found: snap.version,
            expected: FORMAT_VERSION,
        });
    }
    if snap.state != READY {
        return Err(HeaderError::NotReady { state: snap.state });
    }
    if snap.kind_hash != expected.kind_hash || snap.type_id != expected.type_id {
        return Err(HeaderError::Type {
            found_kind: snap.kind_hash,
            found_type: snap.type_id,
        });
    }
    let found = Fingerprint {
        kind_hash: snap.kind_hash,
        type_id: snap.type_id,
        size: snap.payload_size,
        align: snap.payload_align,
        capacity: snap.capacity,
        element_size: snap.element_size,
    };
    if found != *expected {
        return Err(HeaderError::Layout { found });
    }
    if snap.payload_offset != payload_offset(expected.align) {
        return Err(HeaderError::Corrupt("payload offset"));
    }
    let end = snap
        .payload_offset
        .checked_add(snap.payload_size)
        .ok_or(HeaderError::Corrupt("payload end overflows"))?;
    if snap.total_size < end {
        return Err(HeaderError::Corrupt("total size smaller than payload end"));
    }
    if snap.total_size > mapping_len {
        return Err(HeaderError::Truncated {
            claimed: snap.total_size,
            actual: mapping_len,
        });
    }
    Ok(snap.payload_offset)
}
