"""msvla-train under torchrun with two CPU processes (gloo): both ranks train in lock-step on their
shards, rank 0 alone logs and writes the checkpoint, and the saved weights are the ones both
ranks ended with."""
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from msvla_core.models.checkpoint import load_pretrained, read_config, verify
from msvla_sim.record_franka import main as record
from msvla_training.runtime import weights_digest

ROOT = Path(__file__).resolve().parents[3]
CALIBRATION = ROOT / "config" / "franka" / "calibration.yaml"


def test_two_process_training_saves_the_weights_both_ranks_hold(tmp_path):
    bags = tmp_path / "bags"
    assert record(["--output", str(bags), "--episodes", "4", "--seed-start", "300300", "--frames", "2",
                   "--width", "64", "--height", "64", "--calibration", str(CALIBRATION)]) == 0
    out = tmp_path / "ckpt"
    config = tmp_path / "train.yaml"
    config.write_text(
        f"bags: {bags}\noutput: {out}\ncache_dir: {tmp_path / 'cache'}\n"
        f"bag_spec: {ROOT / 'config' / 'training' / 'bags' / 'franka_grasp.yaml'}\ncalibration: {CALIBRATION}\n"
        "model: {image: {width: 32, height: 32}}\nthreads: 1\ndevice: cpu\nlog_every: 1\ncheckpoint_every: 2\n"
        "split: [0.5, 0.5, 0.0]\n"
        "stages:\n"
        "  - {name: fusion, steps: 3, lr: 0.002, batch_size: 4}\n"
        "  - {name: robustness, steps: 2, lr: 0.001, batch_size: 8}\n")  # 2 clean, 1 noisy, 1 FGSM per rank
    digests = tmp_path / "digests"
    env = {**os.environ, "MSVLA_TRAIN_DIGEST_DIR": str(digests), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "msvla_training.train", "--config", str(config)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("[save]") == 1 and "2 process(es)" in result.stdout

    ranks = {p.name: p.read_text().strip() for p in digests.iterdir()}
    assert set(ranks) == {"rank0.txt", "rank1.txt"}
    saved = load_pretrained(out)
    assert ranks["rank0.txt"] == ranks["rank1.txt"] == weights_digest(saved)
    assert verify(out) == saved.model_id
    _, meta = read_config(out)
    assert meta["world_size"] == 2 and [s["name"] for s in meta["stages"]] == ["fusion", "robustness"]

    # Rank 0 alone logged: every (stage, step, split) record appears once, and the logged loss is
    # the mean over both ranks' shards.
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    keys = Counter((r["stage"], r["step"], r["split"]) for r in lines)
    assert max(keys.values()) == 1 and keys[("fusion", 3, "train")] == 1
    assert (out / "train_state" / "state.json").is_file() and (out / "plots" / "loss.png").is_file()
