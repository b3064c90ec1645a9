"""IMHI-style answers written only from the evidence: `<gold label sentence> Reasoning: ...`.

The reasoning quotes the post's own sentences that the attribution ranked highest and states the model's
estimated probability; it adds no symptom, cause or fact the post does not contain, and it speaks of what
the wording suggests, never of a diagnosis.
"""

from __future__ import annotations

from collections.abc import Sequence

from mentalens.analyze.types import Evidence
from mentalens.tasks import get_task

QUOTE_CHARS = 200

# What a positive answer of each binary head is about, in plain words.
_BINARY_CONCEPT = {
    "DR": "depression",
    "dreaddit": "stress",
    "loneliness": "loneliness",
    "IRF.thwarted belongingness": "thwarted belongingness (feeling disconnected from others)",
    "IRF.perceived burdensomeness": "perceived burdensomeness (feeling a burden to others)",
}
# What each multi-class label points to.
_CLASS_PHRASE = {
    "SAD": lambda label: "other stress causes" if label == "other causes" else f"stress related to {label}",
    "CAMS": lambda label: "no specific cause of depression" if label == "none" else f"a cause related to {label}",
    "T-SID": lambda label: {
        "none": "no mental disorder",
        "suicide or self-harm": "suicide or self-harm tendency",
        "depression": "depression",
        "ptsd": "PTSD",
    }[label],
}
_NEUTRAL_LABELS = {"none", "other causes"}


def concept(key: str) -> str:
    if key in _BINARY_CONCEPT:
        return _BINARY_CONCEPT[key]
    if key.startswith("MultiWD."):
        return f"the {key.split('.', 1)[1]} wellness dimension"
    return key


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """The sentence in double quotes, shortened at a word boundary when long (still the post's words)."""
    text = " ".join(text.split()).replace('"', "'")
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > limit // 2 else limit].rstrip(",;: ") + " ..."
    return f'"{text}"'


def join_quotes(evidence: Sequence[Evidence]) -> str:
    q = [quote(e.sentence) for e in evidence]
    if len(q) == 1:
        return q[0]
    return ", ".join(q[:-1]) + " and " + q[-1]


def write_answer(
    key: str, task_name: str, label: str, probabilities: dict[str, float], evidence: Sequence[Evidence]
) -> str:
    """The IMHI answer for one head's prediction, reasoning only from the cited evidence sentences."""
    task = get_task(task_name)
    head = task.gold_sentence(label)
    if task.kind == "binary":
        reasoning = _binary(key, label, probabilities, evidence)
    else:
        reasoning = _multiclass(task.name, label, probabilities, evidence)
    return f"{head} Reasoning: {reasoning}"


def _binary(key: str, label: str, probs: dict[str, float], evidence: Sequence[Evidence]) -> str:
    c = concept(key)
    p_yes = probs.get("yes", 0.0)
    if label == "yes":
        if evidence:
            verb = "is the sentence that most raises" if len(evidence) == 1 else "are the sentences that most raise"
            return (
                f"The post says {join_quotes(evidence)}, which {verb} the estimated probability of {c} ({p_yes:.2f})."
            )
        return f"The wording of the post as a whole raises the estimated probability of {c} ({p_yes:.2f})."
    if evidence:
        return (
            f"The wording of the post gives a low estimated probability of {c} ({p_yes:.2f}); the sentences that "
            f"weigh most against it are {join_quotes(evidence)}."
        )
    return f"Nothing in the post raises the estimated probability of {c} enough ({p_yes:.2f})."


def _multiclass(task: str, label: str, probs: dict[str, float], evidence: Sequence[Evidence]) -> str:
    phrase = _CLASS_PHRASE[task]
    ranked = sorted(probs.items(), key=lambda kv: -kv[1])
    runner = next(((lab, p) for lab, p in ranked if lab != label), None)
    p = probs.get(label, 0.0)
    if label in _NEUTRAL_LABELS:
        text = f"No sentence points clearly to a specific answer (estimated probability of {phrase(label)}: {p:.2f})"
        if runner is not None:
            text += f"; the next most likely answer, {phrase(runner[0])}, has {runner[1]:.2f}"
        text += "."
        if evidence:
            text += f" The sentences that most support this answer are {join_quotes(evidence)}."
        return text
    if evidence:
        verb = "is the sentence that most points" if len(evidence) == 1 else "are the sentences that most point"
        text = (
            f"The post says {join_quotes(evidence)}, which {verb} to {phrase(label)} (estimated probability {p:.2f})."
        )
    else:
        text = f"The wording of the post as a whole points to {phrase(label)} (estimated probability {p:.2f})."
    if runner is not None and runner[1] >= 0.15:
        text += f" The next most likely answer is {phrase(runner[0])} ({runner[1]:.2f})."
    return text


def empty_answer(task_name: str) -> str:
    """The answer for a post with no text: the task's 'nothing found' label, saying why."""
    task = get_task(task_name)
    label = "no" if "no" in task.labels else "none" if "none" in task.labels else "other causes"
    reason = "The post has no text to analyse, so nothing in it supports a finding."
    return f"{task.gold_sentence(label)} Reasoning: {reason}"


__all__ = ["concept", "empty_answer", "quote", "write_answer"]
