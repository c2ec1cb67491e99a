"""Markdown report of a vehicle evaluation (vehicle_eval), from the dict it also writes as results.json:
an overview over variants and suites, then per variant its graph changes, what they imply, a
table per instruction kind and every episode."""
from __future__ import annotations

from pathlib import Path

COLUMNS = ["episodes", "route completion", "completed [95 % CI]", "collisions [95 % CI]", "lane departure s",
           "compliance [95 % CI]", "jerk RMS / p95 m/s³", "steering rate RMS rad/s", "mean speed m/s", "stop gap m (median)",
           "latency median / p99 ms", "shield stopped", "s / episode"]


def _f(value, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _rate(r: dict) -> str:
    if not r["n"]:
        return "n/a"
    lo, hi = r["wilson95"]
    return f"{r['count']}/{r['n']} = {_pct(r['rate'])} [{_pct(lo)}, {_pct(hi)}]"


def summary_cells(s: dict) -> list[str]:
    return [str(s["episodes"]), _pct(s["route_completion_mean"]), _rate(s["completed"]), _rate(s["collisions"]),
            _f(s["lane_departure_s_mean"], ".1f"), _rate(s["compliance"]),
            f"{_f(s['jerk_rms_mean'], '.1f')} / {_f(s['jerk_p95_mean'], '.1f')}", _f(s["steering_rate_rms_mean"], ".3f"),
            _f(s["mean_speed_mps"]), _f(s["stop_gap_m_median"], ".1f"), f"{_f(s['latency_ms_median'], '.0f')} / {_f(s['latency_ms_p99'], '.0f')}",
            _pct(s["shield_stopped_mean"]), _f(s["seconds_per_episode"], ".1f")]


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines + [""]


def _episode_rows(episodes: list[dict]) -> list[list]:
    rows = []
    for e in episodes:
        m = e["metrics"]
        rows.append([e["seed"], e["instruction"], e["end"], _pct(m["route_fraction"]), "yes" if m["collision"] else "no",
                     _f(m["lane_departure_s"], ".1f"), _f(m["mean_speed_mps"]), _f(m["stop_gap_m"], ".1f"),
                     {True: "yes", False: "no", None: "n/a"}[m["compliant"]], _f(e["seconds"], ".1f"),
                     e["shield_reset"] or "-"])
    return rows


def write_report(results: dict, output: Path) -> Path:
    cfg = results["config"]
    lines = [f"# Vehicle closed-loop evaluation: {Path(results['checkpoint']).name}", "",
             f"- command: `{results['command']}`", f"- checkpoint: `{results['checkpoint']}` (model id "
             f"`{results['model_id']}`)", f"- date: {results['date']}, wall time {results.get('wall_s', 0):.0f} s",
             f"- graph: `{cfg['graph']}`; suites: " + "; ".join(
                 f"{name}: {', '.join(s['kinds'])}, seeds {s['seed_start']}-{s['seed_start'] + s['episodes'] - 1}, "
                 f"overrides {s['overrides'] or '-'}" for name, s in cfg["suites"].items()),
             f"- compliance criteria: {cfg['criteria']}", ""]
    if results.get("error"):
        lines += [f"**The run stopped early: {results['error']}** The tables show what finished.", ""]
    lines += ["Latency: sensor stamp of a VLA proposal (the fused camera frame's) until the vehicle received the "
              "first model-driven command after it. Jerk: longitudinal, from odometry speed (least-squares "
              "derivatives over the criteria's window). Shield stopped: share of shield statuses in SAFE_STOP or "
              "EMERGENCY. Stop gap: front bumper to the first static obstacle in the lane at the end of the "
              "episode. Compliance counts only episodes whose scene can judge the instruction.", "",
              "## Overview", ""]
    overview = [[name, suite, *summary_cells(rec["summary"])]
                for name, suites in results["variants"].items() for suite, rec in suites.items()]
    lines += table(["variant", "suite", *COLUMNS], overview) if overview else ["No episode finished.", ""]
    for name, suites in results["variants"].items():
        variant = results["variant_configs"][name]
        lines += [f"## Variant {name}", "",
                  f"Shield {'on' if variant['shield'] else 'OFF (simulation only: VLA proposals executed as they are)'}"
                  f"; ablated sensors: {', '.join(variant['ablate']) or 'none'}.", ""]
        for suite, rec in suites.items():
            lines += [f"### {name} / {suite}", "", f"- graph {rec['graph']}, started in {_f(rec.get('startup_s'), '.1f')} s",
                      f"- parameter overrides: {rec['overrides'] or '-'}"]
            lines += [f"- effect: {note}" for note in rec["notes"]]
            if rec.get("unclean_exits"):
                lines.append(f"- nodes that did not exit cleanly on SIGINT (exit codes): {rec['unclean_exits']}")
            if rec.get("ignored_overrides"):
                lines.append(f"- WARNING: overrides no node declares (ran with defaults): {rec['ignored_overrides']}")
            lines += ["", *table(["instruction kind", *COLUMNS],
                                 [[kind, *summary_cells(s)] for kind, s in rec["by_kind"].items()]
                                 + [["all", *summary_cells(rec["summary"])]]),
                      *table(["seed", "instruction", "end", "route", "collision", "lane dep. s", "mean speed",
                              "stop gap m", "compliant", "s", "shield reset before"], _episode_rows(rec["episodes"]))]
    path = Path(output) / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
