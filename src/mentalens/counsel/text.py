"""Turning a therapist's public answer into an excerpt that is safe to show someone else.

CounselChat answers were written for another person, scraped from a web page: sentences run together
("with.Seriously"), non-breaking spaces abound, and many end with a signature ("Be well, Robin J. X, LPCC"),
a website, a phone number or an offer of sessions. The loader already drops the therapist columns; these
rules remove what is left of identities and self-promotion inside the answer text, so an excerpt never
shows a name, a credential, a URL, an e-mail or a phone number.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_JOINED = re.compile(r"(?<=[a-z0-9\)\"'’”!?])([.!?])(?=[A-Z\"“])")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_ABBREVIATIONS = ("Dr", "Mr", "Mrs", "Ms", "St", "Jr", "Sr", "vs", "e.g", "i.e", "etc", "Prof", "approx")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+|\n+")
_ENDS_WITH_ABBREVIATION = re.compile(r"\b(?:" + "|".join(re.escape(a) for a in _ABBREVIATIONS) + r")\.$")
LINK = "\u2060link\u2060"  # what a removed URL / e-mail / phone number becomes, so its sentence is dropped

URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov|info|us|io)\b(?:/\S*)?", re.I)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
PHONE = re.compile(r"(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}\b")
CREDENTIAL = re.compile(
    r"\b(?:LMFT|LPCC?|LCSW|LMSW|LCPC|LMHC|LCADC|LMAC|MFTI?|NCC|CADC|PsyD|Psy\.D|Ph\.?D|DBH|Ed\.?D|"
    r"M\.?S\.?W|M\.A\.|M\.S\.|MA|MS|MSW|LPC-S|ATR|RPT|CSAT|CST|LADC|LISW|LICSW|LCAT|CPC)\b"
)
# sentences that speak about the writer or sell something: they do not travel to another person's chat
SELF_PROMOTION = re.compile(
    r"\b(?:my (?:name is|office|practice|website|web site|blog|book|clinic|colleagues? and I|e-?mail|number)|"
    r"contact me|call me|email me|e-mail me|reach (?:out to )?me|message me|visit (?:my|our)|"
    r"free (?:consultation|session)|schedule (?:a|an) (?:appointment|session) with me|"
    r"I (?:offer|provide) (?:a )?(?:free|online|in-person)|I am a (?:licensed|certified|registered)|"
    r"I'm a (?:licensed|certified|registered)|as a (?:licensed|certified) (?:therapist|counselor|counsellor)|"
    r"in my (?:practice|office|clinic)|my clients|counselchat|this (?:site|website)|"
    r"dr\.\s*[A-Z])",
    re.I,
)
SIGN_OFF = re.compile(
    r"^(?:best(?: wishes| of luck| regards| to you)?|warm(?:ly| regards)|kind regards|regards|sincerely|cheers|"
    r"blessings|take care|good luck(?: to you)?|all the best|be well|with care|respectfully|peace|hugs|"
    r"wishing you (?:the best|well))\b[^.!?]{0,60}[.!?,]?\s*$",
    re.I,
)
# answers whose writer says they are not a professional: they cannot be shown as "how counsellors answered"
NOT_A_COUNSELLOR = re.compile(
    r"\b(?:I'?m|I am) not (?:a |an )?(?:professional|therapist|counsel+or|licensed|doctor|expert)", re.I
)
GREETING = re.compile(r"^(?:hi|hello|hey|dear)\b[^.!?]{0,40}[,.!]\s*", re.I)
# a trailing run of capitalised words after the last sentence is a name ("... Best wishes. Laura Cassity")
TRAILING_NAME = re.compile(r"(?:[.!?,]\s*|\s+)(?:-\s*)?(?:[A-Z][a-z]+\.?\s*){1,3}(?:,\s*[A-Z][\w.]*)*\s*$")


SIGNATURE = re.compile(
    r"(?:~\s*[A-Z][a-z]+|"
    r"(?i:cheering you on|best wishes|best of luck(?: to you)?|warm(?:est)? regards|warmly|sincerely|be well|"
    r"take care|kind regards|good luck|all the best|blessings|regards|best|with care|peace)"
    r"\s*[,!.~-]*\s*(?:-\s*)?(?:Dr\.?\s*)?[A-Z][a-z]+(?:\s+[A-Z]\.)?(?:\s+[A-Z][a-z'-]+)?"
    r"(?=\s*(?:$|,|P\.?S|\n|[A-Z]{2,})))"
)
# references to colleagues or to other answers on the page: names, and context the reader does not have
COLLEAGUE = re.compile(
    r"\b[A-Z][a-z]+ [A-Z][a-z]+ (?:suggested|mentioned|said|wrote|noted|recommended|pointed out)\b|"
    r"(?i:\b(?:echo|colleagues?|other (?:therapists|counselors|counsellors|answers|responses|responders)|"
    r"previous (?:answers?|responses?)|answers? above|responses? above)\b)"
)


def normalize_answer(text: str) -> str:
    """Fix the scraped text: contacts replaced by a marker, spaces after sentence ends, one space between words."""
    text = text.replace("\r", "\n")
    for pattern in (URL, EMAIL, PHONE):
        text = pattern.sub(f" {LINK} ", text)
    text = _SPACES.sub(" ", text)
    text = _JOINED.sub(r"\1 ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{2,}", "\n", text)
    return text.strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of a normalised text (rule-based: fast, deterministic, good enough for excerpts).
    "Dr." and other abbreviations do not end a sentence."""
    out: list[str] = []
    for piece in _SENTENCE_SPLIT.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if out and _ENDS_WITH_ABBREVIATION.search(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def scrub_sentence(sentence: str) -> str | None:
    """The sentence with identities removed, or None when the whole sentence must go."""
    if LINK in sentence or URL.search(sentence) or EMAIL.search(sentence) or PHONE.search(sentence):
        return None
    if SELF_PROMOTION.search(sentence) or CREDENTIAL.search(sentence) or COLLEAGUE.search(sentence):
        return None
    if SIGN_OFF.match(sentence):
        return None
    sentence = GREETING.sub("", sentence).strip()
    if len(sentence) < 3:
        return None
    return sentence[0].upper() + sentence[1:]


def clean_answer(text: str) -> list[str]:
    """The answer as scrubbed sentences: identities, contacts, sign-offs and self-promotion removed."""
    text = normalize_answer(text)
    tail_start = max(0, len(text) - 700)  # a signature (and any P.S.) sits near the end: drop it and what follows
    for cut in SIGNATURE.finditer(text, tail_start):
        if len(text) - cut.end() < 400:
            text = text[: cut.start()].rstrip(" ,~-")
            break
    sentences = split_sentences(text)
    # drop a signature block at the end: sign-off sentences and short name-only fragments
    while sentences:
        last = sentences[-1]
        if SIGN_OFF.match(last) or CREDENTIAL.search(last) or _looks_like_name(last):
            sentences.pop()
            continue
        stripped = TRAILING_NAME.sub(lambda m: m.group(0)[0] if m.group(0)[0] in ".!?" else "", last).strip()
        if stripped != last and len(stripped) > 20 and stripped[-1:] in ".!?":
            sentences[-1] = stripped
        break
    kept = [s for s in (scrub_sentence(s) for s in sentences) if s]
    return kept


def _looks_like_name(sentence: str) -> bool:
    words = sentence.strip(" .,-").split()
    return 0 < len(words) <= 4 and all(w[:1].isupper() for w in words) and not sentence.rstrip().endswith("?")


def excerpt(text: str, max_chars: int = 600, min_sentences: int = 2) -> str:
    """The opening of a cleaned answer, whole sentences only, about max_chars long."""
    out: list[str] = []
    size = 0
    for s in clean_answer(text):
        if out and size + len(s) > max_chars and len(out) >= min_sentences:
            break
        if not out and len(s) > max_chars:  # one very long sentence: cut at a word boundary
            cut = s[:max_chars].rsplit(" ", 1)[0].rstrip(",;:")
            return cut + "…"
        out.append(s)
        size += len(s) + 1
    return " ".join(out)


def reflect_quote(text: str, max_chars: int = 110, skip: Callable[[str], bool] | None = None) -> str | None:
    """A short sentence of the person's own message to reflect back, or None when none is short enough;
    sentences for which `skip` says True are never chosen."""
    for s in split_sentences(normalize_answer(text)):
        s = s.strip(" \"'")
        if 12 <= len(s) <= max_chars and not s.endswith("?") and not (skip and skip(s)):
            return s.rstrip(".!")
    return None
