"""The fine-tuning run: config -> checks -> data -> model (+LoRA) -> transformers Trainer -> adapter.

Everything that can fail because of the user's input (unknown model, typo, no data after filtering,
max_length beyond the model, 4-bit without CUDA) fails before the model is loaded or a step is taken.

Why transformers' Trainer with our collators rather than trl's SFTTrainer: SFTTrainer masks the prompt
only for prompt/completion data or templates with `{% generation %}` markers, and its padding-free mode
requires FlashAttention. Our encoder masks every non-assistant token for any chat template (or the plain
one) and our packed batches work with SDPA/eager too (tests check the loss equals the unpacked loss).
The same command runs on one CPU, one GPU, or under `torchrun` / `accelerate launch` (DDP; FSDP and
DeepSpeed ZeRO through the accelerate configs in configs/finetune/accelerate-*.yaml).

Output folder:
    adapter/           PEFT adapter + tokenizer (method lora/qlora)   |  model/ (method full)
    config.yaml        the resolved config          metrics.json      before/after eval loss, speed
    data_report.json   sources, leakage guard, drops   tensorboard/    training curves
    ranks/rank<N>.json steps and weight checksum of each process
    checkpoint-<step>/ resumable checkpoints while training (kept only with train.keep_checkpoints)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mentalens.config import save_config, to_dict
from mentalens.errors import ConfigError, DataError, MentalensError, ModelError
from mentalens.finetune.collate import PackedCollator, PaddedCollator, encode_example
from mentalens.finetune.config import FinetuneConfig, validate
from mentalens.finetune.data import build_examples


class TrainingInterrupted(MentalensError):
    """The run stopped early (Ctrl-C, SIGTERM); the last complete checkpoint resumes it."""

    exit_code = 130


@dataclass
class FinetuneResult:
    output_dir: Path
    adapter_dir: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ helpers


def world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun / accelerate environment."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def checkpoint_is_complete(path: Path) -> bool:
    """A checkpoint the Trainer can resume: state, weights and optimizer all written."""
    state = path / "trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    weights = any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    optim = (path / "optimizer.pt").is_file() or any(path.glob("optimizer*"))
    return weights and optim


def find_resumable_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint-<step>; half-written ones (a crash during save) are set aside."""
    if not out_dir.is_dir():
        return None
    ckpts = []
    for p in out_dir.glob("checkpoint-*"):
        suffix = p.name.removeprefix("checkpoint-")
        if p.is_dir() and suffix.isdigit():
            ckpts.append((int(suffix), p))
    for _, path in sorted(ckpts, reverse=True):
        if checkpoint_is_complete(path):
            return path
        if world()[0] == 0:  # keep it for inspection, out of the Trainer's way
            aside = path.with_name(f"incomplete-{path.name}-{int(time.time())}")
            os.replace(path, aside)
    return None


def _precision(cfg: FinetuneConfig) -> dict[str, bool]:
    import torch

    p = cfg.train.precision
    cuda = torch.cuda.is_available()
    if p == "auto":
        if not cuda:
            return {}
        return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}
    if p == "fp16" and not cuda:
        raise ConfigError("train.precision=fp16 needs a CUDA GPU: use auto or fp32 on CPU")
    return {"bf16": p == "bf16", "fp16": p == "fp16"}


def resolve_batching(cfg: FinetuneConfig) -> str:
    """auto: padding-free packing with FlashAttention (cu_seqlens, no masked compute); otherwise
    length-grouped padded batches, which on SDPA/eager avoid the packed block mask's quadratic cost."""
    mode = cfg.train.batching
    if mode != "auto":
        return mode
    attn = (cfg.model.attn_implementation or "").lower()
    return "packed" if attn.startswith("flash") else "grouped"


def _write_json(path: Path, data: Any) -> None:
    from mentalens.data.io import atomic_write

    with atomic_write(path) as f:
        json.dump(data, f, indent=2, ensure_ascii=False, default=str)


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move a finished folder into place; the previous one (if any) is removed only afterwards."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ stages


def check_model(cfg: FinetuneConfig) -> tuple[Path, Path | None, int | None]:
    """(base model folder, adapter to continue from, max positions); fails fast on bad model settings."""
    from transformers import AutoConfig

    from mentalens.llm.loading import (
        adapter_base,
        is_adapter_dir,
        model_max_length,
        quantization_config,
        resolve_model,
    )

    path = resolve_model(cfg.model.name)
    start_adapter = None
    if is_adapter_dir(path) and not (path / "config.json").is_file():
        if cfg.method == "full":
            raise ConfigError("model.name is a LoRA adapter: full fine-tuning needs a base model (merge it first)")
        start_adapter, path = path, resolve_model(adapter_base(path))
    try:
        mcfg = AutoConfig.from_pretrained(str(path), trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the config of {cfg.model.name!r} at {path} ({exc}): check the model") from None
    limit = model_max_length(mcfg)
    if limit is not None and cfg.data.max_length > limit:
        raise ConfigError(
            f"data.max_length={cfg.data.max_length} is longer than {cfg.model.name!r} supports ({limit} positions): "
            f"set data.max_length <= {limit}"
        )
    if cfg.method == "qlora":
        quantization_config(True, False)
    return path, start_adapter, limit


def encode_rows(examples: list, tokenizer: Any, cfg: FinetuneConfig, which: str, report: Any) -> list[dict]:
    """Tokenised rows; examples over data.max_length are dropped (counted) or rejected, per config."""
    rows, dropped = [], 0
    for ex in examples:
        row = encode_example(tokenizer, ex, cfg.data.template)
        if row["length"] > cfg.data.max_length:
            if cfg.data.overlength == "error":
                raise DataError(
                    f"a {which} example from {ex.source} has {row['length']} tokens, more than data.max_length="
                    f"{cfg.data.max_length}: raise max_length, set data.overlength=drop, or filter with max_chars"
                )
            dropped += 1
            continue
        if row["n_answer"] == 0:
            continue
        rows.append(row)
    report.dropped_overlength[which] = dropped
    return rows


def build_model(cfg: FinetuneConfig, path: Path, start_adapter: Path | None) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from mentalens.llm.loading import _torch_dtype, attach_adapter, quantization_config

    _, _, local_rank = world()
    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = {
        "dtype": _torch_dtype(cfg.model.dtype, "cuda" if cuda else "cpu"),
        "trust_remote_code": cfg.model.trust_remote_code,
    }
    if cfg.model.attn_implementation:
        kwargs["attn_implementation"] = cfg.model.attn_implementation
    if cfg.method == "qlora":
        kwargs["quantization_config"] = quantization_config(True, False)
        kwargs["device_map"] = {"": local_rank}
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {cfg.model.name!r} for training ({str(exc).splitlines()[0][:200]})") from None
    model.config.use_cache = False  # training: no KV cache (also lets packed position_ids take effect)
    if cfg.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.model.gradient_checkpointing)
    elif cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.method == "full":
        return model
    if start_adapter is not None:
        return attach_adapter(model, start_adapter, is_trainable=True)
    from peft import LoraConfig, get_peft_model

    lo = cfg.lora
    targets: Any = "all-linear" if list(lo.target_modules) == ["all-linear"] else list(lo.target_modules)
    lora = LoraConfig(
        task_type="CAUSAL_LM", r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=targets,
        bias=lo.bias, modules_to_save=list(lo.modules_to_save) or None, use_rslora=lo.use_rslora,
    )
    try:
        model = get_peft_model(model, lora)
    except ValueError as exc:
        raise ConfigError(
            f"LoRA cannot be applied ({str(exc).splitlines()[0][:200]}): check lora.target_modules "
            "(e.g. [all-linear] or [q_proj, v_proj])"
        ) from None
    if cfg.model.gradient_checkpointing:
        model.enable_input_require_grads()
    return model


def answer_only_loss(
    model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None, logits_only_where_needed: bool = True
) -> tuple[Any, Any]:
    """Summed next-token loss on answer tokens / num_items_in_batch (or their count), and the outputs.

    The output layer is applied only at positions whose next token is an answer token (`logits_to_keep`),
    so prompt tokens cost no vocabulary projection: 20% of a 135M model's FLOPs per token, most of them for
    large-vocabulary models such as Gemma (262k tokens).
    """
    import torch
    import torch.nn.functional as F

    labels = inputs["labels"]
    targets = labels[:, 1:]
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    keep = (targets != -100).any(dim=0).nonzero().squeeze(-1)
    outputs = None
    if logits_only_where_needed and keep.numel():
        try:
            outputs = model(**model_inputs, logits_to_keep=keep)
        except TypeError:  # a model without logits_to_keep: project everything, then select
            outputs = None
        if outputs is not None and outputs.logits.shape[1] != keep.numel():
            outputs = None
    if outputs is None:
        outputs = model(**model_inputs)
        logits = outputs.logits[:, :-1][:, keep] if keep.numel() else outputs.logits[:, :0]
    else:
        logits = outputs.logits
    picked = targets[:, keep]
    loss = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), picked.reshape(-1), ignore_index=-100, reduction="sum"
    )
    denom = num_items_in_batch if num_items_in_batch is not None else (picked != -100).sum()
    if torch.is_tensor(denom):
        denom = denom.to(loss.device)
    loss = loss / (denom if (not torch.is_tensor(denom) or denom > 0) else 1)
    return loss, outputs


def _trainer_class() -> Any:
    from transformers import Trainer

    class AnswerOnlyTrainer(Trainer):
        """Trainer whose loss projects to the vocabulary only where an answer token is predicted."""

        loss_is_scaled_for_ga = True

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, outputs = answer_only_loss(model, inputs, num_items_in_batch)
            if num_items_in_batch is None:  # evaluation: a per-batch mean, not scaled for accumulation
                return (loss, outputs) if return_outputs else loss
            if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
            return (loss, outputs) if return_outputs else loss

    return AnswerOnlyTrainer


def _dataset(rows: list[dict]) -> Any:
    import datasets

    return datasets.Dataset.from_list(rows) if rows else None


# ------------------------------------------------------------------------------------------------ run


def run_finetune(
    cfg: FinetuneConfig, *, console: Any = None, interrupt_after_step: int | None = None, dry_run: bool = False
) -> FinetuneResult:
    """Fine-tune cfg.model on cfg.data; returns where the adapter and metrics were written."""
    import torch

    from mentalens.finetune.collate import _adds_bos
    from mentalens.llm.loading import _load_tokenizer_dir, is_adapter_dir
    from mentalens.llm.prompts import has_chat_template, plain_chat_template

    validate(cfg)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    rank, world_size, _ = world()
    is_main = rank == 0
    out = Path(cfg.train.output_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"train.output_dir {out} is a file: choose a folder")

    path, start_adapter, _ = check_model(cfg)
    tok_dir = path
    if start_adapter is not None and (start_adapter / "tokenizer_config.json").is_file():
        tok_dir = start_adapter
    tokenizer = _load_tokenizer_dir(tok_dir, cfg.model.trust_remote_code, padding_side="right")
    if cfg.data.template == "chat" and not has_chat_template(tokenizer):
        # a base model: train on the documented plain template and ship it as the adapter's chat template,
        # so every backend formats prompts for the tuned model exactly as it was trained
        tokenizer.chat_template = plain_chat_template(bos=_adds_bos(tokenizer))

    train_ex, eval_ex, report = build_examples(cfg.data)
    train_rows = encode_rows(train_ex, tokenizer, cfg, "train", report)
    eval_rows = encode_rows(eval_ex, tokenizer, cfg, "eval", report)
    report.train, report.eval = len(train_rows), len(eval_rows)
    if not train_rows:
        raise DataError(
            f"no training examples fit data.max_length={cfg.data.max_length} ({report.dropped_overlength['train']} "
            "too long): raise data.max_length or choose shorter sources"
        )
    answer_tokens = sum(r["n_answer"] for r in train_rows)
    if dry_run:
        return FinetuneResult(out, None, {"data": report.to_dict(), "train_answer_tokens": answer_tokens})

    from transformers import EarlyStoppingCallback, PrinterCallback, TrainingArguments

    from mentalens.finetune.callbacks import RankLogCallback, RichProgressCallback, StopAfterStepCallback

    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, path, start_adapter)
    batching = resolve_batching(cfg)
    collator = PackedCollator() if batching == "packed" else PaddedCollator(pad_id=tokenizer.pad_token_id)
    t = cfg.train
    has_eval = bool(eval_rows)
    early = has_eval and t.early_stopping_patience > 0
    resume: Path | None = None
    if t.resume == "auto":
        resume = find_resumable_checkpoint(out)
    elif t.resume != "never":
        resume = Path(t.resume).expanduser()
        if not checkpoint_is_complete(resume):
            raise ConfigError(f"train.resume={t.resume} is not a complete checkpoint folder: use auto or never")
    before_file = out / "metrics_before.json"
    # "before" is measured by the Trainer itself (eval_on_start): an evaluate() call before train() would
    # make accelerate skip the DDP wrapping and ranks would silently train apart.
    eval_on_start = has_eval and t.eval_before and not (resume is not None and before_file.is_file())
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optimizer,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        greater_is_better=False if early else None,
        seed=t.seed,
        data_seed=t.seed,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        train_sampling_strategy="group_by_length" if batching == "grouped" else "random",
        length_column_name="length",
        dataloader_num_workers=t.dataloader_workers,
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
        enable_jit_checkpoint=True,
        eval_on_start=eval_on_start,
        prediction_loss_only=True,
        **_precision(cfg),
    )
    callbacks: list[Any] = [RankLogCallback(out, model)]
    mean_answer = answer_tokens / len(train_rows)
    if is_main:
        callbacks.append(RichProgressCallback(console, mean_answer * t.batch_size * t.grad_accum * world_size))
        if t.tensorboard:
            from transformers.integrations import TensorBoardCallback

            tb = TensorBoardCallback()
            tb.logging_dir = str(out / "tensorboard")  # also used when it reopens for the final evaluation
            callbacks.append(tb)
    if early:
        callbacks.append(EarlyStoppingCallback(t.early_stopping_patience, t.early_stopping_threshold))
    if interrupt_after_step:
        callbacks.append(StopAfterStepCallback(interrupt_after_step))
    trainer = _trainer_class()(
        model=model, args=args, train_dataset=_dataset(train_rows), eval_dataset=_dataset(eval_rows),
        data_collator=collator, callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)

    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        _write_json(out / "data_report.json", report.to_dict())

    started = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except KeyboardInterrupt:
        last = find_resumable_checkpoint(out) if is_main else None
        where = f"{last.name}" if last else "none yet"
        raise TrainingInterrupted(
            f"training interrupted at step {trainer.state.global_step} (last complete checkpoint: {where}): "
            "run the same command again to resume"
        ) from None
    train_seconds = time.perf_counter() - started
    before: dict[str, Any] = {}
    if eval_on_start:
        before = next((dict(h) for h in trainer.state.log_history if "eval_loss" in h), {})
        if is_main:
            _write_json(before_file, before)
    elif has_eval and before_file.is_file():
        before = json.loads(before_file.read_text(encoding="utf-8"))
    after = trainer.evaluate() if has_eval else {}

    tmp = out / ".adapter.tmp" if cfg.method != "full" else out / ".model.tmp"
    final = out / ("model" if cfg.method == "full" else "adapter")
    trainer.save_model(str(tmp))
    metrics: dict[str, Any] = {
        "model": cfg.model.name,
        "method": cfg.method,
        "batching": batching,
        "world_size": world_size,
        "train_examples": len(train_rows),
        "eval_examples": len(eval_rows),
        "train_answer_tokens_per_epoch": answer_tokens,
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "eval_loss_before": before.get("eval_loss"),
        "eval_loss_after": after.get("eval_loss"),
        "train_runtime_s": round(train_seconds, 2),
        "answer_tokens_per_s_estimate": round(
            trainer.state.global_step * t.batch_size * t.grad_accum * world_size * mean_answer / train_seconds, 2
        ) if train_seconds > 0 else None,
        "stopped_early": bool(early and trainer.state.global_step < trainer.state.max_steps),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "resumed_from": str(resume) if resume else None,
        "leakage_guard": report.leakage,
        "config": to_dict(cfg),
    }
    if is_main:
        if cfg.method != "full":
            _fix_adapter_config(tmp, cfg.model.name)
        (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; config.yaml says the same
        tokenizer.padding_side = "left"
        tokenizer.save_pretrained(str(tmp))
        _replace_dir(tmp, final)
        _write_json(out / "metrics.json", metrics)
        if not t.keep_checkpoints:
            for ck in out.glob("checkpoint-*"):
                shutil.rmtree(ck, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    if math.isnan(metrics["train_loss"] or 0.0):
        raise DataError("training loss became NaN: lower train.learning_rate or use precision=fp32")
    return FinetuneResult(out, final if is_adapter_dir(final) or cfg.method == "full" else None, metrics)


def _fix_adapter_config(adapter_dir: Path, base_name: str) -> None:
    """Record the base by the name the user gave (alias or hub id), not this machine's cache path."""
    p = adapter_dir / "adapter_config.json"
    if not p.is_file():
        return
    data = json.loads(p.read_text(encoding="utf-8"))
    local = Path(base_name).expanduser()
    data["base_model_name_or_path"] = str(local.resolve()) if local.exists() else base_name
    p.write_text(json.dumps(data, indent=2), encoding="utf-8")


__all__ = [
    "FinetuneResult",
    "TrainingInterrupted",
    "check_model",
    "checkpoint_is_complete",
    "find_resumable_checkpoint",
    "resolve_batching",
    "run_finetune",
]
