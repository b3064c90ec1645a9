"""Choosing the next token from combined scores: transformers' own logits processors, per-row seeds.

The processors (repetition penalty, temperature, top-k, top-p) are the ones `model.generate` uses, in
the same order, so a one-model ensemble behaves like the model itself. Each row samples from its own
torch.Generator seeded with `seed + row` (row = the prompt's index in the call), so a row's sample does
not depend on the other rows of its batch and a seed reproduces a run exactly.
"""

from __future__ import annotations

import secrets
from typing import Any

import torch

from mentalens.backend import GenerationConfig


class TokenChooser:
    """Greedy or sampled choice of one token per row, after the configured logits processors."""

    def __init__(self, config: GenerationConfig, rows: list[int], device: torch.device):
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self.greedy = config.greedy
        procs: list[Any] = []
        if config.repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(config.repetition_penalty))
        if not self.greedy:
            if config.temperature != 1.0:
                procs.append(TemperatureLogitsWarper(config.temperature))
            if config.top_k:
                procs.append(TopKLogitsWarper(config.top_k))
            if config.top_p < 1.0:
                procs.append(TopPLogitsWarper(config.top_p))
        self.processors = LogitsProcessorList(procs)
        self.needs_history = config.repetition_penalty != 1.0
        self.generators: list[torch.Generator] = []
        if not self.greedy:
            # no seed: fresh entropy, without reseeding (and so disturbing) torch's global generator
            base_seed = config.seed if config.seed is not None else secrets.randbits(62)
            for row in rows:
                g = torch.Generator(device=device)
                g.manual_seed(base_seed + row)
                self.generators.append(g)

    def __call__(self, history: torch.Tensor | None, scores: torch.Tensor) -> torch.Tensor:
        """One token id per row of scores (B, V); history (B, T) is what the repetition penalty sees."""
        if len(self.processors):
            scores = self.processors(history, scores)
        if self.greedy:
            return scores.argmax(dim=-1)
        probs = torch.softmax(scores, dim=-1)
        return torch.cat(
            [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)]
        )

    def keep(self, rows: list[int]) -> None:
        """Drop the generators of finished rows (rows: the indices that stay, in order)."""
        if self.generators:
            self.generators = [self.generators[i] for i in rows]


__all__ = ["TokenChooser"]
