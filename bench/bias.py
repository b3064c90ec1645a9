"""Bias audit (issue 10): the embedded analyzer before and after mitigation, and SmolLM2-135M-Instruct with
and without the project's IMHI LoRA adapter.

    python bench/bias.py                      # everything (parts already computed are reused from the cache)
    python bench/bias.py --only before        # one part: before | after | hf
    python bench/bias.py --limit 0            # analyzer on every IMHI test post (default: 30 per set and attribute)

- embedded analyzer BEFORE mitigation: the artefact at git revision --before, read from git into the cache
  (it loads with the encoder settings its own manifest names, so its features are exactly the old ones);
- embedded analyzer AFTER: the shipped artefact (src/mentalens/resources/analyzer). When it is still the
  same artefact as --before, "after" is reported as pending;
- both analyzers: --limit posts per IMHI set and attribute among the posts with a counterfactual for it
  (fixed seed; 0: every test post), all attributes, the safety layer's risk level on the same pairs, and
  the weighted F1 of the audited records computed from the same analyses (the full-test F1 of each
  artefact is bench/analyzer_quality.py's);
- SmolLM2-135M-Instruct (hf backend, greedy, --hf-tokens new tokens) without and with `smollm2-imhi-lora`,
  on --hf-posts posts per set and attribute of --hf-set sets (one question per post; slow on CPU).
Writes bench/results/bias.json, bias.md and bias.html. Flipped examples are listed by their edit only
(e.g. "she -> he"): IMHI post text is not copied into the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ARTEFACT = "src/mentalens/resources/analyzer"
BEFORE = "be2f1e3"  # the commit of the unmitigated analyzer artefact (the first one shipped)
LORA = "smollm2-imhi-lora"
SMOLLM = "smollm2-135m-instruct"
HF_SETS = ("DR", "dreaddit", "SAD", "CAMS")  # one question per post: CPU generation is slow
# the safety layer's risk-level flips at 9b2cfe0 (before its classifier read text gender/name-neutral and the
# rules learnt "finna", "ain't", "they hurt me"): recorded by this script then, kept for the before/after
PREVIOUS_SAFETY_FLIPS = {"revision": "9b2cfe0", "gender": 0.014, "name": 0.0147, "age": 0.017, "dialect": 0.0314}


def _risk_line(s: dict[str, Any]) -> str:
    return ", ".join(f"{a} {100 * v['flip_rate']:.2f}%" for a, v in s["risk_by_attribute"].items())


def _digest(folder: Path) -> str:
    h = hashlib.sha1()
    for name in ("manifest.json", "weights.npz"):
        h.update((Path(folder) / name).read_bytes())
    return h.hexdigest()[:12]


class CachedAnalyzer:
    """An Analyzer whose analyze_batch remembers each text's result, so the F1 pass and the audit share the
    original posts' encoding."""

    def __init__(self, analyzer: Any):
        self.analyzer = analyzer
        self.cache: dict[str, Any] = {}

    def analyze_batch(self, texts, evidence=False, risk=False, on_empty="keep", progress=None):
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            got = self.analyzer.analyze_batch(todo, evidence=False, risk=False, on_empty="keep", progress=progress)
            self.cache.update(zip(todo, got, strict=True))
        return [self.cache[t] for t in texts]


def extract_artefact(rev: str) -> Path:
    """The analyzer artefact of git revision rev, copied into the cache (read from git, never checked out);
    rev may also be an artefact folder (e.g. one built by `mentalens train analyzer --output DIR`)."""
    from mentalens.paths import cache_dir

    if Path(rev).expanduser().is_dir():
        return Path(rev).expanduser()
    out = cache_dir("bench", f"analyzer-{rev}")
    for name in ("manifest.json", "weights.npz"):
        target = out / name
        if not target.is_file():
            blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{ARTEFACT}/{name}"], check=True,
                                  capture_output=True).stdout  # fmt: skip
            tmp = target.with_suffix(".part")
            tmp.write_bytes(blob)
            tmp.replace(target)
    return out


def imhi_f1(cached: CachedAnalyzer, records: list, progress=None) -> dict[str, Any]:
    """Weighted F1 x100 per IMHI test set (the given instruction-format rows) from the analyses."""
    from sklearn.metrics import f1_score

    from mentalens.analyze.analyzer import head_key
    from mentalens.tasks import get_task

    analyses = cached.analyze_batch([r.post for r in records], progress=progress)
    gold, pred = defaultdict(list), defaultdict(list)
    for r, a in zip(records, analyses, strict=True):
        if r.label is None:
            continue
        gold[r.set_name].append(r.label)
        pred[r.set_name].append(a.tasks[head_key(get_task(r.task), r.aspect)].label)
    return {
        s: {"n": len(gold[s]), "weighted_f1": round(100 * float(f1_score(gold[s], pred[s], average="weighted",
                                                                          zero_division=0)), 2)}
        for s in sorted(gold)
    }  # fmt: skip


def _strip_text(summary: dict[str, Any]) -> dict[str, Any]:
    """Flipped examples without IMHI post text (the edit, task and labels stay)."""
    summary["examples"] = [{k: v for k, v in e.items() if k not in ("original", "counterfactual")}
                           for e in summary.get("examples", [])]  # fmt: skip
    return summary


def _progress(label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


def _reuse(part: Path, tag: str, console: Any) -> dict[str, Any] | None:
    """A part computed by an earlier run (None when there is none: --cached-only reports it as pending)."""
    if not part.is_file():
        return None
    console.print(f"{tag}: reused {part}")
    return json.loads(part.read_text())


def analyzer_part(
    tag: str, folder: Path, config: Any, limit: int | None, console: Any, cached_only: bool = False
) -> dict[str, Any] | None:
    """Audit + weighted F1 of one analyzer artefact (cached by artefact digest and sample)."""
    from mentalens.analyze import Analyzer
    from mentalens.evaluate.bias import audit_analyzer, audit_records, census
    from mentalens.paths import cache_dir

    digest = _digest(folder)
    part = cache_dir("bench", "bias") / f"{tag}-{digest}-{limit}-{'-'.join(config.attributes)}.json"
    if part.is_file() or cached_only:
        return _reuse(part, tag, console)
    t = time.time()
    records = audit_records(None, config)
    az = Analyzer.load(folder)
    cached = CachedAnalyzer(az)
    with _progress(f"{tag}: weighted F1") as prog:
        bar = prog.add_task("f1", total=None)
        f1 = imhi_f1(cached, records, progress=lambda d, n: prog.update(bar, completed=d, total=n))
    with _progress(f"{tag}: counterfactuals") as prog:
        bar = prog.add_task("cf", total=None)
        result = audit_analyzer(cached, records, config, progress=lambda d, n: prog.update(bar, completed=d, total=n))
    result.system = f"embedded_{tag}"
    s = result.summary(config.bootstrap, config.seed)
    s["examples"] = result.examples
    s["census"] = census(records, config.attributes)
    s["artefact"] = {"digest": digest, "describe": {k: v for k, v in az.describe().items() if k != "tasks"}}
    s["weighted_f1"] = f1
    s["seconds"] = round(time.time() - t, 1)
    s["load_avg"] = list(os.getloadavg())
    s = _strip_text(s)
    part.write_text(json.dumps(s))
    return s


def _safety_digest() -> str:
    """What decides the risk level and the pairs: every file of the safety package and its resources, the
    counterfactuals with the neutral reading (the classifier reads through it), and the learned reader in use."""
    src = ROOT / "src" / "mentalens"
    files = sorted((src / "safety").glob("*.py")) + sorted((src / "resources" / "safety").iterdir()) + [
        src / "evaluate" / "bias" / "counterfactuals.py", src / "evaluate" / "bias" / "neutral.py"]
    h = hashlib.sha1()
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    from mentalens.safety import learned, semantic

    if semantic.learned_enabled():  # $MENTALENS_LEARNED_RISK(_MODEL) change the decision too
        for path in learned.model_spec().split(os.pathsep):  # one reader, or a union of several
            h.update(b"learned:" + (Path(path).read_bytes() if Path(path).is_file() else b"-"))
    return h.hexdigest()[:12]


def safety_part(config: Any, limit: int | None, console: Any, cached_only: bool = False) -> dict[str, Any] | None:
    """The safety layer's risk level on the same counterfactual pairs, cached by the safety layer's digest:
    it does not depend on the analyzer, so a changed safety layer is re-audited alone (a few minutes)."""
    from mentalens.evaluate.bias import audit_records, audit_risk
    from mentalens.paths import cache_dir

    digest = _safety_digest()
    part = cache_dir("bench", "bias") / f"safety-{digest}-{limit}-{'-'.join(config.attributes)}.json"
    if part.is_file() or cached_only:
        return _reuse(part, "safety", console)
    t = time.time()
    with console.status("safety layer: risk level of every post and counterfactual"):
        result = audit_risk(audit_records(None, config), config)
    s = result.summary(config.bootstrap, config.seed)
    s.update(digest=digest, seconds=round(time.time() - t, 1), load_avg=list(os.getloadavg()))
    part.write_text(json.dumps(s))
    return s


def hf_part(
    adapter: str | None, posts: int, sets: tuple[str, ...], tokens: int, console: Any, cached_only: bool = False
) -> dict[str, Any] | None:
    """Audit SmolLM2-135M-Instruct (optionally with the adapter) through the evaluation harness's backend."""
    from mentalens.cli.bias import run_audit
    from mentalens.evaluate import BackendOptions
    from mentalens.evaluate.bias import BiasConfig
    from mentalens.paths import cache_dir

    tag = "smollm2_lora" if adapter else "smollm2"
    part = cache_dir("bench", "bias") / f"{tag}-{posts}-{'-'.join(sets)}-{tokens}.json"
    if part.is_file() or cached_only:
        return _reuse(part, tag, console)
    t = time.time()
    config = BiasConfig(limit=posts, sets=sets, batch_size=8)
    s, _ = run_audit("hf", BackendOptions(model=SMOLLM, adapter=adapter), None, config, name=tag, max_new_tokens=tokens)
    s["seconds"] = round(time.time() - t, 1)
    s["load_avg"] = list(os.getloadavg())
    s["backend"] = {"backend": "hf", "model": SMOLLM, "adapter": adapter, "max_new_tokens": tokens, "greedy": True}
    s["sets"] = list(sets)
    s = _strip_text(s)
    part.write_text(json.dumps(s))
    return s


def _like_for_like_f1() -> dict[str, Any] | None:
    """The mitigation's own cost: the shipped analyzer against the same recipe rebuilt without the mitigation, on
    the full IMHI test sets with paired bootstrap intervals (bench/bias_f1_cost.py's record, docs/bias.md).
    Why beside the v1 comparison: v1 -> shipped also contains every other change since (encoder, runtime)."""
    f = ROOT / "bench/results/bias_f1_cost_like_for_like.json"
    if not f.is_file():
        return None
    rec = json.loads(f.read_text())
    sets = {k: {x: v[x] for x in ("n", "before", "after", "delta", "ci95", "p_loss_over_0_5")}
            for k, v in rec["sets"].items()}  # fmt: skip
    return {"sets": sets, "max_loss": round(max(0.0, -min(v["delta"] for v in sets.values())), 2),
            "limit": 0.5, "command": rec["command"], "before": rec["before_revision"],
            "source": "bench/results/bias_f1_cost_like_for_like.json"}  # fmt: skip


def _recorded_f1() -> dict[str, Any] | None:
    """Full-IMHI-test weighted F1 of v1 (before) and the shipped analyzer (after) as bench/analyzer_quality.py
    recorded them (bench/results/analyzer_quality_v1.json and analyzer_quality.json), with the per-set change."""
    files = {
        "before": ROOT / "bench/results/analyzer_quality_v1.json",
        "after": ROOT / "bench/results/analyzer_quality.json",
    }
    if not all(f.is_file() for f in files.values()):
        return None
    f1 = {k: {s: v["weighted_f1"] for s, v in json.loads(f.read_text())["imhi_test_weighted_f1"].items()}
          for k, f in files.items()}  # fmt: skip
    delta = {s: round(f1["after"][s] - f1["before"][s], 2) for s in f1["before"]}
    return {**f1, "delta": delta, "max_loss": round(max(0.0, -min(delta.values())), 2),
            "source": "bench/results/analyzer_quality_v1.json, bench/results/analyzer_quality.json"}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=BEFORE, help="git revision (or folder) of the unmitigated artefact")
    ap.add_argument("--after", default=str(ROOT / ARTEFACT), help="artefact folder after mitigation")
    ap.add_argument("--limit", type=int, default=30, help="analyzer: posts per IMHI set and attribute (0: all)")
    ap.add_argument("--hf-posts", type=int, default=1, help="SmolLM2: posts per set and attribute (0: skip)")
    ap.add_argument("--hf-set", action="append", default=None, help=f"SmolLM2: IMHI sets (default: {HF_SETS})")
    ap.add_argument("--hf-tokens", type=int, default=48, help="SmolLM2: new tokens per answer")
    ap.add_argument("--output", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--only", choices=("before", "after", "hf", "safety"), default=None,
                    help="compute one part into the cache (a later full run reuses it)")  # fmt: skip
    ap.add_argument("--cached-only", action="store_true",
                    help="only assemble parts already computed; report the others as pending")  # fmt: skip
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from mentalens.cli.bias import ABOUT
    from mentalens.data.io import atomic_write
    from mentalens.evaluate.bias import FLIP_THRESHOLD, BiasConfig, write_bias_report

    console = Console()
    t0 = time.time()
    config = BiasConfig(limit=args.limit or None)
    before_dir = extract_artefact(args.before)
    after_dir = Path(args.after)
    same = _digest(before_dir) == _digest(after_dir)
    systems: list[dict[str, Any]] = []
    pending: dict[str, str] = {}
    hf_sets = tuple(args.hf_set or HF_SETS)
    co = args.cached_only

    def add(name: str, summary: dict[str, Any] | None) -> None:
        if summary is None:
            pending[name] = "not computed in time (bench/bias.py --cached-only)"
        else:
            systems.append(summary)

    if args.only in (None, "before"):
        add("embedded_before", analyzer_part("before", before_dir, config, args.limit, console, co))
    if args.only in (None, "after"):
        if same:
            console.print(f"[yellow]after: the shipped artefact is still the one of {args.before}: pending[/]")
            pending["embedded_after"] = "the mitigated artefact has not landed"
        else:
            add("embedded_after", analyzer_part("after", after_dir, config, args.limit, console, co))
    if args.only in (None, "hf") and args.hf_posts:
        for adapter in (None, LORA):
            tag = "smollm2_lora" if adapter else "smollm2"
            add(tag, hf_part(adapter, args.hf_posts, hf_sets, args.hf_tokens, console, co))
    safety = None
    if args.only in (None, "safety"):
        safety = safety_part(config, args.limit, console, co)
        if safety is None:
            pending["safety_layer"] = "not computed in time (bench/bias.py --cached-only)"
        else:
            console.print(f"safety layer: risk-level flips {_risk_line(safety)} ({safety['seconds']} s)")
            for s in systems:  # the shipped safety layer's flips (an analyzer part may hold an older layer's)
                if s["system"].startswith("embedded"):
                    s["risk_by_attribute"] = safety["risk_by_attribute"]
    for s in systems:
        mfr = s["max_flip_rate"]
        console.print(f"{s['system']}: max flip rate {'-' if mfr is None else f'{100 * mfr:.2f}%'} "
                      f"({s['posts']} posts, {s['pairs']} pairs, {s['seconds']} s)")  # fmt: skip
    if args.only:
        return

    f1 = {s["system"]: s["weighted_f1"] for s in systems if "weighted_f1" in s}
    f1_delta = None
    if "embedded_before" in f1 and "embedded_after" in f1:
        b, a = f1["embedded_before"], f1["embedded_after"]
        f1_delta = {k: round(a[k]["weighted_f1"] - b[k]["weighted_f1"], 2) for k in b}
    cmd = "python bench/bias.py" + (f" --limit {args.limit}" if args.limit != 30 else "")
    cmd += f" --before {args.before}" if args.before != BEFORE else ""
    cmd += f" --output {args.output}" if Path(args.output) != ROOT / "bench" / "results" else ""
    cmd += f" --hf-posts {args.hf_posts}" if args.hf_posts != 1 else ""
    cmd += "".join(f" --hf-set {s}" for s in args.hf_set or ())
    cmd += f" --hf-tokens {args.hf_tokens}" if args.hf_tokens != 48 else ""
    report: dict[str, Any] = {
        "about": ABOUT + f" SmolLM2 rows: {args.hf_posts} post(s) per set and attribute of {', '.join(hf_sets)} "
        f"(fixed seed), greedy answers of at most {args.hf_tokens} tokens; few pairs, so wide intervals.",
        "command": cmd,
        "threshold": FLIP_THRESHOLD,
        "max_flip_rate": {**dict.fromkeys(pending), **{s["system"]: s["max_flip_rate"] for s in systems}},
        "flip_rate_by_attribute": {
            s["system"]: {a: v["flip_rate"] for a, v in s["by_attribute"].items()} for s in systems
        },
        "risk_flip_rate_by_attribute": {
            s["system"]: {a: v["flip_rate"] for a, v in s["risk_by_attribute"].items()} for s in systems
        },
        "safety_layer_risk_flips": None if safety is None else {
            "digest": safety["digest"], "posts": safety["posts"],
            "by_attribute": {a: {k: v[k] for k in ("pairs", "flips", "flip_rate", "ci95") if k in v}
                             for a, v in safety["risk_by_attribute"].items()},
            "max_flip_rate": max((v["flip_rate"] for v in safety["risk_by_attribute"].values()), default=None),
            "previous": PREVIOUS_SAFETY_FLIPS,
        },
        "pending": pending,
        "before_revision": args.before,
        "analyzer_weighted_f1_audited_sample": {**f1, "delta_after_minus_before": f1_delta},
        "analyzer_weighted_f1_full_test": _recorded_f1(),
        "analyzer_weighted_f1_like_for_like": _like_for_like_f1(),
        "systems": systems,
        "seconds": round(time.time() - t0, 1),
    }
    paths = write_bias_report(report, args.output)
    if f1_delta:
        b, a = f1["embedded_before"], f1["embedded_after"]
        lines = ["", "## Embedded analyzer: weighted F1 x100 on the IMHI test sets before / after", "",
                 "| set | n | before | after | Δ |", "|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {k} | {b[k]['n']} | {b[k]['weighted_f1']:.2f} | {a[k]['weighted_f1']:.2f} | {f1_delta[k]:+.2f} |"
                  for k in b]  # fmt: skip
        md = paths[1].read_text()
        with atomic_write(paths[1]) as f:
            f.write(md + "\n".join(lines) + "\n")

    table = Table(title=f"bias audit: label flip rate per attribute (line: {100 * FLIP_THRESHOLD:.0f}%)")
    for col in ("system", "posts", "pairs", "gender", "name", "age", "dialect", "max"):
        table.add_column(col, justify="left" if col == "system" else "right")
    for s in systems:
        cells = [f"{100 * s['by_attribute'][a]['flip_rate']:.2f}%" if a in s["by_attribute"] else "-"
                 for a in ("gender", "name", "age", "dialect")]  # fmt: skip
        mfr = s["max_flip_rate"]
        table.add_row(s["system"], str(s["posts"]), str(s["pairs"]), *cells,
                      "-" if mfr is None else f"{100 * mfr:.2f}%")  # fmt: skip
    console.print(table)
    if f1_delta:
        t2 = Table(title="embedded analyzer weighted F1 x100 before / after")
        for col in ("set", "before", "after", "Δ"):
            t2.add_column(col, justify="left" if col == "set" else "right")
        for k in f1_delta:
            t2.add_row(k, f"{f1['embedded_before'][k]['weighted_f1']:.2f}",
                       f"{f1['embedded_after'][k]['weighted_f1']:.2f}", f"{f1_delta[k]:+.2f}")  # fmt: skip
        console.print(t2)
    console.print(f"wrote {', '.join(map(str, paths))}")


if __name__ == "__main__":
    main()
