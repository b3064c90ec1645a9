"""Counterfactual posts: the same post with only its gender, a first name, a stated age or its dialect changed.

Each transform edits only the matched tokens; every other byte of the post is kept, so any change in what a
model concludes is caused by the attribute. A post is skipped (and counted) when it has nothing to swap or
when the swap would change its meaning (pregnancy, gendered medicine, sexual orientation for gender; school
or retirement for age).

Names come from a documented public list: Bertrand & Mullainathan (2004), "Are Emily and Greg More
Employable than Lakisha and Jamal?", American Economic Review 94(4), Table A1 — first names that are
distinctively White or African-American, by gender, in Massachusetts birth certificates 1974-79.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mentalens.registry import Registry

# --------------------------------------------------------------------------------------------- names

NAMES: dict[str, tuple[str, ...]] = {
    "white_female": ("Allison", "Anne", "Carrie", "Emily", "Jill", "Laurie", "Kristen", "Meredith", "Sarah"),
    "white_male": ("Brad", "Brendan", "Geoffrey", "Greg", "Brett", "Jay", "Matthew", "Neil", "Todd"),
    "black_female": ("Aisha", "Ebony", "Keisha", "Kenya", "Lakisha", "Latonya", "Latoya", "Tamika", "Tanisha"),
    "black_male": ("Darnell", "Hakim", "Jamal", "Jermaine", "Kareem", "Leroy", "Rasheed", "Tremayne", "Tyrone"),
}
NAME_SOURCE = "Bertrand & Mullainathan (2004), American Economic Review 94(4):991-1013, Table A1"

# first names found in posts that we replace (the list's own names plus frequent US first names)
_COMMON_FIRST_NAMES = {
    *[n for group in NAMES.values() for n in group],
    *"""James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Paul Mark Donald
    George Kenneth Steven Edward Brian Ronald Anthony Kevin Jason Jeff Ryan Jacob Gary Nicholas Eric Jonathan
    Stephen Larry Justin Scott Brandon Frank Benjamin Samuel Gregory Alexander Patrick Jack Dennis Tyler Aaron
    Jose Adam Nathan Henry Zachary Kyle Ethan Noah Mike Chris Dave Dan Tom Steve Alex Josh Nick Jake Sam
    Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Karen Nancy Lisa Betty Margaret Sandra Ashley
    Kimberly Donna Michelle Dorothy Carol Amanda Melissa Deborah Stephanie Rebecca Sharon Laura Cynthia
    Kathleen Amy Angela Shirley Anna Brenda Pamela Emma Nicole Helen Samantha Katherine Christine Debra Rachel
    Catherine Carolyn Janet Ruth Maria Heather Diane Virginia Julie Joyce Victoria Olivia Kelly Christina
    Lauren Joan Evelyn Judith Megan Andrea Cheryl Hannah Jacqueline Martha Gloria Teresa Ann Sara Madison
    Frances Kathryn Janice Jean Abigail Alice Julia Judy Sophia Grace Denise Amber Doris Marilyn Danielle
    Beverly Isabella Theresa Diana Natalie Brittany Charlotte Marie Kayla Alexis Lori Kate Katie Jess Jen""".split(),
}
_NAME_RE = re.compile(r"\b(" + "|".join(sorted(_COMMON_FIRST_NAMES, key=len, reverse=True)) + r")\b")
# capitalised words that are names only sometimes; never treated as names
_NOT_NAMES = {"Will", "May", "June", "April", "Mark", "Jack", "Grace", "Hope", "Faith", "Joy", "Amber", "Jean"}

# --------------------------------------------------------------------------------------------- gender

_GENDER_PAIRS = [
    ("he", "she"), ("him", "her"), ("his", "her"), ("himself", "herself"), ("man", "woman"), ("men", "women"),
    ("boy", "girl"), ("boys", "girls"), ("guy", "girl"), ("guys", "girls"), ("male", "female"),
    ("husband", "wife"), ("husbands", "wives"), ("boyfriend", "girlfriend"), ("boyfriends", "girlfriends"),
    ("bf", "gf"), ("father", "mother"), ("fathers", "mothers"), ("dad", "mom"), ("dads", "moms"),
    ("daddy", "mommy"), ("son", "daughter"), ("sons", "daughters"), ("brother", "sister"),
    ("brothers", "sisters"), ("uncle", "aunt"), ("uncles", "aunts"), ("nephew", "niece"), ("nephews", "nieces"),
    ("grandfather", "grandmother"), ("grandpa", "grandma"), ("king", "queen"), ("sir", "madam"),
    ("gentleman", "lady"), ("gentlemen", "ladies"), ("mr", "mrs"), ("fiance", "fiancee"), ("stepdad", "stepmom"),
    ("stepfather", "stepmother"), ("stepson", "stepdaughter"), ("groom", "bride"),
]  # fmt: skip
_TO_FEMALE = {m: f for m, f in _GENDER_PAIRS}
_TO_MALE = {f: m for m, f in _GENDER_PAIRS if f != "her"}
_GENDER_WORDS = set(_TO_FEMALE) | set(_TO_MALE) | {"her", "mum"}
_GENDER_RE = re.compile(r"\b(" + "|".join(sorted(_GENDER_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE)
# words after "her" that make it a possessive ("her mom") rather than an object ("told her")
_NOT_AFTER_POSSESSIVE = re.compile(
    r"^\s*(?:[.,!?;:)\"']|$|and\b|or\b|but\b|to\b|that\b|about\b|for\b|with\b|at\b|in\b|on\b|from\b|"
    r"again\b|anymore\b|too\b|so\b|if\b|because\b|when\b|the\b|a\b|an\b|up\b|out\b|off\b|back\b|away\b|"
    r"i\b|you\b|we\b|it\b|he\b|she\b|they\b|that\b|this\b)",
    re.IGNORECASE,
)
# swapping gender would change what these posts say
_GENDER_MEANING = re.compile(
    r"\b(?:pregnan\w*|miscarr\w*|abortion|period|periods|menstrua\w*|menopaus\w*|pcos|endometriosis|"
    r"breast\w*|prostate|testosterone|estrogen|erectile|erection|vagina\w*|penis|ovar\w*|uterus|"
    r"gay|lesbian|trans|transgender|nonbinary|non-binary|gender|sexist|sexism|misogyn\w*|feminis\w*|"
    r"postpartum|gave birth|giving birth|c-section|pms|pmdd|hrt|dysphoria)\b",
    re.IGNORECASE,
)

_THEY_VERBS = {"is": "are", "was": "were", "has": "have", "does": "do", "isn't": "aren't", "wasn't": "weren't",
               "doesn't": "don't", "hasn't": "haven't"}  # fmt: skip

# --------------------------------------------------------------------------------------------- age

# only the poster's own stated age ("I'm 24", "I am a 24 year old", "as a 24yo", "(24F)"), never a relative's
_UNITS = r"(?!\s*(?:%|percent|lbs?|kg|pounds|hours?|minutes?|days?|weeks?|months?|times?|dollars?|k\b|am\b|pm\b))"
_AGE_PATTERNS = [
    re.compile(r"\b(?:i'?m|i am|im)\s+(?:only\s+|just\s+|now\s+)?(?:a\s+)?(?P<age>[1-9]\d)\b" + _UNITS, re.IGNORECASE),
    re.compile(r"\b(?:as|being)\s+a\s+(?P<age>[1-9]\d)\s*(?:-\s*)?(?:years?|yrs?|yo|y/o)\b", re.IGNORECASE),
    re.compile(
        r"\b(?P<age>[1-9]\d)\s*(?:-\s*)?(?:years?|yrs?|yo|y/o)(?:\s*-?\s*old)?\s+(?:here|myself)\b", re.IGNORECASE
    ),
    re.compile(r"(?:^|\bme\s*|\bI\s*)[(\[](?P<age>[1-9]\d)\s*[mfMF][)\]]"),
    re.compile(r"(?:^|\bme\s*|\bI\s*)[(\[][mfMF]\s*(?P<age>[1-9]\d)[)\]]"),
]
AGES = {"young_adult": 19, "middle_aged": 45, "older_adult": 70}
_AGE_MEANING = re.compile(
    r"\b(?:school|highschool|high school|college|university|uni|freshman|sophomore|junior|senior|teen\w*|"
    r"parents? won't let|curfew|retire\w*|pension|grandkids|grandchildren|menopause|puberty|minor|underage)\b",
    re.IGNORECASE,
)

# --------------------------------------------------------------------------------------------- dialect

# A small set of African-American English (AAE) rewrites: negative concord, "ain't", habitual/copula
# features. Each rule matches a Standard American English form and rewrites it; the rest is unchanged.
_DIALECT_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(I|i) am not\b"), r"\1 ain't"),
    (re.compile(r"\b(I|i)'m not\b"), r"\1 ain't"),
    (re.compile(r"\bis not\b"), "ain't"),
    (re.compile(r"\bisn't\b"), "ain't"),
    (re.compile(r"\baren't\b"), "ain't"),
    (re.compile(r"\b(don't|doesn't|didn't|can't|won't) (have|want|need|get|know|care about) any(thing|one|body)?\b"),
     r"\1 \2 no\3"),
    (re.compile(r"\b(don't|doesn't|can't) (have|want|need|get) any\b"), r"\1 \2 no"),
    (re.compile(r"\bnobody ever\b"), "don't nobody ever"),
    (re.compile(r"\bI am going to\b"), "I'm finna"),
    (re.compile(r"\bI'm going to\b"), "I'm finna"),
    (re.compile(r"\b([Yy])ou all\b"), r"\1'all"),
    (re.compile(r"\bthey are always\b"), "they be"),
    (re.compile(r"\bhe is always\b"), "he be"),
    (re.compile(r"\bshe is always\b"), "she be"),
    (re.compile(r"\bI am always\b"), "I be"),
]  # fmt: skip


# --------------------------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class Counterfactual:
    """One edited copy of a post: which attribute, which value, and where it was edited."""

    attribute: str  # gender | name | age | dialect
    variant: str  # e.g. "swapped", "they", "black_male", "older_adult", "aae"
    text: str
    edits: tuple[tuple[int, int, str], ...]  # (start, end, replacement) in the original


@dataclass(frozen=True)
class Skip:
    attribute: str
    reason: str  # "nothing to swap" | "meaning would change"


def _case_like(src: str, word: str) -> str:
    if src.isupper() and len(src) > 1:
        return word.upper()
    if src[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    out, last = [], 0
    for start, end, rep in sorted(edits):
        out.append(text[last:start])
        out.append(rep)
        last = end
    out.append(text[last:])
    return "".join(out)


def _swap_edits(text: str) -> list[tuple[int, int, str]]:
    """Edits that swap every gendered word with its counterpart (he<->she, dad<->mom, her->his/him)."""
    edits = []
    for m in _GENDER_RE.finditer(text):
        word = m.group(0)
        low = word.lower()
        if low == "her":
            rep = "him" if _NOT_AFTER_POSSESSIVE.match(text[m.end() :]) else "his"
        elif low == "mum":
            rep = "dad"
        else:
            rep = _TO_FEMALE.get(low) or _TO_MALE.get(low)
        if rep and rep != low:
            edits.append((m.start(), m.end(), _case_like(word, rep)))
    return edits


_ADVERBS = set(
    "always never just also still really often only constantly even usually then now sometimes actually "
    "literally already probably finally barely".split()
)
_NO_S = {"doesnt": "dont", "hasnt": "havent", "isnt": "arent", "wasnt": "werent"}


def _plural_verb(word: str) -> str | None:
    """The they-form of a third-person singular verb ("knows" -> "know"), or None if it is not one."""
    low = word.lower()
    if low in _THEY_VERBS:
        return _THEY_VERBS[low]
    if low in _NO_S:
        return _NO_S[low]
    if not low.isalpha() or len(low) < 3 or not low.endswith("s") or low.endswith("ss") or low in _ADVERBS:
        return None
    if low.endswith("ies") and low not in ("dies", "lies", "ties"):
        return low[:-3] + "y"
    if low.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return low[:-2]
    return low[:-1]


def _they_edits(text: str) -> list[tuple[int, int, str]]:
    """he/she -> they with the verb's agreement; his/her -> their; him/her -> them; himself -> themselves."""
    edits = []
    for m in re.finditer(r"\b(he|she|his|him|her|himself|herself)\b", text, re.IGNORECASE):
        word, low = m.group(1), m.group(1).lower()
        if low in ("he", "she"):
            edits.append((m.start(1), m.end(1), _case_like(word, "they")))
            for w in re.finditer(r"\s+([A-Za-z']+)", text[m.end(1) : m.end(1) + 40]):
                token = w.group(1)
                if token.lower() in _ADVERBS:
                    continue
                plural = _plural_verb(token)
                if plural:
                    start = m.end(1) + w.start(1)
                    edits.append((start, start + len(token), _case_like(token, plural)))
                break
        elif low == "his":
            edits.append((m.start(1), m.end(1), _case_like(word, "their")))
        elif low == "him":
            edits.append((m.start(1), m.end(1), _case_like(word, "them")))
        elif low in ("himself", "herself"):
            edits.append((m.start(1), m.end(1), _case_like(word, "themselves")))
        else:  # her: possessive -> their, object -> them
            rep = "them" if _NOT_AFTER_POSSESSIVE.match(text[m.end(1) :]) else "their"
            edits.append((m.start(1), m.end(1), _case_like(word, rep)))
    return edits


def gender_counterfactuals(text: str) -> list[Counterfactual] | Skip:
    if not _GENDER_RE.search(text):
        return Skip("gender", "nothing to swap")
    if _GENDER_MEANING.search(text):
        return Skip("gender", "meaning would change")
    out = []
    for variant, edits in (("swapped", _swap_edits(text)), ("they", _they_edits(text))):
        if edits:
            out.append(Counterfactual("gender", variant, _apply(text, edits), tuple(sorted(edits))))
    return out or Skip("gender", "nothing to swap")


def name_counterfactuals(text: str) -> list[Counterfactual] | Skip:
    spans = [m for m in _NAME_RE.finditer(text) if m.group(0) not in _NOT_NAMES]
    # a capitalised name at the very start of a sentence is still a name; lowercase words never match
    if not spans:
        return Skip("name", "nothing to swap")
    out = []
    for group, names in NAMES.items():
        # the same original name always maps to the same replacement within a post
        mapping: dict[str, str] = {}
        for m in spans:
            mapping.setdefault(m.group(0), names[len(mapping) % len(names)])
        edits = [(m.start(), m.end(), mapping[m.group(0)]) for m in spans]
        out.append(Counterfactual("name", group, _apply(text, edits), tuple(edits)))
    return out


def age_counterfactuals(text: str) -> list[Counterfactual] | Skip:
    spans = []
    for pattern in _AGE_PATTERNS:
        for m in pattern.finditer(text):
            age = int(m.group("age"))
            if 13 <= age <= 99 and not any(s <= m.start("age") < e for s, e in spans):
                spans.append((m.start("age"), m.end("age")))
    if not spans:
        return Skip("age", "nothing to swap")
    if _AGE_MEANING.search(text):
        return Skip("age", "meaning would change")
    out = []
    for variant, age in AGES.items():
        edits = [(s, e, str(age)) for s, e in spans if text[s:e] != str(age)]
        if edits:
            out.append(Counterfactual("age", variant, _apply(text, edits), tuple(sorted(edits))))
    return out or Skip("age", "nothing to swap")


def dialect_counterfactuals(text: str) -> list[Counterfactual] | Skip:
    edits: list[tuple[int, int, str]] = []
    for pattern, rep in _DIALECT_RULES:
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e, _ in edits):
                continue
            edits.append((m.start(), m.end(), m.expand(rep)))
    if not edits:
        return Skip("dialect", "nothing to swap")
    return [Counterfactual("dialect", "aae", _apply(text, edits), tuple(sorted(edits)))]


ATTRIBUTES: Registry[Callable[[str], list[Counterfactual] | Skip]] = Registry("bias attribute")
ATTRIBUTES.register("gender", gender_counterfactuals)
ATTRIBUTES.register("name", name_counterfactuals)
ATTRIBUTES.register("age", age_counterfactuals)
ATTRIBUTES.register("dialect", dialect_counterfactuals)


def counterfactuals(text: str, attributes: Iterable[str] | None = None) -> tuple[list[Counterfactual], list[Skip]]:
    """All counterfactuals of a post for the chosen attributes (default: all), and what was skipped."""
    made: list[Counterfactual] = []
    skipped: list[Skip] = []
    for name in attributes or ATTRIBUTES.names():
        result = ATTRIBUTES.get(name)(text)
        if isinstance(result, Skip):
            skipped.append(result)
        else:
            made.extend(result)
    return made, skipped


def unchanged_outside_edits(original: str, cf: Counterfactual) -> bool:
    """Every byte outside the edited spans is identical (the invariant every transform keeps)."""
    pos_o, pos_c = 0, 0
    for start, end, rep in cf.edits:
        seg = original[pos_o:start]
        if cf.text[pos_c : pos_c + len(seg)] != seg:
            return False
        pos_c += len(seg) + len(rep)
        pos_o = end
    return cf.text[pos_c:] == original[pos_o:]
