"""Conversion between sensor_msgs/Image-like objects and numpy arrays.

Messages are duck-typed: anything with ``height``, ``width``, ``encoding``,
``is_bigendian``, ``step`` and ``data`` works, so this module never imports
ROS and can be tested with plain stand-ins.
"""

from __future__ import annotations

import numpy as np

from msvla_core.data._buffer import as_uint8


class ImageFormatError(ValueError):
    """An image message or array does not match its declared layout."""


# encoding -> (element dtype, channels). Element dtypes are native-endian;
# the wire byte order comes from ``is_bigendian``.
_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")
RGB_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


def _encoding_info(encoding: str) -> tuple[np.dtype, int]:
    try:
        return _ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise ImageFormatError(
            f"Image.encoding={encoding!r} is not supported; "
            f"expected one of {', '.join(SUPPORTED_ENCODINGS)}"
        ) from None


def bytes_per_pixel(encoding: str) -> int:
    dtype, channels = _encoding_info(encoding)
    return dtype.itemsize * channels


def image_to_array(msg) -> np.ndarray:
    """Decode an Image message into a fresh, writable, native-endian array.

    Shape is (H, W) for single-channel encodings and (H, W, C) otherwise;
    channels stay in the message's order (bgr8 stays BGR).
    """
    dtype, channels = _encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0:
        raise ImageFormatError(f"Image.height={height} must be positive")
    if width <= 0:
        raise ImageFormatError(f"Image.width={width} must be positive")
    row_bytes = width * dtype.itemsize * channels
    if step < row_bytes:
        raise ImageFormatError(
            f"Image.step={step} is smaller than width*bytes_per_pixel={row_bytes} "
            f"for encoding {msg.encoding}"
        )
    buf = as_uint8(msg.data, "Image.data", ImageFormatError)
    if buf.size != step * height:
        raise ImageFormatError(
            f"Image.data has {buf.size} bytes but step*height={step}*{height}"
            f"={step * height}"
        )
    # Drop per-row padding first; the contiguous copy also makes the view
    # below legal when step is not a multiple of the element size.
    rows = np.ascontiguousarray(buf.reshape(height, step)[:, :row_bytes])
    wire = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = rows.view(wire).astype(dtype)  # copies, so the message buffer may be reused
    if channels == 1:
        return pixels.reshape(height, width)
    return pixels.reshape(height, width, channels)


def image_to_rgb(msg) -> np.ndarray:
    """Decode a colour or mono8 Image into an (H, W, 3) uint8 RGB array."""
    if msg.encoding not in RGB_ENCODINGS:
        raise ImageFormatError(
            f"Image.encoding={msg.encoding!r} cannot be converted to RGB; "
            f"expected one of {', '.join(RGB_ENCODINGS)}"
        )
    pixels = image_to_array(msg)
    if msg.encoding == "bgr8":
        pixels = pixels[..., ::-1]
    elif msg.encoding == "rgba8":
        pixels = pixels[..., :3]
    elif msg.encoding == "bgra8":
        pixels = pixels[..., 2::-1]
    elif msg.encoding == "mono8":
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels)


def depth_to_meters(msg) -> np.ndarray:
    """Decode a depth Image into float32 metres with NaN where there is no return.

    16UC1/mono16 carry millimetres with 0 meaning "no return"; 32FC1 carries
    metres where drivers use 0, NaN, +-inf or negatives for invalid pixels.
    """
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ImageFormatError(
            f"Image.encoding={msg.encoding!r} is not a depth encoding; "
            f"expected one of {', '.join(DEPTH_ENCODINGS)}"
        )
    raw = image_to_array(msg)
    if raw.dtype == np.uint16:
        # Division keeps the result the nearest float32 to the true value.
        meters = raw.astype(np.float32) / np.float32(1000.0)
        meters[raw == 0] = np.nan
        return meters
    with np.errstate(invalid="ignore"):
        invalid = ~np.isfinite(raw) | (raw <= 0)
    raw[invalid] = np.nan
    return raw


def depth_validity(depth_m, min_range: float, max_range: float) -> np.ndarray:
    """Boolean mask of depths that are finite and within [min_range, max_range]."""
    if not min_range <= max_range:
        raise ValueError(f"min_range={min_range} must not exceed max_range={max_range}")
    depth = np.asarray(depth_m)
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth >= min_range) & (depth <= max_range)


def array_to_image_fields(array, encoding: str) -> dict:
    """Build keyword arguments for an Image message from an array.

    Expected dtypes: uint8 for 8-bit encodings, uint16 millimetres for
    16UC1/mono16, float32 metres for 32FC1. Output is little-endian and
    unpadded; ``data`` is ``bytes`` so ``Image(**fields)`` accepts it.
    """
    dtype, channels = _encoding_info(encoding)
    arr = np.asarray(array)
    # Compare ignoring byte order: a big-endian uint16 array is still uint16.
    if arr.dtype.newbyteorder("<") != dtype.newbyteorder("<"):
        raise ImageFormatError(
            f"array dtype {arr.dtype} does not match encoding {encoding} "
            f"(expected {dtype})"
        )
    if channels == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    expected_ndim = 2 if channels == 1 else 3
    if arr.ndim != expected_ndim or (channels > 1 and arr.shape[2] != channels):
        wanted = "(H, W) or (H, W, 1)" if channels == 1 else f"(H, W, {channels})"
        raise ImageFormatError(
            f"array shape {arr.shape} does not fit encoding {encoding} (expected {wanted})"
        )
    height, width = arr.shape[:2]
    if height == 0 or width == 0:
        raise ImageFormatError(f"array shape {arr.shape} has zero height or width")
    data = np.ascontiguousarray(arr, dtype=dtype.newbyteorder("<")).tobytes()
    return {
        "height": int(height),
        "width": int(width),
        "encoding": encoding,
        "is_bigendian": 0,
        "step": int(width) * dtype.itemsize * channels,
        "data": data,
    }
