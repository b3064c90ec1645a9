"""The embedded, offline counsellor: how counsellors have answered similar questions.

CounselChat questions (title + text) are embedded with the analyzer's own encoder (one encoder in memory)
and cached keyed by the CounselChat file's checksum. A message is answered by its nearest questions
(cosine); among their answers one is chosen by similarity, upvotes and length, scrubbed of identities
(counsel.text), and presented honestly: an opening that reflects the person's message and the emotions the
analyzer found, then "Here is how counsellors have answered similar questions", an excerpt, a note that it
was written for someone else, and a gentle question back. It never claims to be a therapist's reply to them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mentalens.backend import GenerationConfig, Message
from mentalens.counsel import text as textmod
from mentalens.counsel.analysis import DIFFICULT, analyze_message, top_emotions, words_for
from mentalens.errors import DataError

INDEX_VERSION = 1
# characters of title + question embedded: 400 keeps the topic agreement of 700 (bench/counsel_retrieval.py,
# CounselChat val against train: top-1 0.506 vs 0.518, i.e. one of 81 questions; top-5 0.852 vs 0.840) and
# embeds 14% fewer characters (240k vs 279k), the longest questions being the costliest to encode
QUESTION_CHARS = 400

TOPIC_WORDS = {
    "counseling-fundamentals": "starting or being in counselling",
    "family-conflict": "family conflict",
    "relationship-dissolution": "breakups",
    "behavioral-change": "changing habits",
    "anger-management": "anger",
    "lgbtq": "sexual orientation and gender identity",
    "substance-abuse": "substance use",
    "professional-ethics": "what to expect from a therapist",
    "workplace-relationships": "relationships at work",
    "social-relationships": "friendships and social life",
    "grief-and-loss": "grief and loss",
    "sleep-improvement": "sleep",
    "eating-disorders": "eating and body image",
    "legal-regulatory": "legal questions about therapy",
    "children-adolescents": "children and teenagers",
    "human-sexuality": "sexuality",
    "military-issues": "military life",
    "diagnosis": "diagnosis",
}

QUESTIONS_BACK = (
    "What feels hardest about this for you right now?",
    "How have you been coping with this so far?",
    "Does any of this fit what you are going through?",
    "Is there someone in your life you feel able to talk to about this?",
    "What would feel like a small step forward for you?",
    "What would you most like to be different?",
    "How long has this been weighing on you?",
)

SMALL_TALK = {
    "greeting": (
        re.compile(r"^\s*(hi|hello|hey|good (morning|afternoon|evening)|hiya|yo)\b[\s!.,]*(there)?[\s!.]*$", re.I),
        "Hello, I'm glad you're here. I'm an AI companion, not a therapist, but I'm here to listen. "
        "What's been on your mind?",
    ),
    "thanks": (
        re.compile(
            r"^\s*(thanks|thank you|thx|ty)( so much| a lot| very much)?"
            r"( for (that|this|listening|your help|the help|everything))?[\s!.]*$",
            re.I,
        ),
        "You're welcome. I'm glad if any of this helped. Is there anything else on your mind you'd like to talk "
        "through?",
    ),
    "bye": (
        re.compile(r"^\s*(bye|goodbye|good night|see you( later)?|talk (to you )?later)[\s!.]*$", re.I),
        "Take good care of yourself. If things get hard, please reach out to someone you trust or a helpline. "
        "I'm here whenever you want to talk again.",
    ),
}


@dataclasses.dataclass
class RetrievalConfig:
    """How the retrieval counsellor picks and shows answers (thresholds chosen on CounselChat's val split)."""

    k_questions: int = 5  # nearest questions whose answers compete
    # below this no question is similar enough to quote: the 5th percentile of CounselChat val questions' nearest
    # train question (95% of real questions get a quote; 98.5% of neutral GoEmotions comments get none), measured
    # by bench/counsel_retrieval.py for the analyzer v3 (LoRA-tuned) encoder: 0.5432 at 400 characters (v2's
    # frozen encoder: 0.4775; the tuned encoder's similarities run higher, so the threshold moved with it)
    min_similarity: float = 0.54
    excerpt_chars: int = 600
    upvote_weight: float = 0.03  # per log(1 + upvotes)
    short_answer_chars: int = 160  # excerpts shorter than this are penalised
    chunk_words: int = 3  # words per streamed delta
    context_chars: int = 80  # a last message shorter than this is searched together with the one before


@dataclasses.dataclass(frozen=True)
class Answer:
    """One counsellor answer ready to show: scrubbed excerpt, no identity."""

    question_id: str
    topic: str
    excerpt: str
    upvotes: int


@dataclasses.dataclass(frozen=True)
class RawAnswer:
    """An answer as loaded (scrubbed only when its question is retrieved: most never are)."""

    question_id: str
    topic: str
    text: str
    upvotes: int


@dataclasses.dataclass
class Hit:
    question_id: str
    title: str
    topic: str
    similarity: float


def counselchat_file(data: str | Path | None = None) -> Path:
    """The CounselChat CSV that `load_counselchat` would read (for its checksum)."""
    from mentalens.data.counselling import _counselchat_path

    path = _counselchat_path(data)
    if not path.is_file():
        raise DataError(
            f"CounselChat file not found at {path}: run `mentalens data fetch --only counselchat` "
            "or pass --data DIR (a folder such as ../shared/data)"
        )
    return path


def file_checksum(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encoder_fingerprint(analyzer: Any) -> str:
    """Identifies the encoder so an index is never reused with another one's vectors."""
    for attr in ("encoder_fingerprint", "fingerprint"):
        value = getattr(analyzer, attr, None)
        if callable(value):
            value = value()
        if value:
            return str(value)
    encoder = getattr(analyzer, "encoder", None)
    config = getattr(encoder, "config", None)
    return f"{type(analyzer).__name__}:{getattr(config, 'model', 'default')}"


class RetrievalIndex:
    """Embedded CounselChat questions and their scrubbed answers."""

    def __init__(
        self,
        question_ids: list[str],
        embeddings: np.ndarray,
        titles: dict[str, str],
        topics: dict[str, str],
        answers: dict[str, list[RawAnswer]],
        checksum: str,
        path: Path | None = None,
    ):
        self.question_ids = question_ids
        self.embeddings = embeddings.astype(np.float32, copy=False)
        self.titles, self.topics, self.raw_answers = titles, topics, answers
        self.checksum = checksum
        self.path = path
        self._quotable: dict[str, list[Answer]] = {}
        self._lock = threading.Lock()

    def quotable(self, question_id: str) -> list[Answer]:
        """The question's answers as scrubbed excerpts that pass the output guard on their own (no diagnosis
        stated as fact, no medication advice, no claim to be a clinician), so a quote never trips it; answers
        whose writer says they are not a professional are left out (they are not "how counsellors answered")."""
        with self._lock:
            if question_id in self._quotable:
                return self._quotable[question_id]
        from mentalens.safety.guard import check_reply

        out = []
        for raw in self.raw_answers.get(question_id, []):
            if textmod.NOT_A_COUNSELLOR.search(raw.text):
                continue
            ex = textmod.excerpt(raw.text)
            if ex and not check_reply(ex):
                out.append(Answer(raw.question_id, raw.topic, ex, raw.upvotes))
        with self._lock:
            self._quotable[question_id] = out
        return out

    def __len__(self) -> int:
        return len(self.question_ids)

    @staticmethod
    def cache_path(checksum: str, fingerprint: str) -> Path:
        from mentalens.paths import cache_dir

        key = hashlib.sha256(f"{checksum}|{fingerprint}|{INDEX_VERSION}|{QUESTION_CHARS}".encode()).hexdigest()
        return cache_dir("counsel") / f"counselchat-{key[:20]}.npz"

    @classmethod
    def load_or_build(
        cls,
        embed: Callable[[list[str]], np.ndarray],
        fingerprint: str,
        data: str | Path | None = None,
        rebuild: bool = False,
        progress: Callable[[int, int], None] | None = None,
        question_filter: Callable[[Any], bool] | None = None,
    ) -> RetrievalIndex:
        """The cached index for this CounselChat file and encoder, built (and cached) when missing.

        question_filter restricts the indexed records (e.g. the train split, for an honest evaluation);
        a filtered index is not cached.
        """
        from mentalens.data import load_counselchat

        path = counselchat_file(data)
        checksum = file_checksum(path)
        records = load_counselchat(path)
        if question_filter is not None:
            records = [r for r in records if question_filter(r)]
            if not records:
                raise DataError(f"{path}: no CounselChat question passes the filter")
        titles, topics, contexts, answers = _group(records)
        qids = list(contexts)
        cache = None if question_filter is not None else cls.cache_path(checksum, fingerprint)
        embeddings = None
        if cache is not None and cache.is_file() and not rebuild:
            embeddings = _read_cache(cache, qids)
        if embeddings is None:
            embeddings = _embed_all([contexts[q][:QUESTION_CHARS] for q in qids], embed, progress)
            if cache is not None:
                _write_cache(cache, qids, embeddings, checksum, fingerprint)
        return cls(qids, embeddings, titles, topics, answers, checksum, cache)

    def search(self, vector: np.ndarray, k: int = 5) -> list[Hit]:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        v = v / max(float(np.linalg.norm(v)), 1e-12)
        sims = self.embeddings @ v
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top])]
        return [
            Hit(self.question_ids[i], self.titles[self.question_ids[i]], self.topics[self.question_ids[i]],
                float(sims[i]))
            for i in top
        ]


def _group(
    records: Sequence[Any],
) -> tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, list[RawAnswer]]]:
    """Questions (title, topic, text) and their answers, by question id."""
    titles: dict[str, str] = {}
    topics: dict[str, str] = {}
    contexts: dict[str, str] = {}
    answers: dict[str, list[RawAnswer]] = {}
    for r in records:
        if r.question_id not in contexts:
            contexts[r.question_id] = r.context
            titles[r.question_id] = r.title
            topics[r.question_id] = r.topic
        answers.setdefault(r.question_id, []).append(RawAnswer(r.question_id, r.topic, r.answer, r.upvotes))
    # every question is embedded (the cache depends on the file alone); one without a quotable answer is simply
    # never chosen
    return titles, topics, contexts, answers


def _embed_all(texts: list[str], embed: Callable[[list[str]], np.ndarray], progress) -> np.ndarray:
    out = []
    step = 64
    for i in range(0, len(texts), step):
        out.append(np.asarray(embed(texts[i : i + step]), dtype=np.float32))
        if progress:
            progress(min(i + step, len(texts)), len(texts))
    m = np.concatenate(out, axis=0)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def _read_cache(path: Path, qids: list[str]) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if [str(q) for q in z["question_ids"]] != qids:
                return None
            return z["embeddings"].astype(np.float32)
    except (OSError, KeyError, ValueError):
        return None  # a corrupt or foreign cache is rebuilt, never trusted


def _write_cache(path: Path, qids: list[str], emb: np.ndarray, checksum: str, fingerprint: str) -> None:
    from mentalens.data.io import atomic_write

    meta = json.dumps({"version": INDEX_VERSION, "checksum": checksum, "encoder": fingerprint, "count": len(qids)})
    with atomic_write(path, "wb") as f:
        np.savez(f, question_ids=np.array(qids), embeddings=emb.astype(np.float32), meta=np.array(meta))


_INDEXES: dict[tuple[str, str], RetrievalIndex] = {}
_INDEX_LOCK = threading.Lock()


class RetrievalCounsellor:
    """Answers a chat with how counsellors have answered similar questions (the `embedded` backend's voice).

    `analyzer` provides both the encoder (`embed`) and the emotions (`analyze`); default: the shared one.
    """

    def __init__(
        self,
        analyzer: Any = None,
        data: str | Path | None = None,
        config: RetrievalConfig | None = None,
        index: RetrievalIndex | None = None,
    ):
        if analyzer is None:
            from mentalens.analyze import get_analyzer

            analyzer = get_analyzer()
        self.analyzer = analyzer
        self.config = config or RetrievalConfig()
        self.data = data
        self._index = index

    @property
    def index(self) -> RetrievalIndex:
        """The index, shared by every counsellor of this process with the same data and encoder."""
        if self._index is None:
            fingerprint = encoder_fingerprint(self.analyzer)
            key = (str(counselchat_file(self.data).resolve()), fingerprint)
            with _INDEX_LOCK:
                if key not in _INDEXES:
                    _INDEXES[key] = RetrievalIndex.load_or_build(self.analyzer.embed, fingerprint, data=self.data)
                self._index = _INDEXES[key]
        return self._index

    # -- what the backend calls -------------------------------------------------------------------------------
    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        """Yield the reply in small word groups (the whole reply is composed first: it is retrieval)."""
        reply = self.reply(messages, config)
        yield from chunk_words(reply, self.config.chunk_words)

    def reply(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> str:
        user = [m["content"] for m in messages if m.get("role") == "user" and str(m.get("content", "")).strip()]
        if not user:
            return "I'm here to listen. What would you like to talk about?"
        message = user[-1].strip()
        previous = [m["content"] for m in messages if m.get("role") == "assistant"]
        max_chars = config.max_new_tokens * 4 if config is not None else None
        if _at_risk(messages):
            text = self.safety_reply(message)
        else:
            text = self.compose(message, user[:-1], previous, max_chars=max_chars)
        return text if max_chars is None else cap_tokens(text, config.max_new_tokens)

    # -- composition ------------------------------------------------------------------------------------------
    def find(self, message: str, earlier: Sequence[str] = ()) -> list[Hit]:
        query = message
        if len(message) < self.config.context_chars and earlier:
            query = f"{earlier[-1]} {message}"
        vector = np.asarray(self.analyzer.embed([query]))[0]
        return self.index.search(vector, self.config.k_questions)

    def choose(self, hits: Sequence[Hit], avoid: Sequence[str] = ()) -> tuple[Hit, Answer] | None:
        """The best answer among the nearest questions: similar, upvoted, substantial, not shown before."""
        cfg = self.config
        best: tuple[float, Hit, Answer] | None = None
        for hit in hits:
            if hit.similarity < cfg.min_similarity:
                continue
            for ans in self.index.quotable(hit.question_id):
                if any(ans.excerpt[:80] in prev for prev in avoid):
                    continue
                score = hit.similarity + cfg.upvote_weight * math.log1p(max(ans.upvotes, 0))
                if len(ans.excerpt) < cfg.short_answer_chars:
                    score -= 0.1
                if best is None or score > best[0]:
                    best = (score, hit, ans)
        return None if best is None else (best[1], best[2])

    def safety_reply(self, message: str) -> str:
        """At moderate or higher risk no stranger's answer is quoted and no emotion label is guessed: the reply
        stays with the person's pain and safety (the session engine adds mentalens' escalation text with crisis
        resources around it)."""
        quote = textmod.reflect_quote(message)
        opening = (f"When you say “{quote}”, I can hear how much pain you are in." if quote
                   else "I can hear how much pain you are in.")
        return (
            f"{opening} I'm really glad you told me. Your safety matters more than anything else right now, and "
            "you deserve support from someone who can be with you. Are you safe right now? Is there someone you "
            "trust who could stay with you, or could you call a crisis line while we talk?"
        )

    def compose(
        self,
        message: str,
        earlier: Sequence[str] = (),
        previous_replies: Sequence[str] = (),
        max_chars: int | None = None,
    ) -> str:
        """The reply; with max_chars the quote is shortened (whole sentences) so the reply fits, or left out."""
        for pattern, reply in SMALL_TALK.values():
            if pattern.match(message):
                return reply
        analysis = _safe_analyze(self.analyzer, message)
        emotions = [label for label, _ in top_emotions(analysis, k=2, min_score=0.05)]
        opening = reflect(message, emotions)
        picked = self.choose(self.find(message, earlier), previous_replies)
        question = pick_question(message, previous_replies)
        no_quote = (
            f"{opening} I'd like to understand this better before offering anything. "
            f"Could you tell me a bit more about what's been happening? {question}"
        )
        if picked is None:
            return no_quote
        hit, answer = picked
        topic = TOPIC_WORDS.get(hit.topic, hit.topic.replace("-", " ")) if hit.topic else ""
        about = f" about {topic}" if topic else ""
        head = f"{opening}\n\nHere is how counsellors have answered similar questions{about}:\n\n"
        tail = f"\n\nThat was written for someone else's question, so not all of it may fit you. {question}"
        quote = answer.excerpt
        if max_chars is not None and len(head) + len(quote) + len(tail) + 2 > max_chars:
            quote = _shorten(quote, max_chars - len(head) - len(tail) - 2)
            if not quote:
                return no_quote
        return f"{head}“{quote}”{tail}"


def _at_risk(messages: Sequence[Message]) -> bool:
    """Moderate or higher suicide/self-harm risk in the conversation (the safety layer's rules)."""
    from mentalens import safety

    convo = [m for m in messages if m.get("role") in ("user", "assistant")]
    try:
        level = safety.assess(convo[-40:]).level
    except Exception:
        return False
    return level >= "moderate"


def _shorten(excerpt: str, budget: int) -> str:
    """The excerpt's first sentences within budget characters ("" when not even one sentence fits well)."""
    if budget < 120:
        return ""
    out = ""
    for sentence in textmod.split_sentences(excerpt):
        if len(out) + len(sentence) + 1 > budget:
            break
        out = f"{out} {sentence}".strip()
    return out


def _safe_analyze(analyzer: Any, message: str) -> Any:
    try:
        return analyze_message(analyzer, message)
    except Exception:  # the reply must not depend on the analysis working
        return None


def speaks_of_risk(sentence: str) -> bool:
    """Whether a sentence speaks of suicide, self-harm or an attempt, even past, negated or joked about (the
    safety rules' constructs). Such a sentence is never quoted back beside an emotion word: "When you say 'five
    years ago I tried to end my life', I can hear joy" answers a recovery story with the wrong sentence."""
    try:
        from mentalens.safety.rules import SELF_RISK, analyze_message
    except Exception:  # the safety layer unavailable: do not quote rather than risk it
        return True
    return any(c.construct in SELF_RISK or c.construct == "history" for c in analyze_message(sentence).cues)


def reflect(message: str, emotions: Sequence[str]) -> str:
    """An opening that reflects the person's words and the emotions the analyzer found (never a label)."""
    words = words_for(list(emotions))
    quote = textmod.reflect_quote(message, skip=speaks_of_risk)
    difficult = any(e in DIFFICULT for e in emotions)
    if words:
        feeling = " and ".join(words[:2])
        if quote:
            first = f"When you say “{quote}”, I can hear {feeling} in your words."
        else:
            first = f"It sounds like you're feeling a lot of {feeling} right now."
    elif quote:
        first = f"Thank you for telling me this. When you say “{quote}”, it sounds like it matters a lot to you."
    else:
        first = "Thank you for sharing this with me."
    if difficult:
        return f"{first} That sounds really hard, and it makes sense to want some support with it."
    return first


def pick_question(message: str, previous_replies: Sequence[str] = ()) -> str:
    """A gentle question back, varied across the conversation (deterministic for the same message)."""
    start = int(hashlib.sha256(message.encode()).hexdigest(), 16) % len(QUESTIONS_BACK)
    for i in range(len(QUESTIONS_BACK)):
        q = QUESTIONS_BACK[(start + i) % len(QUESTIONS_BACK)]
        if not any(q in prev for prev in previous_replies):
            return q
    return QUESTIONS_BACK[start]


def chunk_words(text: str, n: int = 3) -> Iterator[str]:
    """Split a reply into deltas of about n words, whitespace kept, so that "".join(deltas) == text."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    for i in range(0, len(tokens), max(n, 1)):
        yield "".join(tokens[i : i + n])


def cap_tokens(text: str, max_new_tokens: int) -> str:
    """Honour max_new_tokens approximately (4 characters per token), cutting at a word boundary."""
    limit = max_new_tokens * 4
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip() + "…"
