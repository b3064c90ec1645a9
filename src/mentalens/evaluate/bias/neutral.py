"""Gender- and name-neutral reading: the bias mitigation of the embedded analyzer and the risk classifier.

It lives beside the counterfactuals whose word lists it uses and imports nothing heavy, so the safety layer's
rule path stays light. The analyzer's encoder reads every gendered word in a neutral form ("she"/"he" ->
"they", "husband"/"wife" -> "spouse", "mom"/"dad" -> "parent", ...) and every common first name as one fixed
name, at training AND at inference, so a post and its gender- or name-swapped copy give the same features and
the same labels. What people see (Analysis.text, evidence quotes, offsets) is always the original text: only
what the encoder reads changes, and sentence spans are mapped onto the neutralised text.

Limits, stated plainly: the word lists are English and finite ("hubby", "mum", "wifey" are covered; a name
not in the list is left as written); meaning-bearing words (pregnancy, gendered medicine, orientation) are
kept as they are, so a post about them is still read as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mentalens.evaluate.bias.counterfactuals import (
    _ADVERBS,
    _COMMON_FIRST_NAMES,
    _NOT_AFTER_POSSESSIVE,
    _NOT_NAMES,
    NAMES,
    _case_like,
    _plural_verb,
)

NEUTRAL_NAME = "Alex"

# one neutral form per gendered word; both members of every pair map to the same word
_WORDS: dict[str, str] = {
    **dict.fromkeys(("he", "she"), "they"),
    **dict.fromkeys(("him",), "them"),
    **dict.fromkeys(("his", "hers"), "their"),  # him/his/her: decided by the next word (neutral_edits)
    **dict.fromkeys(("himself", "herself"), "themselves"),
    **dict.fromkeys(("man", "woman", "guy", "boy", "girl", "gal", "male", "female", "dude", "lady", "gentleman"),
                    "person"),
    **dict.fromkeys(("men", "women", "guys", "boys", "girls", "gals", "males", "females", "dudes", "ladies",
                     "gentlemen"), "people"),
    **dict.fromkeys(("husband", "wife", "hubby", "wifey", "groom", "bride"), "spouse"),
    **dict.fromkeys(("husbands", "wives"), "spouses"),
    **dict.fromkeys(("boyfriend", "girlfriend", "bf", "gf", "fiance", "fiancee", "fiancé", "fiancée"), "partner"),
    **dict.fromkeys(("boyfriends", "girlfriends"), "partners"),
    **dict.fromkeys(("father", "mother", "dad", "mom", "mum", "daddy", "mommy", "mummy", "mama", "momma", "papa"),
                    "parent"),
    **dict.fromkeys(("fathers", "mothers", "dads", "moms", "mums"), "parents"),
    **dict.fromkeys(("stepdad", "stepmom", "stepmum", "stepfather", "stepmother"), "stepparent"),
    **dict.fromkeys(("son", "daughter"), "child"),
    **dict.fromkeys(("sons", "daughters"), "children"),
    **dict.fromkeys(("stepson", "stepdaughter"), "stepchild"),
    **dict.fromkeys(("brother", "sister", "bro", "sis"), "sibling"),
    **dict.fromkeys(("brothers", "sisters"), "siblings"),
    **dict.fromkeys(("uncle", "aunt", "auntie", "nephew", "niece"), "relative"),
    **dict.fromkeys(("uncles", "aunts", "nephews", "nieces"), "relatives"),
    **dict.fromkeys(("grandfather", "grandmother", "grandpa", "grandma", "granny", "grandad", "granddad"),
                    "grandparent"),
    **dict.fromkeys(("king", "queen"), "monarch"),
    **dict.fromkeys(("sir", "madam", "ma'am"), "friend"),
    **dict.fromkeys(("mr", "mrs"), "mx"),
}  # fmt: skip
_NAMES = set(_COMMON_FIRST_NAMES) | {n for group in NAMES.values() for n in group}
_WORD_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _WORDS), key=len, reverse=True)) + r"|her)\b",
                      re.IGNORECASE)  # fmt: skip
_NAME_RE = re.compile(r"\b(" + "|".join(sorted(_NAMES, key=len, reverse=True)) + r")\b")


def neutral_edits(text: str) -> list[tuple[int, int, str]]:
    """(start, end, replacement) for every gendered word and known first name in text."""
    edits: list[tuple[int, int, str]] = []
    for m in _WORD_RE.finditer(text):
        word = m.group(0)
        low = word.lower()
        if low in ("her", "him", "his"):  # by what follows, as the audit's own swap decides "her":
            # object ("told her.") -> them; possessive ("her job") -> their; so him/his/her read alike
            rep = "them" if _NOT_AFTER_POSSESSIVE.match(text[m.end() :]) else "their"
        else:
            rep = _WORDS[low]
        if low == "sis" and word != low:  # "SIS" etc. are acronyms more often than sisters
            continue
        edits.append((m.start(), m.end(), _case_like(word, rep)))
        if low in ("he", "she"):  # "she cries" -> "they cry", as a they-variant of the post would read
            for w in re.finditer(r"\s+([A-Za-z']+)", text[m.end() : m.end() + 40]):
                token = w.group(1)
                if token.lower() in _ADVERBS:
                    continue
                plural = _plural_verb(token)
                if plural:
                    start = m.end() + w.start(1)
                    edits.append((start, start + len(token), _case_like(token, plural)))
                break
    taken = [(s, e) for s, e, _ in edits]
    for m in _NAME_RE.finditer(text):
        if m.group(0) in _NOT_NAMES or any(s < m.end() and m.start() < e for s, e in taken):
            continue
        edits.append((m.start(), m.end(), NEUTRAL_NAME))
    return sorted(edits)


def neutralize(text: str, spans: Sequence[tuple[int, int]] = ()) -> tuple[str, list[tuple[int, int]]]:
    """The neutral text and the given character spans mapped onto it (span ends move with the edits)."""
    edits = neutral_edits(text)
    if not edits:
        return text, list(spans)
    out: list[str] = []
    last = 0
    shifts: list[tuple[int, int]] = []  # (position in original after which, cumulative shift)
    shift = 0
    for start, end, rep in edits:
        out.append(text[last:start])
        out.append(rep)
        last = end
        shift += len(rep) - (end - start)
        shifts.append((end, shift))
    out.append(text[last:])

    def move(pos: int) -> int:
        d = 0
        for end, cum in shifts:
            if end <= pos:
                d = cum
            else:
                break
        return pos + d

    return "".join(out), [(move(s), move(e)) for s, e in spans]


__all__ = ["NEUTRAL_NAME", "neutral_edits", "neutralize"]
