"""Labelled grasp samples from recorded episode bags, preprocessed by the model's own encoders.

Every camera frame of a bag carries one expert GraspPose label (stamped with the frame), so each
synchronised frame becomes one sample. Inputs go through the encoders' preprocess (the code the
live encoder nodes run) and are cached per bag by SampleCache, so later runs skip bag decoding.
Images are kept as float16 (about 1.7 GB for 10k samples at 128x128); batches are converted to
float32 when they are drawn.

Geometry: `geometry` is the depth-derived per-cell base-frame geometry; `rgb_geometry` is the
table-plane geometry (plane_geometry at z = 0) that stands in for it when only RGB is available.
The camera pose is the sample's recorded extrinsics when the bag carries them, else the
calibration file's camera_to_base.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from msvla_core import preprocessing
from msvla_core.data.bags import BagError, BagSpec, validate_bag
from msvla_core.data.samples import SampleCache, split_by_episode
from msvla_core.geometry import grasp_yaw_from_quaternion, pose_to_matrix
from msvla_core.models.config import GraspModelConfig
from msvla_sim.expert import YAW_PERIOD, fold_yaw, read_camera_to_base
from msvla_sim.instructions import parse_target

from .bootstrap_grasp import label_at

# Per-sample scalar labels (N,) in the stacked data.
LABEL_KEYS = ("cell", "yaw", "kind", "width", "dz", "rgb_cell", "rgb_dz")
# Bumped whenever the preprocessing below changes what a cache file holds.
CACHE_FORMAT = "grasp-data-v3"
IMAGE_KEYS = ("rgb", "depth")  # float16 in memory
GEOMETRY_KEYS = ("geometry", "rgb_geometry", "target", "quaternion")  # float32


def shape_in(instruction: str) -> str | None:
    """Shape the instruction's object phrase names, parsed as the simulator resolves it (so "can you
    pick up the cube" names a cube, not a can)."""
    return parse_target(instruction)[1]


def yaw_label(quaternion, instruction: str) -> tuple[float, int]:
    """(folded yaw, kind) of a recorded GraspPose. The bag carries no object shape, so the yaw
    symmetry comes from the instruction's shape word; without one the half-turn symmetry every
    parallel-jaw grasp has is the safe assumption. kind: 0 free, 1 half-turn, 2 quarter-turn."""
    shape = shape_in(instruction)
    period = YAW_PERIOD[shape] if shape else math.pi
    if period is None:
        return 0.0, 0
    return fold_yaw(grasp_yaw_from_quaternion(quaternion), period), (2 if period < math.pi else 1)


def make_preprocess(config: GraspModelConfig, rgb_encoder, depth_encoder, camera_to_base: np.ndarray,
                    label_name: str, counters: Counter) -> Callable:
    """Cache preprocessing: encoder inputs, both geometries and the labels on both grids.
    Unusable samples become empty entries (counted by reason) and are dropped after loading."""

    def preprocess(sample) -> dict[str, np.ndarray]:
        grasp = sample.labels.get(label_name)
        if grasp is None or "rgb" not in sample.raw or "depth" not in sample.raw:
            counters["unlabelled"] += 1
            return {}
        extrinsics = getattr(sample, "extrinsics", None)
        pose = camera_to_base if extrinsics is None else np.asarray(extrinsics, dtype=np.float64)
        camera = sample.raw["depth"]["camera"]
        try:
            rgb = rgb_encoder.preprocess(sample.raw["rgb"])
            depth = depth_encoder.preprocess({**sample.raw["depth"], "camera_to_base": pose})
            plane = preprocessing.plane_geometry(camera, pose, config, plane_z=0.0)
        except ValueError as exc:  # one bad frame (NaN, mostly invalid depth) must not drop the bag
            counters["bad_frames"] += 1
            print(f"[data] frame {sample.stamp_ns} skipped: {exc}", flush=True)
            return {}
        yaw, kind = yaw_label(grasp["quaternion"], sample.instruction)
        label = label_at(grasp["position"], yaw, kind, grasp["width"], depth["geometry"])
        rgb_label = label_at(grasp["position"], yaw, kind, grasp["width"], plane)
        if label is None or rgb_label is None:
            counters["no_valid_cell"] += 1
            return {}
        return {"rgb": rgb["image"].astype(np.float16), "depth": depth["depth"].astype(np.float16),
                "geometry": depth["geometry"].astype(np.float32),
                "rgb_geometry": np.asarray(plane, dtype=np.float32),
                "target": np.asarray(grasp["position"], dtype=np.float32),
                "quaternion": np.asarray(grasp["quaternion"], dtype=np.float32),
                "cell": np.asarray(label.cell, np.int64), "kind": np.asarray(label.yaw_kind, np.int64),
                "yaw": np.asarray(label.yaw, np.float32), "width": np.asarray(label.width, np.float32),
                "dz": np.asarray(label.dz, np.float32),
                "rgb_cell": np.asarray(rgb_label.cell, np.int64),
                "rgb_dz": np.asarray(rgb_label.dz, np.float32)}

    return preprocess


def make_cache(model, spec: BagSpec, cache_dir: str | Path, calibration: str | Path,
               label_name: str = "grasp", counters: Counter | None = None) -> SampleCache:
    """SampleCache whose files hold `model`'s preprocessed inputs and labels. Anything that changes
    preprocessing (model config, default camera pose, label name, format) changes the version, so
    stale files are rebuilt rather than trusted. `counters` receives the dropped-sample reasons."""
    if label_name not in spec.labels:
        raise ValueError(f"label {label_name!r} is not in the bag spec ({sorted(spec.labels)})")
    camera_to_base = pose_to_matrix(read_camera_to_base(calibration))
    version = hashlib.sha256(json.dumps([dataclasses.asdict(model.config), camera_to_base.tolist(),
                                         label_name, CACHE_FORMAT], sort_keys=True).encode()).hexdigest()[:16]
    counters = Counter() if counters is None else counters
    preprocess = make_preprocess(model.config, model.rgb_encoder, model.depth_encoder, camera_to_base,
                                 label_name, counters)
    return SampleCache(Path(cache_dir), spec, version, preprocess)


def split_bags(root: str | Path, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> tuple[list, list, list]:
    """(train, val, test) episode directories under `root`, split by a hash of each name."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"bags folder {root} does not exist")
    return split_by_episode(sorted(p for p in root.iterdir() if p.is_dir()), fractions, seed)


def is_cached(cache: SampleCache, bag: Path) -> bool:
    """True when the cache holds a current file for `bag` (so it need not be validated again)."""
    file = cache.file_for(bag)
    if not file.is_file():
        return False
    try:
        from safetensors import safe_open
        with safe_open(str(file), framework="numpy") as f:
            return (f.metadata() or {}).get("digest") == cache.digest(bag)
    except Exception:  # unreadable cache files are rebuilt by SampleCache.load
        return False


def cached_bags(bags: list[Path], spec: BagSpec, cache: SampleCache, report: Counter,
                log: Callable[[str], None] | None = print, check: Callable[[list], None] | None = None):
    """Yield (bag, cached samples) of each usable bag, validating bags that are not cached yet. A bad
    bag (or one whose samples `check` refuses with ValueError) is reported by name, counted in
    report["bad_bags"] and skipped."""
    for bag in map(Path, bags):
        try:
            if not is_cached(cache, bag):
                validate_bag(bag, spec)
            loaded = cache.load(bag)
            if check is not None:
                check(loaded)
        except (BagError, ValueError, OSError) as exc:
            report["bad_bags"] += 1
            if log:
                log(f"[data] skipping bad bag {bag.name}: {exc}")
            continue
        yield bag, loaded


def _bag_chunk(samples: list) -> dict:
    """One bag's labelled samples stacked (numpy), or None when it has none."""
    kept = [s for s in samples if "cell" in s.arrays]
    if not kept:
        return None
    chunk = {k: np.stack([s.arrays[k] for s in kept]) for k in IMAGE_KEYS + GEOMETRY_KEYS}
    # Scalars may come back from a cache file as (1,) arrays; the losses want (N,) vectors.
    chunk.update({k: np.concatenate([s.arrays[k].reshape(1) for s in kept]) for k in LABEL_KEYS})
    chunk["texts"] = [s.instruction for s in kept]
    return chunk


def _concatenate(chunks: list[tuple[str, dict]]) -> dict:
    """Chunks into one tensor per key; each chunk is freed once copied, so peak memory stays near
    the final size instead of twice it."""
    total = sum(len(c["texts"]) for _, c in chunks)
    first = chunks[0][1]
    dtypes = {k: np.float16 for k in IMAGE_KEYS}
    out = {k: torch.from_numpy(np.empty((total,) + first[k].shape[1:], dtypes.get(k, first[k].dtype)))
           for k in IMAGE_KEYS + GEOMETRY_KEYS + LABEL_KEYS}
    texts, episode, at = [], [], 0
    while chunks:
        name, chunk = chunks.pop(0)
        n = len(chunk["texts"])
        for k in out:
            out[k][at:at + n] = torch.from_numpy(np.ascontiguousarray(chunk[k]).astype(out[k].numpy().dtype))
        texts += chunk["texts"]
        episode += [name] * n
        at += n
    out["texts"], out["episode"] = texts, episode
    return out


def load_grasp_data(bags: list[Path], spec: BagSpec, cache: SampleCache,
                    report: Counter | None = None, log: Callable[[str], None] | None = print):
    """(data, used bag names) of the labelled samples in `bags`.

    data: rgb (N,3,H,W) and depth (N,2,H,W) float16; geometry and rgb_geometry (N,4,h,w),
    target (N,3), quaternion (N,4) float32; cell, rgb_cell, kind (N,) int64; yaw, width, dz,
    rgb_dz (N,) float32; texts and episode (bag name) lists. A bad bag is reported by name,
    counted in report["bad_bags"] and skipped; data is None when no bag gave a sample.
    """
    report = Counter() if report is None else report
    chunks, used = [], []
    for bag, loaded in cached_bags(bags, spec, cache, report, log):
        used.append(bag.name)
        chunk = _bag_chunk(loaded)
        del loaded
        if chunk is not None:
            chunks.append((bag.name, chunk))
    return (_concatenate(chunks) if chunks else None), used

