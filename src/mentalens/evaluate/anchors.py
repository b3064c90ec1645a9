"""Published numbers every IMHI report is read against.

Weighted F1 (%) on the IMHI test sets, from the MentaLLaMA paper (Yang et al., "MentaLLaMA: Interpretable
Mental Health Analysis on Social Media with Large Language Models", WWW 2024): MentaLLaMA-chat-13B, and the
best discriminative baseline per set (fine-tuned MentalBERT/MentalRoBERTa-class classifiers).

The seed project's BARTScores (mean over a 1% IMHI sample; BART checkpoint not recorded) are kept because
mentalens replaces that project and its numbers are what users will compare against.
"""

from __future__ import annotations

MENTALLAMA_CHAT_13B_WF1: dict[str, float] = {
    "DR": 85.68,
    "dreaddit": 75.79,
    "SAD": 63.62,
    "CAMS": 45.52,
    "loneliness": 85.10,
    "Irf": 76.49,
    "MultiWD": 75.11,
    "t-sid": 75.31,
}

BEST_DISCRIMINATIVE_WF1: dict[str, float] = {
    "DR": 95.11,
    "dreaddit": 81.76,
    "SAD": 68.44,
    "CAMS": 47.62,
    "loneliness": 85.33,
    "Irf": 76.73,
    "MultiWD": 76.69,
    "t-sid": 89.01,
}

SEED_BARTSCORES: dict[str, float] = {
    "Mental-Yi-7b (seed)": -3.24,
    "Mental-Gemma-2b (seed)": -3.84,
    "proxy-tuned Yi (seed)": -2.97,
    "proxy-tuned Gemma (seed)": -3.39,
    '"SOTA" as the seed reports it': -2.73,
}

ANCHOR_NOTES = (
    "Anchors: weighted F1 of MentaLLaMA-chat-13B and of the best discriminative baseline per set, from the "
    "MentaLLaMA paper (full IMHI test sets). Seed BARTScores: the seed project's own numbers on a 1% IMHI "
    "sample with an unrecorded BART checkpoint; MentaLLaMA reports BARTScore h->r (generated -> gold) with "
    "bart-large-cnn + ParaBank weights, so compare only like with like."
)

__all__ = ["ANCHOR_NOTES", "BEST_DISCRIMINATIVE_WF1", "MENTALLAMA_CHAT_13B_WF1", "SEED_BARTSCORES"]
