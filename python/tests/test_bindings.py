"""Every binding against a Rust peer process (examples/py_peer.rs): values, dtypes, errors, timeouts."""

import errno
import math
import os
import threading
import time

import numpy as np
import pytest

import shmfusion as sf
from shmfusion import _native


def imu(i: int) -> np.void:
    """The sample the Rust peer makes for index i."""
    s = np.zeros(1, sf.IMU)
    s["stamp"], s["seq"], s["channel"] = 1000 * i, i, 7
    s["accel"] = [i, 2 * i, 3 * i]
    s["gyro"] = [-i, 0.5, 0.25]
    return s[0]


def test_dtypes_match_the_rust_layouts():
    native = _native.layouts()
    assert set(native) == set(sf.STAMPED)
    for name, dtype in sf.STAMPED.items():
        assert dtype.itemsize == native[name]["size"], name
        for field, offset in native[name]["fields"]:
            assert dtype.fields[field][1] == offset, (name, field)
    # The sizes the core's own tests pin.
    assert [sf.IMU.itemsize, sf.MAG.itemsize, sf.GNSS.itemsize, sf.QUATERNION.itemsize, sf.F64.itemsize] == [
        48, 40, 64, 40, 32]


def test_objects_made_by_rust_read_from_python(key, run_peer):
    peer = run_peer("serve", key)
    assert peer.stdout.readline().strip() == "ready", peer.stderr.read()

    ring = sf.BroadcastRing.open("imu", 64, key=key)
    assert (ring.tail, ring.capacity) == (100, 64)
    # A reader from position 0 is lapped: LaggedError with the exact count of samples it skips (the core keeps
    # a reader one slot clear of the writer's next overwrite, so 37 of the 100, and 63 stay readable).
    reader = ring.reader(0)
    with pytest.raises(sf.LaggedError) as lag:
        reader.try_recv()
    assert (lag.value.missed, lag.value.errno) == (37, errno.EOVERFLOW)
    batch = reader.recv_batch(max=100)
    assert batch.dtype == sf.IMU and len(batch) == 63
    assert list(batch["seq"]) == list(range(37, 100))
    assert batch[10] == imu(47)
    np.testing.assert_array_equal(batch["accel"][:, 2], 3 * np.arange(37, 100, dtype=np.float32))
    assert reader.try_recv() is None
    with pytest.raises(TimeoutError) as timeout:
        reader.recv(timeout=0.05)
    assert timeout.value.errno == errno.ETIMEDOUT

    # Time-indexed reads on the stamps (sample i stamped 1000 i ns).
    near = ring.nearest(50_400)
    assert (near.position, near.stamp) == (50, 50_000)
    assert near.value.dtype == sf.PAYLOAD["imu"] and list(near.value["accel"]) == [50, 100, 150]
    before, after = ring.bracket(50_500)
    assert (before.position, after.position) == (50, 51)
    np.testing.assert_allclose(ring.interpolate(50_500)["accel"], [50.5, 101, 151.5])
    assert ring.latest().position == 99
    with pytest.raises(sf.SeriesError) as past:
        ring.nearest(10)
    assert (past.value.reason, past.value.errno) == ("past", errno.ERANGE)
    with pytest.raises(sf.SeriesError) as future:
        ring.nearest(10**9)
    assert future.value.reason == "future"

    # The peer holds the writer role.
    with pytest.raises(sf.RoleTakenError) as taken:
        ring.writer()
    assert (taken.value.pid, taken.value.errno) == (peer.pid, errno.EBUSY)

    slot = sf.LatestSlot.open("quaternion", key=key + 1)
    value, seq = slot.read()
    assert seq == 1 and value.dtype == sf.QUATERNION
    assert (value["seq"], value["channel"], value["stamp"]) == (42, 3, 123_456)
    assert value["w"] == pytest.approx(math.cos(0.25)) and value["z"] == pytest.approx(math.sin(0.25))
    with pytest.raises(TimeoutError):
        slot.wait_newer(1, timeout=0.05)

    fixes = sf.SpscRing.open("gnss", 16, key=key + 2)
    assert len(fixes) == 3
    out = np.zeros(8, sf.GNSS)
    got = fixes.consumer().pop_batch(out)
    assert np.shares_memory(got, out) and len(got) == 3
    assert list(got["latitude_deg"]) == [48.0, 49.0, 50.0] and list(got["satellites"]) == [9, 10, 11]
    assert list(got["fix_type"]) == [sf.dtypes.FIX_3D] * 3

    # The header refuses another capacity or element type.
    with pytest.raises(sf.HeaderError) as wrong_capacity:
        sf.BroadcastRing.open("imu", 16, key=key)
    assert wrong_capacity.value.errno == errno.EPROTO
    with pytest.raises(sf.HeaderError):
        sf.BroadcastRing.open("mag", 64, key=key)

    # When the peer exits its objects go with it (the creator's default lifecycle).
    peer.stdin.close()
    assert peer.wait(timeout=10) == 0
    del ring, reader, slot, fixes
    with pytest.raises(FileNotFoundError) as gone:
        sf.BroadcastRing.open("imu", 64, key=key)
    assert gone.value.errno == errno.ENOENT


def test_python_produces_rust_consumes(key, run_peer):
    ring = sf.SpscRing.create("imu", 64, key=key)
    producer = ring.producer()
    assert producer.push_batch(np.array([imu(i) for i in range(40)], dtype=sf.IMU)) == 40
    peer = run_peer("consume", key, 100)
    for i in range(40, 100):
        producer.push(imu(i), timeout=5)
    out, err = peer.communicate(timeout=30)
    assert (peer.returncode, out.strip()) == (0, "consumed 100"), err
    with pytest.raises(sf.RoleTakenError):
        ring.producer()


def test_block_rings_are_the_typed_rust_ring(key, run_peer):
    # A runtime-sized ring of 32-byte records is byte- and header-equal to Rust's SpscRing<[u64; 4], 8>.
    record = np.dtype([("words", np.uint64, (4,))])
    ring = sf.SpscRing.create("block", 8, dtype=record, key=key)
    producer = ring.producer()
    peer = run_peer("consume-blocks", key, 50)
    for i in range(50):
        producer.push(np.array([([i, 2 * i, 3 * i, 4 * i],)], dtype=record), timeout=5)
    out, err = peer.communicate(timeout=30)
    assert (peer.returncode, out.strip()) == (0, "consumed 50"), err


def test_reader_learns_the_writer_is_gone(key, run_peer):
    ring = sf.BroadcastRing.create("imu", 16, key=key)
    reader = ring.reader()
    peer = run_peer("publish-and-die", key)
    assert reader.recv(timeout=10) == imu(1)
    peer.wait(timeout=10)
    with pytest.raises(sf.WriterGoneError) as gone:
        reader.recv(timeout=30)
    assert gone.value.errno == errno.EPIPE


def test_blocking_receive_releases_the_gil():
    ring = sf.SpscRing.create("f64", 16)
    consumer, producer = ring.consumer(), ring.producer()
    got = []
    waiter = threading.Thread(target=lambda: got.append(consumer.pop(timeout=20)))
    waiter.start()
    # This thread only runs Python code while the waiter is blocked inside pop: with the GIL held there, this
    # loop could not progress and the push would never happen before the waiter's timeout.
    spins, until = 0, time.monotonic() + 0.2
    while time.monotonic() < until:
        spins += 1
    sample = np.zeros(1, sf.F64)
    sample["value"] = 2.5
    producer.push(sample)
    waiter.join()
    assert spins > 1000 and got and got[0]["value"] == 2.5


def test_errors_carry_errno(key):
    ring = sf.SpscRing.create("imu", 16, key=key)
    with pytest.raises(FileExistsError) as exists:
        sf.SpscRing.create("imu", 16, key=key)
    assert exists.value.errno == errno.EEXIST
    with pytest.raises(ValueError):
        sf.SpscRing.create("imu", 100)
    with pytest.raises(ValueError):
        sf.SpscRing.create("nothing", 16)
    producer = ring.producer()
    with pytest.raises(ValueError):
        producer._native.try_push(np.zeros(10, np.uint8))
    consumer = ring.consumer()
    assert consumer.try_pop() is None
    with pytest.raises(TimeoutError):
        consumer.pop(timeout=0.01)
    with pytest.raises(sf.RoleTakenError):
        ring.consumer()
    # A producer that lets go of its role cleanly: the consumer learns nothing more will come.
    del producer
    with pytest.raises(sf.ClosedError) as closed:
        consumer.pop(timeout=5)
    assert closed.value.errno == errno.EPIPE
    assert issubclass(sf.WriterGoneError, sf.ShmfusionError) and issubclass(sf.ShmfusionError, OSError)


def test_posix_objects_by_name():
    name = f"/shmfusion-pytest-{os.getpid()}"
    slot = sf.LatestSlot.create("imu", name=name)
    assert slot.id is None and slot.read() is None
    assert slot.writer().write(imu(3)) == 1
    value, seq = sf.LatestSlot.open("imu", name=name).read()
    assert (value, seq) == (imu(3), 1)
    del slot
    with pytest.raises(FileNotFoundError):
        sf.LatestSlot.open("imu", name=name)


def test_private_objects_by_id_and_block_records():
    record = np.dtype([("frame", np.uint8, (84, 84, 3)), ("index", np.int64)], align=True)
    ring = sf.SpscRing.create("block", 16, dtype=record, lifecycle="last-detach")
    other = sf.SpscRing.open("block", 16, dtype=record, id=ring.id)
    frames = np.zeros(5, record)
    frames["frame"] = np.arange(5, dtype=np.uint8)[:, None, None, None]
    frames["index"] = np.arange(5)
    assert ring.producer().push_batch(frames) == 5
    out = other.consumer().pop_batch()
    assert list(out["index"]) == [0, 1, 2, 3, 4]
    assert (out["frame"][3] == 3).all() and out.dtype == record
    # The header carries the layout: another record size, capacity or type name is refused.
    with pytest.raises(sf.HeaderError):
        sf.SpscRing.open("block", 8, dtype=record, id=ring.id)
    with pytest.raises(sf.HeaderError):
        sf.SpscRing.open("block", 16, dtype=np.dtype([("x", np.float64)]), id=ring.id)
    with pytest.raises(sf.HeaderError):
        sf.SpscRing.open("block", 16, dtype=record, id=ring.id, type_name="frames")
