"""Sentence occlusion on pooled features: which sentences a prediction rests on.

For a post of S sentences, the features of the post without sentence i are computed from the pooled sums
(no encoder pass): the token-weighted mean minus sentence i, and the element-wise max over the other
sentences (via the top-2 per dimension). Because the encoder reads every sentence on its own, these are
exactly the features the encoder would give the post re-written without that sentence, so the attribution
is faithful by construction; `bench/analyzer_quality.py` checks it with real re-encoding (ERASER
comprehensiveness and sufficiency).
"""

from __future__ import annotations

import numpy as np

from mentalens.analyze.encoder import Encoded, _l2


def leave_one_out_features(e: Encoded, kind: str = "mean+max") -> np.ndarray:
    """(S, dim) features of the post with each sentence removed in turn."""
    s = e.sent_sum.shape[0]
    totals = e.total[None, :] - e.sent_sum  # (S, D)
    counts = (e.count - e.sent_count).astype(np.float32)  # (S,)
    means = _l2(totals / np.maximum(counts, 1)[:, None])
    means[counts <= 0] = 0.0
    if kind == "mean":
        return means
    present = e.sent_count > 0
    vecs = _l2(e.sent_sum / np.maximum(e.sent_count, 1)[:, None])
    vecs[~present] = -np.inf
    if s == 1:
        maxes = np.zeros((1, vecs.shape[1]), dtype=np.float32)
    else:
        order = np.argsort(-vecs, axis=0)  # per dimension, sentences by value
        top1, top2 = order[0], order[1]
        first = np.take_along_axis(vecs, top1[None, :], 0)[0]
        second = np.take_along_axis(vecs, top2[None, :], 0)[0]
        maxes = np.where(np.arange(s)[:, None] == top1[None, :], second[None, :], first[None, :])
        maxes = np.where(np.isfinite(maxes), maxes, 0.0).astype(np.float32)
    return np.concatenate([means, maxes], axis=1).astype(np.float32)


def single_sentence_features(e: Encoded, kind: str = "mean+max") -> np.ndarray:
    """(S, dim) features of each sentence read alone (for per-sentence emotions)."""
    vecs = e.sentence_vectors
    vecs[e.sent_count == 0] = 0.0
    return vecs if kind == "mean" else np.concatenate([vecs, vecs], axis=1)


def rank_evidence(drops: np.ndarray, k: int = 3, min_drop: float = 0.005) -> list[int]:
    """Indices of the sentences whose removal lowers the label's probability most (positive drops only)."""
    order = np.argsort(-drops, kind="stable")
    return [int(i) for i in order[:k] if drops[i] > min_drop]


__all__ = ["leave_one_out_features", "rank_evidence", "single_sentence_features"]
