"""Conversion between sensor_msgs/PointCloud2-like objects and numpy arrays.

Messages and their fields are duck-typed (attributes only), so this module
never imports ROS. Reading goes through a numpy structured dtype with
explicit offsets and ``itemsize=point_step``, which handles any field order,
inter-field padding and trailing point padding without Python loops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from msvla_core.data._buffer import as_uint8


class PointCloudFormatError(ValueError):
    """A point cloud message or array does not match its declared layout."""


# PointField datatype codes -> little/big agnostic numpy type codes.
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
_DATATYPES: dict[int, np.dtype] = {
    INT8: np.dtype(np.int8),
    UINT8: np.dtype(np.uint8),
    INT16: np.dtype(np.int16),
    UINT16: np.dtype(np.uint16),
    INT32: np.dtype(np.int32),
    UINT32: np.dtype(np.uint32),
    FLOAT32: np.dtype(np.float32),
    FLOAT64: np.dtype(np.float64),
}
_CODES: dict[np.dtype, int] = {dtype: code for code, dtype in _DATATYPES.items()}


def _find_field(msg, name: str):
    matches = [f for f in msg.fields if f.name == name]
    if not matches:
        available = ", ".join(f.name for f in msg.fields) or "none"
        raise PointCloudFormatError(
            f"PointCloud2.fields has no field named {name!r}; available: {available}"
        )
    if len(matches) > 1:
        raise PointCloudFormatError(f"PointCloud2.fields has {len(matches)} fields named {name!r}")
    return matches[0]


def _field_dtype(field, point_step: int, big_endian: bool) -> tuple[np.dtype, int]:
    """Validate one PointField and return its wire dtype and offset."""
    label = f"PointCloud2.fields[{field.name!r}]"
    base = _DATATYPES.get(int(field.datatype))
    if base is None:
        raise PointCloudFormatError(
            f"{label}.datatype={field.datatype} is not a known PointField type (1..8)"
        )
    # count=0 appears in some legacy publishers and means a single element.
    if int(field.count) > 1:
        raise PointCloudFormatError(
            f"{label}.count={field.count} is unsupported; only scalar fields (count=1) can be read"
        )
    offset = int(field.offset)
    if offset < 0 or offset + base.itemsize > point_step:
        raise PointCloudFormatError(
            f"{label} (offset={offset}, {base.itemsize} bytes) extends past "
            f"point_step={point_step}"
        )
    return base.newbyteorder(">" if big_endian else "<"), offset


def pointcloud_to_array(msg, field_names: Sequence[str] = ("x", "y", "z"),
                        skip_nans: bool = True) -> np.ndarray:
    """Read the named fields into an (N, len(field_names)) float32 array.

    Columns follow ``field_names``. With ``skip_nans`` points where any
    requested value is NaN are dropped (organised clouds mark missing
    returns that way). Note that uint32/int32/float64 values lose precision
    in float32.
    """
    field_names = tuple(field_names)
    if not field_names:
        raise PointCloudFormatError("field_names must name at least one field")
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    if height < 0 or width < 0:
        raise PointCloudFormatError(
            f"PointCloud2.height={height} and width={width} must not be negative"
        )
    if point_step <= 0:
        raise PointCloudFormatError(f"PointCloud2.point_step={point_step} must be positive")
    if row_step < width * point_step:
        raise PointCloudFormatError(
            f"PointCloud2.row_step={row_step} is smaller than "
            f"width*point_step={width}*{point_step}={width * point_step}"
        )
    layout = [_field_dtype(_find_field(msg, name), point_step, bool(msg.is_bigendian))
              for name in field_names]
    buf = as_uint8(msg.data, "PointCloud2.data", PointCloudFormatError)
    if buf.size != row_step * height:
        raise PointCloudFormatError(
            f"PointCloud2.data has {buf.size} bytes but row_step*height="
            f"{row_step}*{height}={row_step * height}"
        )
    if height * width == 0:
        return np.empty((0, len(field_names)), dtype=np.float32)
    # Positional names keep the dtype valid even if a name is requested twice.
    record = np.dtype({
        "names": [f"f{i}" for i in range(len(layout))],
        "formats": [dtype for dtype, _ in layout],
        "offsets": [offset for _, offset in layout],
        "itemsize": point_step,
    })
    rows = np.ascontiguousarray(buf.reshape(height, row_step)[:, :width * point_step])
    points = rows.view(record).reshape(-1)
    # Column by column: row-wise reductions over an (N, k) array cost several times more on large clouds.
    columns = [points[f"f{i}"].astype(np.float32, copy=False) for i in range(len(layout))]
    keep = None
    if skip_nans:
        nan = np.isnan(columns[0])
        for column in columns[1:]:
            nan |= np.isnan(column)
        keep = ~nan if nan.any() else None
    if keep is not None:
        columns = [column[keep] for column in columns]
    out = np.empty((columns[0].size, len(columns)), dtype=np.float32)
    for i, column in enumerate(columns):
        out[:, i] = column
    return out


def _columns(points, names) -> list[tuple[str, np.ndarray]]:
    """Normalise the accepted inputs to a list of (name, 1-D array)."""
    if isinstance(points, Mapping):
        if names is not None:
            raise PointCloudFormatError("names must not be given when points is a mapping")
        return [(str(name), np.asarray(values)) for name, values in points.items()]
    arr = np.asarray(points)
    if arr.ndim != 2:
        raise PointCloudFormatError(f"points array must be (N, k); got shape {arr.shape}")
    if names is None or len(names) != arr.shape[1]:
        raise PointCloudFormatError(
            f"points array has {arr.shape[1]} columns; names must list exactly that many"
        )
    return [(str(name), arr[:, i]) for i, name in enumerate(names)]


def array_to_pointcloud_fields(points, names: Sequence[str] | None = None,
                               is_dense: bool | None = None) -> dict:
    """Build keyword arguments for an unorganised (height=1) PointCloud2.

    ``points`` is either a mapping name -> 1-D array or an (N, k) array with
    ``names``. Each field keeps its array's dtype (any PointField type, e.g.
    float32, float64, uint8, uint16); fields are packed back to back,
    little-endian. ``fields`` holds dicts for building PointField objects.
    ``is_dense`` defaults to "no NaN/inf in any float field".
    """
    columns = _columns(points, names)
    if not columns:
        raise PointCloudFormatError("points must contain at least one field")
    seen = [name for name, _ in columns]
    if len(set(seen)) != len(seen) or "" in seen:
        raise PointCloudFormatError(f"field names must be unique and non-empty; got {seen}")
    count = None
    fields, formats, offsets = [], [], []
    offset = 0
    for name, values in columns:
        if values.ndim != 1:
            raise PointCloudFormatError(f"field {name!r} must be 1-D; got shape {values.shape}")
        if count is None:
            count = values.size
        elif values.size != count:
            raise PointCloudFormatError(
                f"field {name!r} has {values.size} points; expected {count}"
            )
        code = _CODES.get(values.dtype.newbyteorder("="))
        if code is None:
            raise PointCloudFormatError(
                f"field {name!r} has dtype {values.dtype}, which has no PointField type"
            )
        fields.append({"name": name, "offset": offset, "datatype": code, "count": 1})
        formats.append(values.dtype.newbyteorder("<"))
        offsets.append(offset)
        offset += values.dtype.itemsize
    record = np.dtype({"names": seen, "formats": formats, "offsets": offsets,
                       "itemsize": offset})
    packed = np.empty(count, dtype=record)
    for name, values in columns:
        packed[name] = values
    if is_dense is None:
        is_dense = all(np.isfinite(values).all() for _, values in columns
                       if values.dtype.kind == "f")
    return {
        "height": 1,
        "width": int(count),
        "fields": fields,
        "is_bigendian": False,
        "point_step": offset,
        "row_step": offset * int(count),
        "data": packed.tobytes(),
        "is_dense": bool(is_dense),
    }


def has_field(msg, name: str) -> bool:
    return bool(name) and any(f.name == name for f in msg.fields)


def cloud_to_xyzi(msg, intensity_field: str = "intensity") -> np.ndarray:
    """PointCloud2 -> float32 (N, 4) x, y, z, intensity (zeros when the cloud has no such field), as
    the LiDAR encoder node and the bag trainers read it; raises PointCloudFormatError."""
    if has_field(msg, intensity_field):
        return pointcloud_to_array(msg, ("x", "y", "z", intensity_field))
    xyz = pointcloud_to_array(msg, ("x", "y", "z"))
    return np.concatenate([xyz, np.zeros((len(xyz), 1), np.float32)], axis=1)
