"""Synchroniser benchmark: msvla_core's ApproximateSynchronizer against a reimplementation of the
ROS message_filters ApproximateTime policy (benchmarks/approximate_time_reference.py), on the
same synthetic streams in the same run.

Streams: camera 30 Hz (the reference), depth 15 Hz, IMU 200 Hz (a single-item stream here, not a
window, so both synchronisers see the same problem); the 6-stream case adds LiDAR 10 Hz, radar
20 Hz and proprioception 100 Hz. Each stream has a random phase, Gaussian stamp jitter and 5%
random loss, and arrives a fixed per-stream latency after its stamp (so in stamp order per stream).

The reference runs twice: with its span limit (max interval) set to the slop, and unlimited (the
ROS default). Reported per synchroniser: sets/s (sets emitted per second of synchroniser CPU time), the median
and p99 cost of one add() in microseconds, sets emitted, valid sets (every stream present and
within the slop of the camera stamp in that set) and the mean spread (latest minus earliest stamp
of the items present in a set).

Timings come from the fastest of --repeat runs (the machine may be shared); the sets are the
same in every run, since both synchronisers are deterministic.

    python benchmarks/sync.py [--seconds 60] [--slop-ms 20] [--seed 0] [--repeat 3]
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

from approximate_time_reference import ApproximateTimeReference

from msvla_core.sync import ApproximateSynchronizer, StreamSpec

MS = 1_000_000
# name, rate (Hz), stamp jitter sigma (ms), latency from stamp to arrival (ms)
STREAMS = [("camera", 30, 1.0, 8), ("depth", 15, 2.0, 12), ("imu", 200, 1.0, 1),
           ("lidar", 10, 2.0, 30), ("radar", 20, 2.0, 10), ("proprio", 100, 1.0, 2)]
QUEUE_SIZE = 50  # per stream, for both synchronisers: enough to wait for the 10 Hz LiDAR
LOSS = 0.05


def make_events(streams, seconds: float, seed: int) -> list[tuple[str, int]]:
    """(name, stamp_ns) in arrival order."""
    rng = random.Random(seed)
    arrivals = []
    for name, rate, jitter_ms, latency_ms in streams:
        period_ms = 1000.0 / rate
        phase_ms = rng.uniform(0, period_ms)
        for k in range(int(seconds * rate)):
            if rng.random() < LOSS:
                continue
            stamp = int((phase_ms + k * period_ms + rng.gauss(0, jitter_ms)) * MS)
            arrivals.append((stamp + latency_ms * MS, name, stamp))
    arrivals.sort()
    return [(name, stamp) for _, name, stamp in arrivals]


def run_ours(names, events, slop_ns):
    sync = ApproximateSynchronizer(StreamSpec(names[0], queue_size=QUEUE_SIZE),
                                   [StreamSpec(n, queue_size=QUEUE_SIZE) for n in names[1:]], slop_ns=slop_ns)
    costs, sets = [], []
    for name, stamp in events:
        started = time.perf_counter_ns()
        out = sync.add(name, stamp, None)
        costs.append(time.perf_counter_ns() - started)
        sets += out
    started = time.perf_counter_ns()
    sets += sync.advance(events[-1][1] + 10**10)  # end of data: emit whatever still waits
    flush_ns = time.perf_counter_ns() - started
    return costs, flush_ns, [{n: stamp for n, (stamp, _) in s.items.items()} for s in sets], sync.counters()


def run_reference(names, events, max_interval_ns):
    # the inter-message lower bounds (half the nominal period, safely below the jittered spacing)
    # let it emit without waiting for the next message of every topic
    rates = {n: r for n, r, _, _ in STREAMS}
    sync = ApproximateTimeReference(names, QUEUE_SIZE, max_interval_ns=max_interval_ns,
                                    inter_message_lower_bound_ns={n: int(0.5e9 / rates[n]) for n in names})
    costs, sets = [], []
    for name, stamp in events:
        started = time.perf_counter_ns()
        out = sync.add(name, stamp, None)
        costs.append(time.perf_counter_ns() - started)
        sets += out
    return costs, 0, [{n: stamp for n, (stamp, _) in s.items()} for s in sets], dict(sync.dropped)


def summarise(label, names, costs, flush_ns, sets, slop_ns):
    cpu_s = (sum(costs) + flush_ns) * 1e-9
    ordered = sorted(costs)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    ref = names[0]
    valid = sum(1 for s in sets if len(s) == len(names) and all(abs(t - s[ref]) <= slop_ns for t in s.values()))
    spreads = [max(s.values()) - min(s.values()) for s in sets]
    spread_ms = statistics.fmean(spreads) / MS if spreads else float("nan")
    return (f"{label:<34} {len(sets) / cpu_s:>10.0f} {statistics.median(costs) / 1e3:>9.1f} "
            f"{p99 / 1e3:>9.1f} {len(sets):>7} {valid:>7} {spread_ms:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the synthetic streams")
    parser.add_argument("--slop-ms", type=float, default=20.0, help="slop; also the reference's span limit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per synchroniser; the fastest is shown")
    args = parser.parse_args()
    slop_ns = int(args.slop_ms * MS)
    print(f"{args.seconds:.0f} s of data, {LOSS:.0%} loss per stream, slop {args.slop_ms:g} ms, "
          f"queue {QUEUE_SIZE} per stream, seed {args.seed}; camera frames sent: {int(30 * args.seconds)}")
    header = (f"{'synchroniser':<34} {'sets/s':>10} {'add med':>9} {'add p99':>9} {'sets':>7} "
              f"{'valid':>7} {'spread ms':>10}")
    for count in (3, 6):
        streams = STREAMS[:count]
        names = [n for n, *_ in streams]
        events = make_events(streams, args.seconds, args.seed)
        print(f"\n{count} streams ({', '.join(f'{n} {r} Hz' for n, r, *_ in streams)}), {len(events)} items")
        print(header + "   (add cost in microseconds)")
        def fastest(run, *run_args):
            return min((run(*run_args) for _ in range(max(1, args.repeat))), key=lambda r: sum(r[0]) + r[1])
        ours = fastest(run_ours, names, events, slop_ns)
        bounded = fastest(run_reference, names, events, slop_ns)
        unbounded = fastest(run_reference, names, events, None)
        print(summarise("msvla ApproximateSynchronizer", names, *ours[:3], slop_ns))
        print(summarise("ROS ApproximateTime, span<=slop", names, *bounded[:3], slop_ns))
        print(summarise("ROS ApproximateTime, unbounded", names, *unbounded[:3], slop_ns))
        print(f"  msvla counters: {ours[3]}")


if __name__ == "__main__":
    main()
