"""Answer tokens per second of mentalens' LoRA recipe against the seed's, side by side in one run.

Both recipes train the same LoRA (same init) on the same model and the same IMHI examples, step by
step, interleaved (seed step, ours step, seed step, ...) so machine load hits both alike:

- seed:   every example padded to 512 tokens, batches in random order, loss on every token (prompt too)
          through the model's own loss (vocabulary projection at every position);
- ours:   length-grouped batches padded only to their longest example, loss on answer tokens only,
          vocabulary projection only where an answer token is predicted (mentalens.finetune);
- packed: our padding-free variant (one row per batch, position_ids restart per example), shown for
          comparison; on CPU with SDPA its block mask costs more than grouped padding saves.

What counts is answer tokens (the tokens the model must learn to produce) per second of
forward + backward + optimizer step. Writes bench/results/finetune_speed.json.

    python bench/finetune_speed.py                        # SmolLM2-135M-Instruct, 24 examples
    python bench/finetune_speed.py --model tiny-llama-small --examples 64
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "finetune_speed.json"


def _examples(n: int, seed: int, tokenizer, max_len: int) -> list[dict]:
    """n encoded IMHI training examples (<= max_len tokens) from the SmolLM2 closing-note config's sources."""
    from mentalens.finetune import load_finetune_config
    from mentalens.finetune.collate import encode_example
    from mentalens.finetune.data import build_examples

    cfg_path = Path(__file__).resolve().parents[1] / "configs" / "finetune" / "smollm2-imhi.yaml"
    cfg = load_finetune_config(cfg_path, ["data.eval_fraction=0"])
    train, _, _ = build_examples(cfg.data)
    rows = [r for r in (encode_example(tokenizer, ex) for ex in train) if r["length"] <= max_len]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def _batches_seed(rows: list[dict], bs: int, seed: int) -> list[list[dict]]:
    order = rows[:]
    random.Random(seed + 1).shuffle(order)
    return [order[i : i + bs] for i in range(0, len(order), bs)]


def _batches_grouped(rows: list[dict], bs: int, seed: int) -> list[list[dict]]:
    order = sorted(rows, key=lambda r: r["length"])
    batches = [order[i : i + bs] for i in range(0, len(order), bs)]
    random.Random(seed + 2).shuffle(batches)  # the Trainer's length-grouped sampler also shuffles batches
    return batches


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--examples", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--pad-to", type=int, default=512, help="the seed recipe's fixed length")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update the results JSON")
    args = ap.parse_args(argv)

    import torch
    from peft import LoraConfig, get_peft_model
    from rich.console import Console
    from rich.table import Table

    from mentalens.finetune.collate import PackedCollator, PaddedCollator
    from mentalens.finetune.trainer import answer_only_loss
    from mentalens.llm import load_model

    console = Console()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    lm = load_model(args.model)
    tok = lm.tokenizer
    rows = _examples(args.examples, args.seed, tok, args.pad_to)
    if len(rows) < args.batch_size:
        console.print("[red]not enough examples[/]")
        return 2
    model = lm.model
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.0,
                                             target_modules="all-linear"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    seed_coll = PaddedCollator(tok.pad_token_id, pad_to=args.pad_to, all_tokens_loss=True)
    ours_coll = PaddedCollator(tok.pad_token_id)
    packed_coll = PackedCollator()

    def step_seed(batch):
        return model(**seed_coll(batch)).loss  # labels = every real token; padding ignored

    def step_ours(batch):
        return answer_only_loss(model, ours_coll(batch))[0]

    def step_packed(batch):
        return answer_only_loss(model, packed_coll(batch))[0]

    recipes = {
        "seed": (step_seed, _batches_seed(rows, args.batch_size, args.seed)),
        "ours": (step_ours, _batches_grouped(rows, args.batch_size, args.seed)),
        "ours_packed": (step_packed, _batches_grouped(rows, args.batch_size, args.seed)),
    }
    seconds = dict.fromkeys(recipes, 0.0)
    n_steps = len(recipes["seed"][1])
    answer_tokens = sum(r["n_answer"] for r in rows[: n_steps * args.batch_size])
    real_tokens = sum(r["length"] for r in rows[: n_steps * args.batch_size])
    # one warm-up step each (allocator, kernels), not timed
    for fn, batches in recipes.values():
        fn(batches[0]).backward()
        opt.zero_grad(set_to_none=True)
    names = list(recipes)
    with console.status("timing...") as status:
        for i in range(n_steps):
            rot = names[i % len(names):] + names[: i % len(names)]  # rotate who goes first
            for name in rot:
                fn, batches = recipes[name]
                start = time.perf_counter()
                loss = fn(batches[i])
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                seconds[name] += time.perf_counter() - start
            status.update(f"step {i + 1}/{n_steps}: " + ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items()))

    rate = {k: answer_tokens / v for k, v in seconds.items()}
    result = {
        "ours_vs_seed_recipe": round(rate["ours"] / rate["seed"], 3),
        "ours_packed_vs_seed_recipe": round(rate["ours_packed"] / rate["seed"], 3),
        "answer_tokens_per_s": {k: round(v, 2) for k, v in rate.items()},
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "model": args.model,
        "lora": "r=16, alpha=32, all-linear",
        "examples": n_steps * args.batch_size,
        "batch_size": args.batch_size,
        "answer_tokens": answer_tokens,
        "real_tokens": real_tokens,
        "seed_tokens_incl_padding": n_steps * args.batch_size * args.pad_to,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "command": "python bench/finetune_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "note": "interleaved steps on one model; forward + backward + AdamW step per batch",
    }
    table = Table(title=f"LoRA training speed on {args.model} ({result['examples']} IMHI examples)")
    for col in ("recipe", "seconds", "answer tokens/s", "vs seed"):
        table.add_column(col)
    for k in recipes:
        table.add_row(k, f"{seconds[k]:.1f}", f"{rate[k]:.1f}", f"{rate[k] / rate['seed']:.2f}x")
    console.print(table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
