"""`mentalens generate`: text from one model, a proxy-tuned model or a logit ensemble, streamed.

    mentalens generate --model tiny-llama-large "I can't sleep before exams"
    mentalens generate --model gemma-7b --expert ./mental-gemma-2b-lora --alpha 1.0 "Consider this post: ..."
    mentalens generate --model m1 --model m2 "..."            # the seed's naive architecture (m1 + m2)
    echo "prompt" | mentalens generate --model M -

This is raw model output for researchers and developers: no output guard. If the prompt shows signs of
crisis, the crisis resources of the safety layer are printed on stderr all the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mentalens.cli.app import app, err_console, print_json

_FUSED = {"auto": "auto", "on": True, "off": False}


def _read_prompts(prompts: list[str]) -> list[str]:
    from mentalens.errors import DataError

    out = []
    for p in prompts:
        if p == "-":
            try:
                p = sys.stdin.buffer.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise DataError("stdin is not UTF-8 text: pipe UTF-8 text into `mentalens generate -`") from None
        if not p.strip():
            raise DataError("empty prompt: give some text (or '-' to read it from stdin)")
        out.append(p)
    if not out:
        raise DataError("no prompt given: write it after the options, e.g. mentalens generate --model M \"Hello\"")
    return out


def _crisis_notice(prompts: list[str]) -> None:
    """Crisis resources on stderr whenever a prompt shows risk, whatever the model will say."""
    from mentalens.safety import assess, escalation_text

    for p in prompts:
        text = escalation_text(assess(p))
        if text:
            err_console.print(f"[bold]{text}[/]")
            return


@app.command("generate")
def generate(
    prompts: list[str] = typer.Argument(None, help="Prompt text ('-' reads stdin). Several prompts run as a batch."),
    model: list[str] = typer.Option(
        None, "--model", "-m", help="Base model: hub id, folder, .gguf or offline alias. Repeat for an ensemble."
    ),
    expert: str = typer.Option(None, "--expert", "-e", help="Tuned small model, or a LoRA adapter folder."),
    anti_expert: str = typer.Option(
        None, "--anti-expert", "-a", help="Untuned small model (default: the adapter's base)."
    ),
    alpha: float = typer.Option(1.0, "--alpha", help="Strength of the expert's steering."),
    weight: list[float] = typer.Option(None, "--weight", "-w", help="One weight per --model (ensemble; default 1)."),
    combine: str = typer.Option("logits", "--combine", help="logits or logprobs."),
    fused: str = typer.Option("auto", "--fused", help="auto, on or off: one batched forward for a LoRA expert."),
    prompt_format: str = typer.Option("auto", "--format", help="Base prompt format: auto, chat, raw or plain."),
    expert_format: str = typer.Option("auto", "--expert-format", help="Expert and anti-expert prompt format."),
    system: str = typer.Option(None, "--system", help="System prompt."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", "-n"),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p"),
    top_k: int = typer.Option(0, "--top-k"),
    repetition_penalty: float = typer.Option(1.0, "--repetition-penalty"),
    seed: int = typer.Option(None, "--seed"),
    stop: list[str] = typer.Option(None, "--stop", help="Stop string (repeatable)."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:1, mps (default: best available)."),
    expert_device: str = typer.Option(None, "--expert-device", help="Put expert and anti-expert here."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16 or float16."),
    config: Path = typer.Option(
        None, "--config", help="A ProxyConfig YAML file (--model, --expert, --anti-expert, --device override it)."
    ),
    no_stream: bool = typer.Option(False, "--no-stream", help="Print the text when it is complete."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output with token counts."),
) -> None:
    """Generate text; with --expert it is proxy-tuned: base + alpha * (expert - anti-expert)."""
    from mentalens.backend import GenerationConfig
    from mentalens.config import load_config
    from mentalens.errors import ConfigError
    from mentalens.proxy.config import ProxyConfig, check_fused

    texts = _read_prompts(prompts or [])
    if fused not in _FUSED:
        raise ConfigError(f"--fused must be auto, on or off, not {fused!r}")
    gen = GenerationConfig(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
        repetition_penalty=repetition_penalty, seed=seed, stop=tuple(stop or ()),
    )
    models = list(model or [])
    if weight and len(models) < 2:
        raise ConfigError("--weight goes with several --model options (an ensemble); proxy-tuning uses --alpha")
    if len(models) > 1 and (expert or anti_expert):
        raise ConfigError("give several --model options (an ensemble) or --expert/--anti-expert, not both")
    formats = {"base": prompt_format, "expert": expert_format, "anti_expert": expert_format}
    devices = {"expert": expert_device, "anti_expert": expert_device} if expert_device else {}
    _crisis_notice(texts)

    from mentalens.proxy.backend import ProxyBackend
    from mentalens.proxy.ensemble import LogitEnsemble

    if len(models) > 1:
        backend = ProxyBackend(models=models, weights=weight or None, combine=combine, fused=_FUSED[fused],
                               device=device, dtype=dtype, formats=formats, system_prompt=system)
        ens = backend.ensemble
    else:
        if config is not None:
            given = {"base": models[0] if models else None, "expert": expert, "anti_expert": anti_expert,
                     "device": device}
            cfg = load_config(ProxyConfig, config, {k: v for k, v in given.items() if v})
        else:
            if not models:
                raise ConfigError("no model given: pass --model NAME (hub id, folder, .gguf or offline alias)")
            cfg = ProxyConfig(base=models[0], expert=expert, anti_expert=anti_expert, alpha=alpha, combine=combine,
                              fused=check_fused(_FUSED[fused]), device=device, devices=devices, dtype=dtype,
                              formats=formats)
        ens = LogitEnsemble.from_config(cfg, system_prompt=system)
    try:
        if len(texts) == 1 and not no_stream and not as_json:
            for delta in ens.stream(texts[0], gen):
                sys.stdout.write(delta)
                sys.stdout.flush()
            sys.stdout.write("\n")
            return
        results = ens.generate_details(texts, gen)
        if as_json:
            print_json({
                "ensemble": ens.describe(),
                "results": [
                    {"text": r.text, "finish_reason": r.finish_reason, "new_tokens": len(r.token_ids),
                     "prompt_tokens": r.prompt_tokens} for r in results
                ],
            })
            return
        for i, r in enumerate(results):
            if len(results) > 1:
                err_console.print(f"[dim]--- prompt {i + 1} ({r.finish_reason}) ---[/]")
            sys.stdout.write(r.text + "\n")
    finally:
        ens.close()
