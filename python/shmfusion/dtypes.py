"""numpy dtypes of the core's stamped sample types, in the exact layout of the Rust ``#[repr(C)]`` structs.

Every stamped sample starts with the ``SampleHeader`` fields ``stamp`` (CLOCK_MONOTONIC ns), ``seq``,
``channel`` and ``flags``; the payload's fields follow. ``PAYLOAD[name]`` is the payload alone, as the
time-indexed reads return it. The layouts are checked against the Rust library on import (offsets, item
size), so a change on either side cannot go unnoticed.
"""

from __future__ import annotations

import numpy as np

from . import _native

_HEADER = [("stamp", "=u8"), ("seq", "=u8"), ("channel", "=u4"), ("flags", "=u4")]
_VEC3 = ("=f4", (3,))

_PAYLOAD_FIELDS: dict[str, list[tuple]] = {
    "imu": [("accel", *_VEC3), ("gyro", *_VEC3)],
    "mag": [("field", *_VEC3), ("reserved", "=u4")],
    "gnss": [
        ("latitude_deg", "=f8"),
        ("longitude_deg", "=f8"),
        ("altitude_m", "=f8"),
        ("horizontal_accuracy_m", "=f4"),
        ("vertical_accuracy_m", "=f4"),
        ("fix_type", "=u4"),
        ("satellites", "=u4"),
    ],
    "quaternion": [("w", "=f4"), ("x", "=f4"), ("y", "=f4"), ("z", "=f4")],
    "f64": [("value", "=f8")],
}

#: Stamped sample dtypes by element name: ``imu``, ``mag``, ``gnss``, ``quaternion``, ``f64``.
STAMPED: dict[str, np.dtype] = {name: np.dtype(_HEADER + fields) for name, fields in _PAYLOAD_FIELDS.items()}
#: Payload dtypes (no header) by element name.
PAYLOAD: dict[str, np.dtype] = {name: np.dtype(fields) for name, fields in _PAYLOAD_FIELDS.items()}

IMU = STAMPED["imu"]
MAG = STAMPED["mag"]
GNSS = STAMPED["gnss"]
QUATERNION = STAMPED["quaternion"]
F64 = STAMPED["f64"]

#: GnssFix.fix_type values.
NO_FIX, FIX_2D, FIX_3D = 0, 2, 3


def element_of(dtype: np.dtype | str) -> str:
    """The element name for a stamped dtype (or an element name)."""
    if isinstance(dtype, str):
        if dtype not in STAMPED:
            raise ValueError(f"unknown element {dtype!r}; one of {sorted(STAMPED)}")
        return dtype
    for name, d in STAMPED.items():
        if np.dtype(dtype) == d:
            return name
    raise ValueError(f"{dtype} is not one of shmfusion's stamped sample dtypes")


def check_layouts() -> None:
    """Raises ``ImportError`` unless every dtype matches the Rust layout (item size and field offsets)."""
    native = _native.layouts()
    for name, dtype in STAMPED.items():
        rust = native[name]
        problems = []
        if dtype.itemsize != rust["size"]:
            problems.append(f"itemsize {dtype.itemsize} != Rust size {rust['size']}")
        for field, offset in rust["fields"]:
            if field not in dtype.fields:
                problems.append(f"field {field} missing")
            elif dtype.fields[field][1] != offset:
                problems.append(f"{field} at {dtype.fields[field][1]} != Rust offset {offset}")
        if PAYLOAD[name].itemsize != rust["size"] - rust["payload_offset"]:
            problems.append("payload size differs")
        if problems:
            raise ImportError(f"shmfusion dtype {name} does not match the Rust layout: {'; '.join(problems)}")


check_layouts()
