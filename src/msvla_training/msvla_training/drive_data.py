"""Labelled driving samples from recorded vehicle episodes, preprocessed by the model's own encoders.

Each synchronised camera frame (with the LiDAR scan, radar targets, IMU window and wheel/steering
state nearest to it, formed by msvla_core.data.samples exactly as the fusion node forms them) that
carries the expert's command and future path becomes one sample. Every modality goes through its
encoder's `preprocess` (the code the live encoder nodes run); the result is cached per bag.

Keys of the stacked data: "<modality>.<input>" per encoder input (camera.image float16, the rest
float32), the control labels steering / throttle / brake (N,), the trajectory label waypoints
(N, T, 2) with its valid mask (N, T), moving (N,) bool, texts and episode lists.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from msvla_core.data.bags import BagSpec
from msvla_core.data.samples import SampleCache

from .dataset import cached_bags

CACHE_FORMAT = "drive-data-v1"
LABEL_KEYS = ("steering", "throttle", "brake", "waypoints", "valid", "moving")
HALF_PRECISION = ("camera.image",)  # large and 8-bit at the source: float16 halves the memory
# Below this wheel spin (rad/s; 0.3 rad/s = 0.1 m/s) with no throttle the car is standing: such
# samples all look alike and are thinned by `stationary_stride`.
STANDING_SPIN_RADPS = 0.3


def make_preprocess(model, counters: Counter, max_steering_rad: float, horizon: int) -> Callable:
    """Cache preprocessing of one synchronised sample; unusable samples become empty entries,
    counted by reason."""

    def preprocess(sample) -> dict[str, np.ndarray]:
        control, path = sample.labels.get("control"), sample.labels.get("trajectory")
        if control is None or path is None:
            counters["unlabelled"] += 1
            return {}
        missing = [name for name in model.encoders if name not in sample.raw]
        if missing:
            counters["missing_" + "_".join(missing)] += 1
            return {}
        out = {}
        try:
            for name, encoder in model.encoders.items():
                for key, value in encoder.preprocess(sample.raw[name]).items():
                    dtype = np.float16 if f"{name}.{key}" in HALF_PRECISION else np.float32
                    out[f"{name}.{key}"] = np.asarray(value, dtype=dtype)
        except ValueError as exc:  # one bad scan (NaN, malformed) must not drop the bag
            counters["bad_frames"] += 1
            print(f"[data] frame {sample.stamp_ns} skipped: {exc}", flush=True)
            return {}
        steering = float(control["steering"])
        if abs(steering) > max_steering_rad:
            counters["steering_clipped"] += 1
            steering = float(np.clip(steering, -max_steering_rad, max_steering_rad))
        waypoints = np.zeros((horizon, 2), np.float32)
        valid = np.zeros(horizon, bool)
        recorded = path["waypoints"][:horizon, :2]
        waypoints[:len(recorded)] = recorded
        valid[:len(recorded)] = True
        spin = abs(float(sample.raw["proprio"]["velocity"][-1])) if "proprio" in sample.raw else np.inf
        moving = spin >= STANDING_SPIN_RADPS or control["throttle"] > 0.0
        out.update({"steering": np.asarray(steering, np.float32),
                    "throttle": np.asarray(control["throttle"], np.float32),
                    "brake": np.asarray(control["brake"], np.float32),
                    "waypoints": waypoints, "valid": valid, "moving": np.asarray(moving)})
        return out

    return preprocess


def head_limits(model) -> tuple[float, int]:
    """(steering limit of the control head, horizon of the trajectory head)."""
    heads = model.policy.head.heads
    return heads["control"].params.max_steering_rad, heads["trajectory"].params.horizon


def make_drive_cache(model, spec: BagSpec, cache_dir: str | Path, counters: Counter | None = None) -> SampleCache:
    """SampleCache of `model`'s preprocessed inputs and driving labels; a model config or format
    change makes a new version, so stale files are rebuilt rather than trusted."""
    for label in ("control", "trajectory"):
        if label not in spec.labels:
            raise ValueError(f"the bag spec has no {label!r} label (labels: {sorted(spec.labels)})")
    unknown = sorted(set(model.encoders) - set(spec.modalities))
    if unknown:
        raise ValueError(f"the model has encoders {unknown} that the bag spec has no modality for "
                         f"(spec: {sorted(spec.modalities)})")
    version = hashlib.sha256(json.dumps([dataclasses.asdict(model.config), CACHE_FORMAT],
                                        sort_keys=True, default=str).encode()).hexdigest()[:16]
    counters = Counter() if counters is None else counters
    steering, horizon = head_limits(model)
    return SampleCache(Path(cache_dir), spec, version, make_preprocess(model, counters, steering, horizon))


def _keep(moving: np.ndarray, frame_stride: int, stationary_stride: int) -> np.ndarray:
    """Indices kept: every frame_stride-th sample, and of the standing ones every stationary_stride-th."""
    idx = np.arange(len(moving))[::frame_stride]
    standing = idx[~moving[idx]]
    return np.sort(np.concatenate([idx[moving[idx]], standing[::stationary_stride]]))


def input_keys(arrays: dict) -> list[str]:
    """The "<modality>.<input>" keys of a cached sample: what a batch feeds the encoders."""
    return sorted(k for k in arrays if "." in k)


def load_drive_data(bags: list[Path], spec: BagSpec, cache: SampleCache,
                    report: Counter | None = None, frame_stride: int = 1, stationary_stride: int = 1,
                    log: Callable[[str], None] | None = print):
    """(data, used bag names) of the labelled samples in `bags` (module docstring for the keys).
    A bad bag is reported by name, counted in report["bad_bags"] and skipped."""
    report = Counter() if report is None else report
    chunks, used, keys = [], [], []

    def same_inputs(samples: list) -> None:
        labelled = [s for s in samples if "steering" in s.arrays]
        keys[:] = keys or (input_keys(labelled[0].arrays) if labelled else [])
        if any(input_keys(s.arrays) != keys for s in labelled):
            raise ValueError(f"cached inputs differ from {keys} (a stale cache?)")

    for bag, samples in cached_bags(bags, spec, cache, report, log, same_inputs):
        used.append(bag.name)
        loaded = [s for s in samples if "steering" in s.arrays]
        if not loaded:
            continue
        moving = np.array([bool(s.arrays["moving"].reshape(-1)[0]) for s in loaded])
        kept = [loaded[i] for i in _keep(moving, frame_stride, stationary_stride)]
        report["thinned"] += len(loaded) - len(kept)
        chunk = {k: np.stack([s.arrays[k].reshape(s.arrays[k].shape or ()) for s in kept])
                 for k in keys + list(LABEL_KEYS)}
        chunk["texts"] = [s.instruction for s in kept]
        chunks.append((bag.name, chunk))
    if not chunks:
        return None, used
    data = {k: torch.from_numpy(np.concatenate([c[k] for _, c in chunks])) for k in keys + list(LABEL_KEYS)}
    for k in ("steering", "throttle", "brake", "moving"):
        data[k] = data[k].reshape(-1)
    data["texts"] = [t for _, c in chunks for t in c["texts"]]
    data["episode"] = [name for name, c in chunks for _ in c["texts"]]
    return data, used
