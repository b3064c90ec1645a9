"""One analyzer pass per message, shared by the session engine and the retrieval counsellor.

The engine analyses each user message to steer the reply and build the feelings timeline; the embedded
backend's retrieval counsellor needs the same analysis to reflect the person's emotions. A small in-memory
LRU keyed by (analyzer, text) makes that one encoder pass, not two. Nothing is written anywhere.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

_CACHE: OrderedDict[tuple[int, str], Any] = OrderedDict()
_LOCK = threading.Lock()
_MAX = 64

# GoEmotions labels -> how a counsellor would name the feeling back to the person
EMOTION_WORDS: dict[str, str] = {
    "sadness": "sadness",
    "grief": "grief",
    "fear": "fear",
    "nervousness": "anxiety",
    "anger": "anger",
    "annoyance": "frustration",
    "disapproval": "frustration",
    "disappointment": "disappointment",
    "remorse": "guilt",
    "embarrassment": "embarrassment",
    "confusion": "confusion",
    "disgust": "disgust",
    "joy": "joy",
    "gratitude": "gratitude",
    "optimism": "hope",
    "relief": "relief",
    "love": "love",
    "caring": "concern",
    "pride": "pride",
    "excitement": "excitement",
    "admiration": "admiration",
    "amusement": "amusement",
    "curiosity": "curiosity",
    "desire": "longing",
    "surprise": "surprise",
}
DIFFICULT = frozenset(
    {"sadness", "grief", "fear", "nervousness", "anger", "annoyance", "disapproval", "disappointment", "remorse",
     "embarrassment", "confusion", "disgust"}
)


def analyze_message(analyzer: Any, text: str) -> Any:
    """analyzer.analyze(text) through a small LRU (the same message is analysed once per process)."""
    key = (id(analyzer), hashlib.sha256(text.encode("utf-8", "replace")).hexdigest())
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    try:  # chat needs emotions and findings; evidence and the analyzer's own risk pass are skipped
        result = analyzer.analyze(text, evidence=False, risk=False)
    except TypeError:
        result = analyzer.analyze(text)
    with _LOCK:
        _CACHE[key] = result
        while len(_CACHE) > _MAX:
            _CACHE.popitem(last=False)
    return result


def top_emotions(
    analysis: Any, k: int = 3, min_score: float = 0.2, detected_only: bool = True
) -> list[tuple[str, float]]:
    """The analysis' strongest non-neutral emotions as (GoEmotions label, score), strongest first.

    detected_only: keep only emotions above the analyzer's own per-emotion threshold (tuned on GoEmotions
    dev) when it reports one, besides min_score."""
    if analysis is None:
        return []
    out = []
    for e in getattr(analysis, "emotions", None) or []:
        label, score = _label_score(e)
        detected = getattr(e, "detected", e.get("detected", True) if isinstance(e, dict) else True)
        if detected_only and not detected:
            continue
        if label and label != "neutral" and score >= min_score:
            out.append((label, score))
    out.sort(key=lambda x: -x[1])
    return out[:k]


def _label_score(e: Any) -> tuple[str, float]:
    if isinstance(e, dict):
        return str(e.get("label", "")), float(e.get("score", 0.0))
    if isinstance(e, tuple | list) and len(e) == 2:
        return str(e[0]), float(e[1])
    return str(getattr(e, "label", "")), float(getattr(e, "score", 0.0))


def emotion_scores(analysis: Any) -> dict[str, float]:
    """Every emotion score of the analysis (label -> score), for the feelings timeline."""
    if analysis is None:
        return {}
    return {label: round(score, 4) for label, score in map(_label_score, getattr(analysis, "emotions", None) or [])}


def condition_signals(analysis: Any, min_probability: float = 0.5) -> list[tuple[str, str, float]]:
    """(task, label, probability) of the analyzer's positive findings, strongest first (never a diagnosis)."""
    out = []
    tasks = getattr(analysis, "tasks", None) or {}
    for name, result in tasks.items():
        label = getattr(result, "label", None)
        prob = float(getattr(result, "probability", 0.0) or 0.0)
        positive = getattr(result, "positive", str(label).lower() not in _NEGATIVE_LABELS)
        if label and prob >= min_probability and positive:
            out.append((str(name), str(label), prob))
    out.sort(key=lambda x: -x[2])
    return out


_NEGATIVE_LABELS = {"no", "none", "not", "negative", "false", "0", "no stress", "no depression", "non-stress"}


def words_for(labels: list[str]) -> list[str]:
    """Counsellor words for emotion labels, without duplicates (annoyance and disapproval are both 'frustration')."""
    seen: list[str] = []
    for label in labels:
        word = EMOTION_WORDS.get(label)
        if word and word not in seen:
            seen.append(word)
    return seen
