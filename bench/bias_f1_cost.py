"""How sure is the weighted-F1 cost of the analyzer's bias mitigation? A paired bootstrap per IMHI test set.

    python bench/bias_f1_cost.py                       # dreaddit and loneliness (the sets that lost F1)
    python bench/bias_f1_cost.py --set DR --set SAD    # any IMHI test sets

Issue 10 allows the mitigation to cost at most 0.5 weighted-F1 points on any IMHI test set; the recorded
figures (bench/results/analyzer_quality_v1.json vs analyzer_quality.json) show dreaddit -2.24 and loneliness
-0.45. This script predicts every post of the chosen test sets with both artefacts (before: git revision
--before, read into the cache as bench/bias.py does; after: the shipped one or --after), and resamples the posts
(the same resample for both: paired) to give the change's 95% interval and how often it is worse than -0.5.
It reads only test sets that are already reported: nothing here chooses a model. Writes
bench/results/bias_f1_cost.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bias import ARTEFACT, BEFORE, ROOT, extract_artefact  # noqa: E402


def predictions(folder: Path, records: list) -> list[str]:
    from mentalens.analyze import Analyzer
    from mentalens.analyze.analyzer import head_key
    from mentalens.tasks import get_task

    az = Analyzer.load(folder)
    analyses = az.analyze_batch([r.post for r in records], evidence=False, risk=False, on_empty="keep")
    return [a.tasks[head_key(get_task(r.task), r.aspect)].label for r, a in zip(records, analyses, strict=True)]


def paired_bootstrap(gold: list[str], before: list[str], after: list[str], n: int, seed: int) -> dict:
    from sklearn.metrics import f1_score

    def wf1(idx: np.ndarray, pred: list[str]) -> float:
        return 100 * float(f1_score([gold[i] for i in idx], [pred[i] for i in idx], average="weighted",
                                    zero_division=0))  # fmt: skip

    everything = np.arange(len(gold))
    b, a = wf1(everything, before), wf1(everything, after)
    rng = np.random.default_rng(seed)
    deltas = np.array([wf1(idx, after) - wf1(idx, before)
                       for idx in (rng.integers(0, len(gold), len(gold)) for _ in range(n))])  # fmt: skip
    return {"n": len(gold), "before": round(b, 2), "after": round(a, 2), "delta": round(a - b, 2),
            "ci95": [round(float(np.percentile(deltas, 2.5)), 2), round(float(np.percentile(deltas, 97.5)), 2)],
            "p_loss_over_0_5": round(float((deltas < -0.5).mean()), 3),
            "p_any_loss": round(float((deltas < 0).mean()), 3),
            "posts_changed": int(sum(x != y for x, y in zip(before, after, strict=True)))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=None, help="IMHI test set (default: dreaddit, loneliness)")
    ap.add_argument("--before", default=BEFORE, help="git revision (or folder) of the unmitigated artefact")
    ap.add_argument("--after", default=str(ROOT / ARTEFACT), help="artefact folder after mitigation (default: shipped)")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bias_f1_cost.json"))
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from mentalens.data import load_imhi

    console = Console()
    sets = args.set or ["dreaddit", "loneliness"]
    t0 = time.time()
    out: dict = {}
    for name in sets:
        records = [r for r in load_imhi(split="test", fmt="instruction", sets=[name]) if r.label is not None]
        with console.status(f"{name}: {len(records)} posts, both artefacts"):
            before = predictions(extract_artefact(args.before), records)
            after = predictions(Path(args.after), records)
        out[name] = paired_bootstrap([r.label for r in records], before, after, args.bootstrap, args.seed)
    after_name = "shipped" if Path(args.after) == ROOT / ARTEFACT else args.after
    table = Table(title=f"weighted F1 x100 before ({args.before}) / after ({after_name}), paired bootstrap "
                        f"({args.bootstrap} resamples)")  # fmt: skip
    for col in ("set", "n", "before", "after", "Δ", "95% CI of Δ", "P(Δ < -0.5)", "posts changed"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, r in out.items():
        table.add_row(name, str(r["n"]), f"{r['before']:.2f}", f"{r['after']:.2f}", f"{r['delta']:+.2f}",
                      f"[{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]", f"{r['p_loss_over_0_5']:.2f}",
                      str(r["posts_changed"]))  # fmt: skip
    console.print(table)
    cmd = "python bench/bias_f1_cost.py" + "".join(f" --set {s}" for s in args.set or ())
    cmd += f" --before {args.before}" if args.before != BEFORE else ""
    cmd += f" --after {args.after}" if after_name != "shipped" else ""
    cmd += f" --out {args.out}" if Path(args.out) != ROOT / "bench" / "results" / "bias_f1_cost.json" else ""
    result = {"command": cmd, "before_revision": args.before,
              "after": ARTEFACT if after_name == "shipped" else args.after, "bootstrap": args.bootstrap,
              "seed": args.seed, "sets": out, "seconds": round(time.time() - t0, 1),
              "note": "the IMHI test sets are read for this report only; nothing is chosen with it"}  # fmt: skip
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
