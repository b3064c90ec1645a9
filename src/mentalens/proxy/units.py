"""Forward units: one model, one KV cache, the rows of one or more ensemble members.

A unit owns a DynamicCache, the attention mask and the position of each row. Rows are left-padded;
position ids are `cumsum(mask) - 1` (padding clipped to 0) and grow by one per step, exactly as
`model.generate` does, so padding never changes a row's result. Members that share one PEFT model
(expert = LoRA adapter on the anti-expert) share one unit: their rows go through one batched forward and
each LoRA layer applies its adapter per row (see `fused.py`). Finished rows are dropped from the cache.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from typing import Any

import torch

from mentalens.proxy.fused import BASE_ADAPTER, MixedAdapterBatch


def model_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        return torch.device("cpu")


def _core(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class ForwardSpec:
    """How to call a model's forward: the cache keyword and whether it can keep only the last logits."""

    def __init__(self, model: Any):
        params = inspect.signature(_core(model).forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)

    def new_cache(self, model: Any) -> Any:
        from transformers import DynamicCache

        try:
            return DynamicCache(config=_core(model).config)
        except TypeError:  # older transformers
            return DynamicCache()


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of sequences left-padded to the longest."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s) :] = 1
    return ids.to(device), mask.to(device)


class Unit:
    """The rows of `members` (ensemble member indices) on one model: k members x B prompts."""

    def __init__(
        self,
        model: Any,
        members: Sequence[int],
        adapters: Sequence[str | None],
        pad_id: int,
        mixer: MixedAdapterBatch | None = None,
    ):
        self.model = model
        self.members = list(members)
        self.adapters = list(adapters)  # per member: None = the model as it is, BASE_ADAPTER = adapter off
        self.pad_id = pad_id
        self.mixer = mixer
        self.spec = ForwardSpec(model)
        self.device = model_device(model)
        self.cache: Any = None
        self.mask: torch.Tensor | None = None
        self.pos: torch.Tensor | None = None
        self.padded = True
        self.n = 0  # prompts (rows per member)

    def _context(self) -> Any:
        """Adapter selection for this forward: PEFT mixed batch, adapter off, or nothing."""
        if self.mixer is not None:
            return self.mixer.rows([(a or BASE_ADAPTER, self.n) for a in self.adapters])
        if self.adapters[0] == BASE_ADAPTER:
            return self.model.disable_adapter()
        return contextlib.nullcontext()

    def _forward(self, ids: torch.Tensor, position_ids: torch.Tensor, keep_last: bool) -> list[torch.Tensor]:
        kwargs = {
            "input_ids": ids,
            "attention_mask": self.mask if self.padded else None,  # no padding: the plain causal mask
            "position_ids": position_ids,
            self.spec.cache_kw: self.cache,
            "use_cache": True,
        }
        if keep_last and self.spec.keep_kw:
            kwargs[self.spec.keep_kw] = 1
        with self._context():
            logits = self.model(**kwargs).logits[:, -1, :]
        return list(logits.split(self.n)) if len(self.members) > 1 else [logits]

    def prefill(self, prompt_ids: Sequence[Sequence[Sequence[int]]]) -> list[torch.Tensor]:
        """prompt_ids[j][b]: member j's token ids for prompt b. Returns each member's last logits (B, V)."""
        self.n = len(prompt_ids[0])
        rows = [seq for member_rows in prompt_ids for seq in member_rows]
        ids, self.mask = left_pad(rows, self.pad_id, self.device)
        self.padded = bool((self.mask == 0).any())
        position_ids = (self.mask.cumsum(-1) - 1).clamp_(min=0)
        self.pos = position_ids[:, -1].clone()
        self.cache = self.spec.new_cache(self.model)
        return self._forward(ids, position_ids, keep_last=True)

    def step(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Feed one new token per prompt (B,); returns each member's next logits."""
        tokens = tokens.to(self.device, non_blocking=True)
        ids = (tokens.repeat(len(self.members)) if len(self.members) > 1 else tokens).unsqueeze(-1)
        if self.padded:
            self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=-1)
        self.pos = self.pos + 1
        return self._forward(ids, self.pos.unsqueeze(-1), keep_last=False)

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only these prompts (indices into the current B), in every member's block."""
        idx = torch.cat([rows + j * self.n for j in range(len(self.members))]).to(self.device)
        self.cache.batch_select_indices(idx)
        if self.padded:
            self.mask = self.mask.index_select(0, idx)
        self.pos = self.pos.index_select(0, idx)
        self.n = int(rows.numel())


__all__ = ["ForwardSpec", "Unit", "left_pad", "model_device"]
