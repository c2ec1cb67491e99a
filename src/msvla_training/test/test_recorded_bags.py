"""Recorded simulator episodes pass validation and give samples with the expert label, exactly as
the bag spec the trainers use describes them."""
from collections import Counter
from pathlib import Path

from msvla_core.data.bags import BagSpec, validate_bag
from msvla_core.data.samples import iter_samples
from msvla_sim.record_franka import main as record

ROOT = Path(__file__).resolve().parents[3]


def test_recorded_episodes_validate_and_yield_labelled_samples(tmp_path):
    assert record(["--output", str(tmp_path), "--episodes", "2", "--seed-start", "300000", "--frames", "3",
                   "--width", "64", "--height", "64",
                   "--calibration", str(ROOT / "config" / "franka" / "calibration.yaml")]) == 0
    spec = BagSpec.load(ROOT / "config" / "training" / "bags" / "franka_grasp.yaml")
    bags = sorted(tmp_path.iterdir())
    assert len(bags) == 2
    for bag in bags:
        validate_bag(bag, spec)
        counters = Counter()
        samples = list(iter_samples(bag, spec, counters=counters))
        assert len(samples) == 3 and counters["depth:no_camera_info"] == 0
        assert all(not s.missing for s in samples)
        labelled = [s for s in samples if "grasp" in s.labels]
        assert len(labelled) == 1 and labelled[0] is samples[-1]
        assert samples[-1].instruction and samples[-1].raw["rgb"].shape == (64, 64, 3)
