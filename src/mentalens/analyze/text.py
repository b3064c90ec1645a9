"""Text preparation for the analyzer: clean bad input into a defined form and split it into sentences.

Every function here is pure and cheap (no torch). The analyzer never crashes on what people paste:
bytes that are not UTF-8 are decoded with replacement, HTML is reduced to its text, emoji-only messages are
read through their Unicode names, very long posts are capped at a sentence boundary, and text that does not
look like English is flagged. Each of these adds a warning to the result instead of failing silently.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

from mentalens.errors import DataError

MAX_CHARS = 20_000
MAX_SENTENCES = 200
MAX_SENTENCE_CHARS = 400

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?\s*>")
_BLOCK_TAG = re.compile(r"<\s*(?:br|/p|/div|/li|/h[1-6]|/tr)\s*/?\s*>", re.IGNORECASE)
_SCRIPT = re.compile(r"<\s*(script|style)\b[^>]*>.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_WS = re.compile(r"[ \t\f\v\r]+")
# A sentence ends at . ! ? (possibly repeated, possibly followed by quotes/brackets) before whitespace,
# or at a line break. Common abbreviations do not end a sentence.
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n+")
_ABBREV = re.compile(r"(?:\b(?:mr|mrs|ms|dr|prof|sr|jr|st|vs|etc|e\.g|i\.e|approx|no)\.)$", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)

# The most frequent English function words: a post with words but (almost) none of these is not English.
_EN_WORDS = frozenset(
    """the a an and or but if of to in on at for with from by about as is are was were be been being am i
    me my you your he she it its we they them their this that these those not no so do does did have has had
    can could will would should just what when where who how why all there here than then too very im dont
    cant ive feel like get got know want""".split()
)


@dataclass(frozen=True)
class Sentence:
    """A sentence of the (cleaned) text with its character span in that text."""

    text: str
    start: int
    end: int


@dataclass
class PreparedText:
    """A text ready for the encoder: the cleaned text, its sentences, what the encoder reads, and warnings."""

    original_chars: int
    text: str  # cleaned text; sentence offsets refer to it
    sentences: list[Sentence]
    encoder_text: str  # what the encoder reads (== text except for emoji-only input)
    encoder_spans: list[tuple[int, int]] = field(default_factory=list)  # one per sentence, in encoder_text
    language: str = "en"
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False


def decode_text(data: bytes | str, warnings: list[str] | None = None) -> str:
    """UTF-8 text from bytes or str; invalid bytes (or lone surrogates) become U+FFFD with a warning."""
    if isinstance(data, bytes | bytearray):
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            text = bytes(data).decode("utf-8", errors="replace")
            if warnings is not None:
                warnings.append(f"input was not valid UTF-8: {text.count(chr(0xFFFD))} byte sequence(s) replaced")
            return text
    if not isinstance(data, str):
        raise DataError(f"cannot analyse a {type(data).__name__}: pass text (str or UTF-8 bytes)")
    try:
        data.encode("utf-8")
        return data
    except UnicodeEncodeError:
        fixed = data.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
        if warnings is not None:
            warnings.append("input contained invalid UTF-8 (surrogates): replaced")
        return fixed


def strip_html(text: str, warnings: list[str] | None = None) -> str:
    """Text content of HTML-looking input (tags removed, entities decoded); other text is unchanged."""
    if not _TAG.search(text) and not re.search(r"&(?:[a-z]+|#\d+);", text):
        return text
    had_tags = bool(_TAG.search(text))
    text = _SCRIPT.sub(" ", text)
    text = _BLOCK_TAG.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    if had_tags and warnings is not None:
        warnings.append("HTML markup removed")
    return text


def clean_text(text: str) -> str:
    """Normalise whitespace and drop control characters, keeping line breaks (they separate sentences)."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    lines = [_WS.sub(" ", line).strip() for line in text.split("\n")]
    out = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[Sentence]:
    """Sentences with character offsets; run-on sentences longer than max_chars are cut at a comma or space."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        candidate = text[start : m.start()]
        if m.group(0).strip() == "" and "\n" not in m.group(0) and _ABBREV.search(candidate):
            continue
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out: list[Sentence] = []
    for s, e in spans:
        for ss, ee in _cut_long(text, s, e, max_chars):
            piece = text[ss:ee]
            lead = len(piece) - len(piece.lstrip())
            trail = len(piece) - len(piece.rstrip())
            ss, ee = ss + lead, ee - trail
            if ee > ss and _has_content(text[ss:ee]):
                out.append(Sentence(text[ss:ee], ss, ee))
    return out


def _cut_long(text: str, s: int, e: int, max_chars: int) -> list[tuple[int, int]]:
    pieces = []
    while e - s > max_chars:
        window = text[s : s + max_chars]
        cut = max(window.rfind(", "), window.rfind("; "), window.rfind(" - "))
        if cut < max_chars // 3:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = max_chars
        pieces.append((s, s + cut + 1))
        s = s + cut + 1
    pieces.append((s, e))
    return pieces


def _has_content(text: str) -> bool:
    return any(ch.isalnum() or unicodedata.category(ch) == "So" for ch in text)


def emoji_names(text: str) -> str:
    """Symbols/emoji spelled out by their Unicode names ("😭" -> "loudly crying face"), so the encoder,
    whose vocabulary has no emoji, can still read an emoji-only message."""
    names = []
    for ch in text:
        if unicodedata.category(ch) in ("So", "Sk", "Sm"):
            name = unicodedata.name(ch, "")
            if name:
                names.append(name.lower())
    return ". ".join(names)


def looks_english(text: str) -> bool:
    """A cheap language check: enough words and enough of them common English function words."""
    letters = _LETTER.findall(text)
    if not letters:
        return True  # nothing to judge (numbers, emoji): do not flag
    latin = sum(1 for ch in letters if ord(ch) < 0x250)
    if latin / len(letters) < 0.6:
        return False
    words = [w.lower().replace("'", "") for w in re.findall(r"[A-Za-z']+", text)]
    if len(words) < 4:
        return True  # too short to judge
    hits = sum(1 for w in words if w in _EN_WORDS)
    return hits / len(words) >= 0.12


def prepare(
    data: bytes | str, *, max_chars: int = MAX_CHARS, max_sentences: int = MAX_SENTENCES, allow_empty: bool = False
) -> PreparedText:
    """Clean, check and split one input; empty input is a DataError unless allow_empty."""
    warnings: list[str] = []
    raw = decode_text(data, warnings)
    text = clean_text(strip_html(raw, warnings))
    if not text or not _has_content(text):
        if allow_empty:
            return PreparedText(len(raw), "", [], "", [], "unknown", [*warnings, "empty text: nothing to analyse"])
        raise DataError("empty text: nothing to analyse; pass a post with at least one word")
    sentences = split_sentences(text)
    truncated = False
    if len(text) > max_chars or len(sentences) > max_sentences:
        kept = [s for s in sentences[:max_sentences] if s.end <= max_chars] or sentences[:1]
        if kept[-1].end > max_chars:  # one huge sentence: cut it at a word boundary
            cut = text.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            kept = [Sentence(text[kept[-1].start : cut], kept[-1].start, cut)]
        end = kept[-1].end
        warnings.append(f"text truncated to {len(kept)} sentence(s) ({end:,} of {len(text):,} characters) for analysis")
        text, sentences, truncated = text[:end], kept, True
    encoder_text = text
    language = "en"
    if not _WORD.search(text):
        spelled = emoji_names(text)
        if spelled:
            encoder_text = spelled
            sentences = [Sentence(text, 0, len(text))]
            warnings.append("text has no words: emoji and symbols were read by their names")
        else:
            warnings.append("text has no words: results carry little information")
    elif not looks_english(text):
        language = "non-English"
        warnings.append("text does not look like English: the analyzer is trained on English posts only")
    spans = [(s.start, s.end) for s in sentences] if encoder_text is text else [(0, len(encoder_text))]
    return PreparedText(len(raw), text, sentences, encoder_text, spans, language, warnings, truncated)


__all__ = [
    "MAX_CHARS",
    "MAX_SENTENCES",
    "PreparedText",
    "Sentence",
    "clean_text",
    "decode_text",
    "emoji_names",
    "looks_english",
    "prepare",
    "split_sentences",
    "strip_html",
]
