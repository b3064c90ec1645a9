"""`mentalens models`: which LLMs are usable on this machine, and preparing the offline ones.

    mentalens models list            # offline models, converted GGUFs, hub cache, packaged adapters
    mentalens models prepare         # convert every installed offline model (GGUF -> HF folder, once)
    mentalens models prepare smollm2-135m-instruct
"""

from __future__ import annotations

import typer

from mentalens.cli.app import console, print_json, sub_app

models_app = sub_app("models", "List usable LLMs and prepare the offline ones (GGUF from PyPI packages).")


@models_app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show every model and adapter usable here, and where it lives."""
    from mentalens.llm.catalog import list_models

    rows = list_models()
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="models usable here")
    for col in ("name", "kind", "status", "location"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["kind"], r["status"], r.get("path") or r.get("hint") or "")
    console.print(table)


@models_app.command("prepare")
def prepare(
    names: list[str] = typer.Argument(None, help="Offline model names (default: every installed one)."),
    force: bool = typer.Option(False, "--force", help="Convert again even if a cached folder exists."),
) -> None:
    """Convert offline GGUF models into cached Hugging Face folders (once; later loads are instant)."""
    from mentalens.errors import ModelError
    from mentalens.llm.offline import OFFLINE_MODELS, prepare_offline

    wanted = list(names or [])
    if not wanted:
        wanted = [n for n, spec in OFFLINE_MODELS.items() if spec.installed()]
        if not wanted:
            hints = "; ".join(spec.install for _, spec in OFFLINE_MODELS.items())
            raise ModelError(f"no offline model package is installed: {hints}")
    for name in wanted:
        spec = OFFLINE_MODELS.get(name)
        with console.status(f"preparing {spec.name} (dequantising GGUF, once)..."):
            path = prepare_offline(spec.name, force=force)
        console.print(f"{spec.name}: ready at {path}")
