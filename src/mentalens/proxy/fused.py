"""One forward for several adapters of one PEFT model: the fused LoRA path.

When the expert is a LoRA adapter on the anti-expert (the seed's exact case: Mental-Gemma-2b = Gemma-2b +
LoRA), both are the same base weights. Their rows go through the model as ONE batch and every LoRA layer
adds its update only to the expert rows: PEFT's mixed-adapter batches (`adapter_names`, where "__base__"
means the adapter is off). The base matmuls, by far the larger cost, run once for both, so proxy-tuning
costs about one small model instead of two.

PEFT's `model(..., adapter_names=...)` registers and removes a hook on every LoRA layer at every call; in
a decoding loop that bookkeeping costs as much as a tiny model's forward, so `MixedAdapterBatch` installs
the same kwarg-injecting pre-hook once and switches it on only for its own forwards. The LoRA arithmetic
itself stays PEFT's (`LoraLayer._mixed_batch_forward`); tests prove the result equals separate forwards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

BASE_ADAPTER = "__base__"  # PEFT's name for "adapter disabled" in a mixed batch


def is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


def mixed_batch_problem(model: Any, adapters: Sequence[str]) -> str | None:
    """Why model cannot run these adapters in one mixed batch (None when it can)."""
    if not is_peft_model(model):
        return "the expert is not a PEFT adapter on the anti-expert"
    for name in adapters:
        if name == BASE_ADAPTER:
            continue
        cfg = model.peft_config.get(name)
        if cfg is None:
            return f"adapter {name!r} is not loaded on the model"
        if str(getattr(cfg, "peft_type", "")).split(".")[-1].upper() != "LORA":
            return f"adapter {name!r} is {cfg.peft_type}, and mixed batches need LoRA"
        if getattr(cfg, "use_dora", False):
            return f"adapter {name!r} uses DoRA, which PEFT cannot mix in one batch"
    if any(getattr(m, "merged", False) for m in _adapter_modules(model)):
        return "the adapter is merged into the weights"
    return None


def _adapter_modules(model: Any) -> list[Any]:
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import AuxiliaryTrainingWrapper

    return [m for m in model.modules() if isinstance(m, (LoraLayer, AuxiliaryTrainingWrapper))]


class MixedAdapterBatch:
    """Persistent PEFT mixed-batch hooks on one model, active only inside `with self.rows(names):`."""

    def __init__(self, model: Any):
        self.model = model
        self._local = threading.local()
        self._handles = [
            m.register_forward_pre_hook(self._inject, with_kwargs=True) for m in _adapter_modules(model)
        ]

    def _inject(self, module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        names = getattr(self._local, "names", None)
        if names is None:
            return None
        kwargs["adapter_names"] = names
        return args, kwargs

    @contextlib.contextmanager
    def rows(self, names: list[str]) -> Iterator[None]:
        self._local.names = names
        try:
            yield
        finally:
            self._local.names = None

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


__all__ = ["BASE_ADAPTER", "MixedAdapterBatch", "is_peft_model", "mixed_batch_problem"]
