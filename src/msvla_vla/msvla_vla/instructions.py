"""The instruction encoder a checkpoint asks for, as a function text -> policy arguments."""
from __future__ import annotations

from msvla_core.models.config import GraspModelConfig
from msvla_core.models.language import SentenceEncoder


def load_instruction_encoder(config, override_dir: str = ""):
    """Returns encode(text) -> (instruction tensor, mask or None); the node calls it once per
    instruction. MiniLM gives one pooled embedding; a causal LM gives token states and a mask."""
    if isinstance(config, GraspModelConfig):
        backbone, path, dim = "minilm", "", config.language_dim
    else:
        backbone, path, dim = config.language.backbone, config.language.path, config.language.dim
    path = override_dir or path
    if backbone == "minilm":
        sentence = SentenceEncoder(path or None)
        check_dim(sentence.dim, dim)
        return lambda text: (sentence.encode([text]), None)
    from msvla_core.models.language_backbones import CausalLMInstructionEncoder

    causal = CausalLMInstructionEncoder(path)
    check_dim(causal.dim, dim)

    def encode(text):
        out = causal.encode([text])
        return out.tokens, out.mask
    return encode


def check_dim(actual: int, expected: int) -> None:
    if actual != expected:
        raise ValueError(f"the instruction encoder gives {actual}-d embeddings but the checkpoint expects {expected}")
