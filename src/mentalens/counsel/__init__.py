"""Counselling sessions: analysis-aware, safety-wrapped turns over any Backend, and the offline retrieval
counsellor (how counsellors have answered similar questions).

    engine = CounselEngine(get_backend("embedded"))
    session = ChatSession()
    for event in engine.turn(session, "I feel like a burden to everyone"):
        ...   # Delta(text) events, then TurnEnd(turn, reply, analysis, risk, ...)
    session.timeline()                          # the feelings timeline
"""

from mentalens.counsel.engine import CounselEngine, Delta, EngineConfig, TurnEnd, validate_message
from mentalens.counsel.prompt import SYSTEM_PROMPT, build_messages
from mentalens.counsel.retrieval import RetrievalConfig, RetrievalCounsellor, RetrievalIndex
from mentalens.counsel.session import ChatSession, Turn

__all__ = [
    "SYSTEM_PROMPT",
    "ChatSession",
    "CounselEngine",
    "Delta",
    "EngineConfig",
    "RetrievalConfig",
    "RetrievalCounsellor",
    "RetrievalIndex",
    "Turn",
    "TurnEnd",
    "build_messages",
    "validate_message",
]
