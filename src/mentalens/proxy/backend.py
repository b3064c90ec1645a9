"""ProxyBackend: a proxy-tuned model or a logit ensemble behind the common Backend interface.

Evaluation, chat and the server take any Backend; this one decodes from
`base + alpha * (expert - anti_expert)` (proxy-tuning) or from `sum_i weight_i * model_i` (`models=`,
the seed's "naive architecture"). answer() batches prompts of similar length; stream() yields deltas.
Like HFBackend, each model formats a plain prompt through its chat template when it has one (override
with `formats`), and answers are stripped of surrounding whitespace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mentalens.backend import Backend, GenerationConfig, Message
from mentalens.errors import BackendError, ConfigError
from mentalens.proxy.config import check_weight
from mentalens.proxy.ensemble import EnsembleMember, LogitEnsemble


class ProxyBackend(Backend):
    """Proxy-tuning (base, expert, anti_expert, alpha) or a weighted ensemble (models, weights)."""

    name = "proxy"

    def __init__(
        self,
        base: str | None = None,
        expert: str | None = None,
        anti_expert: str | None = None,
        alpha: float = 1.0,
        models: list[str] | None = None,
        weights: Sequence[float] | None = None,
        *,
        combine: str = "logits",
        fused: bool | str = "auto",
        device: str | None = None,
        devices: dict[str, str] | None = None,
        dtype: str = "auto",
        formats: dict[str, str] | None = None,
        system_prompt: str | None = None,
        batch_size: int = 8,
        trust_remote_code: bool = False,
        ensemble: LogitEnsemble | None = None,
    ):
        self.alpha = check_weight(alpha, "alpha")
        if ensemble is not None:
            self.ensemble = ensemble
        elif models:
            if expert is not None or anti_expert is not None:
                raise ConfigError("give either models=[...] (a weighted ensemble) or expert/anti_expert, not both")
            self.ensemble = self._weighted(
                [base, *models] if base else list(models), weights, combine=combine, fused=fused, device=device,
                dtype=dtype, formats=formats or {}, system_prompt=system_prompt, batch_size=batch_size,
                trust_remote_code=trust_remote_code,
            )
        else:
            if not base:
                raise ConfigError("ProxyBackend needs a base model (or models=[...]): pass base='name or path'")
            if weights is not None:
                raise ConfigError("weights go with models=[...]; proxy-tuning is weighted by alpha")
            self.ensemble = LogitEnsemble.from_proxy(
                base, expert, anti_expert, self.alpha, combine=combine, fused=fused, formats=formats,
                device=device, devices=devices, dtype=dtype, system_prompt=system_prompt, batch_size=batch_size,
                trust_remote_code=trust_remote_code,
            )

    @staticmethod
    def _weighted(names: list[str], weights: Sequence[float] | None, *, formats: dict[str, str],
                  device: str | None, dtype: str, trust_remote_code: bool, **kwargs: Any) -> LogitEnsemble:
        from mentalens.proxy.loading import load

        weights = [1.0] * len(names) if weights is None else list(weights)
        if len(weights) != len(names):
            raise ConfigError(f"{len(names)} models but {len(weights)} weights: give one weight per model")
        members, loaded = [], {}
        for name, w in zip(names, weights, strict=True):
            if name not in loaded:
                loaded[name] = load(name, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
            model, tok, label = loaded[name]
            members.append(EnsembleMember(model, tok, check_weight(w, f"weight of {name}"),
                                          formats.get("base", "auto"), label))
        return LogitEnsemble(members, **kwargs)

    def answer(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        if not prompts:
            return []
        try:
            return [t.strip() for t in self.ensemble.generate([str(p) for p in prompts], config)]
        except RuntimeError as exc:  # e.g. out of memory: say what to change
            raise BackendError(f"generation failed ({str(exc).splitlines()[0][:160]}): lower batch_size") from None

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        try:
            yield from self.ensemble.stream(list(messages), config)
        except RuntimeError as exc:
            raise BackendError(f"generation failed ({str(exc).splitlines()[0][:160]})") from None

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "alpha": self.alpha, **self.ensemble.describe()}

    def close(self) -> None:
        import gc

        self.ensemble.close()
        self.ensemble = None  # type: ignore[assignment]
        gc.collect()


__all__ = ["ProxyBackend"]
