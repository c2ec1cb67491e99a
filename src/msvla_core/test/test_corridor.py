"""Time to collision in the straight driving corridor."""
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msvla_core.safety.corridor import CorridorGeometry, CorridorPoints, corridor_points, time_to_collision

CORRIDOR = CorridorGeometry()  # half width 1.1, bumper at x=2, lookahead 40, z in [0.2, 2.5]


def wall(x, n=21):
    return np.stack([np.full(n, x), np.linspace(-1.0, 1.0, n), np.full(n, 1.0)], axis=1)


def test_a_wall_ahead_gives_gap_from_the_bumper_and_ttc_at_ego_speed():
    ttc, gap, non_finite = time_to_collision(wall(12.0), 5.0, CORRIDOR)
    assert gap == pytest.approx(10.0) and ttc == pytest.approx(2.0) and non_finite == 0


def test_standing_still_or_reversing_never_closes_on_a_static_world():
    for speed in (0.0, -3.0):
        ttc, gap, _ = time_to_collision(wall(12.0), speed, CORRIDOR)
        assert ttc == math.inf and gap == pytest.approx(10.0)


@pytest.mark.parametrize("point", [
    (12.0, 1.2, 1.0),    # beside the corridor
    (12.0, -1.2, 1.0),
    (12.0, 0.0, 0.1),    # ground return
    (12.0, 0.0, 3.0),    # overhead sign
    (1.5, 0.0, 1.0),     # behind the bumper
    (42.5, 0.0, 1.0),    # beyond the lookahead
])
def test_points_outside_the_corridor_are_ignored(point):
    assert time_to_collision(np.array([point]), 10.0, CORRIDOR) == (math.inf, math.inf, 0)


def test_corridor_edges_are_inside():
    edges = np.array([(2.0, 1.1, 0.2), (42.0, -1.1, 2.5)])
    assert time_to_collision(edges, 1.0, CORRIDOR).gap_m == 0.0


def test_radar_uses_per_point_closing_speed_and_ignores_receding_targets_for_ttc():
    points = np.array([(12.0, 0.0, 1.0), (22.0, 0.0, 1.0), (7.0, 0.0, 1.0)])
    ttc, gap, _ = time_to_collision(points, 0.0, CORRIDOR, closing_speeds=np.array([2.0, 10.0, -5.0]))
    assert ttc == pytest.approx(2.0)   # 20 m at 10 m/s beats 10 m at 2 m/s; the receding one never hits
    assert gap == pytest.approx(5.0)   # ... but it is the nearest


def test_non_finite_points_are_ignored_and_counted():
    points = np.array([(np.nan, 0.0, 1.0), (12.0, np.inf, 1.0), (30.0, 0.0, 1.0), (12.0, 0.0, -np.inf)])
    ttc, gap, non_finite = time_to_collision(points, 4.0, CORRIDOR)
    assert (ttc, gap, non_finite) == (pytest.approx(7.0), pytest.approx(28.0), 3)


def test_a_non_finite_closing_speed_keeps_the_point_for_the_gap_only():
    points = np.array([(5.0, 0.0, 1.0), (22.0, 0.0, 1.0)])
    ttc, gap, non_finite = time_to_collision(points, 0.0, CORRIDOR, closing_speeds=np.array([np.nan, 4.0]))
    assert (ttc, gap, non_finite) == (pytest.approx(5.0), pytest.approx(3.0), 1)


def test_empty_and_malformed_input():
    assert time_to_collision(np.zeros((0, 3)), 5.0, CORRIDOR) == (math.inf, math.inf, 0)
    with pytest.raises(ValueError, match="shape"):
        time_to_collision(np.zeros((4, 2)), 5.0, CORRIDOR)
    with pytest.raises(ValueError, match="closing_speeds"):
        time_to_collision(np.zeros((4, 3)), 5.0, CORRIDOR, closing_speeds=np.zeros(3))
    with pytest.raises(ValueError, match="ego_speed"):
        time_to_collision(wall(12.0), math.nan, CORRIDOR)


def test_ageing_moves_approaching_points_closer_but_never_past_the_bumper():
    kept = corridor_points(wall(12.0), CORRIDOR)
    assert kept.ttc_and_gap(5.0, age_s=0.5) == (pytest.approx(1.5), pytest.approx(7.5))
    assert kept.ttc_and_gap(5.0, age_s=10.0) == (0.0, 0.0)
    radar = corridor_points(np.array([(12.0, 0.0, 1.0), (22.0, 0.0, 1.0)]), CORRIDOR, np.array([-1.0, 5.0]))
    assert radar.ttc_and_gap(0.0, age_s=1.0) == (pytest.approx(3.0), pytest.approx(10.0))


@pytest.mark.parametrize("kw, name", [
    (dict(corridor_half_width_m=0.0), "corridor_half_width_m"),
    (dict(lookahead_m=math.inf), "lookahead_m"),
    (dict(front_offset_m=-1.0), "front_offset_m"),
    (dict(corridor_z_min_m=3.0), "corridor_z_min_m=3.0"),
    (dict(corridor_z_max_m=math.nan), "corridor_z_max_m=nan"),
])
def test_invalid_geometry_is_refused_naming_the_field(kw, name):
    with pytest.raises(ValueError, match=name):
        CorridorGeometry(**kw)


def test_a_lidar_sized_cloud_is_fast():
    rng = np.random.default_rng(0)
    cloud = rng.uniform((-50, -50, -2), (50, 50, 5), size=(100_000, 3))
    start = time.perf_counter()
    for _ in range(10):
        time_to_collision(cloud, 10.0, CORRIDOR)
    assert (time.perf_counter() - start) / 10 < 0.05


coordinate = st.one_of(st.floats(-5, 50), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308]))
closing = st.one_of(st.floats(-30, 30), st.sampled_from([math.nan, math.inf, -math.inf, 0.0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(coordinate, st.floats(-3, 3), st.floats(-1, 4), closing), max_size=30),
       st.floats(-30, 30), st.booleans())
def test_property_matches_a_point_by_point_reference(rows, speed, radar):
    points = np.array([r[:3] for r in rows], dtype=float).reshape(-1, 3)
    speeds = np.array([r[3] for r in rows], dtype=float) if radar else None
    ttc, gap, non_finite = time_to_collision(points, speed, CORRIDOR, speeds)
    want_ttc = want_gap = math.inf
    want_bad = 0
    for i, (x, y, z) in enumerate(points.tolist()):
        c = float(speeds[i]) if radar else speed
        if not all(math.isfinite(v) for v in (x, y, z)):
            want_bad += 1
            continue
        want_bad += not math.isfinite(c)
        if 2.0 <= x <= 42.0 and abs(y) <= 1.1 and 0.2 <= z <= 2.5:
            want_gap = min(want_gap, x - 2.0)
            if math.isfinite(c) and c > 0:
                want_ttc = min(want_ttc, (x - 2.0) / c)
    assert non_finite == want_bad
    assert gap == pytest.approx(want_gap) and ttc == pytest.approx(want_ttc)


def test_the_corridor_bends_along_the_arc():
    """Inside a left turn of radius 20 m, a box on the arc 15 m ahead is off the straight corridor
    (the arc is 5.6 m to the left by then) but on the curved one, at its arc-length gap."""
    shape = CorridorGeometry(corridor_half_width_m=1.1, front_offset_m=3.6, lookahead_m=40.0)
    radius, arc = 20.0, 15.0 + 3.6
    theta = arc / radius
    on_arc = np.array([[radius * math.sin(theta), radius * (1 - math.cos(theta)), 1.0]])
    assert corridor_points(on_arc, shape).gaps_m.size == 0
    kept = corridor_points(on_arc, shape, curvature=1.0 / radius)
    np.testing.assert_allclose(kept.gaps_m, [15.0], atol=1e-9)
    mirrored = on_arc * [1.0, -1.0, 1.0]  # the same turn to the right
    np.testing.assert_allclose(corridor_points(mirrored, shape, curvature=-1.0 / radius).gaps_m, [15.0], atol=1e-9)
    assert corridor_points(mirrored, shape, curvature=1.0 / radius).gaps_m.size == 0
    # Straight ahead, which the turn avoids, is outside the bent box; the union with the straight
    # box holds both, each at its own gap.
    ahead = np.array([[13.6, 0.0, 1.0]])
    assert corridor_points(ahead, shape, curvature=1.0 / radius).gaps_m.size == 0
    both = np.vstack([ahead, on_arc])
    union = CorridorPoints.union([corridor_points(both, shape, curvature=k) for k in (1.0 / radius, 0.0)])
    np.testing.assert_allclose(sorted(union.gaps_m), [10.0, 15.0], atol=1e-9)
    assert union.total == 2 and union.non_finite == 0
    # Behind the car nothing counts, however the arc wraps.
    assert corridor_points(np.array([[-5.0, 0.5, 1.0]]), shape, curvature=1.0 / 5.0).gaps_m.size == 0
    with pytest.raises(ValueError, match="curvature"):
        corridor_points(on_arc, shape, curvature=math.inf)


def test_a_point_moving_across_counts_where_its_sweep_comes_nearest_the_path():
    shape = CorridorGeometry()                       # half width 1.1 m, bumper 2 m ahead of base_link
    points = np.array([(12.0, 3.0, 1.0)] * 4)        # gap 10 m
    lateral = np.array([0.0, 1.5, -1.5, -0.5])
    kept = corridor_points(points, shape, lateral_speeds=lateral, ego_speed_mps=10.0)
    # 1.5 s to reach and pass it (10 m / 10 m/s + 0.5 s): only the one walking in at 1.5 m/s gets there
    np.testing.assert_allclose(kept.gaps_m, [10.0])
    slow_ego = corridor_points(points, shape, lateral_speeds=lateral, ego_speed_mps=2.0)
    assert len(slow_ego.gaps_m) == 2                 # 5.5 s: the slow walker gets there too
    with pytest.raises(ValueError, match="lateral_speeds must have shape"):
        corridor_points(points, shape, lateral_speeds=np.zeros(3))
