"""Action heads and language conditioners: contracts, ranges, losses, gradients, learning."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from msvla_core.config import ConfigError
from msvla_core.models import conditioning  # noqa: F401  (registers the conditioners)
from msvla_core.models import heads_lib  # noqa: F401  (registers the heads)
from msvla_core.models.heads_lib.rotation import (geodesic_angle, matrix_to_quaternion, matrix_to_rotation_6d,
                                                  quaternion_to_matrix, rotate_about_z, rotation_6d_to_matrix)
from msvla_core.models.heads_lib.trajectory import winner_take_all
from msvla_core.models.registry import CONDITIONERS, HEADS

torch.set_num_threads(1)
D, LANG = 32, 24


def head(name, **params):
    return HEADS.build(name, params, "test", d_model=D)


def conditioner(name, **params):
    return CONDITIONERS.build(name, params, "test", d_model=D, language_dim=LANG)


def random_rotations(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return rotation_6d_to_matrix(torch.randn(n, 6, generator=g))


def targets_for(name, b, g):
    if name in ("grasp_direct", "grasp_sampling"):
        return {"position": torch.rand(b, 3, generator=g), "rotation": random_rotations(b, 1),
                "width": 0.08 * torch.rand(b, generator=g), "score": torch.ones(b)}
    if name == "vehicle_control":
        return {"steering": 0.4 * (2 * torch.rand(b, generator=g) - 1), "throttle": torch.rand(b, generator=g),
                "brake": torch.zeros(b)}
    if name == "trajectory":
        return {"waypoints": torch.randn(b, 20, 2, generator=g)}
    if name == "gaussian":
        return {"action": torch.randn(b, 7, generator=g)}
    return {"action": torch.randn(b, 8, 7, generator=g)}


HEAD_NAMES = ["diffusion", "gaussian", "grasp_direct", "grasp_sampling", "trajectory", "vehicle_control"]
COND_NAMES = ["cross_attention", "film", "prefix"]


def test_registered_names():
    assert set(HEAD_NAMES) <= set(HEADS.names())
    assert set(COND_NAMES) <= set(CONDITIONERS.names())


# ---------------------------------------------------------------- rotations

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=6, max_size=6))
def test_6d_gives_a_proper_rotation(values):
    r = rotation_6d_to_matrix(torch.tensor(values, dtype=torch.float32))
    assert torch.allclose(r.T @ r, torch.eye(3), atol=1e-5)
    assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=1e-5)


def test_6d_degenerate_inputs_and_round_trip():
    degenerate = torch.tensor([[0.0] * 6, [1, 0, 0, 3, 0, 0], [0, 0, 0, 0, 1, 0], [1, 2, 3, 2, 4, 6.0]])
    r = rotation_6d_to_matrix(degenerate)
    assert torch.allclose(r.transpose(1, 2) @ r, torch.eye(3).expand(4, 3, 3), atol=1e-5)
    rots = random_rotations(64)
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(rots)), rots, atol=1e-5)
    assert torch.allclose(quaternion_to_matrix(matrix_to_quaternion(rots)), rots, atol=1e-5)
    assert (matrix_to_quaternion(rots)[:, 3] >= 0).all()
    with pytest.raises(ValueError, match="rotation_6d"):
        rotation_6d_to_matrix(torch.zeros(2, 5))


def test_geodesic_angle_zero_pi_and_known_angles():
    rots = random_rotations(32)
    assert geodesic_angle(rots, rots).abs().max().item() < 1e-4
    assert torch.allclose(geodesic_angle(rots, rotate_about_z(rots, math.pi)), torch.full((32,), math.pi), atol=1e-4)
    for angle in (0.1, 1.0, 2.5):
        assert torch.allclose(geodesic_angle(rots, rotate_about_z(rots, angle)), torch.full((32,), angle), atol=1e-4)
    a = rots.clone().requires_grad_(True)
    geodesic_angle(a, rots).sum().backward()
    assert torch.isfinite(a.grad).all()


# ---------------------------------------------------------------- params and inputs

@pytest.mark.parametrize("registry,name,params,field", [
    (HEADS, "grasp_direct", {"max_width": -0.1}, "max_width"),
    (HEADS, "grasp_direct", {"workspace": [[0.5, 0, 0], [0.2, 1, 1]]}, "workspace.x"),
    (HEADS, "grasp_direct", {"rotation_weight": -1.0}, "rotation_weight"),
    (HEADS, "grasp_sampling", {"num_candidates": 0}, "num_candidates"),
    (HEADS, "vehicle_control", {"max_steering_rad": 2.0}, "max_steering_rad"),
    (HEADS, "trajectory", {"horizon": 0}, "horizon"),
    (HEADS, "gaussian", {"log_std_min": 3.0}, "log_std_min"),
    (HEADS, "diffusion", {"steps": 0}, "steps"),
    (HEADS, "diffusion", {"max_beta": 1.0}, "max_beta"),
    (CONDITIONERS, "cross_attention", {"layers": 0}, "layers"),
    (CONDITIONERS, "prefix", {"prefix_tokens": 0}, "prefix_tokens"),
    (CONDITIONERS, "prefix", {"dropout": 1.5}, "dropout"),
    (CONDITIONERS, "film", {"hidden": -3}, "hidden"),
])
def test_invalid_params_name_the_field(registry, name, params, field):
    with pytest.raises(ValueError, match=field):
        registry.params(name, params, "test")


def test_unknown_or_mistyped_params_are_config_errors():
    with pytest.raises(ConfigError, match="num_candidate"):
        HEADS.params("grasp_sampling", {"num_candidate": 3}, "test")
    with pytest.raises(ConfigError, match="horizon"):
        HEADS.params("trajectory", {"horizon": "long"}, "test")
    with pytest.raises(ValueError, match="heads=5"):
        conditioner("cross_attention", heads=5)
    with pytest.raises(ValueError, match="heads=3"):
        head("grasp_sampling", heads=3)


@pytest.mark.parametrize("name", HEAD_NAMES)
def test_heads_reject_wrong_token_shapes(name):
    h = head(name)
    with pytest.raises(ValueError, match=rf"\(B, N>=1, {D}\)"):
        h(torch.randn(2, 5, D + 1))
    with pytest.raises(ValueError, match="tokens"):
        h(torch.randn(5, D))


def test_head_loss_rejects_bad_targets():
    h = head("grasp_direct")
    out = h(torch.randn(2, 3, D))
    with pytest.raises(ValueError, match=r"'position' must have shape \(2, 3\)"):
        h.loss(out, {"position": torch.zeros(2, 2), "rotation": torch.eye(3).expand(2, 3, 3), "width": torch.zeros(2)})
    with pytest.raises(KeyError, match="quaternion"):
        h.loss(out, {"position": torch.zeros(2, 3), "width": torch.zeros(2)})
    v = head("vehicle_control")
    with pytest.raises(ValueError, match="throttle"):
        v.loss(v(torch.randn(2, 3, D)), {"steering": torch.zeros(2), "throttle": torch.full((2,), 1.5),
                                         "brake": torch.zeros(2)})


# ---------------------------------------------------------------- every head: gradients, determinism

@pytest.mark.parametrize("name", HEAD_NAMES)
def test_backward_reaches_every_parameter_and_the_tokens(name):
    torch.manual_seed(0)
    h = head(name).train()
    tokens = torch.randn(4, 6, D, requires_grad=True)
    losses = h.loss(h(tokens), targets_for(name, 4, torch.Generator().manual_seed(1)))
    assert torch.isfinite(losses["total"]) and losses["total"].dim() == 0
    losses["total"].backward()
    for pname, p in h.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname
    assert tokens.grad.abs().sum() > 0


@pytest.mark.parametrize("name", HEAD_NAMES)
def test_same_seed_same_head(name):
    x = torch.randn(2, 4, D)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(head(name).eval()(x))
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key]), key


# ---------------------------------------------------------------- grasp heads

def test_grasp_direct_ranges_and_workspace_bound():
    box = [[0.25, -0.35, 0.0], [0.8, 0.35, 0.45]]
    h = head("grasp_direct", workspace=box, max_width=0.06)
    x = torch.cat([torch.randn(3, 5, D), 1e6 * torch.randn(3, 5, D), -1e6 * torch.ones(2, 5, D)])
    out = h(x)
    lo, hi = torch.tensor(box[0]), torch.tensor(box[1])
    assert ((out["position"] >= lo) & (out["position"] <= hi)).all()
    assert ((out["width"] >= 0) & (out["width"] <= 0.06)).all()
    assert ((out["score"] >= 0) & (out["score"] <= 1)).all()
    r = out["rotation"]
    assert torch.allclose(r.transpose(1, 2) @ r, torch.eye(3).expand_as(r), atol=1e-5)
    assert torch.allclose(quaternion_to_matrix(out["quaternion"]), r, atol=1e-5)


def test_grasp_rotation_loss_respects_gripper_symmetry():
    rots = random_rotations(4)
    outputs = {"position": torch.zeros(4, 3), "rotation": rots, "width": torch.full((4,), 0.04),
               "score_logit": torch.zeros(4)}
    tgt = {"position": torch.zeros(4, 3), "rotation": rotate_about_z(rots, math.pi), "width": torch.full((4,), 0.04)}
    assert head("grasp_direct").loss(outputs, tgt)["rotation"].item() < 1e-4
    assert head("grasp_direct", symmetric=False).loss(outputs, tgt)["rotation"].item() == pytest.approx(math.pi, abs=1e-4)
    quat = {**tgt, "quaternion": matrix_to_quaternion(tgt.pop("rotation"))}
    assert head("grasp_direct").loss(outputs, quat)["rotation"].item() < 1e-3


def test_grasp_sampling_winner_takes_all():
    h = head("grasp_sampling", num_candidates=3)
    rot = torch.eye(3).expand(1, 3, 3, 3).clone()
    outputs = {"candidate_position": torch.tensor([[[0.5, 0.0, 0.1], [0.3, 0.2, 0.1], [0.9, 0.9, 0.9]]]),
               "candidate_rotation": rot, "candidate_width": torch.full((1, 3), 0.05),
               "score_logits": torch.tensor([[2.0, 0.0, 0.0]])}
    tgt = {"position": torch.tensor([[0.31, 0.2, 0.1]]), "rotation": torch.eye(3)[None], "width": torch.tensor([0.05])}
    losses = h.loss(outputs, tgt)
    assert losses["position"].item() == pytest.approx(0.01 / 3, abs=1e-6)  # candidate 1's error only
    expected_ce = -torch.log_softmax(outputs["score_logits"], -1)[0, 1]
    assert losses["score"].item() == pytest.approx(expected_ce.item(), abs=1e-6)
    out = h(torch.randn(2, 5, D))
    assert out["candidate_position"].shape == (2, 3, 3) and out["scores"].shape == (2, 3)
    assert torch.allclose(out["scores"].sum(-1), torch.ones(2))
    for b in range(2):
        i = out["scores"][b].argmax()
        assert torch.equal(out["position"][b], out["candidate_position"][b, i])
        assert out["score"][b] == out["scores"][b, i]


def train(h, make_batch, steps, lr=3e-3, extra=()):
    opt = torch.optim.Adam(list(h.parameters()) + list(extra), lr=lr)
    history = []
    for step in range(steps):
        tokens, tgt = make_batch(step)
        loss = h.loss(h(tokens), tgt)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    return history


def two_class_tokens(labels):
    """Tokens whose content says which of two classes a sample is (the task a head must read)."""
    g = torch.Generator().manual_seed(0)
    protos = torch.randn(2, 4, D, generator=g)
    return protos[labels] + 0.05 * torch.randn(len(labels), 4, D)


@pytest.mark.parametrize("name", ["grasp_direct", "grasp_sampling"])
def test_grasp_heads_learn_class_dependent_grasps(name):
    torch.manual_seed(0)
    h = head(name, hidden=64)
    pos = torch.tensor([[0.4, 0.1, 0.05], [0.6, -0.2, 0.2]])
    rot = random_rotations(2, seed=5)
    width = torch.tensor([0.02, 0.07])

    def batch(step):
        labels = torch.randint(0, 2, (32,))
        return two_class_tokens(labels), {"position": pos[labels], "rotation": rot[labels], "width": width[labels]}

    history = train(h, batch, 120)
    assert sum(history[-10:]) / 10 < 0.3 * sum(history[:10]) / 10
    h.eval()
    out = h(two_class_tokens(torch.tensor([0, 1])))
    assert (out["position"] - pos).norm(dim=-1).max() < 0.05
    # symmetric gripper (the default): either of the two equivalent rotations is right
    error = torch.minimum(geodesic_angle(out["rotation"], rot),
                          geodesic_angle(out["rotation"], rotate_about_z(rot, math.pi)))
    assert error.max() < 0.3


# ---------------------------------------------------------------- vehicle

def test_vehicle_outputs_stay_in_range_for_extreme_inputs():
    torch.manual_seed(0)
    for limit in (0.5, 0.2):
        h = head("vehicle_control", max_steering_rad=limit)
        x = torch.cat([1e8 * torch.randn(8, 3, D), -1e8 * torch.ones(1, 3, D), torch.zeros(1, 3, D)])
        with torch.no_grad():  # push the raw outputs to saturation too
            h.body[-1].weight.mul_(1e4)
        out = h(x)
        for key in ("steering", "throttle", "brake"):
            assert torch.isfinite(out[key]).all(), key
        assert (out["steering"].abs() <= limit).all()
        assert ((out["throttle"] >= 0) & (out["throttle"] <= 1)).all()
        assert ((out["brake"] >= 0) & (out["brake"] <= 1)).all()
    assert head("vehicle_control").params.max_steering_rad == 0.5


def test_vehicle_head_learns_controls():
    torch.manual_seed(0)
    h = head("vehicle_control")
    steer, throttle, brake = torch.tensor([0.3, -0.2]), torch.tensor([0.8, 0.0]), torch.tensor([0.0, 1.0])

    def batch(step):
        labels = torch.randint(0, 2, (32,))
        return two_class_tokens(labels), {"steering": steer[labels], "throttle": throttle[labels], "brake": brake[labels]}

    history = train(h, batch, 100)
    assert sum(history[-10:]) < 0.3 * sum(history[:10])
    out = h.eval()(two_class_tokens(torch.tensor([0, 1])))
    assert torch.allclose(out["steering"], steer, atol=0.05)
    assert out["brake"][1] > 0.8 and out["throttle"][0] > 0.6


# ---------------------------------------------------------------- trajectory

def test_winner_take_all_picks_the_closest_mode():
    target = torch.stack([torch.linspace(0, 10, 5), torch.zeros(5)], -1)[None]  # straight ahead
    modes = torch.stack([target[0] + torch.tensor([0.0, 3.0]), target[0] + torch.tensor([0.0, 0.5]),
                         target[0] * -1])[None]
    ade, winner = winner_take_all(modes, target)
    assert winner.item() == 1
    assert ade[0].tolist() == pytest.approx([3.0, 0.5, 2 * target[0].norm(dim=-1).mean().item()], abs=1e-4)
    h = head("trajectory", num_modes=3, horizon=5, wta_relax=0.0)
    outputs = {"trajectories": modes, "confidence_logits": torch.zeros(1, 3)}
    losses = h.loss(outputs, {"waypoints": target})
    assert losses["ade"].item() == pytest.approx(0.5, abs=1e-4)
    assert losses["confidence"].item() == pytest.approx(math.log(3), abs=1e-5)
    assert losses["fde"].item() == pytest.approx(0.5, abs=1e-4)


def test_trajectory_valid_mask_ignores_unrecorded_waypoints():
    h = head("trajectory", num_modes=2, horizon=4)
    out = h(torch.randn(2, 3, D))
    wp = torch.randn(2, 4, 2)
    valid = torch.tensor([[True, True, False, False], [True, True, True, True]])
    far = wp.clone()
    far[0, 2:] = 1e4
    a = h.loss(out, {"waypoints": wp, "valid": valid})
    b = h.loss(out, {"waypoints": far, "valid": valid})
    assert a["total"].item() == pytest.approx(b["total"].item(), rel=1e-6)
    best = out["confidences"].argmax(-1)
    assert torch.equal(out["trajectory"], out["trajectories"][torch.arange(2), best])
    assert torch.allclose(out["confidences"].sum(-1), torch.ones(2))


def test_trajectory_head_learns_two_futures_from_ambiguous_input():
    torch.manual_seed(0)
    h = head("trajectory", num_modes=3, horizon=6)
    t = torch.linspace(1, 6, 6)
    left, right = torch.stack([t, 0.3 * t], -1), torch.stack([t, -0.3 * t], -1)
    tokens = two_class_tokens(torch.zeros(32, dtype=torch.long))  # same scene, two demonstrated futures

    def batch(step):
        pick = torch.rand(32) < 0.5
        return tokens, {"waypoints": torch.where(pick[:, None, None], left, right)}

    train(h, batch, 150)
    out = h(tokens[:1])
    modes = out["trajectories"][0]
    for future in (left, right):  # one mode per future, not one average through the middle
        i = (modes - future).norm(dim=-1).mean(-1).argmin()
        assert (modes[i] - future).norm(dim=-1).mean() < 0.3
        assert out["confidences"][0, i].item() == pytest.approx(0.5, abs=0.15)  # each future half the time


# ---------------------------------------------------------------- gaussian

def test_gaussian_bounds_sampling_and_nll():
    h = head("gaussian", action_dim=3, log_std_min=-3.0, log_std_max=1.0)
    out = h(torch.cat([1e6 * torch.randn(4, 2, D), torch.randn(2, 2, D)]))
    assert ((out["log_std"] >= -3.0) & (out["log_std"] <= 1.0)).all()
    a = h.sample(out, torch.Generator().manual_seed(7))
    assert torch.equal(a, h.sample(out, torch.Generator().manual_seed(7)))
    assert a.shape == (6, 3)
    action = torch.randn(6, 3)
    ref = -torch.distributions.Normal(out["mean"], out["log_std"].exp()).log_prob(action).sum(-1).mean()
    assert h.loss(out, {"action": action})["nll"].item() == pytest.approx(ref.item(), rel=1e-5)
    h.sample(out).sum().backward()  # reparameterised: gradients reach the head
    assert all(p.grad is not None for p in h.parameters())
    shared = head("gaussian", action_dim=3, state_independent_std=True)
    assert shared(torch.randn(2, 2, D))["log_std"].std(0).max() == 0


def test_gaussian_head_learns():
    torch.manual_seed(0)
    h = head("gaussian", action_dim=2)
    means = torch.tensor([[1.0, -1.0], [-0.5, 0.5]])

    def batch(step):
        labels = torch.randint(0, 2, (64,))
        return two_class_tokens(labels), {"action": means[labels] + 0.1 * torch.randn(64, 2)}

    history = train(h, batch, 150)
    assert history[-1] < history[0] - 2.0
    out = h.eval()(two_class_tokens(torch.tensor([0, 1])))
    assert torch.allclose(out["mean"], means, atol=0.15)
    assert (out["log_std"] < -1.0).all()


# ---------------------------------------------------------------- diffusion

def test_diffusion_train_and_eval_outputs_and_seeded_sampling():
    torch.manual_seed(0)
    h = head("diffusion", action_dim=3, horizon=4)
    x = torch.randn(2, 5, D)
    assert set(h.train()(x)) == {"condition"}
    h.eval()
    a, b = h(x)["action"], h(x)["action"]
    assert a.shape == (2, 4, 3) and torch.equal(a, b)
    h.params.seed = 1
    assert not torch.equal(a, h(x)["action"])
    loss = h.loss({"condition": h.condition(h.pool(x))}, {"action": torch.randn(2, 4, 3)})
    assert set(loss) == {"noise", "total"}


def test_diffusion_learns_a_2d_toy_target():
    torch.manual_seed(0)
    h = head("diffusion", action_dim=2, horizon=1, hidden=64)
    goals = torch.tensor([[0.5, -0.5], [-0.6, 0.4]])

    def batch(step):
        labels = torch.randint(0, 2, (128,))
        return two_class_tokens(labels), {"action": goals[labels]}  # (B, 2): horizon 1 may omit the axis

    history = train(h, batch, 400, lr=3e-3)
    assert sum(history[-20:]) < 0.3 * sum(history[:20])
    h.eval()
    with torch.no_grad():
        samples = h(two_class_tokens(torch.tensor([0] * 16 + [1] * 16)))["action"][:, 0]
    assert (samples[:16] - goals[0]).norm(dim=-1).median() < 0.15
    assert (samples[16:] - goals[1]).norm(dim=-1).median() < 0.15


# ---------------------------------------------------------------- conditioners

def instruction(b=2, length=5, valid=(5, 3)):
    words = torch.randn(b, length, LANG)
    mask = torch.arange(length)[None] < torch.tensor(valid)[:, None]
    return words, mask


@pytest.mark.parametrize("name,extra", [("cross_attention", 0), ("film", 0), ("prefix", 4)])
def test_conditioner_shapes_and_masking(name, extra):
    torch.manual_seed(0)
    c = conditioner(name).eval()
    fused = torch.randn(2, 7, D)
    words, mask = instruction()
    out = c(fused, words, mask)
    assert out.shape == (2, 7 + extra, D)
    noisy = words.clone()
    noisy[~mask] = 100.0  # padded positions must not matter
    assert torch.allclose(c(fused, noisy, mask), out, atol=1e-5)
    assert not torch.allclose(c(fused, torch.randn_like(words), mask), out, atol=1e-3)
    empty = c(fused, words, torch.zeros_like(mask))
    assert torch.isfinite(empty).all()
    full = torch.ones_like(mask)
    assert torch.allclose(c(fused, words, None), c(fused, words, full))
    single = c(fused, torch.randn(2, 1, LANG), torch.ones(2, 1, dtype=torch.bool))  # pooled MiniLM style
    assert single.shape == out.shape


@pytest.mark.parametrize("name", COND_NAMES)
def test_conditioner_input_errors_name_the_input(name):
    c = conditioner(name)
    words, mask = instruction()
    with pytest.raises(ValueError, match="fused"):
        c(torch.randn(2, 7, D + 1), words, mask)
    with pytest.raises(ValueError, match=f"instruction must have shape \\(2, L, {LANG}\\)"):
        c(torch.randn(2, 7, D), torch.randn(2, 5, LANG + 1), mask)
    with pytest.raises(ValueError, match="instruction_mask"):
        c(torch.randn(2, 7, D), words, mask[:, :3])


@pytest.mark.parametrize("name", COND_NAMES)
def test_conditioner_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    c = conditioner(name, **({"layers": 2} if name != "film" else {}))
    fused = torch.randn(2, 7, D, requires_grad=True)
    words, mask = instruction()
    words.requires_grad_(True)
    (c(fused, words, mask) ** 2).mean().backward()
    for pname, p in c.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    assert fused.grad.abs().sum() > 0 and words.grad.abs().sum() > 0


@pytest.mark.parametrize("name", COND_NAMES)
def test_conditioned_head_learns_to_follow_the_instruction(name):
    """Two objects in every scene; the instruction says which one's value to output."""
    torch.manual_seed(0)
    c = conditioner(name)
    h = head("gaussian", action_dim=1, state_independent_std=True)
    g = torch.Generator().manual_seed(1)
    names = torch.randn(2, 3, LANG, generator=g)  # the two instructions, three tokens each
    obj_keys = torch.randn(2, D, generator=g)
    value_dir = torch.randn(D, generator=g)

    def run(b):
        values = torch.rand(b, 2) * 2 - 1
        fused = obj_keys[None] + values[..., None] * value_dir  # token k carries object k's value
        which = torch.randint(0, 2, (b,))
        out = h(c(fused, names[which], torch.ones(b, 3, dtype=torch.bool)))
        return h.loss(out, {"action": values[torch.arange(b), which][:, None]}), out

    opt = torch.optim.Adam(list(c.parameters()) + list(h.parameters()), lr=3e-3)
    mse = []
    for _ in range(150):
        loss, _ = run(64)
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
        mse.append(loss["mse"].item())
    assert sum(mse[-10:]) / 10 < 0.3 * sum(mse[:10]) / 10
