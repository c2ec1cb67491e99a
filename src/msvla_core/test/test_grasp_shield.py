"""GraspShield: every accepted proposal lies inside every limit, whatever the input."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msvla_core.safety import GraspLimits, GraspProposal, GraspShield

NOW = 10**12
LIMITS = GraspLimits()


def proposal(**kw):
    base = dict(stamp_ns=NOW, frame_id="panda_link0", position=(0.5, 0.0, 0.05),
                orientation=(1.0, 0.0, 0.0, 0.0), width=0.05, score=0.8)
    base.update(kw)
    return GraspProposal(**base)


def test_a_safe_proposal_passes():
    assert GraspShield(LIMITS).check(proposal(), NOW).accepted


@pytest.mark.parametrize("kw, code, text", [
    (dict(position=(0.9, 0.0, 0.05)), "outside_workspace", "position.x=0.900"),
    (dict(position=(0.5, math.nan, 0.05)), "non_finite", "position.y=nan"),
    (dict(width=math.inf), "non_finite", "width=inf"),
    (dict(stamp_ns=NOW - 2 * 10**9), "stale", "2.000 s old"),
    (dict(stamp_ns=NOW + 10**9), "future_stamp", "in the future"),
    (dict(frame_id="camera"), "wrong_frame", "header.frame_id='camera'"),
    (dict(width=0.2), "width_out_of_range", "width=0.2000"),
    (dict(orientation=(0.0, 0.0, 0.0, 2.0)), "bad_orientation", "norm"),
])
def test_unsafe_proposals_are_rejected_with_a_reason_naming_the_field(kw, code, text):
    shield = GraspShield(LIMITS)
    d = shield.check(proposal(**kw), NOW)
    assert not d.accepted
    assert code in [c for c, _ in d.interventions]
    assert any(text in r for _, r in d.interventions)
    assert shield.counts[code] == 1 and shield.rejected == 1


def test_out_of_order_and_wrong_model_are_rejected():
    shield = GraspShield(GraspLimits(expected_model_id="abc"))
    assert shield.check(proposal(stamp_ns=NOW, model_id="abc"), NOW).accepted
    assert not shield.check(proposal(stamp_ns=NOW - 10**6, model_id="abc"), NOW).accepted
    d = shield.check(proposal(model_id="other"), NOW)
    assert [c for c, _ in d.interventions] == ["wrong_model"]


@pytest.mark.parametrize("kw", [dict(workspace_min=(0.9, 0, 0)), dict(min_width_m=0.1),
                                dict(min_score=2.0), dict(max_age_s=0.0), dict(workspace_max=(1, 1, math.nan))])
def test_invalid_limits_are_refused(kw):
    with pytest.raises(ValueError):
        GraspLimits(**kw)


floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-2, 2))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(floats, floats, floats, floats, floats, st.integers(-3 * 10**9, 3 * 10**9)), max_size=20))
def test_property_every_accepted_proposal_is_inside_every_limit(seq):
    shield = GraspShield(LIMITS)
    last = None
    for x, y, z, width, score, dt in seq:
        p = proposal(position=(x, y, z), width=width, score=score, stamp_ns=NOW + dt)
        if shield.check(p, NOW).accepted:
            assert all(LIMITS.workspace_min[i] <= v <= LIMITS.workspace_max[i] for i, v in enumerate((x, y, z)))
            assert LIMITS.min_width_m <= width <= LIMITS.max_width_m and score >= LIMITS.min_score
            assert -LIMITS.future_tolerance_s * 1e9 <= NOW - p.stamp_ns <= LIMITS.max_age_s * 1e9
            assert last is None or p.stamp_ns >= last
            last = p.stamp_ns
