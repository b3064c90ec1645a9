"""The root typer app and helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(
    name="mentalens",
    help=(
        "mentalens: analyse mental-health posts, fine-tune and proxy-tune LLMs, evaluate on IMHI, and run a "
        "safe counselling chat. It is an AI research and support tool, not a diagnosis or a therapist."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)


def sub_app(name: str, help: str) -> typer.Typer:
    """Create and mount a command group (e.g. `mentalens data ...`)."""
    group = typer.Typer(help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    app.add_typer(group, name=name)
    return group


def print_json(obj: Any) -> None:
    """Machine-readable output on stdout (no rich markup, UTF-8, one document)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


@app.command("version")
def version() -> None:
    """Print the mentalens version."""
    from mentalens import __version__

    console.print(f"mentalens {__version__}")


# `mentalens train ...`: one command per trained component (analyzer, risk, ...), added by their modules.
train_app = sub_app("train", "Train the embedded models shipped with mentalens (analyzer, ...).")
