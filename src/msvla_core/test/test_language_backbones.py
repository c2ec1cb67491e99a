"""Instruction token encoders: a tiny Qwen2 built offline, and the pooled-MiniLM adapter."""

import pytest
import torch

from msvla_core.models import conditioning  # noqa: F401  (registers the conditioners)
from msvla_core.models import heads_lib  # noqa: F401  (registers the heads)
from msvla_core.models.language_backbones import CausalLMInstructionEncoder, InstructionTokens, sentence_tokens
from msvla_core.models.registry import CONDITIONERS, HEADS

torch.set_num_threads(1)
HIDDEN = 32
CORPUS = ["pick up the red cube", "place the cup in the bowl", "drive to the left lane",
          "turn right and stop at the line", "grasp the blue mug by its handle"]


def build_tokenizer():
    """A byte-level BPE trained in code: Qwen2's tokenizer class reads exactly this format."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 5, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory):
    from transformers import AutoModel, Qwen2Config

    path = tmp_path_factory.mktemp("tiny_qwen2")
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(path)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def encoder(backbone_dir):
    return CausalLMInstructionEncoder(backbone_dir)


def reference_states(enc, text, layer=-1):
    ids = enc.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = enc.model(input_ids=ids, output_hidden_states=True)
    return out.last_hidden_state[0] if layer == -1 else out.hidden_states[layer][0]


def test_token_states_mask_and_padding(encoder):
    texts = ["pick up the red cube", "stop", "grasp the blue mug by its handle"]
    out = encoder.encode(texts)
    assert isinstance(out, InstructionTokens)
    lengths = [len(encoder.tokenizer(t)["input_ids"]) for t in texts]
    assert out.tokens.shape == (3, max(lengths), HIDDEN) and out.tokens.dtype == torch.float32
    assert out.mask.dtype == torch.bool and out.mask.sum(1).tolist() == lengths
    for i, text in enumerate(texts):  # valid part equals the model run alone, padding is zero
        assert torch.allclose(out.tokens[i, : lengths[i]], reference_states(encoder, text), atol=1e-5)
        assert (out.tokens[i, lengths[i]:] == 0).all()


def test_layer_selection(backbone_dir, encoder):
    text = "place the cup in the bowl"
    embed = CausalLMInstructionEncoder(backbone_dir, layer=0).encode([text]).tokens[0]
    ids = encoder.tokenizer(text, return_tensors="pt")["input_ids"][0]
    assert torch.allclose(embed, encoder.model.get_input_embeddings()(ids), atol=1e-6)
    middle = CausalLMInstructionEncoder(backbone_dir, layer=1).encode([text]).tokens[0]
    assert torch.allclose(middle, reference_states(encoder, text, layer=1), atol=1e-5)
    assert not torch.allclose(middle, encoder.encode([text]).tokens[0], atol=1e-3)
    for bad in (3, -4, 1.5):
        with pytest.raises(ValueError, match="layer"):
            CausalLMInstructionEncoder(backbone_dir, layer=bad)


def test_cache_reuses_states_and_evicts(backbone_dir):
    enc = CausalLMInstructionEncoder(backbone_dir, cache_size=2)
    calls = []
    hook = enc.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        a = enc.encode(["pick up the red cube", "pick up the red cube"])
        assert len(calls) == 1 and torch.equal(a.tokens[0], a.tokens[1])
        b = enc.encode(["  pick up   the red cube "])  # same instruction after whitespace normalisation
        assert len(calls) == 1 and torch.equal(b.tokens[0], a.tokens[0])
        enc.encode(["stop", "drive to the left lane"])  # evicts the oldest entry
        assert len(calls) == 3 and enc.cache_info() == {"size": 2, "capacity": 2}
        enc.encode(["pick up the red cube"])
        assert len(calls) == 4
    finally:
        hook.remove()


def test_truncation_and_empty_instruction(backbone_dir):
    enc = CausalLMInstructionEncoder(backbone_dir, max_length=3)
    out = enc.encode(["grasp the blue mug by its handle", ""])
    assert out.tokens.shape == (2, 3, HIDDEN)
    assert out.mask[0].all() and not out.mask[1].any() and (out.tokens[1] == 0).all()
    fused = torch.randn(2, 5, 16)
    for name in ("cross_attention", "prefix", "film"):
        c = CONDITIONERS.build(name, {}, "test", d_model=16, language_dim=HIDDEN)
        assert torch.isfinite(c(fused, out.tokens, out.mask)).all(), name


def test_frozen_and_stays_in_eval(encoder):
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert encoder.training and not encoder.model.training
    encoder.eval()


def test_errors_name_the_problem(tmp_path, backbone_dir, encoder):
    missing = tmp_path / "no_such_model"
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        CausalLMInstructionEncoder(missing)
    with pytest.raises(ValueError, match="max_length"):
        CausalLMInstructionEncoder(backbone_dir, max_length=0)
    with pytest.raises(TypeError, match="list"):
        encoder.encode("pick up the red cube")


def test_mismatched_tokenizer_is_refused(tmp_path, backbone_dir):
    """A word-level tokenizer.json under a Qwen2 config is read by Qwen2's BPE class as empty."""
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({"[UNK]": 0, "pick": 1, "up": 2}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]").save_pretrained(tmp_path)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(backbone_dir / name, tmp_path / name)
    with pytest.raises(ValueError, match="no tokens"):
        CausalLMInstructionEncoder(tmp_path)


def test_sentence_tokens_adapter():
    pooled = torch.randn(3, 384)
    out = sentence_tokens(pooled)
    assert out.tokens.shape == (3, 1, 384) and out.mask.shape == (3, 1) and out.mask.all()
    assert torch.equal(out.tokens[:, 0], pooled)
    assert sentence_tokens(torch.randn(384)).tokens.shape == (1, 1, 384)
    with pytest.raises(ValueError, match=r"\(B, H\)"):
        sentence_tokens(torch.randn(2, 3, 384))


def test_backbone_to_head_trains_only_the_top(encoder):
    """Gradients reach conditioner and head; the frozen backbone gets none."""
    torch.manual_seed(0)
    c = CONDITIONERS.build("cross_attention", {}, "test", d_model=16, language_dim=HIDDEN)
    h = HEADS.build("vehicle_control", {}, "test", d_model=16)
    instr = encoder.encode(["turn right and stop at the line", "drive to the left lane"])
    out = h(c(torch.randn(2, 6, 16), instr.tokens, instr.mask))
    loss = h.loss(out, {"steering": torch.tensor([0.3, -0.3]), "throttle": torch.tensor([0.0, 1.0]),
                        "brake": torch.tensor([1.0, 0.0])})["total"]
    loss.backward()
    assert all(p.grad is not None for p in list(c.parameters()) + list(h.parameters()))
    assert all(p.grad is None for p in encoder.parameters())


def test_minilm_pooled_embedding_as_one_token():
    from msvla_core.models.language import SentenceEncoder

    enc = SentenceEncoder()
    out = sentence_tokens(enc.encode(["pick up the red cube", "stop"]))
    assert out.tokens.shape == (2, 1, 384)
    c = CONDITIONERS.build("film", {}, "test", d_model=16, language_dim=384)
    assert c(torch.randn(2, 4, 16), out.tokens, out.mask).shape == (2, 4, 16)
