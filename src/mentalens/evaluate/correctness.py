"""Label correctness: which label each answer states, and weighted F1 / accuracy with bootstrap intervals.

Labels come from the task registry's parser (`Task.parse`), which agrees with every IMHI gold sentence.
An answer it cannot read is either scored as unparseable (a wrong answer that is counted and reported) or,
with a fallback classifier, labelled by a classifier that reads the explanation, as MentaLLaMA does with its
MentalBERT classifiers. Scores are computed as MentaLLaMA computes them: IRF and MultiWD over all their rows
(every aspect together), plus per aspect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

UNPARSEABLE = "(unparseable)"


@dataclass
class LabelledRow:
    gold: str
    predicted: str  # a task label or UNPARSEABLE
    source: str  # parser | fallback | none
    aspect: str | None = None


@dataclass
class Interval:
    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass
class Correctness:
    """Correctness of one set (or one aspect of it). F1 and accuracy in percent, as IMHI papers report."""

    n: int
    labels: list[str]
    weighted_f1: Interval
    accuracy: Interval
    macro_f1: float
    unparseable: int  # answers no parser or classifier could label
    parsed: int  # labelled by the task parser
    fallback: int  # labelled by the fallback classifier
    confusion: list[list[int]]  # rows: gold labels; columns: labels + UNPARSEABLE
    per_aspect: dict[str, Correctness] = field(default_factory=dict)

    @property
    def unparseable_rate(self) -> float:
        return self.unparseable / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["weighted_f1"] = self.weighted_f1.to_dict()
        d["accuracy"] = self.accuracy.to_dict()
        d["unparseable_rate"] = self.unparseable_rate
        d["per_aspect"] = {k: v.to_dict() for k, v in self.per_aspect.items()}
        return d


def _weighted_f1_from_confusion(cm: Any) -> Any:
    """Weighted F1 of stacked confusion matrices [..., gold, predicted] (gold classes first, same order).

    Identical to sklearn's f1_score(average="weighted", labels=gold classes); vectorised so 1000 bootstrap
    resamples cost one numpy expression instead of 1000 sklearn calls.
    """
    import numpy as np

    k = cm.shape[-2]
    tp = np.diagonal(cm[..., :k, :k], axis1=-2, axis2=-1).astype(float)
    support = cm.sum(axis=-1).astype(float)  # per gold class
    predicted = cm[..., :k].sum(axis=-2).astype(float)  # per class, as predicted
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
        total = support.sum(axis=-1)
        return np.where(total > 0, (f1 * support).sum(axis=-1) / total, 0.0)


def _confusion_batch(gold: Any, pred: Any, k: int, m: int, index: Any) -> Any:
    """Confusion matrices [B, k, m] for resample index arrays [B, n] (gold in 0..k-1, pred in 0..m-1)."""
    import numpy as np

    g, p = gold[index], pred[index]  # [B, n]
    flat = (np.arange(index.shape[0])[:, None] * (k * m) + g * m + p).ravel()
    return np.bincount(flat, minlength=index.shape[0] * k * m).reshape(index.shape[0], k, m)


def correctness(
    rows: Sequence[LabelledRow],
    labels: Sequence[str],
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    per_aspect: bool = True,
) -> Correctness:
    """Weighted F1, accuracy, macro F1 (scikit-learn), bootstrap percentile intervals, confusion matrix."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    gold_labels = [lab for lab in labels if any(r.gold == lab for r in rows)]
    n = len(rows)
    columns = [*labels, UNPARSEABLE]
    if n == 0:
        empty = Interval(0.0, 0.0, 0.0)
        return Correctness(0, list(labels), empty, empty, 0.0, 0, 0, 0, [[0] * len(columns) for _ in labels])
    y_true = [r.gold for r in rows]
    y_pred = [r.predicted for r in rows]
    wf1 = 100 * f1_score(y_true, y_pred, average="weighted", labels=gold_labels, zero_division=0)
    mf1 = 100 * f1_score(y_true, y_pred, average="macro", labels=gold_labels, zero_division=0)
    acc = 100 * accuracy_score(y_true, y_pred)

    # gold classes first in the code space, so the vectorised F1 reads the same classes as sklearn
    order = gold_labels + [c for c in columns if c not in gold_labels]
    code = {c: i for i, c in enumerate(order)}
    g = np.array([code[x] for x in y_true])
    p = np.array([code[x] for x in y_pred])
    k, m = len(gold_labels), len(order)
    rng = np.random.default_rng(seed)
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    if resamples > 0:
        f1s, accs = [], []
        for start in range(0, resamples, 250):  # chunks bound memory on large sets
            idx = rng.integers(0, n, size=(min(250, resamples - start), n))
            cms = _confusion_batch(g, p, k, m, idx)
            f1s.append(_weighted_f1_from_confusion(cms))
            accs.append((g[idx] == p[idx]).mean(axis=1))
        alpha = (1 - confidence) / 2
        for name, values in (("f1", np.concatenate(f1s) * 100), ("acc", np.concatenate(accs) * 100)):
            lows[name], highs[name] = (float(x) for x in np.quantile(values, [alpha, 1 - alpha]))
    else:
        lows = {"f1": wf1, "acc": acc}
        highs = dict(lows)

    cm = [[sum(1 for r in rows if r.gold == gl and r.predicted == c) for c in columns] for gl in labels]
    result = Correctness(
        n=n,
        labels=list(labels),
        weighted_f1=Interval(round(wf1, 4), round(lows["f1"], 4), round(highs["f1"], 4)),
        accuracy=Interval(round(acc, 4), round(lows["acc"], 4), round(highs["acc"], 4)),
        macro_f1=round(mf1, 4),
        unparseable=sum(r.predicted == UNPARSEABLE for r in rows),
        parsed=sum(r.source == "parser" for r in rows),
        fallback=sum(r.source == "fallback" for r in rows),
        confusion=cm,
    )
    if per_aspect:
        aspects = sorted({r.aspect for r in rows if r.aspect})
        for a in aspects:
            sub = [r for r in rows if r.aspect == a]
            result.per_aspect[a] = correctness(sub, labels, resamples=resamples, seed=seed, per_aspect=False)
    return result


__all__ = ["UNPARSEABLE", "Correctness", "Interval", "LabelledRow", "correctness"]
