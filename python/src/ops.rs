//! The buffer kinds behind `dyn` interfaces over bytes, so that Python picks element type and capacity at run
//! time from the typed buffers of the core. Each handle owns an `Arc` of its object and borrows the payload in
//! it; the `Arc` is declared after the handle, so the handle is dropped first.

use std::sync::Arc;
use std::time::Duration;

use shmfusion::Shareable;
use shmfusion::buffer::{
    BroadcastReader, BroadcastRing, BroadcastWriter, Consumer, Error, Latest, LatestWriter, LayoutError, Producer,
    SpscLayout, SpscRing, SpscView, SpscViewConsumer, SpscViewProducer,
};
use shmfusion::bytemuck;
use shmfusion::fusion::{Interpolate, Payload, Sample, Stamped, TimeSeriesExt, Timestamp};

use crate::error::Failure;
use crate::object::{Object, RawObject};

/// Borrows the payload of `object` for `'static`.
///
/// # Safety
/// The caller must keep `object` alive for as long as the returned reference or anything borrowing it exists
/// (the handle types below hold the `Arc` next to the handle and drop the handle first).
unsafe fn extend<S: shmfusion::object::SharedState>(object: &Arc<Object<S>>) -> &'static S {
    // SAFETY: forwarded to the caller; the payload's address is stable for the object's life (see `Object`).
    unsafe { &*(object.get() as *const S) }
}

/// Copies `src` (exactly one element's bytes) into a value of `T`.
fn value_of<T: Shareable>(src: &[u8]) -> T {
    bytemuck::pod_read_unaligned(src)
}

/// The elements of `bytes` as `&[T]` when it is aligned for `T` and a whole number of elements.
fn as_elements<T: Shareable>(bytes: &[u8]) -> Option<&[T]> {
    bytemuck::try_cast_slice(bytes).ok()
}

/// As [`as_elements`], mutably.
fn as_elements_mut<T: Shareable>(bytes: &mut [u8]) -> Option<&mut [T]> {
    bytemuck::try_cast_slice_mut(bytes).ok()
}

/// An SPSC ring of some element type and capacity.
pub trait RingObj: Send + Sync {
    /// Claims the producer role.
    fn producer(&self) -> Result<Box<dyn ProducerOps>, Error>;
    /// Claims the consumer role.
    fn consumer(&self) -> Result<Box<dyn ConsumerOps>, Error>;
    /// Samples in the ring now (`None` if the shared positions are inconsistent).
    fn len(&self) -> Option<usize>;
    /// The object's SysV id, if it is a SysV object.
    fn id(&self) -> Option<i32>;
}

/// The producer side of an SPSC ring; byte slices are whole elements (checked by the caller).
pub trait ProducerOps: Send + Sync {
    /// Pushes one element; `false` when the ring is full.
    fn push(&mut self, src: &[u8]) -> Result<bool, Error>;
    /// Pushes one element, waiting for space up to `timeout`.
    fn push_wait(&mut self, src: &[u8], timeout: Option<Duration>) -> Result<(), Error>;
    /// Pushes as many whole elements of `src` as fit; returns how many.
    fn push_batch(&mut self, src: &[u8]) -> Result<usize, Error>;
}

/// The consumer side of an SPSC ring.
pub trait ConsumerOps: Send + Sync {
    /// Pops one element into `out`; `false` when the ring is empty.
    fn pop(&mut self, out: &mut [u8]) -> Result<bool, Error>;
    /// Pops one element into `out`, waiting up to `timeout`.
    fn pop_wait(&mut self, out: &mut [u8], timeout: Option<Duration>) -> Result<(), Error>;
    /// Pops up to `out.len() / element size` elements into `out`; returns how many.
    fn pop_batch(&mut self, out: &mut [u8]) -> Result<usize, Error>;
}

struct Ring<T: Shareable, const N: usize>(Arc<Object<SpscRing<T, N>>>);

struct RingProducer<T: Shareable, const N: usize> {
    handle: Producer<'static, T, N>,
    _object: Arc<Object<SpscRing<T, N>>>,
}

struct RingConsumer<T: Shareable, const N: usize> {
    handle: Consumer<'static, T, N>,
    _object: Arc<Object<SpscRing<T, N>>>,
}

/// An SPSC ring object of elements `T`, capacity `N`.
pub fn ring<T: Shareable + 'static, const N: usize>(object: Object<SpscRing<T, N>>) -> Arc<dyn RingObj> {
    Arc::new(Ring(Arc::new(object)))
}

impl<T: Shareable + 'static, const N: usize> RingObj for Ring<T, N> {
    fn producer(&self) -> Result<Box<dyn ProducerOps>, Error> {
        // SAFETY: the handle is stored with a clone of the `Arc` and dropped before it.
        let ring = unsafe { extend(&self.0) };
        Ok(Box::new(RingProducer {
            handle: ring.producer()?,
            _object: self.0.clone(),
        }))
    }

    fn consumer(&self) -> Result<Box<dyn ConsumerOps>, Error> {
        // SAFETY: as in `producer`.
        let ring = unsafe { extend(&self.0) };
        Ok(Box::new(RingConsumer {
            handle: ring.consumer()?,
            _object: self.0.clone(),
        }))
    }

    fn len(&self) -> Option<usize> {
        self.0.get().len()
    }

    fn id(&self) -> Option<i32> {
        self.0.id()
    }
}

impl<T: Shareable, const N: usize> ProducerOps for RingProducer<T, N> {
    fn push(&mut self, src: &[u8]) -> Result<bool, Error> {
        match self.handle.reserve() {
            Ok(mut slot) => {
                // Straight into the slot: large elements (camera frames) are copied once.
                slot.bytes().store(0, src);
                slot.commit();
                Ok(true)
            }
            Err(Error::Full) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn push_wait(&mut self, src: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        if self.push(src)? {
            return Ok(());
        }
        self.handle.push_wait(value_of(src), timeout)
    }

    fn push_batch(&mut self, src: &[u8]) -> Result<usize, Error> {
        if let Some(values) = as_elements::<T>(src) {
            return self.handle.push_slice(values);
        }
        let mut n = 0;
        for element in src.chunks_exact(size_of::<T>()) {
            if !self.push(element)? {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

impl<T: Shareable, const N: usize> ConsumerOps for RingConsumer<T, N> {
    fn pop(&mut self, out: &mut [u8]) -> Result<bool, Error> {
        match self.handle.peek() {
            Ok(slot) => {
                slot.bytes().load(0, out);
                slot.release();
                Ok(true)
            }
            Err(Error::Empty) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn pop_wait(&mut self, out: &mut [u8], timeout: Option<Duration>) -> Result<(), Error> {
        if self.pop(out)? {
            return Ok(());
        }
        let value = self.handle.pop_wait(timeout)?;
        out.copy_from_slice(bytemuck::bytes_of(&value));
        Ok(())
    }

    fn pop_batch(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        if let Some(values) = as_elements_mut::<T>(out) {
            return self.handle.pop_slice(values);
        }
        let mut n = 0;
        for element in out.chunks_exact_mut(size_of::<T>()) {
            if !self.pop(element)? {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

/// A broadcast ring of some element type and capacity.
pub trait BroadcastObj: Send + Sync {
    /// Claims the writer role.
    fn writer(&self) -> Result<Box<dyn WriterOps>, Error>;
    /// A reader starting at `start` (`None`: at the next sample to be published).
    fn reader(&self, start: Option<u64>) -> Box<dyn ReaderOps>;
    /// A reader starting at the oldest sample still readable.
    fn reader_from_oldest(&self) -> Box<dyn ReaderOps>;
    /// Samples published so far.
    fn tail(&self) -> u64;
    /// Time-indexed reads, for rings of stamped samples.
    fn series(&self) -> Option<&dyn SeriesOps>;
    /// The object's SysV id, if it is a SysV object.
    fn id(&self) -> Option<i32>;
}

/// The writer of a broadcast ring.
pub trait WriterOps: Send + Sync {
    /// Publishes one element; returns its position.
    fn publish(&mut self, src: &[u8]) -> u64;
    /// Publishes whole elements; returns the position of the last one.
    fn publish_batch(&mut self, src: &[u8]) -> u64;
}

/// A reader of a broadcast ring (a private cursor).
pub trait ReaderOps: Send + Sync {
    /// Reads the element at the cursor into `out`: its position, or `None` when there is nothing new.
    /// [`Error::Lagged`] when samples were lost (the cursor has moved past them).
    fn recv(&mut self, out: &mut [u8]) -> Result<Option<u64>, Error>;
    /// As [`recv`](Self::recv), waiting up to `timeout` for a sample.
    fn recv_wait(&mut self, out: &mut [u8], timeout: Option<Duration>) -> Result<u64, Error>;
    /// Reads up to `out.len() / element size` elements; returns how many, and how many were lost on the way.
    fn recv_batch(&mut self, out: &mut [u8]) -> Result<(usize, u64), Error>;
    /// The position of the next element this reader receives.
    fn position(&self) -> u64;
    /// Skips everything published so far; returns how many were skipped.
    fn skip_to_latest(&mut self) -> u64;
}

/// A sample found by a time-indexed read: ring position, stamp in ns, payload bytes.
pub type Found = (u64, u64, Vec<u8>);

/// Time-indexed reads on a ring of stamped samples (payload bytes out).
pub trait SeriesOps: Send + Sync {
    /// The sample nearest to `t`.
    fn nearest(&self, t: u64) -> Result<Found, Failure>;
    /// The samples around `t`.
    fn bracket(&self, t: u64) -> Result<(Found, Found), Failure>;
    /// The payload interpolated at `t`.
    fn interpolate(&self, t: u64) -> Result<Vec<u8>, Failure>;
    /// The newest sample.
    fn latest(&self) -> Result<Found, Failure>;
}

struct Broadcast<T: Shareable, const N: usize>(Arc<Object<BroadcastRing<T, N>>>);

struct StampedBroadcast<P: Payload + Send + Sync, const N: usize>(Broadcast<Stamped<P>, N>);

struct Writer<T: Shareable, const N: usize> {
    handle: BroadcastWriter<'static, T, N>,
    _object: Arc<Object<BroadcastRing<T, N>>>,
}

struct Reader<T: Shareable, const N: usize> {
    handle: BroadcastReader<'static, T, N>,
    _object: Arc<Object<BroadcastRing<T, N>>>,
}

/// A broadcast ring object of stamped samples with payload `P`, capacity `N` (with time-indexed reads).
pub fn stamped_broadcast<P: Payload + Interpolate + Send + Sync + 'static, const N: usize>(
    object: Object<BroadcastRing<Stamped<P>, N>>,
) -> Arc<dyn BroadcastObj> {
    Arc::new(StampedBroadcast(Broadcast(Arc::new(object))))
}

impl<T: Shareable + 'static, const N: usize> Broadcast<T, N> {
    fn writer(&self) -> Result<Box<dyn WriterOps>, Error> {
        // SAFETY: the handle is stored with a clone of the `Arc` and dropped before it.
        let ring = unsafe { extend(&self.0) };
        Ok(Box::new(Writer {
            handle: ring.writer()?,
            _object: self.0.clone(),
        }))
    }

    fn reader_with(
        &self,
        make: impl FnOnce(&'static BroadcastRing<T, N>) -> BroadcastReader<'static, T, N>,
    ) -> Box<dyn ReaderOps> {
        // SAFETY: as in `writer`.
        let ring = unsafe { extend(&self.0) };
        Box::new(Reader {
            handle: make(ring),
            _object: self.0.clone(),
        })
    }
}

impl<P: Payload + Interpolate + Send + Sync + 'static, const N: usize> BroadcastObj for StampedBroadcast<P, N> {
    fn writer(&self) -> Result<Box<dyn WriterOps>, Error> {
        self.0.writer()
    }

    fn reader(&self, start: Option<u64>) -> Box<dyn ReaderOps> {
        match start {
            Some(position) => self.0.reader_with(|r| r.reader_at(position)),
            None => self.0.reader_with(|r| r.reader()),
        }
    }

    fn reader_from_oldest(&self) -> Box<dyn ReaderOps> {
        self.0.reader_with(|r| r.reader_from_oldest())
    }

    fn tail(&self) -> u64 {
        self.0.0.get().tail()
    }

    fn series(&self) -> Option<&dyn SeriesOps> {
        Some(self)
    }

    fn id(&self) -> Option<i32> {
        self.0.0.id()
    }
}

impl<T: Shareable, const N: usize> WriterOps for Writer<T, N> {
    fn publish(&mut self, src: &[u8]) -> u64 {
        self.handle.publish_one(&value_of(src))
    }

    fn publish_batch(&mut self, src: &[u8]) -> u64 {
        if let Some(values) = as_elements::<T>(src) {
            return self.handle.publish_slice(values);
        }
        let mut last = self.handle.position().wrapping_sub(1);
        for element in src.chunks_exact(size_of::<T>()) {
            last = self.publish(element);
        }
        last
    }
}

impl<T: Shareable, const N: usize> ReaderOps for Reader<T, N> {
    fn recv(&mut self, out: &mut [u8]) -> Result<Option<u64>, Error> {
        match self.handle.try_recv_with(|bytes| bytes.load(0, out)) {
            Ok(((), position)) => Ok(Some(position)),
            Err(Error::Empty) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn recv_wait(&mut self, out: &mut [u8], timeout: Option<Duration>) -> Result<u64, Error> {
        if let Some(position) = self.recv(out)? {
            return Ok(position);
        }
        let (value, position) = self.handle.recv_wait(timeout)?;
        out.copy_from_slice(bytemuck::bytes_of(&value));
        Ok(position)
    }

    fn recv_batch(&mut self, out: &mut [u8]) -> Result<(usize, u64), Error> {
        let mut n = 0;
        let mut lost = 0u64;
        let mut elements = out.chunks_exact_mut(size_of::<T>());
        let mut next = elements.next();
        while let Some(element) = next.take() {
            match self.recv(element) {
                Ok(Some(_)) => {
                    n += 1;
                    next = elements.next();
                }
                Ok(None) => break,
                Err(Error::Lagged(k)) => {
                    lost = lost.saturating_add(k);
                    next = Some(element);
                }
                Err(e) => return Err(e),
            }
        }
        Ok((n, lost))
    }

    fn position(&self) -> u64 {
        self.handle.position()
    }

    fn skip_to_latest(&mut self) -> u64 {
        self.handle.skip_to_latest()
    }
}

fn found<P: Payload>(sample: Sample<P>) -> Found {
    (
        sample.seq,
        sample.stamp.as_nanos(),
        bytemuck::bytes_of(&sample.value).to_vec(),
    )
}

impl<P: Payload + Interpolate + Send + Sync + 'static, const N: usize> SeriesOps for StampedBroadcast<P, N> {
    fn nearest(&self, t: u64) -> Result<Found, Failure> {
        Ok(found(self.0.0.get().nearest(Timestamp::from_nanos(t))?))
    }

    fn bracket(&self, t: u64) -> Result<(Found, Found), Failure> {
        let b = self.0.0.get().bracket(Timestamp::from_nanos(t))?;
        Ok((found(b.before), found(b.after)))
    }

    fn interpolate(&self, t: u64) -> Result<Vec<u8>, Failure> {
        let value = self.0.0.get().interpolate_at(Timestamp::from_nanos(t))?;
        Ok(bytemuck::bytes_of(&value).to_vec())
    }

    fn latest(&self) -> Result<Found, Failure> {
        Ok(found(self.0.0.get().latest()?))
    }
}

/// A latest-value slot of some element type.
pub trait LatestObj: Send + Sync {
    /// Claims the writer role.
    fn writer(&self) -> Result<Box<dyn LatestWriterOps>, Error>;
    /// Reads the value into `out`; returns its sequence number.
    fn read(&self, out: &mut [u8]) -> Result<u64, Error>;
    /// Waits until the sequence number exceeds `after`, then reads.
    fn wait_newer(&self, after: u64, out: &mut [u8], timeout: Option<Duration>) -> Result<u64, Error>;
    /// The sequence number of the latest value (0: none yet).
    fn sequence(&self) -> u64;
    /// The object's SysV id, if it is a SysV object.
    fn id(&self) -> Option<i32>;
}

/// The writer of a latest-value slot.
pub trait LatestWriterOps: Send + Sync {
    /// Writes a value; returns its sequence number.
    fn write(&mut self, src: &[u8]) -> u64;
}

struct Slot<T: Shareable>(Arc<Object<Latest<T>>>);

struct SlotWriter<T: Shareable> {
    handle: LatestWriter<'static, T>,
    _object: Arc<Object<Latest<T>>>,
}

/// A latest-value slot object of `T`.
pub fn latest<T: Shareable + 'static>(object: Object<Latest<T>>) -> Arc<dyn LatestObj> {
    Arc::new(Slot(Arc::new(object)))
}

impl<T: Shareable + 'static> LatestObj for Slot<T> {
    fn writer(&self) -> Result<Box<dyn LatestWriterOps>, Error> {
        // SAFETY: the handle is stored with a clone of the `Arc` and dropped before it.
        let slot = unsafe { extend(&self.0) };
        Ok(Box::new(SlotWriter {
            handle: slot.writer()?,
            _object: self.0.clone(),
        }))
    }

    fn read(&self, out: &mut [u8]) -> Result<u64, Error> {
        let (value, seq) = self.0.get().read()?;
        out.copy_from_slice(bytemuck::bytes_of(&value));
        Ok(seq)
    }

    fn wait_newer(&self, after: u64, out: &mut [u8], timeout: Option<Duration>) -> Result<u64, Error> {
        let (value, seq) = self.0.get().wait_newer(after, timeout)?;
        out.copy_from_slice(bytemuck::bytes_of(&value));
        Ok(seq)
    }

    fn sequence(&self) -> u64 {
        self.0.get().sequence()
    }

    fn id(&self) -> Option<i32> {
        self.0.id()
    }
}

impl<T: Shareable> LatestWriterOps for SlotWriter<T> {
    fn write(&mut self, src: &[u8]) -> u64 {
        self.handle.write(&value_of(src))
    }
}

/// An SPSC ring whose element size and capacity are given at run time: the core's `SpscView`, the same bytes and
/// fingerprint as the typed `SpscRing<T, N>` of that layout.
struct ViewRing {
    // Borrows `object`, declared after it so that it is dropped first; handles hold their own clone of the `Arc`.
    view: SpscView<'static>,
    object: Arc<RawObject>,
}

/// An SPSC ring object of `layout` (runtime-sized); [`LayoutError::Mismatch`] if the object is not of it.
pub fn view_ring(object: RawObject, layout: SpscLayout) -> Result<Arc<dyn RingObj>, LayoutError> {
    let object = Arc::new(object);
    // SAFETY: the view, and every handle made from it, is stored with a clone of the `Arc` and dropped before it
    // (field order in `ViewRing`, `ViewProducer`, `ViewConsumer`); the payload's address is stable for the
    // object's life.
    let raw: &'static RawObject = unsafe { &*Arc::as_ptr(&object) };
    let view = match raw {
        RawObject::Sysv(o) => SpscView::new(o, &layout)?,
        RawObject::Fd(o) => SpscView::new(o, &layout)?,
    };
    Ok(Arc::new(ViewRing { view, object }))
}

struct ViewProducer {
    handle: SpscViewProducer<'static>,
    _object: Arc<RawObject>,
}

struct ViewConsumer {
    handle: SpscViewConsumer<'static>,
    size: usize,
    _object: Arc<RawObject>,
}

impl RingObj for ViewRing {
    fn producer(&self) -> Result<Box<dyn ProducerOps>, Error> {
        Ok(Box::new(ViewProducer {
            handle: self.view.producer()?,
            _object: self.object.clone(),
        }))
    }

    fn consumer(&self) -> Result<Box<dyn ConsumerOps>, Error> {
        Ok(Box::new(ViewConsumer {
            handle: self.view.consumer()?,
            size: self.view.layout().element_size(),
            _object: self.object.clone(),
        }))
    }

    fn len(&self) -> Option<usize> {
        self.view.len()
    }

    fn id(&self) -> Option<i32> {
        self.object.id()
    }
}

impl ProducerOps for ViewProducer {
    fn push(&mut self, src: &[u8]) -> Result<bool, Error> {
        match self.handle.try_push(src) {
            Ok(()) => Ok(true),
            Err(Error::Full) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn push_wait(&mut self, src: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        self.handle.push_wait(src, timeout)
    }

    fn push_batch(&mut self, src: &[u8]) -> Result<usize, Error> {
        let mut n = 0;
        for element in src.chunks_exact(self.handle.layout().element_size()) {
            if !self.push(element)? {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

impl ConsumerOps for ViewConsumer {
    fn pop(&mut self, out: &mut [u8]) -> Result<bool, Error> {
        match self.handle.try_pop_into(out) {
            Ok(()) => Ok(true),
            Err(Error::Empty) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn pop_wait(&mut self, out: &mut [u8], timeout: Option<Duration>) -> Result<(), Error> {
        self.handle.pop_wait_into(out, timeout)
    }

    fn pop_batch(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let mut n = 0;
        for element in out.chunks_exact_mut(self.size) {
            if !self.pop(element)? {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}
