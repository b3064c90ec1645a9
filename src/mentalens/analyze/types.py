"""What the analyzer returns: per-task results with evidence, emotions, risk, language and warnings.

Plain dataclasses (no numpy inside) so results pickle, compare and serialise with `to_dict()` as JSON.
"""

from __future__ import annotations

import dataclasses
from typing import Any

NOT_A_DIAGNOSIS = (
    "Automated reading of the text by a machine-learning model: not a diagnosis. "
    "If you are struggling, please talk to someone you trust or a professional."
)


@dataclasses.dataclass(frozen=True)
class Evidence:
    """A sentence of the post and how much it supports a label.

    score: the drop in the label's probability when the sentence is removed (occlusion); start/end are
    character offsets into Analysis.text.
    """

    sentence: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "start": self.start, "end": self.end, "score": round(self.score, 4)}


@dataclasses.dataclass(frozen=True)
class Emotion:
    """A GoEmotions emotion with its probability; detected = above the threshold tuned on GoEmotions dev."""

    label: str
    score: float
    detected: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(self.score, 4), "detected": self.detected}


@dataclasses.dataclass
class TaskResult:
    """One IMHI task (or one aspect of IRF / MultiWD) for one post."""

    task: str
    aspect: str | None
    label: str
    probability: float  # of the predicted label
    probabilities: dict[str, float]
    evidence: list[Evidence] = dataclasses.field(default_factory=list)
    answer: str = ""  # "<IMHI gold label sentence> Reasoning: ..." written from the evidence only
    method: str = "trained"  # trained | transfer (zero-shot from another head) | weak (weak labels)

    @property
    def key(self) -> str:
        return f"{self.task}.{self.aspect}" if self.aspect else self.task

    @property
    def positive(self) -> bool:
        """Does the label report a finding (not no / none / other causes)?"""
        return self.label not in ("no", "none")

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "aspect": self.aspect,
            "label": self.label,
            "probability": round(self.probability, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "evidence": [e.to_dict() for e in self.evidence],
            "answer": self.answer,
            "method": self.method,
        }


@dataclasses.dataclass
class Analysis:
    """Everything the analyzer says about one text."""

    text: str  # the cleaned text the offsets refer to
    tasks: dict[str, TaskResult]
    emotions: list[Emotion]  # all 28, highest score first
    sentence_emotions: list[tuple[str, int, int, list[Emotion]]]
    risk: Any = None  # mentalens.safety RiskAssessment (None when the safety layer is unavailable)
    risk_level: str = "unknown"
    language: str = "en"
    warnings: list[str] = dataclasses.field(default_factory=list)
    sentences: list[tuple[str, int, int]] = dataclasses.field(default_factory=list)
    truncated: bool = False
    disclaimer: str = NOT_A_DIAGNOSIS

    @property
    def detected_emotions(self) -> list[Emotion]:
        return [e for e in self.emotions if e.detected]

    def findings(self) -> list[TaskResult]:
        """Positive task results, most probable first."""
        return sorted((t for t in self.tasks.values() if t.positive), key=lambda t: -t.probability)

    def to_dict(self) -> dict[str, Any]:
        risk: Any = None
        if self.risk is not None:
            to_dict = getattr(self.risk, "to_dict", None)
            risk = to_dict() if callable(to_dict) else str(self.risk)
        return {
            "text": self.text,
            "language": self.language,
            "warnings": list(self.warnings),
            "truncated": self.truncated,
            "risk_level": self.risk_level,
            "risk": risk,
            "tasks": {k: v.to_dict() for k, v in self.tasks.items()},
            "emotions": [e.to_dict() for e in self.emotions],
            "sentence_emotions": [
                {"sentence": s, "start": a, "end": b, "emotions": [e.to_dict() for e in em if e.detected]}
                for s, a, b, em in self.sentence_emotions
            ],
            "disclaimer": self.disclaimer,
        }


__all__ = ["NOT_A_DIAGNOSIS", "Analysis", "Emotion", "Evidence", "TaskResult"]
