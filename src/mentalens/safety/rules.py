"""Transparent risk rules: lexicon matches -> cues (with negation, quotes, hypotheticals, figures of speech,
third persons) -> a C-SSRS-style level for the whole conversation.

Every decision is traceable to a cue with a span in the user's text. The lexicon lives in
resources/safety/lexicon.yaml so clinicians can review it without reading Python.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import re
from collections.abc import Sequence
from pathlib import Path

from mentalens.errors import ConfigError
from mentalens.safety.normalize import Normalized, normalize
from mentalens.safety.types import Cue, RiskLevel

LOW = frozenset({"passive", "hopeless", "burden", "history"})
MODERATE = frozenset({"ideation", "selfharm_urge"})
HIGH = frozenset({"intent", "plan", "preparation", "method", "recent_attempt", "selfharm", "means_at_hand",
                  "farewell"})
SELF_RISK = (LOW - {"history"}) | MODERATE | HIGH | {"attempt_now"}
FLAG_CONSTRUCTS = frozenset({"others_at_risk", "harm_to_others", "abuse", "medical_emergency"})
# constructs that become others_at_risk when their subject is someone else
_TRANSFERABLE = MODERATE | HIGH | {"attempt_now"}
_FIGURATIVE_ZEROED = frozenset({"passive", "hopeless", "burden", "harm_to_others", "medical_emergency"})
_ORDINARY_USE_CONSTRUCTS = frozenset({"means_at_hand", "preparation", "farewell"})
ORDINARY_USE_NOTE = "an ordinary use is named: counts only beside an explicit risk cue"
# constructs that are evidence AGAINST a risk reading: kept as cues (weight 0, shown with their reason), so their
# sentence is the rules' and the semantic layer does not read it ("ending it with my boyfriend tonight" is near the
# prototype "I'm going to end it tonight"; issue 7, round 26)
_ZERO_WEIGHT = {"denial": "the person denies risk", "figurative": "figure of speech",
                "stressor": "a stressor (context only)",
                "ordinary": "an ordinary reading is named (a breakup, a prop)"}

_SENTENCE_END = re.compile(r"[.!?\n]+")
_CLAUSE_BREAK = re.compile(r"[.!?;\n]|\bbut\b|\bpero\b|\bthough\b|\bhowever\b|\bsino\b")
_WORD = re.compile(r"[a-z0-9]+")
_QUOTED = re.compile(r"[\"\u201c\u201d\u201e\u00ab\u00bb]([^\"\u201c\u201d\u201e\u00ab\u00bb\n]{2,400})"
                     r"[\"\u201c\u201d\u201e\u00ab\u00bb]|(?:^|(?<=[\s(]))['\u2018]([^'\u2019\n]{3,300})['\u2019]"
                     r"(?=[\s.,!?;:)]|$)")
_LATER = re.compile(r"\b(?:tomorrow|tomorow|next\s+(?:week|month|year)|this\s+weekend|weekend|someday|one\s+day|"
                    r"eventually|after\s+(?:my|the)\s+(?:exams?|birthday|holidays?|wedding|funeral|anniversary|christmas)|"
                    r"(?:day|week|month|weekend)\s+after\s+(?:(?:my|the|his|her|our)\s+)?\w+|"
                    r"(?:once|when|after)\s+(?:the|my|his|her)\s+\w+\s+(?:is\s+|are\s+)?(?:done|over|finished)|manana|"
                    r"fin\s+de\s+semana|la\s+proxima\s+semana)\b")


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    construct: str
    regex: re.Pattern[str]
    contextual: bool = False
    flag: str | None = None
    scope: str = "self"  # "self": about the person writing; "other": a flag, whoever it concerns
    lang: str = "en"


@dataclasses.dataclass(frozen=True)
class Lexicon:
    rules: tuple[Rule, ...]
    negators: frozenset[str]
    negator_exceptions: tuple[str, ...]
    hypothetical: re.Pattern[str]
    past: re.Pattern[str]
    recent: re.Pattern[str]
    remote: re.Pattern[str]
    joke: re.Pattern[str]
    joke_emoji: tuple[str, ...]
    attribution: re.Pattern[str]
    fiction: re.Pattern[str]
    news: re.Pattern[str]
    accident: re.Pattern[str]
    benign_context: re.Pattern[str]
    ordinary_use: re.Pattern[str]
    cover_story: re.Pattern[str]
    recovery: re.Pattern[str]
    third_person: frozenset[str]
    first_person: frozenset[str]
    third_person_possessed: frozenset[str] = frozenset()  # also in third_person; someone else only after a determiner
    possessive_determiners: frozenset[str] = frozenset()
    version: int = 1


def _phrases(items: Sequence[str]) -> re.Pattern[str]:
    """One regex matching any listed phrase at word boundaries (entries may hold regex like `\\d+`)."""
    alts = sorted((p if any(c in p for c in "\\[]()+*?") else re.escape(p)) for p in items)
    return re.compile(r"\b(?:" + "|".join(alts) + r")\b")


def _expand(pattern: str, macros: dict[str, str]) -> str:
    for _ in range(5):  # macros may use macros
        new = re.sub(r"%([A-Z_]+)%", lambda m: macros[m.group(1)], pattern)
        if new == pattern:
            return new
        pattern = new
    return pattern


@functools.lru_cache(maxsize=4)
def load_lexicon(path: str | None = None) -> Lexicon:
    """Parse and compile the lexicon (cached: the chat server assesses every turn)."""
    import yaml

    from mentalens.paths import package_resource

    p = Path(path) if path else package_resource("safety", "lexicon.yaml")
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc = yaml.load(p.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"risk lexicon {p} cannot be read ({exc}): reinstall mentalens or fix the file") from None
    macros = {k: str(v) for k, v in (doc.get("macros") or {}).items()}
    rules = []
    seen: set[str] = set()
    for entry in doc.get("patterns") or []:
        try:
            rx = re.compile(_expand(entry["pattern"], macros))
        except (KeyError, re.error) as exc:
            raise ConfigError(f"risk lexicon {p}: pattern {entry.get('id')!r} is invalid ({exc}): fix it") from None
        if entry.get("id") in seen:  # a cue names its rule: two rules with one id would make that name ambiguous
            raise ConfigError(f"risk lexicon {p}: the rule id {entry['id']!r} is used twice: rename one of them")
        seen.add(entry.get("id"))
        rules.append(Rule(entry["id"], entry["construct"], rx, bool(entry.get("contextual", False)),
                          entry.get("flag"), entry.get("scope", "self"), entry.get("lang", "en")))
    mod = doc.get("modifiers") or {}
    return Lexicon(
        rules=tuple(rules),
        negators=frozenset(mod.get("negators", ())),
        negator_exceptions=tuple(mod.get("negator_exceptions", ())),
        hypothetical=_phrases(mod.get("hypothetical", ())),
        past=_phrases(mod.get("past", ())),
        recent=_phrases(mod.get("recent", ())),
        remote=_phrases(mod.get("remote", ())),
        joke=_phrases(mod.get("joke_markers", ())),
        recovery=_phrases(mod.get("recovery", ())),
        joke_emoji=tuple(mod.get("joke_emoji", ())),
        attribution=_phrases(mod.get("attribution", ())),
        fiction=_phrases(mod.get("fiction", ())),
        news=_phrases(mod.get("news", ())),
        accident=_phrases(mod.get("accident", ())),
        benign_context=_phrases(mod.get("benign_context", ())),
        ordinary_use=_phrases(mod.get("ordinary_use", ())),
        cover_story=_phrases(mod.get("cover_story", ())),
        third_person=frozenset(mod.get("third_person", ())) | frozenset(mod.get("third_person_possessed", ())),
        first_person=frozenset(mod.get("first_person", ())),
        third_person_possessed=frozenset(mod.get("third_person_possessed", ())),
        possessive_determiners=frozenset(mod.get("possessive_determiners", ())),
        version=int(doc.get("version", 1)),
    )


def _clause_start(text: str, pos: int) -> int:
    start = 0
    for m in _CLAUSE_BREAK.finditer(text, 0, pos):
        start = m.end()
    return start


def _clause_end(text: str, pos: int) -> int:
    m = _CLAUSE_BREAK.search(text, pos)
    return m.start() if m else len(text)


def _is_joking(original: str, norm: str, lex: Lexicon) -> bool:
    if any(e in original for e in lex.joke_emoji):
        return True
    for m in lex.joke.finditer(norm):
        before = norm[max(0, m.start() - 6):m.start()]
        if not re.search(r"\b(?:not|no|nt)\s*$", before):
            return True
    return False


@dataclasses.dataclass
class MessageAnalysis:
    cues: list[Cue]
    timing: list[Cue]
    later: bool  # the message names a later time ("tomorrow", "this weekend")


def _negated(prefix_tokens: list[str], match_tokens: list[str], lex: Lexicon) -> bool:
    """A negator among the 3 words before the cue, unless it is part of a non-negating phrase ("can't stop")."""
    n = len(prefix_tokens)
    for pos in range(max(0, n - 3), n):
        if prefix_tokens[pos] not in lex.negators:
            continue
        phrase = " ".join(prefix_tokens[pos:] + match_tokens[:3])
        if any(phrase.startswith(ex) for ex in lex.negator_exceptions):
            continue
        return True
    return False


def analyze_message(text: str, index: int = 0, lex: Lexicon | None = None) -> MessageAnalysis:
    """All cues in one message, each with its weight and, when discounted, the reason."""
    lex = lex or load_lexicon()
    nz: Normalized = normalize(text)
    norm = nz.text
    joking = _is_joking(text, norm, lex)
    attributed = bool(lex.attribution.search(norm))
    fiction = bool(lex.fiction.search(norm))
    news = bool(lex.news.search(norm))
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]  # sentence ends, in original offsets as the cues'
    # "Taking my insulin before dinner like always": a routine named in the cue's own sentence (a long post's "my
    # sister rang for money, as usual" says nothing about "I've taken every tablet in the cupboard")
    benign_sentences = _sentences_of(lex.benign_context, text, nz, ends, window=0)
    # "I was chopping onions and cut myself": an accident named in the cue's own sentence (not "...I was cooking all
    # day. Then I cut myself again last night")
    # ...unless it says the act was meant ("held the straighteners to my stomach on purpose"; "didn't do it on
    # purpose" says the opposite)
    meant = _sentences_of(_ON_PURPOSE, text, nz, ends, window=0) - _sentences_of(
        _NOT_ON_PURPOSE, text, nz, ends, window=0)
    accident_sentences = _sentences_of(lex.accident, text, nz, ends, window=0) - meant
    recovered = bool(lex.recovery.search(norm))
    remote = bool(lex.remote.search(norm))
    quotes = [(m.start(), m.end()) for m in _QUOTED.finditer(text)] if attributed else []
    cues: list[Cue] = []
    timing: list[Cue] = []
    for rule in lex.rules:
        for m in rule.regex.finditer(norm):
            if m.end() == m.start():
                continue
            start, end = nz.span(m.start(), m.end())
            construct, weight, note = rule.construct, 1.0, None
            cstart = _clause_start(norm, m.start())
            prefix = _WORD.findall(norm[cstart:m.start()])
            match_tokens = _WORD.findall(m.group())
            first_tok = (match_tokens or [""])[0]
            if construct == "timing_now":
                if prefix[-1:] not in (["not"], ["never"], ["no"]):  # "not tonight", "not rn but soon": no time set
                    timing.append(Cue(construct, text[start:end], start, end, index, 1.0, None, rule.id))
                continue
            if construct in _ZERO_WEIGHT:
                weight, note = 0.0, _ZERO_WEIGHT[construct]
            elif _negated(prefix, match_tokens, lex):
                weight, note = 0.0, "negated"
            elif any(qs <= start and end <= qe for qs, qe in quotes):
                weight, note = 0.0, "quoted (someone else's words)"
            elif rule.scope == "self":
                clause_prefix = norm[cstart:m.start()]
                if lex.hypothetical.search(clause_prefix) or lex.hypothetical.search(norm[max(0, cstart - 40):cstart]):
                    weight, note = 0.0, "hypothetical or question about others"
                elif construct in ("ideation", "passive", "intent", "plan", "burden", "hopeless") and (
                        lex.past.search(clause_prefix)
                        or lex.past.search(_before_comparison(norm[m.end():_clause_end(norm, m.end())]))):
                    weight, note = 0.0, "in the past"
                elif construct in ("recent_attempt", "selfharm") and remote and not _recent_again(norm, m, lex):
                    construct, note = "history", "in the past"
                elif construct == "attempt_now" and _ATTEMPT_PAST.search(
                        norm, *_sentence_window(norm, m.start(), m.end())) and not _ATTEMPT_JUST_NOW.search(
                        norm, *_sentence_window(norm, m.start(), m.end(), after=0)):
                    construct, note = "recent_attempt", "a recent attempt, not under way"
                elif construct in ("selfharm", "attempt_now", "recent_attempt") and (
                        _sentence_of(text, ends, start, end) in accident_sentences):
                    weight, note = 0.0, "accidental"
                elif construct == "attempt_now" and _sentence_of(text, ends, start, end) in benign_sentences:
                    weight, note = 0.0, "as prescribed"
                elif construct in _FIGURATIVE_ZEROED and joking:
                    weight, note = 0.0, "figure of speech or joke"
                elif first_tok not in lex.first_person and not any(map(_WRITER_REFLEXIVE.fullmatch, match_tokens)):
                    subject = _subject(prefix[-6:], lex)
                    if subject in lex.third_person and subject not in lex.first_person:
                        if construct in _TRANSFERABLE and not (fiction or news or (recovered and remote)):
                            construct, note = "others_at_risk", "about someone else"
                        else:
                            weight, note = 0.0, "about someone else"
                if construct == "history" and weight > 0 and recovered:
                    weight, note = 0.0, "in the past, told as recovery"
            else:  # flags
                if construct in _FIGURATIVE_ZEROED and joking:
                    weight, note = 0.0, "figure of speech or joke"
                elif construct == "others_at_risk" and (fiction or news):
                    weight, note = 0.0, "fiction or news"
            cues.append(Cue(construct, text[start:end], start, end, index, weight, note, rule.id, rule.contextual))
            if rule.flag and weight > 0 and construct == rule.construct:
                # a contextual rule's flag counts only when its context does (assess checks context_ok)
                cues.append(Cue(rule.flag, text[start:end], start, end, index, 1.0, None, rule.id, rule.contextual))
    # an urge to self-harm ("feel like cutting again") is not a report of self-harm
    urges = [c for c in cues if c.construct == "selfharm_urge" and c.weight > 0]
    cues = [c for c in cues if not (c.construct == "selfharm" and any(
        u.start < c.end and c.start < u.end for u in urges))]
    # "the voices tell me to kill myself" is a command hallucination, not someone abusing the person
    voices = [c for c in cues if c.rule == "en.ideation.voices"]
    cues = [c for c in cues if not (c.construct == "abuse" and any(
        v.start < c.end and c.start < v.end for v in voices))]
    # "I've got the pills in my hand, just need a glass of water for my antibiotics", "wrote a goodbye note for my
    # flatmates before moving out": a message that names an ordinary use or reason makes its means / preparation /
    # farewell cues contextual, and they corroborate no other contextual cue: they count only beside an explicit
    # self-directed cue (unless it calls that use a cover story: "they think I'm just decluttering"). The use must be
    # named in the cue's sentence or the one before or after: a long post names many ordinary things
    near = _sentences_of(lex.ordinary_use, text, nz, ends, window=1)
    if near and not lex.cover_story.search(norm):
        cues = [dataclasses.replace(c, contextual=True, note=ORDINARY_USE_NOTE)
                if c.weight > 0 and c.construct in _ORDINARY_USE_CONSTRUCTS
                and _sentence_of(text, ends, c.start, c.end) in near else c for c in cues]
    # a denial ("I've never had thoughts of hurting myself") discounts the cues it covers
    denials = [c for c in cues if c.construct == "denial"]
    if denials:
        cues = [dataclasses.replace(c, weight=0.0, note="denied") if c.weight > 0 and c.construct in SELF_RISK
                and any(d.start <= c.start < d.end or c.start <= d.start < c.end for d in denials) else c
                for c in cues]
    return MessageAnalysis(_dedupe(cues), timing, bool(_LATER.search(norm)))


# Spanish "el" is the article as often as "he" (accents are folded): "el sabado intente..." is about the writer.
# It names a subject only at the end of the prefix or before a clitic/adverb ("el se quiere matar", "el ya no").
_EL_SUBJECT_NEXT = frozenset({"se", "me", "te", "lo", "la", "le", "no", "ya", "tambien", "siempre", "nunca", "dice",
                              "dijo", "quiere", "intento"})


# an act said to be meant: "on purpose", or a habit on the body ("I've been burning my wrists with my straighteners
# again" is no accident, whatever the straighteners suggest)
_ON_PURPOSE = re.compile(r"\b(?:on purpose|deliberately|intentionally|a proposito|ive been (?:burning|cutting|"
                         r"scratching|carving) my (?:wrists?|arms?|thighs?|legs?|stomach))\b")
_NOT_ON_PURPOSE = re.compile(r"\b(?:not|nt|never|didnt|wasnt|werent|isnt|no)\b(?:\s+\w+){0,3}?\s+"
                             r"(?:on purpose|deliberately|intentionally|a proposito)\b")


# a cue that names the writer as its own object is about the writer whoever is named before it: "cada vez que me peleo
# con mi novio pienso en quitarme la vida" (Spanish "-rme" infinitives), "...and then I'd kill myself"
_WRITER_REFLEXIVE = re.compile(r"myself|meself|\w+[aei]rme")


_ES_PARTICIPLE = re.compile(r"\w+(?:ado|ido)|escrito|dicho|hecho|visto|puesto|vuelto|roto|abierto")


def _subject(tokens: list[str], lex: Lexicon) -> str | None:
    """The nearest person word before a cue (None if there is none)."""
    for k in range(len(tokens) - 1, -1, -1):
        t = tokens[k]
        if t == "el" and k + 1 < len(tokens) and tokens[k + 1] not in _EL_SUBJECT_NEXT:
            continue
        if t == "he" and k + 1 < len(tokens) and _ES_PARTICIPLE.fullmatch(tokens[k + 1]):
            continue  # Spanish "he estado guardando", "he tomado": haber, not the English "he"
        if t in lex.third_person_possessed and not lex.possessive_determiners & set(tokens[max(0, k - 2):k]):
            continue  # "mate, kms" addresses someone; "my best mate posted a goodbye" is about him
        if t in lex.first_person or t in lex.third_person:
            return t
    return None


def _dedupe(cues: list[Cue]) -> list[Cue]:
    """Drop a cue whose span lies inside another cue of the same construct that counts at least as surely (a
    contextual cue never hides an explicit one inside it: "gave away my dog and my guitar")."""
    cues = sorted(cues, key=lambda c: (c.start, -(c.end - c.start)))
    out: list[Cue] = []
    for c in cues:
        if any(o.construct == c.construct and o.weight == c.weight and o.start <= c.start and c.end <= o.end
               and (c.contextual or not o.contextual) for o in out):
            continue
        out.append(c)
    return out


def decide(analyses: Sequence[MessageAnalysis]) -> tuple[RiskLevel, dict]:
    """The conversation's level from its counted cues (see the table at the top of lexicon.yaml)."""
    counted_cues = [c for a in analyses for c in a.cues if c.weight > 0 and c.construct not in FLAG_CONSTRUCTS]
    explicit = {c.construct for c in counted_cues if not c.contextual}
    ctx = {c.construct for c in counted_cues if c.contextual}
    stressor = any(c.construct == "stressor" for a in analyses for c in a.cues)
    # cues made contextual by a named ordinary use corroborate nothing, not even each other
    ctx_strict = {c.construct for c in counted_cues if c.contextual and c.note != ORDINARY_USE_NOTE}
    context_ok = bool(explicit & SELF_RISK) or len(ctx_strict) >= 2 or (stressor and bool(ctx_strict))
    counted = explicit | (ctx if context_ok else set())
    by_msg: dict[int, set[str]] = {}
    for c in counted_cues:
        if context_ok or not c.contextual:
            by_msg.setdefault(c.message_index, set()).add(c.construct)
    # timing counts for an intent/plan/means cue in the same message (unless that message names a later
    # time and no strong "now") or in any earlier message
    acting = {"intent", "plan", "means_at_hand", "ideation", "farewell", "passive"}
    now_with: set[str] = set()
    for a in analyses:
        if not a.timing:
            continue
        idx = a.timing[0].message_index
        for j, constructs in by_msg.items():
            if j < idx or (j == idx and not (a.later and not _strong_now(a.timing))):
                now_with |= constructs & acting
    strong_timing = any(c.text.lower() not in ("now", "today", "hoy", "soon") for a in analyses for c in a.timing)
    has = counted.__contains__
    acts = has("intent") or has("plan")
    imminent = (
        has("attempt_now")
        or (has("means_at_hand") and (acts or has("ideation") or has("farewell")))
        or bool(now_with & {"intent", "plan", "means_at_hand", "farewell"} and (acts or "farewell" in now_with))
        or ("means_at_hand" in now_with and bool(counted & (SELF_RISK - {"means_at_hand"})))
    )
    if imminent:
        level = RiskLevel.IMMINENT
    elif counted & HIGH or (now_with & {"ideation", "passive"} and strong_timing):  # "I want to die tonight"
        level = RiskLevel.HIGH
    elif counted & MODERATE:
        level = RiskLevel.MODERATE
    elif counted & LOW:
        level = RiskLevel.LOW
    else:
        level = RiskLevel.NONE
    return level, {"constructs": sorted(counted), "context_ok": context_ok, "now_with": sorted(now_with)}


_WORD_CHAR = re.compile(r"\w")


# an attempt told as past: said in the attempt's own sentence or the next one ("Took all my pills. Woke up in
# hospital."); a long post's "Priya came round every night last week" says nothing about "forty minutes ago I
# swallowed thirty co-codamol" (issue 7, round 26: the whole message was searched before)
_ATTEMPT_PAST = re.compile(
    r"\b(?:last\s+night|yesterday|days?\s+ago|last\s+week|woke\s+up|survived|in\s+hospital|"
    r"last\s+month|weeks?\s+ago|months?\s+ago|last\s+weekend|the\s+other\s+(?:day|night)|"
    r"anoche|ayer|me\s+desperte|desperte|hace\s+\w+\s+(?:dias|semanas)|en\s+el\s+hospital|"
    r"la\s+semana\s+pasada|el\s+mes\s+pasado)\b")

# ...unless its own sentence says it was just now ("About forty minutes ago I swallowed thirty co-codamol")
_ATTEMPT_JUST_NOW = re.compile(
    r"\b(?:(?:a\s+few|few|\d+|an?|one|two|three|five|ten|twenty|thirty|forty|fifty)\s+(?:minutes?|mins?|hours?)\s+ago|"
    r"just\s+now|right\s+now|hace\s+(?:un\s+rato|unos\s+minutos|una\s+hora|\d+\s+minutos))\b")


# "the suicidal thoughts are worse than when I was drinking", "I'll walk into the sea the way we used to walk along
# it": a past tense after a comparison dates the thing compared, not the cue
_COMPARISON = re.compile(r"\b(?:than|the\s+way|like)\b")


def _before_comparison(after: str) -> str:
    return _COMPARISON.split(after, maxsplit=1)[0]


_AGAIN = re.compile(r"\b(?:again|otra\s+vez|de\s+nuevo)\b")
_RECENT_DAY = re.compile(r"\b(?:last\s+night|yesterday|anoche|ayer)\b")


def _recent_again(norm: str, m: re.Match[str], lex: Lexicon) -> bool:
    """Whether a message that names a remote time also says this act happened again or lately. "Again" anywhere
    refers back to the act; "yesterday" does only where the act's own sentence names no remote time ("Seven years
    ago I tried to end my life. Yesterday I got married" is a recovery story)."""
    if _AGAIN.search(norm):
        return True
    own = _sentence_window(norm, m.start(), m.end(), after=0)
    return bool(_RECENT_DAY.search(norm, *own) if lex.remote.search(norm, *own) else _RECENT_DAY.search(norm))


def _sentence_window(norm: str, start: int, end: int, after: int = 1) -> tuple[int, int]:
    """[s, e) of normalised text: the sentence holding norm[start:end] and the `after` sentences that follow it."""
    s = max((m.end() for m in _SENTENCE_END.finditer(norm, 0, start)), default=0)
    e = end
    for _ in range(after + 1):
        m = _SENTENCE_END.search(norm, e)
        if m is None:
            return s, len(norm)
        e = m.end()
    return s, e


def _sentence_of(text: str, ends: list[int], start: int, end: int) -> int:
    """The index of the sentence a cue belongs to, by its first word character: a match that starts at a sentence
    start (%START%) begins with the previous sentence's full stop (". Cut myself" is in the second sentence)."""
    m = _WORD_CHAR.search(text, start, end)
    return bisect.bisect_right(ends, m.start() if m else start)


def _sentences_of(phrases: re.Pattern[str], text: str, nz: Normalized, ends: list[int], window: int) -> set[int]:
    """Indexes of the sentences (by `ends`) within `window` of one where `phrases` match (in `nz`, the normalised
    `text`)."""
    found = {_sentence_of(text, ends, *nz.span(m.start(), m.end())) for m in phrases.finditer(nz.text)}
    return {k + d for k in found for d in range(-window, window + 1)}


def _strong_now(timing: Sequence[Cue]) -> bool:
    return any(re.search(r"tonight|tonite|right now|esta noche|ahora", t.text.lower()) for t in timing)
