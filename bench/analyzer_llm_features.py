"""Would a packaged small causal LM read posts better than the analyzer's encoder? A feature probe.

    python bench/analyzer_llm_features.py --model minilm
    python bench/analyzer_llm_features.py --model smollm2-135m-instruct    # ~16 min on 2 cores
    python bench/analyzer_llm_features.py --model gemma3-270m

Why: issue #3's remaining gaps (IRF, MultiWD, and loneliness/T-SID, which have no training data) might be a
limit of all-MiniLM-L6-v2's reading. The only larger models installable offline here are SmolLM2-135M-Instruct
and Gemma 3 270M (GGUF inside PyPI packages, `mentalens.llm.offline`). This probe mean-pools their hidden states
(at 1/2, 3/4 and the last layer) per post and asks, for each set, what a logistic regression on those features
reaches in 5-fold stratified cross-validation (C in {0.03, 0.1, 0.3, 1}, best kept: the same optimistic
selection for every model), beside the analyzer's own features ("minilm": the shipped artefact's
encoder + pooling). Sets: IMHI IRF and MultiWD val (leakage-guarded: what their heads train on), and -- a
ceiling reference only, as issue #3 allows -- loneliness and T-SID test (no training data exists for them;
nothing is ever chosen on these figures). Weighted F1 x100, aspects weighted by their rows.
Merges its model's figures into bench/results/analyzer_llm_features.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SETS = (("Irf", "val"), ("MultiWD", "val"), ("loneliness", "test"), ("t-sid", "test"))


def llm_features(name: str, posts: list[str], max_tokens: int, batch: int) -> dict[str, object]:
    """Mean-pooled hidden states of the packaged LM `name` at three depths: {"L<k>": (n, hidden)}."""
    import numpy as np
    import torch
    from rich.progress import track
    from transformers import AutoModel, AutoTokenizer

    from mentalens.llm.offline import prepare_offline

    folder = prepare_offline(name)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    depth = model.config.num_hidden_layers
    layers = sorted({depth // 2, (3 * depth) // 4, depth})
    out = {k: [None] * len(posts) for k in layers}
    order = sorted(range(len(posts)), key=lambda i: len(posts[i]))  # similar lengths together: less padding
    with torch.inference_mode():
        for b in track(range(0, len(order), batch), description=f"{name} hidden states"):
            idx = order[b:b + batch]
            enc = tok([posts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                      max_length=max_tokens)
            hidden = model(**enc, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"].unsqueeze(-1).float()
            for k in layers:
                pooled = (hidden[k] * mask).sum(1) / mask.sum(1)
                for j, i in enumerate(idx):
                    out[k][i] = pooled[j].numpy()
    return {f"L{k}": np.stack(v) for k, v in out.items()}


def cv_weighted_f1(x, records, seed: int = 13) -> float:
    """5-fold CV weighted F1 x100 over a set's aspects (rows-weighted), best C of a small grid."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    by_aspect: dict[object, list] = defaultdict(list)
    for r, row in records:
        by_aspect[r.aspect].append((r, row))
    scores = []
    for rows in by_aspect.values():
        y = np.array([r.label for r, _ in rows])
        if len(set(y)) < 2:
            continue
        xi = x[[row for _, row in rows]]
        best = 0.0
        for c in (0.03, 0.1, 0.3, 1.0):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, class_weight="balanced"))
            pred = cross_val_predict(clf, xi, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed))
            best = max(best, float(f1_score(y, pred, average="weighted")))
        scores.append((len(y), best))
    return round(100 * sum(n * f for n, f in scores) / sum(n for n, _ in scores), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="minilm | smollm2-135m-instruct | gemma3-270m")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "analyzer_llm_features.json"))
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from mentalens.analyze import Analyzer
    from mentalens.data import LeakageGuard, load_imhi
    from mentalens.data.io import write_json
    from mentalens.llm.offline import OFFLINE_MODELS
    from mentalens.paths import resolve_data_dir

    console = Console()
    if args.model != "minilm" and args.model not in OFFLINE_MODELS:
        raise SystemExit(f"--model {args.model}: choose minilm or one of {', '.join(OFFLINE_MODELS)}")
    torch.set_num_threads(2)
    guard = LeakageGuard.from_data_dir(resolve_data_dir(None))
    records: dict[str, list] = {}
    for name, split in SETS:
        rs = load_imhi(split=split, fmt="instruction", sets=[name])
        if split != "test":  # training data of the heads: leakage-guarded as in `mentalens train analyzer`
            rs, _ = guard.filter(rs, text=lambda r: r.post)
        records[name] = rs
    posts = sorted({r.post for rs in records.values() for r in rs})
    row = {p: i for i, p in enumerate(posts)}
    console.print(f"{args.model}: {len(posts)} posts")
    t0 = time.perf_counter()
    if args.model == "minilm":
        feats = {"shipped analyzer features": Analyzer.load().features(posts)}
    else:
        feats = llm_features(args.model, posts, args.max_tokens, args.batch)
    seconds = round(time.perf_counter() - t0, 1)
    figures = {layer: {name: cv_weighted_f1(x, [(r, row[r.post]) for r in rs]) for name, rs in records.items()}
               for layer, x in feats.items()}

    table = Table(title=f"5-fold CV weighted F1 x100, {args.model} ({seconds} s to read {len(posts)} posts)")
    table.add_column("features")
    for name, split in SETS:
        table.add_column(f"{name} ({split}{', reference only' if split == 'test' else ''})", justify="right")
    for layer, f in figures.items():
        table.add_row(layer, *(f"{f[name]:.2f}" for name, _ in SETS))
    console.print(table)
    out = Path(args.output)
    result = json.loads(out.read_text()) if out.is_file() else {}
    result[args.model] = {"figures": figures, "seconds_to_read": seconds, "posts": len(posts),
                          "max_tokens": args.max_tokens}
    result["note"] = ("5-fold CV on IMHI IRF/MultiWD val (leakage-guarded) and, as a ceiling reference only, on "
                      "the loneliness and T-SID test sets; nothing is chosen on these figures")
    write_json(result, out, sort_keys=True)
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
