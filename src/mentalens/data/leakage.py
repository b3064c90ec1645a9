"""The leakage guard: no training path may see a post that is in an IMHI test set.

A post leaks when its normalised text (NFKC, lower case, letters and digits only) equals a test post's,
or when both are long and share their first 100 normalised characters: IMHI sometimes truncates or
re-encodes the posts it took from raw sets (e.g. 15 of the 625 CAMS test posts differ from raw CAMS only
after that point), so exact matching alone lets them through.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PREFIX_CHARS = 100
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize_post(text: str) -> str:
    """Text reduced to lower-case letters and digits, for comparing posts across sources."""
    # undo the most common mojibake first (NFKC would turn "™" into "tm"), so "itâ€™s" == "it's"
    text = str(text).replace("â€™", "'").replace("â€œ", '"').replace("â€", '"')
    text = unicodedata.normalize("NFKC", text).lower()
    return _NON_ALNUM.sub("", text)


@dataclass
class LeakageReport:
    """How many items a filter dropped, per source, so every training run can say it."""

    kept: int = 0
    dropped: int = 0
    by_source: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_source.items()))
        return f"leakage guard: kept {self.kept}, dropped {self.dropped} post(s) found in IMHI test sets" + (
            f" ({detail})" if detail else ""
        )

    def merge(self, other: LeakageReport) -> LeakageReport:
        return LeakageReport(self.kept + other.kept, self.dropped + other.dropped, self.by_source + other.by_source)


class LeakageGuard:
    """Membership test against every post of the IMHI test sets."""

    def __init__(self, test_posts: Iterable[str]):
        self._exact: set[str] = set()
        self._prefix: set[str] = set()
        for post in test_posts:
            n = normalize_post(post)
            if not n:
                continue
            self._exact.add(n)
            if len(n) >= PREFIX_CHARS:
                self._prefix.add(n[:PREFIX_CHARS])

    @classmethod
    def from_data_dir(cls, data_dir: str | Path | None = None) -> LeakageGuard:
        """A guard over every IMHI test file under data_dir (default: the configured data folder)."""
        from mentalens.data.imhi import load_imhi

        records = load_imhi(None if data_dir is None else _imhi_path(data_dir), split="test")
        return cls(r.post for r in records)

    def __len__(self) -> int:
        return len(self._exact)

    def contains(self, text: str) -> bool:
        n = normalize_post(text)
        if not n:
            return False
        return n in self._exact or (len(n) >= PREFIX_CHARS and n[:PREFIX_CHARS] in self._prefix)

    def filter(
        self,
        items: Iterable[T],
        text: Callable[[T], str | Iterable[str]] = lambda r: r.post,  # type: ignore[attr-defined]
        source: Callable[[T], str] | str = "data",
    ) -> tuple[list[T], LeakageReport]:
        """Items none of whose texts is a test post, and a report of what was dropped."""
        kept: list[T] = []
        report = LeakageReport()
        for item in items:
            texts = text(item)
            texts = [texts] if isinstance(texts, str) else list(texts)
            if any(self.contains(t) for t in texts):
                report.dropped += 1
                report.by_source[source(item) if callable(source) else source] += 1
            else:
                kept.append(item)
        report.kept = len(kept)
        return kept, report


def _imhi_path(data_dir: str | Path) -> Path:
    p = Path(data_dir)
    return p / "imhi" if (p / "imhi").is_dir() else p
