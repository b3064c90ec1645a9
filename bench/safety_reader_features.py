"""Does the learned risk reader find more when it reads an LM's hidden states instead of MiniLM vectors?

    python bench/safety_reader_features.py                       # ~25 min on 2 cores the first time (LM reading)
    python bench/safety_reader_features.py --layers L9,L18 --gates prototype,none

Why: seven rounds on all-MiniLM-L6-v2 vectors (docs/safety.md) left about half of newly phrased high-risk
statements under-triaged; round 4 found an ungated MiniLM reader too imprecise to ship. Gemma 3 270M (packaged,
`mentalens.llm.offline`) is the largest reader installable offline, and also reads Spanish. This bench asks,
on the TUNING splits only (grouped 5-fold cross-validation, exactly as `mentalens train risk-learned` chooses the
shipped reader's thresholds: the same weak labels, false-alarm limits and threshold search), what the reader
reaches with each feature set and run-time gate: out-of-fold recall of the whole system (rules + classifier +
reader, without the bank) and of the reader alone, benign tuning items raised, GoEmotions dev comments raised.
No held-out or validation split is read (their near-duplicates are dropped from training, as in the build).
Writes bench/results/safety_reader_features.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

LM = "gemma3-270m"
TUNE = ("dev", "dev2", "dev3", "dev4", "dev5", "dev6", "dev7", "dev8")


def gated(td, probs: dict, attr: str, gate: dict | None) -> dict:
    """Out-of-fold unit probabilities with the gate's stopped units scored 0 (as `TrainingData.probs` does)."""
    import numpy as np

    if gate is None:
        return probs
    out = {}
    for it in td.items:
        us = [u for u in getattr(it, attr) if u in td.vec]
        out[it.id] = probs[it.id] * np.array([gate.get(u, True) for u in us], dtype=np.float64)[:, None]
    return out


def sliced(td, k: int, dim: int):
    """The training data with each reader vector cut to its k-th block of `dim` (one layer of several)."""
    def cut(x):
        return x[..., k * dim:(k + 1) * dim]

    return dataclasses.replace(td, vec={u: cut(v) for u, v in td.vec.items()}, proto_x=cut(td.proto_x),
                               every_x=cut(td.every_x), dev_vec={u: cut(v) for u, v in td.dev_vec.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="L6,L9,L12,L15,L18", help=f"{LM} layers to compare (each on its own)")
    ap.add_argument("--gates", default="prototype,none", help="run-time gates to score (semantic.LEARNED_GATES)")
    ap.add_argument("--tune-splits", default=",".join(TUNE))
    ap.add_argument("--validation-splits", default="dev9,dev10", help="kept out of training (near-duplicates)")
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "safety_reader_features.json"))
    args = ap.parse_args()

    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from mentalens.data.io import write_json
    from mentalens.safety.learned import (
        CachedEncoder,
        LearnedBuildConfig,
        Scorer,
        choose_thresholds,
        collect,
        default_cache,
        fit_model,
        gates,
        oof_probabilities,
    )
    from mentalens.safety.lm_features import LMFeatureEncoder, parse_features
    from mentalens.safety.semantic import HELD_OUT_SPLITS, get_bank
    from mentalens.safety.sentence_encoder import get_encoder

    console = Console()
    torch.set_num_threads(2)
    layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    multi = f"{LM}:{','.join(layers)}"
    parse_features(multi)
    tune = tuple(s for s in args.tune_splits.split(",") if s)
    valid = tuple(s for s in args.validation_splits.split(",") if s)
    base = LearnedBuildConfig(tune_splits=tune, validation_splits=valid)
    eval_set = ROOT / "bench" / "data" / "safety_eval.jsonl"
    t0 = time.perf_counter()
    td = collect(eval_set, None, base, CachedEncoder(get_encoder(), default_cache()), tune,
                 tuple(HELD_OUT_SPLITS) + valid, console.log,
                 features=CachedEncoder(LMFeatureEncoder(multi), default_cache(multi)))
    console.log(f"collected in {time.perf_counter() - t0:.0f} s: {td.report}")
    bank = get_bank()
    gate_dicts = {g: (None if g == "none" else gates(td, bank, g)) for g in args.gates.split(",")}

    # the shipped reader's own features (vectors from the cache: no encoding)
    minilm = collect(eval_set, None, base, CachedEncoder(get_encoder(), default_cache()), tune,
                     tuple(HELD_OUT_SPLITS) + valid, console.log)
    variants = {"minilm": (minilm, base)}
    dim = td.proto_x.shape[1] // len(layers)
    for k, layer in enumerate(layers):
        variants[f"{LM}:{layer}"] = (sliced(td, k, dim), dataclasses.replace(base, features=f"{LM}:{layer}"))

    results: dict[str, dict] = {}
    for name, (vtd, cfg) in variants.items():
        t1 = time.perf_counter()
        vtd.gate = None
        live, every = oof_probabilities(vtd, cfg, console.log)
        model = fit_model(vtd, vtd.items, cfg)
        dev_raw = [vtd.probs(model, ls, vtd.dev_vec) for _, ls in vtd.dev_comments]
        for g, gd in gate_dicts.items():
            dev = dev_raw if gd is None else [
                p * np.array([gd.get(u, True) for u in ls if u in vtd.dev_vec], dtype=float)[:, None]
                for p, (_, ls) in zip(dev_raw, vtd.dev_comments, strict=True)]
            scorer = Scorer(vtd, gated(vtd, live, "live", gd), gated(vtd, every, "every", gd), dev)
            thr, s = choose_thresholds(scorer, dataclasses.replace(cfg, gate=g))
            results[f"{name} | gate={g}"] = {"thresholds": thr, **{k: round(float(v), 4) for k, v in s.items()}}
            console.log(f"{name} gate={g}: {results[f'{name} | gate={g}']}")
        console.log(f"{name}: {time.perf_counter() - t1:.0f} s")

    table = Table(title=f"Learned reader, out of fold on {', '.join(tune)} ({len(td.items)} items)")
    for col in ("features | gate", "system high+", "system mod+", "alone high+", "alone mod+", "benign raised",
                "GoEmotions dev raised", "thresholds"):
        table.add_column(col)
    for name, r in results.items():
        table.add_row(name, f"{r['recall_high_plus']:.3f}", f"{r['recall_moderate_plus']:.3f}",
                      f"{r['alone_recall_high_plus']:.3f}", f"{r['alone_recall_moderate_plus']:.3f}",
                      str(r["benign_raised"]), str(r["everyday_raised"]),
                      " / ".join(f"{t:.3f}" for t in r["thresholds"][1:]))
    console.print(table)
    out = Path(args.output)
    doc = {"tune_splits": list(tune), "validation_splits": list(valid), "items": len(td.items),
           "note": "grouped 5-fold CV on the tuning splits only, thresholds chosen under the build's limits "
                   "(0 GoEmotions dev comments, <= 0.5% benign tuning items raised); system = rules + "
                   "classifier + this reader (no prototype bank)", "results": results,
           "data": td.report, "seconds": round(time.perf_counter() - t0)}
    write_json(doc, out, sort_keys=True)
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
