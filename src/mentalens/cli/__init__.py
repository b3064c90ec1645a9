"""The `mentalens` command: thin typer commands over the capabilities.

Each capability adds its commands in its own module here (cli/data.py, cli/analyze.py, ...), imported
below. Command bodies import heavy libraries lazily so `mentalens --help` stays instant.
Errors the user can fix (MentalensError) print as one line on stderr and exit with code 2.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from mentalens.cli.app import app
from mentalens.errors import MentalensError

# One module per capability; each registers its commands on `app` when imported.
COMMAND_MODULES = (
    "data",
    "analyze",
    "models",
    "finetune",
    "generate",
    "evaluate",
    "bias",
    "safety",
    "counsel",
    "server",
)

for _name in COMMAND_MODULES:  # every capability exists: a missing module is a broken install, not an option
    importlib.import_module(f"mentalens.cli.{_name}")


def _fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the typer app, turning user errors into one line and exit code 2."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        rv = typer.main.get_command(app).main(args=argv, prog_name="mentalens", standalone_mode=False)
    except MentalensError as exc:
        _fail(str(exc), exc.exit_code)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: click's own usage line + "Error: ..."
        show = getattr(exc, "show", None)
        if show is None:
            _fail(str(exc))
        show()
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        sys.exit(0)
    if isinstance(rv, int) and rv:
        sys.exit(rv)


__all__ = ["app", "main"]
