"""msvla-train runs end to end on recorded episodes: a corrupt bag is reported and skipped, the
checkpoint loads and verifies, metrics are written, and a second run reads only the sample cache."""
import json
import re
import shutil
from pathlib import Path

import torch

from msvla_core.models.checkpoint import load_pretrained, read_config, verify
from msvla_sim.record_franka import main as record
from msvla_training.train import main

ROOT = Path(__file__).resolve().parents[3]
CALIBRATION = ROOT / "config" / "franka" / "calibration.yaml"


def write_config(path: Path, bags: Path, out: Path, cache: Path) -> Path:
    path.write_text(
        f"bags: {bags}\noutput: {out}\ncache_dir: {cache}\n"
        f"bag_spec: {ROOT / 'config' / 'training' / 'bags' / 'franka_grasp.yaml'}\n"
        f"calibration: {CALIBRATION}\n"
        "steps: 4\nbatch_size: 2\nlr: 0.002\nseed: 0\nthreads: 1\nlog_every: 2\n"
        "split: [0.5, 0.5, 0.0]\nsplit_seed: 0\n")
    return path


def cache_stats(printed: str) -> dict:
    return eval(re.search(r"cache (\{.*?\})", printed).group(1))


def test_train_from_bags_with_a_corrupt_episode_and_cache_reuse(tmp_path, capsys):
    torch.set_num_threads(1)
    bags = tmp_path / "bags"
    assert record(["--output", str(bags), "--episodes", "6", "--seed-start", "300100", "--frames", "2",
                   "--width", "64", "--height", "64", "--calibration", str(CALIBRATION)]) == 0
    # A copy of a good episode with its storage file cut in half.
    bad = bags / "episode_999999"
    shutil.copytree(bags / "episode_300100", bad)
    storage = next(p for p in bad.iterdir() if p.suffix == ".mcap")
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    capsys.readouterr()

    out, cache = tmp_path / "ckpt", tmp_path / "cache"
    config = write_config(tmp_path / "train.yaml", bags, out, cache)
    assert main(["--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "skipping bad bag episode_999999" in printed
    assert cache_stats(printed) == {"builds": 6}

    model_id = verify(out)
    model = load_pretrained(out)
    _, meta = read_config(out)
    assert model.model_id == model_id and meta["trained"] is True and meta["bad_bags"] == 1
    assert meta["train_bags"] + meta["val_bags"] == 6 and meta["steps"] == 4
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_lines = [m for m in lines if m["split"] == "train"]
    assert [m["step"] for m in train_lines] == [2, 4] and "ce" in train_lines[0]["loss_parts"]
    val = lines[-1]
    assert val["split"] == "val" and val["samples"] == meta["val_bags"]
    if val["samples"]:
        assert 0.0 <= val["val_cell_acc"] <= 1.0 and val["val_median_error_cm"] >= 0.0

    # Remove every good bag's storage: a second run can then only succeed from the cache.
    for episode in bags.iterdir():
        if episode != bad:
            for f in episode.glob("*.mcap"):
                f.unlink()
    assert main(["--config", str(config), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert cache_stats(printed) == {"hits": 6}
    assert "skipping bad bag episode_999999" in printed and f"weights from {out}" in printed
    _, meta2 = read_config(out)
    assert meta2["steps"] == 8 and meta2["resumed"] is True and verify(out) == meta2["model_id"]
    lines2 = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines2) == 2 * len(lines)
