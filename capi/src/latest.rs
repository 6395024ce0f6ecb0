//! Latest-value slots: a writer that publishes values, and reads of the newest value straight from the object
//! (readers hold no role and write nothing, so they need no handle).

use core::ffi::{c_int, c_void};

use shmfusion::buffer::LatestViewWriter;

use super::{
    ObjectState, SF_EPROTOTYPE, SF_OK, Wait, buffer_error, close_handle, live, open_handle, optional_out, sample_in,
    sample_out, set_out, sf_object,
};

/// Storage for a latest-value writer (caller-provided; contents private).
#[repr(C, align(8))]
pub struct sf_latest_writer {
    /// Private to the library: zero it before the first open, never change it.
    pub opaque: [u64; 16],
}

storage!(sf_latest_writer, LatestViewWriter<'static>);

/// Claims the writer role of the object's latest-value slot (`SF_EBUSY` if a live process holds it; a dead
/// holder's role is taken over).
///
/// Thread safety: `obj` may be used concurrently by other calls that only read it; `w` must not be used by another
/// thread during the call.
///
/// # Safety
/// `w` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_latest_writer_open(w: *mut sf_latest_writer, obj: *mut sf_object) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        open_handle(w, obj, |state| {
            let view = state.latest().ok_or(SF_EPROTOTYPE)?;
            view.writer().map_err(|e| buffer_error(e, core::ptr::null_mut()))
        })
    }
}

/// Publishes a value of exactly the element size; its sequence number (1 for the first) goes to `*seq` if not
/// null. Never waits.
///
/// Thread safety: `w` must not be used by another thread during the call.
///
/// # Safety
/// `w` points to writer storage, `value` to `len` readable bytes, `seq` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_latest_write(
    w: *mut sf_latest_writer,
    value: *const c_void,
    len: usize,
    seq: *mut u64,
) -> c_int {
    // SAFETY: the caller's contract.
    let writer = match unsafe { live::<sf_latest_writer, LatestViewWriter<'static>>(w) } {
        Ok(w) => w,
        Err(e) => return e,
    };
    if let Err(e) = optional_out(seq) {
        return e;
    }
    // SAFETY: the caller's contract.
    let bytes = match unsafe { sample_in(value, len, writer.layout().element_size()) } {
        Ok(b) => b,
        Err(e) => return e,
    };
    let s = writer.write(bytes);
    // SAFETY: checked by `optional_out`; writable by the caller's contract.
    unsafe { set_out(seq, s) };
    SF_OK
}

/// Releases the writer role.
///
/// Thread safety: `w` must not be used by another thread during or after the call.
///
/// # Safety
/// `w` points to writer storage (null: `SF_EINVAL`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_latest_writer_close(w: *mut sf_latest_writer) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { close_handle::<sf_latest_writer, LatestViewWriter<'static>>(w) }
}

/// Reads the newest value of the object's latest-value slot into `out` (`len` must be the element size) once
/// its sequence number is greater than `after` (0: any value), waiting up to `timeout_ns` nanoseconds for that
/// (0: don't wait; negative: no limit). Its sequence number goes to `*seq` if not null. `SF_EAGAIN` if there is
/// no such value yet (with `timeout_ns == 0`), `SF_ETIMEDOUT`, `SF_EPIPE` if the writer role is held by a dead
/// process, `SF_EDEADLK` if the value kept changing during every one of a bounded number of attempts.
///
/// Readers write no shared memory (except a waiter count while sleeping) and hold no role: any number may read.
///
/// Thread safety: any number of threads may call this concurrently on one object (they only read it).
///
/// # Safety
/// `obj` points to an open object, `out` to `len` writable bytes, `seq` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sf_latest_read(
    obj: *mut sf_object,
    out: *mut c_void,
    len: usize,
    after: u64,
    timeout_ns: i64,
    seq: *mut u64,
) -> c_int {
    // SAFETY: the caller's contract (shared reads only).
    let state = match unsafe { live::<sf_object, ObjectState>(obj) } {
        Ok(s) => &*s,
        Err(e) => return e,
    };
    let Some(view) = state.latest() else {
        return SF_EPROTOTYPE;
    };
    if let Err(e) = optional_out(seq) {
        return e;
    }
    // SAFETY: the caller's contract.
    let out = match unsafe { sample_out(out, len, view.layout().element_size()) } {
        Ok(o) => o,
        Err(e) => return e,
    };
    let result = match Wait::from_ns(timeout_ns) {
        Wait::No => match view.read_into(out) {
            Ok(s) if s > after => Ok(s),
            Ok(_) => Err(shmfusion::buffer::Error::Empty),
            Err(e) => Err(e),
        },
        Wait::Up(t) => view.wait_newer_into(after, out, t),
    };
    match result {
        Ok(s) => {
            // SAFETY: checked by `optional_out`; writable by the caller's contract.
            unsafe { set_out(seq, s) };
            SF_OK
        }
        Err(e) => buffer_error(e, core::ptr::null_mut()),
    }
}
