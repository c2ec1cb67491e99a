"""The bootstrap trainer runs end to end on a few scenes and writes a checkpoint the nodes load."""
from pathlib import Path

from msvla_core.models.checkpoint import load_component, read_config, verify
from msvla_training.bootstrap_grasp import main

CALIBRATION = Path(__file__).resolve().parents[3] / "config" / "franka" / "calibration.yaml"


def test_bootstrap_writes_a_loadable_trained_checkpoint(tmp_path, capsys):
    out = tmp_path / "ckpt"
    assert main(["--output", str(out), "--scenes", "12", "--steps", "4", "--batch-size", "4",
                 "--eval-scenes", "2", "--calibration", str(CALIBRATION), "--threads", "1"]) == 0
    model_id = verify(out)
    _, meta = read_config(out)
    assert meta["trained"] is True and meta["train_scenes"] == 12 and meta["model_id"] == model_id
    for name in ("encoder.rgb", "encoder.depth", "fusion", "policy"):
        assert load_component(out, name)[2] == model_id
    printed = capsys.readouterr().out
    assert "[eval] seeds 5000-5001" in printed and "closed-loop success" in printed
