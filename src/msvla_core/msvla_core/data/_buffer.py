"""Normalise the ``data`` field of ROS-like messages to a flat uint8 array.

rclpy hands out ``array.array('B')`` or ``bytes`` depending on the message
path, tests and tools use lists or numpy arrays, so every converter funnels
through one place that accepts them all and rejects anything ambiguous.
"""

from __future__ import annotations

import array

import numpy as np


def as_uint8(data, what: str, error: type[Exception]) -> np.ndarray:
    """Return ``data`` as a 1-D uint8 array (a view when the input allows it).

    ``what`` names the field in error messages, ``error`` is the exception
    class to raise so each converter keeps its own error type.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, array.array):
        # Only byte arrays are unambiguous; an array('H') would silently
        # reinterpret host-endian words as message bytes.
        if data.typecode not in ("B", "b"):
            raise error(f"{what} is array('{data.typecode}'); expected array('B')")
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, np.ndarray):
        if data.dtype not in (np.uint8, np.int8):
            raise error(f"{what} has dtype {data.dtype}; expected uint8")
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (list, tuple)):
        try:
            values = np.asarray(data, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError, OverflowError) as exc:
            raise error(f"{what} must contain integers 0..255: {exc}") from None
        if values.size and (values.min() < 0 or values.max() > 255):
            raise error(f"{what} contains values outside 0..255")
        return values.astype(np.uint8)
    raise error(f"{what} has unsupported type {type(data).__name__}")
