"""RGB and depth encoders of the multi-sensor family: rgb_cnn, rgb_hf_vision, depth_cnn, depth_vit."""
import json

import numpy as np
import pytest
import torch

import msvla_core.models.encoders_lib  # noqa: F401  (registers the encoders)
from msvla_core.config import ConfigError
from msvla_core.geometry import CameraModel
from msvla_core.models.config import GraspModelConfig
from msvla_core.models.registry import ENCODERS, batch_inputs
from msvla_core.preprocessing import prepare_depth, prepare_rgb

torch.set_num_threads(1)

TINY_SIGLIP = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
               "num_attention_heads": 2, "patch_size": 16, "image_size": 64}
SMALL = {  # small variants keep the learning checks fast
    "rgb_cnn": {"image_size": [32, 32], "channels": [8, 16, 16], "extra_blocks": 0},
    "depth_cnn": {"image_size": [32, 32], "channels": [8, 16, 16], "extra_blocks": 0},
    "depth_vit": {"image_size": [32, 32], "patch_size": 8, "width": 32, "layers": 1, "heads": 2},
    "rgb_hf_vision": {"config": TINY_SIGLIP},
}


def build(name, params=None, d_model=32, seed=0):
    torch.manual_seed(seed)
    return ENCODERS.build(name, params, "test", d_model=d_model)


def rgb_image(h=96, w=120, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def depth_image(h=96, w=120, seed=0):
    d = np.random.default_rng(seed).uniform(0.5, 2.5, (h, w)).astype(np.float32)
    d[10:20, 30:40] = np.nan
    d[50:55, :] = 0.0
    return d


def raw_for(name, **kw):
    return rgb_image(**kw) if name.startswith("rgb") else depth_image(**kw)


@pytest.mark.parametrize("name,key,modality,tokens,grid", [
    ("rgb_cnn", "image", "rgb", 256, (16, 16)),
    ("rgb_hf_vision", "image", "rgb", 64, (8, 8)),
    ("depth_cnn", "depth", "depth", 256, (16, 16)),
    ("depth_vit", "depth", "depth", 64, (8, 8)),
])
def test_defaults_preprocess_and_token_shapes(name, key, modality, tokens, grid):
    enc = build(name)
    assert enc.modality == modality and enc.type_name == name
    sample = enc.preprocess(raw_for(name))
    assert set(sample) == {key}
    channels = 3 if modality == "rgb" else 2
    assert sample[key].shape == (channels, 128, 128) and sample[key].dtype == np.float32
    out = enc(**batch_inputs([sample, enc.preprocess(raw_for(name, seed=1))]))
    assert out.shape == (2, tokens, 32) and torch.isfinite(out).all()
    assert enc.grid == grid and grid[0] * grid[1] == tokens


def test_rgb_cnn_stride_16_and_learned_positions():
    enc = build("rgb_cnn", {"image_size": [64, 96], "channels": [8, 16, 32, 32],
                            "pos_embedding": "learned"})
    assert enc.grid == (4, 6)
    assert enc(image=torch.zeros(1, 3, 64, 96)).shape == (1, 24, 32)
    assert any(n.endswith("pos.table") for n, _ in enc.named_parameters())


def test_rgb_preprocess_matches_prepare_rgb():
    raw = rgb_image()
    expected = prepare_rgb(raw, GraspModelConfig())  # the default 128 x 128 input
    np.testing.assert_array_equal(build("rgb_cnn").preprocess(raw)["image"], expected)


def test_depth_preprocess_matches_prepare_depth_and_marks_holes():
    raw = np.full((128, 128), 1.5, np.float32)
    raw[40:44, 60:70] = np.nan
    raw[100:102, :] = 0.0
    raw[0, 0] = np.inf
    raw[5, 5] = 7.0  # beyond max_m
    out = build("depth_cnn").preprocess(raw)["depth"]
    camera = CameraModel(120.0, 120.0, 63.5, 63.5, 128, 128)
    expected, _ = prepare_depth(raw, camera, np.eye(4), GraspModelConfig())
    np.testing.assert_allclose(out, expected, atol=1e-6)
    holes = ~(np.isfinite(raw) & (raw >= 0.1) & (raw <= 3.0))
    np.testing.assert_array_equal(out[1], (~holes).astype(np.float32))
    # Holes inside a flat surface are filled with its depth.
    np.testing.assert_allclose(out[0], (1.5 - 0.1) / 2.9, atol=1e-6)


@pytest.mark.parametrize("name", ["depth_cnn", "depth_vit"])
def test_depth_preprocess_rejects_bad_inputs(name):
    enc = build(name)
    with pytest.raises(ValueError, match="depth"):
        enc.preprocess(np.full((64, 64), np.nan, np.float32))
    with pytest.raises(ValueError, match="depth"):
        enc.preprocess(np.zeros((64, 64), np.float32))
    with pytest.raises(ValueError, match="float metres"):
        enc.preprocess(np.full((64, 64), 1000, np.uint16))
    with pytest.raises(ValueError, match="2-D"):
        enc.preprocess(np.ones((64, 64, 1), np.float32))
    mostly_holes = np.full((64, 64), np.nan, np.float32)
    mostly_holes[:4] = 1.0
    with pytest.raises(ValueError, match="max_invalid_fraction"):
        enc.preprocess(mostly_holes)
    lenient = build(name, {"max_invalid_fraction": 1.0})
    assert lenient.preprocess(mostly_holes)["depth"].shape == (2, 128, 128)


@pytest.mark.parametrize("name", ["rgb_cnn", "rgb_hf_vision"])
def test_rgb_preprocess_rejects_bad_inputs(name):
    enc = build(name)
    for bad in (np.zeros((32, 32, 3), np.float32), np.zeros((32, 32), np.uint8), [[1, 2, 3]]):
        with pytest.raises(ValueError, match="RGB image"):
            enc.preprocess(bad)


@pytest.mark.parametrize("name,key,shape", [
    ("rgb_cnn", "image", (3, 128, 128)), ("rgb_hf_vision", "image", (3, 128, 128)),
    ("depth_cnn", "depth", (2, 128, 128)), ("depth_vit", "depth", (2, 128, 128)),
])
def test_forward_rejects_wrong_shapes_naming_key_and_shape(name, key, shape):
    enc = build(name)
    expected = r"\(B, " + ", ".join(map(str, shape)) + r"\)"
    with pytest.raises(ValueError, match=rf"'{key}'.*{expected}"):
        enc(**{key: torch.zeros(1, shape[0], 64, 64)})
    with pytest.raises(ValueError, match=rf"'{key}'.*{expected}"):
        enc(**{key: torch.zeros(shape)})
    with pytest.raises(ValueError, match="floating"):
        enc(**{key: torch.zeros((1, *shape), dtype=torch.uint8)})


@pytest.mark.parametrize("name,params,field", [
    ("rgb_cnn", {"channels": [8, 16]}, "channels"),
    ("rgb_cnn", {"image_size": [100, 128]}, "image_size"),
    ("rgb_cnn", {"extra_blocks": -1}, "extra_blocks"),
    ("rgb_cnn", {"pos_embedding": "rope"}, "pos_embedding"),
    ("rgb_cnn", {"chanels": [8, 16, 32]}, "chanels"),
    ("depth_cnn", {"min_m": 2.0, "max_m": 1.0}, "min_m"),
    ("depth_cnn", {"fill_kernel": 4}, "fill_kernel"),
    ("depth_cnn", {"max_invalid_fraction": 1.5}, "max_invalid_fraction"),
    ("depth_vit", {"width": 30, "heads": 4}, "width"),
    ("depth_vit", {"image_size": [120, 128]}, "image_size"),
    ("depth_vit", {"dropout": 1.0}, "dropout"),
    ("rgb_hf_vision", {"family": "dino"}, "family"),
    ("rgb_hf_vision", {"path": "/x", "config": TINY_SIGLIP}, "config"),
])
def test_invalid_params_name_the_field(name, params, field):
    with pytest.raises(ConfigError, match=field):
        build(name, params)


def test_invalid_build_arguments_name_the_problem():
    with pytest.raises(ValueError, match="d_model"):
        build("rgb_cnn", d_model=30)
    with pytest.raises(ValueError, match="hiden_size"):
        build("rgb_hf_vision", {"config": {"hiden_size": 64}})
    with pytest.raises(ValueError, match="image_size"):
        build("rgb_hf_vision", {"config": TINY_SIGLIP, "image_size": [72, 64]})


@pytest.mark.parametrize("name", list(SMALL))
def test_deterministic_under_a_seed(name):
    a, b = build(name, SMALL[name], seed=3), build(name, SMALL[name], seed=3)
    x = batch_inputs([a.preprocess(raw_for(name))])
    with torch.no_grad():
        assert torch.equal(a.eval()(**x), b.eval()(**x))
        assert not torch.equal(a(**x), build(name, SMALL[name], seed=4).eval()(**x))


@pytest.mark.parametrize("name", list(SMALL))
def test_gradient_reaches_every_trainable_parameter(name):
    params = dict(SMALL[name])
    if name != "rgb_hf_vision":
        params["pos_embedding"] = "learned"
    enc = build(name, params).train()
    x = batch_inputs([enc.preprocess(raw_for(name, seed=s)) for s in range(2)])
    out = enc(**x)
    (out * torch.randn(out.shape)).sum().backward()
    missing = [n for n, p in enc.named_parameters()
               if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing


def _square_images(n, rng, size=32):
    """Grey images with a bright square left (label 0) or right (label 1) of centre."""
    images, labels = [], []
    for _ in range(n):
        img = np.full((size, size, 3), 60, np.uint8)
        right = int(rng.integers(0, 2))
        y = int(rng.integers(0, size - 8))
        x = int(rng.integers(size // 2, size - 8)) if right else int(rng.integers(0, size // 2 - 8))
        img[y:y + 8, x:x + 8] = 230
        images.append(img)
        labels.append(float(right))
    return images, torch.tensor(labels)


def _plane_depths(n, rng, size=32):
    """Tilted planes with holes; the target is the mean depth in metres."""
    depths, targets = [], []
    for _ in range(n):
        base, tilt = rng.uniform(0.5, 2.5), rng.uniform(-0.3, 0.3)
        d = (base + tilt * np.linspace(-1, 1, size)[None, :] * np.ones((size, 1))).astype(np.float32)
        d[rng.random((size, size)) < 0.1] = np.nan
        depths.append(d)
        targets.append(float(np.nanmean(d)))
    return depths, torch.tensor(targets)


@pytest.mark.parametrize("name", list(SMALL))
def test_it_learns_a_tiny_task(name):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    enc = build(name, SMALL[name], d_model=16).train()
    if name.startswith("rgb"):
        raws, target = _square_images(16, rng)
    else:
        raws, target = _plane_depths(16, rng)
    x = batch_inputs([enc.preprocess(r) for r in raws])
    readout = torch.nn.Linear(enc.grid[0] * enc.grid[1] * 16, 1)
    opt = torch.optim.Adam([*enc.parameters(), *readout.parameters()], lr=3e-3)

    def loss_fn():
        pred = readout(enc(**x).flatten(1)).squeeze(1)
        if name.startswith("rgb"):
            return torch.nn.functional.binary_cross_entropy_with_logits(pred, target)
        return torch.nn.functional.mse_loss(pred, target)

    first = loss_fn().item()
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.3 * first


@pytest.mark.parametrize("family", ["siglip", "clip"])
def test_hf_vision_loads_a_saved_tower_from_a_local_directory(tmp_path, family):
    from transformers import CLIPVisionConfig, CLIPVisionModel, SiglipVisionConfig, SiglipVisionModel
    config_cls, model_cls = {"siglip": (SiglipVisionConfig, SiglipVisionModel),
                             "clip": (CLIPVisionConfig, CLIPVisionModel)}[family]
    torch.manual_seed(1)
    saved = model_cls(config_cls(**TINY_SIGLIP)).eval()
    saved.save_pretrained(tmp_path)
    enc = build("rgb_hf_vision", {"family": family, "path": str(tmp_path)}).eval()
    assert enc.grid == (4, 4)
    loaded = enc.tower.state_dict()
    for key, value in saved.state_dict().items():
        if key in loaded:
            assert torch.equal(loaded[key], value), key
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        hidden = saved(pixel_values=image).last_hidden_state
        hidden = hidden[:, 1:] if family == "clip" else hidden  # CLIP's CLS token is dropped
        assert torch.allclose(enc(image=image), enc.proj(hidden), atol=1e-5)


def test_hf_vision_missing_directory_names_it(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        build("rgb_hf_vision", {"path": str(missing)})


def test_hf_vision_normalises_with_the_tower_statistics(tmp_path):
    raw = rgb_image(64, 64)
    expected = (raw.astype(np.float32) / 255.0 - 0.5) / 0.5
    siglip = build("rgb_hf_vision", {"config": TINY_SIGLIP}).preprocess(raw)["image"]
    np.testing.assert_allclose(siglip, expected.transpose(2, 0, 1), atol=1e-5)
    # A checkpoint's preprocessor_config.json wins over the family defaults.
    from transformers import SiglipVisionConfig, SiglipVisionModel
    SiglipVisionModel(SiglipVisionConfig(**TINY_SIGLIP)).save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.2, 0.3, 0.4], "image_std": [0.1, 0.2, 0.3]}))
    custom = build("rgb_hf_vision", {"path": str(tmp_path)}).preprocess(raw)["image"]
    mean, std = np.array([0.2, 0.3, 0.4], np.float32), np.array([0.1, 0.2, 0.3], np.float32)
    np.testing.assert_allclose(custom, ((raw / 255.0 - mean) / std).transpose(2, 0, 1), atol=1e-4)


def test_hf_vision_frozen_tower_trains_only_the_projection():
    enc = build("rgb_hf_vision", {"config": TINY_SIGLIP, "freeze": True}).train()
    assert not enc.tower.training and enc.proj.training
    before = {k: v.clone() for k, v in enc.tower.state_dict().items()}
    opt = torch.optim.SGD([p for p in enc.parameters() if p.requires_grad], lr=0.1)
    enc(image=torch.randn(2, 3, 64, 64)).pow(2).mean().backward()
    opt.step()
    assert all(p.grad is None for p in enc.tower.parameters())
    assert all(p.grad is not None for p in enc.proj.parameters())
    assert all(torch.equal(before[k], v) for k, v in enc.tower.state_dict().items())


def test_hf_vision_other_image_size_interpolates_positions():
    enc = build("rgb_hf_vision", {"config": TINY_SIGLIP, "image_size": [96, 64]})
    assert enc.grid == (6, 4)
    sample = enc.preprocess(rgb_image())
    assert sample["image"].shape == (3, 96, 64)
    assert enc(**batch_inputs([sample])).shape == (1, 24, 32)
