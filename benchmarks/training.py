"""Training data and stage throughput: bag ingest against a plain rosbags loop, samples/s of every
training stage, peak memory.

Ingest, on the same bags in the same run (per-bag times; MB/s = bag bytes on disk / wall time):
  rosbags loop     AnyReader over every message, deserialised (what a user would write first)
  iter_samples     msvla_core.data.samples: synchronised samples with decoded images and labels
  cache build      iter_samples + the model's encoder preprocessing + safetensors write
  cache hit        reading the preprocessed samples back (what every later training run does)
Stages: each stage of msvla_training.stages runs --stage-steps optimiser steps at --batch-size on
the loaded samples; samples/s excludes the first (warm-up) step.
Peak memory: resident set size sampled every 50 ms during each phase, and the process maximum.

    python benchmarks/training.py [--bags bags/franka] [--max-bags 100] [--stage-steps 12]

Bags default to bags/franka (msvla-record-franka); when that folder is missing, --record N
episodes are recorded into a temporary folder first.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]


class PeakRss:
    """Samples this process's resident set size in a thread while a phase runs."""

    def __init__(self, period_s: float = 0.05):
        self.period_s, self.peak = period_s, 0
        self._process = psutil.Process()
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self.period_s)

    @contextmanager
    def measure(self):
        self.peak = self._process.memory_info().rss
        self._stop.clear()
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def bag_bytes(bag: Path) -> int:
    return sum(f.stat().st_size for f in bag.rglob("*") if f.is_file())


def summarise(name: str, per_bag_s: list[float], total_bytes: int, units: int, unit: str, peak: int) -> dict:
    total = sum(per_bag_s)
    ms = np.asarray(per_bag_s) * 1e3
    row = {"name": name, "MB/s": total_bytes / 1e6 / total, f"{unit}/s": units / total,
           "median ms/bag": float(np.median(ms)), "p99 ms/bag": float(np.percentile(ms, 99)),
           "peak RSS MB": peak / 1e6}
    print(f"  {name:<14} {row['MB/s']:8.1f} MB/s  {row[f'{unit}/s']:9.1f} {unit}/s  "
          f"per bag median {row['median ms/bag']:6.1f} ms p99 {row['p99 ms/bag']:6.1f} ms  "
          f"peak RSS {row['peak RSS MB']:6.0f} MB", flush=True)
    return row


def per_bag(bags: list[Path], count) -> tuple[list[float], int]:
    """Wall time of `count(bag)` per bag, and the summed counts."""
    times, total = [], 0
    for bag in bags:
        t0 = time.perf_counter()
        total += count(bag)
        times.append(time.perf_counter() - t0)
    return times, total


def plain_rosbags(bags: list[Path], store) -> tuple[list[float], int]:
    from rosbags.highlevel import AnyReader

    def messages(bag: Path) -> int:
        n = 0
        with AnyReader([bag], default_typestore=store) as reader:
            for conn, _, raw in reader.messages():
                reader.deserialize(raw, conn.msgtype)
                n += 1
        return n

    return per_bag(bags, messages)


def ours_iter(bags: list[Path], spec) -> tuple[list[float], int]:
    from msvla_core.data.samples import iter_samples

    return per_bag(bags, lambda bag: sum(1 for _ in iter_samples(bag, spec)))


def cache_pass(bags: list[Path], cache) -> tuple[list[float], int]:
    return per_bag(bags, lambda bag: len(cache.load(bag)))


def record(n: int, out: Path) -> None:
    from msvla_sim.record_franka import main as record_main

    record_main(["--output", str(out), "--episodes", str(n), "--seed-start", "700000", "--frames", "2",
                 "--calibration", str(ROOT / "config/franka/calibration.yaml")])


def stage_throughput(data: dict, args) -> list[dict]:
    from msvla_training.stages import benchmark_stage, stage_names

    rows = []
    meter = PeakRss()
    for name in stage_names("grasp"):
        with meter.measure():
            seconds, samples = benchmark_stage(name, data, steps=args.stage_steps, batch_size=args.batch_size,
                                               seed=0)
        rate = samples / seconds
        rows.append({"stage": name, "samples/s": rate, "peak RSS MB": meter.peak / 1e6})
        print(f"  {name:<16} {rate:8.1f} samples/s  ({args.stage_steps} steps at batch {args.batch_size}, "
              f"{seconds:.1f} s)  peak RSS {meter.peak / 1e6:6.0f} MB", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bags", default=str(ROOT / "bags/franka"))
    parser.add_argument("--max-bags", type=int, default=100)
    parser.add_argument("--record", type=int, default=60, help="episodes to record when --bags is missing")
    parser.add_argument("--stage-steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-stages", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from msvla_core.data.bags import BagSpec, default_typestore
    from msvla_core.data.samples import SampleCache
    from msvla_core.models.config import GraspModelConfig
    from msvla_core.models.grasp_vla import GraspVLA
    from msvla_training.dataset import load_grasp_data, make_cache

    work = Path(tempfile.mkdtemp(prefix="msvla-bench-training-"))
    try:
        root = Path(args.bags)
        if not root.is_dir():
            print(f"[setup] {root} missing: recording {args.record} episodes", flush=True)
            root = work / "bags"
            record(args.record, root)
        bags = sorted(p for p in root.iterdir() if p.is_dir())[: args.max_bags]
        spec = BagSpec.load(ROOT / "config/training/bags/franka_grasp.yaml")
        store = default_typestore()
        total = sum(bag_bytes(b) for b in bags)
        print(f"[ingest] {len(bags)} bags, {total / 1e6:.1f} MB, torch threads {args.threads}", flush=True)
        meter, rows = PeakRss(), []
        for b in bags[:3]:  # warm the page cache so every reader sees the same disk state
            bag_bytes(b)
            plain_rosbags([b], store)
        with meter.measure():
            times, n = plain_rosbags(bags, store)
        rows.append(summarise("rosbags loop", times, total, n, "msgs", meter.peak))
        with meter.measure():
            times, n = ours_iter(bags, spec)
        rows.append(summarise("iter_samples", times, total, n, "samples", meter.peak))
        counters: Counter = Counter()
        model = GraspVLA(GraspModelConfig())
        cache = make_cache(model, spec, work / "cache", ROOT / "config/franka/calibration.yaml", "grasp", counters)
        assert isinstance(cache, SampleCache)
        with meter.measure():
            times, n = cache_pass(bags, cache)
        rows.append(summarise("cache build", times, total, n, "samples", meter.peak))
        with meter.measure():
            times, n = cache_pass(bags, cache)
        rows.append(summarise("cache hit", times, total, n, "samples", meter.peak))
        print(f"[ingest] cache {dict(cache.stats)}", flush=True)

        if not args.skip_stages:
            data, _ = load_grasp_data(bags, spec, cache)
            print(f"[stages] {data['rgb'].shape[0]} samples", flush=True)
            stage_throughput(data, args)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(f"[memory] process peak RSS {peak / 1e6:.0f} MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
