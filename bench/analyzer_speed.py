"""Speed of the embedded analyzer on this CPU, all figures from one run.

    python bench/analyzer_speed.py [--posts 400] [--single 60]

- batch: posts/s of analyze_batch (every IMHI task + 28 emotions, one encoder pass per post, no evidence,
  no risk), over a fixed sample of IMHI train/val posts of every set (mixed lengths, as people write them);
- the same posts through the encoder alone, reading each post as one text (sentence-transformers' way) vs
  sentence by sentence (the analyzer's way), to show what the one-pass sentence design costs;
- single post: p50/p90 latency of analyze(text) without and with evidence (occlusion + explanations).
The machine is shared: the load average before and after is printed and stored with the numbers.
Writes bench/results/analyzer_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=400)
    ap.add_argument("--single", type=int, default=60)
    ap.add_argument("--artefact", default=None)
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "analyzer_speed.json"))
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from mentalens.analyze import Analyzer
    from mentalens.analyze.text import prepare
    from mentalens.data import load_imhi
    from mentalens.data.io import atomic_write

    console = Console()
    load_before = os.getloadavg()
    az = Analyzer.load(args.artefact)
    recs = load_imhi(split="val", fmt="instruction") + load_imhi(split="train", fmt="instruction")
    pool = sorted({r.post for r in recs})
    rng = random.Random(13)
    posts = rng.sample(pool, args.posts)
    tokens = [len(az.encoder.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in posts]

    az.analyze_batch(posts[:16], evidence=False, risk=False)  # warm-up
    t = time.perf_counter()
    az.analyze_batch(posts, evidence=False, risk=False)
    batch_s = time.perf_counter() - t
    posts_per_s = len(posts) / batch_s

    preps = [prepare(p) for p in posts]
    enc = az.encoder
    t = time.perf_counter()
    enc.encode([p.encoder_text for p in preps], [p.encoder_spans for p in preps], unit="sentence")
    enc_sentence = len(posts) / (time.perf_counter() - t)
    t = time.perf_counter()
    enc.encode([p.encoder_text for p in preps], [p.encoder_spans for p in preps], unit="post")
    enc_post = len(posts) / (time.perf_counter() - t)

    singles = posts[: args.single]
    lat, lat_ev = [], []
    for p in singles:
        t = time.perf_counter()
        az.analyze(p, evidence=False, risk=False)
        lat.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        az.analyze(p, evidence=True, risk=False)
        lat_ev.append(1000 * (time.perf_counter() - t))
    load_after = os.getloadavg()

    out = {
        "posts_per_s_batch": round(posts_per_s, 1),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "latency_ms_p90": round(float(np.percentile(lat, 90)), 1),
        "latency_ms_p50_evidence": round(float(np.percentile(lat_ev, 50)), 1),
        "latency_ms_p90_evidence": round(float(np.percentile(lat_ev, 90)), 1),
        "encoder_posts_per_s_sentence_unit": round(enc_sentence, 1),
        "encoder_posts_per_s_post_unit": round(enc_post, 1),
        "posts": len(posts),
        "single_posts": len(singles),
        "tokens_per_post_mean": round(float(np.mean(tokens)), 1),
        "tokens_per_post_p90": round(float(np.percentile(tokens, 90)), 1),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "target_posts_per_s": 50,
    }
    table = Table(title=f"embedded analyzer speed ({os.cpu_count()} CPU cores, shared; load {load_before[0]:.1f})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("batch, all tasks + emotions (posts/s)", f"{out['posts_per_s_batch']:.1f}  (target 50)")
    table.add_row("encoder only, sentence by sentence (posts/s)", f"{enc_sentence:.1f}")
    table.add_row("encoder only, whole post (posts/s)", f"{enc_post:.1f}")
    table.add_row("ratio sentence/post unit", f"{enc_sentence / enc_post:.2f}")
    table.add_row("single post p50 latency, no evidence (ms)", f"{out['latency_ms_p50']:.1f}")
    table.add_row("single post p50 latency, with evidence (ms)", f"{out['latency_ms_p50_evidence']:.1f}")
    table.add_row("evidence overhead (p50 ratio)", f"{out['latency_ms_p50_evidence'] / out['latency_ms_p50']:.2f}")
    table.add_row("tokens per post (mean / p90)", f"{out['tokens_per_post_mean']} / {out['tokens_per_post_p90']}")
    table.add_row("load average before / after", f"{load_before[0]:.2f} / {load_after[0]:.2f}")
    console.print(table)
    with atomic_write(args.output) as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
