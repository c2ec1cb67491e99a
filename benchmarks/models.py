"""Per-component CPU latency, parameter counts and checkpoint sizes of the default models.

    python benchmarks/models.py [--repeats 200]

Batch 1, torch intra-op threads 1 and 2, median and p99 over `repeats` timed calls after warm-up.
Models: the shipped spatial Franka RGB-D checkpoint (models/franka_rgbd) and the token-family
configs in config/models/ (franka_multisensor, vehicle_multisensor), randomly initialised (latency
does not depend on the weights). Targets: each default encoder <= 15 ms, fusion + head <= 10 ms.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from msvla_core.config import from_dict, load_yaml
from msvla_core.geometry import CameraModel, pose_to_matrix
from msvla_core.models.checkpoint import load_pretrained, save_pretrained
from msvla_core.models.registry import batch_inputs
from msvla_core.models.vla import MultiSensorVLA
from msvla_core.models.vla_config import VLAConfig
from msvla_core.preprocessing import prepare_depth, prepare_rgb

ROOT = Path(__file__).resolve().parents[1]


def synthetic_raw(type_name: str, rng: np.random.Generator, params=None):
    """One raw sensor sample in the format each encoder type's preprocess takes (`params`: the
    encoder's Params, for encoders whose input size is configured, e.g. the proprio joints)."""
    if type_name.startswith(("rgb_", "tactile_gelsight")):
        return rng.integers(0, 256, (480, 640, 3) if type_name.startswith("rgb_") else (240, 320, 3), dtype=np.uint8)
    if type_name.startswith("depth_"):
        return rng.uniform(0.4, 2.5, (480, 640)).astype(np.float32)
    if type_name.startswith("lidar_"):
        n = 30000
        return np.column_stack([rng.uniform(-40, 40, (n, 2)), rng.uniform(-2, 3, n), rng.uniform(0, 1, n)]).astype(np.float32)
    if type_name == "radar_points":
        n = 64
        return np.column_stack([rng.uniform(1, 80, n), rng.uniform(-0.7, 0.7, n), rng.uniform(-20, 20, n),
                                rng.uniform(-10, 20, n)]).astype(np.float32)
    if type_name == "radar_rd_map":
        return rng.uniform(-40, 40, (128, 64)).astype(np.float32)
    if type_name.startswith("imu_"):
        return np.column_stack([rng.normal(0, 1, (40, 2)), 9.81 + rng.normal(0, 0.1, 40), rng.normal(0, 0.1, (40, 3))]).astype(np.float32)
    if type_name == "tactile_grid":
        return rng.uniform(0, 50, (16, 16)).astype(np.float32)
    if type_name == "tactile_biotac":
        return rng.normal(0, 1, 21).astype(np.float32)
    if type_name == "proprio_mlp":
        joints, history, actions = (9, 4, 7) if params is None else (params.joints, params.history, params.action_dim)
        return {"position": rng.normal(0, 1, joints), "velocity": rng.normal(0, 0.1, joints),
                "action_history": rng.normal(0, 1, (history, actions))}
    raise KeyError(f"no synthetic input for encoder type {type_name}")


def timed(fn, repeats: int) -> tuple[float, float]:
    for _ in range(10):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(samples)), float(np.percentile(samples, 99))


def params_of(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def row(model: str, component: str, n_params: int, lat: dict[int, tuple[float, float]], size: int | None) -> str:
    cells = "  ".join(f"{lat[t][0]:6.2f} / {lat[t][1]:6.2f}" for t in sorted(lat))
    return f"{model:<20} {component:<26} {n_params:>10,}  {cells}  {'' if size is None else f'{size / 1024:8.1f} KB'}"


def bench_grasp(repeats: int, threads: list[int]) -> list[str]:
    model = load_pretrained(ROOT / "models" / "franka_rgbd")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    depth = rng.uniform(0.8, 1.3, (128, 128)).astype(np.float32)
    cam = CameraModel(166.7, 166.7, 63.5, 63.5, 128, 128)
    to_base = pose_to_matrix([0.95, 0.0, 0.75, -0.681449, -0.681449, 0.188751, 0.188751])
    x_rgb = torch.from_numpy(prepare_rgb(rgb, model.config))[None]
    d_in, geometry = (torch.from_numpy(a)[None] for a in prepare_depth(depth, cam, to_base, model.config))
    instruction = torch.randn(1, 384)
    with torch.inference_mode():
        feats = model.encode(x_rgb, d_in, geometry)
        fused = model.fusion(feats)
    calls = {
        "rgb_encoder (+preprocess)": lambda: model.rgb_encoder(torch.from_numpy(prepare_rgb(rgb, model.config))[None]),
        "depth_encoder (+preprocess)": lambda: model.depth_encoder(*(torch.from_numpy(a)[None] for a in prepare_depth(depth, cam, to_base, model.config))),
        "fusion + head": lambda: model.head(model.fusion(feats), instruction),
    }
    modules = {"rgb_encoder (+preprocess)": model.rgb_encoder, "depth_encoder (+preprocess)": model.depth_encoder,
               "fusion + head": torch.nn.ModuleList([model.fusion, model.head])}
    ckpt = ROOT / "models" / "franka_rgbd"
    size = lambda *components: sum((ckpt / f"{c}.safetensors").stat().st_size for c in components)  # noqa: E731
    sizes = {"rgb_encoder (+preprocess)": size("encoder.rgb"), "depth_encoder (+preprocess)": size("encoder.depth"),
             "fusion + head": size("fusion", "policy")}
    out = []
    for name, fn in calls.items():
        lat = {}
        for t in threads:
            torch.set_num_threads(t)
            with torch.inference_mode():
                lat[t] = timed(fn, repeats)
        out.append(row("franka_rgbd (spatial)", name, params_of(modules[name]), lat, sizes[name]))
    del fused
    return out


def bench_token_model(config_name: str, repeats: int, threads: list[int]) -> list[str]:
    config = from_dict(VLAConfig, load_yaml(ROOT / "config" / "models" / f"{config_name}.yaml"), where=config_name)
    torch.manual_seed(0)
    model = MultiSensorVLA(config).eval()
    rng = np.random.default_rng(0)
    raws = {name: synthetic_raw(block.type, rng, model.encoder(name).params) for name, block in config.encoders.items()}
    inputs = {name: batch_inputs([model.encoder(name).preprocess(raw)]) for name, raw in raws.items()}
    instruction = torch.randn(1, 1, config.language.dim)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        sizes = {p.stem: p.stat().st_size for p in Path(tmp).glob("*.safetensors")}
    with torch.inference_mode():
        tokens = {name: model.encoder(name)(**batch) for name, batch in inputs.items()}
    out = []
    for name in config.encoders:
        enc = model.encoder(name)
        fn = lambda enc=enc, raw=raws[name]: enc(**batch_inputs([enc.preprocess(raw)]))  # noqa: E731
        lat = {}
        for t in threads:
            torch.set_num_threads(t)
            with torch.inference_mode():
                lat[t] = timed(fn, repeats)
        out.append(row(config_name, f"encoder.{name} ({config.encoders[name].type})", params_of(enc), lat,
                       sizes[f"encoder.{name}"]))
    lat = {}
    for t in threads:
        torch.set_num_threads(t)
        with torch.inference_mode():
            lat[t] = timed(lambda: model.policy(model.fusion(tokens), instruction), repeats)
    out.append(row(config_name, f"fusion + policy ({config.fusion.type}, {config.head.type})",
                   params_of(model.fusion) + params_of(model.policy), lat, sizes["fusion"] + sizes["policy"]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    threads = [1, 2]
    print(f"{'model':<20} {'component':<26} {'parameters':>10}  " + "  ".join(f"{t} thr med / p99 ms" for t in threads)
          + "  weights")
    for line in bench_grasp(args.repeats, threads):
        print(line, flush=True)
    for name in ("franka_multisensor", "vehicle_multisensor"):
        for line in bench_token_model(name, args.repeats, threads):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
