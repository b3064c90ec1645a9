"""A tiny random BART with a real BART-style tokenizer, for testing and benchmarking BARTScore offline.

facebook/bart-large-cnn cannot be downloaded everywhere (CI, air-gapped machines), yet the scorer's code
path (tokeniser, truncation, teacher forcing, padding) must be exercised on a real BartForConditionalGeneration.
This trains a byte-level BPE tokenizer with BART's special tokens (<s>=0, <pad>=1, </s>=2, <unk>=3, <mask>)
on IMHI training answers and saves a randomly initialised BART from a config beside it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from mentalens.paths import cache_dir


def _training_text(limit: int = 4000) -> list[str]:
    """IMHI training answers and posts (never test rows): realistic sub-words for the tokenizer."""
    from mentalens.data import load_imhi

    texts: list[str] = []
    for r in load_imhi(split="train", fmt="instruction"):
        texts.append(r.answer)
        texts.append(r.post)
        if len(texts) >= limit:
            break
    return texts


def build_bart_tokenizer(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 4096):
    """Train a byte-level BPE tokenizer with BART's special tokens and save it as a BartTokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        texts,
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    bpe.save_model(str(out))
    tok = BartTokenizer(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))
    tok.save_pretrained(out)
    return tok


def build_tiny_bart(
    out_dir: str | Path | None = None,
    *,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 4,
    ffn: int = 128,
    vocab_size: int = 4096,
    max_positions: int = 1024,
    seed: int = 0,
    texts: Iterable[str] | None = None,
) -> Path:
    """Folder of a random BartForConditionalGeneration + tokenizer (cached by its settings)."""
    import torch
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    settings = dict(
        d_model=d_model, layers=layers, heads=heads, ffn=ffn, vocab=vocab_size, pos=max_positions, seed=seed
    )
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    out = Path(out_dir) if out_dir else cache_dir("tiny", f"bart-{key}")
    if (out / "config.json").is_file() and (out / "tokenizer_config.json").is_file():
        return out
    tok_dir = out / "_tokenizer"
    build_bart_tokenizer(texts if texts is not None else _training_text(), tok_dir, vocab_size)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(seed)
    config = BartConfig(
        vocab_size=len(tok),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_position_embeddings=max_positions,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id,
        forced_bos_token_id=tok.bos_token_id,
    )
    model = BartForConditionalGeneration(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


__all__ = ["build_bart_tokenizer", "build_tiny_bart"]
