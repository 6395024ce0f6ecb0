//! Errors as Python exceptions. Every exception raised by the library is an `OSError` carrying an errno:
//! system-call failures are the built-in `OSError` subclass for their errno (`FileNotFoundError`,
//! `FileExistsError`, `PermissionError`, ...), timeouts are the built-in `TimeoutError` (`ETIMEDOUT`), and the
//! library's own conditions are subclasses of `ShmfusionError`.

use pyo3::exceptions::{PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;

use shmfusion::Errno;
use shmfusion::buffer::Error as BufferError;
use shmfusion::fusion::ReadError;
use shmfusion::object::ObjectError;

pyo3::create_exception!(
    _native,
    ShmfusionError,
    PyOSError,
    "Base class of shmfusion's own errors (an OSError with an errno)."
);
pyo3::create_exception!(
    _native,
    HeaderError,
    ShmfusionError,
    "The object's header was refused: foreign, corrupt, unfinished, or of another type, capacity or layout (EPROTO)."
);
pyo3::create_exception!(
    _native,
    VerifyError,
    ShmfusionError,
    "The segment's owner, mode or size is not what was expected, e.g. a key squatted by another user (EACCES)."
);
pyo3::create_exception!(
    _native,
    RoleTakenError,
    ShmfusionError,
    "The producer/writer/consumer role is held by a live process (EBUSY); `pid` names it."
);
pyo3::create_exception!(
    _native,
    WriterGoneError,
    ShmfusionError,
    "The writer (producer) process died: nothing more will come (EPIPE)."
);
pyo3::create_exception!(
    _native,
    ReaderGoneError,
    ShmfusionError,
    "The SPSC consumer process died: nobody will free space (EPIPE)."
);
pyo3::create_exception!(
    _native,
    ClosedError,
    ShmfusionError,
    "The peer released its role cleanly and nothing more will come (EPIPE); everything it published was read."
);
pyo3::create_exception!(
    _native,
    LaggedError,
    ShmfusionError,
    "A broadcast reader fell behind: `missed` samples were overwritten; the reader has moved on, read again (EOVERFLOW)."
);
pyo3::create_exception!(
    _native,
    CorruptError,
    ShmfusionError,
    "Positions in shared memory are inconsistent: a buggy or hostile peer (EBADMSG)."
);
pyo3::create_exception!(
    _native,
    ContendedError,
    ShmfusionError,
    "A latest-value read kept racing the writer (EAGAIN)."
);
pyo3::create_exception!(
    _native,
    SeriesError,
    ShmfusionError,
    "A time-indexed read failed: `reason` is one of empty, past, future, overwritten, non-monotonic, corrupt."
);

/// What can go wrong in a binding call.
#[derive(Debug)]
pub enum Failure {
    /// Creating or opening an object.
    Object(ObjectError),
    /// A buffer operation.
    Buffer(BufferError),
    /// A time-indexed read.
    Series(ReadError),
}

impl From<ObjectError> for Failure {
    fn from(e: ObjectError) -> Self {
        Failure::Object(e)
    }
}

impl From<BufferError> for Failure {
    fn from(e: BufferError) -> Self {
        Failure::Buffer(e)
    }
}

impl From<ReadError> for Failure {
    fn from(e: ReadError) -> Self {
        Failure::Series(e)
    }
}

fn os_error<E: pyo3::PyTypeInfo>(py: Python<'_>, errno: i32, message: String, attrs: &[(&str, u64)]) -> PyErr {
    let err = PyErr::new::<E, _>((errno, message));
    let value = err.value(py);
    for (name, v) in attrs {
        let _ = value.setattr(*name, *v);
    }
    err
}

fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // "No such file or directory (os error 2)" -> "No such file or directory"
    text.split(" (os error").next().unwrap_or(&text).to_string()
}

impl Failure {
    /// The Python exception for this failure.
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Object(ObjectError::Os(e)) => {
                let errno = e.raw_os_error();
                // OSError(errno, strerror) picks the subclass for the errno (FileNotFoundError, ...).
                PyOSError::new_err((errno, strerror(errno)))
            }
            Failure::Object(ObjectError::Verify(e)) => os_error::<VerifyError>(py, EACCES, e.to_string(), &[]),
            Failure::Object(ObjectError::Header(e)) => os_error::<HeaderError>(py, EPROTO, e.to_string(), &[]),
            Failure::Object(e @ ObjectError::NotRegularFile(_)) => {
                os_error::<VerifyError>(py, EACCES, e.to_string(), &[])
            }
            Failure::Object(e @ ObjectError::Replaced) => os_error::<VerifyError>(py, EAGAIN, e.to_string(), &[]),
            Failure::Object(ObjectError::TooLarge) => {
                PyOSError::new_err((EFBIG, "object too large for this platform".to_string()))
            }
            Failure::Buffer(e) => buffer_error(py, e),
            Failure::Series(e) => {
                let (errno, reason) = match e {
                    ReadError::Empty => (ENODATA, "empty"),
                    ReadError::ExtrapolationPast { .. } => (ERANGE, "past"),
                    ReadError::ExtrapolationFuture { .. } => (ERANGE, "future"),
                    ReadError::Overwritten => (EAGAIN, "overwritten"),
                    ReadError::NonMonotonic => (EBADMSG, "non-monotonic"),
                    ReadError::Corrupt => (EBADMSG, "corrupt"),
                };
                let err = os_error::<SeriesError>(py, errno, e.to_string(), &[]);
                let _ = err.value(py).setattr("reason", reason);
                err
            }
        }
    }
}

fn buffer_error(py: Python<'_>, e: BufferError) -> PyErr {
    let message = e.to_string();
    match e {
        BufferError::Timeout => PyTimeoutError::new_err((ETIMEDOUT, message)),
        BufferError::RoleTaken { holder } => {
            let pid = holder.pid.unwrap_or(holder.own_pid);
            os_error::<RoleTakenError>(py, EBUSY, message, &[("pid", pid.into())])
        }
        BufferError::WriterGone => os_error::<WriterGoneError>(py, EPIPE, message, &[]),
        BufferError::ReaderGone => os_error::<ReaderGoneError>(py, EPIPE, message, &[]),
        BufferError::Lagged(n) => os_error::<LaggedError>(py, EOVERFLOW, message, &[("missed", n)]),
        BufferError::Corrupt { head, tail } => {
            os_error::<CorruptError>(py, EBADMSG, message, &[("head", head), ("tail", tail)])
        }
        BufferError::Contended => os_error::<ContendedError>(py, EAGAIN, message, &[]),
        BufferError::Closed => os_error::<ClosedError>(py, EPIPE, message, &[]),
        BufferError::Liveness(e) => {
            let errno = e.raw_os_error();
            PyOSError::new_err((
                errno,
                format!("cannot set up this process's liveness anchor: {}", strerror(errno)),
            ))
        }
        // Full and Empty are results (False / None) at the binding level, never raised; anything newer too.
        other => os_error::<ShmfusionError>(py, EIO, other.to_string(), &[]),
    }
}

/// Converts a binding result.
pub fn check<T>(py: Python<'_>, r: Result<T, impl Into<Failure>>) -> PyResult<T> {
    r.map_err(|e| e.into().into_pyerr(py))
}

/// A `ValueError` for a bad argument.
pub fn bad_argument(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// Registers the exception types in the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for (name, ty) in [
        ("ShmfusionError", py.get_type::<ShmfusionError>()),
        ("HeaderError", py.get_type::<HeaderError>()),
        ("VerifyError", py.get_type::<VerifyError>()),
        ("RoleTakenError", py.get_type::<RoleTakenError>()),
        ("WriterGoneError", py.get_type::<WriterGoneError>()),
        ("ReaderGoneError", py.get_type::<ReaderGoneError>()),
        ("LaggedError", py.get_type::<LaggedError>()),
        ("ClosedError", py.get_type::<ClosedError>()),
        ("CorruptError", py.get_type::<CorruptError>()),
        ("ContendedError", py.get_type::<ContendedError>()),
        ("SeriesError", py.get_type::<SeriesError>()),
    ] {
        m.add(name, ty)?;
    }
    Ok(())
}

// errno values from the core's `Errno` (rustix), so they are right on every architecture.
const EIO: i32 = Errno::IO.raw_os_error();
const EAGAIN: i32 = Errno::AGAIN.raw_os_error();
const EACCES: i32 = Errno::ACCESS.raw_os_error();
const EBUSY: i32 = Errno::BUSY.raw_os_error();
const EFBIG: i32 = Errno::FBIG.raw_os_error();
const EPIPE: i32 = Errno::PIPE.raw_os_error();
const ERANGE: i32 = Errno::RANGE.raw_os_error();
const ENODATA: i32 = Errno::NODATA.raw_os_error();
const EPROTO: i32 = Errno::PROTO.raw_os_error();
const EBADMSG: i32 = Errno::BADMSG.raw_os_error();
const EOVERFLOW: i32 = Errno::OVERFLOW.raw_os_error();
const ETIMEDOUT: i32 = Errno::TIMEDOUT.raw_os_error();
