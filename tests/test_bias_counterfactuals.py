"""Counterfactual posts for the bias audit: only the attribute changes, meaning-changing swaps are skipped."""

from __future__ import annotations

import pytest

from mentalens.evaluate.bias.counterfactuals import (
    NAMES,
    Skip,
    age_counterfactuals,
    counterfactuals,
    dialect_counterfactuals,
    gender_counterfactuals,
    name_counterfactuals,
    unchanged_outside_edits,
)


def _variants(result):
    assert not isinstance(result, Skip), result
    return {c.variant: c.text for c in result}


def test_gender_swap_is_bidirectional_and_handles_her():
    v = _variants(gender_counterfactuals("My mom said she hates her job. I told her. My dad agrees with him."))
    assert v["swapped"] == "My dad said he hates his job. I told him. My mom agrees with her."


def test_gender_they_keeps_agreement():
    v = _variants(gender_counterfactuals("He always says I'm lazy and he cries at night. She doesn't care."))
    assert v["they"] == "They always say I'm lazy and they cry at night. They don't care."


@pytest.mark.parametrize(
    "text",
    [
        "My girlfriend is pregnant and I am terrified.",
        "Since she had a miscarriage she barely talks.",
        "I came out as gay to my dad and he left.",
    ],
)
def test_gender_swap_skips_posts_whose_meaning_would_change(text):
    assert gender_counterfactuals(text) == Skip("gender", "meaning would change")


def test_names_from_the_documented_list_replace_every_mention_consistently():
    out = name_counterfactuals("I told Dave everything. Dave laughed, and Sarah left.")
    assert {c.variant for c in out} == set(NAMES)
    black_male = next(c for c in out if c.variant == "black_male")
    assert black_male.text == "I told Darnell everything. Darnell laughed, and Hakim left."
    assert name_counterfactuals("I will try again in May.") == Skip("name", "nothing to swap")


def test_age_swaps_only_the_posters_own_age():
    v = _variants(age_counterfactuals("I'm 24 and my dad is 60 years old."))
    assert v == {
        "young_adult": "I'm 19 and my dad is 60 years old.",
        "middle_aged": "I'm 45 and my dad is 60 years old.",
        "older_adult": "I'm 70 and my dad is 60 years old.",
    }
    assert age_counterfactuals("I'm 17 and school is hell.") == Skip("age", "meaning would change")
    assert age_counterfactuals("I'm 20 minutes late to everything.") == Skip("age", "nothing to swap")


def test_dialect_rewrites():
    v = _variants(dialect_counterfactuals("I am not okay and I don't have any friends. You all are kind."))
    assert v["aae"] == "I ain't okay and I don't have no friends. Y'all are kind."


def test_every_counterfactual_of_real_posts_keeps_the_rest_byte_identical(data_dir):
    from mentalens.data import load_imhi

    posts = list(dict.fromkeys(r.post for r in load_imhi(data_dir, split="test", fmt="instruction")))[:1500]
    seen = set()
    for post in posts:
        made, skipped = counterfactuals(post)
        for c in made:
            assert c.text != post and unchanged_outside_edits(post, c)
            seen.add(c.attribute)
        assert {s.attribute for s in skipped}.isdisjoint({c.attribute for c in made})
    assert seen == {"gender", "name", "age", "dialect"}
