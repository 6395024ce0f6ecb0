//! SPSC rings: a producer that pushes (copying, or in place through reserve/commit) and a consumer that pops,
//! each with a bounded or unbounded wait.

use core::ffi::{c_int, c_void};

use shmfusion::buffer::{Error as BufError, SpscViewConsumer, SpscViewProducer};

use super::{
    SF_EINVAL, SF_EPROTOTYPE, SF_OK, Wait, buffer_error, close_handle, live, open_handle, sample_in, sample_out,
    sf_object,
};

/// Storage for an SPSC producer (caller-provided; contents private).
#[repr(C, align(8))]
pub struct sf_spsc_producer {
    /// Private to the library: zero it before the first open, never change it.
    pub opaque: [u64; 24],
}

/// Storage for an SPSC consumer (caller-provided; contents private).
#[repr(C, align(8))]
pub struct sf_spsc_consumer {
    /// Private to the library: zero it before the first open, never change it.
    pub opaque: [u64; 24],
}

struct Producer {
    producer: SpscViewProducer<'static>,
    /// A slot was handed out by `sf_spsc_reserve` and not yet committed.
    reserved: bool,
}

storage!(sf_spsc_producer, Producer);
storage!(sf_spsc_consumer, SpscViewConsumer<'static>);

/// Claims the producer role of the object's SPSC ring (`SF_EBUSY` if a live process holds it; a dead holder's
/// role is taken over; `SF_EPROTO` if the shared positions are inconsistent).
///
/// Thread safety: `obj` may be used concurrently by other calls that only read it (opening handles); `p` must not
/// be used by another thread during the call.
///
/// # Safety
/// `p` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_spsc_producer_open(p: *mut sf_spsc_producer, obj: *mut sf_object) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        open_handle(p, obj, |state| {
            let view = state.spsc().ok_or(SF_EPROTOTYPE)?;
            let producer = view.producer().map_err(|e| buffer_error(e, core::ptr::null_mut()))?;
            Ok(Producer {
                producer,
                reserved: false,
            })
        })
    }
}

/// Pushes one sample of exactly the element size, waiting for space up to `timeout_ns` nanoseconds (0: don't
/// wait; negative: no limit). `SF_ENOSPC` if full (with `timeout_ns == 0`), `SF_ETIMEDOUT`, `SF_ECONNRESET` if the
/// consumer role is held by a dead process, `SF_EPROTO` for inconsistent shared positions, `SF_EINVAL` while a
/// reserved slot is not committed.
///
/// Thread safety: `p` must not be used by another thread during the call.
///
/// # Safety
/// `p` points to producer storage, `sample` to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_spsc_push(
    p: *mut sf_spsc_producer,
    sample: *const c_void,
    len: usize,
    timeout_ns: i64,
) -> c_int {
    // SAFETY: the caller's contract.
    let handle = match unsafe { live::<sf_spsc_producer, Producer>(p) } {
        Ok(h) => h,
        Err(e) => return e,
    };
    if handle.reserved {
        return SF_EINVAL;
    }
    // SAFETY: the caller's contract.
    let bytes = match unsafe { sample_in(sample, len, handle.producer.layout().element_size()) } {
        Ok(b) => b,
        Err(e) => return e,
    };
    let result = match Wait::from_ns(timeout_ns) {
        Wait::No => handle.producer.try_push(bytes),
        Wait::Up(t) => handle.producer.push_wait(bytes, t),
    };
    result.map_or_else(|e| buffer_error(e, core::ptr::null_mut()), |()| SF_OK)
}

/// Reserves the next slot for writing in place: `*slot` receives its address (8-byte aligned, element size
/// rounded up to 8 bytes). Nothing is visible to the consumer until [`sf_spsc_commit`]; reserving again before
/// that gives the same slot. `SF_ENOSPC` if full.
///
/// The slot is shared memory: write it with plain stores, and do not read back what a hostile consumer might
/// have changed.
///
/// Thread safety: `p` must not be used by another thread during the call.
///
/// # Safety
/// `p` points to producer storage, `slot` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_spsc_reserve(p: *mut sf_spsc_producer, slot: *mut *mut c_void) -> c_int {
    // SAFETY: the caller's contract.
    let handle = match unsafe { live::<sf_spsc_producer, Producer>(p) } {
        Ok(h) => h,
        Err(e) => return e,
    };
    if slot.is_null() || !slot.is_aligned() {
        return SF_EINVAL;
    }
    match handle.producer.reserve() {
        Ok(mut reserved) => {
            let address = reserved.as_mut_ptr();
            handle.reserved = true;
            // SAFETY: checked non-null and aligned; writable by the caller's contract.
            unsafe { slot.write(address.cast()) };
            SF_OK
        }
        Err(e) => buffer_error(e, core::ptr::null_mut()),
    }
}

/// Publishes the slot reserved by [`sf_spsc_reserve`] (`SF_EINVAL` if none is).
///
/// Thread safety: `p` must not be used by another thread during the call.
///
/// # Safety
/// `p` points to producer storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_spsc_commit(p: *mut sf_spsc_producer) -> c_int {
    // SAFETY: the caller's contract.
    let handle = match unsafe { live::<sf_spsc_producer, Producer>(p) } {
        Ok(h) => h,
        Err(e) => return e,
    };
    if !handle.reserved {
        return SF_EINVAL;
    }
    // The reserved slot is still free (only the producer fills slots), so this reserves that same slot again.
    match handle.producer.reserve() {
        Ok(slot) => {
            slot.commit();
            handle.reserved = false;
            SF_OK
        }
        Err(e) => buffer_error(e, core::ptr::null_mut()),
    }
}

/// Releases the producer role (an uncommitted reserved slot is dropped).
///
/// Thread safety: `p` must not be used by another thread during or after the call.
///
/// # Safety
/// `p` points to producer storage (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_spsc_producer_close(p: *mut sf_spsc_producer) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { close_handle::<sf_spsc_producer, Producer>(p) }
}

/// Claims the consumer role of the object's SPSC ring (as [`sf_spsc_producer_open`]).
///
/// Thread safety: as [`sf_spsc_producer_open`].
///
/// # Safety
/// `c` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_spsc_consumer_open(c: *mut sf_spsc_consumer, obj: *mut sf_object) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        open_handle(c, obj, |state| {
            let view = state.spsc().ok_or(SF_EPROTOTYPE)?;
            view.consumer().map_err(|e| buffer_error(e, core::ptr::null_mut()))
        })
    }
}

/// Pops the oldest sample into `out` (`len` must be the element size), waiting up to `timeout_ns` nanoseconds
/// (0: don't wait; negative: no limit). `SF_EAGAIN` if empty (with `timeout_ns == 0`), `SF_ETIMEDOUT`, `SF_EPIPE`
/// if the ring is empty and the producer role is held by a dead process, `SF_EPROTO` for inconsistent shared
/// positions.
///
/// Thread safety: `c` must not be used by another thread during the call.
///
/// # Safety
/// `c` points to consumer storage, `out` to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_spsc_pop(c: *mut sf_spsc_consumer, out: *mut c_void, len: usize, timeout_ns: i64) -> c_int {
    // SAFETY: the caller's contract.
    let consumer = match unsafe { live::<sf_spsc_consumer, SpscViewConsumer<'static>>(c) } {
        Ok(c) => c,
        Err(e) => return e,
    };
    // SAFETY: the caller's contract.
    let out = match unsafe { sample_out(out, len, consumer.layout().element_size()) } {
        Ok(o) => o,
        Err(e) => return e,
    };
    let result: Result<(), BufError> = match Wait::from_ns(timeout_ns) {
        Wait::No => consumer.try_pop_into(out),
        Wait::Up(t) => consumer.pop_wait_into(out, t),
    };
    result.map_or_else(|e| buffer_error(e, core::ptr::null_mut()), |()| SF_OK)
}

/// Releases the consumer role.
///
/// Thread safety: `c` must not be used by another thread during or after the call.
///
/// # Safety
/// `c` points to consumer storage (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_spsc_consumer_close(c: *mut sf_spsc_consumer) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { close_handle::<sf_spsc_consumer, SpscViewConsumer<'static>>(c) }
}
