"""msvla-train task drive on recorded vehicle episodes: the driving stage chain trains the
multi-sensor vehicle VLA from bags (IMU windows and wheel/steering joints included), validates it
with every sensor and with sensors left out, and saves a checkpoint the graph's nodes load."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from msvla_core.models.checkpoint import load_pretrained, read_config, verify
from msvla_core.models.vla import MultiSensorVLA
from msvla_sim.record_vehicle import main as record
from msvla_training.drive_data import _keep
from msvla_training.train import TrainConfig, main

ROOT = Path(__file__).resolve().parents[3]
CHAIN = [("drive_fusion", 3), ("drive_finetune", 2), ("drive_robustness", 2)]


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vehicle_bags")
    assert record(["--output", str(root), "--episodes", "3", "--seed-start", "700000", "--seconds", "1.6",
                   "--n-static", "0", "--n-moving", "1", "--course-length", "40", "--steering-noise", "0.05",
                   "--max-initial-speed", "4"]) == 0
    return root


def write_config(path: Path, bags: Path, out: Path) -> Path:
    stages = "".join(f"  - {{name: {n}, steps: {k}, lr: 0.001, batch_size: 4}}\n" for n, k in CHAIN)
    path.write_text(
        f"task: drive\nbags: {bags}\noutput: {out}\ncache_dir: {out.parent / 'cache'}\n"
        f"bag_spec: {ROOT / 'config/training/bags/vehicle_drive.yaml'}\n"
        f"model_config: {ROOT / 'config/models/vehicle_multisensor.yaml'}\n"
        "seed: 0\nthreads: 1\nlog_every: 1\neval_every: 0\ncheckpoint_every: 0\n"
        "split: [0.67, 0.33, 0.0]\nsplit_seed: 1\nval_modes: [all, no_camera, no_proprio]\n"
        "stages:\n" + stages)
    return path


def test_drive_chain_from_bags(bags, tmp_path, capsys):
    out = tmp_path / "ckpt"
    assert main(["--config", str(write_config(tmp_path / "drive.yaml", bags, out))]) == 0
    printed = capsys.readouterr().out
    assert "bad bags" in printed and "[save]" in printed
    model = load_pretrained(out)
    assert isinstance(model, MultiSensorVLA) and verify(out) == model.model_id
    assert set(model.encoders) == {"camera", "lidar", "radar", "imu", "proprio"}
    _, meta = read_config(out)
    assert meta["trained"] and [s["name"] for s in meta["stages"]] == [n for n, _ in CHAIN]
    assert meta["train_samples"] > 0 and meta["val_samples"] > 0
    for key in ("val_steering_mae_deg", "val_ade_m", "val_no_camera_ade_m", "val_no_proprio_brake_mae"):
        assert np.isfinite(meta[key]), key
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    robust = [r for r in rows if r["split"] == "train" and r["stage"] == "drive_robustness"]
    assert robust and all(r["losses"]["adversarial"] >= 1 and r["losses"]["noisy"] >= 1 for r in robust)
    assert all(np.isfinite(r["loss"]) for r in rows if r["split"] == "train")
    assert (out / "plots" / "validation.png").is_file()
    # The fused model runs on a sample with the proprio encoder's own preprocessing of a JointState.
    raw = {"position": np.array([0.1, 2.0]), "velocity": np.array([0.0, 15.0])}
    assert model.encoders["proprio"].preprocess(raw)["state"].shape == (4,)


def test_thinning_keeps_every_nth_frame_and_fewer_standing_ones():
    moving = np.array([True] * 6 + [False] * 12)
    kept = _keep(moving, frame_stride=2, stationary_stride=3)
    # Frames 0..17 every 2nd -> 0, 2, 4 moving; of the standing 6, 8, ..., 16 every 3rd -> 6, 12.
    assert kept.tolist() == [0, 2, 4, 6, 12]
    assert _keep(moving, 1, 1).tolist() == list(range(18))


def test_drive_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="task drive needs model_config"):
        TrainConfig(bags="b", output="o", stages=[{"name": "drive_fusion", "steps": 1}], task="drive")
    with pytest.raises(ValueError, match="task must be grasp or drive"):
        TrainConfig(bags="b", output="o", stages=[{"name": "fusion", "steps": 1}], task="fly")
    with pytest.raises(ValueError, match=r"val_modes has unknown modes \['rgb'\] for task drive"):
        TrainConfig(bags="b", output="o", stages=[{"name": "drive_fusion", "steps": 1}], task="drive",
                    model_config="m.yaml", val_modes=("rgb",))
