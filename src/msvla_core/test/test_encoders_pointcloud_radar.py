"""LiDAR (PointNet++, pillars) and radar (target list, range-Doppler map) encoders."""
import math

import numpy as np
import pytest
import torch

from msvla_core.config import ConfigError
from msvla_core.models import encoders_lib  # noqa: F401  (registers encoders)
from msvla_core.models.encoders_lib.pointcloud import ball_query, farthest_point_sample, prepare_points
from msvla_core.models.registry import ENCODERS, batch_inputs

torch.set_num_threads(1)
D = 32

# Small variants keep the training checks fast; defaults are covered by the shape tests.
SMALL = {
    "lidar_pointnet2": {"max_points": 256, "centroids": [32, 8], "samples": [8, 8],
                        "mlp1": [16, 32], "mlp2": [32, 32], "range_m": [-8.0, 8.0, -8.0, 8.0, -2.0, 2.0]},
    "lidar_pillars": {"max_points": 512, "x_range": [-8.0, 8.0], "y_range": [-8.0, 8.0],
                      "resolution_m": 1.0, "pillar_channels": 16, "cnn_channels": [16, 32]},
    "radar_points": {"max_targets": 16},
    "radar_rd_map": {"range_bins": 32, "doppler_bins": 16},
}


def build(name, params=None, d_model=D, seed=0):
    torch.manual_seed(seed)
    return ENCODERS.build(name, params if params is not None else {}, f"encoders.{name}", d_model=d_model)


def cloud(rng, n=3000, half=18.0, intensity=True):
    xyz = rng.uniform([-half, -half, -1.5], [half, half, 2.5], (n, 3))
    cols = [xyz, rng.uniform(0, 255, (n, 1))] if intensity else [xyz]
    return np.concatenate(cols, axis=1).astype(np.float32)


def raw_for(name, rng):
    if name.startswith("lidar"):
        return cloud(rng)
    if name == "radar_points":
        n = 20
        return np.stack([rng.uniform(1, 60, n), rng.uniform(-1, 1, n), rng.normal(0, 5, n),
                         rng.normal(5, 10, n)], axis=1).astype(np.float32)
    return rng.uniform(0, 80, (64, 64)).astype(np.float32)


ALL = ["lidar_pointnet2", "lidar_pillars", "radar_points", "radar_rd_map"]
EXPECTED = {"lidar_pointnet2": (32, None, "lidar"), "lidar_pillars": (256, (16, 16), "lidar"),
            "radar_points": (65, None, "radar"), "radar_rd_map": (64, (8, 8), "radar_rd")}


@pytest.mark.parametrize("name", ALL)
def test_default_shapes_grid_and_modality(name):
    rng = np.random.default_rng(0)
    enc = build(name)
    samples = [enc.preprocess(raw_for(name, rng)) for _ in range(2)]
    for s in samples:
        assert all(v.dtype == np.float32 for v in s.values())
    out = enc(**batch_inputs(samples))
    n_tokens, grid, modality = EXPECTED[name]
    assert out.shape == (2, n_tokens, D)
    assert enc.grid == grid and enc.modality == modality
    if grid is not None:
        assert grid[0] * grid[1] == n_tokens
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_gradient_reaches_every_parameter(name):
    rng = np.random.default_rng(1)
    enc = build(name, SMALL[name])
    if name == "radar_points":
        raw = raw_for(name, rng)
    elif name == "radar_rd_map":
        raw = rng.uniform(0, 80, (32, 16)).astype(np.float32)
    else:
        raw = cloud(rng, half=7.0)
    enc(**batch_inputs([enc.preprocess(raw)])).square().sum().backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name", ALL)
def test_batch_items_are_independent(name):
    rng = np.random.default_rng(9)
    enc = build(name)
    samples = [enc.preprocess(raw_for(name, rng)) for _ in range(3)]
    together = enc(**batch_inputs(samples))
    for i, s in enumerate(samples):
        torch.testing.assert_close(enc(**batch_inputs([s]))[0], together[i], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_deterministic_under_seed(name):
    rng = np.random.default_rng(2)
    raw = raw_for(name, rng)
    a, b = build(name, seed=3), build(name, seed=3)
    x = batch_inputs([a.preprocess(raw)])
    assert all(np.array_equal(u, v) for u, v in zip(a.preprocess(raw).values(), b.preprocess(raw).values()))
    assert torch.equal(a(**x), b(**x))
    assert torch.equal(a(**x), a(**x))


@pytest.mark.parametrize("name, params, field", [
    ("lidar_pointnet2", {"max_points": 0}, "max_points"),
    ("lidar_pointnet2", {"range_m": [1.0, -1.0, -5.0, 5.0, -1.0, 1.0]}, "range_m"),
    ("lidar_pointnet2", {"centroids": [64, 128]}, "centroids"),
    ("lidar_pointnet2", {"radii_m": [0.0, 1.0]}, "radii_m"),
    ("lidar_pointnet2", {"mlp1": []}, "mlp1"),
    ("lidar_pointnet2", {"max_pointz": 5}, "max_pointz"),
    ("lidar_pillars", {"resolution_m": -0.5}, "resolution_m"),
    ("lidar_pillars", {"resolution_m": 0.01}, "resolution_m"),
    ("lidar_pillars", {"y_range": [3.0, 3.0]}, "y_range"),
    ("lidar_pillars", {"max_points_per_pillar": 0}, "max_points_per_pillar"),
    ("radar_points", {"max_targets": 0}, "max_targets"),
    ("radar_points", {"velocity_scale_mps": 0.0}, "velocity_scale_mps"),
    ("radar_rd_map", {"db_min": 10.0, "db_max": 5.0}, "db_min"),
    ("radar_rd_map", {"channels": [16, 0]}, "channels"),
])
def test_invalid_params_name_the_field(name, params, field):
    with pytest.raises(ConfigError, match=field):
        ENCODERS.params(name, params, f"encoders.{name}")


def test_radar_heads_must_divide_d_model():
    with pytest.raises(ValueError, match="num_heads"):
        build("radar_points", {"num_heads": 3}, d_model=32)


# ---------------------------------------------------------------- LiDAR preprocessing

def test_prepare_points_drops_nan_rows_crops_box_and_pads():
    raw = np.array([[1, 2, 0.5, 51], [np.nan, 0, 0, 1], [30, 0, 0, 1], [0, -3, 0.1, np.nan],
                    [-1, 1, 1, 255]], np.float32)
    out = prepare_points(raw, 8, (-10, 10, -10, 10, -2, 2), 255.0)
    assert out["points"].shape == (8, 4) and out["mask"].shape == (8,)
    np.testing.assert_array_equal(out["mask"], [1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(out["points"][:2], [[1, 2, 0.5, 0.2], [-1, 1, 1, 1.0]], rtol=1e-6)
    assert not out["points"][2:].any()
    xyz_only = prepare_points(raw[:, :3], 8, (-10, 10, -10, 10, -2, 2), 255.0)
    assert xyz_only["mask"].sum() == 3 and not xyz_only["points"][:, 3].any()


def test_prepare_points_subsamples_evenly_and_deterministically():
    raw = np.zeros((1000, 3), np.float32)
    raw[:, 0] = np.linspace(-5, 5, 1000)
    a = prepare_points(raw, 100, (-10, 10, -10, 10, -1, 1), 1.0)
    b = prepare_points(raw, 100, (-10, 10, -10, 10, -1, 1), 1.0)
    np.testing.assert_array_equal(a["points"], b["points"])
    assert a["mask"].all()
    assert np.allclose(np.diff(a["points"][:, 0]), 10 / 999 * 10, rtol=1e-3)


@pytest.mark.parametrize("raw, match", [
    (np.full((5, 3), np.nan, np.float32), "all 5 points are NaN"),
    (np.array([[np.inf, 0, 0]], np.float32), "inf"),
    (np.zeros((4, 5), np.float32), r"\(N, 3\) or \(N, 4\)"),
    (np.zeros((0, 3), np.float32), "no points"),
    (np.zeros((4, 3), np.int32), "float"),
])
@pytest.mark.parametrize("name", ["lidar_pointnet2", "lidar_pillars"])
def test_lidar_preprocess_rejects_bad_clouds(name, raw, match):
    with pytest.raises(ValueError, match="lidar points.*" + match):
        build(name).preprocess(raw)


@pytest.mark.parametrize("name", ["lidar_pointnet2", "lidar_pillars"])
def test_lidar_forward_checks_shapes(name):
    enc = build(name, SMALL[name])
    n = SMALL[name]["max_points"]
    with pytest.raises(ValueError, match=rf"points: expected shape \(B, {n}, 4\)"):
        enc(points=torch.zeros(1, n, 3), mask=torch.ones(1, n))
    with pytest.raises(ValueError, match="mask: expected shape"):
        enc(points=torch.zeros(1, n, 4), mask=torch.ones(1, n - 1))


@pytest.mark.parametrize("name", ["lidar_pointnet2", "lidar_pillars"])
def test_lidar_padded_points_are_ignored(name):
    rng = np.random.default_rng(4)
    enc = build(name, SMALL[name])
    x = batch_inputs([enc.preprocess(cloud(rng, n=100, half=7.0))])
    assert x["mask"].sum() < x["mask"].numel()
    ref = enc(**x)
    noisy = x["points"].clone()
    pad = x["mask"] < 0.5
    noisy[pad] = torch.rand(int(pad.sum()), 4) * 6 - 3
    torch.testing.assert_close(enc(points=noisy, mask=x["mask"]), ref)


# ---------------------------------------------------------------- PointNet++

def test_fps_matches_reference_and_skips_padding():
    rng = np.random.default_rng(5)
    xyz = rng.normal(size=(40, 3)).astype(np.float32)
    valid = np.ones(40, bool)
    valid[[0, 3, 17, 31]] = False
    chosen, dist = [int(np.argmax(valid))], np.full(40, np.inf)
    dist[~valid] = -1
    for _ in range(9):
        dist = np.minimum(dist, np.where(valid, ((xyz - xyz[chosen[-1]]) ** 2).sum(1), -1))
        chosen.append(int(np.argmax(dist)))
    idx = farthest_point_sample(torch.from_numpy(xyz)[None], torch.from_numpy(valid)[None], 10)
    assert idx[0].tolist() == chosen and idx[0, 0] == 1
    # Fewer valid points than centroids: the valid ones repeat, padding is never picked.
    few = torch.zeros(1, 40, dtype=torch.bool)
    few[0, [5, 9]] = True
    assert set(farthest_point_sample(torch.from_numpy(xyz)[None], few, 6)[0].tolist()) == {5, 9}


def test_ball_query_radius_order_and_padding():
    xyz = torch.tensor([[[0.0, 0, 0], [0.5, 0, 0], [5.0, 0, 0], [0.2, 0, 0], [0.3, 0, 0]]])
    valid = torch.tensor([[True, True, True, True, False]])
    idx = ball_query(xyz, valid, xyz[:, :1], radius=1.0, k=4)
    assert idx[0, 0].tolist() == [0, 1, 3, 0]  # in index order, padded with the first member
    far = ball_query(xyz, valid, xyz[:, 2:3], radius=1.0, k=3)
    assert far[0, 0].tolist() == [2, 2, 2]


def test_pointnet2_empty_scan_gives_zero_tokens():
    enc = build("lidar_pointnet2")
    inp = enc.preprocess(np.array([[100.0, 0, 0, 1]], np.float32))  # outside range_m
    assert inp["mask"].sum() == 0
    out = enc(**batch_inputs([inp]))
    assert out.shape == (1, 32, D) and not out.any()


def test_pointnet2_tokens_carry_position():
    enc = build("lidar_pointnet2", SMALL["lidar_pointnet2"])
    rng = np.random.default_rng(6)
    base = cloud(rng, n=200, half=3.0)
    shifted = base.copy()
    shifted[:, 0] += 4.0
    a, b = (enc(**batch_inputs([enc.preprocess(c)])) for c in (base, shifted))
    assert not torch.allclose(a, b)


# ---------------------------------------------------------------- pillars

def test_pillars_scatter_x_to_rows_y_to_columns():
    enc = build("lidar_pillars", SMALL["lidar_pillars"])
    seen = {}
    enc.cnn.register_forward_pre_hook(lambda m, args: seen.setdefault("bev", args[0]))
    enc(**batch_inputs([enc.preprocess(np.array([[2.5, -6.5, 0.0, 10.0]], np.float32))]))
    occupancy = seen["bev"][0, -1]
    assert occupancy.shape == (16, 16)
    assert occupancy.nonzero().tolist() == [[10, 1]]  # x 2.5 -> row 10, y -6.5 -> column 1


def test_pillars_cap_points_per_pillar():
    enc = build("lidar_pillars", {**SMALL["lidar_pillars"], "max_points_per_pillar": 4})
    pts = np.tile(np.array([[0.5, 0.5, 0.0, 0.0]], np.float32), (6, 1))
    pts[:, 2] = np.arange(6) * 0.1
    ref = enc(**batch_inputs([enc.preprocess(pts)]))
    late = pts.copy()
    late[4:, 2] = -1.5  # beyond the cap: ignored
    torch.testing.assert_close(enc(**batch_inputs([enc.preprocess(late)])), ref)
    early = pts.copy()
    early[1, 2] = -1.5  # within the cap: used
    assert not torch.allclose(enc(**batch_inputs([enc.preprocess(early)])), ref)


# ---------------------------------------------------------------- radar targets

def test_radar_points_preprocess_converts_to_rep103_xy():
    enc = build("radar_points", {"max_targets": 3})
    raw = np.array([[10.0, math.pi / 2, -1.0, 5.0], [4.0, 0.0, 2.0, -3.0]], np.float32)
    out = enc.preprocess(raw)
    np.testing.assert_allclose(out["targets"][:2], [[0, 10, -1, 5], [4, 0, 2, -3]], atol=1e-5)
    np.testing.assert_array_equal(out["mask"], [1, 1, 0])
    assert not out["targets"][2].any()
    many = np.array([[1, 0, 0, 1], [2, 0, 0, 9], [3, 0, 0, 5], [4, 0, 0, 7]], np.float32)
    kept = enc.preprocess(many)["targets"]
    np.testing.assert_allclose(kept[:, 0], [2, 3, 4])  # strongest three, original order
    assert enc.preprocess(np.zeros((0, 4), np.float32))["mask"].sum() == 0


@pytest.mark.parametrize("raw, match", [
    (np.zeros((3, 3), np.float32), r"radar targets: expected shape \(N, 4\)"),
    (np.array([[1, 0, np.nan, 0]], np.float32), "radar targets: contains NaN"),
    (np.array([[-1, 0, 0, 0]], np.float32), "range"),
])
def test_radar_points_preprocess_rejects_bad_input(raw, match):
    with pytest.raises(ValueError, match=match):
        build("radar_points").preprocess(raw)


def test_radar_points_masking_and_empty_scan():
    rng = np.random.default_rng(7)
    enc = build("radar_points", SMALL["radar_points"])
    x = batch_inputs([enc.preprocess(raw_for("radar_points", rng)[:5]),
                      enc.preprocess(np.zeros((0, 4), np.float32))])
    out = enc(**x)
    assert out.shape == (2, 17, D) and torch.isfinite(out).all()
    assert not out[0, 6:].any() and out[0, 1:6].abs().sum(-1).gt(0).all()
    assert not out[1, 1:].any()
    torch.testing.assert_close(out[1, 0], enc.pool.bias)  # "no detection" token
    noisy = x["targets"].clone()
    noisy[x["mask"] < 0.5] = 50.0
    torch.testing.assert_close(enc(targets=noisy, mask=x["mask"]), out)
    with pytest.raises(ValueError, match=r"targets: expected shape \(B, 16, 4\)"):
        enc(targets=torch.zeros(1, 8, 4), mask=torch.ones(1, 8))


# ---------------------------------------------------------------- range-Doppler map

def test_rd_map_preprocess_normalises_and_checks():
    enc = build("radar_rd_map", SMALL["radar_rd_map"])
    raw = np.full((32, 16), 40.0, np.float32)
    raw[0, 0], raw[1, 1] = -20.0, 200.0
    out = enc.preprocess(raw)["rd_map"]
    assert out.shape == (1, 32, 16) and out.dtype == np.float32
    assert out[0, 0, 0] == 0.0 and out[0, 1, 1] == 1.0 and out[0, 2, 2] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"rd_map: expected shape \(32, 16\)"):
        enc.preprocess(np.zeros((16, 32), np.float32))
    bad = raw.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="rd_map: contains NaN"):
        enc.preprocess(bad)
    with pytest.raises(ValueError, match=r"rd_map: expected shape \(B, 1, 32, 16\)"):
        enc(rd_map=torch.zeros(1, 32, 16))


# ---------------------------------------------------------------- it learns

def _lidar_task(rng, n):
    """A box-shaped obstacle either left (y > 0) or right of the sensor; label = side."""
    xs, ys = [], []
    for _ in range(n):
        side = int(rng.integers(2))
        pts = cloud(rng, n=150, half=7.0)
        pts[:, 2] = -1.0  # ground
        blob = rng.normal([rng.uniform(-4, 4), 4.0 if side else -4.0, 0.5], 0.4, (60, 3))
        xs.append(np.concatenate([pts, np.c_[blob, np.full(60, 200.0)]]).astype(np.float32))
        ys.append(side)
    return xs, torch.tensor(ys, dtype=torch.float32)


def _radar_task(rng, n):
    xs, ys = [], []
    for _ in range(n):
        k = int(rng.integers(1, 8))
        v = rng.normal(0, 5, k)
        xs.append(np.stack([rng.uniform(2, 40, k), rng.uniform(-1, 1, k), v, rng.normal(5, 5, k)], 1)
                  .astype(np.float32))
        ys.append(float(np.mean(v) > 0))
    return xs, torch.tensor(ys)


def _rd_task(rng, n):
    xs, ys = [], []
    for _ in range(n):
        side = int(rng.integers(2))
        m = rng.normal(20, 3, (32, 16))
        r, d = rng.integers(4, 28), (rng.integers(1, 6) if side else rng.integers(10, 15))
        m[r - 1:r + 2, d - 1:d + 2] += 40
        xs.append(m.astype(np.float32))
        ys.append(side)
    return xs, torch.tensor(ys, dtype=torch.float32)


@pytest.mark.parametrize("name, task", [
    ("lidar_pointnet2", _lidar_task), ("lidar_pillars", _lidar_task),
    ("radar_points", _radar_task), ("radar_rd_map", _rd_task)])
def test_it_learns_a_tiny_task(name, task):
    rng = np.random.default_rng(8)
    enc = build(name, SMALL[name])
    readout = torch.nn.Linear(2 * D, 1)  # mean and max over tokens
    raws, labels = task(rng, 32)
    x = batch_inputs([enc.preprocess(r) for r in raws])
    opt = torch.optim.Adam([*enc.parameters(), *readout.parameters()], lr=3e-3)

    def loss_fn():
        tokens = enc(**x)
        logits = readout(torch.cat([tokens.mean(dim=1), tokens.amax(dim=1)], dim=-1)).squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)

    first = loss_fn().item()
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.5 * first
