"""The counselling turn: analysis, safety before, the backend's reply (guarded, with a fallback), safety after.

    for event in engine.turn(session, "I can't sleep and I feel worthless"):
        if isinstance(event, Delta): print(event.text, end="")
        else: event.turn, event.risk, event.analysis   # TurnEnd

Safety is not optional and does not depend on the backend:
- BEFORE: the whole conversation is assessed (`mentalens.safety.assess`). At high or imminent risk (or any
  flag such as harm to others or a medical emergency) the escalation text with crisis resources is the FIRST
  thing streamed, before the backend is even called. At low or moderate risk it is appended after the reply.
- DURING (streaming policy, "sentence-gated"): backend deltas are held until a sentence is complete, and the
  reply so far is checked by the output guard before that sentence is released. The person therefore never
  sees a sentence the guard rejects; latency is one sentence, not the whole reply. When the guard rejects a
  sentence, the backend is stopped and the guard's safe reply takes over (its text after what was already
  released, or a short safe continuation when it rewrote the start).
- AFTER: the output guard runs on the full reply; anything it adds (e.g. missing resources) is streamed
  as a final delta, so the concatenated deltas always equal the final reply.
- FAILURE: a backend that raises, returns nothing, or stalls beyond the timeouts is abandoned; the person gets
  the retrieval counsellor's reply (or a fixed supportive text if that fails too), and the crisis resources
  whenever risk is flagged.
"""

from __future__ import annotations

import dataclasses
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from mentalens.backend import Backend, GenerationConfig, Message
from mentalens.counsel.analysis import analyze_message, condition_signals, emotion_scores, top_emotions
from mentalens.counsel.prompt import analysis_note, approx_tokens, build_messages
from mentalens.counsel.session import RISK_ORDER, ChatSession, Turn
from mentalens.errors import DataError
from mentalens.safety.guard import check_reply

MAX_MESSAGE_CHARS = 32_000
FIRST_ESCALATION = ("high", "imminent")
STATIC_FALLBACK = (
    "I'm sorry, I couldn't put a proper reply together just now. What you're going through matters, and I'd "
    "like to hear more when you're ready. If you can, it may help to talk with someone you trust."
)
SAFE_CONTINUATION = (
    "I want to be careful here, so I'll stop there. I'm an AI and can't give that kind of advice, but I'm here "
    "to listen. How are you feeling right now?"
)
_SENTENCE_END = re.compile(r"[.!?…:](?:[\"'”’)\]]*)(?:\s+|$)|\n")


@dataclasses.dataclass
class EngineConfig:
    """Session engine settings: timeouts for the backend, context size, and how the analysis is used."""

    first_token_timeout_s: float = 60.0  # a backend silent this long is abandoned (model loading counts)
    stall_timeout_s: float = 30.0  # ... or silent this long between two deltas
    total_timeout_s: float = 180.0  # ... or still going after this long
    context_tokens: int | None = None  # None: the backend's (describe()["context_length"]) or 2048
    max_message_chars: int = MAX_MESSAGE_CHARS
    analyze: bool = True  # per-turn analysis (emotions, conditions) steering the reply and the timeline
    streaming_guard: str = "sentence"  # "sentence": release guarded sentences; "buffer": whole reply first
    locale: str | None = None

    def __post_init__(self) -> None:
        if self.streaming_guard not in ("sentence", "buffer"):
            from mentalens.errors import ConfigError

            raise ConfigError(f"streaming_guard must be 'sentence' or 'buffer', not {self.streaming_guard!r}")


@dataclasses.dataclass
class Delta:
    """A piece of the reply to show now. `part` says where it comes from (escalation | reply | guard | fallback)."""

    text: str
    part: str = "reply"
    type: str = "delta"


@dataclasses.dataclass
class TurnEnd:
    """The end of a turn: the recorded Turn, the full reply, and what the analysis and safety layer saw."""

    turn: Turn
    reply: str
    analysis: dict[str, Any] | None
    risk: dict[str, Any]
    escalation: str | None
    fallback: str | None
    violations: list[str]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    type: str = "end"

    def mentalens(self) -> dict[str, Any]:
        """The `mentalens` object of an API response."""
        from mentalens import safety

        return {
            "turn": self.turn.index,
            "analysis": self.analysis,
            "risk": self.risk,
            "escalated": self.escalation is not None,
            "escalation_text": self.escalation,
            "fallback": self.fallback,
            "guard_violations": self.violations,
            "timeline_point": {"index": self.turn.index, "emotions": self.turn.emotions,
                               "risk_level": self.turn.risk_level},
            "disclosure": getattr(safety, "AI_DISCLOSURE", ""),
            "not_a_diagnosis": getattr(safety, "NOT_A_DIAGNOSIS", ""),
        }


class BackendFailure(Exception):
    """Internal: the backend raised, stalled or returned nothing."""


class CounselEngine:
    """Runs counselling turns over any Backend, with the analyzer and the safety layer around it."""

    def __init__(
        self,
        backend: Backend,
        analyzer: Any = None,
        config: EngineConfig | None = None,
        fallback: Callable[[list[Message]], str] | None = None,
        guard: Any = None,
    ):
        from mentalens import safety

        self.backend = backend
        self.config = config or EngineConfig()
        self._analyzer = analyzer
        self._fallback = fallback
        self.guard = guard or safety.OutputGuard()
        self.stats = {"turns": 0, "fallbacks": 0, "escalations": 0, "guard_interventions": 0}
        self._stats_lock = threading.Lock()

    # -- collaborators ----------------------------------------------------------------------------------------
    @property
    def analyzer(self) -> Any:
        if self._analyzer is None and self.config.analyze:
            from mentalens.analyze import get_analyzer

            self._analyzer = get_analyzer()
        return self._analyzer

    def fallback_reply(self, messages: list[Message]) -> str:
        """What the person gets when the backend fails: retrieval, else a fixed supportive text."""
        try:
            if self._fallback is None:
                from mentalens.counsel.retrieval import RetrievalCounsellor

                counsellor = RetrievalCounsellor(analyzer=self.analyzer)
                self._fallback = counsellor.reply
            text = self._fallback(messages)
            if text and text.strip():
                return text.strip()
        except Exception:  # the fallback of the fallback: never leave the person without a reply
            pass
        return STATIC_FALLBACK

    def context_tokens(self) -> int:
        if self.config.context_tokens:
            return self.config.context_tokens
        try:
            n = self.backend.describe().get("context_length")
        except Exception:
            n = None
        n = n or getattr(self.backend, "max_positions", None)  # HFBackend: the model's position limit
        return int(n) if n else 2048

    def _count(self) -> Callable[[str], int]:
        """The backend's own token count when it has one (or its tokenizer), else 4 characters per token."""
        count = getattr(self.backend, "count_tokens", None)
        if callable(count):
            return count
        tokenizer = getattr(self.backend, "tokenizer", None)
        if tokenizer is not None and callable(getattr(tokenizer, "encode", None)):
            return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
        return approx_tokens

    def _bump(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    # -- the turn ---------------------------------------------------------------------------------------------
    def reply(self, session: ChatSession, user_message: str, generation: GenerationConfig | None = None) -> TurnEnd:
        """A whole turn without streaming."""
        end = None
        for event in self.turn(session, user_message, generation):
            if isinstance(event, TurnEnd):
                end = event
        assert end is not None
        return end

    def turn(
        self, session: ChatSession, user_message: str, generation: GenerationConfig | None = None
    ) -> Iterator[Delta | TurnEnd]:
        """Stream one turn: Delta events, then one TurnEnd (the turn is appended to the session at the end)."""
        from mentalens import safety

        message = validate_message(user_message, self.config.max_message_chars)
        generation = generation or GenerationConfig()
        locale = session.locale or self.config.locale
        history = session.messages

        analysis = self._analyze(message)
        conversation: list[Message] = [*history, {"role": "user", "content": message}]
        assessment = safety.assess(assessment_window(conversation), locale=locale)
        level = str(getattr(assessment.level, "value", assessment.level))
        flagged = bool(assessment.requires_escalation)
        escalation = safety.escalation_text(assessment, locale) if flagged else None
        first = escalation is not None and (level in FIRST_ESCALATION or _urgent_flags(assessment))

        released: list[str] = []

        def emit(text: str, part: str) -> Delta:
            released.append(text)
            return Delta(text, part)

        pre = escalation.rstrip() + "\n\n" if first else ""
        post = "\n\n" + escalation.strip() if escalation is not None and not first else ""

        def visible(body: str) -> str:  # what the person will read: the guard judges that, not the body alone
            return pre + body + post

        if first:
            self._bump("escalations")
            yield emit(pre, "escalation")

        resources = [r.contact() if hasattr(r, "contact") else str(r) for r in assessment.resources][:3]
        prompt = build_messages(
            history,
            message,
            note=analysis_note(analysis, level if flagged else "none", resources),
            context_tokens=self.context_tokens(),
            reserve_tokens=generation.max_new_tokens,
            count=self._count(),
        )

        body_start = len(pre)
        fallback_reason: str | None = None
        violations: list[str] = []
        try:
            for text, part in self._guarded_stream(prompt, generation, assessment, visible, violations):
                yield emit(text, part)
        except BackendFailure as exc:
            fallback_reason = str(exc)
            self._bump("fallbacks")
            already = "".join(released)[body_start:]
            text = self.fallback_reply(conversation)
            if check_reply(visible(already + text), assessment):
                violations.extend(self.guard.enforce(visible(already + text), assessment).violations)
                text = self.safe_body(assessment)
            yield emit(("\n\n" if already.strip() else "") + text, "fallback")

        body = "".join(released)[body_start:]
        # AFTER: the guard on the whole visible reply (counted once per turn; sentences were checked on the way)
        if not violations:
            result = self.guard.enforce(visible(body), assessment)
            if not result.ok:  # cannot happen when every sentence passed; reported, never hidden
                violations.extend([*_names(result.violations), "after_stream"])
        if post:
            self._bump("escalations")
            yield emit(post, "escalation")
        if violations:
            self._bump("guard_interventions")

        reply = "".join(released)
        turn = Turn(
            index=len(session.turns),
            user=message,
            reply=reply,
            created=time.time(),
            emotions=emotion_scores(analysis),
            risk_level=level,
            conditions=[{"task": t, "label": lb, "probability": round(p, 4)} for t, lb, p in
                        condition_signals(analysis)],
            escalated=escalation is not None,
            fallback=fallback_reason,
            guard_violations=list(dict.fromkeys(violations)),
            backend=getattr(self.backend, "name", type(self.backend).__name__),
        )
        session.turns.append(turn)
        self._bump("turns")
        count = self._count()
        yield TurnEnd(
            turn=turn,
            reply=reply,
            analysis=compact_analysis(analysis),
            risk=assessment.to_dict(),
            escalation=escalation,
            fallback=fallback_reason,
            violations=turn.guard_violations,
            finish_reason="stop",
            prompt_tokens=sum(count(m["content"]) for m in prompt),
            completion_tokens=count(reply),
        )

    # -- pieces -----------------------------------------------------------------------------------------------
    def _analyze(self, message: str) -> Any:
        if not self.config.analyze:
            return None
        try:
            return analyze_message(self.analyzer, message)
        except Exception:  # analysis steers the reply; its failure must not cost the person their reply
            return None

    def safe_body(self, assessment: Any) -> str:
        """The guard's safe reply without the escalation text (which the turn already shows)."""
        from mentalens.safety.guard import safe_reply

        calm = dataclasses.replace(assessment, level=type(assessment.level)("none"),
                                   flags=dict.fromkeys(assessment.flags, False), cues=[], resources=[])
        return safe_reply(calm)

    def _guarded_stream(
        self,
        prompt: list[Message],
        generation: GenerationConfig,
        assessment: Any,
        visible: Callable[[str], str],
        violations: list[str],
    ) -> Iterator[tuple[str, str]]:
        """Backend deltas, released sentence by sentence once the guard accepts the visible reply so far.

        In "buffer" mode the whole reply is collected first and a failing reply is regenerated once with the
        guard's stricter instruction before falling back to the guard's safe reply."""
        if self.config.streaming_guard == "buffer":
            body = "".join(self._pump(prompt, generation))
            if not body.strip():
                raise BackendFailure("the backend returned an empty reply")
            if check_reply(visible(body), assessment):
                result = self.guard.enforce(visible(body), assessment,
                                            regenerate=lambda instruction: visible(self._collect(prompt, generation,
                                                                                                 instruction)))
                violations.extend(_names(result.violations))
                if result.action == "regenerated":
                    body = _unwrap(result.reply, visible(""))
                else:
                    body = self.safe_body(assessment)
            yield from ((chunk, "reply") for chunk in _chunks(body))
            return
        buffer = ""
        released = ""
        for delta in self._pump(prompt, generation):
            if not delta:
                continue
            buffer += delta
            cut = _last_sentence_end(buffer)
            if cut == 0:
                continue
            candidate, buffer = buffer[:cut], buffer[cut:]
            if check_reply(visible(released + candidate), assessment):
                violations.extend(self.guard.enforce(visible(released + candidate), assessment).violations)
                yield _takeover(released, self.safe_body(assessment)), "guard"
                return
            released += candidate
            yield candidate, "reply"
        if not (released + buffer).strip():
            raise BackendFailure("the backend returned an empty reply")
        if buffer:
            if check_reply(visible(released + buffer), assessment):
                violations.extend(self.guard.enforce(visible(released + buffer), assessment).violations)
                yield _takeover(released, self.safe_body(assessment)), "guard"
                return
            yield buffer, "reply"

    def _collect(self, prompt: list[Message], generation: GenerationConfig, instruction: str) -> str:
        """A whole reply with the guard's stricter instruction added to the system prompt."""
        stricter = [{"role": "system", "content": prompt[0]["content"] + "\n\n" + instruction}, *prompt[1:]]
        return "".join(self._pump(stricter, generation))

    def _pump(self, prompt: list[Message], generation: GenerationConfig) -> Iterator[str]:
        """The backend's stream, run in a worker thread so that a stalled backend can be abandoned."""
        cfg = self.config
        q: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                for d in self.backend.stream(prompt, generation):
                    if stop.is_set():
                        return
                    q.put(("delta", d))
                q.put(("end", None))
            except BaseException as exc:  # reported to the consumer, which falls back
                q.put(("error", exc))

        worker = threading.Thread(target=work, name="mentalens-backend", daemon=True)
        worker.start()
        start = time.monotonic()
        first = True
        try:
            while True:
                wait = cfg.first_token_timeout_s if first else cfg.stall_timeout_s
                wait = min(wait, max(cfg.total_timeout_s - (time.monotonic() - start), 0.0))
                try:
                    kind, value = q.get(timeout=wait) if wait > 0 else q.get_nowait()
                except queue.Empty:
                    raise BackendFailure(
                        f"the backend did not answer within {wait:.0f} s" if first
                        else "the backend stalled mid-reply"
                    ) from None
                if kind == "end":
                    return
                if kind == "error":
                    raise BackendFailure(f"the backend failed ({type(value).__name__})")
                first = False
                yield str(value)
        finally:
            stop.set()


def assessment_window(conversation: list[Message], max_chars: int = 200_000) -> list[Message]:
    """The newest messages that together stay under max_chars (the safety layer's size limit is far above)."""
    kept: list[Message] = []
    size = 0
    for m in reversed(conversation):
        size += len(m["content"])
        if kept and size > max_chars:
            break
        kept.append(m)
    return kept[::-1]


def validate_message(text: Any, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """The user's message, or a DataError naming the problem and the fix."""
    if not isinstance(text, str):
        raise DataError("the message must be text")
    if not text.strip():
        raise DataError("the message is empty: type something to send")
    if len(text) > max_chars:
        raise DataError(f"the message is {len(text):,} characters long; the limit is {max_chars:,}: shorten it")
    return text.strip()


def compact_analysis(analysis: Any) -> dict[str, Any] | None:
    """The part of an analysis a chat client needs: emotions and per-task findings (no evidence text)."""
    if analysis is None:
        return None
    tasks = {}
    for name, result in (getattr(analysis, "tasks", None) or {}).items():
        tasks[name] = {
            "label": getattr(result, "label", None),
            "probability": round(float(getattr(result, "probability", 0.0) or 0.0), 4),
        }
    return {
        "emotions": [
            {"label": lb, "score": round(s, 4)}
            for lb, s in top_emotions(analysis, k=5, min_score=0.0, detected_only=False)
        ],
        "tasks": tasks,
        "warnings": list(getattr(analysis, "warnings", None) or []),
    }


def _urgent_flags(assessment: Any) -> bool:
    flags = getattr(assessment, "flags", None) or {}
    return any(flags.values())


def _names(violations: Any) -> list[str]:
    out = []
    for v in violations or []:
        out.append(str(getattr(v, "name", None) or getattr(v, "kind", None) or getattr(v, "rule", None) or v))
    return out


def _last_sentence_end(text: str) -> int:
    end = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end()
    return end


def _takeover(released: str, safe: str) -> str:
    """What follows the sentences already shown when the guard stops the backend: the safe reply when nothing
    was shown yet, else a short safe continuation."""
    if not released.strip():
        return safe
    return "\n\n" + SAFE_CONTINUATION


def _unwrap(text: str, frame: str) -> str:
    """The body of a visible reply: `frame` is visible("") = escalation before + after; remove both."""
    for cut in range(len(frame) + 1):
        pre, post = frame[:cut], frame[cut:]
        if text.startswith(pre) and text.endswith(post) and len(text) >= len(frame):
            return text[len(pre) : len(text) - len(post)]
    return text


def _chunks(text: str, n: int = 4) -> Iterator[str]:
    tokens = re.findall(r"\S+\s*|\s+", text)
    for i in range(0, len(tokens), n):
        yield "".join(tokens[i : i + n])


def risk_rank(level: str) -> int:
    return RISK_ORDER.index(level) if level in RISK_ORDER else 0
