"""`mentalens data ...`: fetch the public data, show what is in a folder, export training files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mentalens.cli.app import console, sub_app

data_app = sub_app("data", "Fetch, inspect and export the public data (IMHI, GoEmotions, CounselChat, raw sets).")


@data_app.command("fetch")
def fetch(
    dest: Path = typer.Argument(None, help="Folder to fill (default: the user data folder)."),
    from_dir: Path = typer.Option(None, "--from", help="Copy from a local folder with the same layout."),
    only: list[str] = typer.Option(None, "--only", help="Groups to fetch (imhi, goemotions, counselchat, ...)."),
) -> None:
    """Download the public files from their pinned GitHub sources (checksums verified, resumable)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from mentalens.data import fetch as fetch_mod
    from mentalens.errors import DataError
    from mentalens.paths import user_data_dir

    dest = (dest or user_data_dir() / "data").expanduser()
    files = fetch_mod.select(only)
    if from_dir is not None and not from_dir.is_dir():
        raise DataError(f"{from_dir}: --from folder not found: pass a folder laid out like the data folder")
    dest.mkdir(parents=True, exist_ok=True)
    counts = {"ok": 0, "present": 0}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console
    ) as progress:
        task = progress.add_task("data", total=sum(f.size for f in files))
        for f in files:
            progress.update(task, description=f.path)
            if from_dir is not None:
                status = fetch_mod.copy_from(f, from_dir.expanduser(), dest)
                progress.advance(task, f.size)
            else:
                status = fetch_mod.download(f, dest, progress=lambda n: progress.advance(task, n))
            counts[status] += 1
    fetch_mod.write_source_notes(dest)
    console.print(
        f"[green]{counts['ok']} file(s) fetched, {counts['present']} already present and verified[/] in {dest}\n"
        f"Use it with: export MENTALENS_DATA={dest}"
    )


@data_app.command("stats")
def stats(
    data: Path = typer.Argument(None, help="IMHI folder, data folder or CSV (default: the data folder)."),
) -> None:
    """Rows and gold label distribution per IMHI set, split and format."""
    from mentalens.data.stats import imhi_stats

    table = Table(title="IMHI data", show_lines=False)
    for col in ("set", "split", "format", "rows", "labels", "unparsed"):
        table.add_column(col, justify="right" if col in ("rows", "unparsed") else "left")
    total = 0
    for s in imhi_stats(data):
        total += s.rows
        labels = ", ".join(f"{k} {v}" for k, v in sorted(s.labels.items()))
        table.add_row(s.set_name, s.split, s.fmt, str(s.rows), labels, str(s.unparsed))
    console.print(table)
    console.print(f"{total} rows in all")


@data_app.command("export")
def export(
    output: Path = typer.Argument(..., help="JSONL file to write."),
    data: Path = typer.Option(None, "--data", help="Data folder (default: the configured one)."),
    fmt: str = typer.Option("messages", "--format", help="messages | prompt_completion"),
    split: str = typer.Option("train", "--split", help="train | val (test posts are never exported for training)"),
    sets: list[str] = typer.Option(None, "--set", help="IMHI sets to include (default: all)."),
    counselling: bool = typer.Option(False, "--counselling", help="Add CounselChat answers of the same split."),
) -> None:
    """Export leakage-guarded IMHI (and counselling) training data as JSONL for any trainer."""
    from mentalens.data import LeakageGuard, export_jsonl, load_counselchat, load_imhi
    from mentalens.errors import DataError

    if split == "test":
        raise DataError("--split test: test posts are for evaluation only; export train or val")
    records: list = load_imhi(None if data is None else data, split=split, fmt="instruction", sets=sets or None)
    guard = LeakageGuard.from_data_dir(data)
    records, report = guard.filter(records, lambda r: r.post, lambda r: r.set_name)
    if counselling:
        records += load_counselchat(data, split=split)
    n = export_jsonl(records, output, fmt)
    console.print(f"{report}\nwrote {n} rows ({fmt}) to {output}")
