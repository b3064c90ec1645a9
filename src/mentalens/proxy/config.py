"""ProxyConfig: what to combine and how, validated before any model is loaded.

Proxy-tuning (Liu et al., 2024) steers a large base model with a small tuned expert and its untuned
counterpart (the anti-expert): next-token scores = base + alpha * (expert - anti_expert). The dataclass
is loadable from YAML (`mentalens.config.load_config`) so runs are reproducible and a typo fails at once.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from mentalens.errors import ConfigError

COMBINE_MODES = ("logits", "logprobs")
ROLES = ("base", "expert", "anti_expert")


def check_weight(value: Any, what: str) -> float:
    """A finite real number (bool and strings are refused: `alpha="1"` is a bug, not a number)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{what} must be a number, not {value!r} ({type(value).__name__}): pass e.g. 1.0")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, not {value!r}: pass e.g. 1.0")
    return value


def check_combine(value: Any) -> str:
    if value not in COMBINE_MODES:
        raise ConfigError(f"combine must be one of {', '.join(COMBINE_MODES)}, not {value!r}")
    return str(value)


def check_fused(value: Any) -> bool | str:
    if value is True or value is False or value == "auto":
        return value
    raise ConfigError(f"fused must be true, false or 'auto', not {value!r}")


@dataclass
class ProxyConfig:
    """A proxy-tuned model: `base + alpha * (expert - anti_expert)`.

    base, expert, anti_expert: anything `mentalens.llm.load_model` accepts (hub id, folder, .gguf file,
        offline alias). The expert may be a PEFT LoRA adapter folder; its anti-expert then defaults to the
        adapter's base model, and `fused` runs both in one batched forward over one set of weights.
    combine: "logits" (proxy-tuning as published) or "logprobs" (normalise each model first).
    fused: True (required; error if impossible), False, or "auto" (fuse whenever it is exact).
    device: where every model goes unless `devices` names one per role ("base", "expert",
        "anti_expert"), e.g. {"base": "cuda:0", "expert": "cuda:1", "anti_expert": "cuda:1"}.
    formats: prompt format per role ("auto", "chat", "raw" or "plain"); "auto" uses a model's chat
        template when its tokenizer has one, so a chat expert and a base model each see their own format.
    """

    base: str
    expert: str | None = None
    anti_expert: str | None = None
    alpha: float = 1.0
    combine: str = "logits"
    fused: Any = "auto"
    device: str | None = None
    devices: dict[str, str] = field(default_factory=dict)
    dtype: str = "auto"
    formats: dict[str, str] = field(default_factory=dict)
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.base, str) or not self.base.strip():
            raise ConfigError("base model is missing: pass a hub id, a folder, a .gguf file or an offline alias")
        self.alpha = check_weight(self.alpha, "alpha")
        self.combine = check_combine(self.combine)
        self.fused = check_fused(self.fused)
        if self.anti_expert is not None and self.expert is None:
            raise ConfigError("an anti-expert needs an expert: pass --expert too (or drop --anti-expert)")
        for what, mapping in (("devices", self.devices), ("formats", self.formats)):
            unknown = sorted(set(mapping) - set(ROLES))
            if unknown:
                raise ConfigError(f"{what} has unknown role(s) {', '.join(unknown)}: use {', '.join(ROLES)}")

    @property
    def is_proxy(self) -> bool:
        return self.expert is not None

    def device_for(self, role: str) -> str | None:
        return self.devices.get(role) or self.device

    def format_for(self, role: str) -> str:
        return self.formats.get(role, "auto")


__all__ = ["COMBINE_MODES", "ROLES", "ProxyConfig", "check_combine", "check_fused", "check_weight"]
