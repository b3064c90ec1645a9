"""Learned-reader candidates side by side on one unseen validation split, with the safety bench's own metrics.

    python bench/safety_candidates.py --split dev6 \
        --build "B tune_splits=dev,dev2,dev3,dev4,dev5" --build "C tune_splits=... gate=floor" [--build-only]
    python bench/safety_candidates.py --split dev6 --load B=DIR/B.json.gz --load C=DIR/C.json.gz
    python bench/safety_candidates.py --split dev9 --load AC=SHIPPED.json.gz:DIR/C.json.gz   # a union of readers
    python bench/safety_candidates.py --split dev11,dev12 --bank K=DIR/bank.json.gz   # a prototype bank (pooled)
    python bench/safety_candidates.py --split dev13,dev14 --env R=MENTALENS_CONTEXT_RELEASE=1   # a run-time switch
    python bench/safety_candidates.py --split dev43,dev44 --env M=MENTALENS_MESSAGE_READER_MODEL=M.json.gz   # messages

Why: each round of issue 7 chooses the learned sentence reader (`mentalens.safety.learned`) among a few
candidates, by a rule written down before the validation split is read. This script makes that one command:
it builds every candidate (`learned.build_learned` with the given `LearnedBuildConfig` overrides, the
validation split always kept out of training and its near-duplicates dropped), then assesses the split once
with each candidate in place of the shipped reader, plus the shipped reader ("shipped") and the layer without
a sentence reader ("off"; the message reader, `mentalens.safety.message_reader`, runs in every row where one
is packaged, and `--env NAME=MENTALENS_MESSAGE_READER_MODEL=PATH` tries another). Only tuning/validation splits
(dev*) may be read here: the held-out splits (test,
challenge*) are refused, so no candidate is ever chosen on them.
Writes bench/results/safety_candidates.json (figures per candidate; the built artefacts go to --out-dir).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))


def parse_build(spec: str) -> tuple[str, object]:
    """"NAME key=value key=value" -> (NAME, LearnedBuildConfig), through the project's own config loader
    (typed values, lists as a,b,c, unknown keys named in the error)."""
    from mentalens.config import load_config
    from mentalens.errors import ConfigError
    from mentalens.safety.learned import LearnedBuildConfig

    name, *pairs = spec.split()
    if "=" in name:
        raise SystemExit(f"--build {spec!r}: give the candidate a name first (NAME key=value ...)")
    try:
        return name, load_config(LearnedBuildConfig, None, pairs)
    except ConfigError as exc:
        raise SystemExit(f"--build {spec!r}: {exc}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", required=True, help="the validation split (dev* only; several, comma-separated, "
                    "are pooled)")
    ap.add_argument("--build", action="append", default=[],
                    help='"NAME key=value ..." (LearnedBuildConfig settings; lists as a,b,c)')
    ap.add_argument("--load", action="append", default=[], help="NAME=PATH: a candidate built before (--build-only)")
    ap.add_argument("--bank", action="append", default=[],
                    help="NAME=PATH: a candidate prototype bank (with the readers --load gives NAME, else the "
                         "shipped ones)")
    ap.add_argument("--env", action="append", default=[],
                    help="NAME=KEY=VALUE: a candidate run with this environment variable set (with the readers and "
                         "bank --load/--bank give NAME, else the shipped ones); the others run with it unset")
    ap.add_argument("--build-only", action="store_true",
                    help="build the candidates and stop, before the split is read (e.g. to run the test suite "
                         "with each installed: MENTALENS_LEARNED_RISK_MODEL=PATH)")
    ap.add_argument("--out-dir", default="/tmp/mentalens-safety-candidates")
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "safety_candidates.json"))
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from mentalens.data.io import write_json
    from mentalens.safety import assess, learned, semantic
    from mentalens.safety.semantic import HELD_OUT_SPLITS
    from safety_eval import DATA, labelled_metrics

    console = Console()
    splits = tuple(x.strip() for x in args.split.split(",") if x.strip())
    for split in splits:
        if split in HELD_OUT_SPLITS or not split.startswith("dev"):
            raise SystemExit(f"--split {split}: only tuning/validation splits (dev*) may choose a candidate")
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    missing = [x for x in splits if not any(r["split"] == x for r in rows)]
    if missing or not splits:
        raise SystemExit(f"--split {args.split}: no item of {', '.join(missing) or 'it'} in {DATA}")
    rows = [r for r in rows if r["split"] in splits]

    builds = [parse_build(b) for b in args.build]
    shipped = learned.load_readers(learned.model_spec())  # every shipped reader (a union since round 12)
    models: dict[str, object] = {"off": False, "shipped": shipped}
    configs: dict[str, object] = {"off": {}, "shipped": [m.meta.get("config", {}) for m in shipped.members]}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, cfg in builds:
        if set(splits) & set(cfg.tune_splits):
            raise SystemExit(f"--build {name}: it would train on the validation split {args.split}")
        cfg = dataclasses.replace(cfg, validation_splits=(*cfg.validation_splits, *splits))
        console.print(f"building {name}: tune {', '.join(cfg.tune_splits)}; gate {cfg.gate}; "
                      f"left to rules {cfg.left_to_rules}")
        model, _report = learned.build_learned(DATA, cfg=cfg, progress=lambda m, n=name: console.print(f"  [{n}] {m}"))
        model.save(out_dir / f"{name}.json.gz")
        models[name], configs[name] = model, dataclasses.asdict(cfg)
    if args.build_only:
        console.print(f"built {', '.join(n for n, _ in builds)} in {out_dir}; {args.split} not read")
        return
    for spec in args.load:
        name, _, path = spec.partition("=")
        model = learned.load_readers(path)  # several paths joined by os.pathsep: a union of readers
        members = model.members
        if any(set(splits) & set(m.meta.get("tune_splits", ())) for m in members):
            raise SystemExit(f"--load {spec}: it was trained on the validation split {args.split}")
        models[name], configs[name] = model, [m.meta.get("config", {}) for m in members]
    shipped_bank = semantic.get_bank()
    banks: dict[str, object] = {}
    for spec in args.bank:
        name, _, path = spec.partition("=")
        banks[name] = bank = semantic.SemanticBank.load(path)
        choice = bank.meta.get("language_threshold_choice", {})
        tuned = set(bank.meta.get("tune_splits", ())) | set(choice.get("splits", ()))
        if set(splits) & tuned:
            raise SystemExit(f"--bank {spec}: it was tuned on the validation split {args.split}")
        models.setdefault(name, shipped)
        configs.setdefault(name, configs["shipped"])

    envs: dict[str, dict[str, str]] = {}
    for spec in args.env:
        name, _, pair = spec.partition("=")
        key, _, value = pair.partition("=")
        if not name or not key:
            raise SystemExit(f"--env {spec!r}: give NAME=KEY=VALUE")
        envs.setdefault(name, {})[key] = value
        if key == "MENTALENS_MESSAGE_READER_MODEL":  # a message reader: never one trained on the validation split
            from mentalens.safety.learned import LearnedRiskModel

            if set(splits) & set(LearnedRiskModel.load(value).meta.get("tune_splits", ())):
                raise SystemExit(f"--env {spec}: it was trained on the validation split {args.split}")
        models.setdefault(name, shipped)
        configs.setdefault(name, configs["shipped"])
    switched = {k for e in envs.values() for k in e}
    saved = {k: os.environ.pop(k) for k in switched if k in os.environ}  # unset for every other candidate

    results: dict[str, dict] = {}
    for name, model in models.items():
        semantic._STATE.learned = model  # the reader assess() uses (False: none)
        semantic._STATE.bank = banks.get(name, shipped_bank)
        os.environ.update(envs.get(name, {}))
        preds = {r["id"]: assess(r["messages"]) for r in rows}
        for key in envs.get(name, {}):
            os.environ.pop(key, None)
        m = labelled_metrics(rows, preds)
        results[name] = {k: m[k] for k in ("recall_high_imminent", "recall_moderate_plus", "recall_imminent_exact",
                                           "benign_false_alarm_rate", "over_triage", "exact_level_accuracy")}
        members = model.members if model else ()  # one reader, or each reader of a union
        results[name]["thresholds"] = [list(m.thresholds) for m in members]
        results[name]["gate"] = [m.gate for m in members]
        results[name]["left_to_rules"] = semantic.left_to_rules_policy()
        results[name]["bank"] = {"threshold": semantic._STATE.bank.threshold,
                                 "language_thresholds": semantic._STATE.bank.language_thresholds}
        results[name]["env"] = envs.get(name, {})
    semantic.reset()
    os.environ.update(saved)

    table = Table(title=f"learned-reader candidates on {args.split} ({len(rows)} items)")
    for col in ("candidate", "recall high+", "recall moderate+", "sum", "benign false alarms", "over-triage"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for name, r in results.items():
        table.add_row(name, f"{r['recall_high_imminent']:.3f}", f"{r['recall_moderate_plus']:.3f}",
                      f"{r['recall_high_imminent'] + r['recall_moderate_plus']:.3f}",
                      f"{r['benign_false_alarm_rate']:.3f}", f"{r['over_triage']:.3f}")
    console.print(table)
    write_json({"split": args.split, "splits": list(splits), "items": len(rows), "candidates": results,
                "configs": configs}, args.output,
               default=list)
    console.print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
