"""LoRA / QLoRA / full supervised fine-tuning of any Hugging Face causal LM on mental-health data.

    from mentalens.finetune import load_finetune_config, run_finetune
    cfg = load_finetune_config("configs/finetune/smollm2-imhi.yaml", ["train.max_steps=100"])
    result = run_finetune(cfg)          # result.adapter_dir, result.metrics

CLI: `mentalens finetune CONFIG.yaml [key=value ...]`, `mentalens finetune merge ADAPTER --out DIR`;
distributed: `torchrun --nproc_per_node N -m mentalens.finetune CONFIG.yaml [key=value ...]`.
Importing this package does not import torch; running does.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mentalens.finetune.config import (
    DataSection,
    FinetuneConfig,
    LoraSection,
    ModelSection,
    SourceSection,
    TrainSection,
    validate,
)

if TYPE_CHECKING:
    from mentalens.finetune.trainer import FinetuneResult


def load_finetune_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> FinetuneConfig:
    """A validated FinetuneConfig from YAML + key=value overrides (typos name the valid keys)."""
    from mentalens.config import load_config

    return validate(load_config(FinetuneConfig, path, list(overrides)))


def run_finetune(cfg: FinetuneConfig, **kwargs: Any) -> FinetuneResult:
    """Train (see mentalens.finetune.trainer.run_finetune)."""
    from mentalens.finetune.trainer import run_finetune as _run

    return _run(cfg, **kwargs)


def merge_adapter(adapter: str | Path, out_dir: str | Path, **kwargs: Any) -> Path:
    """Merge an adapter into its base (see mentalens.finetune.merge.merge_adapter)."""
    from mentalens.finetune.merge import merge_adapter as _merge

    return _merge(adapter, out_dir, **kwargs)


__all__ = [
    "DataSection",
    "FinetuneConfig",
    "LoraSection",
    "ModelSection",
    "SourceSection",
    "TrainSection",
    "load_finetune_config",
    "merge_adapter",
    "run_finetune",
    "validate",
]
