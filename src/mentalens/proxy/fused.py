"""One forward for several adapters of one PEFT model: the fused LoRA path.

When the expert is a LoRA adapter on the anti-expert (the seed's exact case: Mental-Gemma-2b = Gemma-2b +
LoRA), both are the same base weights. Their rows go through the model as ONE batch (expert rows, then
anti-expert rows) and every LoRA layer adds its low-rank update to the expert rows only. Everything
else (embeddings, norms, attention, the base matmuls, the LM head) runs once for both, so the pair
costs about one small model instead of two.

Two implementations, same arithmetic (tests prove both equal separate forwards):

- "lean" (default whenever every adapted layer is a plain LoRA Linear): a per-layer forward that runs the
  base layer on all rows, then adds PEFT's own `B(A x) * scale` (same ops, same order) to the expert
  rows, which are one contiguous slice (`narrow`, no copy). No Python index lists, no per-call hook
  registration: PEFT's generic mixed-batch path costs more per step than a tiny model's whole forward.
- "peft": PEFT's own mixed-adapter batches (`adapter_names`, "__base__" = adapter off), for everything
  else (DoRA is refused by PEFT itself; embeddings, modules_to_save, bnb layers work). The kwarg-injecting
  hook is installed once instead of at every call, as `model(..., adapter_names=...)` would.

Both are switched on only inside `with batch.rows(blocks):`, per thread, so other users of the model
see it unchanged; `close()` removes every trace.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from mentalens.errors import ConfigError

BASE_ADAPTER = "__base__"  # PEFT's name for "adapter disabled" in a mixed batch
FUSED_IMPLS = ("auto", "lean", "peft")

Blocks = Sequence[tuple[str, int]]  # (adapter name or BASE_ADAPTER, number of rows), in row order


def is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


def _adapter_modules(model: Any) -> list[Any]:
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import AuxiliaryTrainingWrapper

    return [m for m in model.modules() if isinstance(m, (LoraLayer, AuxiliaryTrainingWrapper))]


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


def _lean_ok(module: Any, adapters: Sequence[str]) -> bool:
    """A plain LoRA Linear: low-rank update on x, no variant (DoRA...), no bias, standard weight layout."""
    from peft.tuners.lora.layer import Linear

    if not isinstance(module, Linear) or getattr(module, "fan_in_fan_out", False):
        return False
    for name in adapters:
        if name == BASE_ADAPTER or name not in module.lora_A:
            continue
        if name in getattr(module, "lora_variant", {}) or module.lora_B[name].bias is not None:
            return False
    return True


# The lean forward is installed once per LoRA module, however many ensembles share the model, and reads
# the row layout of the forward running on this thread (set by `MixedAdapterBatch.rows`).
_ACTIVE = threading.local()
_INSTALLED = "_mentalens_lean_users"


def _lean_forward(module: Any, x: Any, spans: Sequence[tuple[str, int, int]], loras: dict) -> Any:
    """PEFT's LoRA arithmetic, in PEFT's order (result + B(A x) * scale), on each adapter's row slice."""
    import torch.nn.functional as F

    result = module.base_layer(x)
    if module.disable_adapters:
        return result
    for name, start, n in spans:
        ab = loras.get(name)
        if ab is None:
            continue
        a, b = ab
        xs = x.narrow(0, start, n)
        if xs.dtype != a.dtype:
            xs = xs.to(a.dtype)
        result.narrow(0, start, n).add_(F.linear(F.linear(xs, a), b) * module.scaling[name])
    return result


def _install(module: Any) -> None:
    users = module.__dict__.get(_INSTALLED, 0)
    if users == 0:
        original = type(module).forward.__get__(module)

        def forward(x: Any, *args: Any, **kwargs: Any) -> Any:
            state = getattr(_ACTIVE, "state", None)
            loras = None if state is None or args or kwargs else state[1].get(id(module))
            if loras is None:
                return original(x, *args, **kwargs)
            return _lean_forward(module, x, state[0], loras)

        module.forward = forward
    module.__dict__[_INSTALLED] = users + 1


def _uninstall(module: Any) -> None:
    users = module.__dict__.get(_INSTALLED, 0) - 1
    if users > 0:
        module.__dict__[_INSTALLED] = users
        return
    module.__dict__.pop(_INSTALLED, None)
    module.__dict__.pop("forward", None)


class MixedAdapterBatch:
    """Fused-forward machinery for one PEFT model (see the module docstring)."""

    def __init__(self, model: Any, adapters: Sequence[str] = (), impl: str = "auto"):
        if impl not in FUSED_IMPLS:
            raise ConfigError(f"fused implementation must be one of {', '.join(FUSED_IMPLS)}, not {impl!r}")
        self.model = model
        self._local = threading.local()
        modules = _adapter_modules(model)
        lean = all(_lean_ok(m, adapters) for m in modules)
        if impl == "lean" and not lean:
            raise ConfigError("the lean fused path needs plain LoRA Linear layers only: use fused_impl='auto'")
        self.impl = "lean" if (impl == "auto" and lean) or impl == "lean" else "peft"
        self._patched: list[Any] = []
        self._handles: list[Any] = []
        self._lora: dict[int, dict[str, tuple[Any, Any]]] = {}  # id(module) -> adapter -> (A, B) weights
        if self.impl == "lean":
            for m in modules:
                _install(m)
                self._patched.append(m)
                self._lora[id(m)] = {name: (m.lora_A[name].weight, m.lora_B[name].weight) for name in m.lora_A}
        else:
            self._handles = [m.register_forward_pre_hook(self._inject, with_kwargs=True) for m in modules]

    @contextlib.contextmanager
    def rows(self, blocks: Blocks) -> Iterator[None]:
        """Inside the context, the model's forwards see these row blocks (rows in block order)."""
        if self.impl == "lean":
            spans, start = [], 0
            for name, n in blocks:
                if name != BASE_ADAPTER:
                    spans.append((name, start, n))
                start += n
            _ACTIVE.state = (spans, self._lora)
            try:
                yield
            finally:
                _ACTIVE.state = None
            return
        self._local.names = [name for name, n in blocks for _ in range(n)]
        try:
            yield
        finally:
            self._local.names = None

    def _inject(self, module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        """"peft" implementation: hand PEFT its per-row adapter names."""
        names = getattr(self._local, "names", None)
        if names is None:
            return None
        kwargs["adapter_names"] = names
        return args, kwargs

    def close(self) -> None:
        for m in self._patched:
            _uninstall(m)
        for h in self._handles:
            h.remove()
        self._patched, self._handles, self._lora = [], [], {}


__all__ = ["BASE_ADAPTER", "FUSED_IMPLS", "MixedAdapterBatch", "is_peft_model", "mixed_batch_problem"]
