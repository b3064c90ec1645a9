"""Fine-tune the analyzer's encoder with LoRA (multi-task, on the leakage-free TRAIN splits), before its heads.

Why: issue 3 asks to fine-tune all-MiniLM-L6-v2 if it beats frozen features. `bench/analyzer_finetune.py`
measures that on validation data (same heads on both arms); when it pays, `mentalens train analyzer` runs this
step first, ships the small adapter (~290 kB, PEFT format) inside the artefact, and the encoder merges it into
the base weights when it loads (so serving costs nothing extra: the merged model is exported to ONNX as before).

The training reads every post exactly as the analyzer does (mentalens.analyze.text.prepare, the neutral
reading when the encoder config says so, one window per sentence run) and back-propagates through the very
pooling the heads see (mean of all tokens + max over sentence means, both unit length): one linear head per
task/aspect on top, cross-entropy, one task per step. Only the train splits are used (IRF: raw IRF train, both
risk factors), so every validation post stays unseen by the encoder and the heads' cross-validation on
train+val is not flattered by it. The heads trained here are thrown away: the shipped heads are refitted on
the tuned encoder's features by `analyze.train`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mentalens.analyze.datasets import TrainingData

Log = Callable[[str], None]
TaskData = tuple[list[str], list[list[str]], list[tuple[str, ...]]]  # texts, labels per head, label names per head

TUNED_SETS = ("DR", "dreaddit", "SAD", "CAMS")  # IMHI sets with a train split; IRF joins from its raw train
FEATURE_SCALE = 10.0  # unit-length features: a fixed scale lets the linear heads reach confident logits


@dataclasses.dataclass
class TuningConfig:
    """LoRA fine-tuning of the encoder (defaults: the run `bench/analyzer_finetune.py` confirmed)."""

    enabled: bool = True
    rank: int = 8  # alpha = 2 * rank
    dropout: float = 0.1
    targets: tuple[str, ...] = ("query", "value")  # attention projections of all 6 layers
    epochs: int = 2
    lr: float = 1e-3  # LoRA (AdamW, 6% warmup, linear decay, grad clip 1.0)
    head_lr: float = 3e-3
    max_tokens: int = 192  # tokens read per post while tuning
    batch_tokens: int = 3072  # tokens per step
    batch_posts: int = 32  # posts per step at most
    max_train_posts: int = 0  # per task; 0 = all (smaller only for smoke tests)
    seed: int = 13
    threads: int | None = None  # torch threads while tuning (None: torch's default)


def tuning_tasks(td: TrainingData, max_posts: int = 0, seed: int = 13) -> dict[str, TaskData]:
    """The train splits the encoder is tuned on: DR, dreaddit, SAD, CAMS and raw IRF (both risk factors).

    A post that is in ANY head's validation split is left out: IMHI's CAMS, IRF and MultiWD partly share Reddit
    posts (62 of the 325 Irf val posts are CAMS train posts; 101 of the 140 MultiWD posts are raw IRF train
    posts), and a tuned encoder that had read a validation post under another task's label would flatter the
    validation figures the tuning is judged on."""
    held = {t for h in td.heads.values() for t in h.val.texts}
    if td.tsid_weak is not None:
        held.update(td.tsid_weak.val.texts)
    tasks: dict[str, TaskData] = {}
    for key in TUNED_SETS:
        h = td.heads[key]
        pairs = [(t, y) for t, y in zip(h.train.texts, h.train.labels, strict=True) if t not in held]
        texts, labels = subsample([t for t, _ in pairs], [y for _, y in pairs], max_posts, seed)
        tasks[key] = (texts, [labels], [tuple(h.labels)])
    irf = [td.heads[k] for k in ("IRF.thwarted belongingness", "IRF.perceived burdensomeness")]
    if irf[0].extra_train is None or irf[1].extra_train is None or irf[0].extra_train.texts != irf[1].extra_train.texts:
        raise ValueError("raw IRF train must label the same posts for both risk factors")
    free = [i for i, t in enumerate(irf[0].extra_train.texts) if t not in held]
    keep = sorted(random.Random(seed).sample(free, min(len(free), max_posts or len(free))))
    tasks["IRF"] = (
        [irf[0].extra_train.texts[i] for i in keep],
        [[h.extra_train.labels[i] for i in keep] for h in irf],  # type: ignore[union-attr]
        [tuple(h.labels) for h in irf],
    )
    return tasks


def subsample(texts: list[str], labels: list[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """A fixed-seed random subset of n items (all of them, in order, when n is 0 or not smaller)."""
    if not n or len(texts) <= n:
        return texts, labels
    idx = sorted(random.Random(seed).sample(range(len(texts)), n))
    return [texts[i] for i in idx], [labels[i] for i in idx]


class Pooled:
    """Posts tokenised exactly as Encoder.encode_prepared reads them with unit="sentence" (neutral text when
    configured, one window per sentence run of <= max_tokens-2 tokens), capped at `cap` tokens for training."""

    def __init__(self, encoder: Any, texts: Sequence[str], cap: int):
        from mentalens.analyze.encoder import _runs, _token_owner
        from mentalens.analyze.text import prepare
        from mentalens.evaluate.bias.neutral import neutralize

        self.posts: list[list[tuple[int, list[int]]]] = []  # per post: (sentence index, window token ids)
        body = encoder.config.max_tokens - 2
        tok = encoder.tokenizer
        for t in texts:
            p = prepare(t, allow_empty=True)
            text, spans = p.encoder_text, p.encoder_spans
            if encoder.config.neutralize:
                text, spans = neutralize(text, spans)
            ids = tok(text, add_special_tokens=False, return_offsets_mapping=True) if text else None
            windows: list[tuple[int, list[int]]] = []
            used = 0
            if ids is not None and ids["input_ids"]:
                owner = _token_owner(ids["offset_mapping"], spans)
                for s, e in _runs(owner, len(ids["input_ids"]), body):
                    room = cap - used - 2
                    if room <= 0:
                        break
                    e = min(e, s + room)
                    windows.append((int(owner[s]), [encoder.cls_id, *ids["input_ids"][s:e], encoder.sep_id]))
                    used += e - s + 2
            if not windows:  # an empty post reads as [CLS][SEP]
                windows.append((0, [encoder.cls_id, encoder.sep_id]))
            self.posts.append(windows)

    def tokens(self, i: int) -> int:
        return sum(len(w) for _, w in self.posts[i])


def pooled_features(model: Any, pooled: Pooled, idx: Sequence[int], pad_id: int, chunk_tokens: int = 1024) -> Any:
    """Differentiable post features (n, 2*dim) = [l2(mean of all tokens), max over l2(sentence means)]: what
    `features.encoded_features(..., "mean+max")` computes from frozen encodings."""
    import torch
    import torch.nn.functional as F

    windows = []  # (post row, sentence slot, ids)
    slots: dict[tuple[int, int], int] = {}
    for row, i in enumerate(idx):
        for sent, ids in pooled.posts[i]:
            windows.append((row, slots.setdefault((row, sent), len(slots)), ids))
    order = sorted(range(len(windows)), key=lambda w: len(windows[w][2]))
    sums: list[Any] = [None] * len(windows)
    counts = torch.tensor([len(w[2]) for w in windows], dtype=torch.float32)
    start = 0
    while start < len(order):  # length-sorted chunks: little padding
        end = start + 1
        while end < len(order) and (end - start + 1) * len(windows[order[end]][2]) <= chunk_tokens:
            end += 1
        group = order[start:end]
        width = len(windows[group[-1]][2])
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for j, w in enumerate(group):
            seq = windows[w][2]
            ids[j, : len(seq)] = torch.tensor(seq)
            mask[j, : len(seq)] = 1
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        summed = (hidden * mask.unsqueeze(-1)).sum(1)
        for j, w in enumerate(group):
            sums[w] = summed[j]
        start = end
    S = torch.stack(sums)
    post_of_window = torch.tensor([w[0] for w in windows])
    slot_of_window = torch.tensor([w[1] for w in windows])
    n, dim = len(idx), S.shape[1]
    post_sum = torch.zeros(n, dim).index_add(0, post_of_window, S)
    post_cnt = torch.zeros(n).index_add(0, post_of_window, counts)
    mean = F.normalize(post_sum / post_cnt.clamp(min=1).unsqueeze(1), dim=1, eps=1e-12)
    sent_sum = torch.zeros(len(slots), dim).index_add(0, slot_of_window, S)
    sent_cnt = torch.zeros(len(slots)).index_add(0, slot_of_window, counts)
    sent_vec = F.normalize(sent_sum / sent_cnt.clamp(min=1).unsqueeze(1), dim=1, eps=1e-12)
    post_of_slot = torch.zeros(len(slots), dtype=torch.long)
    for (row, _), s in slots.items():
        post_of_slot[s] = row
    mx = torch.full((n, dim), -math.inf).scatter_reduce(
        0, post_of_slot.unsqueeze(1).expand(-1, dim), sent_vec, reduce="amax", include_self=True
    )
    return torch.cat([mean, mx], dim=1)


@dataclasses.dataclass
class TuningResult:
    model: Any  # the PEFT-wrapped encoder (eval mode), not merged
    heads: dict[str, Any]  # task -> ModuleList of the jointly trained linear heads (diagnostic only)
    info: dict[str, Any]

    def save_adapter(self, folder: str | Path, base_model: str) -> Path:
        """Write the adapter in PEFT format (adapter_config.json + adapter_model.safetensors) plus a training
        log; the config names the base model by its mentalens name, not by this machine's path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder))
        cfg_file = folder / "adapter_config.json"
        cfg = json.loads(cfg_file.read_text())
        cfg["base_model_name_or_path"] = base_model
        cfg_file.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        (folder / "training.json").write_text(json.dumps(self.info, indent=1, sort_keys=True) + "\n")
        return folder

    def merged(self) -> Any:
        """The base model with the adapter folded into its weights (what the analyzer serves)."""
        return self.model.merge_and_unload()


def tune_encoder(
    encoder: Any,
    tasks: dict[str, TaskData],
    cfg: TuningConfig,
    log: Log = print,
    progress: Callable[[int, int], None] | None = None,
) -> TuningResult:
    """Multi-task LoRA training of encoder.model (the Encoder must use the torch runtime, fp32)."""
    import torch

    if encoder.config.runtime != "torch" or encoder.config.quantize:
        raise ValueError("tune_encoder needs the encoder's fp32 PyTorch weights (runtime='torch', quantize=False)")
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(encoder, tasks, cfg, log, progress)
    finally:
        torch.set_num_threads(threads)


def _train(
    encoder: Any, tasks: dict[str, TaskData], cfg: TuningConfig, log: Log, progress: Callable[[int, int], None] | None
) -> TuningResult:
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    lora = LoraConfig(r=cfg.rank, lora_alpha=2 * cfg.rank, lora_dropout=cfg.dropout, target_modules=list(cfg.targets))
    model = get_peft_model(encoder.model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    dim = 2 * encoder.dim  # mean + max
    heads = torch.nn.ModuleDict(
        {
            name.replace(".", "_"): torch.nn.ModuleList([torch.nn.Linear(dim, len(n)) for n in names_list])
            for name, (_, _, names_list) in tasks.items()
        }
    )
    pooled = {name: Pooled(encoder, texts, cfg.max_tokens) for name, (texts, _, _) in tasks.items()}
    targets = {
        name: [torch.tensor([names.index(y) for y in ys]) for ys, names in zip(labels, names_list, strict=True)]
        for name, (_, labels, names_list) in tasks.items()
    }

    def batches() -> list[tuple[str, list[int]]]:
        out = []
        for name, pp in pooled.items():
            order = list(range(len(pp.posts)))
            rng.shuffle(order)
            cur: list[int] = []
            tokens = 0
            for i in order:
                if cur and (tokens + pp.tokens(i) > cfg.batch_tokens or len(cur) >= cfg.batch_posts):
                    out.append((name, cur))
                    cur, tokens = [], 0
                cur.append(i)
                tokens += pp.tokens(i)
            if cur:
                out.append((name, cur))
        rng.shuffle(out)  # tasks mixed: one task per step, in random order
        return out

    steps_per_epoch = len(batches())
    total = max(1, steps_per_epoch * cfg.epochs)
    warmup = max(1, int(0.06 * total))
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr},
            {"params": list(heads.parameters()), "lr": cfg.head_lr},
        ],
        weight_decay=0.01,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup))
    )
    model.train()
    heads.train()
    t0, c0, step, tokens_seen = time.time(), time.process_time(), 0, 0
    history = []
    for epoch in range(cfg.epochs):
        run_loss: dict[str, list[float]] = {}
        for name, idx in batches():
            feats = pooled_features(model, pooled[name], idx, encoder.pad_id) * FEATURE_SCALE
            loss = sum(
                torch.nn.functional.cross_entropy(head(feats), tgt[idx])
                for head, tgt in zip(heads[name.replace(".", "_")], targets[name], strict=True)
            )
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
            opt.step()
            sched.step()
            step += 1
            tokens_seen += sum(pooled[name].tokens(i) for i in idx)
            run_loss.setdefault(name, []).append(float(loss.detach()))
            if progress:
                progress(step, total)
            if step % 25 == 0 or step == total:
                el = time.time() - t0
                log(
                    f"  step {step}/{total} (epoch {epoch + 1}) {tokens_seen / el:,.0f} tokens/s, "
                    f"eta {el / step * (total - step) / 60:.1f} min, loss[{name}] {float(loss.detach()):.3f}"
                )
        history.append({k: round(float(np.mean(v)), 4) for k, v in run_loss.items()})
        log(f"  epoch {epoch + 1} mean loss per task: {history[-1]}")
    model.eval()
    heads.eval()
    info = {
        "config": dataclasses.asdict(cfg),
        "posts": {name: len(p.posts) for name, p in pooled.items()},
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "steps": step,
        "tokens": tokens_seen,
        "tokens_per_s": round(tokens_seen / max(time.time() - t0, 1e-9), 1),
        "trainable_params": int(trainable),
        "adapter_fp32_bytes": int(4 * trainable),
        "loss_per_epoch": history,
    }
    return TuningResult(model, {n: heads[n.replace(".", "_")] for n in tasks}, info)


def adapter_digest(folder: str | Path) -> str:
    """A short hash of an adapter's weights and config (part of the encoder's feature fingerprint)."""
    import hashlib

    folder = Path(folder)
    h = hashlib.sha1()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        f = folder / name
        if f.is_file():
            h.update(name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


__all__ = ["FEATURE_SCALE", "TuningConfig", "TuningResult", "adapter_digest", "pooled_features", "subsample",
           "tune_encoder", "tuning_tasks"]  # fmt: skip
