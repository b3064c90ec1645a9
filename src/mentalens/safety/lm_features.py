"""Sentence features from a small causal LM's hidden states, for the learned risk reader.

Why: all-MiniLM-L6-v2 (384-d, English only) is the reader's ceiling so far: seven rounds of rules and readers on
its vectors left about half of newly phrased high-risk statements under-triaged (docs/safety.md). The largest
models installable offline here are the packaged LMs of `mentalens.llm.offline` (Gemma 3 270M also knows Spanish,
though the reader is still trained on and reads English sentences only).
A feature name is "minilm" (the semantic layer's own sentence vectors) or "MODEL:L<k>[,L<j>...]": the mean of
the LM's hidden states over the sentence's tokens after layer k (several layers are concatenated in order).
MODEL is a packaged offline model ("gemma3-270m", converted from its GGUF on first use), a local folder or a hub id.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from mentalens.errors import ConfigError

MINILM = "minilm"
PLUS = "minilm+"  # "minilm+MODEL:L<k>": the MiniLM vector and the LM's hidden states, side by side
_SPEC = re.compile(r"^(?P<model>[^:]+):(?P<layers>L\d+(?:,L\d+)*)$")


def parse_features(name: str) -> tuple[str, tuple[int, ...]] | None:
    """None for "minilm"; else (model, layers). A malformed name is a one-line ConfigError."""
    if name == MINILM:
        return None
    m = _SPEC.match(name or "")
    if not m or any(int(x[1:]) < 1 for x in m["layers"].split(",")):
        raise ConfigError(f"reader features {name!r}: use 'minilm' or 'MODEL:L<k>' with k >= 1 "
                          "(e.g. 'gemma3-270m:L9')")
    return m["model"], tuple(int(x[1:]) for x in m["layers"].split(","))


def split_features(name: str) -> tuple[bool, str | None]:
    """(whether the reader reads the MiniLM vector, the LM part of the name or None); checks the name."""
    if name == MINILM:
        return True, None
    lm = name[len(PLUS):] if name.startswith(PLUS) else name
    parse_features(lm)
    return name.startswith(PLUS), lm


class ConcatEncoder:
    """Two encoders' vectors side by side (the reader of "minilm+MODEL:L<k>")."""

    def __init__(self, first: Any, second: Any):
        self.parts = (first, second)

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        return np.hstack([p.encode(texts) for p in self.parts]).astype(np.float32)

    def flush(self) -> None:
        for p in self.parts:
            if hasattr(p, "flush"):
                p.flush()


def _model_folder(model: str) -> str:
    """A packaged offline model's converted folder; a local folder or hub id as given."""
    from mentalens.llm.offline import OFFLINE_MODELS, prepare_offline

    return str(prepare_offline(model)) if model in OFFLINE_MODELS else model


class LMFeatureEncoder:
    """`encode(texts) -> (n, layers * hidden)` float32: masked mean of the hidden states after each layer.

    Only the layers up to the deepest one asked for (and one more) are run, so a middle layer costs about that
    fraction of a forward pass."""

    def __init__(self, name: str, batch: int = 16, max_tokens: int = 96):
        parsed = parse_features(name)
        if parsed is None:
            raise ConfigError("LMFeatureEncoder reads an LM; 'minilm' is the sentence encoder")
        self.name, (self.model_name, self.layers) = name, parsed
        self.batch, self.max_tokens = batch, max_tokens
        self._model: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = _model_folder(self.model_name)
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
        depth = model.config.num_hidden_layers
        if max(self.layers) > depth:
            raise ConfigError(f"reader features {self.name!r}: {self.model_name} has layers 1..{depth}")
        # the state after layer k needs layers 1..k only; one more is kept because the model applies its final
        # norm to the last state it returns, so that layer k reads the same whatever else is asked for
        keep = min(depth, max(self.layers) + 1)
        model.layers = model.layers[:keep]
        model.config.num_hidden_layers = keep
        if getattr(model.config, "layer_types", None):
            model.config.layer_types = model.config.layer_types[:keep]
        self._tok, self._model = tok, model

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np
        import torch

        with self._lock:
            if self._model is None:
                self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths together: less padding
        with torch.inference_mode():
            for b in range(0, len(order), self.batch):
                idx = order[b:b + self.batch]
                enc = self._tok([texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                                max_length=self.max_tokens)
                hidden = self._model(**enc, output_hidden_states=True).hidden_states
                # the BOS token's state is an attention sink, large and the same for every text: left out
                keep = enc["attention_mask"].bool()
                if self._tok.bos_token_id is not None:
                    keep &= enc["input_ids"] != self._tok.bos_token_id
                mask = keep.unsqueeze(-1).float()
                pooled = torch.cat([(hidden[k] * mask).sum(1) / mask.sum(1).clamp(min=1) for k in self.layers], dim=1)
                for j, i in enumerate(idx):
                    out[i] = pooled[j].numpy().astype(np.float32)
        return np.stack(out)

    @property
    def dim(self) -> int:
        with self._lock:
            if self._model is None:
                self._load()
        return int(self._model.config.hidden_size) * len(self.layers)


_ENCODERS: dict[str, LMFeatureEncoder] = {}


def get_feature_encoder(name: str) -> LMFeatureEncoder:
    """One loaded LM feature encoder per name, per process."""
    if name not in _ENCODERS:
        _ENCODERS[name] = LMFeatureEncoder(name)
    return _ENCODERS[name]
