"""Tiny random causal LMs with a real trained tokenizer, for tests, smoke runs and offline demos.

Model hubs are not always reachable (CI, air-gapped clinics), yet every code path that loads a Hugging
Face model must be exercised. `build_tokenizer` trains a byte-level BPE tokenizer with `tokenizers` on
real text and `build_tiny_llama` saves a randomly initialised Llama of any size that shares it, so two
sizes of "the same family" can be combined exactly as proxy-tuning combines Llama-2 7B and 70B.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from mentalens.paths import cache_dir

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]


def build_tokenizer(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 2048):
    """Train a byte-level BPE tokenizer on texts and save it (with a chat template) to out_dir."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<pad>",
    )
    fast.chat_template = CHAT_TEMPLATE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return fast


def build_tiny_llama(
    out_dir: str | Path,
    tokenizer_dir: str | Path,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int | None = None,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 1024,
    extra_vocab: int = 0,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised LlamaForCausalLM sharing tokenizer_dir's vocabulary to out_dir.

    extra_vocab pads the embedding matrix with unused trailing rows, as many fine-tuned checkpoints do.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok) + extra_vocab,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    # random init gives near-uniform logits; a wider init makes greedy paths distinct (better tests)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.08)
    out = Path(out_dir)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def default_corpus(limit: int = 4000) -> list[str]:
    """Real text to train the tiny tokenizer on: IMHI queries/answers if the data folder is present."""
    import csv

    from mentalens.paths import resolve_data_dir

    texts: list[str] = []
    root = resolve_data_dir() / "imhi" / "train_data" / "instruction_data"
    for path in sorted(root.glob("*/*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                texts.append(row.get("query", "") + " " + row.get("gpt-3.5-turbo", ""))
                if len(texts) >= limit:
                    return texts
    return texts


def tiny_family(
    sizes: dict[str, dict] | None = None, *, vocab_size: int = 2048, root: str | Path | None = None
) -> dict[str, Path]:
    """Build (once, cached) a tokenizer and tiny Llamas of several sizes that share it.

    Returns {"tokenizer": dir, "<size name>": model dir, ...}. The cache key covers every setting, so
    changing a size rebuilds only what changed.
    """
    sizes = sizes or {
        "small": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "seed": 1},
        "large": {"hidden_size": 128, "num_layers": 4, "num_heads": 4, "seed": 2},
    }
    key = hashlib.sha256(json.dumps([sizes, vocab_size], sort_keys=True).encode()).hexdigest()[:12]
    base = Path(root) if root else cache_dir("tiny", key)
    tok_dir = base / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        build_tokenizer(default_corpus(), tok_dir, vocab_size=vocab_size)
    out: dict[str, Path] = {"tokenizer": tok_dir}
    for name, kw in sizes.items():
        d = base / name
        if not (d / "config.json").exists():
            build_tiny_llama(d, tok_dir, **kw)
        out[name] = d
    return out
