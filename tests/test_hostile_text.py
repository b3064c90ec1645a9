"""Hostile text (hypothesis): the IMHI label parser, the risk rules, the output guard and the redactor take any
string, never raise, and keep their invariants (a label of the task or None; a RiskLevel; redaction leaves no
e-mail address, URL or phone number behind and is idempotent).

The checks are plain functions over one input, so `tests/reliability/test_hostile_deep.py` runs the very same
properties with far more (random) examples; here they are derandomised and small enough for `make test`.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mentalens.safety import OutputGuard, RiskAssessment, RiskLevel, assess, redact
from mentalens.safety.guard import VIOLATIONS, check_reply
from mentalens.tasks import all_tasks, detect_task

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# -- strategies -------------------------------------------------------------------------------------------------
# Text that looks like what people and models write (words, punctuation, digits, the parser's and the rules'
# own vocabulary) mixed with arbitrary unicode, control characters and surrogate-free junk.
VOCAB = ("yes", "no", "not", "Reasoning:", "depression", "suicide", "anxiety", "ptsd", "bipolar", "stress",
         "the poster", "suffers from", "kill myself", "pills", "tonight", "I", "want to die", "overdose", "mg",
         "lethal dose", "You have", "I am a therapist", "take", "sertraline", "988", "crisis", "Don't", "never",
         "\n", ".", "!", "?", ",", ":", "'", '"', "*", "#", "—", "’", "é", "ñ", "😢", "\u200b", "\x00", "\r\n")
words = st.one_of(st.sampled_from(VOCAB), st.text(max_size=12), st.from_regex(r"[A-Za-z]{1,9}", fullmatch=True),
                  st.integers(-10**6, 10**9).map(str))
sentences = st.lists(words, max_size=40).map(" ".join)
any_text = st.one_of(st.text(max_size=400), sentences, st.binary(max_size=200).map(
    lambda b: b.decode("utf-8", errors="replace")))

# Personal data that must never survive redaction, in shapes people write it.
_local = st.from_regex(r"[a-z][a-z0-9._+-]{0,14}[a-z0-9]", fullmatch=True).filter(lambda s: ".." not in s)
emails = st.builds(lambda user, host, tld: f"{user}@{host}.{tld}", _local,
                   st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
                   st.sampled_from(["com", "org", "net", "co.uk", "io", "de", "edu", "es"]))
urls = st.builds(lambda scheme, host, path: f"{scheme}{host}.com/{path}", st.sampled_from(["http://", "https://",
                 "www."]), st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
                 st.from_regex(r"[A-Za-z0-9_/?=&-]{0,20}", fullmatch=True))
_d = st.integers(0, 9).map(str)


def _digits(n: int):
    return st.lists(_d, min_size=n, max_size=n).map("".join)


phones = st.one_of(
    st.builds(lambda a, b, c: f"({a}) {b}-{c}", _digits(3), _digits(3), _digits(4)),  # (555) 123-4567
    st.builds(lambda a, b, c: f"{a}-{b}-{c}", _digits(3), _digits(3), _digits(4)),  # 555-123-4567
    st.builds(lambda cc, a, b: f"+{cc} {a} {b}", st.sampled_from(["1", "44", "34", "49", "61"]), _digits(4),
              _digits(6)),  # +44 7700 900123
    st.builds(lambda a, b, c, d: f"{a} {b} {c} {d}", _digits(3), _digits(2), _digits(2), _digits(2)),  # 612 34 56 78
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", _digits(3), _digits(3), _digits(4)),  # 555.123.4567
    st.builds(lambda a, b, c: f"+1-{a}-{b}-{c}", _digits(3), _digits(3), _digits(4)),  # +1-415-555-0134
    st.builds(lambda a, b: f"0{a} {b}", _digits(4), _digits(6)),  # 07700 900123
)
pii = st.one_of(emails, urls, phones)
# free text around the personal data: no characters that would glue themselves onto it (a digit or a letter
# right next to a phone number makes it another number; that is the text's meaning, not a leak)
filler = st.lists(st.one_of(st.sampled_from(VOCAB[:34]), st.from_regex(r"[A-Za-z]{1,9}", fullmatch=True)),
                  max_size=8).map(" ".join)

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
TASKS = all_tasks()


# -- the checks (one input each; shared with the deep reliability run) ------------------------------------------
def check_parse(text: str) -> None:
    for task in TASKS:
        label = task.parse(text)
        assert label is None or label in task.labels, (task.name, label)
    found = detect_task(text)
    assert found is None or found[0] in TASKS


def check_assess(text: str) -> None:
    for subject in (text, [{"role": "user", "content": text}], [text, "I am fine", text]):
        a = assess(subject)
        assert isinstance(a, RiskAssessment) and isinstance(a.level, RiskLevel)
        assert a.requires_escalation in (True, False)
        if a.level >= RiskLevel.HIGH:  # crisis resources whenever the level calls for escalation
            assert a.requires_escalation and a.resources
        a.to_dict()


def check_guard(text: str) -> None:
    for assessment in (None, assess(text), assess("I am going to kill myself tonight")):
        found = check_reply(text, assessment)
        assert set(found) <= set(VIOLATIONS)
        result = OutputGuard().enforce(text, assessment)
        assert result.ok == (not found)
        # whatever the guard shows instead is itself clean
        assert result.ok or not check_reply(result.reply, assessment), (result.reply, assessment)


def check_redact(text: str) -> None:
    once = redact(text)
    assert isinstance(once, str)
    assert not EMAIL_RE.search(once), once
    assert not URL_RE.search(once), once
    assert redact(once) == once  # idempotent: placeholders and what is left are never redacted again


def check_redact_pii(parts: tuple[str, str, str, str]) -> None:
    before, (pre, item, post), after, _ = parts
    text = f"{before} {pre}{item}{post} {after}".strip()
    out = redact(text)
    assert item not in out, (item, out)
    assert not EMAIL_RE.search(out) and not URL_RE.search(out), out
    assert redact(out) == out


# PII as people write it inside sentences: in brackets, quotes, markdown links, at the end of a sentence
wrapped = st.builds(lambda pre, item, post: (pre, item, post), st.sampled_from(["", "(", "<", '"', "'", "[me](",
                    "mailto:", "tel:", "email: ", "call ", "at ", "\n", "—"]), pii,
                    st.sampled_from(["", ")", ">", '"', "'", ".", ",", "!", "?", ";", ":", "\n", " x", "…"]))
pii_texts = st.tuples(filler, wrapped, filler, st.just(""))


# -- the tests --------------------------------------------------------------------------------------------------
@FAST
@given(any_text)
def test_the_label_parser_takes_any_text(text):
    check_parse(text)


@FAST
@given(any_text)
def test_risk_assessment_takes_any_text(text):
    check_assess(text)


@FAST
@given(any_text)
def test_the_output_guard_takes_any_text_and_its_replacement_is_clean(text):
    check_guard(text)


@FAST
@given(any_text)
def test_redaction_takes_any_text_leaves_no_address_and_is_idempotent(text):
    check_redact(text)


@settings(FAST, max_examples=150)
@given(pii_texts)
def test_no_email_url_or_phone_survives_redaction(parts):
    check_redact_pii(parts)


def test_the_strategies_reach_the_interesting_inputs():
    """The properties above are only worth something if the generated text hits risk, labels and PII."""
    assert assess("I am going to kill myself tonight, I have the pills ready").level >= RiskLevel.HIGH
    assert redact("mail me at a.b@c.org") == "mail me at [EMAIL]"
    assert any(t.parse("Reasoning: yes, the poster suffers from depression.") for t in TASKS)


def test_a_wish_to_die_with_a_time_or_the_means_at_hand_is_not_low():
    """Found while writing these tests: a passive wish plus "tonight" or "I have the pills" stayed LOW, so the
    crisis text came after the model's reply instead of before it. A wish alone stays low; pills alone stay none."""
    for text in ("I want to die tonight, I have the pills", "i wanna die right now",
                 "I want to die. I have a bottle of pills in front of me", "I have all my pills and I want to die"):
        assert assess(text).level >= RiskLevel.HIGH, text
    assert assess("I want to die tonight, I have the pills").level == RiskLevel.IMMINENT
    assert assess("sometimes I want to die").level == RiskLevel.LOW
    assert assess("I have the pills for my headache").level == RiskLevel.NONE
    assert assess("I have the pills").level == RiskLevel.NONE
