"""Driving metrics of the vehicle evaluation on synthetic episodes with known answers (no ROS)."""
import math

import numpy as np
import pytest

from msvla_bringup.vehicle_metrics import (Command, Criteria, DriveRow, EpisodeTrace, episode_metrics,
                                           longitudinal_jerk, mean_speeds, proposal_latencies_ms, stop_gap,
                                           steering_rate_rms, summarize)

MS = 1_000_000
S = 1_000_000_000
CRITERIA = Criteria()


def odometry(speed, seconds: float, rate_hz: float = 50.0, jitter_s: float = 0.0, seed: int = 0):
    """(stamp ns, speed) at rate_hz; each stamp up to jitter_s later than the instant of its speed,
    as the simulator stamps odometry up to one physics step after the simulated instant."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, seconds, 1.0 / rate_hz)
    stamps = t + rng.uniform(0.0, jitter_s, len(t))
    return [(int(s * S), float(speed(x))) for s, x in zip(stamps, t)]


def scene(obstacles=(), length_m=100.0):
    """A straight route along +x and the simulator's car."""
    return {"physics_dt_s": 0.01, "vehicle": {"length_m": 4.5, "rear_overhang_m": 0.9},
            "route": {"length_m": length_m, "polyline_every_m": 5.0,
                      "polyline": [[float(x), 0.0] for x in np.arange(0.0, length_m + 5.0, 5.0)]},
            "obstacles": list(obstacles)}


def box(route_s, in_lane=True, kind="static", size=(1.0, 1.0, 1.0)):
    return {"id": 0, "kind": kind, "shape": "box", "size": list(size), "colour": "red",
            "position": [route_s, 0.0, 0.5], "yaw": 0.0, "in_lane": in_lane, "route_s": route_s}


def status(t, progress=0.0, speed=0.0, route_s=0.0, collision=False, complete=False, departure_steps=0):
    return {"time_s": t, "progress_fraction": progress, "speed_mps": speed, "route_s_m": route_s,
            "collision": collision, "route_complete": complete, "lane_departure_steps": departure_steps,
            "done": collision or complete}


def trace(kind="follow_lane", statuses=None, obstacles=(), **kw):
    return EpisodeTrace(kind=kind, scene=scene(obstacles), statuses=statuses or [status(0.0)], **kw)


# ---------------------------------------------------------------------------------------- jerk
def test_jerk_is_zero_at_constant_speed_and_constant_acceleration():
    for speed in (lambda t: 7.0, lambda t: 2.0 * t):
        jerk = longitudinal_jerk(odometry(speed, 4.0, jitter_s=0.01), CRITERIA)
        assert len(jerk) > 150 and np.sqrt(np.mean(jerk ** 2)) < 0.5


def test_jerk_of_a_constant_jerk_drive_survives_stamp_jitter():
    # v = j t^2 / 2 with j = 3 m/s^3; stamps jitter by up to a physics step, as the simulator's do
    samples = odometry(lambda t: 1.5 * t * t, 4.0, jitter_s=0.01)
    jerk = longitudinal_jerk(samples, CRITERIA)
    assert np.median(jerk) == pytest.approx(3.0, abs=0.5)
    assert np.sqrt(np.mean(jerk ** 2)) == pytest.approx(3.0, abs=1.0)
    # why the derivative is a windowed least-squares slope: finite differences turn the jitter into jerk
    t = np.array([s for s, _ in samples]) * 1e-9
    v = np.array([v for _, v in samples])
    naive = np.diff(np.diff(v) / np.diff(t)) / np.diff(t[1:])
    assert np.sqrt(np.mean(naive ** 2)) > 30.0


def test_a_braking_step_shows_as_jerk_and_a_gap_in_odometry_does_not():
    step = longitudinal_jerk(odometry(lambda t: 10.0 - max(0.0, t - 2.0) * 6.0, 3.5), CRITERIA)
    assert np.percentile(np.abs(step), 95) > 10.0
    # two constant-speed stretches 1 s apart (a stalled publisher): no jump is differentiated across the gap
    gap = odometry(lambda t: 5.0, 2.0) + [(s + 3 * S, 8.0) for s, _ in odometry(lambda t: 8.0, 2.0)]
    assert np.abs(longitudinal_jerk(gap, CRITERIA)).max() < 1e-6


# ---------------------------------------------------------------------------------------- steering
def commands(steering, seconds, rate_hz, model_id="m", start_ns=0, latency_ns=0):
    n = int(seconds * rate_hz)
    return [Command(start_ns + int(i * S / rate_hz), start_ns + int(i * S / rate_hz) + latency_ns,
                    float(steering(i / rate_hz)), 0.2, 0.0, model_id) for i in range(n)]


def test_steering_rate_of_a_ramp_is_its_slope_at_any_command_rate_and_in_any_order():
    for rate in (10.0, 50.0):
        ramp = commands(lambda t: 0.1 * t, 3.0, rate)
        assert steering_rate_rms(ramp[::-1], CRITERIA.max_sample_gap_s) == pytest.approx(0.1, rel=1e-6)
    assert steering_rate_rms(commands(lambda t: 0.2, 3.0, 50.0), 0.2) == 0.0
    # a weave at 1 Hz, amplitude 0.1 rad: RMS rate 0.1 * 2 pi / sqrt(2)
    weave = commands(lambda t: 0.1 * math.sin(2 * math.pi * t), 5.0, 50.0)
    assert steering_rate_rms(weave, 0.2) == pytest.approx(0.1 * 2 * math.pi / math.sqrt(2), rel=0.02)
    assert steering_rate_rms(commands(lambda t: 0.0, 0.01, 50.0), 0.2) is None


# ---------------------------------------------------------------------------------------- speed
def test_mean_speed_is_time_weighted_and_moving_speed_ignores_standing():
    samples = odometry(lambda t: 0.0 if t < 2.0 else 4.0, 4.0)
    mean, moving = mean_speeds(samples, CRITERIA)
    assert mean == pytest.approx(2.0, abs=0.1) and moving == pytest.approx(4.0, abs=0.1)
    assert mean_speeds(odometry(lambda t: 0.0, 2.0), CRITERIA) == (0.0, None)


# ---------------------------------------------------------------------------------------- latency
def test_latency_runs_from_the_proposal_sensor_stamp_to_its_first_executed_command():
    # proposals at 10 Hz received 80 ms after their sensor stamp; shield commands at 50 Hz
    proposals = [(i * 100 * MS, i * 100 * MS + 80 * MS) for i in range(11)]
    shield = commands(lambda t: 0.0, 1.0, 50.0, start_ns=5 * MS)  # the last at 985 ms
    latency = proposal_latencies_ms(proposals, shield)
    assert len(latency) == 10  # the proposal received at 1080 ms has no command after it
    assert latency == pytest.approx([85.0] * 10)
    # commands of the shield's braking profile (no model id) execute no proposal
    braking = [Command(c.stamp_ns, c.received_ns, 0.0, 0.0, 1.0, "") for c in shield]
    assert proposal_latencies_ms(proposals, braking) == []
    # without a shield each command is its own proposal
    direct = commands(lambda t: 0.0, 1.0, 10.0, latency_ns=90 * MS)
    assert proposal_latencies_ms([(c.stamp_ns, c.received_ns) for c in direct], direct) == pytest.approx([90.0] * 10)


# ---------------------------------------------------------------------------------------- compliance
def test_stop_gap_is_bumper_to_the_near_side_of_the_obstacle():
    # car base_link at 20 m, bumper 3.6 m ahead of it; 1 m box centred at 30 m: near side 29.5 m
    assert stop_gap(scene([box(30.0)]), box(30.0), 20.0) == pytest.approx(5.9)


def test_follow_lane_complies_when_the_route_completes_without_a_collision():
    done = [status(0.0), status(12.0, progress=1.0, complete=True, speed=3.0)]
    assert episode_metrics(trace("follow_lane", done)).compliant is True
    crash = [status(0.0), status(5.0, progress=0.4, collision=True)]
    assert episode_metrics(trace("follow_lane", crash)).compliant is False
    partial = [status(0.0), status(40.0, progress=0.7, speed=5.0)]
    assert episode_metrics(trace("follow_lane", partial)).compliant is False


def test_drive_slowly_needs_a_low_mean_speed_while_moving():
    done = [status(0.0), status(30.0, progress=1.0, complete=True)]
    slow = episode_metrics(trace("drive_slowly", done, odometry=odometry(lambda t: 0.0 if t < 5 else 4.0, 20.0)))
    assert slow.moving_speed_mps == pytest.approx(4.0, abs=0.1) and slow.compliant is True
    fast = episode_metrics(trace("drive_slowly", done, odometry=odometry(lambda t: 6.0, 20.0)))
    assert fast.compliant is False


@pytest.mark.parametrize("route_s, speed, collision, expected", [
    (20.0, 0.0, False, True),      # gap 5.9 m, standing
    (20.0, 1.0, False, False),     # still rolling
    (10.0, 0.0, False, False),     # 15.9 m short: too early
    (25.5, 0.0, False, False),     # 0.4 m: too close
    (20.0, 0.0, True, False),      # a collision on the way (e.g. with something else)
])
def test_stop_before_obstacle_needs_a_standstill_in_the_gap_window(route_s, speed, collision, expected):
    statuses = [status(0.0), status(9.0, progress=route_s / 100, route_s=route_s, speed=speed, collision=collision)]
    obstacles = [box(60.0), box(30.0), box(15.0, in_lane=False), box(10.0, kind="lead")]
    m = episode_metrics(trace("stop_before_obstacle", statuses, obstacles))
    assert m.compliant is expected
    assert m.stop_gap_m == pytest.approx(29.5 - route_s - 3.6)


def test_stop_before_obstacle_cannot_be_judged_without_a_static_obstacle_in_the_lane():
    m = episode_metrics(trace("stop_before_obstacle", obstacles=[box(30.0, in_lane=False)]))
    assert m.stop_gap_m is None and m.compliant is None


def test_unknown_kind_and_empty_episode_are_refused():
    with pytest.raises(ValueError, match="unknown instruction kind 'park'"):
        episode_metrics(trace("park"))
    with pytest.raises(ValueError, match="no /sim/vehicle_status"):
        episode_metrics(EpisodeTrace(kind="follow_lane", scene=scene(), statuses=[]))
    with pytest.raises(ValueError, match="stop_gap_m"):
        Criteria(stop_gap_m=(5.0, 1.0))


def test_episode_metrics_reads_route_collision_departure_and_shield_share():
    statuses = [status(0.0), status(3.0, progress=0.3, departure_steps=50, collision=True),
                status(3.1, progress=0.3, departure_steps=80, collision=True)]
    shield_commands = commands(lambda t: 0.0, 1.0, 50.0)[:30] + commands(lambda t: 0.0, 1.0, 50.0, model_id="")[:20]
    m = episode_metrics(trace("follow_lane", statuses, commands=shield_commands, shield_states=[0, 1, 2, 3]))
    assert m.route_fraction == 0.3 and m.collision and not m.route_complete
    assert m.lane_departure_s == pytest.approx(0.8)  # 80 physics steps of 0.01 s
    assert m.model_driven == pytest.approx(0.6) and m.shield_stopped == 0.5


# ---------------------------------------------------------------------------------------- aggregate
def test_summary_rates_intervals_and_pooled_latency():
    def row(seed, compliant, collision, latency):
        statuses = [status(0.0), status(5.0, progress=1.0 if compliant else 0.5, complete=bool(compliant),
                                        collision=collision)]
        m = episode_metrics(trace("follow_lane", statuses))
        m.compliant, m.latency_ms = compliant, latency
        return DriveRow(seed=seed, kind="follow_lane", instruction="follow the lane", end="timeout", seconds=10.0,
                        metrics=m)

    rows = [row(1, True, False, [10.0, 20.0]), row(2, False, True, [30.0]), row(3, None, False, []),
            row(4, True, False, [40.0])]
    s = summarize(rows)
    assert s["episodes"] == 4 and s["compliance"]["n"] == 3 and s["compliance"]["count"] == 2
    lo, hi = s["compliance"]["wilson95"]
    assert 0.0 < lo < 2 / 3 < hi < 1.0
    assert s["collisions"]["count"] == 1 and s["completed"]["count"] == 2
    assert s["route_completion_mean"] == pytest.approx(0.75)
    assert s["latency_samples"] == 4 and s["latency_ms_median"] == pytest.approx(25.0)
    assert s["ends"] == {"timeout": 4} and s["seconds_per_episode"] == 10.0
    assert s["stop_gap_m_median"] is None  # no obstacle in any lane
    empty = summarize([])
    assert empty["episodes"] == 0 and empty["compliance"]["rate"] is None and empty["latency_ms_median"] is None
