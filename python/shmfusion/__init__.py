"""shmfusion for Python: shared-memory rings of sensor samples as numpy arrays.

Buffers live in System V segments (``key=``, or no key for a private segment reachable by ``id``) or POSIX
shared memory (``name=``), created by one process and opened by others, Rust, C or Python alike:

* :class:`SpscRing`: single producer, single consumer, never overwrites (``push``/``pop``, batches);
* :class:`BroadcastRing`: one writer, any number of readers, the oldest samples overwritten; a slow reader gets
  :class:`LaggedError` with the number of samples it missed; time-indexed reads (``nearest``, ``bracket``,
  ``interpolate``) on the samples' timestamps;
* :class:`LatestSlot`: the newest value only.

Elements are the core's stamped samples (``"imu"``, ``"mag"``, ``"gnss"``, ``"quaternion"``, ``"f64"``; numpy
structured dtypes in :mod:`shmfusion.dtypes`), and for SPSC rings also opaque records of up to 64 KiB
(``"block"``). Reads return numpy arrays; batch reads copy once into a preallocated or caller-provided array.
Blocking calls take ``timeout`` in seconds (None: no limit), release the GIL, and raise ``TimeoutError``.

Errors are ``OSError`` with an ``errno``: the built-in subclasses for system-call errors
(``FileNotFoundError`` for a missing key, ``FileExistsError``, ``PermissionError``), ``TimeoutError``, and the
subclasses of :class:`ShmfusionError` for the library's own conditions.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import _native, dtypes
from ._native import (
    ClosedError,
    ContendedError,
    CorruptError,
    HeaderError,
    LaggedError,
    ReaderGoneError,
    RoleTakenError,
    SeriesError,
    ShmfusionError,
    VerifyError,
    WriterGoneError,
)
from .dtypes import F64, GNSS, IMU, MAG, PAYLOAD, QUATERNION, STAMPED

__all__ = [
    "SpscRing", "Producer", "Consumer", "BroadcastRing", "BroadcastWriter", "BroadcastReader", "LatestSlot",
    "LatestWriter", "Found", "now_ns", "dtypes", "IMU", "MAG", "GNSS", "QUATERNION", "F64", "STAMPED", "PAYLOAD",
    "ShmfusionError", "HeaderError", "VerifyError", "RoleTakenError", "WriterGoneError", "ReaderGoneError",
    "LaggedError", "ClosedError", "CorruptError", "ContendedError", "SeriesError",
]

now_ns = _native.now_ns


def _bytes_in(value, dtype: np.dtype) -> np.ndarray:
    """``value`` (a record, an array of records, a tuple, ...) as C-contiguous bytes of ``dtype`` elements."""
    arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
    return arr.reshape(-1).view(np.uint8)


def _bytes_out(out: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if not isinstance(out, np.ndarray) or out.dtype != dtype:
        raise TypeError(f"out must be a numpy array of dtype {dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    return out.reshape(-1).view(np.uint8)


def _record_dtype(element: str, dtype: Optional[np.dtype]) -> np.dtype:
    if element == "block":
        if dtype is None:
            raise ValueError('a "block" ring needs dtype= (the record dtype)')
        return np.dtype(dtype)
    if dtype is not None and np.dtype(dtype) != STAMPED[element]:
        raise ValueError(f"{element} elements have dtype shmfusion.STAMPED[{element!r}]")
    return STAMPED[dtypes.element_of(element)]


def _alignment(dtype: np.dtype) -> int:
    """The record alignment a block ring is created with: numpy's, at most 8 (as the core's rings allow)."""
    return min(dtype.alignment, 8)


class SpscRing:
    """A single-producer single-consumer ring in shared memory.

    ``element`` is a stamped sample name (``"imu"``, ...; capacities 16, 64, 256, 1024, 4096) or ``"block"``
    with ``dtype=`` any numpy dtype (a record of any size; any power-of-two capacity). A block ring is the core's
    runtime-sized ring, byte-equal to a Rust ``SpscRing<T, N>`` with ``size_of::<T>() == dtype.itemsize``; its
    header carries ``type_name`` (default ``"shmfusion.block"``), which a peer must give too.
    """

    def __init__(self, native: _native.SpscRing, dtype: np.dtype, element: str):
        self._native = native
        self.dtype = dtype
        self.element = element

    @classmethod
    def create(cls, element: str, capacity: int, *, dtype=None, key: Optional[int] = None,
               name: Optional[str] = None, lifecycle: str = "creator", mode: int = 0o600,
               type_name: Optional[str] = None) -> "SpscRing":
        """Creates a ring exclusively (``FileExistsError`` if the key or name is taken).

        ``lifecycle``: ``"creator"`` (removed when this handle goes), ``"last-detach"`` (removed when nobody is
        attached; SysV only, open it by ``id``) or ``"persist"``.
        """
        record = _record_dtype(element, dtype)
        native = _native.SpscRing.create(element, capacity, element_size=record.itemsize,
                                         element_align=_alignment(record), key=key, name=name,
                                         lifecycle=lifecycle, mode=mode, type_name=type_name)
        return cls(native, record, element)

    @classmethod
    def open(cls, element: str, capacity: int, *, dtype=None, key: Optional[int] = None, id: Optional[int] = None,
             name: Optional[str] = None, mode: int = 0o600, type_name: Optional[str] = None,
             ready_timeout: float = 1.0) -> "SpscRing":
        """Opens an existing ring; its header must match element, capacity and type (``HeaderError`` if not)."""
        record = _record_dtype(element, dtype)
        native = _native.SpscRing.open(element, capacity, element_size=record.itemsize,
                                       element_align=_alignment(record), key=key, id=id, name=name, mode=mode,
                                       type_name=type_name, ready_timeout=ready_timeout)
        return cls(native, record, element)

    @property
    def id(self) -> Optional[int]:
        """The System V segment id (None for POSIX objects)."""
        return self._native.id

    @property
    def capacity(self) -> int:
        return self._native.capacity

    def __len__(self) -> int:
        return len(self._native)

    def producer(self) -> "Producer":
        """Claims the producer role (``RoleTakenError`` if a live process holds it)."""
        return Producer(self._native.producer(), self.dtype)

    def consumer(self) -> "Consumer":
        """Claims the consumer role (``RoleTakenError`` if a live process holds it)."""
        return Consumer(self._native.consumer(), self.dtype, self.capacity)


class Producer:
    """The producer of an :class:`SpscRing`."""

    def __init__(self, native: _native.RingProducer, dtype: np.dtype):
        self._native = native
        self.dtype = dtype

    def try_push(self, value) -> bool:
        """Pushes one element; False when the ring is full."""
        return self._native.try_push(_bytes_in(value, self.dtype))

    def push(self, value, timeout: Optional[float] = None) -> None:
        """Pushes one element, waiting for space (``TimeoutError``, ``ReaderGoneError``)."""
        self._native.push(_bytes_in(value, self.dtype), timeout)

    def push_batch(self, values) -> int:
        """Pushes as many elements of the array ``values`` as fit, in one release; returns how many."""
        return self._native.push_batch(_bytes_in(values, self.dtype))


class Consumer:
    """The consumer of an :class:`SpscRing`."""

    def __init__(self, native: _native.RingConsumer, dtype: np.dtype, capacity: int):
        self._native = native
        self.dtype = dtype
        self.capacity = capacity

    def try_pop(self) -> Optional[np.void]:
        """Pops one element, or None when the ring is empty."""
        out = np.empty(1, self.dtype)
        return out[0] if self._native.try_pop(_bytes_out(out, self.dtype)) else None

    def pop(self, timeout: Optional[float] = None, out: Optional[np.ndarray] = None) -> np.void:
        """Pops one element, waiting up to ``timeout`` s (``TimeoutError``; ``WriterGoneError`` once the
        producer died and the ring is empty). With ``out`` (a 1-element array) it is filled and returned."""
        target = np.empty(1, self.dtype) if out is None else out
        self._native.pop(_bytes_out(target, self.dtype), timeout)
        return target[0] if out is None else out

    def pop_batch(self, out: Optional[np.ndarray] = None, max: Optional[int] = None) -> np.ndarray:
        """Pops up to ``len(out)`` elements (or up to ``max``, default the capacity, into a new array) straight
        from shared memory into the array, one copy; returns the filled part of ``out``."""
        if out is None:
            out = np.empty(self.capacity if max is None else max, self.dtype)
        n = self._native.pop_batch(_bytes_out(out, self.dtype))
        return out[:n]


class Found:
    """A sample found by a time-indexed read: ``position`` in the ring, ``stamp`` (ns) and ``value`` (payload)."""

    __slots__ = ("position", "stamp", "value")

    def __init__(self, position: int, stamp: int, value: np.void):
        self.position, self.stamp, self.value = position, stamp, value

    def __repr__(self) -> str:
        return f"Found(position={self.position}, stamp={self.stamp}, value={self.value!r})"


class BroadcastRing:
    """A broadcast ring of stamped samples: one writer, any number of readers, time-indexed reads."""

    def __init__(self, native: _native.BroadcastRing, element: str):
        self._native = native
        self.element = element
        self.dtype = STAMPED[element]
        self.payload_dtype = PAYLOAD[element]

    @classmethod
    def create(cls, element: str, capacity: int, *, key: Optional[int] = None, name: Optional[str] = None,
               lifecycle: str = "creator", mode: int = 0o600, type_name: Optional[str] = None) -> "BroadcastRing":
        """Creates a ring exclusively (see :meth:`SpscRing.create`)."""
        element = dtypes.element_of(element)
        return cls(_native.BroadcastRing.create(element, capacity, key=key, name=name, lifecycle=lifecycle,
                                                mode=mode, type_name=type_name), element)

    @classmethod
    def open(cls, element: str, capacity: int, *, key: Optional[int] = None, id: Optional[int] = None,
             name: Optional[str] = None, mode: int = 0o600, type_name: Optional[str] = None,
             ready_timeout: float = 1.0) -> "BroadcastRing":
        """Opens an existing ring."""
        element = dtypes.element_of(element)
        return cls(_native.BroadcastRing.open(element, capacity, key=key, id=id, name=name, mode=mode,
                                              type_name=type_name, ready_timeout=ready_timeout), element)

    @property
    def id(self) -> Optional[int]:
        return self._native.id

    @property
    def capacity(self) -> int:
        return self._native.capacity

    @property
    def tail(self) -> int:
        """Samples published so far."""
        return self._native.tail

    def writer(self) -> "BroadcastWriter":
        """Claims the writer role (``RoleTakenError`` if a live process holds it)."""
        return BroadcastWriter(self._native.writer(), self.dtype)

    def reader(self, start=None) -> "BroadcastReader":
        """A reader from the next sample published (``start=None``), the oldest readable (``"oldest"``) or a
        position."""
        return BroadcastReader(self._native.reader(start), self.dtype)

    def _found(self, f) -> Found:
        return Found(f[0], f[1], np.frombuffer(f[2], self.payload_dtype)[0])

    def nearest(self, t: int) -> Found:
        """The sample nearest to time ``t`` (ns; ``SeriesError`` outside the readable window or when empty)."""
        return self._found(self._native.nearest(t))

    def bracket(self, t: int) -> tuple[Found, Found]:
        """The samples around ``t``: ``before.stamp <= t <= after.stamp``."""
        a, b = self._native.bracket(t)
        return self._found(a), self._found(b)

    def interpolate(self, t: int) -> np.void:
        """The payload interpolated at ``t`` (linear; slerp for quaternions)."""
        return np.frombuffer(self._native.interpolate(t), self.payload_dtype)[0]

    def latest(self) -> Found:
        """The newest sample."""
        return self._found(self._native.latest())


class BroadcastWriter:
    """The writer of a :class:`BroadcastRing`: never waits; overwrites the oldest sample."""

    def __init__(self, native: _native.BroadcastWriter, dtype: np.dtype):
        self._native = native
        self.dtype = dtype

    def publish(self, value) -> int:
        """Publishes one sample; returns its position."""
        return self._native.publish(_bytes_in(value, self.dtype))

    def publish_batch(self, values) -> int:
        """Publishes an array of samples with one release; returns the position of the last."""
        return self._native.publish_batch(_bytes_in(values, self.dtype))


class BroadcastReader:
    """A reader of a :class:`BroadcastRing` (a private cursor; it never writes shared memory)."""

    def __init__(self, native: _native.BroadcastReader, dtype: np.dtype):
        self._native = native
        self.dtype = dtype
        #: Samples this reader lost to overwriting, over its life (batch reads add to it).
        self.lagged = 0

    @property
    def position(self) -> int:
        return self._native.position

    def try_recv(self) -> Optional[np.void]:
        """The next sample, or None if there is none; ``LaggedError`` (``missed``) when samples were lost."""
        out = np.empty(1, self.dtype)
        try:
            got = self._native.try_recv(_bytes_out(out, self.dtype))
        except LaggedError as e:
            self.lagged += e.missed
            raise
        return None if got is None else out[0]

    def recv(self, timeout: Optional[float] = None, out: Optional[np.ndarray] = None) -> np.void:
        """The next sample, waiting up to ``timeout`` s (``TimeoutError``, ``LaggedError``,
        ``WriterGoneError``)."""
        target = np.empty(1, self.dtype) if out is None else out
        try:
            self._native.recv(_bytes_out(target, self.dtype), timeout)
        except LaggedError as e:
            self.lagged += e.missed
            raise
        return target[0] if out is None else out

    def recv_batch(self, out: Optional[np.ndarray] = None, max: int = 256) -> np.ndarray:
        """Reads the available samples into ``out`` (or a new array of ``max``), one copy each straight from
        shared memory; samples lost on the way are skipped and counted in :attr:`lagged`. Returns the filled
        part."""
        if out is None:
            out = np.empty(max, self.dtype)
        n, lost = self._native.recv_batch(_bytes_out(out, self.dtype))
        self.lagged += lost
        return out[:n]

    def skip_to_latest(self) -> int:
        """Skips everything published so far; returns how many samples were skipped."""
        return self._native.skip_to_latest()


class LatestSlot:
    """A latest-value slot of stamped samples."""

    def __init__(self, native: _native.LatestSlot, element: str):
        self._native = native
        self.element = element
        self.dtype = STAMPED[element]

    @classmethod
    def create(cls, element: str, *, key: Optional[int] = None, name: Optional[str] = None,
               lifecycle: str = "creator", mode: int = 0o600, type_name: Optional[str] = None) -> "LatestSlot":
        """Creates a slot exclusively."""
        element = dtypes.element_of(element)
        return cls(_native.LatestSlot.create(element, key=key, name=name, lifecycle=lifecycle, mode=mode,
                                             type_name=type_name), element)

    @classmethod
    def open(cls, element: str, *, key: Optional[int] = None, id: Optional[int] = None, name: Optional[str] = None,
             mode: int = 0o600, type_name: Optional[str] = None, ready_timeout: float = 1.0) -> "LatestSlot":
        """Opens an existing slot."""
        element = dtypes.element_of(element)
        return cls(_native.LatestSlot.open(element, key=key, id=id, name=name, mode=mode, type_name=type_name,
                                           ready_timeout=ready_timeout), element)

    @property
    def id(self) -> Optional[int]:
        return self._native.id

    @property
    def sequence(self) -> int:
        """The number of writes so far (0: none)."""
        return self._native.sequence

    def writer(self) -> "LatestWriter":
        """Claims the writer role."""
        return LatestWriter(self._native.writer(), self.dtype)

    def read(self) -> Optional[tuple[np.void, int]]:
        """(value, sequence number), or None if nothing was written yet."""
        out = np.empty(1, self.dtype)
        seq = self._native.read(_bytes_out(out, self.dtype))
        return None if seq is None else (out[0], seq)

    def wait_newer(self, after: int, timeout: Optional[float] = None) -> tuple[np.void, int]:
        """Waits for a value newer than sequence number ``after``; (value, sequence number)."""
        out = np.empty(1, self.dtype)
        seq = self._native.wait_newer(after, _bytes_out(out, self.dtype), timeout)
        return out[0], seq


class LatestWriter:
    """The writer of a :class:`LatestSlot`."""

    def __init__(self, native: _native.LatestWriter, dtype: np.dtype):
        self._native = native
        self.dtype = dtype

    def write(self, value) -> int:
        """Writes a value; returns its sequence number."""
        return self._native.write(_bytes_in(value, self.dtype))
