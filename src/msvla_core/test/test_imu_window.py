"""ImuWindow: ordering, rejection reasons, window contents and offsets, bounds, encoder format."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msvla_core.data.imu_window import ImuSampleError, ImuWindow
from msvla_core.models import encoders_lib  # noqa: F401  (registers the IMU encoders)
from msvla_core.models.registry import ENCODERS

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000  # a realistic epoch stamp: offsets must stay exact


def fill(buf, n, period_ns=5 * MS, start=T0):
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(n, 6))
    for i in range(n):
        assert buf.add(start + i * period_ns, samples[i, :3], samples[i, 3:])
    return samples


def test_window_holds_the_last_window_s_with_offsets_to_the_newest():
    buf = ImuWindow(window_s=0.02, max_samples=100)
    samples = fill(buf, 10)  # 0, 5, ..., 45 ms
    win = buf.window()
    # newest at 45 ms: window [25, 45] ms, both ends included
    assert win.shape == (5, 7) and win.dtype == np.float64
    np.testing.assert_array_equal(win[:, :6], samples[5:])
    np.testing.assert_allclose(win[:, 6], [-0.02, -0.015, -0.01, -0.005, 0.0], atol=1e-12)
    assert buf.newest_ns == T0 + 45 * MS


def test_window_ending_earlier_within_history():
    buf = ImuWindow(window_s=0.01, max_samples=100, history_s=0.05)
    samples = fill(buf, 10)
    win = buf.window(end_ns=T0 + 22 * MS)  # samples at 15 and 20 ms
    np.testing.assert_array_equal(win[:, :6], samples[3:5])
    np.testing.assert_allclose(win[:, 6], [-0.007, -0.002], atol=1e-12)
    assert buf.window(end_ns=T0 - 50 * MS).shape == (0, 7)
    # history_s=0.05 reaches back past the first sample; one at 60 ms prunes those before 10 ms
    assert len(buf) == 10
    buf.add(T0 + 60 * MS, [0, 0, 9.81], [0, 0, 0])
    assert len(buf) == 9 and buf.window(end_ns=T0 + 5 * MS).shape == (0, 7)


def test_duplicate_is_ignored_and_out_of_order_raises():
    buf = ImuWindow(0.1, 100)
    assert buf.add(T0, [0, 0, 9.8], [0, 0, 0])
    assert buf.add(T0, [1, 1, 1], [1, 1, 1]) is False
    with pytest.raises(ImuSampleError, match="older than the newest") as err:
        buf.add(T0 - 1, [0, 0, 9.8], [0, 0, 0])
    assert err.value.reason == "out_of_order_imu"
    assert len(buf) == 1
    np.testing.assert_array_equal(buf.window()[0], [0, 0, 9.8, 0, 0, 0, 0])


@pytest.mark.parametrize("accel, gyro, field", [
    ([0, np.nan, 9.8], [0, 0, 0], "linear_acceleration.y"),
    ([0, 0, 9.8], [0, 0, np.inf], "angular_velocity.z"),
])
def test_non_finite_samples_name_the_field(accel, gyro, field):
    buf = ImuWindow(0.1, 100)
    with pytest.raises(ImuSampleError, match=field.replace(".", r"\.")) as err:
        buf.add(T0, accel, gyro)
    assert err.value.reason == "non_finite_imu" and len(buf) == 0


def test_malformed_vectors_are_rejected():
    buf = ImuWindow(0.1, 100)
    with pytest.raises(ImuSampleError, match="linear_acceleration: expected 3 numbers") as err:
        buf.add(T0, [0, 0], [0, 0, 0])
    assert err.value.reason == "malformed_imu"
    with pytest.raises(ImuSampleError, match="angular_velocity"):
        buf.add(T0, [0, 0, 0], ["a", "b", "c"])


def test_max_samples_bounds_the_buffer():
    buf = ImuWindow(window_s=10.0, max_samples=4)
    samples = fill(buf, 9)
    assert len(buf) == 4
    np.testing.assert_array_equal(buf.window()[:, :6], samples[-4:])


def test_empty_buffer_gives_an_empty_window():
    assert ImuWindow(0.2, 10).window().shape == (0, 7)


@pytest.mark.parametrize("kwargs, match", [
    ({"window_s": 0.0, "max_samples": 10}, "window_s"),
    ({"window_s": float("nan"), "max_samples": 10}, "window_s"),
    ({"window_s": 0.2, "max_samples": 0}, "max_samples"),
    ({"window_s": 0.2, "max_samples": 2.5}, "max_samples"),
    ({"window_s": 0.2, "max_samples": 10, "history_s": 0.1}, "history_s"),
])
def test_invalid_construction_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImuWindow(**kwargs)


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.integers(1, 20 * MS), min_size=1, max_size=60),
       window_ms=st.integers(1, 200), end_back=st.integers(0, 30 * MS))
def test_window_matches_a_brute_force_selection(gaps, window_ms, end_back):
    buf = ImuWindow(window_ms / 1e3, 1000, history_s=1.0)
    stamps = T0 + np.cumsum(gaps)
    for i, s in enumerate(stamps):
        buf.add(int(s), [i, 0, 0], [0, 0, i])
    end = int(stamps[-1]) - end_back
    keep = (stamps >= end - window_ms * MS) & (stamps <= end)
    win = buf.window(end_ns=end)
    np.testing.assert_array_equal(win[:, 0], np.flatnonzero(keep))
    np.testing.assert_allclose(win[:, 6], (stamps[keep] - end) / 1e9, atol=1e-12)
    assert (win[:, 6] <= 0).all() and (np.diff(win[:, 6]) > 0).all()


def test_windows_feed_the_imu_encoders():
    encoder = ENCODERS.build("imu_tcn", {"window": 20, "sample_period_s": 0.01}, "imu", d_model=16)
    buf = ImuWindow(window_s=0.2, max_samples=1000)
    fill(buf, 100, period_ns=2 * MS)  # 500 Hz, 0.2 s of data
    out = encoder.preprocess(buf.window())
    assert out["imu"].shape == (20, 6) and out["mask"].all()


def test_aligned_windows_end_at_references_whichever_arrives_first():
    from msvla_core.data.imu_window import AlignedImuWindows

    aligned = AlignedImuWindows(window_s=0.02, max_samples=100)
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(12, 6))
    cut = []
    for i in range(5):  # samples at 0..20 ms
        stored, windows, refused = aligned.add_sample(T0 + i * 5 * MS, samples[i, :3], samples[i, 3:])
        assert stored and windows == [] and refused == []
    # a reference whose samples are in: cut at once, ending at the reference, not the newest sample
    windows, refused = aligned.add_reference(T0 + 12 * MS)
    assert refused == [] and [s for s, _ in windows] == [T0 + 12 * MS]
    np.testing.assert_array_equal(windows[0][1][:, :6], samples[0:3])  # 0, 5, 10 ms
    np.testing.assert_allclose(windows[0][1][:, 6], [-0.012, -0.007, -0.002], atol=1e-12)
    # references ahead of the samples wait for the first sample at or after them
    assert aligned.add_reference(T0 + 30 * MS) == ([], []) and aligned.add_reference(T0 + 40 * MS) == ([], [])
    assert aligned.pending == 2
    for i in range(5, 8):  # 25, 30, 35 ms: 30 completes the first
        cut += aligned.add_sample(T0 + i * 5 * MS, samples[i, :3], samples[i, 3:])[1]
    assert [s for s, _ in cut] == [T0 + 30 * MS] and aligned.pending == 1
    np.testing.assert_array_equal(cut[0][1][:, :6], samples[2:7])  # 10..30 ms
    assert cut[0][1][-1, 6] == 0.0
    # a sample past several references completes them all, oldest first
    assert aligned.add_reference(T0 + 45 * MS) == ([], [])
    stored, windows, refused = aligned.add_sample(T0 + 50 * MS, samples[8, :3], samples[8, 3:])
    assert refused == []
    assert [s for s, _ in windows] == [T0 + 40 * MS, T0 + 45 * MS]
    np.testing.assert_array_equal(windows[1][1][:, :6], samples[5:8])  # 25, 30, 35 ms: [25, 45] ms


def test_aligned_windows_refuse_bad_references_with_reasons():
    from msvla_core.data.imu_window import AlignedImuWindows

    aligned = AlignedImuWindows(window_s=0.02, max_samples=100, max_pending=2, history_s=0.1)
    assert aligned.add_reference(T0) == ([], [])
    assert aligned.add_reference(T0) == ([], [(T0, "duplicate_reference")])
    assert aligned.add_reference(T0 - MS) == ([], [(T0 - MS, "out_of_order_reference")])
    # the IMU is silent: references pile up to max_pending, then the oldest is given up
    aligned.add_reference(T0 + MS)
    assert aligned.add_reference(T0 + 2 * MS) == ([], [(T0, "pending_overflow")])
    # the IMU comes back far ahead: the two frames still pending have no sample in their windows,
    # and frames before its kept history cannot get a window
    assert aligned.add_sample(T0 + 500 * MS, [0, 0, 9.8], [0, 0, 0]) == (
        True, [], [(T0 + MS, "empty_imu_window"), (T0 + 2 * MS, "empty_imu_window")])
    assert aligned.pending == 0
    assert aligned.add_reference(T0 + 400 * MS) == ([], [(T0 + 400 * MS, "reference_too_old")])
    # nothing in [470, 490] ms
    assert aligned.add_reference(T0 + 490 * MS) == ([], [(T0 + 490 * MS, "empty_imu_window")])
    with pytest.raises(ImuSampleError, match="angular_velocity.z=nan"):
        aligned.add_sample(T0 + 510 * MS, [0, 0, 9.8], [0, 0, np.nan])
    with pytest.raises(ValueError, match="max_pending"):
        AlignedImuWindows(0.02, 100, max_pending=0)
