"""Merge a LoRA adapter into its base model and save a standalone model folder.

A merged model needs no peft at inference and runs at base-model speed in any runtime (vLLM, llama.cpp
after conversion, TGI). LoRA weights cannot be added to 4-bit weights, so a quantised base (a QLoRA run,
or a *-bnb-4bit checkpoint) is loaded unquantised or dequantised first and merged in full precision.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from mentalens.errors import ConfigError, ModelError


def merge_adapter(
    adapter: str | Path,
    out_dir: str | Path,
    *,
    base: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write base + adapter as one model folder (weights, config, tokenizer); returns out_dir."""
    import torch
    from transformers import AutoModelForCausalLM

    from mentalens.llm.loading import (
        _load_tokenizer_dir,
        _torch_dtype,
        adapter_base,
        attach_adapter,
        resolve_adapter,
        resolve_model,
    )

    adapter_dir = resolve_adapter(adapter)
    out = Path(out_dir).expanduser()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty: choose another folder or pass --overwrite")
    base_name = base or adapter_base(adapter_dir)
    base_path = resolve_model(base_name)
    torch_dtype = _torch_dtype(dtype, "cpu")
    if torch_dtype == "auto":
        torch_dtype = torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(base_path), dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load base {base_name!r} ({str(exc).splitlines()[0][:200]})") from None
    model = _dequantise(model, torch_dtype)
    merged = attach_adapter(model, adapter_dir, merge=True)
    tok_dir = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_path
    tokenizer = _load_tokenizer_dir(tok_dir, trust_remote_code)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _dequantise(model: Any, dtype: Any) -> Any:
    """bitsandbytes-quantised weights back to floating point (merging into 4-bit weights is lossy/undefined)."""
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False) or getattr(
        model.config, "quantization_config", None
    ):
        try:
            model = model.dequantize()
        except (AttributeError, ValueError, RuntimeError) as exc:
            raise ModelError(
                f"cannot dequantise this base for merging ({exc}): pass --base with the unquantised model"
            ) from None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model = model.to(dtype)
    return model


__all__ = ["merge_adapter"]
