"""`mentalens analyze` (one text or a file of posts) and `mentalens train analyzer` (rebuild the heads)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import typer

from mentalens.cli.app import app, console, err_console, print_json, train_app
from mentalens.errors import DataError

TEXT_COLUMNS = ("text", "post", "content", "message", "selftext", "body")


# ---------------------------------------------------------------------------------------------- input files


def _decode(raw: bytes, path: Path, warn: list[str]) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        warn.append(f"{path}: not valid UTF-8 (first bad byte at {exc.start}): bad bytes replaced with U+FFFD")
        return raw.decode("utf-8", errors="replace")


def read_posts(path: Path, column: str | None = None) -> tuple[list[str], list[str]]:
    """Posts from .csv/.tsv (a text column), .jsonl (a text field) or .txt (one per line); plus warnings."""
    if not path.is_file():
        raise DataError(f"{path}: file not found: check the path")
    warn: list[str] = []
    content = _decode(path.read_bytes(), path, warn)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        try:
            reader = csv.DictReader(io.StringIO(content), delimiter="\t" if suffix == ".tsv" else ",")
            rows = list(reader)
        except csv.Error as exc:
            raise DataError(f"{path}: malformed CSV ({exc}): fix the quoting or delimiter") from None
        fields = reader.fieldnames or []
        col = _pick_column(fields, column, path)
        return [r.get(col) or "" for r in rows], warn
    if suffix in (".jsonl", ".ndjson"):
        posts = []
        for i, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{i}: not valid JSON ({exc.msg}): one JSON object per line") from None
            if isinstance(row, str):
                posts.append(row)
                continue
            if not isinstance(row, dict):
                raise DataError(f"{path}:{i}: expected a JSON object or string per line, got {type(row).__name__}")
            col = _pick_column(list(row), column, path, line=i)
            posts.append(str(row.get(col) or ""))
        return posts, warn
    if suffix in (".txt", ".text", ""):
        return [line for line in content.splitlines() if line.strip()], warn
    raise DataError(f"{path}: unsupported file type {suffix!r}: use .csv, .tsv, .jsonl or .txt")


def _pick_column(fields: list[str], column: str | None, path: Path, line: int | None = None) -> str:
    where = f"{path}:{line}" if line else str(path)
    if column:
        if column not in fields:
            raise DataError(f"{where}: no column {column!r}; found {', '.join(fields) or 'none'}")
        return column
    for c in TEXT_COLUMNS:
        if c in fields:
            return c
    raise DataError(
        f"{where}: no text column ({', '.join(TEXT_COLUMNS)}); found {', '.join(fields) or 'none'}: pass --column NAME"
    )


# ---------------------------------------------------------------------------------------------- rendering


def render(analysis: Any) -> None:
    """A readable rich panel: findings with their evidence, emotions, risk, warnings, disclaimer."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    head = Text()
    level = analysis.risk_level
    style = {"none": "green", "low": "yellow", "moderate": "bold yellow", "high": "bold red", "imminent": "bold red"}
    head.append("Risk level: ", style="bold")
    head.append(f"{level}", style=style.get(level, "dim"))
    head.append(f"   Language: {analysis.language}")
    detected = analysis.detected_emotions[:5] or analysis.emotions[:1]
    head.append("\nEmotions: ", style="bold")
    head.append(", ".join(f"{e.label} {e.score:.2f}" for e in detected) or "-")

    table = Table(show_header=True, header_style="bold", expand=True, show_lines=False)
    table.add_column("task", no_wrap=True)
    table.add_column("answer", no_wrap=True)
    table.add_column("p", justify="right")
    table.add_column("evidence (most supporting sentence)", ratio=1)
    for key, r in analysis.tasks.items():
        ev = r.evidence[0].sentence if r.evidence else ""
        ev = ev if len(ev) <= 140 else ev[:137] + "..."
        colour = "bold" if r.positive else "dim"
        table.add_row(key, Text(r.label, style=colour), f"{r.probability:.2f}", ev)
    parts: list[Any] = [head, table]
    findings = analysis.findings()
    if findings:
        parts.append(Text("\nStrongest signal: ", style="bold") + Text(findings[0].answer))
    for w in analysis.warnings:
        parts.append(Text(f"note: {w}", style="yellow"))
    risk = analysis.risk
    if risk is not None and getattr(risk, "requires_escalation", False):
        try:
            from mentalens.safety.escalation import escalation_text

            msg = escalation_text(risk)
            if msg:
                parts.append(Panel(msg, title="support", border_style="red"))
        except ImportError:
            pass
    parts.append(Text(analysis.disclaimer, style="italic dim"))
    console.print(Panel(Group(*parts), title="mentalens analysis", border_style="cyan"))


# ---------------------------------------------------------------------------------------------- commands


@app.command("analyze")
def analyze(
    text: str = typer.Argument(None, help="The text to analyse ('-' reads stdin)."),
    file: Path = typer.Option(None, "--file", "-f", help="Analyse every post of a .csv/.tsv/.jsonl/.txt file."),
    output: Path = typer.Option(None, "--output", "-o", help="With --file: write results here (.jsonl or .csv)."),
    column: str = typer.Option(None, "--column", help="With --file: the text column (default: text/post/...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the panel."),
    evidence: bool = typer.Option(True, "--evidence/--no-evidence", help="Rank supporting sentences."),
    artefact: Path = typer.Option(None, "--artefact", help="An analyzer artefact folder (default: shipped)."),
) -> None:
    """Analyse a post: IMHI task labels with evidence, emotions and risk (offline, CPU)."""
    if (text is None) == (file is None):
        raise DataError("pass either TEXT or --file FILE (use '-' to read the text from stdin)")
    if output is not None and file is None:
        raise DataError("--output needs --file: for one text use --json and redirect stdout")
    from mentalens.analyze import Analyzer, get_analyzer

    if file is not None:
        _analyze_file(file, output, column, as_json, evidence, artefact)
        return
    raw: str | bytes = sys.stdin.buffer.read() if text == "-" else text
    az = Analyzer.load(artefact) if artefact else get_analyzer()
    a = az.analyze(raw, evidence=evidence)
    if as_json:
        print_json(a.to_dict())
    else:
        render(a)


def _analyze_file(
    file: Path, output: Path | None, column: str | None, as_json: bool, evidence: bool, artefact: Path | None
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from mentalens.analyze import Analyzer, get_analyzer
    from mentalens.data.io import atomic_write

    posts, warnings = read_posts(file, column)
    for w in warnings:
        err_console.print(f"[yellow]warning:[/] {w}")
    if not posts:
        raise DataError(f"{file}: no posts found: expected one post per row/line")
    if output is not None and output.suffix.lower() not in (".jsonl", ".csv", ".json"):
        raise DataError(f"{output}: unsupported output type: use .jsonl, .json or .csv")
    az = Analyzer.load(artefact) if artefact else get_analyzer()
    with Progress(
        TextColumn("analysing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err_console
    ) as progress:
        bar = progress.add_task("posts", total=len(posts))
        results = az.analyze_batch(
            posts, evidence=evidence, on_empty="keep", progress=lambda done, total: progress.update(bar, completed=done)
        )
    rows = [{"index": i, **r.to_dict()} for i, r in enumerate(results)]
    if output is None:
        if as_json:
            print_json(rows)
        else:
            _summary_table(rows)
        return
    suffix = output.suffix.lower()
    with atomic_write(output) as f:
        if suffix == ".jsonl":
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        elif suffix == ".json":
            json.dump(rows, f, ensure_ascii=False, indent=1, default=str)
        else:
            keys = list(results[0].tasks) if results and results[0].tasks else []
            for r in results:
                for k in r.tasks:
                    if k not in keys:
                        keys.append(k)
            writer = csv.writer(f)
            writer.writerow(["index", "risk_level", "language", "emotions", "warnings",
                             *[f"{k}" for k in keys], *[f"{k}.p" for k in keys]])  # fmt: skip
            for i, r in enumerate(results):
                writer.writerow([
                    i, r.risk_level, r.language,
                    ";".join(e.label for e in r.detected_emotions),
                    " | ".join(r.warnings),
                    *[r.tasks[k].label if k in r.tasks else "" for k in keys],
                    *[f"{r.tasks[k].probability:.4f}" if k in r.tasks else "" for k in keys],
                ])  # fmt: skip
    console.print(f"[green]analysed {len(rows)} post(s)[/] -> {output}")


def _summary_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="mentalens analysis", show_lines=False)
    for col in ("#", "risk", "findings", "emotions"):
        table.add_column(col)
    for row in rows:
        tasks = row["tasks"]
        found = [f"{k}: {v['label']}" for k, v in tasks.items() if v["label"] not in ("no", "none")]
        emos = [e["label"] for e in row["emotions"] if e["detected"]][:3]
        table.add_row(str(row["index"]), row["risk_level"], ", ".join(found[:4]) or "-", ", ".join(emos) or "-")
    console.print(table)


@train_app.command("analyzer")
def train_analyzer_cmd(
    data: Path = typer.Option(None, "--data", help="Data folder (default: $MENTALENS_DATA or the fetched data)."),
    output: Path = typer.Option(
        None, "--output", "-o", help="Artefact folder to write (default: the user cache; the shipped one is untouched)."
    ),
    seed: int = typer.Option(13, "--seed", help="Random seed (folds, splits, weak-label sampling)."),
    cache: Path = typer.Option(None, "--cache", help="Feature cache folder (default: the user cache dir)."),
    set_: list[str] = typer.Option(None, "--set", help="Config override key=value (e.g. folds=3)."),
) -> None:
    """Rebuild the analyzer from leakage-free data (fixed seeds): LoRA-tune the encoder, fit the heads, print metrics.

    Tuning takes ~25 min on 2 CPU cores and is cached. Reuse an adapter: --set adapter=DIR.
    Keep the encoder frozen: --set tuning.enabled=false."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from mentalens.analyze.train import TrainConfig, train_analyzer
    from mentalens.config import load_config
    from mentalens.paths import cache_dir

    cfg = load_config(TrainConfig, None, [f"seed={seed}", *(set_ or [])])
    if cache is not None:
        cfg.cache = str(cache)
    out = output or cache_dir("analyzer", "trained")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        bars: dict[str, Any] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            if name not in bars:
                bars[name] = progress.add_task(name if name.startswith("LoRA") else f"encoding {name}", total=total)
            progress.update(bars[name], completed=done)

        result = train_analyzer(data, out, cfg, log=progress.console.print, progress=on_progress)
    table = Table(title="analyzer heads (validation: cross-validated on leakage-free train+val)")
    for col in ("head", "metric", "value", "n", "source"):
        table.add_column(col)
    for key, spec in result.heads.specs.items():
        m = spec.metrics
        if "cv_weighted_f1" in m:
            metric, value = "CV weighted F1", f"{m['cv_weighted_f1']:.2f}"
        elif "dev_macro_f1" in m:
            metric, value = "dev macro-F1", f"{m['dev_macro_f1']:.2f}"
        else:
            metric, value = "transfer", "-"
        table.add_row(key, metric, value, str(m.get("n", m.get("n_train", "-"))), spec.source)
    console.print(table)
    console.print(f"artefact: {result.output}  (use it with `mentalens analyze --artefact {result.output} ...`)")
