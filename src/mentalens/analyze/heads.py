"""The trained heads as plain arrays: one stacked linear layer for every task, aspect and emotion.

Stored as `weights.npz` (float32 arrays) + `manifest.json` (labels, kinds, thresholds, provenance), never as
pickled scikit-learn objects, which break across versions. All heads share one matrix so a post's scores
for every task and emotion are a single matmul, and occlusion variants are extra rows of the same matmul.

Binary heads hold one logit (p(yes) = sigmoid); their decision threshold, tuned on validation data, is folded
into the bias so that the predicted label is always the one with probability >= 0.5. Multi-class heads are
softmax; emotions are independent sigmoids with per-label thresholds (kept, not folded: the emotion scores
are shown to people as probabilities).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mentalens.errors import ModelError

ARTEFACT_VERSION = 1


@dataclass
class HeadSpec:
    """One output group of the stacked layer."""

    key: str  # "DR", "IRF.thwarted belongingness", "emotions"
    task: str | None  # IMHI task name (None for emotions)
    aspect: str | None
    labels: list[str]
    kind: str  # "binary" (one logit for labels[1]) | "softmax" | "sigmoid" (multi-label)
    start: int = 0  # first row in the stacked matrix
    size: int = 0
    thresholds: list[float] | None = None  # per label, multi-label heads only
    source: str = ""
    transfer: str | None = None  # key of the head whose weights this one reuses (zero-shot transfer)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def stop(self) -> int:
        return self.start + self.size


class HeadSet:
    """All heads as one (outputs, dim) matrix; scores() turns features into per-head probabilities."""

    def __init__(self, specs: list[HeadSpec], weight: np.ndarray, bias: np.ndarray, meta: dict[str, Any]):
        self.specs = {s.key: s for s in specs}
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.meta = meta
        self._wt = np.ascontiguousarray(self.weight.T)

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(n, outputs) raw scores for (n, dim) features."""
        return features.astype(np.float32, copy=False) @ self._wt + self.bias

    def probabilities(self, logits: np.ndarray, key: str) -> np.ndarray:
        """(n, len(labels)) probabilities of one head from the stacked logits."""
        spec = self.specs[key]
        z = logits[:, spec.start : spec.stop]
        if spec.kind == "binary":
            p = _sigmoid(z[:, 0])
            return np.stack([1.0 - p, p], axis=1)
        if spec.kind == "softmax":
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        return _sigmoid(z)

    # ------------------------------------------------------------------------------------------ storage
    def save(self, folder: str | Path) -> None:
        """Write weights.npz + manifest.json atomically into folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp_w = folder / "weights.tmp.npz"
        np.savez_compressed(tmp_w, weight=self.weight, bias=self.bias)
        manifest = {"version": ARTEFACT_VERSION, **self.meta, "heads": [asdict(s) for s in self.specs.values()]}
        tmp_m = folder / "manifest.tmp.json"
        tmp_m.write_text(json.dumps(manifest, indent=1, ensure_ascii=False, default=_json_default) + "\n")
        tmp_w.replace(folder / "weights.npz")
        tmp_m.replace(folder / "manifest.json")

    @classmethod
    def load(cls, folder: str | Path) -> HeadSet:
        folder = Path(folder)
        mf, wf = folder / "manifest.json", folder / "weights.npz"
        if not mf.is_file() or not wf.is_file():
            raise ModelError(
                f"{folder}: no analyzer artefact (manifest.json + weights.npz): "
                "run `mentalens train analyzer --data DIR --output DIR` or omit the path to use the shipped one"
            )
        try:
            manifest = json.loads(mf.read_text())
            arrays = np.load(wf)
            weight, bias = arrays["weight"], arrays["bias"]
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{folder}: the analyzer artefact is unreadable ({exc}): rebuild it") from None
        if manifest.get("version") != ARTEFACT_VERSION:
            raise ModelError(
                f"{folder}: analyzer artefact version {manifest.get('version')} != {ARTEFACT_VERSION}: rebuild it"
            )
        specs = [HeadSpec(**h) for h in manifest.pop("heads")]
        if weight.shape[0] != bias.shape[0] or any(s.stop > weight.shape[0] for s in specs):
            raise ModelError(f"{folder}: the analyzer artefact is inconsistent (weights vs manifest): rebuild it")
        return cls(specs, weight, bias, manifest)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


__all__ = ["ARTEFACT_VERSION", "HeadSet", "HeadSpec", "logit"]
