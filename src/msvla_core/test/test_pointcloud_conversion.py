"""Tests for msvla_core.data.pointcloud using plain stand-ins for PointCloud2."""

import math
import struct
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from msvla_core.data.pointcloud import (
    PointCloudFormatError,
    array_to_pointcloud_fields,
    pointcloud_to_array,
)

# datatype code -> (numpy dtype, struct format); kept separate from the module.
TYPES = {
    1: (np.int8, "b"), 2: (np.uint8, "B"), 3: (np.int16, "h"), 4: (np.uint16, "H"),
    5: (np.int32, "i"), 6: (np.uint32, "I"), 7: (np.float32, "f"), 8: (np.float64, "d"),
}
PROPERTY = settings(max_examples=60, deadline=None)


def values_for(code, size):
    dtype = TYPES[code][0]
    if dtype is np.float32:
        elements = st.floats(width=32)
    elif dtype is np.float64:
        # Stay inside float32 range so the float32 result is finite or NaN.
        elements = st.one_of(st.floats(-1e30, 1e30), st.just(math.nan))
    else:
        elements = None
    return hnp.arrays(dtype, size, elements=elements)


def as_message(fields):
    return SimpleNamespace(**dict(fields, fields=[SimpleNamespace(**f) for f in fields["fields"]]))


def expected_columns(values, names):
    return np.stack([values[n].astype(np.float32) for n in names], axis=1)


@st.composite
def hand_built_clouds(draw):
    """A cloud serialised with struct, with random layout, padding and byte order."""
    names = ["x", "y", "z"] + [f"extra{i}" for i in range(draw(st.integers(0, 3)))]
    codes = {n: 7 if n in "xyz" else draw(st.sampled_from(sorted(TYPES))) for n in names}
    big_endian = draw(st.booleans())
    offsets, cursor = {}, 0
    for name in draw(st.permutations(names)):  # memory order differs from field order
        cursor += draw(st.integers(0, 3))
        offsets[name] = cursor
        cursor += np.dtype(TYPES[codes[name]][0]).itemsize
    point_step = cursor + draw(st.integers(0, 5))
    height, width = draw(st.integers(1, 3)), draw(st.integers(0, 5))
    row_step = width * point_step + draw(st.integers(0, 7))
    values = {n: draw(values_for(codes[n], height * width)) for n in names}
    data = bytearray(b"\xcd" * (row_step * height))
    endian = ">" if big_endian else "<"
    for index in range(height * width):
        base = (index // width) * row_step + (index % width) * point_step
        for name in names:
            struct.pack_into(endian + TYPES[codes[name]][1], data, base + offsets[name],
                             values[name][index].item())
    fields = [SimpleNamespace(name=n, offset=offsets[n], datatype=codes[n], count=1)
              for n in draw(st.permutations(names))]
    msg = SimpleNamespace(height=height, width=width, fields=fields, is_bigendian=big_endian,
                          point_step=point_step, row_step=row_step, data=bytes(data),
                          is_dense=False)
    requested = draw(st.permutations(names))[:draw(st.integers(1, len(names)))]
    return msg, values, requested


@PROPERTY
@given(hand_built_clouds(), st.booleans())
def test_reads_hand_built_clouds(cloud, skip_nans):
    msg, values, requested = cloud
    out = pointcloud_to_array(msg, requested, skip_nans=skip_nans)
    expected = expected_columns(values, requested)
    if skip_nans:
        expected = expected[~np.isnan(expected).any(axis=1)]
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


@st.composite
def point_dicts(draw):
    count = draw(st.integers(0, 10))
    names = draw(st.lists(st.sampled_from(["x", "y", "z", "intensity", "ring", "t", "rgb"]),
                          min_size=1, max_size=5, unique=True))
    return {n: draw(values_for(draw(st.sampled_from(sorted(TYPES))), count)) for n in names}


@PROPERTY
@given(point_dicts())
def test_fields_round_trip(points):
    names = list(points)
    fields = array_to_pointcloud_fields(points)
    count = len(next(iter(points.values())))
    assert isinstance(fields["data"], bytes)
    assert (fields["height"], fields["width"]) == (1, count)
    assert fields["point_step"] == sum(v.dtype.itemsize for v in points.values())
    assert fields["row_step"] == fields["point_step"] * count
    assert [f["name"] for f in fields["fields"]] == names
    has_bad_float = any(v.dtype.kind == "f" and not np.isfinite(v).all() for v in points.values())
    assert fields["is_dense"] is (not has_bad_float)
    out = pointcloud_to_array(as_message(fields), names, skip_nans=False)
    np.testing.assert_array_equal(out, expected_columns(points, names))


@PROPERTY
@given(hnp.arrays(np.float32, st.tuples(st.integers(0, 8), st.just(4)),
                  elements=st.floats(width=32)))
def test_array_input_with_names(arr):
    names = ["x", "y", "z", "intensity"]
    fields = array_to_pointcloud_fields(arr, names=names)
    assert fields["point_step"] == 16
    out = pointcloud_to_array(as_message(fields), names, skip_nans=False)
    np.testing.assert_array_equal(out, arr)


def test_skip_nans_drops_points_with_any_nan():
    fields = array_to_pointcloud_fields({
        "x": np.array([1.0, np.nan, 3.0], np.float32),
        "y": np.array([1.0, 2.0, 3.0], np.float32),
        "z": np.array([1.0, 2.0, np.nan], np.float32),
    })
    assert fields["is_dense"] is False
    out = pointcloud_to_array(as_message(fields))
    np.testing.assert_array_equal(out, [[1.0, 1.0, 1.0]])


# --- malformed messages -------------------------------------------------------

def good_msg(**overrides):
    msg = as_message(array_to_pointcloud_fields(np.zeros((2, 3), np.float32), ["x", "y", "z"]))
    for key, value in overrides.items():
        setattr(msg, key, value)
    return msg


def field(name, offset, datatype=7, count=1):
    return SimpleNamespace(name=name, offset=offset, datatype=datatype, count=count)


XYZ = [field("x", 0), field("y", 4)]


@pytest.mark.parametrize("overrides, pattern", [
    ({"fields": XYZ}, r"PointCloud2\.fields has no field named 'z'; available: x, y"),
    ({"fields": XYZ + [field("z", 10)]},
     r"PointCloud2\.fields\['z'\] \(offset=10, 4 bytes\) extends past point_step=12"),
    ({"fields": XYZ + [field("z", -1)]}, r"PointCloud2\.fields\['z'\] \(offset=-1"),
    ({"fields": XYZ + [field("z", 8, datatype=9)]},
     r"PointCloud2\.fields\['z'\]\.datatype=9 is not a known PointField type"),
    ({"fields": XYZ + [field("z", 8, count=3)]},
     r"PointCloud2\.fields\['z'\]\.count=3 is unsupported"),
    ({"fields": XYZ + [field("z", 8), field("z", 8)]},
     r"PointCloud2\.fields has 2 fields named 'z'"),
    ({"data": bytes(23)}, r"PointCloud2\.data has 23 bytes but row_step\*height=24\*1=24"),
    ({"data": bytes(30)}, r"PointCloud2\.data has 30 bytes"),
    ({"row_step": 20}, r"PointCloud2\.row_step=20 is smaller than width\*point_step=2\*12=24"),
    ({"point_step": 0}, r"PointCloud2\.point_step=0 must be positive"),
    ({"width": -1}, r"PointCloud2\.height=1 and width=-1 must not be negative"),
    ({"data": [1, 2, 999]}, r"PointCloud2\.data contains values outside 0\.\.255"),
])
def test_malformed_cloud_errors_name_the_field(overrides, pattern):
    with pytest.raises(PointCloudFormatError, match=pattern):
        pointcloud_to_array(good_msg(**overrides))


def test_empty_field_names_rejected():
    with pytest.raises(PointCloudFormatError, match="field_names"):
        pointcloud_to_array(good_msg(), ())


def test_empty_cloud_gives_empty_array():
    msg = good_msg(width=0, row_step=0, data=b"")
    assert pointcloud_to_array(msg).shape == (0, 3)


@pytest.mark.parametrize("points, names, pattern", [
    ({"x": np.zeros(3, np.float32), "y": np.zeros(2, np.float32)}, None,
     r"field 'y' has 2 points; expected 3"),
    ({"x": np.zeros(3, np.int64)}, None, r"field 'x' has dtype int64, which has no PointField"),
    ({"x": np.zeros(3, bool)}, None, r"field 'x' has dtype bool"),
    ({"x": np.zeros((3, 2), np.float32)}, None, r"field 'x' must be 1-D"),
    ({}, None, r"at least one field"),
    ({"x": np.zeros(3, np.float32)}, ["x"], r"names must not be given"),
    (np.zeros((3, 2), np.float32), None, r"2 columns; names must list exactly"),
    (np.zeros((3, 2), np.float32), ["x"], r"2 columns"),
    (np.zeros(3, np.float32), ["x"], r"must be \(N, k\)"),
    (np.zeros((3, 2), np.float32), ["x", "x"], r"unique and non-empty"),
])
def test_array_to_pointcloud_fields_validates(points, names, pattern):
    with pytest.raises(PointCloudFormatError, match=pattern):
        array_to_pointcloud_fields(points, names=names)


def test_pointcloud_error_is_value_error():
    assert issubclass(PointCloudFormatError, ValueError)
