"""The session engine: analysis steers the prompt, safety runs before and after every reply on every backend,
and a failing, stalling or misbehaving backend still leaves the person with a reply (and resources at risk).

Scripted backends stand in for misbehaving models (that is what they are for); the analyzer, the safety
layer and the retrieval counsellor are the real ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from mentalens.backend import Backend, GenerationConfig, Message, get_backend
from mentalens.counsel import ChatSession, CounselEngine, Delta, EngineConfig, TurnEnd, build_messages
from mentalens.counsel.engine import SAFE_CONTINUATION, STATIC_FALLBACK
from mentalens.counsel.retrieval import RetrievalCounsellor
from mentalens.errors import BackendError, DataError

CRISIS = "I have the pills in my hand and I am going to take them all tonight. I want to die."
SAD = "I can't sleep and I feel so alone and worthless lately, nothing I do matters."


class Scripted(Backend):
    """Replies with the given pieces; records what it was sent."""

    name = "scripted"

    def __init__(self, *replies: Sequence[str]):
        self.replies = list(replies)
        self.seen: list[list[Message]] = []

    def answer(self, prompts, config=None):
        return ["" for _ in prompts]

    def stream(self, messages, config=None) -> Iterator[str]:
        self.seen.append(list(messages))
        yield from self.replies[min(len(self.seen), len(self.replies)) - 1]


class Broken(Scripted):
    def __init__(self, after: Sequence[str] = ()):
        super().__init__(after)

    def stream(self, messages, config=None):
        self.seen.append(list(messages))
        yield from self.replies[0]
        raise BackendError("connection refused by http://127.0.0.1:9/v1 (is the server running?)")


class Stalling(Scripted):
    """Sends `before`, then hangs until released (the engine must not wait for it)."""

    def __init__(self, before: Sequence[str] = ()):
        super().__init__(before)
        self.release = threading.Event()

    def stream(self, messages, config=None):
        self.seen.append(list(messages))
        yield from self.replies[0]
        self.release.wait(30)
        yield "too late."


@pytest.fixture(scope="module")
def analyzer():
    from mentalens.analyze import get_analyzer

    return get_analyzer()


@pytest.fixture(scope="module")
def fallback(analyzer, data_dir):
    counsellor = RetrievalCounsellor(analyzer=analyzer)
    counsellor.index  # noqa: B018
    return counsellor.reply


def engine_for(backend, analyzer, fallback, **config) -> CounselEngine:
    return CounselEngine(backend, analyzer=analyzer, config=EngineConfig(**config), fallback=fallback)


def run(engine, session, text, **gen) -> tuple[list[Delta], TurnEnd]:
    events = list(engine.turn(session, text, GenerationConfig(**gen) if gen else None))
    deltas = [e for e in events if isinstance(e, Delta)]
    end = events[-1]
    assert isinstance(end, TurnEnd) and all(isinstance(e, Delta) for e in events[:-1])
    assert "".join(d.text for d in deltas) == end.reply  # what was streamed is exactly what is recorded
    return deltas, end


def test_analysis_steers_the_prompt_and_builds_the_timeline(analyzer, fallback):
    from mentalens.counsel.analysis import EMOTION_WORDS, top_emotions

    backend = Scripted(["I'm really sorry it has been this hard. ", "What has been keeping you up at night?"])
    engine = engine_for(backend, analyzer, fallback)
    session = ChatSession()
    _, end = run(engine, session, SAD)
    system = backend.seen[0][0]
    assert system["role"] == "system" and "not a licensed therapist" in system["content"]
    assert "Do not diagnose" in system["content"]
    found = [EMOTION_WORDS[lb] for lb, _ in top_emotions(analyzer.analyze(SAD), k=3, min_score=0.05)
             if lb in EMOTION_WORDS]
    for word in found:
        assert word in system["content"]
    assert backend.seen[0][-1] == {"role": "user", "content": SAD}
    assert end.reply.startswith("I'm really sorry it has been this hard.")
    assert end.analysis["emotions"] and end.turn.emotions
    assert session.turns[0].user == SAD and session.turns[0].reply == end.reply
    _, end2 = run(engine, session, "Thank you, that helps a little. I slept better last night and feel hopeful.")
    timeline = session.timeline()
    assert [t["index"] for t in timeline["turns"]] == [0, 1]
    assert all(len(v) == 2 for v in timeline["series"].values())
    assert backend.seen[1][1:3] == session.messages[:2]  # the history goes to the model
    assert end2.turn.index == 1


def test_crisis_message_gets_mentalens_escalation_first_whatever_the_backend(analyzer, fallback):
    backend = Scripted(["Let's talk about something else. ", "How was your day?"])
    engine = engine_for(backend, analyzer, fallback)
    deltas, end = run(engine, ChatSession(locale="US"), CRISIS)
    assert end.risk["level"] in ("high", "imminent")
    assert deltas[0].part == "escalation"
    assert "988" in deltas[0].text or "911" in deltas[0].text
    assert end.reply.startswith(end.escalation.strip())
    assert end.turn.escalated and end.risk["resources"]
    assert "Safety:" in backend.seen[0][0]["content"]  # the model is told too


def test_a_low_risk_message_gets_support_resources_after_the_reply(analyzer, fallback):
    engine = engine_for(Scripted(["That sounds exhausting. ", "How long has it felt like this?"]), analyzer,
                        fallback)
    deltas, end = run(engine, ChatSession(), "Lately I feel hopeless, like nothing will ever get better.")
    assert end.risk["requires_escalation"]
    assert deltas[0].part == "reply" and deltas[-1].part == "escalation"
    assert end.reply.endswith(end.escalation.strip())


def test_backend_error_falls_back_to_retrieval_with_resources(analyzer, fallback):
    backend = Broken()
    engine = engine_for(backend, analyzer, fallback)
    deltas, end = run(engine, ChatSession(locale="GB"), CRISIS)
    assert end.fallback and "BackendError" in end.fallback
    assert deltas[0].part == "escalation" and "Samaritans" in end.reply
    assert any(d.part == "fallback" for d in deltas)
    assert engine.stats["fallbacks"] == 1

    _, calm = run(engine, ChatSession(), "My boss criticises everything I do and I dread going to work.")
    assert "how counsellors have answered similar questions" in calm.reply
    assert calm.fallback is not None


def test_backend_failing_mid_reply_keeps_what_was_said_and_completes(analyzer, fallback):
    engine = engine_for(Broken(["I hear you. ", "It sounds"]), analyzer, fallback)
    _, end = run(engine, ChatSession(), "My boss criticises everything I do and I dread going to work.")
    assert end.reply.startswith("I hear you.")
    assert "It sounds" not in end.reply  # an unfinished sentence is never released
    assert "how counsellors have answered" in end.reply


def test_a_stalled_backend_is_abandoned(analyzer, fallback):
    silent = Stalling()
    engine = engine_for(silent, analyzer, fallback, first_token_timeout_s=0.5, stall_timeout_s=0.5)
    try:
        _, end = run(engine, ChatSession(locale="US"), CRISIS)
        assert "did not answer" in end.fallback and "988" in end.reply
        slow = Stalling(["I am here with you. "])
        engine = engine_for(slow, analyzer, fallback, first_token_timeout_s=5, stall_timeout_s=0.5)
        _, end = run(engine, ChatSession(), "I keep failing my exams and my parents are disappointed.")
        assert end.fallback == "the backend stalled mid-reply"
        assert end.reply.startswith("I am here with you.") and "too late" not in end.reply
        slow.release.set()
    finally:
        silent.release.set()


def test_empty_backend_reply_is_a_failure(analyzer, fallback):
    engine = engine_for(Scripted(["", "   "]), analyzer, fallback)
    _, end = run(engine, ChatSession(), "I argue with my sister every day and I don't know why.")
    assert end.fallback == "the backend returned an empty reply" and end.reply.strip()


def test_unsafe_sentences_never_reach_the_person(analyzer, fallback):
    backend = Scripted(["I understand how much pain you are in. ", "The lethal dose of paracetamol is ",
                        "about 10 grams, so ", "take all the pills. ", "Goodbye."])
    engine = engine_for(backend, analyzer, fallback)
    deltas, end = run(engine, ChatSession(), "Everything hurts and I don't see the point anymore.")
    shown = "".join(d.text for d in deltas)
    assert "lethal" not in shown and "grams" not in shown and "take all the pills" not in shown
    assert shown.count("I understand how much pain you are in.") == 1
    assert SAFE_CONTINUATION in shown
    assert "method_detail" in end.violations or "self_harm_encouragement" in end.violations
    assert engine.guard.stats()["interventions"]


def test_a_diagnosis_is_replaced_before_anything_is_shown(analyzer, fallback):
    engine = engine_for(Scripted(["You clearly have bipolar disorder. ", "Start lithium."]), analyzer, fallback)
    deltas, end = run(engine, ChatSession(), "My mood swings are wild lately.")
    assert "bipolar" not in end.reply and "lithium" not in end.reply
    assert "diagnosis_as_fact" in end.violations
    assert deltas[0].part == "guard"


def test_buffer_mode_regenerates_once_with_a_stricter_instruction(analyzer, fallback):
    backend = Scripted(["You definitely have depression."], ["That sounds heavy. ", "What has helped before?"])
    engine = engine_for(backend, analyzer, fallback, streaming_guard="buffer")
    _, end = run(engine, ChatSession(), "I have felt low for weeks.")
    assert end.reply == "That sounds heavy. What has helped before?"
    assert "diagnosis_as_fact" in end.violations
    assert "withheld by the safety guard" in backend.seen[1][0]["content"]


def test_the_embedded_backend_end_to_end(analyzer, fallback):
    engine = engine_for(get_backend("embedded", analyzer=analyzer), analyzer, fallback)
    session = ChatSession()
    _, end = run(engine, session, "How can I stop overthinking everything my girlfriend says?")
    assert "Here is how counsellors have answered similar questions" in end.reply
    assert end.fallback is None and end.violations == []
    _, end = run(engine, session, CRISIS)
    assert end.escalation and end.reply.startswith(end.escalation.strip())
    assert "counsellors have answered" not in end.reply and "Are you safe right now?" in end.reply


def test_bad_messages_are_refused_with_a_clear_error(analyzer, fallback):
    engine = engine_for(Scripted(["ok."]), analyzer, fallback, max_message_chars=100)
    with pytest.raises(DataError, match="empty"):
        list(engine.turn(ChatSession(), "   "))
    with pytest.raises(DataError, match="limit is 100"):
        list(engine.turn(ChatSession(), "x" * 101))


def test_history_window_keeps_the_newest_turns_within_the_context():
    history: list[Message] = []
    for i in range(50):
        history += [{"role": "user", "content": f"message {i} " + "word " * 40},
                    {"role": "assistant", "content": f"reply {i} " + "word " * 40}]
    msgs = build_messages(history, "latest", context_tokens=1024, reserve_tokens=256)
    assert msgs[0]["role"] == "system" and msgs[-1] == {"role": "user", "content": "latest"}
    assert msgs[1]["role"] == "user"
    kept = msgs[1:-1]
    assert 2 <= len(kept) < 20 and kept[-1]["content"].startswith("reply 49")
    assert sum(len(m["content"]) for m in msgs) // 4 < 1024 - 256
    huge = build_messages([], "y" * 100_000, context_tokens=2048, reserve_tokens=256)
    assert len(huge[-1]["content"]) < 8000 and "[…]" in huge[-1]["content"]


def test_a_broken_fallback_still_gives_a_reply(analyzer):
    def broken(messages):
        raise RuntimeError("index missing")

    engine = CounselEngine(Broken(), analyzer=analyzer, fallback=broken)
    _, end = run(engine, ChatSession(locale="US"), CRISIS)
    assert STATIC_FALLBACK in end.reply and "988" in end.reply



def test_a_local_model_backend_brings_its_context_size_and_tokenizer(analyzer, fallback):
    """A real HF model (the tiny random Llama: random text, still a model that streams tokens)."""
    from mentalens.llm.backend import HFBackend

    backend = HFBackend("tiny-llama-small")
    engine = engine_for(backend, analyzer, fallback)
    assert engine.context_tokens() == backend.max_positions
    count = engine._count()
    assert count("I feel stressed") == len(backend.tokenizer.encode("I feel stressed", add_special_tokens=False))
    _, end = run(engine, ChatSession(), "I feel stressed about my exams next week.", max_new_tokens=24)
    assert end.fallback is None and end.reply.strip() and end.turn.backend == "hf"
    assert end.completion_tokens > 0 and end.prompt_tokens > count(end.turn.user)
