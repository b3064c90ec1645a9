"""Two analyzer artefacts on the same IMHI test queries: paired bootstrap of the weighted-F1 difference per set.

    python bench/analyzer_compare.py --old OLD_ARTEFACT --new NEW_ARTEFACT [--sets dreaddit loneliness]

Why: a per-set difference of a few points on 400-700 posts can be noise. Both artefacts label the SAME
queries; resampling the queries (paired) gives a 95% interval of new - old and how often new comes out
worse. Reporting only: nothing is chosen with it. Writes bench/results/analyzer_compare.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--sets", nargs="*", default=None, help="IMHI set names (default: all)")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "analyzer_compare.json"))
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table
    from sklearn.metrics import f1_score

    from mentalens.analyze import Analyzer
    from mentalens.analyze.analyzer import head_key
    from mentalens.data import load_imhi
    from mentalens.data.io import atomic_write
    from mentalens.tasks import get_task

    console = Console()
    recs = [r for r in load_imhi(split="test", fmt="instruction") if r.label is not None]
    if args.sets:
        recs = [r for r in recs if r.set_name in set(args.sets)]
    posts = sorted({r.post for r in recs})
    preds: dict[str, np.ndarray] = {}
    for name, path in (("old", args.old), ("new", args.new)):
        az = Analyzer.load(path)
        X = az.features(posts)
        row = {p: i for i, p in enumerate(posts)}
        preds[name] = np.array(
            [az.predict(X[row[r.post]][None, :], head_key(get_task(r.task), r.aspect))[0][0] for r in recs]
        )

    def wf1(y: np.ndarray, p: np.ndarray) -> float:
        return float(100 * f1_score(y, p, average="weighted", zero_division=0))

    rng = np.random.default_rng(0)
    out: dict[str, dict] = {}
    table = Table(title="new vs old artefact on the same IMHI test queries (weighted F1 x100, paired bootstrap)")
    for col in ("set", "n", "old", "new", "new - old", "95% interval", "P(new worse)", "changed labels"):
        table.add_column(col, justify="right" if col != "set" else "left")
    for s in sorted({r.set_name for r in recs}):
        idx = np.array([i for i, r in enumerate(recs) if r.set_name == s])
        gold = np.array([recs[i].label for i in idx])
        po, pn = preds["old"][idx], preds["new"][idx]
        boot = []
        for _ in range(args.resamples):
            b = rng.integers(0, len(idx), len(idx))
            boot.append(wf1(gold[b], pn[b]) - wf1(gold[b], po[b]))
        lo, hi = np.percentile(boot, [2.5, 97.5])
        res = {
            "n": int(len(idx)),
            "old": round(wf1(gold, po), 2),
            "new": round(wf1(gold, pn), 2),
            "delta": round(wf1(gold, pn) - wf1(gold, po), 2),
            "delta_ci95": [round(float(lo), 2), round(float(hi), 2)],
            "p_new_worse": round(float(np.mean(np.asarray(boot) < 0)), 3),
            "changed_labels": int((po != pn).sum()),
        }
        out[s] = res
        table.add_row(s, str(res["n"]), f"{res['old']:.2f}", f"{res['new']:.2f}", f"{res['delta']:+.2f}",
                      f"[{lo:+.2f}, {hi:+.2f}]", f"{res['p_new_worse']:.3f}", str(res["changed_labels"]))  # fmt: skip
    console.print(table)
    result = {"old": args.old, "new": args.new, "resamples": args.resamples, "sets": out}
    with atomic_write(args.output) as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
