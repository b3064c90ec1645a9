"""Tokenisation with answer-only labels, and the batch collators (padding-free packing, padded).

`encode_example` renders a conversation with the model's chat template (or the plain template), cuts it
at message boundaries and tokenises the pieces, so label masking is exact: every token the model should
learn to produce (the assistant turns, including the end-of-turn token) keeps its id as label, everything
else (system prompt, post, question, template markup) gets -100. The pieces are tokenised separately and
concatenated, so the boundary never depends on how BPE merges across it.

Collators:
- packed (padding-free): the micro-batch becomes one row; position_ids restart at 0 for each example, and
  transformers turns those into a block-diagonal causal mask (FlashAttention uses them as cu_seqlens), so
  no token attends across examples and no compute is spent on padding;
- padded: right-padded to the longest example (or a fixed length, to reproduce the seed's recipe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mentalens.finetune.data import Example
from mentalens.llm.prompts import fold_system, format_chat, has_chat_template, plain_chat

IGNORE = -100


def _segments(tokenizer: Any, messages: list[dict[str, str]], template: str) -> list[tuple[str, bool]]:
    """(text, trained) pieces whose concatenation is the full formatted conversation."""
    if template == "raw":  # prompt text then answer text, as in IMHI's completion format
        eos = tokenizer.eos_token or ""
        segs: list[tuple[str, bool]] = []
        for m in messages:
            if m["role"] == "assistant":
                segs.append((" " + m["content"].strip() + eos, True))
            elif m["role"] == "user":
                segs.append((m["content"], False))
            else:
                segs.append((m["content"] + "\n\n", False))
        return segs

    def fmt(msgs: list[dict[str, str]], gen: bool) -> str:
        return format_chat(tokenizer, msgs, add_generation_prompt=gen)

    try:
        segs, prev = [], ""
        for j, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = fmt(messages[:j], True)
            full = fmt(messages[: j + 1], False)
            if not prompt.startswith(prev) or not full.startswith(prompt):
                raise ValueError("template is not prefix-stable")
            segs.append((prompt[len(prev) :], False))
            segs.append((full[len(prompt) :], True))
            prev = full
        return segs
    except ValueError:
        # Templates that rewrite earlier turns: learn the last answer only.
        last = max(j for j, m in enumerate(messages) if m["role"] == "assistant")
        prompt = fmt(messages[:last], True)
        full = fmt(messages[: last + 1], False)
        if full.startswith(prompt):
            answer = full[len(prompt) :]
        else:
            answer = messages[last]["content"] + (tokenizer.eos_token or "")
        return [(prompt, False), (answer, True)]


def _adds_bos(tokenizer: Any) -> bool:
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def encode_example(tokenizer: Any, example: Example | Sequence[dict[str, str]], template: str = "chat") -> dict:
    """{"input_ids", "labels", "length", "n_answer"} of one conversation, labels -100 outside answers."""
    messages = list(example.messages if isinstance(example, Example) else example)
    if template == "chat" and messages and messages[0]["role"] == "system" and has_chat_template(tokenizer):
        try:
            format_chat(tokenizer, messages[:1] + [{"role": "user", "content": "x"}])
        except Exception:
            messages = fold_system(messages)
    ids: list[int] = []
    labels: list[int] = []
    uses_template = template == "chat" and has_chat_template(tokenizer)
    if not uses_template and _adds_bos(tokenizer):
        ids.append(tokenizer.bos_token_id)
        labels.append(IGNORE)
    for text, trained in _segments(tokenizer, messages, template):
        if not text:
            continue
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if trained else [IGNORE] * len(piece)
    n_answer = sum(1 for x in labels if x != IGNORE)
    return {"input_ids": ids, "labels": labels, "length": len(ids), "n_answer": n_answer}


def plain_text(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The plain-template rendering (documented in mentalens.llm.prompts) of a conversation."""
    return plain_chat(messages, add_generation_prompt=False, eos_token=tokenizer.eos_token)


@dataclass
class PackedCollator:
    """Padding-free batches: one row, position_ids restarting per example (no cross-example attention)."""

    def __post_init__(self) -> None:
        from transformers import DataCollatorWithFlattening

        self._flatten = DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        return self._flatten([{"input_ids": f["input_ids"], "labels": f["labels"]} for f in features])


@dataclass
class PaddedCollator:
    """Right-padded batches with an attention mask; pad_to fixes the length (the seed's pad-to-512)."""

    pad_id: int
    pad_to: int | None = None
    all_tokens_loss: bool = False  # the seed's recipe: loss on prompt tokens too

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = self.pad_to or max(len(f["input_ids"]) for f in features)
        n = len(features)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, f in enumerate(features):
            ids = f["input_ids"][:width]
            lab = ids if self.all_tokens_loss else f["labels"][:width]
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(ids)] = torch.tensor(lab)
            mask[i, : len(ids)] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


__all__ = ["IGNORE", "PackedCollator", "PaddedCollator", "encode_example", "plain_text"]
