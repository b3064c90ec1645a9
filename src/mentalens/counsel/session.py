"""A counselling session: the conversation, one record per turn, and the feelings timeline built from them.

Sessions live in memory; the server's store persists them only when persistence is on. `to_dict()` is the
export format (JSON), `from_dict()` reads it back.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Any

from mentalens.backend import Message

RISK_ORDER = ("none", "low", "moderate", "high", "imminent")


def new_session_id() -> str:
    """Unguessable id (sessions are addressed by id over the API)."""
    return "sess_" + secrets.token_urlsafe(16)


@dataclasses.dataclass
class Turn:
    """One exchange: the person's message, the reply, and what the analysis and safety layer saw."""

    index: int
    user: str
    reply: str
    created: float
    emotions: dict[str, float] = dataclasses.field(default_factory=dict)  # label -> score (this message)
    risk_level: str = "none"  # conversation-level risk when this turn was answered
    conditions: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # analyzer findings
    escalated: bool = False
    fallback: str | None = None  # why the backend's reply was replaced, if it was
    guard_violations: list[str] = dataclasses.field(default_factory=list)
    backend: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Turn:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


@dataclasses.dataclass
class ChatSession:
    """The state of one conversation. `messages` is what the backend sees (user/assistant turns)."""

    id: str = dataclasses.field(default_factory=new_session_id)
    created: float = dataclasses.field(default_factory=time.time)
    locale: str | None = None
    turns: list[Turn] = dataclasses.field(default_factory=list)
    owner: str | None = None  # hash of the API key that created it (server)
    persist: bool = False

    @property
    def messages(self) -> list[Message]:
        out: list[Message] = []
        for t in self.turns:
            out.append({"role": "user", "content": t.user})
            out.append({"role": "assistant", "content": t.reply})
        return out

    @property
    def max_risk(self) -> str:
        levels = [t.risk_level for t in self.turns] or ["none"]
        return max(levels, key=lambda lv: RISK_ORDER.index(lv) if lv in RISK_ORDER else 0)

    def timeline(self, k: int = 5) -> dict[str, Any]:
        """The feelings timeline: per turn, the emotions' scores and the risk level.

        `series` holds the k emotions that were strongest anywhere in the session (neutral excluded), one
        score per turn, ready for a chart; `turns` holds the full per-turn record.
        """
        peak: dict[str, float] = {}
        for t in self.turns:
            for label, score in t.emotions.items():
                if label != "neutral":
                    peak[label] = max(peak.get(label, 0.0), score)
        top = sorted(peak, key=lambda lb: -peak[lb])[:k]
        return {
            "session_id": self.id,
            "turns": [
                {
                    "index": t.index,
                    "created": t.created,
                    "risk_level": t.risk_level,
                    "top_emotions": sorted(
                        ((lb, s) for lb, s in t.emotions.items() if lb != "neutral"), key=lambda x: -x[1]
                    )[:3],
                    "emotions": t.emotions,
                }
                for t in self.turns
            ],
            "series": {label: [round(t.emotions.get(label, 0.0), 4) for t in self.turns] for label in top},
            "risk": [t.risk_level for t in self.turns],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "mentalens.session",
            "created": self.created,
            "locale": self.locale,
            "persist": self.persist,
            "turns": [t.to_dict() for t in self.turns],
            "messages": self.messages,
            "timeline": self.timeline(),
            "max_risk": self.max_risk,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChatSession:
        return cls(
            id=d["id"],
            created=float(d.get("created", time.time())),
            locale=d.get("locale"),
            turns=[Turn.from_dict(t) for t in d.get("turns", [])],
            owner=d.get("owner"),
            persist=bool(d.get("persist", False)),
        )
