"""VehicleShield: every tick yields a finite command inside every limit, whatever arrives."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msvla_core.safety import ProposalLimits, ShieldState, WatchdogLimits
from msvla_core.safety.vehicle_shield import (ODOMETRY_INPUT, VehicleLimits, VehicleProposal, VehicleShield,
                                              obstacle_input)

NS = 10**9
PERIOD = 0.02
P_NS = 20_000_000
LIMITS = VehicleLimits()


class Rig:
    """A shield with a ROS clock and a steady clock that advance together, armed by a first tick with
    every input healthy unless `arm` is false."""

    def __init__(self, limits=LIMITS, inputs=None, speed=None, arm=True):
        self.shield = VehicleShield(limits, WatchdogLimits(heartbeat_timeouts_s=dict(inputs or {})), PERIOD)
        self.steady, self.ros = 5 * NS, 10**12
        if speed is not None:
            self.shield.on_speed(speed, self.steady)
        if arm:
            self.tick(beats=list(inputs or {}))

    def beat(self, name="vla", ok=True):
        self.shield.supervisor.heartbeat(name, self.steady, ok=ok)

    def propose(self, age_ns=0, **kw):
        fields = dict(stamp_ns=self.ros - age_ns, frame_id="base_link", steering=0.0, throttle=0.0, brake=0.0)
        fields.update(kw)
        return self.shield.check(VehicleProposal(**fields), self.ros, self.steady)

    def tick(self, n=1, beats=(), **proposal):
        """n control periods; each one heartbeats `beats` and, if given, proposes before ticking."""
        for _ in range(n):
            self.steady += P_NS
            self.ros += P_NS
            for name in beats:
                self.beat(name)
            if proposal:
                self.propose(**proposal)
            out = self.shield.tick(self.ros, self.steady)
        return out


def codes(out):
    return [c for c, _ in out.interventions]


def reasons(out, code):
    return " | ".join(r for c, r in out.interventions if c == code)


# ---- limits ------------------------------------------------------------------------------------
def test_schedule_interpolates_clamps_at_the_ends_and_is_strictest_when_speed_is_unknown():
    assert LIMITS.schedule(7.5).max_steering_rad == pytest.approx(0.375)
    assert LIMITS.schedule(7.5).max_jerk_mps3 == pytest.approx(4.5)
    assert LIMITS.schedule(100.0) == LIMITS.schedule(30.0)
    assert LIMITS.schedule(-5.0) == LIMITS.schedule(5.0)
    unknown = LIMITS.schedule(None)
    assert (unknown.max_steering_rad, unknown.max_steering_rate_radps, unknown.max_accel_mps2,
            unknown.max_jerk_mps3) == (0.1, 0.15, 1.5, 2.0)


@pytest.mark.parametrize("kw, text", [
    (dict(speed_points_mps=(0.0, 5.0, 5.0, 20.0, 30.0)), "speed_points_mps"),
    (dict(speed_points_mps=(-1.0, 5.0, 10.0, 20.0, 30.0)), "speed_points_mps"),
    (dict(speed_points_mps=()), "speed_points_mps"),
    (dict(max_steering_rad=(0.5, 0.4)), "max_steering_rad=[0.5, 0.4] needs 5 values"),
    (dict(max_jerk_mps3=(6.0, 5.0, 0.0, 3.0, 2.0)), "max_jerk_mps3[2]=0.0"),
    (dict(max_accel_mps2=(3.0, math.nan, 2.5, 2.0, 1.5)), "max_accel_mps2[1]=nan"),
    (dict(max_speed_mps=math.inf), "max_speed_mps=inf"),
    (dict(throttle_accel_mps2=-1.0), "throttle_accel_mps2=-1.0"),
    (dict(ttc_release_s=1.5), "ttc_release_s=1.5"),
    (dict(min_gap_m=-0.5), "min_gap_m=-0.5"),
    (dict(hold_brake=1.5), "hold_brake=1.5"),
    (dict(emergency_decel_mps2=9.0), "emergency_decel_mps2=9.0"),
    (dict(stop_speed_mps=0.0), "stop_speed_mps=0.0"),
    (dict(corridor_half_width_m=0.0), "corridor_half_width_m=0.0"),
    (dict(corridor_z_min_m=3.0), "corridor_z_min_m=3.0"),
])
def test_invalid_limits_raise_naming_the_field(kw, text):
    with pytest.raises(ValueError, match=text.replace("[", r"\[").replace("]", r"\]")):
        VehicleLimits(**kw)


def test_invalid_control_period_is_refused():
    with pytest.raises(ValueError, match="control_period_s=0"):
        VehicleShield(LIMITS, control_period_s=0.0)


# ---- following the model -----------------------------------------------------------------------
def test_a_moderate_command_passes_unchanged_once_the_ramps_have_caught_up():
    rig = Rig(speed=5.0)
    out = rig.tick(30, steering=0.1, throttle=0.5)
    assert (out.steering, out.throttle, out.brake) == (pytest.approx(0.1), pytest.approx(0.5), 0.0)
    assert out.state == ShieldState.OK and out.driven_by == "model" and out.interventions == []


def test_a_model_command_carries_its_proposal_stamp_and_a_braking_one_none():
    rig = Rig(speed=5.0)
    rig.tick()
    assert rig.propose(age_ns=40_000_000, steering=0.1).accepted
    stamp = rig.shield._target.stamp_ns
    out = rig.tick()
    assert out.driven_by == "model" and out.source_stamp_ns == stamp == rig.ros - 40_000_000 - 20_000_000
    rig.shield.supervisor.emergency_stop("test")
    assert rig.tick().source_stamp_ns is None


def test_steering_is_rate_limited_then_clamped_to_the_limit_at_speed():
    rig = Rig(speed=0.0)
    out = rig.tick(2, steering=0.4)
    assert out.steering == pytest.approx(2 * 0.8 * PERIOD) and "steering_rate" in codes(out)
    rig.shield.on_speed(20.0, rig.steady)    # limit 0.15 rad
    out = rig.tick(100, steering=0.4)
    assert out.steering == pytest.approx(0.15) and "steering_limited" in codes(out)
    assert "steering=0.4000 rad beyond the steering limit ±0.1500 rad at 20.00 m/s" in reasons(out, "steering_limited")


def test_the_hard_steering_limit_wins_over_the_rate_limit():
    rig = Rig(speed=0.0)
    assert rig.tick(100, steering=-0.5).steering == pytest.approx(-0.5)
    rig.shield.on_speed(30.0, rig.steady)
    out = rig.tick(steering=-0.5)
    assert out.steering == pytest.approx(-0.1)   # a step of 0.4 rad, not 0.15 rad/s * 20 ms


def test_throttle_is_jerk_and_acceleration_limited():
    rig = Rig(speed=1.0)
    first = rig.tick(throttle=1.0)
    second = rig.tick(throttle=1.0)
    assert second.accel_mps2 - first.accel_mps2 == pytest.approx(LIMITS.schedule(1.0).max_jerk_mps3 * PERIOD)
    assert "jerk_limited" in codes(second)
    rig.shield.on_speed(12.0, rig.steady)        # max_accel 2.4 m/s^2 at 12 m/s
    out = rig.tick(100, throttle=1.0)
    assert out.accel_mps2 == pytest.approx(2.4) and out.throttle == pytest.approx(0.8)
    assert "accel_limited" in codes(out) and "jerk_limited" not in codes(out)


def test_brake_wins_when_both_pedals_are_proposed_and_ranges_are_clamped():
    rig = Rig(speed=5.0)
    rig.tick()
    d = rig.propose(throttle=0.7, brake=0.2)
    assert d.accepted and [c for c, _ in d.interventions] == ["throttle_and_brake"]
    out = rig.tick(50, throttle=0.7, brake=0.2)
    assert out.throttle == 0.0 and out.brake == pytest.approx(0.2)
    d = rig.propose(throttle=5.0, brake=-1.0)
    assert d.accepted and [c for c, _ in d.interventions] == ["throttle_range", "brake_range"]
    out = rig.tick(50, throttle=5.0, brake=-1.0)
    assert out.throttle == pytest.approx(1.0) and out.brake == 0.0 and "throttle_range" in codes(out)


def test_no_throttle_at_max_speed():
    rig = Rig(speed=5.0)
    rig.tick(50, throttle=0.5)
    rig.shield.on_speed(15.0, rig.steady)
    out = rig.tick(throttle=0.5)
    assert out.throttle == 0.0 and out.brake == 0.0 and "speed_limit" in codes(out)


def test_unknown_speed_gives_the_strictest_steering_and_no_throttle():
    rig = Rig()
    out = rig.tick(100, steering=0.4, throttle=0.5)
    assert out.steering == pytest.approx(0.1) and out.throttle == 0.0 and out.speed_mps is None
    assert out.driven_by == "model" and "speed_unknown" in codes(out)


def test_non_finite_speed_is_ignored_and_feeds_no_odometry_heartbeat():
    rig = Rig(inputs={ODOMETRY_INPUT: 0.1}, speed=3.0)
    rig.tick()
    assert not rig.shield.on_speed(math.nan, rig.steady)
    assert rig.shield.counts["speed_non_finite"] == 1
    assert rig.tick().speed_mps == 3.0
    assert not rig.shield.on_speed(2.0, rig.steady, yaw_rate_radps=math.inf)  # a bad yaw rate spoils the pair
    assert rig.shield.counts["speed_non_finite"] == 2 and rig.tick().speed_mps == 3.0
    assert rig.tick(5).state == ShieldState.SAFE_STOP      # only bad odometry for 0.14 s: it timed out


# ---- rejected proposals -------------------------------------------------------------------------
@pytest.mark.parametrize("kw, code, text, latches", [
    (dict(steering=math.nan), "non_finite", "steering=nan", True),
    (dict(throttle=math.inf), "non_finite", "throttle=inf", True),
    (dict(frame_id="map"), "wrong_frame", "header.frame_id='map'", False),
    (dict(age_ns=2 * NS), "stale", "2.000 s old", False),
    (dict(age_ns=-NS), "future_stamp", "in the future", False),
])
def test_untrustworthy_proposals_are_rejected_and_never_followed(kw, code, text, latches):
    rig = Rig(speed=5.0)
    rig.tick()
    d = rig.propose(**{"steering": 0.2, **kw})
    assert not d.accepted and code in [c for c, _ in d.interventions]
    assert any(text in r for _, r in d.interventions)
    out = rig.tick()
    assert out.driven_by == "shield" and out.steering == 0.0 and out.throttle == 0.0
    assert (out.state == ShieldState.SAFE_STOP) == latches
    assert rig.shield.rejected == 1 and rig.shield.passed == 0


def test_out_of_order_and_wrong_model_are_rejected():
    limits = VehicleLimits(proposal=ProposalLimits(frame_id="base_link", expected_model_id="m1"))
    rig = Rig(limits, speed=5.0)
    rig.tick()
    assert rig.propose(model_id="m1").accepted
    assert [c for c, _ in rig.propose(age_ns=1000, model_id="m1").interventions] == ["out_of_order"]
    assert "wrong_model" in [c for c, _ in rig.propose(model_id="m2").interventions]
    assert rig.tick().state == ShieldState.SAFE_STOP


# ---- the safe state, emergency stop, reset --------------------------------------------------------
def test_emergency_stop_brakes_on_the_profile_latches_and_resets_only_when_healthy():
    lim = LIMITS
    rig = Rig(inputs={"vla": 0.2}, speed=10.0)
    rig.tick(50, beats=["vla"], steering=0.05, throttle=0.5)
    rig.shield.supervisor.emergency_stop("test")
    previous = rig.shield.last_output
    assert previous.throttle > 0.0
    first = rig.tick(beats=["vla"], throttle=1.0)    # throttle cut at once, braking starts on the ramp
    assert first.throttle == 0.0
    assert first.brake == pytest.approx(lim.emergency_jerk_mps3 * PERIOD / lim.brake_decel_mps2)
    previous = first
    for _ in range(30):
        out = rig.tick(beats=["vla"], throttle=1.0)
        assert out.state == ShieldState.EMERGENCY and out.throttle == 0.0 and out.driven_by == "shield"
        assert out.steering == previous.steering          # held
        assert min(previous.accel_mps2, 0.0) - lim.emergency_jerk_mps3 * PERIOD - 1e-9 <= out.accel_mps2
        previous = out
    assert out.accel_mps2 == pytest.approx(-lim.emergency_decel_mps2)
    assert "emergency_stop" in codes(out)
    rig.shield.on_speed(0.0, rig.steady)
    assert rig.tick(beats=["vla"]).brake == pytest.approx(0.75)   # max(hold_brake, 6/8)
    rig.tick(20)                                                  # vla silent for 0.4 s
    ok, message = rig.shield.reset(rig.steady)
    assert not ok and "vla silent" in message
    assert rig.tick().state == ShieldState.EMERGENCY
    rig.beat("vla")
    ok, message = rig.shield.reset(rig.steady)
    assert ok and "emergency stop (test)" in message
    out = rig.tick(beats=["vla"])     # no proposal since the reset: still braking, but not latched
    assert out.state == ShieldState.INTERVENING and out.driven_by == "shield" and "no_fresh_proposal" in codes(out)
    assert rig.tick(beats=["vla"], brake=0.1).driven_by == "model"


def test_a_missing_heartbeat_brakes_within_one_tick_and_holds_once_stopped():
    rig = Rig(inputs={"vla": 0.1}, speed=0.0)
    assert rig.tick(5, beats=["vla"], throttle=0.2).driven_by == "model"
    rig.tick(4, throttle=0.2)                            # 80 ms of silence: still within the timeout
    out = rig.tick(throttle=0.2)                         # 100 ms
    assert out.driven_by == "model"
    out = rig.tick(throttle=0.2)                         # 120 ms: timed out on this tick
    assert out.state == ShieldState.SAFE_STOP and "heartbeat_timeout" in codes(out)
    assert out.throttle == 0.0 and out.brake == pytest.approx(LIMITS.hold_brake)


def test_waiting_for_inputs_at_start_brakes():
    out = Rig(inputs={"vla": 0.1, "odometry": 0.1}, arm=False).tick()
    assert out.state == ShieldState.SAFE_STOP and "waiting_for_inputs" in codes(out)
    assert out.throttle == 0.0 and out.brake > 0.0


def test_a_stale_target_brakes_without_latching_and_a_fresh_one_resumes():
    rig = Rig(speed=8.0)
    rig.tick(10, throttle=0.3)
    braking = rig.tick(int(0.5 / PERIOD) + 1)            # the last proposal is now older than max_age
    assert braking.driven_by == "shield" and braking.throttle == 0.0 and "no_fresh_proposal" in codes(braking)
    assert braking.state == ShieldState.INTERVENING
    out = rig.tick(throttle=0.3)                         # resumes from the braking, jerk-limited
    assert out.driven_by == "model" and "jerk_limited" in codes(out)
    assert out.accel_mps2 == pytest.approx(braking.accel_mps2 + LIMITS.schedule(8.0).max_jerk_mps3 * PERIOD)


def test_a_stalled_tick_allows_no_more_than_two_periods_of_change():
    rig = Rig(speed=0.0)
    rig.tick(steering=0.3)
    rig.steady += 5 * NS
    rig.ros += 5 * NS
    rig.propose(steering=0.3)
    out = rig.shield.tick(rig.ros, rig.steady)
    assert out.dt_s == pytest.approx(2 * PERIOD)
    assert out.steering == pytest.approx(0.8 * PERIOD + 0.8 * 2 * PERIOD)


# ---- collision braking --------------------------------------------------------------------------
def wall(x):
    return np.stack([np.full(11, x), np.linspace(-1, 1, 11), np.full(11, 1.0)], axis=1)


def test_a_lidar_wall_ahead_brakes_with_hysteresis():
    rig = Rig(speed=10.0)
    rig.tick(20, throttle=0.3)
    rig.shield.on_obstacles("lidar", wall(25.0), rig.steady)     # gap 23 m, 2.3 s: fine
    assert rig.tick(throttle=0.3).driven_by == "model"
    rig.shield.on_obstacles("lidar", wall(20.0), rig.steady)     # gap 18 m, 1.8 s
    out = rig.tick(throttle=0.3)
    assert out.driven_by == "shield" and out.throttle == 0.0 and "collision_imminent" in codes(out)
    assert "time to collision 1.78 s (lidar), gap 17.80 m (lidar)" in reasons(out, "collision_imminent")
    rig.shield.on_obstacles("lidar", wall(30.0), rig.steady)     # 2.8 s: above ttc_brake, below ttc_release
    assert rig.tick(throttle=0.3).driven_by == "shield"
    rig.shield.on_obstacles("lidar", wall(40.0), rig.steady)     # 3.8 s: released
    out = rig.tick(throttle=0.3)
    assert out.driven_by == "model" and "collision_imminent" not in codes(out)
    assert rig.shield.counts["collision_imminent"] == 1          # one episode


def test_a_radar_target_approaching_a_slow_vehicle_brakes():
    rig = Rig(speed=2.0)
    rig.tick(20, throttle=0.2)
    rig.shield.on_obstacles("radar", np.array([(14.0, 0.3, 1.0)]), rig.steady, closing_speeds=np.array([8.0]))
    out = rig.tick(throttle=0.2)
    assert out.driven_by == "shield" and out.throttle == 0.0
    assert "(radar)" in reasons(out, "collision_imminent")


def test_a_pedestrian_walking_towards_the_path_brakes_before_it_steps_in():
    pedestrian = np.array([(16.0, 3.0, 1.0)])        # gap 14 m at 8 m/s: 1.75 s away, 1.9 m beside the corridor
    for lateral, brakes in ((0.0, False), (1.2, False), (-1.2, True)):   # standing, walking away, towards
        rig = Rig(speed=8.0)
        rig.tick(20, throttle=0.2)
        rig.shield.on_obstacles("radar", pedestrian, rig.steady, closing_speeds=np.array([8.0]),
                                lateral_speeds=np.array([lateral]))
        out = rig.tick(throttle=0.2)
        assert (out.driven_by == "shield") == brakes, (lateral, codes(out))


def test_the_radar_path_reads_a_crossing_from_the_radial_velocity():
    mount = [3.6, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0]
    dx, dy = 16.0 - 3.6, 3.0                         # the pedestrian above, seen from the bumper radar
    rng = math.hypot(dx, dy)
    u = np.array([dx, dy]) / rng
    for walking, brakes in ((0.0, False), (-1.2, True)):
        rig = Rig(speed=8.0)
        rig.tick(20, throttle=0.2)
        radial = float(np.dot(np.array([0.0, walking]) - np.array([8.0, 0.0]), u))  # positive away
        rig.shield.on_radar(np.array([rng]), np.array([math.atan2(dy, dx)]), np.array([radial]), rig.steady, mount)
        out = rig.tick(throttle=0.2)
        assert (out.driven_by == "shield") == brakes, (walking, codes(out))


def test_obstacles_outside_the_corridor_do_not_brake():
    rig = Rig(speed=10.0)
    rig.tick(20, throttle=0.3)
    beside = np.array([(5.0, 1.5, 1.0), (5.0, 0.0, 0.05), (5.0, 0.0, 3.5), (1.0, 0.0, 1.0)])
    rig.shield.on_obstacles("lidar", beside, rig.steady)
    out = rig.tick(throttle=0.3)
    assert out.driven_by == "model" and out.throttle > 0.0


def test_in_a_turn_the_corridor_follows_the_arc_not_the_straight_line_off_the_bend():
    """Turning right at 8 m/s (wheels and yaw rate agree): a box straight ahead, which stands beside
    the road beyond the outside of the bend, does not brake; a box on the arc does. Steered straight
    while still turning (the steering moved first), both arcs count."""
    radius = LIMITS.wheelbase_m / math.tan(0.1)                   # steering -0.1 rad: 26.9 m to the right
    theta = (14.0 + LIMITS.front_offset_m) / radius
    on_arc = np.array([(radius * math.sin(theta), -radius * (1 - math.cos(theta)), 1.0)])
    straight_ahead = np.array([(14.0 + LIMITS.front_offset_m, 0.0, 1.0)])
    for steering, yaw_rate, points, brakes in ((-0.1, -8.0 / radius, straight_ahead, False),
                                               (-0.1, -8.0 / radius, on_arc, True),
                                               (0.0, -8.0 / radius, on_arc, True),
                                               (0.0, -8.0 / radius, straight_ahead, True)):
        rig = Rig(speed=8.0)
        rig.shield.on_speed(8.0, rig.steady, yaw_rate)
        rig.tick(40, steering=steering, throttle=0.2)
        assert rig.shield.last_output.steering == pytest.approx(steering)
        rig.shield.on_obstacles("lidar", points, rig.steady)      # gap 14 m at 8 m/s: 1.75 s
        out = rig.tick(steering=steering, throttle=0.2)
        assert (out.driven_by == "shield") == brakes, (steering, points, codes(out))


def test_without_a_speed_the_corridor_keeps_the_straight_box():
    ahead = np.array([(LIMITS.front_offset_m + 20.0, 0.0, 1.0)])   # 20 m: 1.3 s at the assumed 15 m/s
    rig = Rig()
    rig.tick(40, steering=-0.1)
    rig.shield.on_obstacles("lidar", ahead, rig.steady)
    assert "collision_imminent" in codes(rig.tick(steering=-0.1))


def test_below_walking_pace_the_yaw_rate_does_not_bend_the_corridor():
    """Steered straight, odometry reporting a yaw rate that would mean the sharpest left turn: a
    point 1.8 m along that arc (1.4 m to the left: off the straight box) brakes at 2 m/s (0.9 s to
    collision), not at 0.95 m/s (1.9 s, also below ttc_brake), where yaw rate / speed is mostly
    noise."""
    sharpest = math.tan(max(LIMITS.max_steering_rad)) / LIMITS.wheelbase_m
    theta = (LIMITS.front_offset_m + 1.8) * sharpest
    on_yaw_arc = np.array([(math.sin(theta) / sharpest, (1 - math.cos(theta)) / sharpest, 1.0)])
    assert on_yaw_arc[0, 1] > LIMITS.corridor_half_width_m + 0.2
    for speed, brakes in ((0.95, False), (2.0, True)):
        rig = Rig(speed=speed)
        rig.shield.on_speed(speed, rig.steady, 0.8 * speed)        # yaw rate / speed 0.8 1/m: clamped
        rig.tick(20, throttle=0.1)
        rig.shield.on_obstacles("lidar", on_yaw_arc, rig.steady)
        out = rig.tick(throttle=0.1)
        assert ("collision_imminent" in codes(out)) == brakes, (speed, codes(out))


def test_too_close_brakes_while_moving_but_not_at_a_standstill():
    rig = Rig(speed=0.0)
    rig.tick(throttle=0.1)
    rig.shield.on_obstacles("lidar", wall(2.5), rig.steady)       # gap 0.5 m < min_gap
    assert rig.tick(throttle=0.1).driven_by == "model"
    rig.shield.on_speed(0.15, rig.steady)
    out = rig.tick(throttle=0.1)
    assert out.driven_by == "shield" and "gap 0.49 m" in reasons(out, "collision_imminent")


def test_unknown_speed_assumes_max_speed_for_lidar_ttc():
    rig = Rig()
    rig.tick()
    rig.shield.on_obstacles("lidar", wall(30.0), rig.steady)      # 28 m at 15 m/s: 1.9 s
    assert "collision_imminent" in codes(rig.tick())


def test_non_finite_obstacle_points_are_counted_reported_and_feed_no_heartbeat():
    rig = Rig(inputs={obstacle_input("lidar"): 0.1}, speed=5.0)
    rig.tick(beats=[obstacle_input("lidar")])
    assert rig.shield.on_obstacles("lidar", np.array([(np.nan, 0, 1), (50.0, 0, 1)]), rig.steady) == 1
    assert "1 of 2 points" in reasons(rig.tick(), "obstacle_non_finite")
    for _ in range(6):
        rig.shield.on_obstacles("lidar", np.full((3, 3), np.nan), rig.steady)
        out = rig.tick()
    assert out.state == ShieldState.SAFE_STOP and "heartbeat_timeout" in codes(out)


# ---- properties ---------------------------------------------------------------------------------
class Oracle:
    """Tracks, independently of the shield, what every output must satisfy."""

    def __init__(self, shield):
        self.shield, self.lim = shield, shield.limits
        self.speed = None
        self.prev_steering = self.prev_accel = 0.0
        self.last_tick = None
        self.accepted_stamp = None

    def speed_given(self, value):
        if math.isfinite(value):
            self.speed = value

    def decided(self, decision, stamp):
        if decision.accepted:
            self.accepted_stamp = stamp

    def reset(self, ok):
        if ok:
            self.accepted_stamp = None

    def check(self, out, ros, steady):
        lim, speed = self.lim, self.speed
        dt = PERIOD if self.last_tick is None else min(max((steady - self.last_tick) / NS, 0.0), 2 * PERIOD)
        self.last_tick = steady
        assert out.dt_s == pytest.approx(dt, abs=1e-12) and out.speed_mps == speed
        assert all(math.isfinite(v) for v in (out.steering, out.throttle, out.brake, out.accel_mps2))
        assert 0.0 <= out.throttle <= 1.0 and 0.0 <= out.brake <= 1.0
        assert not (out.throttle > 0.0 and out.brake > 0.0)
        sched = lim.schedule(speed)
        assert abs(out.steering) <= sched.max_steering_rad + 1e-12
        on_limit = abs(abs(out.steering) - sched.max_steering_rad) <= 1e-12
        assert on_limit or abs(out.steering - self.prev_steering) <= sched.max_steering_rate_radps * dt + 1e-9
        accel = lim.acceleration(out.throttle, out.brake)
        all_codes = codes(out)
        fresh = self.accepted_stamp is not None and (ros - self.accepted_stamp) / NS <= lim.proposal.max_age_s
        safe_state = out.state in (ShieldState.SAFE_STOP, ShieldState.EMERGENCY)
        assert safe_state == (not self.shield.supervisor.commands_allowed)
        if safe_state or not fresh or "collision_imminent" in all_codes:
            assert out.driven_by == "shield"
        assert ("no_fresh_proposal" in all_codes) == (not fresh)
        if speed is None or abs(speed) >= lim.max_speed_mps:
            assert out.throttle == 0.0
        if out.driven_by == "model":
            cap = 0.0 if speed is None or abs(speed) >= lim.max_speed_mps else sched.max_accel_mps2
            assert accel <= cap + 1e-9
            assert abs(accel - cap) <= 1e-9 or abs(accel - self.prev_accel) <= sched.max_jerk_mps3 * dt + 1e-9
            # deceleration beyond max_accel only while releasing (or holding, dt = 0) shield braking
            assert accel >= -sched.max_accel_mps2 - 1e-9 or accel >= self.prev_accel
        else:
            assert out.throttle == 0.0
            start = min(self.prev_accel, 0.0)
            assert accel <= start + 1e-9                     # never eases braking
            stopped = speed is not None and abs(speed) < lim.stop_speed_mps
            assert accel >= start - lim.emergency_jerk_mps3 * dt - 1e-9 or (stopped and out.brake == lim.hold_brake)
            assert accel >= min(start, -lim.emergency_decel_mps2, -lim.hold_brake * lim.brake_decel_mps2) - 1e-9
        self.prev_steering, self.prev_accel = out.steering, accel


awkward = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, -1.0, 0.0, 1.0, 2.0])
value = st.one_of(st.floats(-1.0, 1.5), awkward)
stamp_offset = st.one_of(st.integers(-3 * 10**8, 10**7), st.sampled_from([0, "equal", -10**10, 10**12, -10**15]))
point = st.tuples(st.one_of(st.floats(-5, 50), awkward), st.floats(-3, 3), st.floats(-1, 4))
regular_tick = st.tuples(st.just("tick"), st.just(P_NS), st.none())
chaotic_tick = st.tuples(st.just("tick"), st.one_of(st.integers(0, 3 * P_NS), st.sampled_from([0, NS, -P_NS])),
                         st.one_of(st.none(), st.integers(-NS, 10 * NS)))   # steady step, ROS step (None: same)
proposal_event = st.tuples(st.just("propose"), value, value, value, stamp_offset,
                           st.sampled_from(["base_link", "base_link", "map"]))
obstacle_event = st.tuples(st.just("obstacles"), st.sampled_from(["lidar", "radar"]),
                           st.one_of(st.lists(point, max_size=4), st.floats(1, 45).map(lambda x: [(x, 0.0, 1.0)] * 4)),
                           st.lists(st.one_of(st.floats(-20, 20), awkward), min_size=4, max_size=4))
# one healthy control period: heartbeat, odometry, a fresh proposal, a regular tick
drive_event = st.tuples(st.just("drive"), st.floats(-2, 2), st.floats(-0.5, 1.5), st.floats(-0.5, 1.5),
                        st.floats(-1, 20))
events = st.one_of(
    regular_tick, regular_tick, chaotic_tick, proposal_event, proposal_event, obstacle_event,
    drive_event, drive_event, drive_event,
    st.tuples(st.just("speed"), st.one_of(st.floats(-5, 35), awkward)),
    st.tuples(st.just("beat"), st.sampled_from(["vla", "vla", "vla", "bad"])),
    st.tuples(st.just("estop")),
    st.tuples(st.just("reset")),
)


@settings(max_examples=250, deadline=None)
@given(st.lists(events, max_size=60))
def test_property_every_output_is_inside_every_limit_under_chaos(seq):
    shield = VehicleShield(LIMITS, WatchdogLimits(heartbeat_timeouts_s={"vla": 0.2, ODOMETRY_INPUT: 0.2}), PERIOD)
    oracle = Oracle(shield)
    steady, ros, last_stamp = 5 * NS, 10**12, 10**12
    for ev in seq:
        kind = ev[0]
        if kind == "tick":
            steady += ev[1]
            ros += ev[1] if ev[2] is None else ev[2]
            oracle.check(shield.tick(ros, steady), ros, steady)
        elif kind == "propose":
            _, steering, throttle, brake, offset, frame = ev
            stamp = last_stamp if offset == "equal" else ros + offset
            last_stamp = stamp
            p = VehicleProposal(stamp, frame, steering, throttle, brake)
            oracle.decided(shield.check(p, ros, steady), stamp)
        elif kind == "speed":
            shield.on_speed(ev[1], steady)
            oracle.speed_given(ev[1])
        elif kind == "obstacles":
            pts = np.array(ev[2], dtype=float).reshape(-1, 3)
            closing = np.array(ev[3][:len(pts)]) if ev[1] == "radar" else None
            shield.on_obstacles(ev[1], pts, steady, closing)
        elif kind == "drive":
            _, steering, throttle, brake, speed = ev
            shield.supervisor.heartbeat("vla", steady)
            shield.on_speed(speed, steady)
            oracle.speed_given(speed)
            last_stamp = ros
            oracle.decided(shield.check(VehicleProposal(ros, "base_link", steering, throttle, brake), ros, steady), ros)
            steady += P_NS
            ros += P_NS
            oracle.check(shield.tick(ros, steady), ros, steady)
        elif kind == "beat":
            shield.supervisor.heartbeat("vla", steady, ok=ev[1] == "vla")
        elif kind == "estop":
            shield.supervisor.emergency_stop("property test")
        else:
            oracle.reset(shield.reset(steady)[0])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-2, 3), st.floats(-2, 3), st.floats(-2, 35),
                          st.integers(1, 5)), min_size=1, max_size=25))
def test_property_a_healthy_stream_is_followed_within_every_limit(seq):
    """No faults and fresh proposals: every tick follows the model, and the limits still hold."""
    shield = VehicleShield(LIMITS, WatchdogLimits(), PERIOD)
    oracle = Oracle(shield)
    steady, ros = 5 * NS, 10**12
    steady += P_NS
    ros += P_NS
    oracle.check(shield.tick(ros, steady), ros, steady)   # arms the supervisor
    for steering, throttle, brake, speed, ticks in seq:
        shield.on_speed(speed, steady)
        oracle.speed_given(speed)
        oracle.decided(shield.check(VehicleProposal(ros, "base_link", steering, throttle, brake), ros, steady), ros)
        for _ in range(ticks):
            steady += P_NS
            ros += P_NS
            out = shield.tick(ros, steady)
            oracle.check(out, ros, steady)
            assert out.driven_by == "model"
    assert shield.passed == len(seq) and shield.rejected == 0
