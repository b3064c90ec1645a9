"""`mentalens answer ...` and `mentalens eval run|score|report`: the IMHI benchmark end to end.

mentalens answer --backend embedded --data DIR --output OUT [--set DR --limit 50]
mentalens eval run --backend hf --model PATH --adapter LORA --output runs/lora --limit 100
mentalens eval score runs/lora [--bartscore facebook/bart-large-cnn --bart-weights bart.pth]
mentalens eval report runs/lora
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mentalens.cli.app import app, console, err_console, sub_app

eval_app = sub_app("eval", "Evaluate any backend on IMHI: answer, score (F1, ROUGE, BARTScore), report.")

# ---------------------------------------------------------------------------------- shared options

BACKEND = typer.Option("embedded", "--backend", "-b", help="embedded | hf | proxy | openai")
DATA = typer.Option(None, "--data", help="IMHI folder or CSV (default: imhi/test_data/test_instruction).")
SETS = typer.Option(None, "--set", help="IMHI set(s) to answer (repeat; default: every set found).")
LIMIT = typer.Option(None, "--limit", help="N rows per set, stratified by gold label and aspect (fixed seed).")
SEED = typer.Option(0, "--seed", help="Seed of the stratified sample (and of sampling backends).")
FMT = typer.Option(None, "--format", help="instruction | complete (when the folder holds both).")
SPLIT = typer.Option(None, "--split", help="test | train | val (when the folder holds several).")
BATCH = typer.Option(8, "--batch-size", help="Prompts per backend call.")
MAX_NEW = typer.Option(256, "--max-new-tokens", help="Longest answer in tokens.")
TEMPERATURE = typer.Option(0.0, "--temperature", help="0 = greedy.")
MODEL = typer.Option(None, "--model", help="hf: model id/folder/GGUF; openai: model name; proxy: the base model.")
ADAPTER = typer.Option(None, "--adapter", help="hf: LoRA adapter folder.")
BASE_URL = typer.Option(None, "--base-url", help="openai: endpoint, e.g. http://localhost:8000/v1")
EXPERT = typer.Option(None, "--expert", help="proxy: the tuned small model.")
ANTI = typer.Option(None, "--anti-expert", help="proxy: the untuned small model.")
ALPHA = typer.Option(None, "--alpha", help="proxy: weight of (expert - anti-expert).")
DEVICE = typer.Option(None, "--device", help="cpu | cuda | mps (default: best available).")
TIMEOUT = typer.Option(None, "--timeout", help="openai: seconds per request before a retry.")
RETRIES = typer.Option(None, "--max-retries", help="openai: retries with backoff before a row fails.")
PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")

BARTSCORE = typer.Option(None, "--bartscore", help="BART checkpoint for BARTScore (e.g. facebook/bart-large-cnn).")
BART_WEIGHTS = typer.Option(None, "--bart-weights", help="ParaBank bart.pth of the BARTScore authors.")
ROUGE = typer.Option(True, "--rouge/--no-rouge", help="ROUGE-1/2/L (rouge-score, stemmed).")
FALLBACK = typer.Option("none", "--fallback", help="Labels for unparseable answers: none | analyzer | mentalbert:DIR")
BERTSCORE = typer.Option(None, "--bertscore", help="Model for BERTScore (needs the bert-score package).")
BERT_LAYERS = typer.Option(None, "--bertscore-layers", help="Layer of the BERTScore model to use.")
RESAMPLES = typer.Option(1000, "--resamples", help="Bootstrap resamples for the 95% intervals.")


def _answer(
    backend: str,
    data: Path | None,
    output: Path,
    sets: list[str] | None,
    limit: int | None,
    seed: int,
    fmt: str | None,
    split: str | None,
    batch_size: int,
    max_new_tokens: int,
    temperature: float,
    model: str | None,
    adapter: str | None,
    base_url: str | None,
    expert: str | None,
    anti_expert: str | None,
    alpha: float | None,
    device: str | None,
    timeout: float | None,
    max_retries: int | None,
    progress: bool,
) -> None:
    from mentalens.backend import GenerationConfig
    from mentalens.evaluate import AnswerConfig, BackendOptions, build_backend, run_answers

    gen = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, timeout_s=timeout)
    config = AnswerConfig(
        data=str(data) if data else None,
        sets=tuple(sets or ()),
        fmt=fmt,
        split=split,
        limit=limit,
        seed=seed,
        batch_size=batch_size,
        generation=gen,
    )
    options = BackendOptions(
        model=model,
        adapter=adapter,
        base_url=base_url,
        expert=expert,
        anti_expert=anti_expert,
        alpha=alpha,
        device=device,
        timeout_s=timeout,
        max_retries=max_retries,
    )
    from mentalens.evaluate.runner import load_sets

    load_sets(config)  # bad data fails in a second, before a model is loaded
    with build_backend(backend, options) as b:
        summary = run_answers(b, config, output, show_progress=progress)
    table = Table(title=f"answers in {output}")
    for col in ("set", "rows", "done", "new", "failed", "empty", "seconds"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for s in summary.sets:
        table.add_row(s.set_name, str(s.rows), str(s.done), str(s.new), str(s.failed), str(s.empty), f"{s.seconds:.1f}")
    console.print(table)
    if summary.failed:
        err_console.print(
            f"[yellow]{summary.failed} row(s) failed (see the error field in {output}/<set>.jsonl): "
            "run the same command again to retry them[/]"
        )


@app.command("answer")
def answer(
    output: Path = typer.Option(..., "--output", "-o", help="Run folder: <set>.csv (MentaLLaMA layout) + .jsonl"),
    backend: str = BACKEND,
    data: Path = DATA,
    sets: list[str] = SETS,
    limit: int = LIMIT,
    seed: int = SEED,
    fmt: str = FMT,
    split: str = SPLIT,
    batch_size: int = BATCH,
    max_new_tokens: int = MAX_NEW,
    temperature: float = TEMPERATURE,
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
    """Answer every IMHI query in DATA with a backend; writes OUT/<set>.csv (goldens, generated_text)."""
    _answer(
        backend,
        data,
        output,
        sets,
        limit,
        seed,
        fmt,
        split,
        batch_size,
        max_new_tokens,
        temperature,
        model,
        adapter,
        base_url,
        expert,
        anti_expert,
        alpha,
        device,
        timeout,
        max_retries,
        progress,
    )


def _score(
    run_dir: Path,
    bartscore: str | None,
    bart_weights: str | None,
    rouge: bool,
    fallback: str,
    bertscore: str | None,
    bertscore_layers: int | None,
    resamples: int,
    device: str | None,
    progress: bool,
) -> None:
    from mentalens.evaluate import ScoreConfig, score_run

    cfg = ScoreConfig(
        rouge=rouge,
        bartscore=bartscore,
        bart_weights=bart_weights,
        bertscore=bertscore,
        bertscore_layers=bertscore_layers,
        fallback=fallback,
        resamples=resamples,
        device=device,
    )
    result = score_run(run_dir, cfg, show_progress=progress)
    table = Table(title=f"scores of {run_dir}")
    for col in ("set", "n", "unparseable %", "accuracy", "weighted F1 [95% CI]", "ROUGE-L", "BARTScore h->r"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, s in result.sets.items():
        c = s["correctness"]
        wf = c["weighted_f1"]
        rl = (s.get("rouge") or {}).get("rougeL")
        bs = (s.get("bartscore") or {}).get("hyp_ref")
        table.add_row(
            name,
            str(c["n"]),
            f"{100 * c['unparseable_rate']:.1f}",
            f"{c['accuracy']['value']:.2f}",
            f"{wf['value']:.2f} [{wf['low']:.2f}, {wf['high']:.2f}]",
            "-" if rl is None else f"{rl:.2f}",
            "-" if bs is None else f"{bs:.3f}",
        )
    console.print(table)
    console.print(f"scores: {Path(run_dir) / 'scores.json'}")


@eval_app.command("score")
def score(
    run_dir: Path = typer.Argument(..., help="Run folder (<set>.jsonl or MentaLLaMA-layout <set>.csv files)."),
    bartscore: str = BARTSCORE,
    bart_weights: str = BART_WEIGHTS,
    rouge: bool = ROUGE,
    fallback: str = FALLBACK,
    bertscore: str = BERTSCORE,
    bertscore_layers: int = BERT_LAYERS,
    resamples: int = RESAMPLES,
    device: str = DEVICE,
    progress: bool = PROGRESS,
) -> None:
    """Label correctness (weighted F1, accuracy, unparseable rate, 95% CI), ROUGE, BARTScore -> scores.json."""
    _score(run_dir, bartscore, bart_weights, rouge, fallback, bertscore, bertscore_layers, resamples, device, progress)


@eval_app.command("report")
def report(
    run_dir: Path = typer.Argument(..., help="A scored run folder."),
    title: str = typer.Option(None, "--title", help="Report title."),
    examples: bool = typer.Option(True, "--examples/--no-examples", help="Include example posts and answers."),
    out: Path = typer.Option(None, "--out", help="Folder for report.md/report.html (default: RUN_DIR)."),
    summary_json: Path = typer.Option(None, "--json", help="Also write the headline figures to this JSON file."),
    command: str = typer.Option(None, "--command", help="The command that produced the run (kept in --json)."),
) -> None:
    """Write RUN_DIR/report.md and a self-contained RUN_DIR/report.html."""
    from mentalens.evaluate import load_scores, write_report

    md, page = write_report(run_dir, title, examples=examples, out=out)
    if summary_json is not None:
        import json

        from mentalens.data import atomic_write
        from mentalens.evaluate.report import summary

        with atomic_write(summary_json) as f:
            f.write(json.dumps(summary(load_scores(run_dir), command), indent=2) + "\n")
        console.print(f"summary: {summary_json}")
    console.print(f"report: {md}\n        {page}")


@eval_app.command("run")
def run(
    output: Path = typer.Option(..., "--output", "-o", help="Run folder."),
    backend: str = BACKEND,
    data: Path = DATA,
    sets: list[str] = SETS,
    limit: int = LIMIT,
    seed: int = SEED,
    fmt: str = FMT,
    split: str = SPLIT,
    batch_size: int = BATCH,
    max_new_tokens: int = MAX_NEW,
    temperature: float = TEMPERATURE,
    model: str = MODEL,
    adapter: str = ADAPTER,
    base_url: str = BASE_URL,
    expert: str = EXPERT,
    anti_expert: str = ANTI,
    alpha: float = ALPHA,
    device: str = DEVICE,
    timeout: float = TIMEOUT,
    max_retries: int = RETRIES,
    bartscore: str = BARTSCORE,
    bart_weights: str = BART_WEIGHTS,
    rouge: bool = ROUGE,
    fallback: str = FALLBACK,
    bertscore: str = BERTSCORE,
    bertscore_layers: int = BERT_LAYERS,
    resamples: int = RESAMPLES,
    progress: bool = PROGRESS,
) -> None:
    """Answer, score and report in one go (resumes an interrupted run in the same --output)."""
    _answer(
        backend,
        data,
        output,
        sets,
        limit,
        seed,
        fmt,
        split,
        batch_size,
        max_new_tokens,
        temperature,
        model,
        adapter,
        base_url,
        expert,
        anti_expert,
        alpha,
        device,
        timeout,
        max_retries,
        progress,
    )
    _score(output, bartscore, bart_weights, rouge, fallback, bertscore, bertscore_layers, resamples, device, progress)
    from mentalens.evaluate import write_report

    md, page = write_report(output)
    console.print(f"report: {md}\n        {page}")
