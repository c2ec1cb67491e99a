"""PNG plots of a training run from its metrics.jsonl (matplotlib, Agg backend: no display).

loss.png: total training loss against the global step, one colour per stage, stage boundaries
marked. loss_parts.png: each stage's loss parts against its step. validation.png: the validation
metrics of each input mode (sensor set) against the global step.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

VAL_METRICS = (("cell_acc", "cell accuracy"), ("median_error_cm", "median position error (cm)"),
               ("median_rot_error_deg", "median rotation error (deg)"), ("success", "success (2 cm, 15 deg)"),
               ("steering_mae_deg", "steering error (deg)"), ("throttle_mae", "throttle error"),
               ("brake_mae", "brake error"), ("ade_m", "trajectory ADE (m)"))
MODE_LABELS = {"val_": "all sensors", "val_rgb_": "RGB only", "val_depth_": "depth only"}


def _mode_label(prefix: str) -> str:
    """"val_" -> all sensors (RGB-D for the grasp model); "val_no_lidar_" -> no lidar."""
    return MODE_LABELS.get(prefix, prefix.removeprefix("val_").rstrip("_").replace("_", " "))


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _stage_bounds(ax, records: list[dict]) -> None:
    for r in records:
        if r.get("split") == "stage":
            ax.axvline(r["global_step"], color="grey", lw=0.6, ls="--")


def write_plots(metrics_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the plots of `metrics_path` into `out_dir`; returns the files written."""
    records = read_metrics(metrics_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "val"]
    written = []
    if train:
        by_stage = defaultdict(list)
        for r in train:
            by_stage[(r["stage_index"], r["stage"])].append(r)
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for (index, name), rs in sorted(by_stage.items()):
            ax.plot([r["global_step"] for r in rs], [r["loss"] for r in rs], label=f"{index + 1} {name}")
        _stage_bounds(ax, records)
        ax.set_xlabel("global step")
        ax.set_ylabel("training loss")
        if all(r["loss"] > 0 for r in train):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        written.append(_save(fig, out_dir / "loss.png"))
        # One figure for all stages' parts: a figure per stage would cost seconds at every stage end.
        cols = min(3, len(by_stage))
        rows = -(-len(by_stage) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
        for ax, ((index, name), rs) in zip(axes.flat, sorted(by_stage.items())):
            for key in sorted({k for r in rs for k in r["losses"]}):
                if not key.startswith("mode_"):
                    ax.plot([r["step"] for r in rs], [r["losses"].get(key, float("nan")) for r in rs], label=key)
            ax.set_title(f"{index + 1} {name}", fontsize=10)
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(by_stage):]:
            ax.set_visible(False)
        written.append(_save(fig, out_dir / "loss_parts.png"))
    if val:
        keys = {k for r in val for k in r if k.startswith("val_")}
        shown = [(m, title) for m, title in VAL_METRICS if any(k.endswith(m) for k in keys)]
        cols = 2
        rows = max(1, -(-len(shown) // cols))
        fig, axes = plt.subplots(rows, cols, figsize=(10, 3.5 * rows), squeeze=False)
        for ax, (metric, title) in zip(axes.flat, shown):
            for prefix in sorted({k[:-len(metric)] for k in keys if k.endswith(metric)}, key=len):
                points = [(r["global_step"], r[prefix + metric]) for r in val if prefix + metric in r]
                ax.plot(*zip(*points), marker="o", ms=3, label=_mode_label(prefix))
            _stage_bounds(ax, records)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("global step")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        for ax in list(axes.flat)[len(shown):]:
            ax.set_visible(False)
        written.append(_save(fig, out_dir / "validation.png"))
    return written


def _save(fig, path: Path) -> Path:
    # Fixed margins: tight_layout draws every figure twice, which costs seconds per stage end here.
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.1, top=0.93, wspace=0.25, hspace=0.45)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
