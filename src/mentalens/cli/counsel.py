"""`mentalens chat` (a counselling session in the terminal) and `mentalens counsel index` (the retrieval index)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mentalens.cli.app import app, console, err_console, print_json, sub_app

counsel_app = sub_app("counsel", "The counselling engine: prepare the retrieval index, inspect it.")

HELP = (
    "Commands: /feelings shows your feelings over this conversation, /end deletes the conversation and quits, "
    "/quit quits, /help shows this."
)


def parse_options(pairs: list[str] | None) -> dict:
    """--option key=value pairs (values parsed as YAML scalars) for the backend's constructor."""
    from mentalens.config import parse_overrides

    return parse_overrides(pairs or [])


@counsel_app.command("index")
def index(
    data: Path = typer.Option(None, "--data", help="Data folder or CounselChat CSV (default: the data folder)."),
    fetch: bool = typer.Option(False, "--fetch", help="Download CounselChat first when it is missing."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even when a cached index exists."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Build (or check) the cached retrieval index over CounselChat that the embedded chat answers from."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mentalens.analyze import get_analyzer
    from mentalens.counsel.retrieval import RetrievalIndex, counselchat_file, encoder_fingerprint
    from mentalens.errors import DataError

    try:
        counselchat_file(data)
    except DataError:
        if not fetch:
            raise
        _fetch_counselchat()
    analyzer = get_analyzer()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("embedding CounselChat questions", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        idx = RetrievalIndex.load_or_build(analyzer.embed, encoder_fingerprint(analyzer), data=data,
                                           rebuild=rebuild, progress=step)
    answers = sum(len(v) for v in idx.raw_answers.values())
    info = {"questions": len(idx), "answers": answers, "checksum": idx.checksum, "cache": str(idx.path)}
    if json_out:
        print_json(info)
    else:
        console.print(f"[green]retrieval index ready[/]: {len(idx)} questions, {answers} answers -> {idx.path}")


def _fetch_counselchat() -> None:
    from mentalens.data import fetch as fetch_mod
    from mentalens.paths import user_data_dir

    dest = user_data_dir() / "data"
    dest.mkdir(parents=True, exist_ok=True)
    err_console.print("CounselChat not found: downloading it (mentalens data fetch --only counselchat)")
    for f in fetch_mod.select(["counselchat"]):
        fetch_mod.download(f, dest)
    fetch_mod.write_source_notes(dest)


@app.command("chat")
def chat(
    backend: str = typer.Option("embedded", "--backend", "-b", help="embedded | hf | proxy | openai"),
    option: list[str] = typer.Option(None, "--option", "-o", help="Backend option key=value (repeatable)."),
    locale: str = typer.Option(None, "--locale", help="Where you are (e.g. US, en-GB, es-MX): crisis resources."),
    max_tokens: int = typer.Option(320, "--max-tokens", help="Longest reply, in tokens."),
    temperature: float = typer.Option(0.7, "--temperature"),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Show the reply as it is written."),
    data: str = typer.Option(None, "--data", help="Folder (or CSV) with CounselChat (default: the data folder)."),
) -> None:
    """A counselling conversation in the terminal (an AI, not a therapist; nothing is saved)."""
    from rich.panel import Panel

    from mentalens import safety
    from mentalens.backend import GenerationConfig
    from mentalens.counsel.engine import CounselEngine, Delta, EngineConfig, TurnEnd
    from mentalens.counsel.session import ChatSession
    from mentalens.errors import MentalensError
    from mentalens.server.state import build_engine_parts

    generation = GenerationConfig(max_new_tokens=max_tokens, temperature=temperature)
    console.print(Panel(f"{safety.AI_DISCLOSURE}\n{safety.NOT_A_DIAGNOSIS}\n\n{HELP}", title="mentalens chat",
                        border_style="cyan"))
    with console.status("loading the analyzer and the counsellor…"):
        analyzer, model_backend, counsellor = build_engine_parts(backend, parse_options(option), data=data)
        engine = CounselEngine(model_backend, analyzer=analyzer, config=EngineConfig(locale=locale),
                               fallback=counsellor.reply)
    session = ChatSession(locale=locale)
    interactive = sys.stdin.isatty()
    while True:
        try:
            text = console.input("[bold cyan]you>[/] ") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            break
        if not interactive and text == "":
            break
        text = text.strip()
        if not text:
            continue
        command = text.lower()
        if command in ("/quit", "/exit"):
            break
        if command == "/help":
            console.print(HELP)
            continue
        if command == "/feelings":
            show_feelings(session)
            continue
        if command == "/end":
            session.turns.clear()
            console.print("[green]The conversation was deleted.[/] Take care of yourself.")
            return
        if text.startswith("/"):
            console.print(f"unknown command {text.split()[0]}. {HELP}")
            continue
        console.print("[bold magenta]mentalens (AI)>[/] ", end="")
        writer = WordWrap(console.width, start=len("mentalens (AI)> "))
        try:
            end: TurnEnd | None = None
            for event in engine.turn(session, text, generation):
                if isinstance(event, Delta):
                    if stream:
                        console.out(writer.feed(event.text), end="", highlight=False)
                else:
                    end = event
            if end is not None and not stream:
                console.out(writer.feed(end.reply), end="", highlight=False)
            console.print()
            if end is not None and end.escalation:
                console.print(Panel(resource_lines(end.risk), title="help is available", border_style="red"))
        except MentalensError as exc:
            console.print(f"\n[red]{exc}[/]")
    console.print("Goodbye. Nothing from this conversation was saved.")


class WordWrap:
    """Wraps streamed text at word boundaries (the terminal would cut words at its edge)."""

    def __init__(self, width: int, start: int = 0):
        self.width, self.col = max(width, 20), start

    def feed(self, text: str) -> str:
        import re

        out = []
        for piece in re.findall(r"\n|[^\S\n]+|\S+", text):
            if piece == "\n":
                self.col = 0
                out.append(piece)
            elif piece.isspace():
                if self.col and self.col + len(piece) < self.width:
                    out.append(piece)
                    self.col += len(piece)
            else:
                if self.col and self.col + len(piece) > self.width:
                    if out and out[-1].isspace() and out[-1] != "\n":
                        out.pop()
                    out.append("\n")
                    self.col = 0
                out.append(piece)
                self.col += len(piece)
        return "".join(out)


def resource_lines(risk: dict) -> str:
    lines = []
    for r in risk.get("resources", [])[:4]:
        parts = [r.get("name", "")]
        if r.get("phone"):
            parts.append(f"call {r['phone']}")
        if r.get("sms"):
            parts.append(f"text {r['sms']}")
        if r.get("url"):
            parts.append(r["url"])
        lines.append(" · ".join(p for p in parts if p))
    return "\n".join(lines) or "Please contact your local emergency number."


def show_feelings(session) -> None:
    """The feelings timeline as a table: one row per message, the strongest emotions, and the risk level."""
    from rich.table import Table

    timeline = session.timeline()
    if not timeline["turns"]:
        console.print("No messages yet: your feelings timeline starts with your first message.")
        return
    labels = list(timeline["series"])
    table = Table(title="Your feelings over this conversation (an automatic reading, not a diagnosis)")
    table.add_column("#", justify="right")
    for label in labels:
        table.add_column(label)
    table.add_column("risk")
    for i, turn in enumerate(timeline["turns"]):
        cells = [str(i + 1)]
        for label in labels:
            v = timeline["series"][label][i]
            cells.append(f"{_bar(v)} {v:.2f}")
        cells.append(turn["risk_level"])
        table.add_row(*cells)
    console.print(table)


def _bar(v: float, width: int = 8) -> str:
    full = round(max(0.0, min(1.0, v)) * width)
    return "█" * full + "·" * (width - full)
