"""Record types every loader returns, so training, evaluation and chat never see raw CSV columns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ImhiRecord:
    """One IMHI query: a post, the question asked about it, and the gold answer."""

    set_name: str  # IMHI file stem, e.g. "Irf", "t-sid"
    task: str  # canonical task name in mentalens.tasks, e.g. "IRF", "T-SID"
    aspect: str | None  # e.g. "perceived burdensomeness" for IRF, "social" for MultiWD
    post: str
    question: str
    query: str  # the full prompt exactly as in the file
    answer: str  # gold answer "<label sentence> Reasoning: ..."
    label: str | None  # gold label parsed from the answer
    explanation: str  # the part after "Reasoning:"
    split: str  # test | train | val
    fmt: str  # instruction | complete
    source: str  # file the record came from
    index: int  # row in that file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CounselRecord:
    """A help-seeker's question and one counsellor answer (therapist identity deliberately dropped)."""

    question_id: str
    title: str
    text: str
    topic: str
    answer: str
    upvotes: int = 0
    split: str = "train"
    source: str = "counselchat"
    language: str = "en"

    @property
    def context(self) -> str:
        """The help-seeker's message as one text (title + body, as the seed's Context column)."""
        if self.title and self.text and not self.text.startswith(self.title):
            return f"{self.title.strip()} {self.text.strip()}".strip()
        return (self.text or self.title).strip()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EmotionRecord:
    """A GoEmotions comment with its emotion labels (27 emotions + neutral)."""

    text: str
    labels: tuple[str, ...]
    id: str
    split: str


@dataclass(frozen=True)
class RawRecord:
    """A post from a raw (non-IMHI) research set with that set's own labels."""

    dataset: str  # irf | cams | cssrs
    text: str
    labels: dict[str, Any]
    explanation: str | None = None
    split: str | None = None
    id: str = ""
    posts: tuple[str, ...] = field(default_factory=tuple)
