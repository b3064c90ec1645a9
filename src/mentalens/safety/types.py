"""The value types of the safety layer: risk levels, matched cues, resources and the assessment itself.

Kept free of heavy imports: the chat server builds one RiskAssessment per turn.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
from typing import Any

FLAG_NAMES = ("harm_to_others", "abuse", "medical_emergency", "others_at_risk")


class RiskLevel(enum.StrEnum):
    """C-SSRS-style severity, ordered: none < low < moderate < high < imminent.

    low: hopelessness, burden, passive wish to be dead; moderate: active suicidal thoughts (or self-harm urges)
    without plan or intent; high: intent, plan, method, preparation, a recent attempt or self-harm;
    imminent: an attempt under way or set for now, or means at hand with intent.
    """

    NONE = "none"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    IMMINENT = "imminent"

    @property
    def rank(self) -> int:
        return _ORDER[self]

    @classmethod
    def parse(cls, value: str | RiskLevel) -> RiskLevel:
        """A level from its name (case-insensitive); unknown names raise UnknownNameError."""
        if isinstance(value, RiskLevel):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            from mentalens.errors import UnknownNameError

            raise UnknownNameError("risk level", str(value), [m.value for m in cls]) from None

    def _cmp(self, other: object) -> int | None:
        if isinstance(other, RiskLevel):
            return self.rank - other.rank
        if isinstance(other, str) and other.lower() in _BY_VALUE:
            return self.rank - _BY_VALUE[other.lower()].rank
        return None

    def __lt__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c < 0

    def __le__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c <= 0

    def __gt__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c > 0

    def __ge__(self, other: object) -> bool:
        c = self._cmp(other)
        return NotImplemented if c is None else c >= 0

    __hash__ = str.__hash__


_ORDER = {lvl: i for i, lvl in enumerate(RiskLevel)}
_BY_VALUE = {lvl.value: lvl for lvl in RiskLevel}


@dataclasses.dataclass(frozen=True)
class Cue:
    """One piece of evidence: a clinical construct found at [start, end) of message `message_index`.

    weight 1.0 = counts fully; a cue inside a quotation, a negation, a hypothetical or a figure of speech
    is kept with weight 0 (shown for transparency, but it does not raise the level).
    """

    construct: str
    text: str
    start: int
    end: int
    message_index: int = 0
    weight: float = 1.0
    note: str | None = None  # why a cue was discounted (negated, quoted, hypothetical, ...)
    rule: str | None = None  # the lexicon pattern that matched
    contextual: bool = False  # a generic phrase that counts only alongside an explicit cue

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("note", "rule"):
            if d[key] is None:
                d.pop(key)
        return d


@dataclasses.dataclass(frozen=True)
class Resource:
    """A place to get help: a crisis line, an emergency number or a directory of helplines."""

    name: str
    phone: str | None = None
    sms: str | None = None
    url: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2, None for global resources
    kind: str = "crisis_line"  # "crisis_line" | "emergency" | "directory"
    hours: str | None = None
    source: str | None = None  # where the entry was checked
    checked: _dt.date | None = None
    languages: tuple[str, ...] = ()
    topics: tuple[str, ...] = ("suicide",)  # suicide | mental_health | abuse | youth ...
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["checked"] = self.checked.isoformat() if self.checked else None
        d["languages"] = list(self.languages)
        d["topics"] = list(self.topics)
        return {k: v for k, v in d.items() if v not in (None, [], "")}

    def contact(self) -> str:
        """A short human string: 'name: call X, text Y, url'."""
        parts = []
        if self.phone:
            parts.append(f"call {self.phone}")
        if self.sms:
            parts.append(f"text {self.sms}")
        if self.url and not self.phone:
            parts.append(self.url)
        return f"{self.name}: {', '.join(parts)}" if parts else self.name


@dataclasses.dataclass
class RiskAssessment:
    """The result of `assess`: a level, flags, the evidence and what to show the person."""

    level: RiskLevel = RiskLevel.NONE
    flags: dict[str, bool] = dataclasses.field(default_factory=lambda: dict.fromkeys(FLAG_NAMES, False))
    cues: list[Cue] = dataclasses.field(default_factory=list)
    classifier_probability: float | None = None
    resources: list[Resource] = dataclasses.field(default_factory=list)
    locale: str | None = None
    language: str = "en"
    rule_level: RiskLevel = RiskLevel.NONE  # the level from the rules alone (the classifier can only raise it)
    review: bool = False  # the classifier saw risk the rules did not: worth a human look
    message_count: int = 1
    semantic_level: RiskLevel | None = None  # what the semantic layer asked for (None: not run or unavailable)

    @property
    def requires_escalation(self) -> bool:
        return self.level >= RiskLevel.LOW or any(self.flags.values())

    @property
    def counted_cues(self) -> list[Cue]:
        """Cues that count (weight > 0)."""
        return [c for c in self.cues if c.weight > 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "rule_level": self.rule_level.value,
            "flags": dict(self.flags),
            "requires_escalation": self.requires_escalation,
            "review": self.review,
            "classifier_probability": (
                None if self.classifier_probability is None else round(float(self.classifier_probability), 4)
            ),
            "cues": [c.to_dict() for c in self.cues],
            "resources": [r.to_dict() for r in self.resources],
            "locale": self.locale,
            "language": self.language,
            "message_count": self.message_count,
            "semantic_level": None if self.semantic_level is None else self.semantic_level.value,
        }
