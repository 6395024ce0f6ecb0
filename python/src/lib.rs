//! `shmfusion._native`: the Python extension module over the shmfusion core.
//!
//! This layer speaks bytes: every element is passed in or out as a C-contiguous buffer of `uint8` (a numpy array
//! view), copied once between that buffer and shared memory, with the GIL released for blocking waits. The
//! Python package `shmfusion` around it gives elements their numpy dtypes (structured dtypes for `Stamped<T>`,
//! checked against [`element::layouts`] on import) and adds the Gymnasium vector environment.

#[macro_use]
mod element;
mod error;
mod object;
mod ops;

use std::ffi::CString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use shmfusion::buffer::{Error as BufferError, SpscLayout};
use shmfusion::object::{ObjectError, ObjectOptions, SharedState};
use shmfusion::shm::{Key, ShmId};

use element::Element;
use error::{Failure, bad_argument, check};
use object::Location;
use ops::{BroadcastObj, ConsumerOps, LatestObj, LatestWriterOps, ProducerOps, ReaderOps, RingObj, WriterOps};

/// The longest a blocking call stays in Rust without looking for Python signals (Ctrl-C).
const SIGNAL_SLICE: Duration = Duration::from_millis(100);

/// Where an object is, from the keyword arguments `key`, `id` and `name` (at most one; none: a new private SysV
/// object, reachable by its id).
fn location(key: Option<i64>, id: Option<i32>, name: Option<&str>) -> PyResult<Location> {
    match (key, id, name) {
        (None, None, None) => Ok(Location::Key(Key::PRIVATE)),
        (Some(k), None, None) => {
            let raw = i32::try_from(k)
                .or_else(|_| u32::try_from(k).map(|u| u as i32))
                .map_err(|_| bad_argument(format!("key {k} does not fit a key_t")))?;
            Ok(Location::Key(Key::from_raw(raw)))
        }
        (None, Some(id), None) => Ok(Location::Id(ShmId::from_raw(id))),
        (None, None, Some(n)) => {
            let name = CString::new(n).map_err(|_| bad_argument("name contains a NUL byte"))?;
            Ok(Location::Name(name))
        }
        _ => Err(bad_argument("give at most one of key, id and name")),
    }
}

/// Where an existing object is: exactly one of `key`, `id` and `name`.
fn existing(key: Option<i64>, id: Option<i32>, name: Option<&str>) -> PyResult<Location> {
    if key.is_none() && id.is_none() && name.is_none() {
        return Err(bad_argument("open needs a key, an id or a name"));
    }
    location(key, id, name)
}

fn options(lifecycle: &str, mode: u32, type_name: Option<&str>, ready_timeout: f64) -> PyResult<ObjectOptions> {
    let lifecycle = object::lifecycle(lifecycle).ok_or_else(|| {
        bad_argument(format!(
            "lifecycle must be creator, last-detach or persist, not {lifecycle:?}"
        ))
    })?;
    let mut o = ObjectOptions::new()
        .lifecycle(lifecycle)
        .mode(shmfusion_mode(mode)?)
        .ready_timeout_ns(seconds(ready_timeout)?.as_nanos() as u64);
    if let Some(t) = type_name {
        o = o.type_name(t);
    }
    Ok(o)
}

fn shmfusion_mode(mode: u32) -> PyResult<shmfusion::shm::Mode> {
    if mode & !0o777 != 0 {
        return Err(bad_argument(format!("mode {mode:#o} has bits beyond 0o777")));
    }
    Ok(shmfusion::shm::Mode::from_bits_truncate(mode))
}

fn seconds(s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| bad_argument(format!("{s} is not a valid number of seconds")))
}

fn element(name: &str, size: usize, align: usize) -> PyResult<Element> {
    Element::parse(name, size, align).ok_or_else(|| {
        bad_argument(format!(
            "unknown element {name:?} (imu, mag, gnss, quaternion, f64, or block with a size and an alignment of 1, 2, 4 or 8)"
        ))
    })
}

fn bad_capacity(element: Element, capacity: usize, offered: &[usize]) -> PyErr {
    bad_argument(format!(
        "capacity {capacity} is not offered for {element:?} (one of {offered:?})"
    ))
}

/// Opens or creates the object with the GIL released (an opener may wait for a creator).
fn locate<S: SharedState + Send + 'static>(
    py: Python<'_>,
    at: &Location,
    o: &ObjectOptions,
    create: bool,
) -> PyResult<object::Object<S>> {
    let r: Result<object::Object<S>, ObjectError> = py.detach(|| {
        if create {
            object::create::<S>(at, o)
        } else {
            object::open::<S>(at, o)
        }
    });
    check(py, r)
}

/// A read-only view of a C-contiguous buffer of bytes.
struct Input(PyBuffer<u8>);

impl Input {
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(obj)?;
        if !buf.is_c_contiguous() {
            return Err(bad_argument("buffer must be C-contiguous"));
        }
        Ok(Self(buf))
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the exporter keeps the memory alive and unresized while the buffer view exists; it is
        // C-contiguous (checked) of `len_bytes` bytes. Python code racing on the same memory from another thread
        // is the caller's business, as with any numpy operation that releases the GIL.
        unsafe { std::slice::from_raw_parts(self.0.buf_ptr() as *const u8, self.0.len_bytes()) }
    }
}

/// A writable view of a C-contiguous buffer of bytes.
struct Output(PyBuffer<u8>);

impl Output {
    fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(obj)?;
        if buf.readonly() {
            return Err(bad_argument("output buffer is read-only"));
        }
        if !buf.is_c_contiguous() {
            return Err(bad_argument("output buffer must be C-contiguous"));
        }
        Ok(Self(buf))
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: as for `Input::bytes`, and the buffer is writable (checked).
        unsafe { std::slice::from_raw_parts_mut(self.0.buf_ptr() as *mut u8, self.0.len_bytes()) }
    }
}

fn exactly(len: usize, size: usize) -> PyResult<()> {
    if len != size {
        return Err(bad_argument(format!("buffer holds {len} bytes, an element is {size}")));
    }
    Ok(())
}

fn whole(len: usize, size: usize) -> PyResult<()> {
    if len % size != 0 {
        return Err(bad_argument(format!(
            "buffer of {len} bytes is not a whole number of {size}-byte elements"
        )));
    }
    Ok(())
}

/// Runs a blocking wait with the GIL released, in slices of at most [`SIGNAL_SLICE`] so that Ctrl-C is seen;
/// `timeout` in seconds, `None` for no limit.
fn blocking<R: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    mut wait: impl FnMut(Duration) -> Result<R, BufferError> + Send,
) -> PyResult<R> {
    let deadline = match timeout {
        Some(t) => Some(Instant::now() + seconds(t)?),
        None => None,
    };
    loop {
        let slice = deadline.map_or(SIGNAL_SLICE, |d| {
            d.saturating_duration_since(Instant::now()).min(SIGNAL_SLICE)
        });
        match py.detach(|| wait(slice)) {
            Err(BufferError::Timeout) if deadline.is_none_or(|d| Instant::now() < d) => py.check_signals()?,
            r => return check(py, r),
        }
    }
}

/// A single-producer single-consumer ring of elements in shared memory.
#[pyclass(module = "shmfusion._native", frozen)]
struct SpscRing {
    ring: Arc<dyn RingObj>,
    element: Element,
    capacity: usize,
}

fn ring_object<T: shmfusion::Shareable + 'static, const N: usize>(
    py: Python<'_>,
    at: &Location,
    o: &ObjectOptions,
    create: bool,
) -> PyResult<Arc<dyn RingObj>> {
    Ok(ops::ring(locate::<shmfusion::buffer::SpscRing<T, N>>(
        py, at, o, create,
    )?))
}

impl SpscRing {
    /// Opens or creates the ring: a typed ring for stamped samples, the core's runtime-sized view for blocks.
    fn make(
        py: Python<'_>,
        create: bool,
        element: Element,
        capacity: usize,
        at: Location,
        o: ObjectOptions,
    ) -> PyResult<Self> {
        let ring = match element {
            Element::Block { size, align } => {
                let layout = SpscLayout::new(size, align, capacity).map_err(|e| {
                    bad_argument(format!(
                        "{e} (element {size} bytes, align {align}, capacity {capacity})"
                    ))
                })?;
                let fp = o
                    .fingerprint_described(&layout.payload())
                    .ok_or_else(|| bad_argument("a block ring needs a type name"))?;
                let r = py.detach(|| {
                    if create {
                        object::create_raw(&at, &fp, &o)
                    } else {
                        object::open_raw(&at, &fp, &o)
                    }
                });
                let raw = check(py, r)?;
                // The header was validated against this layout's fingerprint, so the view cannot refuse it.
                ops::view_ring(raw, layout).map_err(|e| bad_argument(e.to_string()))?
            }
            _ => {
                let bad = Err(bad_capacity(element, capacity, element::SAMPLE_CAPACITIES));
                dispatch_ring!(element, capacity, bad, ring_object(py, &at, &o, create))?
            }
        };
        Ok(Self {
            ring,
            element,
            capacity,
        })
    }
}

/// The element and its options: block rings get [`element::BLOCK_TYPE_NAME`] unless a type name is given.
fn ring_element<'a>(
    name: &str,
    element_size: usize,
    element_align: usize,
    type_name: Option<&'a str>,
) -> PyResult<(Element, Option<&'a str>)> {
    let element = element(name, element_size, element_align)?;
    let type_name = type_name.or((!element.is_sample()).then_some(element::BLOCK_TYPE_NAME));
    Ok((element, type_name))
}

#[pymethods]
impl SpscRing {
    /// Creates a ring (exclusively); see the `shmfusion.SpscRing` docs.
    #[staticmethod]
    #[pyo3(signature = (element, capacity, *, element_size=0, element_align=8, key=None, name=None, lifecycle="creator", mode=0o600, type_name=None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        element: &str,
        capacity: usize,
        element_size: usize,
        element_align: usize,
        key: Option<i64>,
        name: Option<&str>,
        lifecycle: &str,
        mode: u32,
        type_name: Option<&str>,
    ) -> PyResult<Self> {
        let (element, type_name) = ring_element(element, element_size, element_align, type_name)?;
        let o = options(lifecycle, mode, type_name, 1.0)?;
        Self::make(py, true, element, capacity, location(key, None, name)?, o)
    }

    /// Opens an existing ring; see the `shmfusion.SpscRing` docs.
    #[staticmethod]
    #[pyo3(signature = (element, capacity, *, element_size=0, element_align=8, key=None, id=None, name=None, mode=0o600, type_name=None, ready_timeout=1.0))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        element: &str,
        capacity: usize,
        element_size: usize,
        element_align: usize,
        key: Option<i64>,
        id: Option<i32>,
        name: Option<&str>,
        mode: u32,
        type_name: Option<&str>,
        ready_timeout: f64,
    ) -> PyResult<Self> {
        let (element, type_name) = ring_element(element, element_size, element_align, type_name)?;
        let o = options("creator", mode, type_name, ready_timeout)?;
        Self::make(py, false, element, capacity, existing(key, id, name)?, o)
    }

    /// The System V segment id (None for POSIX objects).
    #[getter]
    fn id(&self) -> Option<i32> {
        self.ring.id()
    }

    /// Bytes per element.
    #[getter]
    fn element_size(&self) -> usize {
        self.element.size()
    }

    /// Elements the ring holds.
    #[getter]
    fn capacity(&self) -> usize {
        self.capacity
    }

    /// Elements in the ring now.
    fn __len__(&self) -> PyResult<usize> {
        self.ring.len().ok_or_else(|| bad_argument("corrupt ring positions"))
    }

    /// Claims the producer role for this process.
    fn producer(&self, py: Python<'_>) -> PyResult<RingProducer> {
        Ok(RingProducer {
            handle: check(py, self.ring.producer())?,
            size: self.element.size(),
        })
    }

    /// Claims the consumer role for this process.
    fn consumer(&self, py: Python<'_>) -> PyResult<RingConsumer> {
        Ok(RingConsumer {
            handle: check(py, self.ring.consumer())?,
            size: self.element.size(),
        })
    }
}

/// The producer of an SPSC ring.
#[pyclass(module = "shmfusion._native")]
struct RingProducer {
    handle: Box<dyn ProducerOps>,
    size: usize,
}

#[pymethods]
impl RingProducer {
    /// Pushes one element (bytes of exactly one element); False when the ring is full.
    fn try_push(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let input = Input::new(data)?;
        exactly(input.bytes().len(), self.size)?;
        check(py, self.handle.push(input.bytes()))
    }

    /// Pushes one element, waiting for space up to `timeout` seconds (None: no limit).
    #[pyo3(signature = (data, timeout=None))]
    fn push(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let input = Input::new(data)?;
        exactly(input.bytes().len(), self.size)?;
        let bytes = input.bytes();
        let handle = &mut self.handle;
        blocking(py, timeout, |slice| handle.push_wait(bytes, Some(slice)))
    }

    /// Pushes as many whole elements of `data` as fit; returns how many.
    fn push_batch(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let input = Input::new(data)?;
        whole(input.bytes().len(), self.size)?;
        check(py, self.handle.push_batch(input.bytes()))
    }
}

/// The consumer of an SPSC ring.
#[pyclass(module = "shmfusion._native")]
struct RingConsumer {
    handle: Box<dyn ConsumerOps>,
    size: usize,
}

#[pymethods]
impl RingConsumer {
    /// Pops one element into `out`; False when the ring is empty.
    fn try_pop(&mut self, py: Python<'_>, out: &Bound<'_, PyAny>) -> PyResult<bool> {
        let mut output = Output::new(out)?;
        exactly(output.bytes().len(), self.size)?;
        check(py, self.handle.pop(output.bytes()))
    }

    /// Pops one element into `out`, waiting up to `timeout` seconds (None: no limit).
    #[pyo3(signature = (out, timeout=None))]
    fn pop(&mut self, py: Python<'_>, out: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let mut output = Output::new(out)?;
        exactly(output.bytes().len(), self.size)?;
        let bytes = output.bytes();
        let handle = &mut self.handle;
        blocking(py, timeout, |slice| handle.pop_wait(bytes, Some(slice)))
    }

    /// Pops up to as many elements as `out` holds; returns how many.
    fn pop_batch(&mut self, py: Python<'_>, out: &Bound<'_, PyAny>) -> PyResult<usize> {
        let mut output = Output::new(out)?;
        whole(output.bytes().len(), self.size)?;
        check(py, self.handle.pop_batch(output.bytes()))
    }
}

/// One producer per ring, driven together: element `i` of a batch goes to ring `i`.
#[pyclass(module = "shmfusion._native")]
struct ProducerGroup {
    handles: Vec<Box<dyn ProducerOps>>,
    size: usize,
}

#[pymethods]
impl ProducerGroup {
    /// Claims the producer role of every ring (all of one element type).
    #[new]
    fn new(py: Python<'_>, rings: Vec<PyRef<'_, SpscRing>>) -> PyResult<Self> {
        let size = group_size(rings.iter().map(|r| r.element.size()))?;
        let handles = rings
            .iter()
            .map(|r| check(py, r.ring.producer()))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Self { handles, size })
    }

    /// Pushes element `i` of `data` (one element per ring) to ring `i`, each waiting for space up to `timeout`
    /// seconds; one call, the GIL released once.
    #[pyo3(signature = (data, timeout=None))]
    fn push_each(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let input = Input::new(data)?;
        exactly(input.bytes().len(), self.size * self.handles.len())?;
        let size = self.size;
        let bytes = input.bytes();
        let handles = &mut self.handles;
        let mut next = 0;
        blocking(py, timeout, |slice| {
            while next < handles.len() {
                handles[next].push_wait(&bytes[next * size..(next + 1) * size], Some(slice))?;
                next += 1;
            }
            Ok(())
        })
    }
}

/// One consumer per ring, driven together: ring `i` fills element `i` of a batch.
#[pyclass(module = "shmfusion._native")]
struct ConsumerGroup {
    handles: Vec<Box<dyn ConsumerOps>>,
    size: usize,
}

fn group_size(mut sizes: impl Iterator<Item = usize>) -> PyResult<usize> {
    let first = sizes
        .next()
        .ok_or_else(|| bad_argument("a group needs at least one ring"))?;
    if sizes.any(|s| s != first) {
        return Err(bad_argument("all rings of a group must have the same element size"));
    }
    Ok(first)
}

#[pymethods]
impl ConsumerGroup {
    /// Claims the consumer role of every ring (all of one element type).
    #[new]
    fn new(py: Python<'_>, rings: Vec<PyRef<'_, SpscRing>>) -> PyResult<Self> {
        let size = group_size(rings.iter().map(|r| r.element.size()))?;
        let handles = rings
            .iter()
            .map(|r| check(py, r.ring.consumer()))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Self { handles, size })
    }

    /// Pops one element from each ring `i >= start` into element `i` of `out`, waiting up to `timeout` seconds
    /// in all; returns how many elements of `out` are filled (`len(rings)` when done; fewer after a timeout, so
    /// that the caller can check its peers and call again with `start` set to the returned count). A ring whose
    /// producer died raises `WriterGoneError` with `index` set to the ring's index.
    #[pyo3(signature = (out, start=0, timeout=None))]
    fn pop_each(
        &mut self,
        py: Python<'_>,
        out: &Bound<'_, PyAny>,
        start: usize,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let mut output = Output::new(out)?;
        exactly(output.bytes().len(), self.size * self.handles.len())?;
        let size = self.size;
        let bytes = output.bytes();
        let handles = &mut self.handles;
        let mut next = start.min(handles.len());
        let deadline = timeout.map(seconds).transpose()?.map(|t| Instant::now() + t);
        loop {
            let slice = deadline.map_or(SIGNAL_SLICE, |d| {
                d.saturating_duration_since(Instant::now()).min(SIGNAL_SLICE)
            });
            let r = py.detach(|| {
                while next < handles.len() {
                    handles[next].pop_wait(&mut bytes[next * size..(next + 1) * size], Some(slice))?;
                    next += 1;
                }
                Ok(())
            });
            match r {
                Ok(()) => return Ok(next),
                Err(BufferError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(next);
                    }
                    py.check_signals()?;
                }
                Err(e) => {
                    let err = Failure::Buffer(e).into_pyerr(py);
                    let _ = err.value(py).setattr("index", next);
                    return Err(err);
                }
            }
        }
    }
}

/// A broadcast ring of stamped samples: one writer, any number of readers, time-indexed reads.
#[pyclass(module = "shmfusion._native", frozen)]
struct BroadcastRing {
    ring: Arc<dyn BroadcastObj>,
    element: Element,
    capacity: usize,
}

fn broadcast_object<P, const N: usize>(
    py: Python<'_>,
    at: &Location,
    o: &ObjectOptions,
    create: bool,
) -> PyResult<Arc<dyn BroadcastObj>>
where
    P: shmfusion::fusion::Payload + shmfusion::fusion::Interpolate + Send + Sync + 'static,
{
    type Ring<P, const N: usize> = shmfusion::buffer::BroadcastRing<shmfusion::fusion::Stamped<P>, N>;
    Ok(ops::stamped_broadcast(locate::<Ring<P, N>>(py, at, o, create)?))
}

impl BroadcastRing {
    fn make(
        py: Python<'_>,
        create: bool,
        element_name: &str,
        capacity: usize,
        at: Location,
        o: ObjectOptions,
    ) -> PyResult<Self> {
        let element = element(element_name, 0, 1)?;
        let bad = Err(if element.is_sample() {
            bad_capacity(element, capacity, element::SAMPLE_CAPACITIES)
        } else {
            bad_argument("broadcast rings hold stamped samples (imu, mag, gnss, quaternion, f64)")
        });
        let ring = dispatch_broadcast!(element, capacity, bad, broadcast_object(py, &at, &o, create))?;
        Ok(Self {
            ring,
            element,
            capacity,
        })
    }

    fn series(&self) -> &dyn ops::SeriesOps {
        self.ring.series().expect("broadcast rings hold stamped samples")
    }
}

type FoundPy<'py> = (u64, u64, Bound<'py, pyo3::types::PyBytes>);

fn found_py(py: Python<'_>, f: ops::Found) -> FoundPy<'_> {
    (f.0, f.1, pyo3::types::PyBytes::new(py, &f.2))
}

#[pymethods]
impl BroadcastRing {
    /// Creates a ring (exclusively).
    #[staticmethod]
    #[pyo3(signature = (element, capacity, *, key=None, name=None, lifecycle="creator", mode=0o600, type_name=None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        element: &str,
        capacity: usize,
        key: Option<i64>,
        name: Option<&str>,
        lifecycle: &str,
        mode: u32,
        type_name: Option<&str>,
    ) -> PyResult<Self> {
        let o = options(lifecycle, mode, type_name, 1.0)?;
        Self::make(py, true, element, capacity, location(key, None, name)?, o)
    }

    /// Opens an existing ring.
    #[staticmethod]
    #[pyo3(signature = (element, capacity, *, key=None, id=None, name=None, mode=0o600, type_name=None, ready_timeout=1.0))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        element: &str,
        capacity: usize,
        key: Option<i64>,
        id: Option<i32>,
        name: Option<&str>,
        mode: u32,
        type_name: Option<&str>,
        ready_timeout: f64,
    ) -> PyResult<Self> {
        let o = options("creator", mode, type_name, ready_timeout)?;
        Self::make(py, false, element, capacity, existing(key, id, name)?, o)
    }

    /// The System V segment id (None for POSIX objects).
    #[getter]
    fn id(&self) -> Option<i32> {
        self.ring.id()
    }

    /// Bytes per element.
    #[getter]
    fn element_size(&self) -> usize {
        self.element.size()
    }

    /// Elements the ring holds.
    #[getter]
    fn capacity(&self) -> usize {
        self.capacity
    }

    /// Samples published so far.
    #[getter]
    fn tail(&self) -> u64 {
        self.ring.tail()
    }

    /// Claims the writer role for this process.
    fn writer(&self, py: Python<'_>) -> PyResult<BroadcastWriter> {
        Ok(BroadcastWriter {
            handle: check(py, self.ring.writer())?,
            size: self.element.size(),
        })
    }

    /// A reader starting at `start` (None: the next sample published; "oldest": the oldest still readable).
    #[pyo3(signature = (start=None))]
    fn reader(&self, start: Option<&Bound<'_, PyAny>>) -> PyResult<BroadcastReader> {
        let handle = match start {
            None => self.ring.reader(None),
            Some(s) if s.extract::<&str>().is_ok_and(|s| s == "oldest") => self.ring.reader_from_oldest(),
            Some(s) => self.ring.reader(Some(s.extract::<u64>()?)),
        };
        Ok(BroadcastReader {
            handle,
            size: self.element.size(),
        })
    }

    /// The sample nearest to `t` (ns): (position, stamp ns, payload bytes).
    fn nearest<'py>(&self, py: Python<'py>, t: u64) -> PyResult<FoundPy<'py>> {
        Ok(found_py(py, check(py, self.series().nearest(t))?))
    }

    /// The samples around `t` (ns): two (position, stamp ns, payload bytes).
    fn bracket<'py>(&self, py: Python<'py>, t: u64) -> PyResult<(FoundPy<'py>, FoundPy<'py>)> {
        let (a, b) = check(py, self.series().bracket(t))?;
        Ok((found_py(py, a), found_py(py, b)))
    }

    /// The payload interpolated at `t` (ns), as bytes.
    fn interpolate<'py>(&self, py: Python<'py>, t: u64) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let v = check(py, self.series().interpolate(t))?;
        Ok(pyo3::types::PyBytes::new(py, &v))
    }

    /// The newest sample: (position, stamp ns, payload bytes).
    fn latest<'py>(&self, py: Python<'py>) -> PyResult<FoundPy<'py>> {
        Ok(found_py(py, check(py, self.series().latest())?))
    }
}

/// The writer of a broadcast ring.
#[pyclass(module = "shmfusion._native")]
struct BroadcastWriter {
    handle: Box<dyn WriterOps>,
    size: usize,
}

#[pymethods]
impl BroadcastWriter {
    /// Publishes one element; returns its position.
    fn publish(&mut self, data: &Bound<'_, PyAny>) -> PyResult<u64> {
        let input = Input::new(data)?;
        exactly(input.bytes().len(), self.size)?;
        Ok(self.handle.publish(input.bytes()))
    }

    /// Publishes whole elements; returns the position of the last one.
    fn publish_batch(&mut self, data: &Bound<'_, PyAny>) -> PyResult<u64> {
        let input = Input::new(data)?;
        whole(input.bytes().len(), self.size)?;
        Ok(self.handle.publish_batch(input.bytes()))
    }
}

/// A reader of a broadcast ring.
#[pyclass(module = "shmfusion._native")]
struct BroadcastReader {
    handle: Box<dyn ReaderOps>,
    size: usize,
}

#[pymethods]
impl BroadcastReader {
    /// Reads the next element into `out`: its position, or None if there is nothing new. Raises LaggedError
    /// (with `missed`) when samples were lost; the reader has moved on, read again.
    fn try_recv(&mut self, py: Python<'_>, out: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let mut output = Output::new(out)?;
        exactly(output.bytes().len(), self.size)?;
        check(py, self.handle.recv(output.bytes()))
    }

    /// Reads the next element into `out`, waiting up to `timeout` seconds; returns its position.
    #[pyo3(signature = (out, timeout=None))]
    fn recv(&mut self, py: Python<'_>, out: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<u64> {
        let mut output = Output::new(out)?;
        exactly(output.bytes().len(), self.size)?;
        let bytes = output.bytes();
        let handle = &mut self.handle;
        blocking(py, timeout, |slice| handle.recv_wait(bytes, Some(slice)))
    }

    /// Reads up to as many elements as `out` holds: (how many, how many were lost on the way).
    fn recv_batch(&mut self, py: Python<'_>, out: &Bound<'_, PyAny>) -> PyResult<(usize, u64)> {
        let mut output = Output::new(out)?;
        whole(output.bytes().len(), self.size)?;
        check(py, self.handle.recv_batch(output.bytes()))
    }

    /// The position of the next element this reader receives.
    #[getter]
    fn position(&self) -> u64 {
        self.handle.position()
    }

    /// Skips everything published so far; returns how many were skipped.
    fn skip_to_latest(&mut self) -> u64 {
        self.handle.skip_to_latest()
    }
}

/// A latest-value slot.
#[pyclass(module = "shmfusion._native", frozen)]
struct LatestSlot {
    slot: Arc<dyn LatestObj>,
    element: Element,
}

fn latest_object<T: shmfusion::Shareable + 'static>(
    py: Python<'_>,
    at: &Location,
    o: &ObjectOptions,
    create: bool,
) -> PyResult<Arc<dyn LatestObj>> {
    Ok(ops::latest(locate::<shmfusion::buffer::Latest<T>>(py, at, o, create)?))
}

impl LatestSlot {
    fn make(py: Python<'_>, create: bool, element_name: &str, at: Location, o: ObjectOptions) -> PyResult<Self> {
        let element = element(element_name, 0, 1)?;
        let bad = Err(bad_argument(
            "latest slots hold stamped samples (imu, mag, gnss, quaternion, f64)",
        ));
        let slot = dispatch_latest!(element, bad, latest_object(py, &at, &o, create))?;
        Ok(Self { slot, element })
    }
}

#[pymethods]
impl LatestSlot {
    /// Creates a slot (exclusively).
    #[staticmethod]
    #[pyo3(signature = (element, *, key=None, name=None, lifecycle="creator", mode=0o600, type_name=None))]
    fn create(
        py: Python<'_>,
        element: &str,
        key: Option<i64>,
        name: Option<&str>,
        lifecycle: &str,
        mode: u32,
        type_name: Option<&str>,
    ) -> PyResult<Self> {
        let o = options(lifecycle, mode, type_name, 1.0)?;
        Self::make(py, true, element, location(key, None, name)?, o)
    }

    /// Opens an existing slot.
    #[staticmethod]
    #[pyo3(signature = (element, *, key=None, id=None, name=None, mode=0o600, type_name=None, ready_timeout=1.0))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        element: &str,
        key: Option<i64>,
        id: Option<i32>,
        name: Option<&str>,
        mode: u32,
        type_name: Option<&str>,
        ready_timeout: f64,
    ) -> PyResult<Self> {
        let o = options("creator", mode, type_name, ready_timeout)?;
        Self::make(py, false, element, existing(key, id, name)?, o)
    }

    /// The System V segment id (None for POSIX objects).
    #[getter]
    fn id(&self) -> Option<i32> {
        self.slot.id()
    }

    /// Bytes per element.
    #[getter]
    fn element_size(&self) -> usize {
        self.element.size()
    }

    /// The sequence number of the latest value (0: none yet).
    #[getter]
    fn sequence(&self) -> u64 {
        self.slot.sequence()
    }

    /// Claims the writer role for this process.
    fn writer(&self, py: Python<'_>) -> PyResult<LatestWriter> {
        Ok(LatestWriter {
            handle: check(py, self.slot.writer())?,
            size: self.element.size(),
        })
    }

    /// Reads the latest value into `out`; returns its sequence number, or None if nothing was written yet.
    fn read(&self, py: Python<'_>, out: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let mut output = Output::new(out)?;
        exactly(output.bytes().len(), self.element.size())?;
        match self.slot.read(output.bytes()) {
            Err(BufferError::Empty) => Ok(None),
            r => check(py, r).map(Some),
        }
    }

    /// Waits until the sequence number exceeds `after`, then reads into `out`; returns the sequence number.
    #[pyo3(signature = (after, out, timeout=None))]
    fn wait_newer(&self, py: Python<'_>, after: u64, out: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<u64> {
        let mut output = Output::new(out)?;
        exactly(output.bytes().len(), self.element.size())?;
        let bytes = output.bytes();
        let slot = &self.slot;
        blocking(py, timeout, |slice| slot.wait_newer(after, bytes, Some(slice)))
    }
}

/// The writer of a latest-value slot.
#[pyclass(module = "shmfusion._native")]
struct LatestWriter {
    handle: Box<dyn LatestWriterOps>,
    size: usize,
}

#[pymethods]
impl LatestWriter {
    /// Writes a value; returns its sequence number.
    fn write(&mut self, data: &Bound<'_, PyAny>) -> PyResult<u64> {
        let input = Input::new(data)?;
        exactly(input.bytes().len(), self.size)?;
        Ok(self.handle.write(input.bytes()))
    }
}

/// The layouts of the stamped sample types: {name: {"size", "align", "payload_offset", "fields": {name: offset}}}.
#[pyfunction]
fn layouts(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for (name, l) in element::layouts() {
        let d = PyDict::new(py);
        d.set_item("size", l.size)?;
        d.set_item("align", l.align)?;
        d.set_item("payload_offset", l.payload_offset)?;
        d.set_item("fields", l.fields.into_iter().collect::<Vec<_>>().into_pyobject(py)?)?;
        out.set_item(name, d)?;
    }
    Ok(out)
}

/// The capacities offered for rings of stamped samples (block rings take any power of two).
#[pyfunction]
fn capacities(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("sample", element::SAMPLE_CAPACITIES)?;
    Ok(d)
}

/// CLOCK_MONOTONIC now, in ns (the clock of sample stamps).
#[pyfunction]
fn now_ns() -> u64 {
    shmfusion::fusion::Timestamp::now().as_nanos()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    error::register(m)?;
    m.add_class::<SpscRing>()?;
    m.add_class::<RingProducer>()?;
    m.add_class::<RingConsumer>()?;
    m.add_class::<ProducerGroup>()?;
    m.add_class::<ConsumerGroup>()?;
    m.add_class::<BroadcastRing>()?;
    m.add_class::<BroadcastWriter>()?;
    m.add_class::<BroadcastReader>()?;
    m.add_class::<LatestSlot>()?;
    m.add_class::<LatestWriter>()?;
    m.add_function(wrap_pyfunction!(layouts, m)?)?;
    m.add_function(wrap_pyfunction!(capacities, m)?)?;
    m.add_function(wrap_pyfunction!(now_ns, m)?)?;
    Ok(())
}
