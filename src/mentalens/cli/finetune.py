"""`mentalens finetune`: LoRA/QLoRA/full fine-tuning from a YAML config, and adapter merging.

    mentalens finetune configs/finetune/smollm2-imhi.yaml                   # train
    mentalens finetune configs/finetune/smollm2-imhi.yaml train.max_steps=50 lora.r=8
    mentalens finetune CONFIG.yaml --dry-run                                  # check config + data only
    mentalens finetune merge OUT/adapter --out merged-model                   # standalone model folder
    torchrun --nproc_per_node 2 -m mentalens.finetune CONFIG.yaml             # data-parallel
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from mentalens.cli.app import app, console, print_json


class _DefaultRunGroup(TyperGroup):
    """`mentalens finetune CONFIG ...` means `mentalens finetune run CONFIG ...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


finetune_app = typer.Typer(
    cls=_DefaultRunGroup,
    help="Fine-tune an LLM with LoRA/QLoRA (answer-only loss, leakage-guarded data); merge adapters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(finetune_app, name="finetune")


@finetune_app.command("run")
def run(
    config: str = typer.Argument(..., help="YAML config (see configs/finetune/)."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. train.max_steps=100 lora.r=8"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate the config and build the data, then stop."),
    json_out: bool = typer.Option(False, "--json", help="Print the final metrics as JSON."),
) -> None:
    """Train from CONFIG (the default command: `mentalens finetune CONFIG ...`)."""
    from mentalens.finetune import load_finetune_config
    from mentalens.finetune.trainer import run_finetune, world

    cfg = load_finetune_config(config, overrides or [])
    main = world()[0] == 0
    result = run_finetune(cfg, console=console, dry_run=dry_run)
    if not main:
        return
    if json_out:
        print_json({k: v for k, v in result.metrics.items() if k != "config"})
        return
    m = result.metrics
    if dry_run:
        d = m["data"]
        console.print(
            f"config OK. train examples: {d['train_examples']}, eval examples: {d['eval_examples']}, "
            f"answer tokens per epoch: {m['train_answer_tokens']}"
        )
        console.print(f"leakage guard: dropped {d['leakage_guard'].get('dropped', 0)} post(s) found in IMHI test sets")
        console.print(f"dropped as longer than data.max_length: {d['dropped_overlength']}")
        return
    before, after = m.get("eval_loss_before"), m.get("eval_loss_after")
    console.print(f"[bold]done[/]: {result.adapter_dir}")
    if before is not None and after is not None:
        console.print(f"eval loss {before:.4f} -> {after:.4f}")
    console.print(
        f"steps {m['global_step']}, train loss {m['train_loss']:.4f}, {m['train_runtime_s']:.0f} s, "
        f"leakage guard dropped {m['leakage_guard'].get('dropped', 0)}"
    )


@finetune_app.command("merge")
def merge(
    adapter: str = typer.Argument(..., help="Adapter folder (or a finetune output folder)."),
    out: str = typer.Option(..., "--out", "-o", help="Folder for the merged model."),
    base: str = typer.Option(None, "--base", help="Base model (default: the one the adapter names)."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (float32) | float32 | bfloat16 | float16"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
) -> None:
    """Merge a LoRA adapter into its base model (dequantising a 4-bit base first)."""
    from mentalens.finetune import merge_adapter

    with console.status("merging adapter..."):
        path = merge_adapter(adapter, out, base=base, dtype=dtype, overwrite=overwrite)
    console.print(f"merged model written to {path}")
