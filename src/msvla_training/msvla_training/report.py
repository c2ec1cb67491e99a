"""Markdown report of an msvla-eval run, with PNG plots (matplotlib, Agg: no display needed).

Input is the results dict msvla-eval also writes as results.json; sections that were not run
(--offline-only, --closed-loop-only) say so instead of disappearing.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first: headless machines)
import numpy as np  # noqa: E402

ERROR_CDF_PNG = "error_cdf.png"
NOISE_PNG = "noise.png"


def _f(value, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines + [""]


def plot_error_cdf(errors: dict, path: Path, thresholds: dict) -> None:
    """Cumulative distribution of position and rotation error, one line per ablation."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, unit, limit in ((axes[0], "position_cm", "cm", thresholds["position_cm"]),
                                 (axes[1], "rotation_deg", "deg", thresholds["rotation_deg"])):
        for ablation, values in errors.items():
            v = np.sort(np.asarray(values[key], dtype=float))
            ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=ablation)
        ax.axvline(limit, color="grey", linestyle="--", linewidth=1, label=f"success limit {limit:g} {unit}")
        ax.set_xscale("symlog", linthresh=1.0)  # linear below 1, so zero errors (free yaw) stay visible
        ax.set_xlim(left=0)
        ax.set_xlabel(f"{key.split('_')[0]} error ({unit})")
        ax.set_ylabel("fraction of test samples")
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_noise(noise: dict, path: Path) -> None:
    """Offline success rate against RGB noise sigma and against depth dropout fraction."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, level, xlabel in ((axes[0], "rgb_noise", "sigma", "RGB noise sigma (0-255 pixel units)"),
                                   (axes[1], "depth_dropout", "fraction", "depth dropout (fraction of pixels)")):
        rows = noise.get(key, [])
        ablations = list(dict.fromkeys(a for r in rows for a, v in r.items() if isinstance(v, dict)))
        for ablation in ablations:
            pts = [(r[level], r[ablation]["success_rate"]) for r in rows if ablation in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=ablation)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success rate (2 cm and 15 deg)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        if ablations:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _offline_section(off: dict, output: Path) -> list[str]:
    t = off["thresholds"]
    lines = [f"Test split: {off['samples']} samples from {len(off['bags_used'])} of {off['test_bags']} test "
             f"episodes (split {off['split']['fractions']}, seed {off['split']['seed']}; "
             f"{off['bad_bags']} bad bags skipped). Success: within {t['position_cm']:g} cm (3-D) and "
             f"{t['rotation_deg']:g} deg (label yaw symmetry respected).", "",
             "### Per input ablation", ""]
    rows = [[name, s["samples"], f"{s['successes']}/{s['samples']} ({_pct(s['success_rate'])})",
             _f(s["position_cm"]["median"]), _f(s["position_cm"]["p90"]), _f(s["position_xy_cm"]["median"]),
             _f(s["position_xy_cm"]["p90"]), _f(s["rotation_deg"]["median"], ".1f"),
             _f(s["rotation_deg"]["p90"], ".1f"), s["unlocalised"]] for name, s in off["ablations"].items()]
    lines += _table(["ablation", "samples", "success", "pos median cm", "pos p90 cm", "xy median cm", "xy p90 cm",
                     "rot median deg", "rot p90 deg", "unlocalised"], rows)
    lines += ["### By target shape word", ""]
    rows = [[name, shape, g["samples"], _pct(g["success_rate"]), _f(g["position_cm_median"]),
             _f(g["rotation_deg_median"], ".1f")]
            for name, s in off["ablations"].items() for shape, g in s["by_shape"].items()]
    lines += _table(["ablation", "shape", "samples", "success", "pos median cm", "rot median deg"], rows)
    if off.get("errors"):
        plot_error_cdf(off["errors"], output / ERROR_CDF_PNG, t)
        lines += [f"![error CDF per ablation]({ERROR_CDF_PNG})", ""]

    noise = off["noise"]
    lines += ["## Noise robustness", "", f"On {noise['samples']} test samples; cells: success rate / median "
              "position error (cm).", ""]
    for key, level, title in (("rgb_noise", "sigma", "RGB Gaussian noise sigma (0-255)"),
                              ("depth_dropout", "fraction", "depth dropout fraction")):
        rows = noise.get(key, [])
        ablations = list(dict.fromkeys(a for r in rows for a, v in r.items() if isinstance(v, dict)))
        body = [[_f(r[level], "g")] + [f"{_pct(r[a]['success_rate'])} / {_f(r[a]['position_cm_median'])}"
                                      if a in r else "-" for a in ablations] for r in rows]
        lines += _table([title] + ablations, body)
    plot_noise(noise, output / NOISE_PNG)
    lines += [f"![success vs noise level]({NOISE_PNG})", ""]
    timing = off["timing"]
    lines += [f"Offline time: {timing['total_s']:.1f} s in all ({timing['total_s_per_100_samples']:.1f} s per "
              f"100 test samples): data {timing['load_s']:.1f} s, ablations {timing['ablations_s']:.1f} s, noise "
              f"table {timing['noise_s']:.1f} s; forward pass {timing['forward_s_per_100_samples']:.2f} s per "
              "100 samples and ablation.", ""]
    return lines


def _closed_loop_section(variants: dict) -> list[str]:
    rows = []
    for name, r in variants.items():
        s = r["summary"]
        lo, hi = s["wilson95"]
        rows.append([name, r["graph"], s["episodes"], f"{s['successes']}/{s['episodes']}", _pct(s["success_rate"]),
                     f"[{100 * lo:.1f}, {100 * hi:.1f}] %", s["timeouts"], _f(s["latency_ms_median"], ".1f"),
                     _f(s["latency_ms_p99"], ".1f"), _f(s["seconds_per_episode"], ".1f")])
    lines = _table(["variant", "graph", "episodes", "successes", "rate", "Wilson 95 %", "timeouts",
                    "latency median ms", "latency p99 ms", "s/episode"], rows)
    for name, r in variants.items():
        for ignored in r.get("ignored_overrides", []):
            lines += [f"**Warning ({name})**: `{ignored}` is not a parameter of that node; it had no effect.", ""]
        lines += [f"### Episodes: {name}", ""]
        lines += _table(["seed", "instruction", "target", "lifted", "success", "latency ms"],
                        [[e["seed"], e["instruction"], e["target"] or "-", ", ".join(e["lifted"]) or "-",
                          "yes" if e["success"] else e["outcome"], _f(e["latency_ms"], ".1f")]
                         for e in r["episodes"]])
    return lines


def write_report(results: dict, output: str | Path) -> Path:
    """Write <output>/report.md (and its PNGs); returns the report path."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    lines = ["# Grasp VLA evaluation", "",
             f"- checkpoint: `{results['checkpoint']}`", f"- model_id: `{results['model_id']}`",
             f"- command: `{results['command']}`", f"- date: {results.get('date', '-')}", ""]
    if results.get("error"):
        lines += ["## Error: the run ended early", "", "```", results["error"], "```", ""]
    lines += ["## Offline metrics", ""]
    lines += _offline_section(results["offline"], output) if "offline" in results else ["Not run.", ""]
    lines += ["## Closed loop", ""]
    lines += _closed_loop_section(results["closed_loop"]) if results.get("closed_loop") else ["Not run.", ""]
    path = output / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
