"""The labelled evaluation set: its shape, and the issue's goals as a regression floor."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mentalens.safety import assess

DATA = Path(__file__).resolve().parents[1] / "bench" / "data" / "safety_eval.jsonl"
RANK = {"none": 0, "low": 1, "moderate": 2, "high": 3, "imminent": 4}
BENIGN = {"benign_lookalike", "challenge_benign", "c2_benign"}  # dev/test/challenge/challenge2 look-alikes


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_shape(rows) -> None:
    assert len(rows) >= 200 and len({r["id"] for r in rows}) == len(rows)
    cats = Counter(r["category"] for r in rows)
    assert cats["benign_lookalike"] >= 80
    assert {"explicit", "indirect", "misspelling", "slang", "spanish", "multiturn"} <= set(cats)
    assert {r["level"] for r in rows} == set(RANK)
    assert {r["split"] for r in rows} == {"dev", "dev2", "test", "challenge", "challenge2", "challenge3", "challenge4",
                                          "challenge5", "dev3", "dev4", "dev5", "dev6", "dev7", "dev8", "dev9", "dev10",
                                          "train1", "train2", "train3", "train4", "train5",
                                          "train6", "dev12", "dev11", "dev14", "dev13",
                                          "dev16", "dev15", "train7",
                                          "dev20", "dev18",
                                          "dev17", "dev19",
                                          "dev21", "dev22", "dev23", "dev24", "dev25", "dev26",
                                          "dev27", "dev28", "dev29", "dev30",
                                          "dev31", "dev32", "dev33", "dev34", "dev35", "dev36",
                                          "dev37", "dev38", "dev39", "dev40", "dev41", "dev42",
                                          "dev43", "dev44", "dev45", "dev46", "dev47", "dev48",
                                          "dev49", "dev50", "dev51", "dev52", "dev53", "dev54",
                                          "dev55", "dev56", "dev57", "dev58", "dev59", "dev60",
                                          "dev61", "dev62", "dev63", "dev64", "dev65",
                                          "dev66", "dev67", "dev68", "dev69", "dev70",
                                          "dev71", "dev72", "dev73", "dev74", "dev75", "dev76"}
    for r in rows:
        assert r["messages"] and set(r["flags"]) == {"harm_to_others", "abuse", "medical_emergency", "others_at_risk"}


def _scores(rows, split):
    rs = [r for r in rows if r["split"] in split]
    pred = {r["id"]: assess(r["messages"]) for r in rs}
    hi = [r for r in rs if RANK[r["level"]] >= 3]
    mod = [r for r in rs if RANK[r["level"]] >= 2]
    ben = [r for r in rs if r["category"] in BENIGN]
    return (sum(RANK[pred[r["id"]].level.value] >= 3 for r in hi) / len(hi),
            sum(RANK[pred[r["id"]].level.value] >= 2 for r in mod) / len(mod),
            sum(pred[r["id"]].requires_escalation for r in ben) / len(ben))


def test_goals_hold_on_the_dev_and_test_splits(rows) -> None:
    rec_hi, rec_mod, false_alarms = _scores(rows, {"dev", "test"})
    assert rec_hi == 1.0 and rec_mod >= 0.97 and false_alarms <= 0.05


def test_challenge_split_does_not_regress(rows) -> None:
    # floors below the figures measured in bench/results/safety_eval.json (see the report for the first run)
    rec_hi, rec_mod, false_alarms = _scores(rows, {"challenge", "challenge2"})
    assert rec_hi >= 0.9 and rec_mod >= 0.9 and false_alarms <= 0.05


def test_dev2_tuning_split_does_not_regress(rows) -> None:
    # dev2 (issue 7's tuning split): floors below the figures measured when the round-4 constructs were committed
    rs = [r for r in rows if r["split"] == "dev2"]
    assert len(rs) >= 150
    benign = {"dev2_benign"}
    pred = {r["id"]: assess(r["messages"]) for r in rs}
    hi = [r for r in rs if RANK[r["level"]] >= 3]
    mod = [r for r in rs if RANK[r["level"]] >= 2]
    ben = [r for r in rs if r["category"] in benign]
    assert sum(RANK[pred[r["id"]].level.value] >= 3 for r in hi) / len(hi) >= 0.93
    assert sum(RANK[pred[r["id"]].level.value] >= 2 for r in mod) / len(mod) >= 0.93
    assert sum(pred[r["id"]].requires_escalation for r in ben) / len(ben) <= 0.03
