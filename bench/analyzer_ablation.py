"""Where does a head's change between analyzer v1 and v2 come from? One head, the v1 -> v2 steps one at a time.

    python bench/analyzer_ablation.py [--head dreaddit]

v1 reads text as written with eager PyTorch fp32; v2 adds, in order: the int8 ONNX Runtime encoder, the
gender/name-neutral reading, dialect/age counterfactual augmentation. For each step the head is retrained
exactly as `mentalens train analyzer` does (same leakage-free data, same 5-fold CV over v2's C grid and the
threshold), and its CV weighted F1 (validation) and IMHI test weighted F1 are printed.
DIAGNOSTIC ONLY: the test column explains a change that was already measured; it is never used to choose a
configuration (that would be tuning on test). Writes bench/results/analyzer_ablation.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--head", default="dreaddit", help="a head without aspects: DR, dreaddit, SAD, CAMS")
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "analyzer_ablation.json"))
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table
    from sklearn.metrics import f1_score

    from mentalens.analyze.datasets import build_training_data
    from mentalens.analyze.encoder import Encoder, EncoderConfig
    from mentalens.analyze.features import FeatureCache, encoded_features
    from mentalens.analyze.text import prepare
    from mentalens.analyze.train import Augmented, TrainConfig, augment_texts, predict_proba, train_head
    from mentalens.data import LeakageGuard, load_imhi
    from mentalens.data.io import atomic_write
    from mentalens.paths import cache_dir, resolve_data_dir

    console = Console()
    t0 = time.time()
    data = resolve_data_dir(None)
    td = build_training_data(data, LeakageGuard.from_data_dir(data), seed=13)
    h = td.heads[args.head]
    if h.extra_train is not None:
        raise SystemExit(f"{args.head} has an extra source: use DR, dreaddit, SAD or CAMS")
    test = [r for r in load_imhi(split="test", fmt="instruction") if r.task == h.task and r.label is not None]
    steps = [
        ("v1: torch fp32, text as written", EncoderConfig(), ()),
        ("+ int8 ONNX Runtime", EncoderConfig(runtime="onnx", quantize=True), ()),
        ("+ neutral reading", EncoderConfig(runtime="onnx", quantize=True, neutralize=True), ()),
        ("+ dialect/age augmentation (v2)", EncoderConfig(runtime="onnx", quantize=True, neutralize=True),
         ("dialect", "age")),
    ]  # fmt: skip
    texts = h.train.texts + h.val.texts
    y = np.asarray(h.train.labels + h.val.labels)
    rows = []
    for name, enc_cfg, aug in steps:
        enc = Encoder(enc_cfg)
        cache = FeatureCache(enc, cache_dir("analyzer", "features"))
        X = cache.features(texts, name)
        A = None
        if aug:
            aug_texts, src = augment_texts(texts, aug)
            A = Augmented(cache.features(aug_texts), src)
        fh = train_head(h, X, y, TrainConfig(encoder=enc_cfg, augment=aug), None, A)
        # test posts are encoded here, never stored in the training feature cache
        Xt = np.stack([encoded_features(e) for e in enc.encode_prepared([prepare(r.post) for r in test])])
        P = predict_proba(fh.W, fh.b, Xt)
        labels = list(h.labels)
        pred = [labels[i] for i in P.argmax(1)]
        gold = [r.label for r in test]
        test_f1 = float(100 * f1_score(gold, pred, average="weighted", zero_division=0))
        m = fh.spec.metrics
        rows.append({"step": name, "cv_weighted_f1": m["cv_weighted_f1"], "C": m["C"],
                     "threshold": m.get("threshold"), "test_weighted_f1": round(test_f1, 2)})  # fmt: skip
        console.print(rows[-1])
    table = Table(title=f"{args.head}: v1 -> v2 one step at a time (weighted F1 x100; test column diagnostic only)")
    for col in ("step", "CV (train+val)", "C", "threshold", "IMHI test"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for r in rows:
        th = "" if r["threshold"] is None else f"{r['threshold']:.3f}"
        table.add_row(r["step"], f"{r['cv_weighted_f1']:.2f}", f"{r['C']:g}", th, f"{r['test_weighted_f1']:.2f}")
    console.print(table)
    out = {"head": args.head, "n_train_val": int(len(y)), "n_test": len(test), "steps": rows,
           "c_grid": list(TrainConfig().c_grid), "seconds": round(time.time() - t0, 1),
           "note": "diagnostic only: the test column is never used to choose a configuration"}  # fmt: skip
    with atomic_write(args.output) as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
