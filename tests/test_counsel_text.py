"""Therapist answers become excerpts that never show who wrote them (names, credentials, contacts, sign-offs)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from mentalens.counsel.text import clean_answer, excerpt, normalize_answer, reflect_quote, split_sentences


@pytest.fixture(scope="module")
def raw_counselchat(data_dir):
    """The raw CSV, therapist columns included: only to check that none of it leaks."""
    return pd.read_csv(data_dir / "counselchat/data/20200325_counsel_chat.csv", keep_default_na=False)


def _therapist_names(df) -> set[tuple[str, str]]:
    """(first, last) of every therapist, from the profile URL slug, kept when both appear in therapistInfo."""
    names = set()
    for info, url in zip(df.therapistInfo, df.therapistURL, strict=True):
        slug = url.rstrip("/").rsplit("/", 1)[-1]
        parts = [p.capitalize() for p in slug.split("-") if p.isalpha() and len(p) > 1]
        parts = [p for p in parts if p in info and p.lower() not in {"dr", "ms", "mr", "mrs"}]
        if len(parts) >= 2:
            names.add((parts[0], parts[1]))
    return names


def test_no_therapist_name_url_or_contact_survives_in_any_answer(raw_counselchat):
    names = _therapist_names(raw_counselchat)
    assert len(names) > 200  # the check is only as strong as the name list
    leaks = []
    empty = 0
    for answer in raw_counselchat.answerText:
        text = " ".join(clean_answer(answer))
        empty += not text
        if re.search(r"https?://|www\.|\b[\w.+-]+@[\w-]+\.\w|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}", text):
            leaks.append(text[:80])
        words = set(re.findall(r"\b[A-Z][a-z]+\b", text))
        leaks += [f"{first} {last}" for first, last in names if first in words and last in words]
    assert leaks == []
    assert empty < 0.01 * len(raw_counselchat)  # scrubbing leaves almost every answer quotable


def test_the_raw_file_does_contain_what_is_scrubbed(raw_counselchat):
    """The test above is not vacuous: answers in the file do carry names, URLs and sign-offs."""
    answers = list(raw_counselchat.answerText)
    assert sum(bool(re.search(r"https?://|www\.", a)) for a in answers) > 50
    assert any("Robin J. Landwehr" in a for a in answers)
    assert any(re.search(r"Best wishes,\s*Karen", a) for a in answers)


def test_signatures_credentials_and_promotion_are_removed():
    answer = (
        "Feeling this way is common.It does not mean something is wrong with you.I'm a licensed therapist in "
        "Denver and offer a free consultation. Visit www.example.com or call 555-123-4567. Be well,Robin J. "
        "Landwehr, DBH, LPCC, NCC"
    )
    out = " ".join(clean_answer(answer))
    assert out == "Feeling this way is common. It does not mean something is wrong with you."


def test_tilde_signature_and_postscript_are_cut():
    answer = "Try writing down the thought and what happened before it. I hope you feel better soon. ~Mark (www."
    assert clean_answer(answer) == ["Try writing down the thought and what happened before it.",
                                    "I hope you feel better soon."]
    answer = "Be patient with yourself. Cheering you on,Tamara Powell, LMHCP.S. You might enjoy a book."
    assert " ".join(clean_answer(answer)) == "Be patient with yourself."


def test_abbreviations_do_not_split_sentences_and_references_to_people_go():
    text = "Read the book by Dr. Henry Cloud. It helps with boundaries. As Jane Doe suggested, journal daily."
    assert split_sentences(normalize_answer(text))[0] == "Read the book by Dr. Henry Cloud."
    assert clean_answer(text) == ["It helps with boundaries."]


def test_excerpt_keeps_whole_sentences_within_the_budget():
    sentences = [f"Sentence number {i} says something useful about coping." for i in range(30)]
    ex = excerpt(" ".join(sentences), max_chars=200)
    assert ex.endswith(".") and len(ex) <= 260
    assert ex.startswith("Sentence number 0")
    assert excerpt("word " * 300, max_chars=100).endswith("…")


def test_reflect_quote_picks_a_short_statement():
    assert reflect_quote("Why is this happening? I feel like nobody listens to me. It has been months.") == (
        "I feel like nobody listens to me"
    )
    assert reflect_quote("?") is None


def test_answers_by_non_professionals_are_recognised():
    from mentalens.counsel.text import NOT_A_COUNSELLOR

    assert NOT_A_COUNSELLOR.search("Yeah I get the same problem... Look I'm not a professional but I've heard")
    assert not NOT_A_COUNSELLOR.search("As counsellors we are not professional mind readers, so ask.")


def test_a_sentence_about_an_attempt_is_not_reflected_beside_an_emotion():
    from mentalens.counsel.retrieval import reflect, speaks_of_risk

    story = "Five years ago I tried to end my life. Today I'm graduating as a nurse and I'm so glad I stayed."
    opening = reflect(story, ["joy"])
    assert "tried to end my life" not in opening and "graduating as a nurse" in opening
    assert speaks_of_risk("I tried to end my life") and speaks_of_risk("I don't want to kill myself")
    assert not speaks_of_risk("Today I'm graduating as a nurse") and not speaks_of_risk("this exam is killing me")
    # with nothing else to quote, no quote at all
    assert "end my life" not in reflect("Five years ago I tried to end my life.", ["sadness"])
