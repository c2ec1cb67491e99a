"""Each training stage on tiny synthetic scenes: it trains (its loss falls or stays finite as its
objective allows), keeps its training-only modules out of the model, respects frozen components,
and rejects bad parameters by name."""
import json
import math

import pytest
import torch

from msvla_core.config import ConfigError, load_config
from msvla_core.geometry import top_down_grasp_quaternion
from msvla_core.models.checkpoint import save_pretrained
from msvla_core.models.config import GraspModelConfig, ImageInputConfig
from msvla_core.models.grasp_vla import GraspVLA
from msvla_training.plots import write_plots
from msvla_training.runtime import setup_runtime
from msvla_training.stages import STAGES, StageRandom, benchmark_stage, stage_names
from msvla_training.stages import augment
from msvla_training.stages.runner import Run, run_stage
from msvla_training.train import StageConfig, TrainConfig

SIZE = 32  # model input; the feature grid is 8x8
COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 1.0, 0.1), "blue": (0.1, 0.1, 1.0)}


def scenes(n: int, seed: int = 0) -> tuple[dict, torch.Tensor, GraspModelConfig]:
    """Two coloured squares on a grey table per scene; the instruction names one of them by colour.
    The table is the plane z = 0 seen from 0.5 m above, so depth and plane geometry agree except
    at the raised squares."""
    config = GraspModelConfig(image=ImageInputConfig(SIZE, SIZE))
    g = torch.Generator().manual_seed(seed)
    fh, fw = config.feature_size
    ys, xs = torch.meshgrid(torch.linspace(-0.2, 0.2, fh), torch.linspace(-0.2, 0.2, fw), indexing="ij")
    table = torch.stack([xs, ys, torch.zeros_like(xs), torch.ones_like(xs)])
    names = list(COLOURS)
    data = {k: [] for k in ("rgb", "depth", "geometry", "rgb_geometry", "target", "quaternion", "cell", "yaw",
                            "kind", "width", "dz", "rgb_cell", "rgb_dz")}
    texts, embeddings = [], torch.randn(len(names), 384, generator=g)
    for _ in range(n):
        unit = torch.full((3, SIZE, SIZE), 0.5)
        value = torch.full((1, SIZE, SIZE), 0.5 / 2.9)
        geometry = table.clone()
        cells = torch.randperm(fh * fw, generator=g)[:2]
        picked = torch.randperm(len(names), generator=g)[:2]
        for cell, colour in zip(cells.tolist(), picked.tolist()):
            r, c = divmod(cell, fw)
            unit[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4] = torch.tensor(COLOURS[names[colour]]).view(3, 1, 1)
            value[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4] = 0.45 / 2.9
            geometry[2, r, c] = 0.05
        target_cell, target_colour = int(cells[0]), int(picked[0])
        yaw = float(torch.rand((), generator=g) * math.pi - math.pi / 2)
        r, c = divmod(target_cell, fw)
        data["rgb"].append((unit - 0.45) / 0.225)
        data["depth"].append(torch.cat([value, torch.ones_like(value)]))
        data["geometry"].append(geometry)
        data["rgb_geometry"].append(table)
        data["target"].append(torch.tensor([float(xs[r, c]), float(ys[r, c]), 0.03]))
        data["quaternion"].append(torch.tensor(top_down_grasp_quaternion(yaw), dtype=torch.float32))
        for key, v in (("cell", target_cell), ("rgb_cell", target_cell), ("kind", 1)):
            data[key].append(torch.tensor(v))
        for key, v in (("yaw", yaw), ("width", 0.05), ("dz", -0.02), ("rgb_dz", 0.03)):
            data[key].append(torch.tensor(v))
        texts.append(f"pick up the {names[target_colour]} box")
    out = {k: torch.stack(v) for k, v in data.items()}
    out["rgb"], out["depth"] = out["rgb"].half(), out["depth"].half()
    out["texts"] = texts
    instructions = torch.stack([embeddings[names.index(t.split()[3])] for t in texts])
    return out, instructions, config


def make_run(tmp_path, n: int = 16):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data, instructions, config = scenes(n)
    model = GraspVLA(config)
    run = Run(model=model, runtime=setup_runtime("cpu", "fp32"), output=tmp_path, seed=0, log_every=1,
              eval_every=0, checkpoint_every=0, train=data, train_instructions=instructions, val=data,
              val_instructions=instructions, val_batch_size=16, val_modes=("rgbd", "rgb", "depth"))
    return run


def train_losses(tmp_path, stage: str) -> list[float]:
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if x["split"] == "train" and x["stage"] == stage]


# steps, lr, batch, params: small problems each stage's objective can make progress on quickly.
SETTINGS = {
    # The squares are 4 pixels wide: strong crops would remove the only thing telling scenes apart.
    "pretrain_rgb": (16, 3e-3, 8, {"crop_scale": [0.8, 1.0], "brightness": 0.1, "contrast": 0.1,
                                   "saturation": 0.1}),
    "pretrain_depth": (12, 3e-3, 8, {}),
    "align": (12, 3e-3, 8, {}),
    "fusion": (16, 3e-3, 8, {}),
    "finetune": (12, 3e-3, 8, {}),
    "robustness": (10, 3e-3, 8, {"fgsm_epsilon": 0.1}),
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_stage_trains_and_its_loss_falls(tmp_path, name):
    steps, lr, batch, params = SETTINGS[name]
    run = make_run(tmp_path)
    spec = StageConfig(name=name, steps=steps, lr=lr, batch_size=batch, warmup_steps=0, params=params)
    assert run_stage(run, 0, spec) is True
    losses = train_losses(tmp_path, name)
    assert len(losses) == steps and all(math.isfinite(x) for x in losses)
    # Fusion draws a different input mode each step, so compare halves rather than single steps.
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [x for x in lines if x["split"] == "val"]
    assert len(val) == 1 and 0.0 <= val[0]["val_rgb_success"] <= 1.0
    assert run.history[0]["name"] == name and run.history[0]["steps"] == steps
    if name == "robustness":  # the FGSM step really moves the input uphill on the loss
        gains = [x["losses"]["adversarial_gain"] for x in lines if x["split"] == "train"]
        assert sum(gains) / len(gains) > 0, gains
    assert (tmp_path / "train_state" / "state.json").is_file()


def test_training_only_heads_stay_out_of_the_checkpoint_and_frozen_parts_stay_fixed(tmp_path):
    run = make_run(tmp_path)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    spec = StageConfig(name="align", steps=2, lr=1e-3, batch_size=8, freeze=["encoder.depth"])
    run_stage(run, 0, spec)
    after = run.model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"rgb_encoder"}
    assert all(p.requires_grad for p in run.model.parameters())  # unfrozen again for the next stage
    save_pretrained(run.model, tmp_path / "ckpt")
    from safetensors.torch import load_file
    saved = set()
    for f in (tmp_path / "ckpt").glob("*.safetensors"):
        saved |= set(load_file(str(f)))
    assert saved and not any("projection" in k or "cells" in k for k in saved)
    state = load_file(str(tmp_path / "train_state" / "state.safetensors"))
    assert any("rgb_projection" in k for k in state)  # but a resume has them


def test_fusion_draws_every_input_mode(tmp_path):
    run = make_run(tmp_path)
    run_stage(run, 0, StageConfig(name="fusion", steps=12, lr=1e-3, batch_size=4,
                                  params={"rgbd": 1.0, "rgb_only": 1.0, "depth_only": 1.0}))
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    seen = {k for x in lines if x["split"] == "train" for k in x["losses"] if k.startswith("mode_")}
    assert seen == {"mode_rgbd", "mode_rgb", "mode_depth"}


def test_fgsm_and_sensor_noise_stay_in_range():
    data, _, _ = scenes(4)
    rgb, depth = data["rgb"].float(), data["depth"].float()
    g = torch.Generator().manual_seed(0)
    low, high = augment.rgb_bounds(rgb)
    noisy = augment.noisy_rgb(rgb, g, 0.5)
    assert torch.all(noisy >= low - 1e-5) and torch.all(noisy <= high + 1e-5) and not torch.equal(noisy, rgb)
    holes = augment.noisy_depth(depth, g, std=0.01, pixel_dropout=0.2, holes=2, hole_size=6)
    dropped = holes[:, 1] < 0.5
    assert 0.15 < float(dropped.float().mean()) < 0.5  # pixels and rectangles became invalid
    assert torch.all((holes[:, 0] >= 0) & (holes[:, 0] <= 1))
    crop = augment.random_resized_crop(rgb, g, (0.3, 0.5))
    assert crop.shape == rgb.shape and not torch.allclose(crop, rgb)


def test_registry_and_bad_stage_parameters_are_named(tmp_path):
    grasp = ["pretrain_rgb", "pretrain_depth", "align", "fusion", "finetune", "robustness"]
    drive = ["drive_fusion", "drive_finetune", "drive_robustness"]
    assert stage_names("grasp") == grasp and stage_names("drive") == drive and set(STAGES) == set(grasp + drive)
    assert StageRandom  # the runner's contract with the stages
    with pytest.raises(ValueError, match="unknown stage 'pretrain'"):
        StageConfig(name="pretrain", steps=1, lr=1e-3)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        StageConfig(name="align", steps=1, lr=1e-3, params={"temperature": -1.0})
    cases = [
        ("{name: align, steps: 2, lr: 0.001, params: {temprature: 0.1}}", r"stages\[1\].*temprature.*did you mean 'temperature'"),
        ("{name: fusion, steps: 2, lr: -0.001}", r"stages\[1\]: lr must be a positive"),
        ("{name: fusion, steps: 0, lr: 0.001}", r"stages\[1\]: steps must be >= 1"),
        ("{name: robustness, steps: 2, lr: 0.001, params: {depth_pixel_dropout: 1.5}}",
         r"stages\[1\].*depth_pixel_dropout must be in \[0, 1\]"),
        ("{name: finetune, steps: 2, lr: 0.001, freeze: [encoder.lidar]}", r"stages\[1\].*encoder.lidar"),
        ("{name: fusion, steps: 2, lr: 0.001, params: {rgbd: 0.0, rgb_only: 0.0, depth_only: 0.0}}",
         r"stages\[1\].*all 0"),
    ]
    for stage, pattern in cases:
        path = tmp_path / "bad.yaml"
        path.write_text(f"bags: b\noutput: o\nstages:\n  - {{name: fusion, steps: 2, lr: 0.001}}\n  - {stage}\n")
        with pytest.raises(ConfigError, match=pattern):
            load_config(TrainConfig, path)
    path.write_text("bags: b\noutput: o\nprecision: fp8\nstages: [{name: fusion, steps: 2, lr: 0.001}]\n")
    with pytest.raises(ConfigError, match="precision must be"):
        load_config(TrainConfig, path)


def test_benchmark_times_the_steps_of_a_stage():
    data, _, _ = scenes(8)
    seconds, samples = benchmark_stage("robustness", data, steps=2, batch_size=4)
    assert seconds > 0 and samples == 8 and stage_names("grasp")[-1] == "robustness"


def test_plots_are_written_from_the_metrics(tmp_path):
    run = make_run(tmp_path)
    run_stage(run, 0, StageConfig(name="pretrain_depth", steps=3, lr=1e-3, batch_size=8))
    run_stage(run, 1, StageConfig(name="finetune", steps=3, lr=1e-3, batch_size=8))
    files = write_plots(tmp_path / "metrics.jsonl", tmp_path / "plots")
    names = sorted(f.name for f in files)
    assert names == ["loss.png", "loss_parts.png", "validation.png"]
    assert all(f.stat().st_size > 5000 and f.read_bytes()[:4] == b"\x89PNG" for f in files)
