"""GoEmotions (Demszky et al. 2020): 58k Reddit comments labelled with 27 emotions + neutral."""

from __future__ import annotations

from pathlib import Path

from mentalens.data.io import read_table
from mentalens.data.records import EmotionRecord
from mentalens.errors import DataError, UnknownNameError
from mentalens.paths import resolve_data_dir

GOEMOTIONS_LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip

EKMAN_GROUPS: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy",
        "amusement",
        "approval",
        "excitement",
        "gratitude",
        "love",
        "optimism",
        "relief",
        "pride",
        "admiration",
        "desire",
        "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
SPLITS = ("train", "dev", "test")


def _root(path: str | Path | None) -> Path:
    base = resolve_data_dir() if path is None else Path(path).expanduser()
    for candidate in (base / "goemotions" / "data" / "original", base / "data" / "original", base / "original", base):
        if (candidate / "train.tsv").is_file() or (candidate / "test.tsv").is_file():
            return candidate
    raise DataError(f"{base}: no GoEmotions files (train.tsv/dev.tsv/test.tsv): run `mentalens data fetch`")


def load_goemotions(path: str | Path | None = None, split: str = "train") -> list[EmotionRecord]:
    """One split of GoEmotions with label names (a comment may have several)."""
    if split not in SPLITS:
        raise UnknownNameError("GoEmotions split", split, SPLITS)
    f = _root(path) / f"{split}.tsv"
    df = read_table(f, sep="\t", header=None, names=("text", "labels", "id"))
    records = []
    for i, row in enumerate(df.itertuples(index=False)):
        try:
            ids = [int(x) for x in str(row.labels).split(",") if x.strip()]
            if any(j < 0 for j in ids):  # -1 would silently index the last label
                raise IndexError
            labels = tuple(GOEMOTIONS_LABELS[j] for j in ids)
        except (ValueError, IndexError):
            raise DataError(f"{f}:{i + 1}: label ids {row.labels!r} are not in 0..27") from None
        records.append(EmotionRecord(text=str(row.text), labels=labels, id=str(row.id), split=split))
    return records
