"""Proxy-tuning decoding speed: the seed's loop, a DExperts-style loop, mentalens, mentalens fused, base generate.

    python bench/proxy_speed.py                 # 256 new tokens, batch 1 and 8, writes bench/results/proxy_speed.json
    python bench/proxy_speed.py --tokens 32     # a quick look

Models (all random, sharing one BPE tokenizer trained on IMHI training text, `mentalens.llm.tiny`):
base = Llama 512 hidden x 4 layers (14.7M parameters); expert = LoRA (r=16, all linear layers, random,
non-zero) on a Llama 256 hidden x 4 layers (4.2M); anti-expert = that Llama without the adapter: about
the parameter ratio of Gemma-7b to Gemma-2b. Other sizes: --base HIDDEN LAYERS, --expert HIDDEN LAYERS.
Prompts: real IMHI test queries (instruction format), a fixed random sample. Greedy decoding, EOS ignored
so every variant writes exactly --tokens tokens per prompt.

Variants, measured interleaved (round robin, --repeats times, medians) in one process so that the load of a
shared machine hits them alike:
  (a) seed loop      every step re-runs all three models over the whole sequence (no KV cache), batch 1
  (b) DExperts loop  one cached forward per model in sequence, full prompt logits (alisawuffles/proxy-tuning),
                     the expert a PEFT LoRA model as in the seed; (b') the same with the LoRA merged into it
  (c) ours           LogitEnsemble, three separate models
  (d) ours fused     LogitEnsemble, expert = adapter on / anti-expert = adapter off in one batched forward
  (e) base generate  the base model's own `generate` alone (what proxy-tuning adds overhead to)
All proxy variants must produce identical tokens (checked). Times are wall clock; CPU-time ratios are
printed too because they are less sensitive to other processes on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = {"base": (512, 4), "expert": (256, 4)}  # (hidden size, layers); head dim 64
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RAW = {"base": "raw", "expert": "raw", "anti_expert": "raw"}


def sizes_for(base: tuple[int, int], expert: tuple[int, int]) -> dict[str, dict]:
    return {
        name: {"hidden_size": h, "num_layers": n, "num_heads": max(4, h // 64), "seed": seed}
        for name, (h, n), seed in (("base", base, 21), ("expert", expert, 22))
    }


def build_models(lora_r: int, sizes: dict[str, dict]):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mentalens.llm.tiny import tiny_family

    fam = tiny_family(sizes)
    tok = AutoTokenizer.from_pretrained(fam["tokenizer"])

    def load(key):
        return AutoModelForCausalLM.from_pretrained(fam[key], dtype=torch.float32).eval()

    adapter = fam["expert"].parent / f"lora-r{lora_r}"
    if not (adapter / "adapter_config.json").exists():
        torch.manual_seed(23)
        cfg = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, init_lora_weights=False, target_modules=LORA_TARGETS)
        get_peft_model(load("expert"), cfg).save_pretrained(adapter)
    models = {
        "base": load("base"),
        "anti": load("expert"),
        "expert": PeftModel.from_pretrained(load("expert"), adapter).eval(),  # (a), (b), (c)
        "expert_fused": PeftModel.from_pretrained(load("expert"), adapter).eval(),  # (d): its own copy
        "expert_merged": PeftModel.from_pretrained(load("expert"), adapter).merge_and_unload().eval(),
    }
    return fam, tok, models


def imhi_prompts(tok, n: int, max_tokens: int) -> list[tuple[str, str]]:
    """(set name, query) of n IMHI test queries that fit the models with room for the generation."""
    from mentalens.data import load_imhi

    recs = load_imhi(split="test", fmt="instruction")
    random.Random(0).shuffle(recs)
    out = [(r.set_name, r.query) for r in recs if len(tok(r.query)["input_ids"]) <= max_tokens]
    return out[:n]


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: robust on a shared machine)")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--base", type=int, nargs=2, default=DEFAULT_SIZES["base"], metavar=("HIDDEN", "LAYERS"))
    ap.add_argument("--expert", type=int, nargs=2, default=DEFAULT_SIZES["expert"], metavar=("HIDDEN", "LAYERS"))
    ap.add_argument("--skip-seed-loop", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "proxy_speed.json")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from mentalens.backend import GenerationConfig
    from mentalens.proxy import LogitEnsemble
    from mentalens.proxy.reference import dexperts_loop, seed_loop

    console = Console(width=max(Console().width, 130))
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    sizes = sizes_for(tuple(args.base), tuple(args.expert))
    fam, tok, m = build_models(args.lora_r, sizes)
    tok.padding_side = "left"
    max_prompt = m["base"].config.max_position_embeddings - args.tokens
    prompts = imhi_prompts(tok, max(args.batches), min(512, max_prompt))
    texts = [q for _, q in prompts]

    ours = LogitEnsemble.from_proxy((m["base"], tok), (m["expert"], tok), (m["anti"], tok), formats=RAW)
    fused = LogitEnsemble.from_proxy((m["base"], tok), (m["expert_fused"], tok), None, formats=RAW)
    merged = LogitEnsemble.from_proxy((m["base"], tok), (m["expert_merged"], tok), (m["anti"], tok), formats=RAW)
    assert not ours.is_fused and fused.is_fused and fused.describe()["fused_impl"] == "lean"
    for ens in (ours, fused, merged):
        ens.eos_ids = set()  # every variant writes exactly --tokens tokens
    cfg = GenerationConfig(max_new_tokens=args.tokens)
    n = args.tokens

    def base_generate(batch):
        enc = tok(batch, return_tensors="pt", padding=True)
        out = m["base"].generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        return [row[enc["input_ids"].shape[1]:].tolist() for row in out]

    variants = {
        "b": ("DExperts-style loop (PEFT expert)", lambda b: dexperts_loop(ours, ours.encode(b), n)),
        "b'": ("DExperts-style loop (merged expert)", lambda b: dexperts_loop(merged, merged.encode(b), n)),
        "c": ("ours (3 forwards)", lambda b: [r.token_ids for r in ours.generate_details(b, cfg)]),
        "d": ("ours fused LoRA (2 forwards)", lambda b: [r.token_ids for r in fused.generate_details(b, cfg)]),
        "e": ("base model generate alone", base_generate),
    }
    rows: list[dict] = []
    with Progress(console=console, transient=True) as progress:
        for bsz in args.batches:
            batch = texts[:bsz]
            times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
            outputs: dict[str, list[list[int]]] = {}
            if bsz == 1 and not args.skip_seed_loop:
                task = progress.add_task(f"(a) seed loop, batch 1, {n} tokens", total=None)
                ids = ours.encode(batch)
                out, wall, cpu = timed(lambda ids=ids: [seed_loop(ours, [ids[j][0] for j in range(3)], n)])
                outputs["a"], times["a"] = out, [(wall, cpu)]
                progress.remove_task(task)
            task = progress.add_task(f"batch {bsz}: b, b', c, d, e x {args.repeats}", total=args.repeats * 5)
            for _ in range(args.repeats):
                for key, (_, fn) in variants.items():
                    out, wall, cpu = timed(lambda fn=fn, batch=batch: fn(batch))
                    outputs.setdefault(key, out)
                    times[key].append((wall, cpu))
                    progress.advance(task)
            progress.remove_task(task)
            same = {k: outputs[k] == outputs["c"] for k in outputs}
            if not all(same[k] for k in ("a", "b", "d") if k in same):
                raise SystemExit(f"proxy variants disagree at batch {bsz}: {same} - the decoder is not exact")
            for key, samples in times.items():
                wall = statistics.median(w for w, _ in samples)
                cpu = statistics.median(c for _, c in samples)
                label = "seed loop (no KV cache)" if key == "a" else variants[key][0]
                rows.append({
                    "variant": key, "name": label, "batch": bsz, "new_tokens": n * bsz, "runs": len(samples),
                    "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                    "tokens_per_s": round(n * bsz / wall, 1), "cpu_tokens_per_s": round(n * bsz / cpu, 1),
                    "same_tokens_as_ours": same.get(key),
                })

    def rate(key, bsz, field="tokens_per_s"):
        return next((r[field] for r in rows if r["variant"] == key and r["batch"] == bsz), None)

    def ratio(a, b, bsz=1, field="tokens_per_s"):
        x, y = rate(a, bsz, field), rate(b, bsz, field)
        return round(x / y, 2) if x and y else None

    table = Table(title=f"proxy-tuning decoding, {n} new tokens per prompt, greedy, {args.threads} thread(s)")
    for col in ("variant", "batch", "tok/s (wall)", "tok/s (cpu)", "vs (a) seed", "vs (b) DExperts", "vs (e) base",
                "same tokens"):
        table.add_column(col, justify="right" if col not in ("variant",) else "left")
    for r in rows:
        bsz = r["batch"]
        table.add_row(
            f"({r['variant']}) {r['name']}", str(bsz), f"{r['tokens_per_s']:.1f}", f"{r['cpu_tokens_per_s']:.1f}",
            str(ratio(r["variant"], "a", bsz) or "-"), str(ratio(r["variant"], "b", bsz) or "-"),
            str(ratio(r["variant"], "e", bsz) or "-"), {True: "yes", False: "no", None: "-"}[r["same_tokens_as_ours"]],
        )
    console.print(table)

    headline = {
        "ours_vs_seed_loop": ratio("c", "a"),
        "ours_vs_dexperts": ratio("c", "b"),
        "fused_vs_dexperts": ratio("d", "b"),
        "ours_vs_base_generate": ratio("c", "e"),
        "fused_vs_dexperts_merged_expert": ratio("d", "b'"),
        "fused_vs_ours": ratio("d", "c"),
        "fused_vs_base_generate": ratio("d", "e"),
    }
    goals = {
        "ours_vs_seed_loop >= 20": (headline["ours_vs_seed_loop"] or 0) >= 20,
        "ours_vs_dexperts >= 1": (headline["ours_vs_dexperts"] or 0) >= 1,
        "fused_vs_dexperts >= 1.4": (headline["fused_vs_dexperts"] or 0) >= 1.4,
    }
    cpu_ratios = {
        f"batch{bsz}": {
            "ours_vs_seed_loop": ratio("c", "a", bsz, "cpu_tokens_per_s"),
            "ours_vs_dexperts": ratio("c", "b", bsz, "cpu_tokens_per_s"),
            "fused_vs_dexperts": ratio("d", "b", bsz, "cpu_tokens_per_s"),
            "fused_vs_dexperts_merged_expert": ratio("d", "b'", bsz, "cpu_tokens_per_s"),
            "ours_vs_base_generate": ratio("c", "e", bsz, "cpu_tokens_per_s"),
        }
        for bsz in args.batches
    }
    result = {
        **headline,
        "headline_setting": f"batch 1, {n} new tokens, wall-clock medians",
        "goals_met": goals,
        "batch8": {k: ratio(a, b, 8) for k, (a, b) in {
            "ours_vs_dexperts": ("c", "b"), "fused_vs_dexperts": ("d", "b"), "ours_vs_base_generate": ("c", "e"),
            "fused_vs_dexperts_merged_expert": ("d", "b'"), "fused_vs_ours": ("d", "c")}.items()} if 8 in args.batches
        else None,
        "cpu_time_ratios": cpu_ratios,
        "table": rows,
        "setup": {
            "command": "python bench/proxy_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "models": {
                "base": {**sizes["base"], "params": params(m["base"])},
                "expert_and_anti_expert": {**sizes["expert"], "params": params(m["anti"])},
                "lora": {"r": args.lora_r, "targets": LORA_TARGETS,
                         "params": params(m["expert"]) - params(m["anti"])},
                "tokenizer": "byte-level BPE, 2048 tokens, trained on IMHI training text (mentalens.llm.tiny)",
            },
            "prompts": [{"set": s, "tokens": len(tok(q)["input_ids"])} for s, q in prompts],
            "threads": args.threads,
            "repeats": args.repeats,
            "torch": torch.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), load average "
                       f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end",
            "date": time.strftime("%Y-%m-%d"),
        },
    }
    console.print_json(json.dumps({k: result[k] for k in (*headline, "goals_met", "batch8")}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    console.print(f"wrote {args.out}")
    for ens in (ours, fused, merged):
        ens.close()
    return result


if __name__ == "__main__":
    main()
