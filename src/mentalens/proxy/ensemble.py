"""LogitEnsemble: decode from a weighted sum of several causal LMs' next-token scores.

    proxy-tuning        base + alpha * expert - alpha * anti_expert   (LogitEnsemble.from_proxy)
    the seed's "naive"  model1 + model2                               (LogitEnsemble([m1, m2]))

Every model keeps its own KV cache and sees the prompt in its own format; prompts are decoded together
in left-padded batches; each row stops on EOS, a stop string or its token budget and is then dropped from
every cache. Members that share one PEFT model run in one batched forward (the fused LoRA path). The
result is exact: tests check it against full re-forwards, hand-computed arithmetic, one-by-one decoding
and the base model's own `generate`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mentalens.backend import GenerationConfig
from mentalens.errors import BackendError, ConfigError, DataError, ModelError
from mentalens.proxy.config import ProxyConfig, check_combine, check_fused, check_weight
from mentalens.proxy.formats import PROMPT_FORMATS, Prompt, check_prompts, render
from mentalens.proxy.fused import (
    BASE_ADAPTER,
    FUSED_IMPLS,
    MixedAdapterBatch,
    is_peft_model,
    mixed_batch_problem,
)
from mentalens.proxy.sampling import TokenChooser
from mentalens.proxy.text import RowText
from mentalens.proxy.units import Unit, model_device
from mentalens.proxy.vocab import check_vocabularies, output_width

log = logging.getLogger(__name__)


@dataclass
class EnsembleMember:
    """One model of the ensemble and how it takes part.

    adapter (PEFT models only): None = the model as loaded (its active adapter), "__base__" = with the
    adapter switched off (the anti-expert of a LoRA expert), or the name of another loaded adapter.
    prompt_format: a name from PROMPT_FORMATS ("auto", "chat", "raw", "plain") or callable(messages) -> str.
    """

    model: Any
    tokenizer: Any
    weight: float = 1.0
    prompt_format: str | Callable[..., str] = "auto"
    name: str = ""
    adapter: str | None = None

    def __post_init__(self) -> None:
        self.weight = check_weight(self.weight, f"weight of {self.name or 'a member'}")
        if not callable(self.prompt_format):
            self.prompt_format = PROMPT_FORMATS.canonical(str(self.prompt_format))
        if not self.name:
            path = getattr(getattr(self.model, "config", None), "name_or_path", "") or type(self.model).__name__
            self.name = Path(str(path)).name or str(path)


@dataclass
class GenerationResult:
    """One generated sequence: its text, token ids and why it ended ("stop" or "length")."""

    text: str
    token_ids: list[int]
    finish_reason: str
    prompt_tokens: list[int] = field(default_factory=list)  # prompt length seen by each member


@dataclass
class _Plan:
    model: Any
    members: list[int]
    adapters: list[str | None]
    mixer: MixedAdapterBatch | None
    pad_id: int


def _eos_ids(member: EnsembleMember) -> set[int]:
    ids: set[int] = set()
    for value in (getattr(member.tokenizer, "eos_token_id", None),
                  getattr(getattr(member.model, "generation_config", None), "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def _context_length(model: Any) -> int | None:
    from mentalens.llm.loading import model_max_length

    return model_max_length(model)


class LogitEnsemble:
    """N causal LMs decoding as one: next-token scores = sum_i weight_i * scores_i."""

    def __init__(
        self,
        members: Sequence[EnsembleMember],
        *,
        combine: str = "logits",
        fused: bool | str = "auto",
        system_prompt: str | None = None,
        batch_size: int = 8,
        fused_impl: str = "auto",
    ):
        if not members:
            raise ConfigError("a LogitEnsemble needs at least one member model")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
        self.members = list(members)
        self.combine = check_combine(combine)
        self.fused = check_fused(fused)
        if fused_impl not in FUSED_IMPLS:
            raise ConfigError(f"fused_impl must be one of {', '.join(FUSED_IMPLS)}, not {fused_impl!r}")
        self.fused_impl = fused_impl
        self.system_prompt = system_prompt
        self.batch_size = batch_size
        names = [m.name for m in self.members]
        self.vocab = check_vocabularies([m.model for m in self.members], [m.tokenizer for m in self.members], names)
        self.widths = [output_width(m.model) for m in self.members]
        self.device = model_device(self.members[0].model)
        self.eos_ids = {i for m in self.members for i in _eos_ids(m) if i < self.vocab}
        self.contexts = [_context_length(m.model) for m in self.members]
        self.plans = self._plan()
        self._lock = threading.RLock()
        for m in self.members:
            m.model.eval()

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_proxy(
        cls,
        base: Any,
        expert: Any = None,
        anti_expert: Any = None,
        alpha: float = 1.0,
        *,
        combine: str = "logits",
        fused: bool | str = "auto",
        formats: dict[str, str] | None = None,
        device: str | None = None,
        devices: dict[str, str] | None = None,
        dtype: str = "auto",
        system_prompt: str | None = None,
        batch_size: int = 8,
        trust_remote_code: bool = False,
        fused_impl: str = "auto",
    ) -> LogitEnsemble:
        """base + alpha * (expert - anti_expert).

        Each of base/expert/anti_expert is a name or path (loaded with `mentalens.llm.load_model`), a
        LoadedModel, or a (model, tokenizer) pair. An expert that is a PEFT model with anti_expert None
        (or its own base model) uses the adapter-off model as anti-expert, sharing weights: the fused path.
        """
        from mentalens.proxy.loading import build_proxy_members

        alpha = check_weight(alpha, "alpha")
        members = build_proxy_members(
            base, expert, anti_expert, alpha, formats=formats or {}, device=device, devices=devices or {},
            dtype=dtype, trust_remote_code=trust_remote_code,
        )
        return cls(members, combine=combine, fused=fused, system_prompt=system_prompt, batch_size=batch_size,
                   fused_impl=fused_impl)

    @classmethod
    def from_config(cls, config: ProxyConfig, **kwargs: Any) -> LogitEnsemble:
        return cls.from_proxy(
            config.base, config.expert, config.anti_expert, config.alpha, combine=config.combine,
            fused=config.fused, formats=config.formats, device=config.device, devices=config.devices,
            dtype=config.dtype, trust_remote_code=config.trust_remote_code, **kwargs,
        )

    def _adapter_of(self, member: EnsembleMember) -> str | None:
        if not is_peft_model(member.model):
            if member.adapter not in (None, BASE_ADAPTER):
                raise ModelError(f"{member.name} is not a PEFT model, so it has no adapter {member.adapter!r}")
            return None
        return member.adapter or member.model.active_adapter

    def _plan(self) -> list[_Plan]:
        """Group members into forward units: members sharing one model fuse when that is exact."""
        groups: dict[int, list[int]] = {}
        for i, m in enumerate(self.members):
            groups.setdefault(id(m.model), []).append(i)
        plans: list[_Plan] = []
        fused_any = False
        mixers: dict[int, MixedAdapterBatch] = {}

        def mixer(model: Any) -> MixedAdapterBatch:
            if id(model) not in mixers:
                used = [a for i in groups[id(model)] if (a := self._adapter_of(self.members[i]))]
                mixers[id(model)] = MixedAdapterBatch(model, used, impl=self.fused_impl)
            return mixers[id(model)]

        for idx in groups.values():
            model = self.members[idx[0]].model
            tok = self.members[idx[0]].tokenizer
            pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
            adapters = [self._adapter_of(self.members[i]) for i in idx]
            if len(idx) > 1 and self.fused is not False:
                if is_peft_model(model):
                    problem = mixed_batch_problem(model, [a for a in adapters if a])
                    if problem is None:
                        plans.append(_Plan(model, idx, adapters, mixer(model), pad))
                        fused_any = True
                        continue
                    if self.fused is True:
                        raise ConfigError(f"fused=True but {problem}: set fused to auto or false")
                else:
                    plans.append(_Plan(model, idx, adapters, None, pad))
                    fused_any = True
                    continue
            for i, a in zip(idx, adapters, strict=True):
                # an adapter other than the active one (or "adapter off") goes through the mixed-batch
                # machinery too when it can: PEFT's disable_adapter() walks every module at every call
                other = a is not None and a != model.active_adapter
                use_mixer = other and mixed_batch_problem(model, [a]) is None
                if other and not use_mixer and a != BASE_ADAPTER:
                    raise ModelError(
                        f"{self.members[i].name}: adapter {a!r} cannot be selected per forward "
                        f"({mixed_batch_problem(model, [a])}): load it as a separate model"
                    )
                plans.append(_Plan(model, [i], [a], mixer(model) if use_mixer else None, pad))
        if self.fused is True and not fused_any:
            raise ConfigError(
                "fused=True but no two members share one model: give the expert as a LoRA adapter on the "
                "anti-expert (an adapter folder, or a PeftModel with anti_expert=None), or set fused to auto"
            )
        return plans

    @property
    def is_fused(self) -> bool:
        return any(len(p.members) > 1 for p in self.plans)

    # ------------------------------------------------------------------ prompts
    def encode(self, prompts: Any) -> list[list[list[int]]]:
        """Token ids per member per prompt, after each member's prompt format; checks lengths."""
        prompts = check_prompts(prompts)
        out: list[list[list[int]]] = []
        for j, m in enumerate(self.members):
            rows = []
            for b, p in enumerate(prompts):
                text, add_special = render(m.prompt_format, m.tokenizer, p, self.system_prompt)
                ids = list(m.tokenizer(text, add_special_tokens=add_special)["input_ids"])
                if not ids:
                    raise DataError(f"prompt {b} is empty for {m.name}: give some text")
                ctx = self.contexts[j]
                if ctx is not None and len(ids) >= ctx:
                    raise DataError(
                        f"prompt {b} is {len(ids)} tokens for {m.name}, which has a context of {ctx} tokens: "
                        "shorten the prompt (or use a model with a longer context)"
                    )
                if max(ids) >= self.widths[j]:
                    raise DataError(
                        f"prompt {b} uses token id {max(ids)}, beyond {m.name}'s {self.widths[j]} embeddings: "
                        "its prompt format adds tokens the model was not trained with; use prompt_format='raw'"
                    )
                rows.append(ids)
            out.append(rows)
        return out

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: Any, config: GenerationConfig | None = None) -> list[str]:
        """One completion per prompt (text or message list), in the caller's order."""
        return [r.text for r in self.generate_details(prompts, config)]

    def generate_details(self, prompts: Any, config: GenerationConfig | None = None) -> list[GenerationResult]:
        """Like generate, with token ids and finish reasons. Prompts of similar length share a batch."""
        config = config or GenerationConfig()
        encoded = self.encode(prompts)  # every prompt is checked before any generation starts
        n = len(encoded[0])
        order = sorted(range(n), key=lambda b: -len(encoded[0][b]))
        results: list[GenerationResult | None] = [None] * n
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size]
            session = _Session(self, [[ids[b] for b in rows] for ids in encoded], config, rows, track=False)
            for _ in session.run():
                pass
            for k, b in enumerate(rows):
                results[b] = session.results[k]
        return results  # type: ignore[return-value]

    def stream(self, prompt: Prompt, config: GenerationConfig | None = None) -> Iterator[str]:
        """Text deltas of one completion as they become certain; joined, they equal generate()'s text."""
        config = config or GenerationConfig()
        encoded = self.encode([prompt])
        session = _Session(self, encoded, config, [0], track=True)
        for events in session.run():
            for _row, delta in events:
                if delta:
                    yield delta

    def next_token_logits(self, prompts: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(combined scores, each member's logits cut to the shared vocabulary) for the next token."""
        encoded = self.encode(prompts)
        session = _Session(self, encoded, GenerationConfig(max_new_tokens=1), list(range(len(encoded[0]))))
        with self._lock, torch.inference_mode():
            per_member = session.prefill()
            return session.combine(per_member), per_member

    def describe(self) -> dict[str, Any]:
        return {
            "members": [
                {
                    "name": m.name,
                    "weight": m.weight,
                    "adapter": self._adapter_of(m),
                    "device": str(model_device(m.model)),
                    "prompt_format": m.prompt_format if isinstance(m.prompt_format, str) else "custom",
                }
                for m in self.members
            ],
            "combine": self.combine,
            "fused": self.is_fused,
            "fused_impl": next((p.mixer.impl for p in self.plans if p.mixer is not None), None),
            "vocab": self.vocab,
            "forwards_per_step": len(self.plans),
        }

    def close(self) -> None:
        """Remove the fused path's hooks from the models (the models themselves stay usable)."""
        for p in self.plans:
            if p.mixer is not None:
                p.mixer.close()


class _Session:
    """One batch of prompts being decoded: caches, per-row text, token choice."""

    def __init__(
        self, ens: LogitEnsemble, prompt_ids: list[list[list[int]]], config: GenerationConfig,
        row_ids: list[int], track: bool = False,
    ):
        self.ens = ens
        self.config = config
        self.prompt_ids = prompt_ids
        n = len(prompt_ids[0])
        self.units = [Unit(p.model, p.members, p.adapters, p.pad_id, p.mixer) for p in ens.plans]
        tok = ens.members[0].tokenizer
        self.texts = [RowText(tok, config.stop, track) for _ in range(n)]
        self.limits = [self._limit(b) for b in range(n)]
        self.active = list(range(n))
        self.results: list[GenerationResult | None] = [None] * n
        self.chooser = TokenChooser(config, row_ids, ens.device)
        self.history = self._history() if self.chooser.needs_history else None
        self.last: torch.Tensor | None = None
        self.deadline = time.monotonic() + config.timeout_s if config.timeout_s else None

    def _limit(self, b: int) -> int:
        limit = self.config.max_new_tokens
        for j, ctx in enumerate(self.ens.contexts):
            if ctx is not None:
                limit = min(limit, ctx - len(self.prompt_ids[j][b]))
        if limit < self.config.max_new_tokens:
            log.warning("prompt %d leaves room for only %d new tokens in the context window", b, limit)
        return limit

    def _history(self) -> torch.Tensor:
        """The base member's prompt ids, left-padded with each row's own first token (a no-op for the penalty)."""
        rows = self.prompt_ids[0]
        width = max(len(r) for r in rows)
        return torch.tensor([[r[0]] * (width - len(r)) + list(r) for r in rows], device=self.ens.device)

    def prefill(self) -> list[torch.Tensor]:
        by_member: dict[int, torch.Tensor] = {}
        for unit in self.units:
            logits = unit.prefill([self.prompt_ids[j] for j in unit.members])
            by_member.update(zip(unit.members, logits, strict=True))
        return [self._cut(by_member[j]) for j in range(len(self.ens.members))]

    def _cut(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, : self.ens.vocab].to(device=self.ens.device, dtype=torch.float32)

    def combine(self, per_member: list[torch.Tensor]) -> torch.Tensor:
        scores: torch.Tensor | None = None
        for m, x in zip(self.ens.members, per_member, strict=True):
            if self.ens.combine == "logprobs":
                x = torch.log_softmax(x, dim=-1)
            scores = x * m.weight if scores is None else scores.add_(x, alpha=m.weight)
        return scores  # type: ignore[return-value]

    def _step_logits(self) -> list[torch.Tensor]:
        by_member: dict[int, torch.Tensor] = {}
        for unit in self.units:
            by_member.update(zip(unit.members, unit.step(self.last), strict=True))
        return [self._cut(by_member[j]) for j in range(len(self.ens.members))]

    def run(self) -> Iterator[list[tuple[int, str]]]:
        """Decode to the end, yielding (row, text delta) events after every step.

        The lock and inference mode are held only while a step computes, never across a yield, so
        concurrent callers interleave steps and the consumer's own code runs normally.
        """
        first = True
        while self.active:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise BackendError(
                    f"generation exceeded timeout_s={self.config.timeout_s}: raise timeout_s or lower max_new_tokens"
                )
            with self.ens._lock, torch.inference_mode():
                per_member = self.prefill() if first else self._step_logits()
                events = self._advance(self.combine(per_member))
            first = False
            yield events

    def _advance(self, scores: torch.Tensor) -> list[tuple[int, str]]:
        tokens = self.chooser(self.history, scores)
        events: list[tuple[int, str]] = []
        keep: list[int] = []
        for pos, token in enumerate(tokens.tolist()):
            row = self.active[pos]
            text = self.texts[row]
            if token in self.ens.eos_ids:
                events.append((row, self._finish(row, "stop")))
                continue
            delta = text.push(token)
            if text.stopped:
                events.append((row, delta + self._finish(row, "stop")))
            elif len(text.ids) >= self.limits[row]:
                events.append((row, delta + self._finish(row, "length")))
            else:
                events.append((row, delta))
                keep.append(pos)
        if self.history is not None:
            self.history = torch.cat([self.history, tokens.unsqueeze(-1)], dim=-1)
        if keep and len(keep) < len(self.active):
            idx = torch.tensor(keep, dtype=torch.long)
            for unit in self.units:
                unit.keep(idx)
            self.chooser.keep(keep)
            tokens = tokens[idx.to(tokens.device)]
            if self.history is not None:
                self.history = self.history[idx.to(self.history.device)]
        self.active = [self.active[p] for p in keep]
        self.last = tokens
        return events

    def _finish(self, row: int, reason: str) -> str:
        text = self.texts[row]
        delta = text.finish()
        self.results[row] = GenerationResult(
            text=text.text, token_ids=list(text.ids), finish_reason=reason,
            prompt_tokens=[len(ids[row]) for ids in self.prompt_ids],
        )
        return delta


__all__ = ["EnsembleMember", "GenerationResult", "LogitEnsemble"]
