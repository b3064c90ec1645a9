"""`assess`: one call that turns a message or a whole conversation into a RiskAssessment.

Rules decide (transparent cues, C-SSRS-style levels); the small trained classifier may only raise "none" to
"low" or ask for review, never lower what explicit cues found. Runs in about a millisecond per message and
never touches a model backend, so it holds when the backend is down.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mentalens.errors import DataError
from mentalens.safety.escalation import order_resources
from mentalens.safety.helplines import parse_locale, resources_for
from mentalens.safety.normalize import normalize
from mentalens.safety.rules import analyze_message, decide, load_lexicon
from mentalens.safety.types import FLAG_NAMES, Cue, RiskAssessment, RiskLevel

MAX_CHARS = 1_000_000  # a whole conversation; beyond this the caller should assess a window

_ES_WORDS = frozenset("que de la el y en los las me mi mis por para con una un es estoy quiero todo todos ya muy "
                      "pero porque como mas sin soy tengo voy esta hoy noche nadie vida morir nada se lo le del "
                      "al si tambien cuando hay estar ganas".split())
_EN_WORDS = frozenset("the i and to my is it you a of in that me want im this with for but be have just so "
                      "not do dont what all can about feel like was are if will its ive".split())
_ASKED_SAFETY = re.compile(
    r"(?:(?:thoughts?|think(?:ing)?)\s+(?:of|about)\s+(?:suicide|ending\s+your\s+life|killing\s+yourself|hurting\s+yourself|"
    r"self[\s-]*harm|dying|death)|suicidal|kill(?:ing)?\s+yourself|end(?:ing)?\s+your\s+(?:own\s+)?life|"
    r"hurt(?:ing)?\s+yourself|harm(?:ing)?\s+yourself|take\s+your\s+(?:own\s+)?life|quitarte\s+la\s+vida|"
    r"suicidarte|matarte|hacerte\s+dano|pensamientos\s+suicidas|(?:a|un)\s+plan\b|how\s+you\s+would\s+do\s+it|"
    r"como\s+lo\s+harias|are\s+you\s+safe|estas\s+a\s+salvo)")
_ASKED_PLAN = re.compile(r"(?:a|un)\s+plan\b|how\s+(?:you\s+would|would\s+you)\s+do\s+it|como\s+lo\s+harias|"
                         r"thought\s+about\s+how|pensado\s+como|method|metodo")
_YES = re.compile(r"^\W*(?:yes|yeah|yep|yup|yea|ya|y|sure|i\s+do|i\s+have|i\s+am|sometimes|a\s+bit|a\s+little|"
                  r"kind\s+of|kinda|maybe|i\s+think\s+so|a\s+lot|all\s+the\s+time|si|claro|a\s+veces|tal\s+vez|"
                  r"un\s+poco|mucho|todo\s+el\s+tiempo)\b(?!\s+(?:not|no|nunca)\b)")


def _content(m: Any) -> tuple[str, str]:
    """(role, text) of a str, a {"role", "content"} mapping or an object with .role/.content."""
    if isinstance(m, str):
        return "user", m
    if isinstance(m, Mapping):
        role, text = m.get("role", "user"), m.get("content", "")
    elif hasattr(m, "content"):
        role, text = getattr(m, "role", "user"), m.content
    else:
        raise DataError(f"cannot assess a {type(m).__name__}: pass a string, a list of strings or chat messages "
                        "({'role': 'user', 'content': '...'})")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise DataError(f"message content must be text, not {type(text).__name__}: pass the message as a string")
    return str(role or "user"), text


def _messages(text_or_messages: Any) -> list[tuple[str, str]]:
    if text_or_messages is None:
        raise DataError("nothing to assess: pass a message (str) or a conversation (list of messages)")
    if isinstance(text_or_messages, (bytes, bytearray)):
        raise DataError("assess() takes text, not bytes: decode it first (e.g. data.decode('utf-8'))")
    if isinstance(text_or_messages, (str, Mapping)):
        items = [text_or_messages]
    elif isinstance(text_or_messages, Sequence) or hasattr(text_or_messages, "__iter__"):
        items = list(text_or_messages)
    else:
        raise DataError(f"cannot assess a {type(text_or_messages).__name__}: pass a string or a list of messages")
    out = [_content(m) for m in items]
    total = sum(len(t) for _, t in out)
    if total > MAX_CHARS:
        raise DataError(f"conversation too long to assess ({total:,} characters, limit {MAX_CHARS:,}): "
                        "assess the most recent messages")
    return out


def detect_language(texts: Sequence[str]) -> str | None:
    """'es' or 'en' from function words (None when there is too little text to tell)."""
    es = en = 0
    for t in texts:
        n = normalize(t, correct=False).text
        for w in re.findall(r"[a-z]+", n):
            es += w in _ES_WORDS
            en += w in _EN_WORDS
        es += 2 * len(re.findall(r"[ñ¿¡]", t.lower()))
    if es == en == 0:
        return None
    if es > en:
        return "es"
    if en > es:
        return "en"
    return None


def assess(
    text_or_messages: Any,
    locale: str | None = None,
    *,
    use_classifier: bool | None = None,
    semantic: bool | None = None,
) -> RiskAssessment:
    """Assess a message or a conversation (str, list of str, or chat messages) for suicide/self-harm risk.

    locale ("US", "en-GB", "es_MX", ...; default $MENTALENS_LOCALE) picks the helplines; unknown locales get
    the global fallback. use_classifier: None = use the shipped classifier when present.
    semantic: None = the sentence-prototype layer (mentalens.safety.semantic) when its bank is shipped and
    $MENTALENS_SEMANTIC_RISK is not 0; it can only raise the level, and if it cannot load the rules decide alone.
    """
    msgs = _messages(text_or_messages)
    lex = load_lexicon()
    analyses = []
    user_texts: list[str] = []
    prev_assistant: str | None = None
    for role, text in msgs:
        if role == "user":
            idx = len(user_texts)
            user_texts.append(text)
            a = analyze_message(text, idx, lex)
            if prev_assistant is not None:
                _answer_cue(prev_assistant, text, idx, a.cues)
            analyses.append(a)
            prev_assistant = None
        elif role == "assistant":
            prev_assistant = text
    rule_level, _detail = decide(analyses)
    cues = [c for a in analyses for c in a.cues]
    flags = dict.fromkeys(FLAG_NAMES, False)
    for c in cues:
        if c.weight > 0 and c.construct in flags and (not c.contextual or _detail["context_ok"]):
            flags[c.construct] = True

    level = rule_level
    probability: float | None = None
    review = False
    if use_classifier is not False and user_texts and any(t.strip() for t in user_texts):
        from mentalens.safety.classifier import get_classifier

        clf = get_classifier(required=bool(use_classifier))
        if clf is not None:
            probability = clf.probability(" \n".join(user_texts))
            # rules decide: the classifier may raise "none" only where the rules saw nothing at all (no
            # discounted, denied or flagged cue: those are explicit rule decisions)
            rules_saw_something = bool(cues) or any(flags.values())
            if rule_level == RiskLevel.NONE and not rules_saw_something and probability >= clf.threshold_low:
                level = RiskLevel.LOW
                review = True
            elif rule_level < RiskLevel.MODERATE and probability >= clf.threshold_review:
                review = True

    semantic_level: RiskLevel | None = None
    if semantic is not False and user_texts and any(t.strip() for t in user_texts):
        from mentalens.safety import semantic as sem

        if semantic or (sem.enabled_by_default() and sem.bank_path().is_file()):
            # sentences the rules judged are left to them (sem.LEFT_TO_RULES says which): the layer reads
            # what they missed
            # ...except generic context phrases the rules could not count: read, standing only when corroborated
            left, released = sem.split_left_to_rules(cues, level, sem.left_to_rules_policy())
            found = sem.semantic_cues(user_texts, level, left, corroborate=released)
            if found is not None:
                semantic_level, sem_cues = found
                cues.extend(sem_cues)
                if semantic_level > level:  # raises only: the rules' (and classifier's) level is a floor
                    level = semantic_level
            # the last few messages read as one text, where the layer ran (it shares the layer's encoder, and its
            # retry delay after a failure): raises only
            # (every sentence the rules hold is theirs here, released context phrases too: the reader has no
            # corroboration step, and "I have the pills" alone must stay none)
            asked = _message_reader(user_texts, level, [*left, *released]) if found is not None else None
            if asked is not None:
                level, semantic_level = asked[0], max(asked[0], semantic_level or RiskLevel.NONE)
                cues.append(asked[1])

    loc = parse_locale(locale)
    language = detect_language(user_texts) or loc.language or "en"
    assessment = RiskAssessment(
        level=level, flags=flags, cues=cues, classifier_probability=probability, locale=locale or loc.raw,
        language=language if language in ("en", "es") else "en", rule_level=rule_level, review=review,
        message_count=len(user_texts), semantic_level=semantic_level,
    )
    if assessment.requires_escalation:
        topics = ("abuse",) if flags["abuse"] else None
        assessment.resources = order_resources(resources_for(assessment.locale, topics), level, flags)
    return assessment


def _message_reader(user_texts: list[str], level: RiskLevel, left: list[Cue]) -> tuple[RiskLevel, Cue] | None:
    """The message reader's raise (mentalens.safety.message_reader), or None. If it cannot load or run, the other
    layers decide: the failure is counted and logged once, without user text."""
    from mentalens.safety import message_reader
    from mentalens.safety import semantic as sem

    try:
        return message_reader.message_cue(user_texts, level, left)
    except Exception as exc:  # never let a reader failure take the rules' decision away
        sem._record_failure(exc, "message risk reader failed, the other layers decide")
        return None


def _answer_cue(question: str, reply: str, idx: int, cues: list[Cue]) -> None:
    """"Yes" to the assistant's safety question counts as the thing asked about (ideation, or a plan)."""
    q = normalize(question, correct=False).text
    if "?" not in question or not _ASKED_SAFETY.search(q):
        return
    r = normalize(reply, correct=False).text
    m = _YES.search(r)
    if not m:
        return
    construct = "plan" if _ASKED_PLAN.search(q) else "ideation"
    if re.search(r"are\s+you\s+safe|estas\s+a\s+salvo", q) and not re.search(r"suicid|kill|end|life|vida|plan", q):
        return  # "yes" to "are you safe?" is reassurance, not risk
    end = min(len(reply), max(1, m.end()))
    cues.append(Cue(construct, reply[:end].strip() or reply[:end], 0, end, idx, 1.0,
                    "answer to a safety question", "answer.yes"))
