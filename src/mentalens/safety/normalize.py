"""Text normalisation for the risk rules, keeping a map back to the original characters.

People in crisis type fast: "i wanna kil myslef", "k1ll mys3lf", "suicídarme", "I’m". The lexicon is written
once against a canonical form (lower case, no accents, no apostrophes, leetspeak undone, key clinical words
spelled right) and every matched span is mapped back to the user's own text for the cue report.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata

_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
           "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
           "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " "}
_LEET = {"1": "i", "3": "e", "4": "a", "0": "o", "5": "s", "7": "t", "@": "a", "$": "s"}

# Clinical words worth spelling-correcting toward. Only long, distinctive words: a short word like "pills"
# has real-word neighbours ("bills") that must never be rewritten.
VOCAB = (
    "suicide", "suicidal", "suicidio", "suicidarme", "suicidar", "suicidarse", "myself", "overdose", "overdosed",
    "overdosing", "attempted", "attempting", "tomorrow", "everyone", "everybody", "anymore", "without", "unalive",
    "unaliving", "hopeless", "worthless", "thinking", "goodbye", "paracetamol", "acetaminophen", "ibuprofen",
    "sleeping", "commit", "committing", "matarme", "quitarme", "morirme", "pastillas", "ahorcarme", "cortarme",
    "intentado", "pensando", "despertar", "tonight", "killing", "cutting", "ending", "wrists", "better",
    "sertraline", "fluoxetine", "citalopram", "amitriptyline", "quetiapine", "mirtazapine",
)
_VOCAB_SET = frozenset(VOCAB)
# real words at edit distance 1 of a vocabulary word: never "corrected"
_PROTECTED = frozenset({
    "willing", "filling", "billing", "milling", "tilling", "pilling", "sending", "bending", "wrist", "bitter",
    "beater", "thanking", "thinning", "sweeping", "comment", "commits", "everyones", "goodbyes", "matarte",
    "quitarte", "cortarte", "morirte", "intentar", "cuttings", "overdue", "overdoes", "tonights", "attempt",
    "attempts", "thinks", "pensado", "pensada",
    # real words that the distance-2 rule would rewrite (found by correcting every GoEmotions word: "homeless"
    # became "hopeless", "stepping" became "sleeping")
    "homeless", "hapless", "butter", "bette", "commenting", "commuting", "commie", "seeking", "seeming",
    "seeping", "sheeting", "slipping", "slumping", "speeding", "steering", "stepping", "sneezing", "slapping",
    "tanking", "tricking", "ticking", "overcome", "overcoming", "overdone", "overjoyed", "endings", "everton",
})
# short words the distance rules leave alone (a short word has real-word neighbours), mapped from misspellings seen in
# people's messages that are no word of their own (none occurs in GoEmotions' 58k comments; "weeknd" is a singer)
KNOWN_MISSPELLINGS = {
    "brige": "bridge", "bridg": "bridge", "brigde": "bridge", "brdge": "bridge", "nife": "knife", "knif": "knife",
    "rist": "wrist", "rists": "wrists", "agian": "again", "desided": "decided", "decidid": "decided",
    "dicided": "decided", "leter": "letter", "leters": "letters", "wekend": "weekend", "evrything": "everything",
    "hnag": "hang", "roap": "rope", "garge": "garage", "bloood": "blood",
    "cuttin": "cutting", "agen": "again", "tiem": "time", "teh": "the", "standin": "standing", "wen": "when",
    "garag": "garage", "alredy": "already", "paracetemol": "paracetamol",
    "evry": "every", "evrywhere": "everywhere", "blod": "blood", "purpos": "purpose", "roud": "round",
    "redy": "ready", "nite": "night", "tooken": "taken", "rnd": "round", "aftr": "after", "gna": "gonna",
    "msg": "message", "sory": "sorry", "loded": "loaded", "purpse": "purpose", "rop": "rope", "banistr": "banister",
    "chiar": "chair", "railng": "railing", "wirst": "wrist", "wirsts": "wrists",
}
_TOKEN = re.compile(r"[a-z]+")


@dataclasses.dataclass(frozen=True)
class Normalized:
    """Canonical text plus, for each of its characters, the index of the original character it came from."""

    text: str
    offsets: tuple[int, ...]  # len(text) + 1 entries; the last is len(original)
    original: str

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original [start, end) covering normalised [start, end)."""
        if end <= start:
            o = self.offsets[start]
            return o, o
        return self.offsets[start], self.offsets[end - 1] + 1


def _fold_char(ch: str) -> str:
    ch = _QUOTES.get(ch, ch)
    if ch.isascii():
        return ch.lower()
    decomposed = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base.lower() if base else ""


def _damerau1(a: str, b: str) -> bool:
    """True when a and b differ by exactly one insertion, deletion, substitution or adjacent swap."""
    la, lb = len(a), len(b)
    if abs(la - lb) > 1 or a == b:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def _levenshtein(a: str, b: str, limit: int) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


@functools.lru_cache(maxsize=8192)
def correct_token(token: str) -> str | None:
    """The vocabulary word a misspelled token stands for, or None (keeps the token)."""
    if token in KNOWN_MISSPELLINGS:
        return KNOWN_MISSPELLINGS[token]
    if len(token) < 5 or token in _VOCAB_SET or token in _PROTECTED:
        return None
    for word in VOCAB:
        if word[0] != token[0] and word[:2] != token[1::-1]:
            continue
        if _damerau1(token, word):
            return word
        close_len = len(word) >= 8 and len(token) >= 7 and abs(len(word) - len(token)) <= 1
        if close_len and _levenshtein(token, word, 2) <= 2:
            return word
    return None


def normalize(text: str, correct: bool = True) -> Normalized:
    """Fold case, accents, curly quotes, apostrophes and leetspeak; optionally spell-correct clinical words."""
    chars: list[str] = []
    offs: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold_char(ch)
        if folded == "'":
            continue  # "i'm" -> "im", "don't" -> "dont": the lexicon is written without apostrophes
        for c in folded:
            chars.append(c)
            offs.append(i)
    # leetspeak: a digit or symbol between two letters ("k1ll", "mys3lf", "su1c1de")
    for k in range(1, len(chars) - 1):
        c = chars[k]
        if c in _LEET and chars[k - 1].isalpha() and (chars[k + 1].isalpha() or chars[k + 1] in _LEET):
            nxt = chars[k + 1] if chars[k + 1].isalpha() else _LEET[chars[k + 1]]
            if nxt.isalpha():
                chars[k] = _LEET[c]
    s = "".join(chars)
    if correct:
        out: list[str] = []
        out_offs: list[int] = []
        pos = 0
        for m in _TOKEN.finditer(s):
            fixed = correct_token(m.group())
            if fixed is None:
                continue
            out.append(s[pos:m.start()])
            out_offs.extend(offs[pos:m.start()])
            span = offs[m.start():m.end()]
            out.append(fixed)
            # map the corrected word onto the original token's characters
            out_offs.extend(span[min(j * len(span) // len(fixed), len(span) - 1)] for j in range(len(fixed)))
            pos = m.end()
        out.append(s[pos:])
        out_offs.extend(offs[pos:])
        s = "".join(out)
        offs = out_offs
    return Normalized(s, (*offs, len(text)), text)
