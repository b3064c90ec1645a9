"""ROUGE-1/2/L F-measures with Google's `rouge-score` (Porter stemming), as IMHI explanation papers report."""

from __future__ import annotations

from collections.abc import Sequence

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge_pairs(hyps: Sequence[str], refs: Sequence[str], stemmer: bool = True) -> dict[str, list[float]]:
    """Per-pair F-measures {rouge1: [...], rouge2: [...], rougeL: [...]} (0..1)."""
    from rouge_score import rouge_scorer

    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=stemmer)
    out: dict[str, list[float]] = {t: [] for t in ROUGE_TYPES}
    for h, r in zip(hyps, refs, strict=True):
        scores = scorer.score(str(r), str(h))  # rouge-score takes (target, prediction)
        for t in ROUGE_TYPES:
            out[t].append(scores[t].fmeasure)
    return out


def rouge_means(hyps: Sequence[str], refs: Sequence[str], stemmer: bool = True) -> dict[str, float]:
    """Mean F-measure per ROUGE type, in percent."""
    pairs = rouge_pairs(hyps, refs, stemmer)
    return {t: (100 * sum(v) / len(v) if v else 0.0) for t, v in pairs.items()}


__all__ = ["ROUGE_TYPES", "rouge_means", "rouge_pairs"]
