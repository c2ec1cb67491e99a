"""Tests for msvla_core.data.image using plain stand-ins for sensor_msgs/Image."""

import array
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from msvla_core.data.image import (
    ImageFormatError,
    array_to_image_fields,
    depth_to_meters,
    depth_validity,
    image_to_array,
    image_to_rgb,
)

# The test keeps its own table so a wrong entry in the module is caught.
ENCODINGS = {
    "rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3),
    "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1), "mono16": (np.uint16, 1),
    "16UC1": (np.uint16, 1), "32FC1": (np.float32, 1),
}
CONTAINERS = {
    "bytes": bytes,
    "bytearray": bytearray,
    "array": lambda raw: array.array("B", raw),
    "list": list,
    "numpy": lambda raw: np.frombuffer(raw, dtype=np.uint8).copy(),
}
PROPERTY = settings(max_examples=60, deadline=None)


def build_msg(arr, encoding, big_endian=False, padding=0, container="bytes"):
    """Serialise by hand, independently of the module, with row padding."""
    dtype, channels = ENCODINGS[encoding]
    height, width = arr.shape[:2]
    wire = np.asarray(arr).astype(np.dtype(dtype).newbyteorder(">" if big_endian else "<"))
    row_bytes = width * np.dtype(dtype).itemsize * channels
    rows = np.frombuffer(wire.tobytes(), dtype=np.uint8).reshape(height, row_bytes)
    padded = np.full((height, row_bytes + padding), 0xAB, dtype=np.uint8)
    padded[:, :row_bytes] = rows
    return SimpleNamespace(
        height=height, width=width, encoding=encoding, is_bigendian=int(big_endian),
        step=row_bytes + padding, data=CONTAINERS[container](padded.tobytes()))


@st.composite
def images(draw, encodings=tuple(ENCODINGS)):
    encoding = draw(st.sampled_from(encodings))
    dtype, channels = ENCODINGS[encoding]
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    if channels > 1:
        shape += (channels,)
    elements = st.floats(width=32) if dtype is np.float32 else None
    return encoding, draw(hnp.arrays(dtype, shape, elements=elements))


def assert_bitwise_equal(actual, expected):
    assert actual.dtype == expected.dtype and actual.dtype.isnative
    assert actual.shape == expected.shape
    assert actual.tobytes() == expected.tobytes()  # bitwise, so NaNs compare too


# --- round trips ------------------------------------------------------------

@PROPERTY
@given(images(), st.integers(0, 7))
def test_fields_round_trip_with_row_padding(image, padding):
    encoding, arr = image
    fields = array_to_image_fields(arr, encoding)
    assert isinstance(fields["data"], bytes) and fields["is_bigendian"] == 0
    height, step = fields["height"], fields["step"]
    # Re-pad the produced rows by hand to exercise step > width*bpp.
    rows = np.frombuffer(fields["data"], dtype=np.uint8).reshape(height, step)
    padded = np.concatenate([rows, np.full((height, padding), 7, np.uint8)], axis=1)
    msg = SimpleNamespace(**dict(fields, step=step + padding, data=padded.tobytes()))
    assert_bitwise_equal(image_to_array(msg), arr)


@PROPERTY
@given(images(), st.integers(0, 9), st.booleans(), st.sampled_from(sorted(CONTAINERS)))
def test_hand_built_messages_decode(image, padding, big_endian, container):
    encoding, arr = image
    msg = build_msg(arr, encoding, big_endian, padding, container)
    out = image_to_array(msg)
    assert_bitwise_equal(out, arr)
    out[...] = 0  # result must be a writable copy, not a view of the message


@PROPERTY
@given(images(("rgb8", "bgr8", "rgba8", "bgra8", "mono8")), st.integers(0, 5))
def test_image_to_rgb_matches_channel_order(image, padding):
    encoding, arr = image
    rgb = image_to_rgb(build_msg(arr, encoding, padding=padding))
    assert rgb.shape == arr.shape[:2] + (3,) and rgb.dtype == np.uint8
    red = {"rgb8": 0, "rgba8": 0, "bgr8": 2, "bgra8": 2}
    for out_channel, name in enumerate("rgb"):
        if encoding == "mono8":
            expected = arr
        else:
            source = red[encoding] if name == "r" else 1 if name == "g" else 2 - red[encoding]
            expected = arr[..., source]
        np.testing.assert_array_equal(rgb[..., out_channel], expected)


@PROPERTY
@given(hnp.arrays(np.uint16, st.tuples(st.integers(1, 5), st.integers(1, 5))),
       st.booleans(), st.sampled_from(["16UC1", "mono16"]))
def test_millimetre_depth_to_meters(mm, big_endian, encoding):
    meters = depth_to_meters(build_msg(mm, encoding, big_endian, padding=3))
    assert meters.dtype == np.float32
    assert np.array_equal(np.isnan(meters), mm == 0)
    valid = mm > 0
    np.testing.assert_allclose(meters[valid], mm[valid] / 1000.0, rtol=1e-6)


def test_float_depth_invalid_values_become_nan():
    depth = np.array([[0.0, np.nan, np.inf], [-np.inf, -1.0, 2.5]], dtype=np.float32)
    meters = depth_to_meters(build_msg(depth, "32FC1", big_endian=True, padding=4))
    expected = np.array([[np.nan] * 3, [np.nan, np.nan, 2.5]], dtype=np.float32)
    np.testing.assert_array_equal(meters, expected)


def test_depth_validity_mask():
    depth = np.array([np.nan, 0.1, 0.5, 3.0, 3.5, np.inf], dtype=np.float32)
    mask = depth_validity(depth, 0.2, 3.0)
    assert mask.tolist() == [False, False, True, True, False, False]
    with pytest.raises(ValueError, match="min_range"):
        depth_validity(depth, 2.0, 1.0)


def test_single_channel_accepts_trailing_axis():
    arr = np.arange(6, dtype=np.uint16).reshape(2, 3, 1)
    fields = array_to_image_fields(arr, "16UC1")
    assert (fields["height"], fields["width"], fields["step"]) == (2, 3, 6)


def test_big_endian_input_array_is_serialised_little_endian():
    arr = np.array([[1, 258]], dtype=">u2")
    fields = array_to_image_fields(arr, "mono16")
    assert fields["data"] == bytes([1, 0, 2, 1])


# --- malformed messages -------------------------------------------------------

def good_msg(**overrides):
    msg = build_msg(np.zeros((2, 4, 3), np.uint8), "rgb8")
    for key, value in overrides.items():
        setattr(msg, key, value)
    return msg


@pytest.mark.parametrize("overrides, pattern", [
    ({"encoding": "yuv422"}, r"Image\.encoding='yuv422' is not supported"),
    ({"height": 0}, r"Image\.height=0 must be positive"),
    ({"height": -2}, r"Image\.height=-2"),
    ({"width": 0}, r"Image\.width=0 must be positive"),
    ({"step": 10}, r"Image\.step=10 is smaller than width\*bytes_per_pixel=12 "
                   r"for encoding rgb8"),
    ({"data": bytes(23)}, r"Image\.data has 23 bytes but step\*height=12\*2=24"),
    ({"data": bytes(25)}, r"Image\.data has 25 bytes but step\*height=12\*2=24"),
    ({"data": array.array("H", [0] * 12)}, r"Image\.data is array\('H'\)"),
    ({"data": np.zeros(24, np.float32)}, r"Image\.data has dtype float32"),
    ({"data": [300] * 24}, r"Image\.data contains values outside 0\.\.255"),
    ({"data": "x" * 24}, r"Image\.data has unsupported type str"),
])
def test_malformed_message_errors_name_the_field(overrides, pattern):
    with pytest.raises(ImageFormatError, match=pattern):
        image_to_array(good_msg(**overrides))


def test_image_format_error_is_value_error():
    assert issubclass(ImageFormatError, ValueError)


def test_rgb_and_depth_reject_other_encodings():
    depth_msg = build_msg(np.zeros((1, 1), np.uint16), "16UC1")
    with pytest.raises(ImageFormatError, match=r"Image\.encoding='16UC1' cannot be converted"):
        image_to_rgb(depth_msg)
    with pytest.raises(ImageFormatError, match=r"Image\.encoding='rgb8' is not a depth"):
        depth_to_meters(good_msg())


@pytest.mark.parametrize("arr, encoding, pattern", [
    (np.zeros((2, 2, 3), np.float32), "rgb8", r"dtype float32 does not match encoding rgb8"),
    (np.zeros((2, 2), np.float64), "32FC1", r"dtype float64 .* \(expected float32\)"),
    (np.zeros((2, 2), np.uint8), "rgb8", r"shape \(2, 2\) .* \(expected \(H, W, 3\)\)"),
    (np.zeros((2, 2, 3), np.uint8), "rgba8", r"expected \(H, W, 4\)"),
    (np.zeros((2, 2, 2), np.uint16), "16UC1", r"expected \(H, W\) or \(H, W, 1\)"),
    (np.zeros((0, 2), np.uint8), "mono8", r"zero height or width"),
    (np.zeros((2, 2), np.uint8), "jpeg", r"Image\.encoding='jpeg' is not supported"),
])
def test_array_to_image_fields_validates(arr, encoding, pattern):
    with pytest.raises(ImageFormatError, match=pattern):
        array_to_image_fields(arr, encoding)
