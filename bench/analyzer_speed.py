"""Speed of the embedded analyzer on this CPU, all figures from one run.

    python bench/analyzer_speed.py [--posts 400] [--single 60] [--baseline OLD_ARTEFACT] [--rounds 2]

- batch: posts/s of analyze_batch (every IMHI task + 28 emotions, one encoder pass per post, no evidence,
  no risk), over a fixed sample of IMHI train/val posts of every set (mixed lengths, as people write them),
  for the analyzer (--artefact, default the shipped one) AND a baseline (--baseline, or the same heads
  behind eager PyTorch fp32),
  in interleaved rounds (best round of each kept), so the ratio is measured side by side;
- the same posts through the two encoders alone (e.g. ONNX Runtime int8 beside eager PyTorch fp32),
  sentence by sentence, measured side by side in this run;
- batch settings: the artefact's analyze_batch with the previous batching (64 posts per encoder call, 8192
  padded tokens per forward pass) beside the current one (analyzer.CHUNK, EncoderConfig.batch_tokens),
  interleaved (the vectors are identical either way: only padding differs);
- single post: p50/p90 latency of analyze(text) without and with evidence (occlusion + explanations).
The machine is shared (~5 developers on 2 cores): every figure is given as wall-clock posts/s AND as
CPU-time posts/s (posts per CPU-second of this process x the cores), with the load average before and
after, so the numbers can be read whatever else was running.
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
    ap.add_argument("--baseline", default=None, help="previous artefact folder (default: these heads, torch fp32)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds per side (best is kept)")
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "analyzer_speed.json"))
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from mentalens.analyze import Analyzer
    from mentalens.analyze.encoder import Encoder, EncoderConfig
    from mentalens.analyze.text import prepare
    from mentalens.data import load_imhi
    from mentalens.data.io import atomic_write

    console = Console()
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    az = Analyzer.load(args.artefact)
    recs = load_imhi(split="val", fmt="instruction") + load_imhi(split="train", fmt="instruction")
    pool = sorted({r.post for r in recs})
    rng = random.Random(13)
    posts = rng.sample(pool, args.posts)
    tokens = [len(az.encoder.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in posts]

    def timed(fn) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) of fn()."""
        w, c = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - w, time.process_time() - c

    # the previous analyzer: the --baseline artefact, or these heads behind the previous encoder (eager
    # PyTorch fp32, text read as written) - the heads cost the same, the encoder is what differs
    if args.baseline:
        base = Analyzer.load(args.baseline)
    else:
        base = Analyzer.load(args.artefact, encoder=Encoder(EncoderConfig()))
    analyzers = {"artefact": az, "baseline": base}
    for a in analyzers.values():
        a.analyze_batch(posts[:16], evidence=False, risk=False)  # warm-up
    # interleaved rounds (A B A B ...), best round of each: load from other work drifts during the run
    batch: dict[str, list[tuple[float, float]]] = {name: [] for name in analyzers}
    for _ in range(args.rounds):
        for name, a in analyzers.items():
            batch[name].append(timed(lambda a=a: a.analyze_batch(posts, evidence=False, risk=False)))
    batch_rates = {
        name: {"posts_per_s": round(len(posts) / min(w for w, _ in r), 1),
               "cpu_posts_per_s": round(cores * len(posts) / min(c for _, c in r), 1)}
        for name, r in batch.items()
    }  # fmt: skip
    posts_per_s = batch_rates["artefact"]["posts_per_s"]
    cpu_posts_per_s = batch_rates["artefact"]["cpu_posts_per_s"]

    # the same artefact with the previous batching beside the current one (only padding differs)
    import mentalens.analyze.analyzer as analyzer_mod

    settings = {"previous": (64, 8192), "current": (analyzer_mod.CHUNK, az.encoder.config.batch_tokens)}
    set_runs: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, (chunk, budget) in settings.items():
            saved = analyzer_mod.CHUNK, az.encoder.config.batch_tokens
            analyzer_mod.CHUNK, az.encoder.config.batch_tokens = chunk, budget
            try:
                set_runs[name].append(timed(lambda: az.analyze_batch(posts, evidence=False, risk=False)))
            finally:
                analyzer_mod.CHUNK, az.encoder.config.batch_tokens = saved
    setting_rates = {
        name: {"posts_per_encoder_call": settings[name][0], "batch_tokens": settings[name][1],
               "posts_per_s": round(len(posts) / min(w for w, _ in r), 1),
               "cpu_posts_per_s": round(cores * len(posts) / min(c for _, c in r), 1)}
        for name, r in set_runs.items()
    }  # fmt: skip

    preps = [prepare(p) for p in posts]
    encoders = {"artefact": az.encoder, "baseline": base.encoder}
    enc_runs: dict[str, list[tuple[float, float]]] = {name: [] for name in encoders}
    for enc in encoders.values():
        enc.encode_prepared(preps[:16])
    for _ in range(args.rounds):
        for name, enc in encoders.items():
            enc_runs[name].append(timed(lambda enc=enc: enc.encode_prepared(preps)))
    runtimes = {
        name: {"posts_per_s": round(len(posts) / min(w for w, _ in r), 1),
               "cpu_posts_per_s": round(cores * len(posts) / min(c for _, c in r), 1)}
        for name, r in enc_runs.items()
    }  # fmt: skip

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

    enc_cfg = az.encoder.config
    out = {
        "posts_per_s_batch": round(posts_per_s, 1),
        "cpu_posts_per_s_batch": round(cpu_posts_per_s, 1),
        "cpu_posts_per_s_note": f"posts per CPU-second of this process x {cores} cores",
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "latency_ms_p90": round(float(np.percentile(lat, 90)), 1),
        "latency_ms_p50_evidence": round(float(np.percentile(lat_ev, 50)), 1),
        "latency_ms_p90_evidence": round(float(np.percentile(lat_ev, 90)), 1),
        "batch": batch_rates,
        "batch_speedup_wall": round(posts_per_s / batch_rates["baseline"]["posts_per_s"], 2),
        "batch_speedup_cpu": round(cpu_posts_per_s / batch_rates["baseline"]["cpu_posts_per_s"], 2),
        "artefact": args.artefact or "shipped",
        "artefact_runtime": az.describe()["runtime"],
        "baseline": args.baseline or "the same heads behind eager PyTorch fp32 (text as written)",
        "baseline_runtime": base.describe()["runtime"],
        "rounds": args.rounds,
        "batch_settings": setting_rates,
        "batch_settings_speedup_wall": round(
            setting_rates["current"]["posts_per_s"] / setting_rates["previous"]["posts_per_s"], 2
        ),
        "encoder_only": runtimes,
        "encoder_speedup_cpu": round(
            runtimes["artefact"]["cpu_posts_per_s"] / runtimes["baseline"]["cpu_posts_per_s"], 2
        ),
        "runtime": f"{enc_cfg.runtime}{' int8' if enc_cfg.quantize else ''}",
        "posts": len(posts),
        "single_posts": len(singles),
        "tokens_per_post_mean": round(float(np.mean(tokens)), 1),
        "tokens_per_post_p90": round(float(np.percentile(tokens, 90)), 1),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": cores,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "target_posts_per_s": 50,
    }
    table = Table(title=f"embedded analyzer speed ({cores} CPU cores, shared; load {load_before[0]:.1f})")
    table.add_column("measure")
    table.add_column("wall", justify="right")
    table.add_column("CPU-time based", justify="right")
    for name, r in batch_rates.items():
        table.add_row(f"batch, all tasks + emotions, {name} (posts/s)", f"{r['posts_per_s']:.1f}",
                      f"{r['cpu_posts_per_s']:.1f}")  # fmt: skip
    table.add_row("batch speed-up over the baseline", f"{out['batch_speedup_wall']:.2f}x",
                  f"{out['batch_speedup_cpu']:.2f}x")  # fmt: skip
    for name, r in setting_rates.items():
        table.add_row(f"batch, {name} batching ({r['posts_per_encoder_call']} posts/call, {r['batch_tokens']} "
                      "tokens/pass)", f"{r['posts_per_s']:.1f}", f"{r['cpu_posts_per_s']:.1f}")  # fmt: skip
    for name, r in runtimes.items():
        table.add_row(f"encoder only, {name} (posts/s)", f"{r['posts_per_s']:.1f}", f"{r['cpu_posts_per_s']:.1f}")
    table.add_row("encoder speed-up over the baseline (CPU time)", "", f"{out['encoder_speedup_cpu']:.2f}x")
    table.add_row("single post p50 latency, no evidence (ms)", f"{out['latency_ms_p50']:.1f}", "")
    table.add_row("single post p50 latency, with evidence (ms)", f"{out['latency_ms_p50_evidence']:.1f}", "")
    table.add_row("tokens per post (mean / p90)", f"{out['tokens_per_post_mean']} / {out['tokens_per_post_p90']}", "")
    table.add_row("load average before / after", f"{load_before[0]:.2f} / {load_after[0]:.2f}", "")
    console.print(table)
    with atomic_write(args.output) as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
