//! Typed shared objects: a validated header in front of a payload, race-free open-or-create, leak-free lifecycles.

/// A type that can live in shared memory as the state of a shared object (a ring, a latest-value slot, ...).
///
/// # Safety
///
/// Implementors guarantee that:
/// - an all-zero byte pattern is a valid value, and it is the object's initial ("empty") state, so a freshly
///   created, zero-filled segment holds a ready object;
/// - every byte of the type that may change after creation is read and written only through atomics, so other
///   processes racing on it can never cause undefined behaviour;
/// - it contains no pointers and its layout (`#[repr(C)]`, fixed-width fields) is identical on 32- and 64-bit
///   targets, so separately built programs agree on it;
/// - no value found in it, however corrupt, can make safe code panic, read or write out of bounds, or loop
///   forever.
pub unsafe trait SharedState: Sync + Sized {
    /// A short, stable name for the kind of object (e.g. `"spsc-ring"`), part of the layout fingerprint.
    const KIND: &'static str;
    /// The number of elements it holds (0 when not a container), part of the layout fingerprint.
    const CAPACITY: u64;
    /// The size in bytes of one element (0 when not a container), part of the layout fingerprint.
    const ELEMENT_SIZE: u64;
}
