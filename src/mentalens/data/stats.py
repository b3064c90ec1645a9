"""Rows and label distribution per set: what `mentalens data stats` prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mentalens.data.imhi import load_imhi


@dataclass
class SetStats:
    set_name: str
    split: str
    fmt: str
    rows: int = 0
    labels: Counter = field(default_factory=Counter)
    unparsed: int = 0


def imhi_stats(path: str | Path | None = None) -> list[SetStats]:
    """Per (set, split, format): number of rows and gold label counts."""
    table: dict[tuple[str, str, str], SetStats] = {}
    for r in load_imhi(path):
        key = (r.set_name, r.split, r.fmt)
        s = table.setdefault(key, SetStats(*key))
        s.rows += 1
        if r.label is None:
            s.unparsed += 1
        else:
            s.labels[r.label if r.aspect is None else f"{r.aspect}: {r.label}"] += 1
    return sorted(table.values(), key=lambda s: (s.set_name.lower(), s.split, s.fmt))
