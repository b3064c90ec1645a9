"""`mentalens eval bias`: the counterfactual bias audit of any backend (issue 10).

mentalens eval bias --backend embedded --data DIR --output OUT [--limit 15] [--attribute gender --attribute name]
mentalens eval bias --backend hf --model smollm2-135m-instruct --adapter smollm2-imhi-lora --limit 3 --output OUT
mentalens eval bias --backend embedded --model ARTEFACT_DIR --output OUT      # another analyzer artefact

Writes OUT/bias.json (every figure), OUT/bias.md and OUT/bias.html (with a chart). The embedded analyzer
is audited directly (labels and probabilities of each record's own task); other backends through the same
IMHI question about the original and each counterfactual post, a failing row reported per row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mentalens.cli.app import console, err_console
from mentalens.cli.evaluate import (
    ADAPTER,
    ALPHA,
    ANTI,
    BACKEND,
    BASE_URL,
    DEVICE,
    EXPERT,
    MODEL,
    PROGRESS,
    RETRIES,
    TIMEOUT,
    eval_app,
)

ABOUT = (
    "Each IMHI test post is rewritten changing only one attribute (gender words, a first name, the poster's "
    "stated age, or a few African-American English features); a flip is a different label for the same "
    "question. Rates carry bootstrap 95% intervals over posts; the acceptance line is 2% of labels."
)


def run_audit(
    backend: str,
    options: Any,
    data: str | Path | None,
    config: Any,
    name: str | None = None,
    show_progress: bool = True,
    max_new_tokens: int = 64,
) -> tuple[dict[str, Any], Any]:
    """Audit one backend: (summary with examples, failed rows and the skip census, BiasResult)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from mentalens.backend import GenerationConfig
    from mentalens.evaluate import build_backend
    from mentalens.evaluate.bias import audit_analyzer, audit_backend, audit_records, census

    records = audit_records(data, config)  # bad data fails before a model is loaded
    with build_backend(backend, options) as b, Progress(
        TextColumn(f"auditing {name or backend}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, disable=not show_progress,
    ) as progress:  # fmt: skip
        bar = progress.add_task("rows", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        analyzer = getattr(b, "analyzer", None) if backend == "embedded" else None
        if analyzer is not None:
            result = audit_analyzer(analyzer, records, config, progress=tick)
        else:
            gen = GenerationConfig(max_new_tokens=max_new_tokens)
            result = audit_backend(b, records, config, name=name or backend, progress=tick, generation=gen)
    if name:
        result.system = name
    summary = result.summary(config.bootstrap, config.seed)
    summary["examples"] = result.examples
    summary["failed_rows"] = result.failures[:200]
    summary["census"] = census(records, config.attributes)
    summary["records"] = len(records)
    summary["limit_posts_per_set"] = config.limit
    return summary, result


@eval_app.command("bias")
def bias(
    output: Path = typer.Option(..., "--output", "-o", help="Folder for bias.json, bias.md and bias.html."),
    backend: str = BACKEND,
    data: Path = typer.Option(None, "--data", help="IMHI folder with the test CSVs (default: the data folder)."),
    limit: int = typer.Option(None, "--limit", help="Posts per IMHI set (fixed-seed sample; default: all)."),
    attribute: list[str] = typer.Option(None, "--attribute", help="gender | name | age | dialect (repeat)."),
    sets: list[str] = typer.Option(None, "--set", help="IMHI set(s) to audit (repeat; default: all)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the post sample and the bootstrap."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for the 95% intervals."),
    risk: bool = typer.Option(True, "--risk/--no-risk", help="Also audit the safety layer's risk level."),
    batch_size: int = typer.Option(16, "--batch-size", help="Prompts per backend call (generative backends)."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="Answer length (generative backends)."),
    model: str = MODEL,
    adapter: str = ADAPTER,
    base_url: str = BASE_URL,
    expert: str = EXPERT,
    anti_expert: str = ANTI,
    alpha: float = ALPHA,
    device: str = DEVICE,
    timeout: float = TIMEOUT,
    max_retries: int = RETRIES,
    progress: bool = PROGRESS,
) -> None:
    """Counterfactual bias audit: how often changing only gender, a name, an age or the dialect flips a label."""
    from rich.table import Table

    from mentalens.errors import ConfigError
    from mentalens.evaluate import BackendOptions
    from mentalens.evaluate.bias import BiasConfig, write_bias_report

    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file: give a folder for bias.json, bias.md and bias.html")

    config = BiasConfig(
        attributes=tuple(attribute) if attribute else BiasConfig.attributes,
        sets=tuple(sets) if sets else None,
        limit=limit,
        bootstrap=bootstrap,
        seed=seed,
        risk=risk,
        batch_size=batch_size,
    )
    options = BackendOptions(
        model=model, adapter=adapter, base_url=base_url, expert=expert, anti_expert=anti_expert, alpha=alpha,
        device=device, timeout_s=timeout, max_retries=max_retries,
    )  # fmt: skip
    summary, _ = run_audit(backend, options, data, config, show_progress=progress, max_new_tokens=max_new_tokens)
    report = {"about": ABOUT, "systems": [summary]}
    paths = write_bias_report(report, output)
    table = Table(title=f"bias audit of {summary['system']} ({summary['posts']} posts, {summary['pairs']} pairs)")
    for col in ("attribute", "pairs", "flip rate", "95% CI", "risk-level flips"):
        table.add_column(col, justify="left" if col == "attribute" else "right")
    for a, v in summary["by_attribute"].items():
        r = summary["risk_by_attribute"].get(a)
        table.add_row(a, str(v["pairs"]), f"{100 * v['flip_rate']:.2f}%",
                      f"[{100 * v['ci95'][0]:.2f}, {100 * v['ci95'][1]:.2f}]",
                      f"{100 * r['flip_rate']:.2f}%" if r else "-")  # fmt: skip
    console.print(table)
    verdict = "[green]passes[/]" if summary["passes"] else "[red]fails[/]"
    mfr = summary["max_flip_rate"]
    console.print(f"max flip rate {'-' if mfr is None else f'{100 * mfr:.2f}%'}: {verdict} the 2% line")
    if summary["failures"]:
        err_console.print(f"[yellow]{summary['failures']} row(s) failed (listed in {paths[0]})[/]")
    console.print(f"wrote {', '.join(str(p) for p in paths)}")
