"""Incremental detokenisation with stop strings, so streamed text always equals the returned text.

Each step decodes the row's generated ids and releases only text that can no longer change: a trailing
U+FFFD (a UTF-8 character whose remaining bytes are still to come) and any tail that could be the start
of a stop string are held back. A stop string ends the row and is never part of the output. Decoding
never "cleans up" spaces, which keeps every decoded prefix a prefix of the final text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_PENDING = "\ufffd"


def cut_at_stop(text: str, stops: Sequence[str], start: int = 0) -> int:
    """Index of the earliest stop string at or after start (-1 if none)."""
    hits = [i for i in (text.find(s, start) for s in stops if s) if i >= 0]
    return min(hits, default=-1)


def _stop_prefix_len(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of text that is a proper prefix of a stop string."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best


class RowText:
    """The text of one generated sequence, built token by token."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], track: bool):
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        self.track = track or bool(self.stops)  # decode every step only when someone looks
        self.ids: list[int] = []
        self.text = ""
        self.sent = 0
        self.stopped = False
        self._checked = 0
        self._max_stop = max((len(s) for s in self.stops), default=0)

    def decode(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token: int) -> str:
        """Add a token; returns the newly certain text (empty while held back)."""
        self.ids.append(token)
        if not self.track:
            return ""
        self.text = self.decode()
        if self.stops:
            cut = cut_at_stop(self.text, self.stops, max(0, self._checked - self._max_stop + 1))
            self._checked = len(self.text)
            if cut >= 0:
                self.text = self.text[:cut]
                self.stopped = True
                return self._release(len(self.text))
        safe = len(self.text.rstrip(_PENDING))
        safe -= _stop_prefix_len(self.text[:safe], self.stops)
        return self._release(safe)

    def finish(self) -> str:
        """The final text is known: release whatever was held back."""
        if not self.stopped:
            self.text = self.decode()
            cut = cut_at_stop(self.text, self.stops)
            if cut >= 0:
                self.text, self.stopped = self.text[:cut], True
        return self._release(len(self.text))

    def _release(self, end: int) -> str:
        if end <= self.sent:
            return ""
        delta = self.text[self.sent : end]
        self.sent = end
        return delta


__all__ = ["RowText", "cut_at_stop"]
