"""IMU, tactile and proprioception encoders: preprocessing, shapes, masks, errors, learning."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from msvla_core.config import ConfigError
from msvla_core.models.encoders_lib import imu, proprio, tactile  # noqa: F401  (registers)
from msvla_core.models.registry import ENCODERS, batch_inputs

torch.set_num_threads(1)
D = 32
IMU_TYPES = ["imu_lstm", "imu_transformer", "imu_tcn", "imu_mlp"]


def build(name, params=None, seed=0):
    torch.manual_seed(seed)
    return ENCODERS.build(name, params or {}, where="test", d_model=D)


def imu_raw(rng, t=20):
    data = rng.normal(size=(t, 6))
    data[:, 2] += 9.81
    return data.astype(np.float32)


def proprio_raw(rng, k=4, effort=True):
    raw = {"position": rng.normal(size=9), "velocity": rng.normal(size=9),
           "action_history": rng.normal(size=(k, 7)).astype(np.float32)}
    if effort:
        raw["effort"] = rng.normal(size=9) * 10
    return raw


RAW = {
    **{name: imu_raw for name in IMU_TYPES},
    "tactile_grid": lambda rng: (rng.random((16, 16)) * 80).astype(np.float32),
    "tactile_biotac": lambda rng: rng.normal(size=21).astype(np.float32),
    "tactile_gelsight": lambda rng: rng.integers(0, 256, (60, 80, 3), dtype=np.uint8),
    "proprio_mlp": proprio_raw,
}
TOKENS = {"imu_lstm": 2, "imu_transformer": 4, "imu_tcn": 4, "imu_mlp": 4, "tactile_grid": 16,
          "tactile_biotac": 2, "tactile_gelsight": 12, "proprio_mlp": 5}
MODALITY = {**{n: "imu" for n in IMU_TYPES}, "tactile_grid": "tactile",
            "tactile_biotac": "tactile", "tactile_gelsight": "tactile", "proprio_mlp": "proprio"}


def batch(name, n, seed=0, raw_fn=None):
    rng = np.random.default_rng(seed)
    enc = ENCODERS.get(name)(ENCODERS.params(name, {}, "test"), D)
    samples = [enc.preprocess((raw_fn or RAW[name])(rng)) for _ in range(n)]
    return batch_inputs(samples)


def test_all_registered():
    assert set(RAW) <= set(ENCODERS.names())


@pytest.mark.parametrize("name", list(RAW))
def test_shapes_dtypes_grid(name):
    enc = build(name)
    assert enc.modality == MODALITY[name]
    sample = enc.preprocess(RAW[name](np.random.default_rng(1)))
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in sample.values())
    out = enc(**batch_inputs([sample, sample, sample]))
    assert out.shape == (3, TOKENS[name], D)
    assert torch.isfinite(out).all()
    if enc.grid is not None:
        assert enc.grid[0] * enc.grid[1] == TOKENS[name]


@pytest.mark.parametrize("name", list(RAW))
def test_deterministic_under_seed(name):
    inputs = batch(name, 2)
    a, b, c = build(name, seed=3), build(name, seed=3), build(name, seed=4)
    with torch.no_grad():
        assert torch.equal(a(**inputs), b(**inputs))
        assert not torch.allclose(a(**inputs), c(**inputs))


def mixed_proprio(rng):
    raw = proprio_raw(rng, k=int(rng.integers(0, 3)), effort=bool(rng.integers(0, 2)))
    return raw


@pytest.mark.parametrize("name", list(RAW))
def test_gradient_reaches_every_parameter(name):
    enc = build(name)
    raw_fn = mixed_proprio if name == "proprio_mlp" else None
    inputs = batch(name, 4, seed=2, raw_fn=raw_fn)
    enc(**inputs).pow(2).mean().backward()
    for pname, param in enc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname


# ---------------------------------------------------------------- IMU preprocessing and masks


def test_imu_short_window_left_pads_with_first_sample():
    enc = build("imu_lstm")
    raw = imu_raw(np.random.default_rng(0), t=5)
    out = enc.preprocess(raw)
    assert out["imu"].shape == (20, 6) and out["mask"].shape == (20,)
    np.testing.assert_array_equal(out["mask"], [0] * 15 + [1] * 5)
    scale = np.array([9.81] * 3 + [3.0] * 3, dtype=np.float32)
    np.testing.assert_allclose(out["imu"][15:], raw / scale, rtol=1e-6)
    np.testing.assert_allclose(out["imu"][:15], np.repeat(raw[:1] / scale, 15, 0), rtol=1e-6)


def test_imu_long_window_keeps_most_recent_and_scales():
    enc = build("imu_mlp", {"window": 8, "accel_scale": 2.0, "gyro_scale": 0.5})
    raw = np.arange(30 * 6, dtype=np.float64).reshape(30, 6)
    out = enc.preprocess(raw)
    np.testing.assert_allclose(out["imu"], raw[-8:] / [2, 2, 2, 0.5, 0.5, 0.5], rtol=1e-6)
    assert out["mask"].all()
    still = np.tile([0, 0, 9.81, 0, 0, 0], (20, 1))
    assert enc.preprocess(still[:8])["imu"][0, 2] == pytest.approx(9.81 / 2)


def test_imu_timestamps_are_resampled_onto_the_grid():
    enc = build("imu_tcn", {"window": 10, "sample_period_s": 0.01})
    t = np.linspace(-0.05, 0.0, 7)  # 5 grid periods of data, irregular rate
    values = np.stack([t * k for k in range(1, 7)], axis=1)  # linear in time
    out = enc.preprocess(np.concatenate([values, t[:, None]], axis=1))
    grid = -0.01 * np.arange(9, -1, -1)
    np.testing.assert_array_equal(out["mask"], [0] * 4 + [1] * 6)
    expected = np.stack([np.maximum(grid, -0.05) * k for k in range(1, 7)], axis=1)
    expected /= [9.81] * 3 + [3.0] * 3
    np.testing.assert_allclose(out["imu"], expected, atol=1e-6)


@pytest.mark.parametrize("raw, match", [
    (np.zeros((0, 6)), "imu"), (np.zeros((5, 5)), "imu"), (np.zeros(6), "imu"),
    (np.array([[0, 0, 9.8, np.nan, 0, 0]]), "imu: contains NaN"),
    (np.array([[0, 0, 9.8, 0, 0, 0, 0.1]]), "time offsets"),
    (np.array([[0, 0, 9.8, 0, 0, 0, -0.01], [0, 0, 9.8, 0, 0, 0, -0.02]]), "non-decreasing"),
    (np.array([["a"] * 6]), "real numbers"),
])
def test_imu_bad_raw(raw, match):
    with pytest.raises(ValueError, match=match):
        build("imu_lstm").preprocess(raw)


def test_imu_transformer_ignores_padded_samples():
    enc = build("imu_transformer").eval()
    rng = np.random.default_rng(5)
    a = enc.preprocess(imu_raw(rng, t=12))
    b = {k: v.copy() for k, v in a.items()}
    b["imu"][:8] += 5.0  # padded region only (mask 0)
    with torch.no_grad():
        out_a, out_b = enc(**batch_inputs([a])), enc(**batch_inputs([b]))
        torch.testing.assert_close(out_a, out_b)
        enc.train()  # the eval fast path and the training path must agree
        torch.testing.assert_close(enc(**batch_inputs([a])), out_a, atol=1e-5, rtol=1e-4)


def test_imu_transformer_summary_only():
    enc = build("imu_transformer", {"tokens": 1})
    assert enc(imu=torch.zeros(2, 20, 6), mask=torch.ones(2, 20)).shape == (2, 1, D)


def test_imu_tcn_is_causal():
    enc = build("imu_tcn")
    a = enc.preprocess(imu_raw(np.random.default_rng(6)))
    b = {k: v.copy() for k, v in a.items()}
    b["imu"][-1] += 3.0
    with torch.no_grad():
        out_a, out_b = enc(**batch_inputs([a])), enc(**batch_inputs([b]))
    torch.testing.assert_close(out_a[:, :-1], out_b[:, :-1])
    assert not torch.allclose(out_a[:, -1], out_b[:, -1])


@pytest.mark.parametrize("name", IMU_TYPES)
def test_imu_forward_shape_errors(name):
    enc = build(name)
    with pytest.raises(ValueError, match=r"imu: expected shape \(B, 20, 6\)"):
        enc(imu=torch.zeros(1, 19, 6), mask=torch.ones(1, 19))
    with pytest.raises(ValueError, match="mask"):
        enc(imu=torch.zeros(1, 20, 6), mask=torch.ones(1, 21))


# ---------------------------------------------------------------- tactile


def test_tactile_grid_scaling_and_multi_pad():
    enc = build("tactile_grid", {"grid_size": [4, 6], "sensors": 2, "pressure_scale_kpa": 50.0})
    raw = np.full((2, 4, 6), 25.0, dtype=np.float32)
    out = enc.preprocess(raw)["tactile"]
    assert out.shape == (2, 4, 6) and np.allclose(out, 0.5)
    assert enc.grid == (1, 2)
    assert enc(**batch_inputs([{"tactile": out}])).shape == (1, 2, D)
    with pytest.raises(ValueError, match=r"tactile: expected a pressure grid of shape \(2, 4, 6\)"):
        enc.preprocess(raw[0])
    single = build("tactile_grid")
    assert single.preprocess(np.zeros((16, 16)))["tactile"].shape == (1, 16, 16)
    with pytest.raises(ValueError, match=r"\(16, 16\)"):
        single.preprocess(np.zeros((16, 15)))
    bad = np.zeros((16, 16))
    bad[3, 3] = np.inf
    with pytest.raises(ValueError, match="tactile: contains NaN or inf"):
        single.preprocess(bad)


def test_tactile_biotac_standardises():
    mean, std = list(range(21)), [2.0] * 21
    enc = build("tactile_biotac", {"mean": mean, "std": std, "tokens": 3})
    out = enc.preprocess(np.arange(21, dtype=np.float32) + 4)["tactile"]
    np.testing.assert_allclose(out, 2.0)
    assert enc(**batch_inputs([{"tactile": out}])).shape == (1, 3, D)
    with pytest.raises(ValueError, match=r"tactile: expected a vector of shape \(21,\)"):
        enc.preprocess(np.zeros(19))
    with pytest.raises(ValueError, match=r"tactile: expected shape \(B, 21\)"):
        enc(tactile=torch.zeros(2, 20))
    custom = build("tactile_biotac", {"dim": 42})
    assert custom.params.mean == [0.0] * 42 and custom.params.std == [1.0] * 42


def test_tactile_gelsight_resizes_and_normalises():
    enc = build("tactile_gelsight")
    out = enc.preprocess(np.full((240, 320, 3), 255, dtype=np.uint8))["tactile"]
    assert out.shape == (3, 48, 64) and np.allclose(out, 2.0)
    assert enc.grid == (3, 4)
    with pytest.raises(ValueError, match="uint8"):
        enc.preprocess(np.zeros((48, 64, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="tactile"):
        enc.preprocess(np.zeros((48, 64), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"tactile: expected shape \(B, 3, 48, 64\)"):
        enc(tactile=torch.zeros(1, 3, 64, 64))


# ---------------------------------------------------------------- proprioception


def test_proprio_layout_and_missing_history():
    enc = build("proprio_mlp")
    raw = {"position": np.ones(9), "velocity": np.full(9, 4.0), "effort": np.full(9, 40.0)}
    out = enc.preprocess(raw)
    assert out["state"].shape == (28,)
    np.testing.assert_allclose(out["state"], [1.0] * 9 + [2.0] * 9 + [2.0] * 9 + [1.0])
    np.testing.assert_array_equal(out["actions"], np.zeros((4, 7)))
    np.testing.assert_array_equal(out["actions_mask"], np.zeros(4))
    no_effort = enc.preprocess({"position": np.ones(9), "velocity": np.ones(9)})
    assert no_effort["state"][-1] == 0 and not no_effort["state"][18:27].any()


def test_proprio_history_padding_and_truncation():
    enc = build("proprio_mlp")
    rng = np.random.default_rng(0)
    short = rng.normal(size=(2, 7))
    out = enc.preprocess({"position": np.zeros(9), "velocity": np.zeros(9),
                          "action_history": short})
    np.testing.assert_array_equal(out["actions_mask"], [0, 0, 1, 1])
    np.testing.assert_allclose(out["actions"][2:], short, rtol=1e-6)
    assert not out["actions"][:2].any()
    long = rng.normal(size=(9, 7))
    out = enc.preprocess({"position": np.zeros(9), "velocity": np.zeros(9),
                          "action_history": long})
    np.testing.assert_allclose(out["actions"], long[-4:], rtol=1e-6)
    assert out["actions_mask"].all()


def test_proprio_masked_actions_do_not_matter():
    enc = build("proprio_mlp")
    sample = enc.preprocess(proprio_raw(np.random.default_rng(1), k=2))
    other = {k: v.copy() for k, v in sample.items()}
    other["actions"][:2] = 7.0
    with torch.no_grad():
        torch.testing.assert_close(enc(**batch_inputs([sample])), enc(**batch_inputs([other])))


def test_proprio_options():
    enc = build("proprio_mlp", {"joints": 7, "use_effort": False, "history": 0,
                                "action_dim": 3})
    out = enc.preprocess({"position": np.zeros(7), "velocity": np.zeros(7),
                          "effort": np.zeros(7)})
    assert out["state"].shape == (14,) and out["actions"].shape == (0, 3)
    assert enc(**batch_inputs([out])).shape == (1, 1, D)


@pytest.mark.parametrize("field", ["position", "velocity", "effort", "action_history"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_proprio_non_finite_names_field(field, bad):
    raw = proprio_raw(np.random.default_rng(0))
    raw[field] = np.array(raw[field], dtype=np.float64)
    raw[field].flat[1] = bad
    with pytest.raises(ValueError, match=f"'{field}' contains NaN or inf"):
        build("proprio_mlp").preprocess(raw)


@pytest.mark.parametrize("change, match", [
    ({"position": None}, "'position' is required"),
    ({"velocity": np.zeros(8)}, r"'velocity' must have shape \(9,\)"),
    ({"action_history": np.zeros((2, 6))}, r"'action_history' must have shape \(k, 7\)"),
    ({"positions": np.zeros(9)}, "unknown field"),
])
def test_proprio_bad_raw(change, match):
    raw = proprio_raw(np.random.default_rng(0))
    raw.update(change)
    with pytest.raises(ValueError, match=match):
        build("proprio_mlp").preprocess(raw)


def test_proprio_forward_shape_errors():
    enc = build("proprio_mlp")
    with pytest.raises(ValueError, match=r"state: expected shape \(B, 28\)"):
        enc(state=torch.zeros(1, 27), actions=torch.zeros(1, 4, 7))
    with pytest.raises(ValueError, match=r"actions: expected shape \(1, 4, 7\)"):
        enc(state=torch.zeros(1, 28), actions=torch.zeros(1, 3, 7))
    with pytest.raises(ValueError, match="actions_mask"):
        enc(state=torch.zeros(1, 28), actions=torch.zeros(1, 4, 7),
            actions_mask=torch.zeros(1, 5))


# ---------------------------------------------------------------- params validation


@pytest.mark.parametrize("name, params, field", [
    ("imu_lstm", {"window": 0}, "window"),
    ("imu_lstm", {"accel_scale": 0.0}, "accel_scale"),
    ("imu_lstm", {"gyro_scale": -1.0}, "gyro_scale"),
    ("imu_lstm", {"layers": 0}, "layers"),
    ("imu_transformer", {"heads": 3}, "heads"),
    ("imu_transformer", {"tokens": 30}, "tokens"),
    ("imu_tcn", {"kernel": 1}, "kernel"),
    ("imu_tcn", {"tokens": 21}, "tokens"),
    ("imu_mlp", {"tokens": 0}, "tokens"),
    ("tactile_grid", {"grid_size": [0, 4]}, "grid_size"),
    ("tactile_grid", {"pressure_scale_kpa": 0.0}, "pressure_scale_kpa"),
    ("tactile_biotac", {"mean": [0.0] * 3}, "mean"),
    ("tactile_biotac", {"std": [0.0] * 21}, "std"),
    ("tactile_gelsight", {"image_size": [48]}, "image_size"),
    ("proprio_mlp", {"joints": 0}, "joints"),
    ("proprio_mlp", {"history": -1}, "history"),
    ("proprio_mlp", {"state_std": [1.0] * 5}, "state_std"),
    ("proprio_mlp", {"hiden": 3}, "hiden"),
    ("imu_mlp", {"window": 2.5}, "window"),
])
def test_invalid_params_name_the_field(name, params, field):
    with pytest.raises(ConfigError, match=field):
        ENCODERS.params(name, params, "test")


def test_invalid_d_model():
    with pytest.raises(ValueError, match="d_model"):
        ENCODERS.build("imu_lstm", {}, "test", d_model=0)


# ---------------------------------------------------------------- it learns


def imu_task(rng):
    raw = imu_raw(rng, t=int(rng.integers(8, 25)))
    return raw, float(raw[-5:, 5].mean() / 3.0)  # recent yaw rate


def tactile_grid_task(rng):
    grid = np.zeros((16, 16), dtype=np.float32)
    r, c = rng.integers(0, 16, 2)
    grid[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = 60.0
    return grid, (c - 7.5) / 7.5  # contact column


def biotac_task(rng):
    x = rng.normal(size=21).astype(np.float32)
    return x, float(x[:19].mean() * 3 - x[19])


def gelsight_task(rng):
    img = np.full((48, 64, 3), 128, dtype=np.uint8)
    r = int(rng.integers(0, 48))
    img[r:r + 6] = 250
    return img, (r - 24) / 24


def proprio_task(rng):
    raw = proprio_raw(rng, k=int(rng.integers(0, 5)))
    target = raw["position"][0] + (raw["action_history"][-1, 6] if len(raw["action_history"]) else 0)
    return raw, float(target)


TASKS = {**{n: imu_task for n in IMU_TYPES}, "tactile_grid": tactile_grid_task,
         "tactile_biotac": biotac_task, "tactile_gelsight": gelsight_task,
         "proprio_mlp": proprio_task}


# Convolutions on images are the slow part on one thread: learn on a smaller image there.
LEARN_PARAMS = {"tactile_gelsight": {"image_size": [24, 32], "channels": 16}}


@pytest.mark.parametrize("name", list(TASKS))
def test_it_learns(name):
    enc = build(name, LEARN_PARAMS.get(name))
    readout = torch.nn.Linear(D, 1)
    rng = np.random.default_rng(0)
    pairs = [TASKS[name](rng) for _ in range(48)]
    inputs = batch_inputs([enc.preprocess(raw) for raw, _ in pairs])
    target = torch.tensor([t for _, t in pairs], dtype=torch.float32)
    opt = torch.optim.Adam([*enc.parameters(), *readout.parameters()], lr=3e-3)

    def loss_fn():
        return (readout(enc(**inputs).mean(1)).squeeze(1) - target).pow(2).mean()

    first = loss_fn().item()
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.5 * first
