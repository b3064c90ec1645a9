"""Score a run folder: labels and correctness, ROUGE, BARTScore, BERTScore -> RUN_DIR/scores.json.

Works on mentalens runs (<set>.jsonl, with queries, aspects and failures) and on any folder in MentaLLaMA's
output layout (<set>.csv with goldens, generated_text), so published model outputs can be scored the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mentalens.errors import DataError
from mentalens.evaluate.correctness import UNPARSEABLE, LabelledRow, correctness
from mentalens.evaluate.runner import RUN_FILE, read_rows
from mentalens.tasks import TASKS, Task

SCORES_FILE = "scores.json"


@dataclass
class ScoreConfig:
    rouge: bool = True
    bartscore: str | None = None  # checkpoint (hub id or folder); None = skip
    bart_weights: str | None = None  # ParaBank bart.pth
    bart_directions: tuple[str, ...] = ("hyp_ref", "ref_hyp", "f_avg", "f_harm", "src_hyp")
    bart_batch_size: int = 32
    bertscore: str | None = None  # model (hub id or folder) for bert-score; None = skip
    bertscore_layers: int | None = None
    fallback: Any = None  # "none" | "analyzer[:PATH]" | "mentalbert:DIR" | a FallbackClassifier
    resamples: int = 1000
    seed: int = 0
    device: str | None = None
    examples: int = 3
    rows_dir: str = "scored"  # per-row labels and scores, under the run folder


@dataclass
class SetRows:
    set_name: str
    task: Task
    rows: list[dict[str, Any]]  # answered rows: gold, generated, query, aspect, index
    failed: int = 0
    source: str = "jsonl"


@dataclass
class ScoreResult:
    run_dir: Path
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "sets": self.sets}


def _post_of(query: str) -> str:
    from mentalens.data import split_query

    return split_query(query)[0]


def load_run(run_dir: str | Path) -> list[SetRows]:
    """Answered rows per set from <set>.jsonl (preferred) or <set>.csv; unknown file names are skipped."""
    from mentalens.data import read_table

    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: run folder not found: pass the --output folder of `mentalens answer`")
    stems = sorted({p.stem for p in root.glob("*.jsonl")} | {p.stem for p in root.glob("*.csv")})
    out: list[SetRows] = []
    for stem in stems:
        if stem not in TASKS:
            continue
        task = TASKS.get(stem)
        jsonl, csv = root / f"{stem}.jsonl", root / f"{stem}.csv"
        if jsonl.is_file():
            rows = read_rows(jsonl)
            ok = [rows[i] for i in sorted(rows) if rows[i].get("error") is None]
            failed = sum(r.get("error") is not None for r in rows.values())
            out.append(SetRows(stem, task, ok, failed, "jsonl"))
        else:
            df = read_table(csv, required=("goldens", "generated_text"))
            ok = [
                {"index": i, "gold": g, "generated": h, "query": None, "aspect": None}
                for i, (g, h) in enumerate(zip(df["goldens"], df["generated_text"], strict=True))
            ]
            out.append(SetRows(stem, task, ok, 0, "csv"))
    if not out:
        raise DataError(
            f"{root}: no IMHI answers found: expected <set>.jsonl or <set>.csv (goldens, generated_text) files"
        )
    return out


def _label_rows(sr: SetRows, fallback: Any) -> tuple[list[LabelledRow], list[dict[str, Any]], int]:
    """Gold and predicted label per row; the fallback classifier reads answers the parser cannot."""
    task = sr.task
    labelled: list[LabelledRow | None] = []
    details: list[dict[str, Any]] = []
    gold_unparsed = 0
    pending: list[int] = []
    for row in sr.rows:
        gold = row.get("gold_label") or task.parse(row["gold"])
        aspect = row.get("aspect")
        if aspect is None and row.get("query"):
            aspect = task.aspect_of(row["query"])
        pred = task.parse(row.get("generated") or "")
        detail = {"index": row["index"], "aspect": aspect, "gold_label": gold, "label": pred, "label_source": "parser"}
        details.append(detail)
        if gold is None:
            gold_unparsed += 1
            labelled.append(None)
            continue
        if pred is None:
            detail["label_source"] = "none"
            pending.append(len(labelled))
        labelled.append(LabelledRow(gold, pred or UNPARSEABLE, detail["label_source"], aspect))
    if fallback is not None and pending:
        texts = [str(sr.rows[i].get("generated") or "") for i in pending]
        aspects = [details[i]["aspect"] for i in pending]
        for i, label in zip(pending, fallback.classify(texts, task, aspects), strict=True):
            if label is not None and labelled[i] is not None:
                labelled[i].predicted, labelled[i].source = label, "fallback"
                details[i]["label"], details[i]["label_source"] = label, "fallback"
    return [x for x in labelled if x is not None], details, gold_unparsed


def _examples(sr: SetRows, details: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """A correct, a wrong and an unparseable answer (when there are such), for the report."""
    picks: list[dict[str, Any]] = []
    kinds = (
        ("correct", lambda d: d["label"] is not None and d["label"] == d["gold_label"]),
        ("wrong", lambda d: d["label"] is not None and d["gold_label"] is not None and d["label"] != d["gold_label"]),
        ("unparseable", lambda d: d["label"] is None and d["gold_label"] is not None),
    )
    for kind, pred in kinds:
        if len(picks) >= k:
            break
        for row, d in zip(sr.rows, details, strict=True):
            if pred(d):
                post = _post_of(row["query"]) if row.get("query") else ""
                picks.append(
                    {
                        "kind": kind,
                        "index": row["index"],
                        "aspect": d["aspect"],
                        "post": post[:600],
                        "generated": str(row.get("generated") or "")[:1200],
                        "gold": str(row["gold"])[:1200],
                        "gold_label": d["gold_label"],
                        "label": d["label"],
                        "label_source": d["label_source"],
                    }
                )
                break
    return picks


def _bertscore(hyps: list[str], refs: list[str], model: str, layers: int | None, device: str | None) -> list[float]:
    try:
        from bert_score import score as bert_score
    except ImportError:
        from mentalens.errors import ModelError

        raise ModelError(
            "BERTScore needs the bert-score package: pip install bert-score (or drop --bertscore)"
        ) from None
    kwargs: dict[str, Any] = {"model_type": model, "device": device or "cpu", "verbose": False}
    if layers is not None:
        kwargs["num_layers"] = layers
    _, _, f1 = bert_score(hyps, refs, **kwargs)
    return [float(x) for x in f1]


def score_run(run_dir: str | Path, config: ScoreConfig | None = None, *, show_progress: bool = True) -> ScoreResult:
    """Score every set in run_dir and write scores.json (+ per-row scores under scored/)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from mentalens.data import write_jsonl
    from mentalens.evaluate.fallback import get_fallback
    from mentalens.evaluate.rouge import rouge_pairs

    cfg = config or ScoreConfig()
    root = Path(run_dir).expanduser()
    sets = load_run(root)
    fallback = get_fallback(cfg.fallback)
    scorer = None
    if cfg.bartscore:
        from mentalens.evaluate.bartscore import BARTScorer

        scorer = BARTScorer(cfg.bartscore, weights=cfg.bart_weights, device=cfg.device, batch_size=cfg.bart_batch_size)

    run_meta: dict[str, Any] = {}
    if (root / RUN_FILE).is_file():
        run_meta = json.loads((root / RUN_FILE).read_text(encoding="utf-8"))
    result = ScoreResult(root)
    result.meta = {
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": {k: run_meta.get(k) for k in ("backend", "data", "limit", "seed", "started", "finished")},
        "fallback": fallback.describe() if fallback else None,
        "rouge": {"package": "rouge-score", "stemmer": True} if cfg.rouge else None,
        "bartscore": (
            {**scorer.describe(), "directions": list(cfg.bart_directions), "reported": "hyp_ref"} if scorer else None
        ),
        "bertscore": {"model": cfg.bertscore, "layers": cfg.bertscore_layers} if cfg.bertscore else None,
        "resamples": cfg.resamples,
        "seed": cfg.seed,
    }
    d = set(cfg.bart_directions)
    passes = int(bool(d & {"hyp_ref", "ref_hyp", "f_avg", "f_harm"})) + int(bool(d & {"ref_hyp", "f_avg", "f_harm"}))
    n_bart = 0
    if scorer is not None:
        for s in sets:
            has_src = bool(s.rows) and all(r.get("query") for r in s.rows)
            n_bart += len(s.rows) * (passes + int("src_hyp" in d and has_src))
    progress = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show_progress or n_bart == 0,
    )
    with progress:
        bar = progress.add_task("BARTScore", total=n_bart)
        for sr in sets:
            labelled, details, gold_unparsed = _label_rows(sr, fallback)
            hyps = [str(r.get("generated") or "") for r in sr.rows]
            refs = [str(r["gold"]) for r in sr.rows]
            entry: dict[str, Any] = {
                "set": sr.set_name,
                "task": sr.task.name,
                "source": sr.source,
                "answered": len(sr.rows),
                "failed": sr.failed,
                "empty": sum(not h.strip() for h in hyps),
                "gold_unparsed": gold_unparsed,
                "correctness": correctness(labelled, sr.task.labels, resamples=cfg.resamples, seed=cfg.seed).to_dict(),
            }
            secs = [r["seconds"] for r in sr.rows if isinstance(r.get("seconds"), int | float)]
            if secs:
                entry["seconds_per_answer"] = sum(secs) / len(secs)
            per_row: dict[str, list[float]] = {}
            if cfg.rouge and sr.rows:
                pairs = rouge_pairs(hyps, refs)
                per_row.update(pairs)
                entry["rouge"] = {k: 100 * sum(v) / len(v) for k, v in pairs.items()}
            if scorer is not None and sr.rows:
                progress.update(bar, description=f"BARTScore {sr.set_name}")
                srcs = [_post_of(r["query"]) for r in sr.rows] if all(r.get("query") for r in sr.rows) else None
                which = [d for d in cfg.bart_directions if d != "src_hyp" or srcs is not None]
                dirs = scorer.directions(hyps, refs, srcs, which=which, progress=lambda n: progress.advance(bar, n))
                per_row.update({f"bart_{k}": v for k, v in dirs.items()})
                entry["bartscore"] = {k: sum(v) / len(v) for k, v in dirs.items()}
            if cfg.bertscore and sr.rows:
                f1 = _bertscore(hyps, refs, cfg.bertscore, cfg.bertscore_layers, cfg.device)
                per_row["bertscore_f1"] = f1
                entry["bertscore"] = {"f1": 100 * sum(f1) / len(f1)}
            entry["examples"] = _examples(sr, details, cfg.examples)
            result.sets[sr.set_name] = entry
            for j, d in enumerate(details):
                for k, v in per_row.items():
                    d[k] = v[j]
            write_jsonl(details, root / cfg.rows_dir / f"{sr.set_name}.jsonl")
    from mentalens.data import atomic_write

    with atomic_write(root / SCORES_FILE) as f:
        json.dump(result.to_dict(), f, ensure_ascii=False, indent=2)
        f.write("\n")
    return result


def load_scores(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir).expanduser() / SCORES_FILE
    if not path.is_file():
        raise DataError(f"{path}: no scores yet: run `mentalens eval score {Path(run_dir)}` first")
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["SCORES_FILE", "ScoreConfig", "ScoreResult", "load_run", "load_scores", "score_run"]
