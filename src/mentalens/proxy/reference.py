"""Reference decoders: the slow, obviously-correct loops that LogitEnsemble is checked and timed against.

    seed_loop       the seed's proxy-tuning loop: every step re-runs every model over the whole sequence
                    (no KV cache), one prompt at a time, greedy.
    dexperts_loop   the DExperts / proxy-tuning reference loop (alisawuffles/proxy-tuning): one cached
                    forward per model in sequence, full-sequence logits at the prompt, finished rows
                    padded rather than dropped, greedy.

Both call each member separately (a member whose adapter is "__base__" runs inside `disable_adapter()`),
so comparing them with the fused path proves the fused path exact. They are greedy-only on purpose.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from mentalens.proxy.fused import BASE_ADAPTER
from mentalens.proxy.units import ForwardSpec, left_pad, model_device


def _context(member: Any) -> Any:
    return member.model.disable_adapter() if member.adapter == BASE_ADAPTER else contextlib.nullcontext()


def _combine(ens: Any, logits: list[torch.Tensor]) -> torch.Tensor:
    scores = None
    for m, x in zip(ens.members, logits, strict=True):
        x = x[:, : ens.vocab].to(device=ens.device, dtype=torch.float32)
        if ens.combine == "logprobs":
            x = torch.log_softmax(x, dim=-1)
        scores = x * m.weight if scores is None else scores + x * m.weight
    return scores  # type: ignore[return-value]


@torch.inference_mode()
def seed_loop(ens: Any, prompt_ids: list[list[int]], max_new_tokens: int) -> list[int]:
    """Greedy ids for ONE prompt (prompt_ids[j] = member j's ids), re-running every model every step."""
    seqs = [list(ids) for ids in prompt_ids]
    out: list[int] = []
    for _ in range(max_new_tokens):
        logits = []
        for m, seq in zip(ens.members, seqs, strict=True):
            x = torch.tensor([seq], device=model_device(m.model))
            with _context(m):
                logits.append(m.model(input_ids=x, use_cache=False).logits[:, -1, :])
        token = int(_combine(ens, logits).argmax(-1))
        if token in ens.eos_ids:
            break
        out.append(token)
        for seq in seqs:
            seq.append(token)
    return out


@torch.inference_mode()
def dexperts_loop(ens: Any, prompt_ids: list[list[list[int]]], max_new_tokens: int) -> list[list[int]]:
    """Greedy ids for a batch (prompt_ids[j][b]), one cached forward per member per step, in sequence."""
    n = len(prompt_ids[0])
    states = []
    for m, rows in zip(ens.members, prompt_ids, strict=True):
        pad = m.tokenizer.pad_token_id if m.tokenizer.pad_token_id is not None else 0
        ids, mask = left_pad(rows, pad, model_device(m.model))
        spec = ForwardSpec(m.model)
        states.append({"ids": ids, "mask": mask, "spec": spec, "cache": spec.new_cache(m.model)})
    unfinished = torch.ones(n, dtype=torch.bool, device=ens.device)
    pad_token = ens.members[0].tokenizer.pad_token_id or 0
    out: list[list[int]] = [[] for _ in range(n)]
    step_ids: list[torch.Tensor | None] = [None] * len(states)
    for _ in range(max_new_tokens):
        logits = []
        for j, (m, st) in enumerate(zip(ens.members, states, strict=True)):
            mask = st["mask"]
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            ids = st["ids"] if step_ids[j] is None else step_ids[j]
            kwargs = {st["spec"].cache_kw: st["cache"]}
            with _context(m):
                res = m.model(input_ids=ids, attention_mask=mask, position_ids=pos[:, -ids.shape[1]:],
                              use_cache=True, **kwargs)
            logits.append(res.logits[:, -1, :])
        tokens = _combine(ens, logits).argmax(-1)
        tokens = torch.where(unfinished, tokens, torch.full_like(tokens, pad_token))
        for b, t in enumerate(tokens.tolist()):
            if unfinished[b] and t not in ens.eos_ids:
                out[b].append(t)
        for j, st in enumerate(states):
            dev = st["mask"].device
            step_ids[j] = tokens.to(dev).unsqueeze(-1)
            st["mask"] = torch.cat([st["mask"], st["mask"].new_ones((n, 1))], dim=-1)
        is_eos = torch.tensor([t in ens.eos_ids for t in tokens.tolist()], device=ens.device)
        unfinished &= ~is_eos
        if not bool(unfinished.any()):
            break
    return out


__all__ = ["dexperts_loop", "seed_loop"]
