"""The fine-tuning config: one YAML file (+ key=value overrides), validated before anything is loaded.

    model:  which base model and how to load it
    method: lora | qlora | full
    lora:   adapter shape (r, alpha, dropout, target modules)
    data:   sources (IMHI, counselling, JSONL) with weights, eval split, max length, prompt template
    train:  optimisation, batching, evaluation, checkpoints, early stopping, output folder

Every key is checked against these dataclasses (a typo names the valid keys) and `validate()` checks the
values that depend on each other, so a broken config fails in a second, not after an hour of training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mentalens.errors import ConfigError

SourceKind = Literal["imhi", "counselchat", "hf_counselling", "jsonl"]


@dataclass
class ModelSection:
    name: str = "smollm2-135m-instruct"  # hub id, local folder, .gguf, or offline alias
    dtype: str = "auto"  # auto (fp32 on CPU, checkpoint dtype on GPU) | float32 | bfloat16 | float16
    trust_remote_code: bool = False
    attn_implementation: str | None = None  # sdpa | eager | flash_attention_2 (None: transformers' default)
    gradient_checkpointing: bool = False


@dataclass
class LoraSection:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    modules_to_save: list[str] = field(default_factory=list)
    bias: Literal["none", "all", "lora_only"] = "none"
    use_rslora: bool = False


@dataclass
class SourceSection:
    """One training source. weight: how often each of its examples is seen per epoch on average
    (0.5 = a random half, 2 = every example twice), applied after `limit`."""

    kind: SourceKind = "imhi"
    path: str | None = None  # folder/file; None = the default data folder (IMHI, CounselChat)
    name: str | None = None  # hf_counselling: registered dataset name (amod, marmik, es)
    sets: list[str] = field(default_factory=list)  # imhi: sets to use (empty = all with training data)
    split: str = "train"  # imhi: train | val | train+val; counselchat: train | val | test | all
    fmt: Literal["instruction", "complete"] = "instruction"  # imhi query format
    system_prompt: str | None = None  # None: counselling sources get the counselling system prompt
    limit: int | None = None  # at most this many examples (sampled, stratified by set and label)
    balance: bool = False  # sample the same number from every (set, label) stratum, as far as possible
    max_chars: int | None = None  # skip examples whose prompt is longer than this many characters
    weight: float = 1.0


@dataclass
class DataSection:
    sources: list[SourceSection] = field(default_factory=lambda: [SourceSection()])
    eval_sources: list[SourceSection] = field(default_factory=list)  # if empty: held out from sources
    eval_fraction: float = 0.05
    eval_max_examples: int | None = 200
    max_length: int = 1024  # tokens per example (prompt + answer)
    overlength: Literal["drop", "error"] = "drop"
    template: Literal["chat", "raw"] = "chat"  # chat: the model's chat template (or the plain one); raw: text
    data_dir: str | None = None  # where the IMHI test sets for the leakage guard live (default data folder)
    seed: int = 42


@dataclass
class TrainSection:
    output_dir: str = "artifacts/finetune/run"
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 4  # sequences per device per micro-batch
    grad_accum: int = 4
    learning_rate: float = 2e-4
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optimizer: str = "adamw_torch"
    batching: Literal["auto", "packed", "grouped", "padded"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    logging_steps: int = 5
    eval_steps: int = 50
    save_steps: int = 50
    save_total_limit: int = 2
    keep_checkpoints: bool = False  # delete checkpoints once the run has finished and saved its adapter
    early_stopping_patience: int = 0  # evaluations without improvement before stopping; 0 = off
    early_stopping_threshold: float = 0.0
    eval_before: bool = True  # evaluate the untouched model first (the "before" of before/after)
    resume: str = "auto"  # auto: continue from the last complete checkpoint in output_dir | never | a path
    seed: int = 42
    threads: int | None = None  # torch CPU threads (None: torch's default)
    tensorboard: bool = True
    dataloader_workers: int = 0


@dataclass
class FinetuneConfig:
    model: ModelSection = field(default_factory=ModelSection)
    method: Literal["lora", "qlora", "full"] = "lora"
    lora: LoraSection = field(default_factory=LoraSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)


IMHI_SPLITS = ("train", "val", "train+val")
COUNSEL_SPLITS = ("train", "val", "test", "all")


def validate(cfg: FinetuneConfig) -> FinetuneConfig:
    """Check values that a type alone cannot (ranges, combinations); raise one ConfigError naming the fix."""
    t, d, lo = cfg.train, cfg.data, cfg.lora
    checks = [
        (t.learning_rate > 0, f"train.learning_rate must be > 0, not {t.learning_rate}"),
        (t.batch_size >= 1, f"train.batch_size must be >= 1, not {t.batch_size}"),
        (t.grad_accum >= 1, f"train.grad_accum must be >= 1, not {t.grad_accum}"),
        (t.epochs > 0 or t.max_steps > 0, "set train.epochs > 0 or train.max_steps > 0"),
        (0 <= t.warmup_ratio < 1, f"train.warmup_ratio must be in [0, 1), not {t.warmup_ratio}"),
        (t.logging_steps >= 1 and t.eval_steps >= 1 and t.save_steps >= 1,
         "train.logging_steps, eval_steps and save_steps must be >= 1"),
        (t.save_total_limit >= 1, "train.save_total_limit must be >= 1 (a crash must leave a checkpoint)"),
        (t.early_stopping_patience >= 0, "train.early_stopping_patience must be >= 0 (0 = off)"),
        (t.threads is None or t.threads >= 1, "train.threads must be >= 1"),
        (0 <= d.eval_fraction < 1, f"data.eval_fraction must be in [0, 1), not {d.eval_fraction}"),
        (d.max_length >= 16, f"data.max_length must be >= 16, not {d.max_length}"),
        (bool(d.sources), "data.sources is empty: add at least one source (kind: imhi | counselchat | jsonl)"),
        (d.eval_max_examples is None or d.eval_max_examples >= 1, "data.eval_max_examples must be >= 1"),
        (lo.r >= 1 and lo.alpha > 0, "lora.r must be >= 1 and lora.alpha > 0"),
        (0 <= lo.dropout < 1, f"lora.dropout must be in [0, 1), not {lo.dropout}"),
        (bool(lo.target_modules), "lora.target_modules is empty: use [all-linear] or name modules (q_proj, v_proj)"),
        (t.resume in ("auto", "never") or bool(t.resume.strip()), "train.resume must be auto, never or a path"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if t.early_stopping_patience and not (d.eval_sources or d.eval_fraction > 0):
        raise ConfigError("early stopping needs an eval set: set data.eval_fraction > 0 or data.eval_sources")
    if t.early_stopping_patience and t.save_steps % t.eval_steps:
        raise ConfigError(
            f"with early stopping, train.save_steps ({t.save_steps}) must be a multiple of train.eval_steps "
            f"({t.eval_steps}) so the best checkpoint exists"
        )
    for where, sources in (("data.sources", d.sources), ("data.eval_sources", d.eval_sources)):
        for i, s in enumerate(sources):
            _validate_source(s, f"{where}[{i}]")
    return cfg


def _validate_source(s: SourceSection, where: str) -> None:
    if s.weight <= 0:
        raise ConfigError(f"{where}.weight must be > 0, not {s.weight}")
    if s.limit is not None and s.limit < 1:
        raise ConfigError(f"{where}.limit must be >= 1 (or null for no limit)")
    if s.max_chars is not None and s.max_chars < 1:
        raise ConfigError(f"{where}.max_chars must be >= 1 (or null)")
    if s.kind == "imhi" and s.split not in IMHI_SPLITS:
        raise ConfigError(f"{where}.split must be one of {', '.join(IMHI_SPLITS)} for IMHI, not {s.split!r}")
    if s.kind == "counselchat" and s.split not in COUNSEL_SPLITS:
        raise ConfigError(f"{where}.split must be one of {', '.join(COUNSEL_SPLITS)} for CounselChat, not {s.split!r}")
    if s.kind == "jsonl" and not s.path:
        raise ConfigError(f"{where}.path is required for a jsonl source: the .jsonl file to read")
    if s.kind == "hf_counselling" and not s.name:
        raise ConfigError(f"{where}.name is required for hf_counselling (amod, marmik, es)")


__all__ = [
    "DataSection",
    "FinetuneConfig",
    "LoraSection",
    "ModelSection",
    "SourceSection",
    "TrainSection",
    "validate",
]
