"""Token fusion modules (msvla_core.models.fusion_lib): shapes, missing modalities, dropout, errors."""
import pytest
import torch

from msvla_core.config import ConfigError
from msvla_core.models import fusion_lib  # noqa: F401  (registers the fusion types)
from msvla_core.models.registry import FUSIONS

torch.set_num_threads(1)

D = 16
TYPES = ["early_concat", "late_average", "late_gated", "late_attention",
         "cross_modal_transformer", "bev", "uncertainty_weighted"]
POOLED = ["late_average", "late_gated", "late_attention", "uncertainty_weighted"]
# Mixed layouts: a fixed token count, two grids of different resolution, a variable count.
LAYOUT = {"cam": 5, "depth": (4, 6), "lidar": (8, 8), "imu": None}
IMU_TOKENS = 3


def build(name, layout=LAYOUT, seed=0, **params):
    torch.manual_seed(seed)
    params.setdefault("modality_dropout", 0.0)
    if name == "cross_modal_transformer":
        params.setdefault("max_tokens_per_modality", 16)
        params.setdefault("heads", 2)
    if name == "bev":
        params.setdefault("grid", (6, 6))
    return FUSIONS.build(name, params, "fusion", d_model=D, modalities=layout)


def make_tokens(batch, layout=LAYOUT, seed=1):
    g = torch.Generator().manual_seed(seed)
    counts = {name: (IMU_TOKENS if spec is None else spec if isinstance(spec, int) else spec[0] * spec[1])
              for name, spec in layout.items()}
    return {name: torch.randn(batch, n, D, generator=g) for name, n in counts.items()}


def expected_tokens(name, layout=LAYOUT):
    if name in POOLED:
        return 1 + len(layout)
    if name == "early_concat":
        return 5 + 24 + 64 + IMU_TOKENS
    if name == "bev":
        return 36
    # transformer, cap 16: cam 5; depth 24 -> 3x4 grid; lidar 64 -> 4x4 grid; imu 3
    return 5 + 12 + 16 + IMU_TOKENS


def test_all_types_registered():
    assert set(TYPES) <= set(FUSIONS.names())


@pytest.mark.parametrize("name", TYPES)
def test_output_shapes_with_mixed_token_counts(name):
    model = build(name).eval()
    tokens = make_tokens(2)
    out = model(tokens)
    assert out.shape == (2, expected_tokens(name), D)
    assert torch.isfinite(out).all()
    assert model.last_presence.shape == (2, 4) and model.last_presence.all()
    # With the fixed-size modalities absent the layout is unchanged (their slots are kept).
    partial = {k: v for k, v in tokens.items() if k in ("imu", "lidar")}
    assert model(partial).shape == out.shape
    assert model.last_presence.tolist() == [[False, False, True, True]] * 2


def test_bev_exposes_its_grid_and_uses_non_grid_modalities():
    model = build("bev").eval()
    assert model.grid == (6, 6)
    tokens = make_tokens(1)
    other = dict(tokens, imu=tokens["imu"] + 1.0)
    assert not torch.allclose(model(tokens), model(other))


def test_bev_needs_a_grid_modality():
    with pytest.raises(ValueError, match="grid"):
        build("bev", layout={"cam": 4, "imu": None})


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("missing", ["cam", "depth", "lidar", "imu"])
def test_absent_key_and_present_false_give_the_same_output(name, missing):
    model = build(name).eval()
    tokens = make_tokens(3)
    present = {missing: torch.tensor([True, False, True])}
    with torch.no_grad():
        full = model(tokens, present)
        assert model.last_presence[:, list(LAYOUT).index(missing)].tolist() == [True, False, True]
        # The real tokens of a sample marked absent must not leak into its output.
        noisy = dict(tokens, **{missing: tokens[missing] + 5 * torch.randn_like(tokens[missing])})
        noisy[missing][0] = tokens[missing][0]
        noisy[missing][2] = tokens[missing][2]
        assert torch.allclose(model(noisy, present), full, atol=1e-5)
        alone = model({k: v[1:2] for k, v in tokens.items() if k != missing})
        reference = model(tokens)
    sample = full[1:2]
    if missing == "imu" and name in ("early_concat", "cross_modal_transformer"):
        # A variable-count modality keeps the batch's slot count; beyond the K missing tokens
        # (K = 1 here) the extra slots are repeats and the shared slots are identical.
        start = expected_tokens(name) - IMU_TOKENS
        sample = torch.cat([sample[:, :start + 1], sample[:, start + IMU_TOKENS:]], 1)
    assert sample.shape == alone.shape
    assert torch.allclose(sample, alone, atol=1e-5)
    assert not torch.allclose(full[1], reference[1], atol=1e-4)  # the substitute is not the data
    assert torch.allclose(full[[0, 2]], reference[[0, 2]], atol=1e-5)  # other samples untouched


def test_several_missing_tokens_fill_the_slots_and_only_the_first_is_attended():
    model = build("cross_modal_transformer", missing_tokens=3).eval()
    tokens = make_tokens(1)
    del tokens["cam"]
    with torch.no_grad():
        out = model(tokens)
        # Random shifts: a constant one would vanish in the layers' LayerNorm.
        model.missing["cam"][1:] += torch.randn(2, D)  # hidden by the key padding mask
        hidden_changed = model(tokens)
        model.missing["cam"][0] += torch.randn(D)  # the one visible missing token
        visible_changed = model(tokens)
    others = slice(5, None)
    assert torch.allclose(out[:, others], hidden_changed[:, others], atol=1e-5)
    assert not torch.allclose(out[:, 1:5], hidden_changed[:, 1:5])
    assert not torch.allclose(out[:, others], visible_changed[:, others], atol=1e-4)


@pytest.mark.parametrize("name", TYPES)
def test_eval_mode_is_deterministic_and_never_drops(name):
    model = build(name, modality_dropout=0.9).eval()
    tokens = make_tokens(8)
    with torch.no_grad():
        first, second = model(tokens), model(tokens)
    assert torch.equal(first, second)
    assert model.last_presence.all()
    again = build(name, modality_dropout=0.9).eval()  # same seed, same weights, same output
    with torch.no_grad():
        assert torch.equal(again(tokens), first)


def test_training_dropout_drops_but_never_every_modality():
    layout = {"a": 2, "b": 1, "c": (2, 2)}
    model = build("late_average", layout=layout, modality_dropout=0.7).train()
    batch = 4000
    tokens = make_tokens(batch, layout)
    torch.manual_seed(3)
    model(tokens)
    kept = model.last_presence
    assert kept.any(1).all()
    dropped = 1 - kept.float().mean().item()
    # 0.7 per entry, minus the one modality given back when all three were drawn (0.7^3 / 3).
    assert 0.55 < dropped < 0.62
    # Dropout only removes modalities that were there; a sample's only sensor is never dropped.
    only_a = torch.zeros(batch, dtype=torch.bool)
    only_a[::2] = True
    model(tokens, {"b": ~only_a, "c": ~only_a})
    kept = model.last_presence
    assert kept[only_a].tolist() == [[True, False, False]] * int(only_a.sum())
    assert kept[~only_a].any(1).all() and not kept[~only_a].all()
    # A sample that came with nothing stays with nothing (substitutes only), rather than failing.
    none = {k: torch.zeros(batch, dtype=torch.bool) for k in layout}
    assert model(tokens, none).shape == (batch, 4, D)
    assert not model.last_presence.any()


@pytest.mark.parametrize("name", TYPES)
def test_dropout_substitutes_exactly_like_present_false(name):
    model = build(name, modality_dropout=0.5).train()
    tokens = make_tokens(6)
    torch.manual_seed(5)
    dropped_out = model(tokens)
    presence = model.last_presence
    assert not presence.all()
    model.eval()
    as_absent = model(tokens, {n: presence[:, i] for i, n in enumerate(LAYOUT)})
    assert torch.allclose(dropped_out, as_absent, atol=1e-5)


@pytest.mark.parametrize("name", TYPES)
def test_gradients_reach_every_parameter_and_the_used_missing_embeddings(name):
    model = build(name).train()
    names = list(LAYOUT)
    tokens = make_tokens(len(names) + 1)
    # Sample i lacks modality i; the last sample has everything.
    present = {n: torch.arange(len(names) + 1) != i for i, n in enumerate(names)}
    out = model(tokens, present)
    (out * torch.randn_like(out)).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    model.zero_grad(set_to_none=True)
    out = model({"imu": tokens["imu"]})  # everything else absent from the dict
    (out * torch.randn_like(out)).sum().backward()
    for n in ("cam", "depth", "lidar"):
        assert model.missing[n].grad is not None and model.missing[n].grad.abs().sum() > 0, n
    assert model.missing["imu"].grad is None  # present everywhere, so never used


@pytest.mark.parametrize("name", POOLED)
def test_combination_weights_cover_only_present_modalities(name):
    model = build(name).eval()
    tokens = make_tokens(2)
    with torch.no_grad():
        model(tokens, {"cam": torch.tensor([False, True]), "imu": torch.tensor([False, True])})
    w = model.last_weights
    assert w.shape == (2, 4)
    assert (w[0, [0, 3]] == 0).all() and (w[0, [1, 2]] > 0).all()
    if name != "late_gated":  # sigmoid gates are independent, not a partition of one
        assert torch.allclose(w.sum(1), torch.ones(2))


def test_uncertainty_weighting_learns_to_trust_the_clean_sensor():
    layout = {"clean": 2, "noisy": 2}
    model = build("uncertainty_weighted", layout=layout)
    readout = torch.nn.Linear(D, 1)
    opt = torch.optim.Adam(list(model.parameters()) + list(readout.parameters()), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(D, generator=g)
    for _ in range(120):
        clean = torch.randn(32, 2, D, generator=g)
        target = clean.mean(1) @ direction
        noisy = clean + 3 * torch.randn(32, 2, D, generator=g)
        out = model({"clean": clean, "noisy": noisy})
        loss = (readout(out[:, 0]).squeeze(1) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.last_weights[:, 0].mean() > 0.7


@pytest.mark.parametrize("name", TYPES)
def test_it_learns_a_small_task(name):
    layout = {"a": 4, "g": (3, 3)}
    model = build(name, layout=layout)
    readout = torch.nn.Linear(D, 1)
    opt = torch.optim.Adam(list(model.parameters()) + list(readout.parameters()), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    direction_a, direction_g = torch.randn(2, D, generator=g)
    tokens = {"a": torch.randn(64, 4, D, generator=g), "g": torch.randn(64, 9, D, generator=g)}
    # Pooled content of both sensors: reachable by every family, including the pooling ones.
    target = 2 * tokens["a"].mean(1) @ direction_a + 3 * tokens["g"].mean(1) @ direction_g

    def loss_fn():
        return (readout(model(tokens).mean(1)).squeeze(1) - target).pow(2).mean()

    first = loss_fn().item()
    for _ in range(40):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.5 * first


@pytest.mark.parametrize("name, params, field", [
    (name, {"modality_dropout": 1.5}, "modality_dropout") for name in TYPES] + [
    ("early_concat", {"missing_tokens": 0}, "missing_tokens"),
    ("late_gated", {"modality_dropout": -0.1}, "modality_dropout"),
    ("cross_modal_transformer", {"layers": 0}, "layers"),
    ("cross_modal_transformer", {"heads": 0}, "heads"),
    ("cross_modal_transformer", {"dropout": 2.0}, "dropout"),
    ("cross_modal_transformer", {"max_tokens_per_modality": 0}, "max_tokens_per_modality"),
    ("bev", {"grid": [0, 4]}, "grid"),
    ("bev", {"conv_layers": 0}, "conv_layers"),
    ("uncertainty_weighted", {"log_var_limit": 0.0}, "log_var_limit"),
    ("late_average", {"projet": False}, "projet"),
])
def test_invalid_params_raise_naming_the_field(name, params, field):
    with pytest.raises(ConfigError, match=field):
        FUSIONS.params(name, params, "fusion")


def test_invalid_construction_arguments_name_the_problem():
    with pytest.raises(ValueError, match="heads"):
        build("cross_modal_transformer", heads=3)  # 3 does not divide 16
    with pytest.raises(ValueError, match="d_model"):
        FUSIONS.build("early_concat", {}, "fusion", d_model=0, modalities=LAYOUT)
    with pytest.raises(ValueError, match="'cam'"):
        build("early_concat", layout={"cam": 0})
    with pytest.raises(ValueError, match="'cam'"):
        build("early_concat", layout={"cam": (4,)})
    with pytest.raises(ValueError, match="modalities"):
        build("early_concat", layout={})


@pytest.mark.parametrize("name", TYPES)
def test_invalid_inputs_raise_naming_the_key(name):
    model = build(name).eval()
    tokens = make_tokens(2)
    with pytest.raises(KeyError, match="'radar'"):
        model(dict(tokens, radar=torch.zeros(2, 3, D)))
    with pytest.raises(KeyError, match="'radar'"):
        model(tokens, {"radar": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"tokens\['cam'\].*\(2, 5, 16\)"):
        model(dict(tokens, cam=torch.zeros(2, 4, D)))
    with pytest.raises(ValueError, match=r"tokens\['lidar'\].*\(2, 64, 16\)"):
        model(dict(tokens, lidar=torch.zeros(2, 63, D)))
    with pytest.raises(ValueError, match=r"tokens\['imu'\]"):
        model(dict(tokens, imu=torch.zeros(2, 3, D + 1)))
    with pytest.raises(ValueError, match=r"tokens\['imu'\]"):
        model(dict(tokens, imu=torch.zeros(3, 3, D)))
    with pytest.raises(ValueError, match=r"present\['cam'\].*bool"):
        model(tokens, {"cam": torch.ones(2)})
    with pytest.raises(ValueError, match=r"present\['cam'\].*\(2,\)"):
        model(tokens, {"cam": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="'cam'"):
        model({k: v for k, v in tokens.items() if k != "cam"}, {"cam": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="batch size"):
        model({})
