"""The IMHI task registry: one entry per IMHI set, with its questions, labels, gold sentences and parser.

IMHI (MentaLLaMA, Yang et al. 2024) asks one question per post and expects
`<label sentence> Reasoning: <explanation>`. A Task knows, for its set:

- the question(s) in the instruction format and the completion format (one per aspect for IRF and MultiWD),
- its label set and the gold label sentence for each label, exactly as IMHI writes it,
- `parse(answer)`: the label a free-form model answer states, or None when it states none.

The parser first recognises IMHI's own sentences (so it agrees with every gold answer), then reads prose:
it finds label mentions by position, ignores negated ones ("does not suffer from depression", "not related
to work"), accepts a label stated after a leading "Reasoning:", and reads yes/no questions answered in
sentences ("the poster is clearly stressed"). Hedges ("it is unclear") give None, not a guess.

SWMH and CLP test files are not public in the IMHI release used here; their sentences follow the same
templates as the sets that are (CLP shares DR's question and sentences, SWMH shares T-SID's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mentalens.errors import UnknownNameError
from mentalens.registry import Registry

Kind = Literal["binary", "multiclass"]

_WS = re.compile(r"\s+")
_MARKUP = re.compile(r"[*_`#>]+")


def normalize_answer(text: str) -> str:
    """Lower-case, strip markdown and quotes, fold whitespace and typographic apostrophes."""
    text = str(text).replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = _MARKUP.sub(" ", text)
    return _WS.sub(" ", text).strip().lower()


def split_answer(answer: str) -> tuple[str, str]:
    """(label part, explanation) of an IMHI-style answer, split at the first "Reasoning:"."""
    head, sep, tail = str(answer).partition("Reasoning:")
    if not sep:
        m = re.search(r"reasoning\s*:", str(answer), flags=re.IGNORECASE)
        if m:
            return answer[: m.start()].strip(), answer[m.end() :].strip()
        return str(answer).strip(), ""
    return head.strip(), tail.strip()


# ----------------------------------------------------------------------------------------------- parsing

_NEGATORS = (
    r"not|no|never|without|none|nor|neither|lacks?|lacking|absence|absent|free of|free from|rules? out|"
    r"ruled out|unlikely|doesn't|does not|don't|do not|isn't|is not|aren't|are not|wasn't|was not|"
    r"didn't|did not|cannot|can't|won't|hardly|nothing|n't"
)
_NEG_RE = re.compile(rf"(?:\b(?:{_NEGATORS})\b|n't\b)")
_SCOPE_BREAK = re.compile(r"\b(?:and|but|however|although|though|while|whereas|yet|instead|rather)\b|[,;:]")
_HEDGE = re.compile(
    r"\b(?:not sure|unsure|unclear|uncertain|not clear|cannot (?:be )?determined?|can't (?:be )?determined?|"
    r"unable to (?:determine|tell|say)|insufficient (?:information|evidence)|not enough (?:information|context)|"
    r"hard to (?:say|tell)|difficult to (?:say|tell|determine)|can't tell|cannot tell|impossible to (?:say|tell)|"
    r"i don't know|i do not know|no way to (?:know|tell))\b"
)
_YES_START = re.compile(r"^(?:answer\s*:\s*|label\s*:\s*|a\s*:\s*)?[\"'(\[]*(?:yes|yeah|yep|affirmative|correct)\b")
_NO_START = re.compile(
    r"^(?:answer\s*:\s*|label\s*:\s*|a\s*:\s*)?[\"'(\[]*(?:no|nope|negative)\b(?!\s+(?:mental|causes?|other|stress))"
)
_ANSWER_IS = re.compile(r"\banswer(?: to (?:the|this) question)?(?:[^.]{0,80}?)\bis\s*:?\s*[\"']?(yes|no)\b")
_CLAUSE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _negated(text: str, start: int, end: int) -> bool:
    """Is the mention text[start:end] negated in its clause (a negator shortly before or right after)?"""
    before = text[max(0, start - 60) : start]
    # only the part of `before` after the last scope break counts
    cut = 0
    for m in _SCOPE_BREAK.finditer(before):
        cut = m.end()
    before = before[cut:]
    tokens_before = before.split()[-6:]
    if _NEG_RE.search(" ".join(tokens_before)):
        return True
    after = text[end : end + 40]
    stop = _SCOPE_BREAK.search(after)
    after = after[: stop.start()] if stop else after
    return bool(_NEG_RE.search(" ".join(after.split()[:4])))


@dataclass(frozen=True)
class _Mention:
    label: str
    start: int
    end: int
    negated: bool


def _find_mentions(text: str, patterns: Sequence[tuple[str, re.Pattern[str]]]) -> list[_Mention]:
    """All label mentions by position; longer phrases claim their span first ("no mental disorders")."""
    taken: list[tuple[int, int]] = []
    found: list[_Mention] = []
    for label, pattern in patterns:  # patterns are ordered longest phrase first
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            found.append(_Mention(label, m.start(), m.end(), False))
    found.sort(key=lambda x: x.start)
    return [_Mention(f.label, f.start, f.end, _negated(text, f.start, f.end)) for f in found]


# ----------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    """One IMHI set: its questions, labels, gold sentences and answer parser."""

    name: str
    imhi_set: str
    title: str
    kind: Kind
    labels: tuple[str, ...]
    label_sentences: Mapping[str, str]
    completion_answers: Mapping[str, str]
    questions: Mapping[str | None, str]
    completion_questions: Mapping[str | None, str]
    label_phrases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    concept: str = ""
    aspect_keywords: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    available: bool = True

    # ---- questions and aspects
    @property
    def aspects(self) -> tuple[str, ...]:
        return tuple(a for a in self.questions if a is not None)

    def question(self, aspect: str | None = None, fmt: str = "instruction") -> str:
        table = self.questions if fmt == "instruction" else self.completion_questions
        key = self._aspect_key(aspect)
        return table[key]

    def _aspect_key(self, aspect: str | None) -> str | None:
        if not self.aspects:
            return None
        if aspect is None:
            raise UnknownNameError(f"{self.name} aspect", "(none)", self.aspects)
        for a in self.aspects:
            if aspect.lower() in (a, a.split()[-1]):
                return a
        raise UnknownNameError(f"{self.name} aspect", aspect, self.aspects)

    def aspect_of(self, question: str) -> str | None:
        """Which aspect a question asks about (None for single-question tasks or no match)."""
        q = question.lower()
        for aspect, keyword in self.aspect_keywords.items():
            if keyword in q:
                return aspect
        return None

    # ---- gold answers
    def gold_sentence(self, label: str) -> str:
        return self.label_sentences[self.check_label(label)]

    def gold_answer(self, label: str, explanation: str, fmt: str = "instruction") -> str:
        head = self.gold_sentence(label) if fmt == "instruction" else self.completion_answers[label]
        return f"{head} Reasoning: {explanation.strip()}" if explanation.strip() else head

    def check_label(self, label: str) -> str:
        if label not in self.labels:
            raise UnknownNameError(f"{self.name} label", label, self.labels)
        return label

    # ---- parsing
    def parse(self, answer: str | None) -> str | None:
        """The label a free-form answer states, or None when it states none (or only hedges)."""
        if answer is None:
            return None
        head, tail = split_answer(str(answer))
        if not head and tail:  # "Reasoning: Yes, the poster ..." (a label after a leading Reasoning:)
            head, tail = split_answer(tail)
            if not head:
                head, tail = tail, ""
        for part in (head, tail):
            label = self._parse_part(normalize_answer(part))
            if label is not None:
                return label
            if part is head and _HEDGE.search(normalize_answer(head)):
                return None
        return None

    def _parse_part(self, text: str) -> str | None:
        if not text:
            return None
        exact = self._exact(text)
        if exact is not None:
            return exact
        if self.kind == "binary":
            return self._parse_binary(text)
        return self._parse_multiclass(text)

    def _exact(self, text: str) -> str | None:
        """IMHI's own sentences and completion answers (longest first), at the start of the text."""
        for label, sentence in sorted(
            [*self.label_sentences.items(), *self.completion_answers.items()], key=lambda kv: -len(kv[1])
        ):
            s = normalize_answer(sentence).rstrip(".")
            if text == s or text.startswith(s + ".") or text.startswith(s + " ") or text.startswith(s + ","):
                return label
        return None

    def _parse_binary(self, text: str) -> str | None:
        if _YES_START.search(text):
            return "yes"
        if _NO_START.search(text):
            return "no"
        m = _ANSWER_IS.search(text)
        if m:
            return m.group(1)
        for sentence in _CLAUSE_SPLIT.split(text):
            if _HEDGE.search(sentence):
                continue
            mentions = _find_mentions(sentence, [("yes", self._concept_re)])
            if mentions:
                return "no" if mentions[0].negated else "yes"
        return None

    def _parse_multiclass(self, text: str) -> str | None:
        for sentence in _CLAUSE_SPLIT.split(text):
            if _HEDGE.search(sentence):
                continue
            for mention in _find_mentions(sentence, self._phrase_patterns):
                if not mention.negated:
                    return mention.label
        return None

    @property
    def _concept_re(self) -> re.Pattern[str]:
        return _compiled(self.concept)

    @property
    def _phrase_patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        pairs = [(label, p) for label, phrases in self.label_phrases.items() for p in phrases]
        pairs.sort(key=lambda lp: -len(lp[1]))
        return [(label, _compiled(rf"\b(?:{p})(?!\w)")) for label, p in pairs]


_RE_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _RE_CACHE:
        _RE_CACHE[pattern] = re.compile(pattern)
    return _RE_CACHE[pattern]


def _yes_no(yes: str, no: str) -> dict[str, str]:
    return {"no": no, "yes": yes}


def _yn_completion() -> dict[str, str]:
    return {"no": "no.", "yes": "yes."}


TASKS: Registry[Task] = Registry("IMHI task")


def _add(task: Task, *aliases: str) -> Task:
    TASKS.register(task.name, task, aliases=(task.imhi_set, *aliases))
    return task


_DEPRESSION_CONCEPT = r"\b(?:depress(?:ion|ed|ive)|major depressive)"

_add(
    Task(
        name="DR",
        imhi_set="DR",
        title="depression (Reddit)",
        kind="binary",
        labels=("no", "yes"),
        label_sentences=_yes_no(
            "Yes, the poster suffers from depression.", "No, the poster does not suffer from depression."
        ),
        completion_answers=_yn_completion(),
        questions={None: "Does the poster suffer from depression?"},
        completion_questions={None: 'The answer to the question "Does the poster suffers from depression?" is'},
        concept=_DEPRESSION_CONCEPT,
        description="Depression detection on Reddit posts (Pirina & Coltekin 2018).",
    ),
    "depression",
)
_add(
    Task(
        name="CLP",
        imhi_set="CLP",
        title="depression (CLPsych 2015)",
        kind="binary",
        labels=("no", "yes"),
        label_sentences=_yes_no(
            "Yes, the poster suffers from depression.", "No, the poster does not suffer from depression."
        ),
        completion_answers=_yn_completion(),
        questions={None: "Does the poster suffer from depression?"},
        completion_questions={None: 'The answer to the question "Does the poster suffers from depression?" is'},
        concept=_DEPRESSION_CONCEPT,
        description="Depression detection on Twitter (CLPsych 2015). Test file not in the public IMHI release.",
        available=False,
    ),
)
_add(
    Task(
        name="dreaddit",
        imhi_set="dreaddit",
        title="stress",
        kind="binary",
        labels=("no", "yes"),
        label_sentences=_yes_no("Yes, the poster suffers from stress.", "No, the poster does not suffer from stress."),
        completion_answers=_yn_completion(),
        questions={None: "Does the poster suffer from stress?"},
        completion_questions={None: 'The answer to the question "Does the poster suffers from stress?" is'},
        concept=r"\b(?:stress(?:ed|ful|ors?)?|distress(?:ed)?|under pressure|overwhelmed)",
        description="Stress detection on Reddit posts (Dreaddit, Turcan & McKeown 2019).",
    ),
    "stress",
)
_add(
    Task(
        name="SWMH",
        imhi_set="swmh",
        title="mental disorders",
        kind="multiclass",
        labels=("none", "suicide", "depression", "anxiety", "bipolar"),
        label_sentences={
            "none": "This post shows no mental disorders.",
            "suicide": "This post shows suicide or self-harm tendency.",
            "depression": "This post shows depression.",
            "anxiety": "This post shows anxiety.",
            "bipolar": "This post shows bipolar disorder.",
        },
        completion_answers={
            "none": "no mental disorders.",
            "suicide": "suicide or self-harm tendency.",
            "depression": "depression.",
            "anxiety": "anxiety.",
            "bipolar": "bipolar disorder.",
        },
        questions={None: "What mental disorder does this post show?"},
        completion_questions={None: "This post shows the mental disorder symptoms of"},
        label_phrases={
            "none": (
                "no mental disorders?",
                "no (?:signs of )?(?:any )?mental (?:health )?(?:disorders?|illness)",
                "none",
                "no disorder",
            ),
            "suicide": ("suicid\\w*", "self-harm\\w*", "self harm\\w*", "kill(?:ing)? (?:him|her|them)?self"),
            "depression": ("depress\\w*",),
            "anxiety": ("anxi\\w*", "panic"),
            "bipolar": ("bipolar\\w*", "mania", "manic"),
        },
        description="Mental disorders on Reddit (SWMH, Ji et al. 2022). Test file not in the public IMHI release.",
        available=False,
    ),
    "mental-disorders",
)
_add(
    Task(
        name="T-SID",
        imhi_set="t-sid",
        title="mental disorders (Twitter)",
        kind="multiclass",
        labels=("none", "suicide or self-harm", "depression", "ptsd"),
        label_sentences={
            "none": "This post shows no mental disorders.",
            "suicide or self-harm": "This post shows suicide or self-harm tendency.",
            "depression": "This post shows depression.",
            "ptsd": "This post shows PTSD.",
        },
        completion_answers={
            "none": "no mental disorders.",
            "suicide or self-harm": "suicide or self-harm tendency.",
            "depression": "depression.",
            "ptsd": "ptsd.",
        },
        questions={None: "What mental disorder does this post show?"},
        completion_questions={None: "This post shows the mental disorder symptoms of"},
        label_phrases={
            "none": (
                "no mental disorders?",
                "no (?:signs of )?(?:any )?mental (?:health )?(?:disorders?|illness)",
                "none",
                "control",
                "no disorder",
            ),
            "suicide or self-harm": ("suicid\\w*", "self-harm\\w*", "self harm\\w*"),
            "depression": ("depress\\w*",),
            "ptsd": ("ptsd", "post-traumatic stress", "post traumatic stress", "trauma\\w*"),
        },
        description="Suicide, depression and PTSD on Twitter (T-SID, Ji et al. 2022).",
    ),
    "tsid",
)
_add(
    Task(
        name="SAD",
        imhi_set="SAD",
        title="stress causes",
        kind="multiclass",
        labels=(
            "school",
            "financial problem",
            "family issues",
            "social relationships",
            "work",
            "health issues",
            "emotion turmoil",
            "everyday decision making",
            "other causes",
        ),
        label_sentences={
            "school": "This post shows the stress cause related to school.",
            "financial problem": "This post shows the stress cause related to financial problem.",
            "family issues": "This post shows the stress cause related to family issues.",
            "social relationships": "This post shows the stress cause related to social relationships.",
            "work": "This post shows the stress cause related to work.",
            "health issues": "This post shows the stress cause related to health issues.",
            "emotion turmoil": "This post shows the stress cause related to emotion turmoil.",
            "everyday decision making": "This post shows the stress cause related to everyday decision making.",
            "other causes": "This post shows other stress causes.",
        },
        completion_answers={
            "school": "school.",
            "financial problem": "financial problem.",
            "family issues": "family issues.",
            "social relationships": "social relationships.",
            "work": "work.",
            "health issues": "health issues.",
            "emotion turmoil": "emotional turmoil.",
            "everyday decision making": "everyday decision making.",
            "other causes": "other causes.",
        },
        questions={None: "What is the stress cause of this post?"},
        completion_questions={None: "This post shows the stress cause of"},
        label_phrases={
            "school": ("school\\w*", "academic\\w*", "exams?", "studies", "college", "university"),
            "financial problem": ("financ\\w*", "money", "debt", "economic\\w*"),
            "family issues": ("family\\w*", "famil\\w*", "parent\\w*"),
            "social relationships": ("social relationships?", "social\\w*", "friends?(?:hips?)?", "relationships?"),
            "work": ("work\\w*", "jobs?", "career", "employ\\w*", "boss"),
            "health issues": ("health\\w*", "medical", "illness"),
            "emotion turmoil": ("emotion turmoil", "emotional turmoil", "emotion\\w*"),
            "everyday decision making": (
                "everyday decision making",
                "everyday decisions?",
                "decision[- ]making",
                "decisions?",
            ),
            "other causes": ("other stress causes", "other causes?", "others?"),
        },
        description="Causes of stress in SMS-like messages (SAD, Mauriello et al. 2021).",
    ),
    "stress-cause",
)
_add(
    Task(
        name="CAMS",
        imhi_set="CAMS",
        title="causes of depression",
        kind="multiclass",
        labels=("none", "bias or abuse", "jobs and career", "medication", "relationship", "alienation"),
        label_sentences={
            "none": "This post shows no causes of depression.",
            "bias or abuse": "This post shows causes of depression related to bias or abuse.",
            "jobs and career": "This post shows causes of depression related to jobs and career.",
            "medication": "This post shows causes of depression related to medication.",
            "relationship": "This post shows causes of depression related to relationship.",
            "alienation": "This post shows causes of depression related to alienation.",
        },
        completion_answers={
            "none": "none.",
            "bias or abuse": "bias or abuse.",
            "jobs and career": "jobs and career.",
            "medication": "medication.",
            "relationship": "relationship.",
            "alienation": "alienation.",
        },
        questions={None: "What cause of depression does this post show?"},
        completion_questions={None: "This post shows the mental disorder cause of"},
        label_phrases={
            "none": ("no causes?(?: of depression)?", "none", "no specific cause", "no (?:clear |apparent )?cause"),
            "bias or abuse": ("bias or abuse", "bias\\w*", "abus\\w*", "bull(?:y|ied|ying)", "discriminat\\w*"),
            "jobs and career": ("jobs and careers?", "jobs?", "careers?", "work\\w*", "employ\\w*", "unemploy\\w*"),
            "medication": ("medications?", "medicines?", "medical\\w*", "drugs?", "prescri\\w*"),
            "relationship": ("relationships?", "relation\\w*", "break ?ups?", "partner"),
            "alienation": ("alienat\\w*", "isolat\\w*", "meaningless\\w*", "lonel\\w*"),
        },
        description="Causes of depression and suicide on Reddit (CAMS, Garg et al. 2022).",
    ),
    "depression-cause",
)
_add(
    Task(
        name="loneliness",
        imhi_set="loneliness",
        title="loneliness",
        kind="binary",
        labels=("no", "yes"),
        label_sentences=_yes_no(
            "Yes, the poster suffers from loneliness.", "No, the poster does not suffer from loneliness."
        ),
        completion_answers=_yn_completion(),
        questions={None: "Does the poster suffer from loneliness?"},
        completion_questions={None: 'The answer to the question "Does the poster suffers from loneliness?" is'},
        concept=r"\b(?:lonel(?:y|iness)|(?:socially )?isolat(?:ed|ion)|feel(?:s|ing)? alone)",
        description="Loneliness on Reddit (Garg et al. 2023).",
    ),
)
_add(
    Task(
        name="MultiWD",
        imhi_set="MultiWD",
        title="wellness dimensions",
        kind="binary",
        labels=("no", "yes"),
        label_sentences=_yes_no(
            "Yes, this wellness dimension exists in the post.",
            "No, this wellness dimension does not exist in the post.",
        ),
        completion_answers=_yn_completion(),
        questions={
            a: f"Does the {a} wellness dimension exist in the post?"
            for a in ("spiritual", "physical", "intellectual", "social", "vocational", "emotional")
        },
        completion_questions={
            a: f'The answer to the question "Does the {a} wellness dimension exists in the post?" is'
            for a in ("spiritual", "physical", "intellectual", "social", "vocational", "emotional")
        },
        aspect_keywords={a: a for a in ("spiritual", "physical", "intellectual", "social", "vocational", "emotional")},
        concept=r"\b(?:(?:wellness )?dimensions?|aspects?(?: of wellness)?|wellness)\b",
        description="Six wellness dimensions (Dunn's model) on Reddit (MultiWD, Sathvik & Garg 2023).",
    ),
    "wellness",
)
_add(
    Task(
        name="IRF",
        imhi_set="Irf",
        title="interpersonal risk factors",
        kind="binary",
        labels=("no", "yes"),
        label_sentences=_yes_no("Yes, the post shows this risk.", "No, the post does not show this risk."),
        completion_answers=_yn_completion(),
        questions={
            "thwarted belongingness": "Does the post show risk of thwarted belongingness?",
            "perceived burdensomeness": "Does the post show risk of perceived burdensomeness?",
        },
        completion_questions={
            "thwarted belongingness": 'The answer to the question: "Does the post shows risk of thwarted '
            'belongingness?" is',
            "perceived burdensomeness": 'The answer to the question: "Does the post shows risk of perceived '
            'burdensomeness?" is',
        },
        aspect_keywords={"thwarted belongingness": "belonging", "perceived burdensomeness": "burden"},
        concept=r"\b(?:risk|thwarted belongingness|perceived burdensomeness|burden\w*|belonging\w*)",
        description="Thwarted belongingness and perceived burdensomeness (IRF, Garg et al. 2023).",
    ),
    "interpersonal-risk",
)


def get_task(name: str) -> Task:
    """A task by name, IMHI set name or alias (case-insensitive); unknown names list the valid ones."""
    return TASKS.get(name)


def all_tasks(available_only: bool = False) -> list[Task]:
    return [t for _, t in TASKS.items() if t.available or not available_only]


def task_for_set(set_name: str) -> Task:
    """The task of an IMHI file stem ("t-sid", "Irf", ...)."""
    return TASKS.get(set_name)


def detect_task(question: str) -> tuple[Task, str | None] | None:
    """Which task (and aspect) an IMHI question asks, from instruction or completion wording."""
    q = normalize_answer(question)
    candidates = []
    for _, task in TASKS.items():
        if not task.available:
            continue
        for aspect, text in [*task.questions.items(), *task.completion_questions.items()]:
            if normalize_answer(text).rstrip("?. ") in q:
                candidates.append((len(text), task, aspect))
    if not candidates:
        return None
    _, task, aspect = max(candidates, key=lambda c: c[0])
    return task, aspect


__all__ = ["TASKS", "Task", "all_tasks", "detect_task", "get_task", "normalize_answer", "split_answer"]
