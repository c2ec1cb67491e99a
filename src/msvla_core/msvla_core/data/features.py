"""Tensor payloads of SensorFeature / FusedObservation messages (duck-typed: shape + data)."""
from __future__ import annotations

import math

import numpy as np


class FeatureFormatError(ValueError):
    """A feature message whose shape and data disagree or whose values are unusable."""


def feature_to_array(msg, what: str = "SensorFeature") -> np.ndarray:
    shape = tuple(int(s) for s in msg.shape)
    if not shape or any(s <= 0 for s in shape):
        raise FeatureFormatError(f"{what}.shape={list(shape)} must be non-empty with positive sizes")
    data = np.asarray(msg.data, dtype=np.float32)
    if data.size != math.prod(shape):
        raise FeatureFormatError(f"{what}.data has {data.size} values but shape {list(shape)} needs {math.prod(shape)}")
    if not np.all(np.isfinite(data)):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise FeatureFormatError(f"{what}.data contains {bad} NaN/inf values")
    return data.reshape(shape)


def array_to_feature_fields(array: np.ndarray) -> dict:
    """shape and data fields for a feature message (float32, row-major)."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    return {"shape": [int(s) for s in array.shape], "data": array.ravel()}
