"""BARTScore speed: mentalens' scorer against the authors' loop, same model, same pairs, one run.

    python bench/eval_speed.py [--pairs 256] [--d-model 256] [--layers 3]

Pairs are IMHI gold answers scored against another gold answer of the same set (the shape of a model's
explanation against the gold one), in file order, as MentaLLaMA's score.py feeds them. The model is a random
BART built from a config with a BART tokenizer trained on IMHI training answers (facebook/bart-large-cnn is
not downloadable here; the scorer's work per token is the same, only the sizes differ). The reference is a
line-for-line port of BARTScorer.score from neulab/BARTScore (bench/bartscore_reference.py: batch 4, no
sorting, the model's own loss computed and discarded). Both run in interleaved rounds of --chunk pairs so that
load from other processes on a shared machine falls on both alike. Writes bench/results/eval_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def imhi_pairs(n: int) -> tuple[list[str], list[str]]:
    from mentalens.data import load_imhi
    from mentalens.evaluate.runner import default_imhi_folder

    records = load_imhi(default_imhi_folder())
    by_set: dict[str, list[str]] = {}
    for r in records:
        by_set.setdefault(r.set_name, []).append(r.answer)
    hyps, refs = [], []
    per_set = max(1, n // len(by_set))
    for answers in by_set.values():
        for i in range(min(per_set, len(answers) - 1)):
            hyps.append(answers[i + 1])  # another answer of the same set stands for the model's
            refs.append(answers[i])
    return hyps[:n], refs[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=64, help="pairs per interleaved timing round")
    parser.add_argument("--out", default=str(HERE / "results" / "eval_speed.json"))
    args = parser.parse_args()

    import torch

    from bartscore_reference import ReferenceBARTScorer
    from mentalens.evaluate.bartscore import BARTScorer
    from mentalens.evaluate.tiny_bart import build_tiny_bart

    path = build_tiny_bart(
        d_model=args.d_model, layers=args.layers, heads=4, ffn=4 * args.d_model, vocab_size=args.vocab
    )
    ours = BARTScorer(path, device="cpu", batch_size=args.batch_size)
    ref = ReferenceBARTScorer(ours.model, ours.tokenizer, device="cpu", max_length=ours.max_length)
    hyps, refs = imhi_pairs(args.pairs)
    ours.score(hyps[:4], refs[:4])  # warm-up: first-call allocations are not the scorer's speed
    ref.score(hyps[:4], refs[:4])

    # interleaved in chunks, so that load from other processes on a shared machine hits both scorers alike
    theirs, mine = [], []
    t_ref = t_ours = 0.0
    for start in range(0, len(hyps), args.chunk):
        h, r = hyps[start : start + args.chunk], refs[start : start + args.chunk]
        t0 = time.perf_counter()
        theirs += ref.score(h, r, batch_size=4)
        t_ref += time.perf_counter() - t0
        t0 = time.perf_counter()
        mine += ours.score(h, r)
        t_ours += time.perf_counter() - t0

    diff = max(abs(a - b) for a, b in zip(mine, theirs, strict=True))
    n_params = sum(p.numel() for p in ours.model.parameters())
    tokens = sum(len(x) for x in ours.tokenizer(refs)["input_ids"])
    result = {
        "bartscore_vs_reference": round(t_ref / t_ours, 2),
        "max_abs_score_diff": diff,
        "pairs": len(hyps),
        "ours_pairs_per_s": round(len(hyps) / t_ours, 2),
        "reference_pairs_per_s": round(len(hyps) / t_ref, 2),
        "ours_seconds": round(t_ours, 3),
        "reference_seconds": round(t_ref, 3),
        "reference": "neulab/BARTScore bart_score.py BARTScorer.score, ported line for line (batch 4, unsorted)",
        "direction": "hyp_ref (generated -> gold), as MentaLLaMA's score.py",
        "model": {
            "kind": "random BartForConditionalGeneration from a config (bart-large-cnn not available offline)",
            "d_model": args.d_model,
            "layers": args.layers,
            "vocab": len(ours.tokenizer),
            "parameters": n_params,
        },
        "target_tokens": tokens,
        "ours_batch_size": args.batch_size,
        "timing": f"interleaved rounds of {args.chunk} pairs (reference, then ours), times summed",
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "mean_score": sum(mine) / len(mine),
    }
    print(f"{'scorer':<28}{'pairs/s':>10}{'seconds':>10}")
    print(f"{'reference (batch 4)':<28}{result['reference_pairs_per_s']:>10.2f}{t_ref:>10.2f}")
    print(f"{'mentalens (sorted, batched)':<28}{result['ours_pairs_per_s']:>10.2f}{t_ours:>10.2f}")
    print(
        f"speed-up {result['bartscore_vs_reference']:.2f}x; max |score diff| {diff:.2e}; {n_params / 1e6:.1f}M params"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
