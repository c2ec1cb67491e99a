"""SensorSchedule: the vehicle simulator's one-timer sensor cadence."""
import pytest

from msvla_sim.sensor_schedule import SensorSchedule


def run(schedule, ticks):
    fired = {name: 0 for name in schedule.periods_s}
    for t in ticks:
        for name in schedule.due(t):
            fired[name] += 1
    return fired


def test_each_output_fires_at_its_rate_despite_timer_jitter():
    s = SensorSchedule({"imu": 100.0, "odom": 50.0, "camera": 10.0, "radar": 20.0}, start_s=0.0)
    jitter = [0.003, -0.002, 0.004, 0.0, -0.003]
    fired = run(s, [k * 0.01 + jitter[k % 5] for k in range(1000)])  # 10 s of a 100 Hz timer
    assert fired == {"imu": 1000, "odom": 500, "camera": 100, "radar": 200}
    assert all(n == 0 for n in s.skipped.values())


def test_equal_rates_fire_at_the_same_tick():
    s = SensorSchedule({"camera": 10.0, "lidar": 10.0, "imu": 100.0}, start_s=0.0)
    together = [s.due(k * 0.01) for k in range(30)]
    assert all(("camera" in d) == ("lidar" in d) for d in together)


def test_a_stall_fires_once_then_resumes_the_cadence_counting_what_it_lost():
    s = SensorSchedule({"camera": 10.0, "imu": 100.0}, start_s=0.0)
    run(s, [k * 0.01 for k in range(10)])
    assert s.due(0.5) == ["camera", "imu"]           # 0.4 s stalled: one sample each, no burst
    assert s.skipped == {"camera": 4, "imu": 40}     # due at 0.1 .. 0.4 s and 0.1 .. 0.49 s
    assert s.due(0.51) == ["imu"] and s.due(0.6) == ["camera", "imu"]


def test_a_rate_that_is_not_positive_is_refused_with_its_name():
    with pytest.raises(ValueError, match="lidar"):
        SensorSchedule({"camera": 10.0, "lidar": 0.0}, start_s=0.0)


def test_a_faster_physics_tick_does_not_fire_outputs_a_tick_early():
    s = SensorSchedule({"imu": 100.0, "camera": 10.0}, start_s=0.0, min_tick_hz=200.0)
    assert s.tick_period_s == pytest.approx(0.005)
    fired = [t for t in (k * 0.005 for k in range(1, 41)) if "camera" in s.due(t)]
    assert fired == pytest.approx([0.005, 0.1, 0.2])  # first tick, then on time: not at 0.095 s
