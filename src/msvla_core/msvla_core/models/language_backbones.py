"""Instruction encoders that emit token sequences for the conditioners.

Two sources: a frozen causal LM (Qwen2 / SmolLM class) giving per-token hidden states, and the
pooled MiniLM sentence embedding of language.SentenceEncoder wrapped as a one-token sequence.
Both give InstructionTokens(tokens (B, L, H) float32, mask (B, L) bool), which is exactly what
conditioning modules take as (instruction, instruction_mask).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from .language import SentenceEncoder


class InstructionTokens(NamedTuple):
    tokens: torch.Tensor  # (B, L, H)
    mask: torch.Tensor  # (B, L) bool, True = real token


def sentence_tokens(encoder_output: torch.Tensor) -> InstructionTokens:
    """Pooled sentence embeddings (B, H) (or one (H,)) -> a length-1 token sequence, all valid."""
    if not isinstance(encoder_output, torch.Tensor):
        raise TypeError(f"sentence_tokens needs a tensor (B, H), got {type(encoder_output).__name__}")
    if encoder_output.dim() == 1:
        encoder_output = encoder_output.unsqueeze(0)
    if encoder_output.dim() != 2:
        raise ValueError(f"sentence_tokens needs pooled embeddings (B, H), got {tuple(encoder_output.shape)}")
    mask = torch.ones(encoder_output.shape[0], 1, dtype=torch.bool, device=encoder_output.device)
    return InstructionTokens(encoder_output.unsqueeze(1), mask)


class CausalLMInstructionEncoder(nn.Module):
    """A frozen decoder-only language model read as a token encoder.

    Loads tokenizer and weights from `path` only (local_files_only: never downloads). `layer`
    selects the hidden states: 0 is the token embeddings, k the output of block k, and -1 (= the
    layer count) the final output after the model's last norm; middle layers of an LLM often carry more transferable features than the
    last, which is shaped for next-token prediction. Instructions are encoded one at a time,
    which needs no pad token (many causal-LM tokenizers have none) and makes each instruction's
    states independent of what it was batched with, then cached (normalised text, LRU).
    Text longer than max_length tokens is truncated. An instruction that tokenises to nothing
    yields one all-zero token with mask False.
    """

    def __init__(self, path: str | os.PathLike, max_length: int = 64, layer: int = -1,
                 cache_size: int = 256):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be a non-negative integer, got {cache_size!r}")
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"language backbone directory {path} does not exist")
        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        # A tokenizer.json that the config's tokenizer class cannot read yields no ids at all
        # rather than an error; every instruction would then silently condition on nothing.
        if not self.tokenizer("pick up the cube")["input_ids"]:
            raise ValueError(f"tokenizer in {path} produces no tokens for plain text; "
                             f"tokenizer.json does not match tokenizer_config.json / config.json")
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).float().eval()
        self.model.requires_grad_(False)
        n_layers = int(self.model.config.num_hidden_layers)
        if not isinstance(layer, int) or not -(n_layers + 1) <= layer <= n_layers:
            raise ValueError(f"layer={layer!r} out of range for {n_layers} layers "
                             f"(valid: {-(n_layers + 1)}..{n_layers})")
        self.layer = layer
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size

    def train(self, mode: bool = True):
        # Frozen means deterministic too: dropout inside the backbone stays off in training.
        super().train(mode)
        self.model.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def _encode_one(self, text: str) -> torch.Tensor:
        ids = self.tokenizer(text, truncation=True, max_length=self.max_length,
                             return_tensors="pt")["input_ids"].to(self.device)
        if ids.shape[1] == 0:
            return torch.zeros(0, self.dim)
        last = self.layer == -1
        out = self.model(input_ids=ids, output_hidden_states=not last)
        states = out.last_hidden_state if last else out.hidden_states[self.layer]
        return states[0].float().cpu()

    @torch.no_grad()
    def encode(self, texts: list[str]) -> InstructionTokens:
        """Token states (B, L, dim), L the longest instruction (at least 1), and the mask (B, L)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of instructions, got a single string")
        keys = [SentenceEncoder.normalise_text(t) for t in texts]
        fresh: dict[str, torch.Tensor] = {}
        for key in dict.fromkeys(keys):
            if key in self._cache:
                self._cache.move_to_end(key)
            else:
                fresh[key] = self._encode_one(key)
        for key, states in fresh.items():
            self._cache[key] = states
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        rows = [fresh[k] if k in fresh else self._cache[k] for k in keys]
        length = max([1] + [r.shape[0] for r in rows])
        tokens = torch.zeros(len(rows), length, self.dim)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, r in enumerate(rows):
            tokens[i, : r.shape[0]] = r
            mask[i, : r.shape[0]] = True
        return InstructionTokens(tokens.to(self.device), mask.to(self.device))

    def forward(self, texts: list[str]) -> InstructionTokens:
        return self.encode(texts)

    def cache_info(self) -> dict[str, int]:
        return {"size": len(self._cache), "capacity": self._cache_size}
