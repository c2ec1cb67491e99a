"""msvla-train end to end on recorded episodes: the whole stage chain runs, a corrupt bag is
reported and skipped, the checkpoint loads and verifies, metrics and plots are written, a single
stage reruns from the sample cache alone, and a run stopped mid-stage and resumed ends with the
same weights and the same logged losses as an uninterrupted one."""
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from msvla_core.models.checkpoint import load_pretrained, read_config, verify
from msvla_sim.record_franka import main as record
from msvla_training.runtime import load_train_state
from msvla_training.train import main

ROOT = Path(__file__).resolve().parents[3]
CALIBRATION = ROOT / "config" / "franka" / "calibration.yaml"
CHAIN = [("pretrain_rgb", 2), ("pretrain_depth", 2), ("align", 2), ("fusion", 4), ("finetune", 3), ("robustness", 2)]


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bags")
    assert record(["--output", str(root), "--episodes", "6", "--seed-start", "300100", "--frames", "2",
                   "--width", "64", "--height", "64", "--calibration", str(CALIBRATION)]) == 0
    # A copy of a good episode with its storage file cut in half.
    bad = root / "episode_999999"
    shutil.copytree(root / "episode_300100", bad)
    storage = next(p for p in bad.iterdir() if p.suffix == ".mcap")
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    return root


def write_config(path: Path, bags: Path, out: Path, cache: Path, extra: str = "", chain=CHAIN) -> Path:
    stages = "".join(f"  - {{name: {name}, steps: {steps}, lr: 0.002, batch_size: 4}}\n" for name, steps in chain)
    path.write_text(
        f"bags: {bags}\noutput: {out}\ncache_dir: {cache}\n"
        f"bag_spec: {ROOT / 'config' / 'training' / 'bags' / 'franka_grasp.yaml'}\n"
        f"calibration: {CALIBRATION}\n"
        "model: {image: {width: 32, height: 32}}\n"  # small inputs keep the test fast
        "seed: 0\nthreads: 1\nlog_every: 1\neval_every: 2\ncheckpoint_every: 0\n"
        "split: [0.5, 0.5, 0.0]\nsplit_seed: 0\n" + extra + "stages:\n" + stages)
    return path


def cache_stats(printed: str) -> dict:
    return eval(re.search(r"cache (\{.*?\})", printed).group(1))


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_chain_from_bags_with_a_corrupt_episode_then_one_stage_from_the_cache(bags, tmp_path, capsys):
    out, cache = tmp_path / "ckpt", tmp_path / "cache"
    config = write_config(tmp_path / "train.yaml", bags, out, cache)
    capsys.readouterr()
    assert main(["--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "skipping bad bag episode_999999" in printed
    assert cache_stats(printed) == {"builds": 6}

    model_id = verify(out)
    assert load_pretrained(out).model_id == model_id
    _, meta = read_config(out)
    assert meta["trained"] is True and meta["bad_bags"] == 1 and meta["train_bags"] + meta["val_bags"] == 6
    assert [(s["name"], s["steps"]) for s in meta["stages"]] == CHAIN and meta["steps"] == 15
    assert all(s["seconds"] >= 0 and s["samples_per_s"] > 0 for s in meta["stages"])
    assert 0.0 <= meta["val_success"] <= 1.0 and "val_rgb_median_error_cm" in meta
    lines = records(out)
    for index, (name, steps) in enumerate(CHAIN):
        train = [r for r in lines if r["split"] == "train" and r["stage"] == name]
        assert [r["step"] for r in train] == list(range(1, steps + 1))
        assert all(r["stage_index"] == index and r["lr"] > 0 and r["samples_per_s"] > 0 for r in train)
        val_steps = [r["step"] for r in lines if r["split"] == "val" and r["stage"] == name]
        assert val_steps == sorted({s for s in range(2, steps, 2)} | {steps})
    assert [r["global_step"] for r in lines if r["split"] == "stage"] == [2, 4, 6, 10, 13, 15]
    plots = {p.name for p in (out / "plots").glob("*.png")}
    assert plots == {"loss.png", "loss_parts.png", "validation.png"}
    assert json.loads((out / "train_state" / "state.json").read_text())["format"] == 1

    # Remove every good bag's storage: the single stage can then only run from the cache.
    for episode in bags.iterdir():
        if episode.name != "episode_999999":
            for f in episode.glob("*.mcap"):
                f.unlink()
    assert main(["--config", str(config), "--stage", "finetune"]) == 0
    printed = capsys.readouterr().out
    assert cache_stats(printed) == {"hits": 6}
    assert "skipping bad bag episode_999999" in printed and f"weights from {out}" in printed
    _, meta2 = read_config(out)
    assert [s["name"] for s in meta2["stages"]] == ["finetune"] and verify(out) == meta2["model_id"] != model_id
    assert len(records(out)) > len(lines)  # appended to the run's metrics


@pytest.fixture
def fresh_bags(tmp_path):
    root = tmp_path / "bags"
    assert record(["--output", str(root), "--episodes", "4", "--seed-start", "300200", "--frames", "2",
                   "--width", "64", "--height", "64", "--calibration", str(CALIBRATION)]) == 0
    return root


# Stages with training-only heads, random input modes and per-step augmentation noise.
RESUME_CHAIN = [("align", 2), ("fusion", 3), ("robustness", 3)]


def test_resume_mid_stage_gives_the_same_weights_and_losses(fresh_bags, tmp_path, capsys):
    torch.set_num_threads(1)
    cache = tmp_path / "cache"
    straight = write_config(tmp_path / "a.yaml", fresh_bags, tmp_path / "a", cache, chain=RESUME_CHAIN)
    assert main(["--config", str(straight)]) == 0

    stopped = write_config(tmp_path / "b.yaml", fresh_bags, tmp_path / "b", cache, chain=RESUME_CHAIN)
    assert main(["--config", str(stopped), "--stop-after", "1"]) == 0
    assert not (tmp_path / "b" / "config.json").exists()
    state = load_train_state(tmp_path / "b" / "train_state")
    assert (state["stage"], state["step"], state["stage_done"]) == ("align", 1, False)
    assert main(["--config", str(stopped), "--resume", "--stop-after", "5"]) == 0  # across two stage ends
    assert main(["--config", str(stopped), "--resume"]) == 0
    assert "resuming at stage 3 robustness step 1" in capsys.readouterr().out

    _, meta_a = read_config(tmp_path / "a")
    _, meta_b = read_config(tmp_path / "b")
    assert meta_b["model_id"] == meta_a["model_id"] and meta_b["resumed"] is True
    assert [(s["name"], s["steps"]) for s in meta_b["stages"]] == RESUME_CHAIN

    def losses(name):
        return [(r["stage"], r["step"], r["loss"], r["losses"]) for r in records(tmp_path / name)
                if r["split"] == "train"]

    assert losses("b") == losses("a")
    val_a = [r for r in records(tmp_path / "a") if r["split"] == "val"]
    val_b = [r for r in records(tmp_path / "b") if r["split"] == "val"]
    assert val_a == val_b


def test_bad_values_and_missing_state_are_reported_by_name(tmp_path):
    config = write_config(tmp_path / "c.yaml", tmp_path / "none", tmp_path / "out", tmp_path / "cache",
                          extra="max_val_samples: -1\n")
    with pytest.raises(SystemExit, match="max_val_samples must be >= 0"):
        main(["--config", str(config)])
    config.write_text(config.read_text().replace("max_val_samples: -1\n", "").replace("batch_size: 4}", "batch_size: 0}", 1))
    with pytest.raises(SystemExit, match=r"stages\[0\]: batch_size must be >= 1"):
        main(["--config", str(config)])
    config = write_config(tmp_path / "d.yaml", tmp_path / "none", tmp_path / "out", tmp_path / "cache")
    with pytest.raises(SystemExit, match="--stage robust: the config lists it 0 times"):
        main(["--config", str(config), "--stage", "robust"])
    with pytest.raises(SystemExit, match="no training state to resume from"):
        main(["--config", str(config), "--resume"])
    with pytest.raises(SystemExit, match="bags folder .*none does not exist"):
        main(["--config", str(config)])
