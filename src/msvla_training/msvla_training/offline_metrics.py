"""Offline grasp metrics of the spatial grasp VLA against expert labels, and the model runs behind them.

Errors per sample: position (cm, 3-D and in the table plane) and rotation (deg): the geodesic angle
between the predicted grasp rotation and the nearest rotation the label's yaw symmetry allows
(kind 0: any turn about the approach axis, 1: half turns, 2: quarter turns). A grasp succeeds when
it is within both thresholds (2 cm and 15 deg by default).

Input ablations run the monolithic model the way each live graph feeds it: RGB-D (depth geometry),
RGB only (no depth; the table-plane geometry the RGB encoder appends) and depth only.
"""
from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from msvla_core.data.bags import BagSpec
from msvla_core.data.samples import iter_samples
from msvla_core.geometry import pose_to_matrix, quaternion_to_matrix, top_down_grasp_quaternion
from msvla_core.preprocessing import RGB_MEAN, RGB_STD
from msvla_sim.expert import read_camera_to_base

from .dataset import make_preprocess, shape_in

# Label kind -> number of equivalent grasps per turn about the approach axis (0: continuous).
SYMMETRY_ORDER = {0: 0, 1: 2, 2: 4}
# Model inputs each ablation passes to GraspVLA.forward (absent modalities are None).
ABLATIONS = {"rgbd": ("rgb", "depth", "geometry"), "rgb": ("rgb", "rgb_geometry"), "depth": ("depth", "geometry")}
PERCENTILE = 90


def rotation_error_deg(pred_quaternion, label_quaternion, kind) -> np.ndarray:
    """(N,) smallest geodesic angle (deg) between each predicted rotation and the label rotation
    turned about its own approach (+z) axis by an angle its symmetry allows."""
    pred = np.asarray(pred_quaternion, dtype=np.float64).reshape(-1, 4)
    label = np.asarray(label_quaternion, dtype=np.float64).reshape(-1, 4)
    kind = np.asarray(kind).reshape(-1)
    if not (len(pred) == len(label) == len(kind)):
        raise ValueError(f"pred_quaternion, label_quaternion and kind differ in length: "
                         f"{len(pred)}, {len(label)}, {len(kind)}")
    unknown = sorted(set(kind.tolist()) - set(SYMMETRY_ORDER))
    if unknown:
        raise ValueError(f"kind has values {unknown}; expected 0 (free yaw), 1 (half turn) or 2 (quarter turn)")
    out = np.empty(len(pred))
    for i, (p, q, k) in enumerate(zip(pred, label, kind)):
        d = quaternion_to_matrix(q).T @ quaternion_to_matrix(p)  # prediction in the label's frame
        # trace(Rz(-t) d) = cos t (d00 + d11) + sin t (d10 - d01) + d22; the best allowed t wins.
        a, b = d[0, 0] + d[1, 1], d[1, 0] - d[0, 1]
        order = SYMMETRY_ORDER[int(k)]
        if order == 0:
            trace = math.hypot(a, b) + d[2, 2]
        else:
            turns = 2 * math.pi * np.arange(order) / order
            trace = float(np.max(np.cos(turns) * a + np.sin(turns) * b)) + d[2, 2]
        out[i] = math.degrees(math.acos(min(1.0, max(-1.0, (trace - 1.0) / 2.0))))
    return out


def grasp_errors(position, yaw, target, label_quaternion, kind) -> dict[str, np.ndarray]:
    """Per-sample errors of predicted grasps (base-frame position (N, 3) in m, yaw (N,) of the
    top-down grasp) against labels (target (N, 3) in m, quaternion (N, 4) xyzw, kind (N,))."""
    position = np.asarray(position, dtype=np.float64).reshape(-1, 3)
    target = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    if position.shape != target.shape:
        raise ValueError(f"position {position.shape} and target {target.shape} differ in shape")
    pred_q = np.stack([top_down_grasp_quaternion(float(y)) for y in np.asarray(yaw).reshape(-1)])
    delta = position - target
    return {"position_cm": 100 * np.linalg.norm(delta, axis=1),
            "position_xy_cm": 100 * np.linalg.norm(delta[:, :2], axis=1),
            "rotation_deg": rotation_error_deg(pred_q, label_quaternion, kind)}


def successes(errors: dict, position_cm: float = 2.0, rotation_deg: float = 15.0) -> np.ndarray:
    """(N,) bool: within `position_cm` (3-D) AND within `rotation_deg`."""
    return (errors["position_cm"] <= position_cm) & (errors["rotation_deg"] <= rotation_deg)


def _spread(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"median": None, f"p{PERCENTILE}": None}
    return {"median": float(np.median(values)), f"p{PERCENTILE}": float(np.percentile(values, PERCENTILE))}


def summarise(errors: dict, shapes: list[str | None], position_cm: float = 2.0,
              rotation_deg: float = 15.0) -> dict:
    """Success rate and median/p90 of every error, overall and per target shape word (samples
    whose instruction names no shape are counted in `no_shape_word` only)."""
    n = len(errors["position_cm"])
    if len(shapes) != n:
        raise ValueError(f"shapes has {len(shapes)} entries for {n} samples")
    ok = successes(errors, position_cm, rotation_deg)
    summary = {"samples": n, "successes": int(ok.sum()), "success_rate": float(ok.mean()) if n else None,
               **{name: _spread(values) for name, values in errors.items()}}
    groups = defaultdict(list)
    for i, shape in enumerate(shapes):
        if shape is not None:
            groups[shape].append(i)
    summary["by_shape"] = {
        shape: {"samples": len(idx), "success_rate": float(ok[idx].mean()),
                "position_cm_median": float(np.median(errors["position_cm"][idx])),
                "rotation_deg_median": float(np.median(errors["rotation_deg"][idx]))}
        for shape, idx in sorted(groups.items())}
    summary["no_shape_word"] = n - sum(len(idx) for idx in groups.values())
    return summary


@torch.no_grad()
def predict(model, instruction: torch.Tensor, inputs: dict[str, torch.Tensor], batch_size: int = 32) -> dict:
    """Grasps of the monolithic model for stacked inputs (float16 is accepted; batches run in
    float32). Returns position (N, 3), yaw (N,), localised (N,) numpy arrays and the seconds."""
    model.eval()
    n = instruction.shape[0]
    positions, yaws, localised = [], [], []
    started = time.perf_counter()
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        batch = {k: v[sl].float() for k, v in inputs.items()}
        pred = model(instruction[sl], **batch)
        positions.append(pred.position.double().numpy())
        yaws.append(pred.yaw.double().numpy())
        localised.append(pred.localised.numpy())
    return {"position": np.concatenate(positions), "yaw": np.concatenate(yaws),
            "localised": np.concatenate(localised), "seconds": time.perf_counter() - started}


def ablation_inputs(data: dict, ablation: str) -> dict[str, torch.Tensor]:
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; expected one of {sorted(ABLATIONS)}")
    return {k: data[k] for k in ABLATIONS[ablation]}


def evaluate_predictions(data: dict, pred: dict, shapes: list, position_cm: float, rotation_deg: float):
    """(summary, per-sample errors) of one prediction set against the labels in `data`."""
    errors = grasp_errors(pred["position"], pred["yaw"], data["target"].numpy(),
                          data["quaternion"].numpy(), data["kind"].numpy())
    summary = summarise(errors, shapes, position_cm, rotation_deg)
    summary["unlocalised"] = int((~pred["localised"]).sum())
    return summary, errors


def noisy_rgb(rgb: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Normalised RGB (N, 3, H, W) with Gaussian noise of `sigma` in 0-255 pixel units added to
    the pixels it came from, which are clipped and quantised as a camera's would be."""
    if sigma < 0 or not math.isfinite(sigma):
        raise ValueError(f"RGB noise sigma must be finite and >= 0, got {sigma}")
    if sigma == 0:
        return rgb
    mean = torch.from_numpy(RGB_MEAN).view(1, 3, 1, 1)
    std = torch.from_numpy(RGB_STD).view(1, 3, 1, 1)
    pixels = (rgb.float() * std + mean) * 255.0
    pixels = pixels + sigma * torch.randn(pixels.shape, generator=generator)
    pixels = pixels.clamp(0.0, 255.0).round()
    return ((pixels / 255.0 - mean) / std).to(rgb.dtype)


def drop_depth(depth_m: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of a depth image (metres) with each pixel turned into a hole (NaN, as a sensor
    reports a missing return) with probability `fraction`."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"depth dropout fraction must be in [0, 1], got {fraction}")
    out = np.array(depth_m, dtype=np.float32, copy=True)
    out[rng.random(out.shape) < fraction] = np.nan
    return out


class _HoleyDepthEncoder:
    """The model's depth preprocessing, run on raw depth with a fraction of its pixels dropped, so
    the encoder input, its validity mask and the geometry all lose them as a real sensor's would."""

    def __init__(self, encoder, fraction: float, rng: np.random.Generator):
        self.encoder, self.fraction, self.rng = encoder, fraction, rng

    def preprocess(self, raw: dict) -> dict:
        return self.encoder.preprocess({**raw, "depth": drop_depth(raw["depth"], self.fraction, self.rng)})


def raw_labelled_samples(bags: list[Path], spec: BagSpec, label: str, limit: int) -> list:
    """Up to `limit` labelled raw samples, in the order the data loader stacks them."""
    out = []
    for bag in bags:
        for sample in iter_samples(bag, spec):
            if label in sample.labels:
                out.append(sample)
                if len(out) >= limit:
                    return out
    return out


def dropout_data(model, samples: list, cfg, fraction: float, seed: int) -> dict:
    """Stacked model inputs and labels of `samples` with depth dropout, made by the data loader's
    own per-sample preprocessing (same pose, validity rules and labels as the cached data); `cfg`
    is the OfflineConfig (calibration, label)."""
    counters = Counter()
    holey = _HoleyDepthEncoder(model.depth_encoder, fraction, np.random.default_rng(seed))
    camera_to_base = pose_to_matrix(read_camera_to_base(cfg.calibration))
    preprocess = make_preprocess(model.config, model.rgb_encoder, holey, camera_to_base, cfg.label, counters)
    rows = [(s.instruction, preprocess(s)) for s in samples]
    rows = [(text, r) for text, r in rows if r]
    keys = ("rgb", "depth", "geometry", "target", "quaternion", "kind")
    data = {k: torch.from_numpy(np.stack([np.asarray(r[k]) for _, r in rows])) for k in keys} if rows else {}
    data["texts"] = [text for text, _ in rows]
    data["dropped"] = len(samples) - len(rows)
    return data


def noise_cell(model, language, data: dict, ablation: str, cfg) -> dict:
    """Success rate and median errors of one ablation on (perturbed) data; `cfg` is the OfflineConfig."""
    emb = language.encode(data["texts"])
    pred = predict(model, emb, ablation_inputs(data, ablation), cfg.batch_size)
    summary, _ = evaluate_predictions(data, pred, [shape_in(t) for t in data["texts"]],
                                      cfg.success_position_cm, cfg.success_rotation_deg)
    return {"samples": summary["samples"], "success_rate": summary["success_rate"],
            "position_cm_median": summary["position_cm"]["median"],
            "rotation_deg_median": summary["rotation_deg"]["median"]}
