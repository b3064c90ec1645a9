"""Turn (base, expert, anti_expert) specs into ensemble members, loading each model once.

A spec is a name/path (`mentalens.llm.load_model`: hub id, folder, .gguf, offline alias), a LoadedModel
or a (model, tokenizer) pair. An expert that is a LoRA adapter is put on the anti-expert's weights (the
anti-expert defaults to the adapter's recorded base), so expert and anti-expert share one model and can
run fused. Models loaded from the same spec on the same device are loaded once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mentalens.errors import ConfigError, ModelError
from mentalens.proxy.ensemble import EnsembleMember
from mentalens.proxy.fused import BASE_ADAPTER, is_peft_model


def load(name_or_path: str | Path, *, adapter: str | Path | None = None, dtype: str = "auto",
         device: str | None = None, trust_remote_code: bool = False) -> tuple[Any, Any, str]:
    """(model, tokenizer, display name): the one place proxy loads models (through mentalens.llm)."""
    from mentalens.llm import load_model

    lm = load_model(name_or_path, adapter=adapter, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    name = Path(str(name_or_path)).name or str(name_or_path)
    if adapter is not None:
        name = f"{name}+{Path(str(adapter)).name}"
    return lm.model, lm.tokenizer, name


def _adapter_dir(spec: Any) -> Path | None:
    """The adapter folder when spec names a PEFT adapter (not a full model), else None."""
    if not isinstance(spec, (str, Path)):
        return None
    from mentalens.llm.loading import is_adapter_dir, resolve_model

    try:
        path = resolve_model(spec)
    except ModelError:
        return None
    return path if is_adapter_dir(path) and not (path / "config.json").is_file() else None


def _unpack(spec: Any, role: str) -> tuple[Any, Any, str | None]:
    """(model, tokenizer, name) of an in-memory spec."""
    if hasattr(spec, "model") and hasattr(spec, "tokenizer"):
        return spec.model, spec.tokenizer, getattr(spec, "name", None)
    if isinstance(spec, tuple) and len(spec) == 2:
        return spec[0], spec[1], None
    raise ConfigError(
        f"{role} must be a model name or path, a LoadedModel or a (model, tokenizer) pair, not {type(spec).__name__}"
    )


def _check_tokenizers_first(specs: list[Any], trust_remote_code: bool) -> None:
    """Refuse models with different tokenizers before spending time (and memory) on their weights."""
    from mentalens.llm import load_tokenizer
    from mentalens.proxy.vocab import tokenizer_mismatch

    names = [str(s) for s in specs if isinstance(s, (str, Path))]
    if len(names) < 2:
        return
    toks = [load_tokenizer(n, trust_remote_code=trust_remote_code) for n in names]
    for name, tok in zip(names[1:], toks[1:], strict=True):
        why = tokenizer_mismatch(toks[0], tok)
        if why:
            raise ModelError(
                f"{names[0]} and {name} use different tokenizers ({why}): proxy-tuning needs an expert and "
                "anti-expert of the base model's family that share its tokenizer"
            )


def build_proxy_members(
    base: Any,
    expert: Any,
    anti_expert: Any,
    alpha: float,
    *,
    formats: dict[str, str],
    device: str | None,
    devices: dict[str, str],
    dtype: str,
    trust_remote_code: bool = False,
) -> list[EnsembleMember]:
    """[base (1), expert (+alpha), anti-expert (-alpha)], or [base] when there is no expert."""
    cache: dict[tuple, tuple[Any, Any, str]] = {}

    def dev(role: str) -> str | None:
        return devices.get(role) or device

    def get(spec: Any, role: str, adapter: Path | None = None, on: str | None = None) -> tuple[Any, Any, str]:
        if not isinstance(spec, (str, Path)):
            if adapter is not None:
                raise ConfigError(f"put the adapter on the in-memory {role} yourself (peft.PeftModel.from_pretrained)")
            model, tok, name = _unpack(spec, role)
            return model, tok, name or ""
        key = (str(spec), str(adapter), on or dev(role))
        if key not in cache:
            cache[key] = load(spec, adapter=adapter, dtype=dtype, device=on or dev(role),
                              trust_remote_code=trust_remote_code)
        return cache[key]

    _check_tokenizers_first([s for s in (base, expert, anti_expert) if s is not None], trust_remote_code)
    base_model, base_tok, base_name = get(base, "base")
    members = [EnsembleMember(base_model, base_tok, 1.0, formats.get("base", "auto"), base_name or "base")]
    if expert is None:
        if anti_expert is not None:
            raise ConfigError("an anti-expert needs an expert: pass the expert too (or drop the anti-expert)")
        return members

    fmt_e, fmt_a = formats.get("expert", "auto"), formats.get("anti_expert", "auto")
    adapter = _adapter_dir(expert)
    if adapter is not None:
        from mentalens.llm.loading import adapter_base

        anti_spec = anti_expert if anti_expert is not None else adapter_base(adapter)
        if dev("expert") == dev("anti_expert"):
            # one model, the adapter on (expert) and off (anti-expert): shared weights, fusable
            model, tok, name = get(anti_spec, "anti_expert", adapter=adapter)
            members.append(EnsembleMember(model, tok, alpha, fmt_e, f"expert {name}"))
            members.append(EnsembleMember(model, tok, -alpha, fmt_a, f"anti-expert {name}", adapter=BASE_ADAPTER))
            return members
        e_model, e_tok, e_name = get(anti_spec, "expert", adapter=adapter, on=dev("expert"))
        a_model, a_tok, a_name = get(anti_spec, "anti_expert")
        members.append(EnsembleMember(e_model, e_tok, alpha, fmt_e, f"expert {e_name}"))
        members.append(EnsembleMember(a_model, a_tok, -alpha, fmt_a, f"anti-expert {a_name}"))
        return members

    e_model, e_tok, e_name = get(expert, "expert")
    members.append(EnsembleMember(e_model, e_tok, alpha, fmt_e, f"expert {e_name}" if e_name else "expert"))
    if anti_expert is None:
        if not is_peft_model(e_model):
            raise ConfigError(
                "the anti-expert is missing: pass the untuned model the expert was tuned from (or give the "
                "expert as a LoRA adapter, whose base is then the anti-expert)"
            )
        members.append(EnsembleMember(e_model, e_tok, -alpha, fmt_a, "anti-expert (adapter off)", adapter=BASE_ADAPTER))
        return members
    if not isinstance(anti_expert, (str, Path)) and is_peft_model(e_model):
        a_model = _unpack(anti_expert, "anti_expert")[0]
        if a_model is e_model.get_base_model():
            # peft injected the LoRA layers into this very object: it IS the expert unless the adapter is off
            members.append(EnsembleMember(e_model, e_tok, -alpha, fmt_a, "anti-expert (adapter off)",
                                          adapter=BASE_ADAPTER))
            return members
    a_model, a_tok, a_name = get(anti_expert, "anti_expert")
    members.append(EnsembleMember(a_model, a_tok, -alpha, fmt_a, f"anti-expert {a_name}" if a_name else "anti-expert"))
    return members


__all__ = ["build_proxy_members", "load"]
