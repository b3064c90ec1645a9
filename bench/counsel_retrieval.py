"""Retrieval counsellor: does the nearest CounselChat question share the topic, and how far to read each question?

    python bench/counsel_retrieval.py [--caps 120,400,700]

CounselChat's own split: the index holds TRAIN questions only; every VAL question is a query (TEST is not
read). For each cap on the question text (characters of title + text embedded), it reports the build time,
top-1 / top-5 topic agreement (the nearest train question has the same counselling topic) against the
majority-topic baseline, and the similarity of the nearest question. The `min_similarity` threshold is chosen
on VAL as the 5th percentile of val questions' top-1 similarity (95% of real questions get a quoted answer) and
the share of GoEmotions dev comments labelled neutral (not counselling questions) it turns away is reported.
Writes bench/results/counsel_retrieval.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--caps", default="120,400,700")
    ap.add_argument("--neutral", type=int, default=400, help="GoEmotions neutral dev comments to test against")
    ap.add_argument("--analyzer", default=None, help="analyzer artefact folder (default: the shipped one)")
    ap.add_argument("--encoder-only", action="store_true",
                    help="embed with the analyzer's encoder directly (no trained heads needed)")
    args = ap.parse_args()

    from mentalens.analyze import get_analyzer
    from mentalens.counsel.retrieval import RetrievalIndex, encoder_fingerprint
    from mentalens.data import load_counselchat, load_goemotions

    if args.encoder_only:
        from mentalens.analyze.encoder import Encoder

        class _EncoderOnly:  # the same vectors as Analyzer.embed, minus its text preparation
            def __init__(self) -> None:
                self.encoder = Encoder()
                self.fingerprint = f"encoder-only:{self.encoder.fingerprint}"

            def embed(self, texts):
                return self.encoder.embed(list(texts))

        analyzer = _EncoderOnly()
    else:
        analyzer = get_analyzer(args.analyzer)
    records = load_counselchat()
    val: dict[str, tuple[str, str]] = {}
    for r in records:
        if r.split == "val":
            val.setdefault(r.question_id, (r.context, r.topic))
    neutral = [r.text for r in load_goemotions(split="dev") if r.labels == ("neutral",)][: args.neutral]
    train_topics = collections.Counter(r.topic for r in records if r.split == "train")
    majority = train_topics.most_common(1)[0][1] / sum(train_topics.values())
    majority_val = sum(1 for _, t in val.values() if t == train_topics.most_common(1)[0][0]) / len(val)

    rows = []
    import mentalens.counsel.retrieval as retrieval

    for cap in [int(c) for c in args.caps.split(",")]:
        retrieval.QUESTION_CHARS = cap
        t0 = time.perf_counter()
        index = RetrievalIndex.load_or_build(analyzer.embed, encoder_fingerprint(analyzer),
                                             question_filter=lambda r: r.split == "train")
        build_s = time.perf_counter() - t0
        queries = [c[:cap] for c, _ in val.values()]
        qv = analyzer.embed(queries)
        sims = qv @ index.embeddings.T
        order = np.argsort(-sims, axis=1)
        gold = [t for _, t in val.values()]
        top1 = np.mean([index.topics[index.question_ids[order[i, 0]]] == g for i, g in enumerate(gold)])
        top5 = np.mean([any(index.topics[index.question_ids[j]] == g for j in order[i, :5])
                        for i, g in enumerate(gold)])
        best = sims.max(axis=1)
        threshold = float(np.percentile(best, 5))
        nv = analyzer.embed(neutral)
        nbest = (nv @ index.embeddings.T).max(axis=1)
        rows.append({
            "question_chars": cap,
            "train_questions": len(index),
            "val_questions": len(val),
            "build_s": round(build_s, 1),
            "top1_topic_agreement": round(float(top1), 4),
            "top5_topic_agreement": round(float(top5), 4),
            "val_top1_similarity_median": round(float(np.median(best)), 4),
            "min_similarity_p5": round(threshold, 4),
            "neutral_comments_below_threshold": round(float(np.mean(nbest < threshold)), 4),
        })
        print(rows[-1], flush=True)

    print(f"\n{'chars':>6} {'build s':>8} {'top1':>6} {'top5':>6} {'p5 sim':>7} {'neutral<':>9}")
    for r in rows:
        print(f"{r['question_chars']:>6} {r['build_s']:>8} {r['top1_topic_agreement']:>6.3f} "
              f"{r['top5_topic_agreement']:>6.3f} {r['min_similarity_p5']:>7.3f} "
              f"{r['neutral_comments_below_threshold']:>9.3f}")
    print(f"majority-topic baseline: {majority_val:.3f} on val ({majority:.3f} of train answers)")
    out = {
        "what": "CounselChat retrieval: train-split index, val-split questions as queries",
        "encoder": encoder_fingerprint(analyzer),
        "majority_topic_baseline_val": round(majority_val, 4),
        "rows": rows,
        "machine": {"cpu_count": __import__("os").cpu_count(), "python": platform.python_version()},
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "counsel_retrieval.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
