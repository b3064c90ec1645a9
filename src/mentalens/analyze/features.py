"""Head features from pooled encodings, and an on-disk cache of them for training.

A post's features are built from its sentence vectors only, so that dropping a sentence (occlusion) is a
cheap recomputation of the same function on fewer rows, and equals re-encoding the shorter text exactly
when the encoder reads each sentence on its own (EncoderConfig.unit == "sentence").

    mean  the token-weighted mean of all token embeddings (the sentence-transformers post embedding)
    max   the element-wise max over unit sentence vectors (the strongest sentence per dimension)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mentalens.analyze.encoder import Encoded, Encoder, _l2

FEATURE_KINDS = ("mean", "mean+max")


def post_features(
    sent_sum: np.ndarray, sent_count: np.ndarray, kind: str = "mean+max", extra: tuple[np.ndarray, int] | None = None
) -> np.ndarray:
    """Feature vector of a post from its per-sentence token sums (rows may be a subset: occlusion)."""
    total = sent_sum.sum(0)
    count = int(sent_count.sum())
    if extra is not None:  # tokens outside any sentence (post-unit encoding: [CLS]/[SEP])
        total = total + extra[0]
        count += extra[1]
    mean = _l2(total / max(count, 1))
    if kind == "mean":
        return mean
    if kind != "mean+max":
        raise ValueError(f"unknown feature kind {kind!r}")
    present = sent_count > 0
    if not present.any():
        return np.concatenate([mean, np.zeros_like(mean)])
    vecs = _l2(sent_sum[present] / sent_count[present][:, None])
    return np.concatenate([mean, vecs.max(0)]).astype(np.float32)


def encoded_features(e: Encoded, kind: str = "mean+max") -> np.ndarray:
    """Features of a whole encoded post."""
    rest = (e.total - e.sent_sum.sum(0), e.count - int(e.sent_count.sum()))
    extra = rest if rest[1] > 0 else None
    return post_features(e.sent_sum, e.sent_count, kind, extra)


def occluded_features(e: Encoded, keep: np.ndarray, kind: str = "mean+max") -> np.ndarray:
    """Features of the post restricted to the sentences where keep is True."""
    rest = (e.total - e.sent_sum.sum(0), e.count - int(e.sent_count.sum()))
    extra = rest if rest[1] > 0 else None
    return post_features(e.sent_sum[keep], e.sent_count[keep], kind, extra)


class FeatureCache:
    """Features of texts, computed once per (encoder, feature kind, text) and kept on disk in shards.

    Keyed per text (SHA-1), so overlapping corpora (the same IRF posts under two aspects, a re-split) are
    encoded once, and an interrupted run keeps every finished shard."""

    SHARD = 2048

    def __init__(self, encoder: Encoder, root: Path, kind: str = "mean+max"):
        self.encoder, self.kind = encoder, kind
        self.root = Path(root) / f"{encoder.fingerprint}-{kind}"
        self.root.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, tuple[int, int]] = {}
        self._shards: list[np.ndarray] = []
        for f in sorted(self.root.glob("shard-*.npz")):
            if ".tmp" not in f.name:
                self._add_shard(np.load(f))

    def _add_shard(self, data) -> None:
        n = len(self._shards)
        self._shards.append(data["X"])
        for row, key in enumerate(data["keys"]):
            self._index[str(key)] = (n, row)

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def __len__(self) -> int:
        return len(self._index)

    def features(
        self,
        texts: Sequence[str],
        name: str = "texts",
        progress: Callable[[int, int], None] | None = None,
        chunk: int = 256,
    ) -> np.ndarray:
        """(n, dim) features; texts not cached yet are encoded (in shards of SHARD texts) and stored."""
        from mentalens.analyze.text import prepare

        keys = [self.key(t) for t in texts]
        todo = list(dict.fromkeys(k for k in keys if k not in self._index))
        text_of = dict(zip(keys, texts, strict=True))
        todo_set = set(todo)
        done = sum(1 for k in keys if k not in todo_set)
        for s0 in range(0, len(todo), self.SHARD):
            shard_keys = todo[s0 : s0 + self.SHARD]
            rows = []
            for c0 in range(0, len(shard_keys), chunk):
                preps = [prepare(text_of[k], allow_empty=True) for k in shard_keys[c0 : c0 + chunk]]
                encs = self.encoder.encode_prepared(preps)
                rows.extend(encoded_features(e, self.kind) for e in encs)
                if progress is not None:
                    progress(min(done + s0 + c0 + chunk, len(texts)), len(texts))
            X = np.stack(rows).astype(np.float32)
            digest = hashlib.sha1("".join(shard_keys).encode()).hexdigest()[:16]
            path = self.root / f"shard-{digest}.npz"
            tmp = self.root / f"shard-{digest}.tmp.npz"
            np.savez(tmp, keys=np.asarray(shard_keys), X=X)
            tmp.replace(path)
            self._add_shard({"keys": shard_keys, "X": X})
        if progress is not None:
            progress(len(texts), len(texts))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._shards[i][r] for i, r in (self._index[k] for k in keys)]).astype(np.float32)


__all__ = ["FEATURE_KINDS", "FeatureCache", "encoded_features", "occluded_features", "post_features"]
