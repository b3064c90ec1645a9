"""The IMHI task registry and its label parser, on every gold answer and on hand-written hard cases."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mentalens.errors import UnknownNameError
from mentalens.tasks import TASKS, all_tasks, detect_task, get_task, split_answer

ALL_SETS = ("DR", "CLP", "dreaddit", "SWMH", "T-SID", "SAD", "CAMS", "loneliness", "MultiWD", "IRF")


def test_registry_has_all_ten_imhi_sets():
    assert sorted(TASKS.names()) == sorted(ALL_SETS)
    for task in all_tasks():
        assert set(task.label_sentences) == set(task.labels) == set(task.completion_answers)
        assert len(set(task.label_sentences.values())) == len(task.labels), task.name


def test_names_are_case_insensitive_and_unknown_names_list_choices():
    assert get_task("t-sid").name == "T-SID"
    assert get_task("irf").name == "IRF"
    assert get_task("Irf").imhi_set == "Irf"
    with pytest.raises(UnknownNameError) as exc:
        get_task("dreadit")
    assert "did you mean 'dreaddit'" in str(exc.value) and "loneliness" in str(exc.value)


def test_aspects_and_questions():
    irf = get_task("IRF")
    assert irf.aspects == ("thwarted belongingness", "perceived burdensomeness")
    assert irf.aspect_of("Does the post show risk of perceived burdensomeness?") == "perceived burdensomeness"
    wd = get_task("MultiWD")
    assert len(wd.aspects) == 6
    assert wd.question("social") == "Does the social wellness dimension exist in the post?"
    with pytest.raises(UnknownNameError):
        wd.question("financial")
    assert get_task("DR").question() == "Does the poster suffer from depression?"


def _gold_files(imhi_dir: Path) -> list[Path]:
    return sorted((imhi_dir / "test_data").glob("*/*.csv"))


def test_parser_agrees_with_every_gold_answer(imhi_dir):
    """100% agreement with the label sentence of every gold answer in every IMHI test file."""
    files = _gold_files(imhi_dir)
    assert len(files) == 16
    checked = 0
    for path in files:
        task = get_task(path.stem)
        sentences = {
            **{s.lower().rstrip("."): label for label, s in task.label_sentences.items()},
            **{s.lower().rstrip("."): label for label, s in task.completion_answers.items()},
        }
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                gold = row["gpt-3.5-turbo"]
                head, _ = split_answer(gold)
                # the gold label, read independently: the label sentence the answer starts with
                key = head.strip().lower().rstrip(".")
                expected = next(
                    (lab for s, lab in sorted(sentences.items(), key=lambda kv: -len(kv[0])) if key.startswith(s)),
                    None,
                )
                assert expected is not None, (path.name, head)
                assert task.parse(gold) == expected, (path.name, gold[:200])
                checked += 1
    assert checked == 2 * (625 + 405 + 2113 + 2441 + 684 + 414 + 528 + 959)


# (task, answer, expected label) — free text that simple substring matching gets wrong or guesses on
HARD_CASES = [
    ("DR", "The poster does not suffer from depression.", "no"),
    ("DR", "I don't think the poster is depressed; they are mostly frustrated with a friend.", "no"),
    ("DR", "Reasoning: Yes, the poster suffers from depression. Reasoning: They describe numbness.", "yes"),
    ("DR", "The poster seems to be struggling with depression after the breakup.", "yes"),
    ("DR", "There is no evidence of depression in this post.", "no"),
    ("DR", "It is unclear whether the poster suffers from depression.", None),
    ("DR", "", None),
    ("dreaddit", "I know the poster suffers from stress about the deadline.", "yes"),
    ("dreaddit", "Absolutely, the poster is clearly stressed by the exams.", "yes"),
    ("dreaddit", "The poster doesn't appear to be stressed; the tone is relaxed.", "no"),
    ("dreaddit", "The answer to the question is: no. The poster is calm.", "no"),
    ("loneliness", "The poster feels lonely and isolated since moving away.", "yes"),
    ("loneliness", "Although they spend time alone, the poster is not lonely.", "no"),
    ("MultiWD", "This wellness dimension does not exist in the post.", "no"),
    ("MultiWD", "The social wellness dimension clearly exists in the post.", "yes"),
    ("IRF", "The post does not show any risk of perceived burdensomeness.", "no"),
    ("IRF", "The poster shows a clear risk of thwarted belongingness.", "yes"),
    ("SAD", "This post shows the stress cause related to family issues rather than school.", "family issues"),
    ("SAD", "The stress is not related to work; it comes from financial problems and debt.", "financial problem"),
    ("SAD", "Not school. The main stressor is the poster's health issues.", "health issues"),
    ("SAD", "Reasoning: The cause is everyday decision making about what to cook.", "everyday decision making"),
    ("T-SID", "This post does not show depression; it shows PTSD.", "ptsd"),
    ("T-SID", "This post shows no mental disorders.", "none"),
    ("T-SID", "The tweet indicates suicidal thoughts.", "suicide or self-harm"),
    ("CAMS", "The cause of depression here is alienation, not relationship problems.", "alienation"),
    ("CAMS", "This post shows no causes of depression.", "none"),
    ("CAMS", "Depression caused by the side effects of medication.", "medication"),
    ("SWMH", "The post shows anxiety rather than depression.", "anxiety"),
    ("SWMH", "This post shows bipolar disorder.", "bipolar"),
]


def naive_first_substring(task_name: str, answer: str) -> str | None:
    """MentaLLaMA-style baseline: the first label whose keyword is a substring, in a fixed label order."""
    task = get_task(task_name)
    text = answer.lower()
    if task.kind == "binary":
        return "yes" if "yes" in text else "no" if "no" in text else None
    for label in task.labels:
        if label.split()[0] in text:
            return label
    return None


@pytest.mark.parametrize(("task", "answer", "expected"), HARD_CASES)
def test_parser_hard_cases(task, answer, expected):
    assert get_task(task).parse(answer) == expected


def test_parser_beats_first_substring_matching():
    ours = sum(get_task(t).parse(a) == e for t, a, e in HARD_CASES)
    naive = sum(naive_first_substring(t, a) == e for t, a, e in HARD_CASES)
    assert ours == len(HARD_CASES)
    assert naive < ours - 8, naive


def test_detect_task_from_instruction_and_completion_questions():
    task, aspect = detect_task("Does the post show risk of thwarted belongingness?")
    assert (task.name, aspect) == ("IRF", "thwarted belongingness")
    task, aspect = detect_task(
        'The answer to the question "Does the vocational wellness dimension exists in the post?" is'
    )
    assert (task.name, aspect) == ("MultiWD", "vocational")
    task, _ = detect_task("What is the stress cause of this post?")
    assert task.name == "SAD"
    assert detect_task("What is your favourite colour?") is None


def test_gold_answer_round_trip():
    task = get_task("SAD")
    answer = task.gold_answer("work", "The poster mentions a demanding boss.")
    assert (
        answer == "This post shows the stress cause related to work. Reasoning: The poster mentions a demanding boss."
    )
    assert task.parse(answer) == "work"
    assert task.parse(task.gold_answer("emotion turmoil", "x", fmt="complete")) == "emotion turmoil"
