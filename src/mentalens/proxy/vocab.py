"""Vocabulary checks: logits can only be added when token id i means the same token in every model.

Fine-tuned experts often carry extra, unused rows at the end of their embedding matrix (padded to a
multiple of 64, or added chat tokens); those are cut so every model scores the same ids. Models with
different tokenizers cannot be combined token by token at all: that is refused before any generation,
naming the first ids on which they disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mentalens.errors import ModelError


def output_width(model: Any) -> int:
    """How many logits the model produces per position (its output-embedding rows)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if weight is not None and weight.dim() == 2:
        return int(weight.shape[0])
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(cfg.vocab_size)


def _id_to_token(tokenizer: Any) -> list[str | None]:
    vocab = tokenizer.get_vocab()
    table: list[str | None] = [None] * (max(vocab.values(), default=-1) + 1)
    for token, idx in vocab.items():
        table[idx] = token
    return table


def tokenizer_mismatch(a: Any, b: Any) -> str | None:
    """Why tokenizers a and b cannot share logits, or None when they agree on every shared id."""
    if a is b:
        return None
    size_a, size_b = getattr(a, "vocab_size", None), getattr(b, "vocab_size", None)
    if size_a != size_b:
        return f"base vocabularies of {size_a} and {size_b} tokens"
    ta, tb = _id_to_token(a), _id_to_token(b)
    shared = min(len(ta), len(tb))
    diff = [i for i in range(shared) if ta[i] != tb[i]]
    if diff:
        i = diff[0]
        return f"{len(diff)} of {shared} token ids differ (e.g. id {i}: {ta[i]!r} vs {tb[i]!r})"
    return None


def check_vocabularies(models: Sequence[Any], tokenizers: Sequence[Any], names: Sequence[str]) -> int:
    """The number of token ids all models share (logits are cut to it); raises if tokenizers differ."""
    for tok, name in zip(tokenizers[1:], names[1:], strict=True):
        why = tokenizer_mismatch(tokenizers[0], tok)
        if why:
            raise ModelError(
                f"{names[0]} and {name} use different tokenizers ({why}): logit ensembles and proxy-tuning need "
                "models of one family that share a tokenizer (e.g. a Llama-2 base with Llama-2 experts)"
            )
    widths = [output_width(m) for m in models]
    width = min(widths)
    n_tokens = len(tokenizers[0])
    if width < n_tokens:
        # the tokenizer has tokens (usually added specials) some model cannot score: they are never generated
        smallest = names[widths.index(width)]
        if width < getattr(tokenizers[0], "vocab_size", n_tokens):
            raise ModelError(
                f"{smallest} scores only {width} tokens but its tokenizer has {n_tokens}: the model and "
                "tokenizer do not belong together; load the tokenizer saved with the model"
            )
    return width


__all__ = ["check_vocabularies", "output_width", "tokenizer_mismatch"]
