"""The message-level risk reader (mentalens.safety.message_reader): built on real labelled splits, its thresholds keep
their false-alarm limits, it only raises, it names itself in its cue, it leaves Spanish alone, and when it cannot
load the other layers decide."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from mentalens.errors import DataError
from mentalens.safety import RiskLevel, assess
from mentalens.safety import message_reader as mr
from mentalens.safety import semantic as sem

EVAL = Path(__file__).resolve().parents[1] / "bench" / "data" / "safety_eval.jsonl"
SPLITS = ("dev3", "dev4", "dev5", "dev6", "dev7", "dev8", "train1", "train2", "train3")


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir) -> tuple[Path, dict]:
    """A reader built on nine read splits (about 3,000 items), checked against 1,500 GoEmotions dev comments."""
    # a looser benign limit than the shipped 0.2%: these tests exercise what a raise does, on few items
    cfg = mr.MessageReaderConfig(tune_splits=SPLITS, everyday_train=1500, everyday_dev=1500, epochs=30, ensemble=2,
                                 max_benign_oof_rate=0.01)
    model, report = mr.build_message_reader(EVAL, data_dir, cfg=cfg)
    path = model.save(tmp_path_factory.mktemp("message") / "reader.json.gz")
    return path, report


@pytest.fixture()
def installed(built, monkeypatch) -> Path:
    monkeypatch.setenv("MENTALENS_MESSAGE_READER_MODEL", str(built[0]))
    monkeypatch.delenv("MENTALENS_MESSAGE_READER", raising=False)
    mr.reset()
    yield built[0]
    mr.reset()


def _rows(splits: tuple[str, ...]) -> list[dict]:
    return [r for r in map(json.loads, EVAL.read_text(encoding="utf-8").splitlines()) if r["split"] in splits]


def test_window_reads_the_last_four_non_empty_messages() -> None:
    msgs = ["one", "", "two", "three", "  ", "four", "five"]
    assert mr.message_text(msgs) == "two\nthree\nfour\nfive"
    assert mr.message_text(["  only  "]) == "only" and mr.message_text([]) == ""


def test_thresholds_keep_the_false_alarm_limits_out_of_fold(built) -> None:
    path, report = built
    oof, cfg = report["out_of_fold_at_thresholds"], report["config"]
    assert report["thresholds"][0] == mr.OFF  # >= low stays the char classifier's
    assert oof["benign_raised_rate"] <= cfg["max_benign_oof_rate"]
    assert oof["everyday_raised_rate"] <= cfg["max_everyday_rate"] == 0.0002  # one in 5,000: none of these 1,500
    # it learned something: out of fold it finds some of the risk items on its own
    assert oof["recall_moderate_plus"] > 0 and report["data"]["tuning_items"] > 2000
    assert report["data"]["everyday_dev"] > 1000 and set(report["tune_splits"]) == set(SPLITS)
    assert not set(report["tune_splits"]) & set(sem.HELD_OUT_SPLITS)
    # weights and thresholds only: no training text in the artefact
    raw = gzip.decompress(path.read_bytes()).decode("utf-8")
    sample = [r["messages"][0] for r in _rows(("dev3",))[:50] if isinstance(r["messages"][0], str)]
    assert sample and not any(t[:40] in raw for t in sample)


def test_choice_is_the_best_recall_within_the_limits() -> None:
    # three items: a benign one the reader scores high, a moderate and a high one
    gold = np.array([0, 2, 3])
    benign = np.array([True, False, False])
    oof = np.array([[0.0, 0.9, 0.9, 0.0], [0.0, 0.8, 0.1, 0.0], [0.0, 0.95, 0.95, 0.0]])
    cfg = mr.MessageReaderConfig(grid=(0.5, 0.85, 0.92), max_benign_oof_rate=0.0)
    thr, s = mr.choose_thresholds(oof, gold, benign, (np.zeros((0, 4)), np.zeros(0)), cfg)
    assert thr[1] == 0.92 and thr[2] == 0.92 and s["benign_raised"] == 0 and s["recall_high_plus"] == 1.0
    # an everyday comment the reader would raise at every threshold: every head off
    every = np.array([[0.0, 1.0, 1.0, 1.0]])
    thr, s = mr.choose_thresholds(oof, gold, benign, (every, np.zeros(1)), cfg)
    assert thr == [mr.OFF] * 4 and s["recall_moderate_plus"] == 0.0
    # ...unless the rules already read it imminent: the reader adds nothing there
    thr, _ = mr.choose_thresholds(oof, gold, benign, (every, np.array([RiskLevel.IMMINENT.rank])), cfg)
    assert thr[1] == 0.92


def test_system_objective_spends_the_thresholds_on_what_the_rules_miss() -> None:
    # one of the two benign items may be raised; catching the moderate item costs one, catching the high item the
    # other. The rules already read the high item high.
    gold = np.array([0, 0, 2, 3])
    benign = np.array([True, True, False, False])
    oof = np.array([[0.0, 0.9, 0.0, 0.0], [0.0, 0.0, 0.9, 0.0], [0.0, 0.88, 0.0, 0.0], [0.0, 0.0, 0.88, 0.0]])
    base = np.array([0, 0, 0, RiskLevel.HIGH.rank])
    none = (np.zeros((0, 4)), np.zeros(0))
    loose = dict(grid=(0.5, 0.85, 0.92), max_benign_oof_rate=0.5)
    # on its own, the reader spends its one benign raise on the high item, which the rules had anyway
    thr, s = mr.choose_thresholds(oof, gold, benign, none, mr.MessageReaderConfig(**loose))
    assert thr[1:3] == [0.92, 0.85] and s["recall_high_plus"] == 1.0 and s["recall_moderate_plus"] == 0.5
    # for the system, the moderate item is the only gain there is
    system = mr.MessageReaderConfig(objective="system", **loose)
    thr, s = mr.choose_thresholds(oof, gold, benign, none, system, base=base)
    assert thr[1:3] == [0.85, 0.92] and s["recall_moderate_plus"] == 1.0 and s["recall_high_plus"] == 1.0
    assert s["benign_raised"] == 1
    # a benign item counts as raised only above what the rules gave it
    thr, s = mr.choose_thresholds(oof, gold, benign, none, system, base=np.array([RiskLevel.MODERATE.rank, 0, 0, 3]))
    assert thr[1:3] == [0.85, 0.92] and s["benign_raised"] == 0 and s["recall_moderate_plus"] == 1.0
    with pytest.raises(ValueError, match="base"):
        mr.choose_thresholds(oof, gold, benign, none, system)


def test_logit_grid_reaches_near_one_and_bad_settings_fail_in_one_line() -> None:
    coarse, fine = mr.logit_grid(0.5), mr.logit_grid(0.25)
    assert coarse[0] == 0.5 and set(coarse) <= set(fine) and len(fine) == 2 * len(coarse) - 1
    assert fine[-1] > 0.99999 and all(a < b for a, b in zip(fine, fine[1:], strict=False))
    assert mr.MessageReaderConfig(threshold_step=0.5).thresholds_grid() == coarse
    with pytest.raises(DataError, match="threshold_step"):
        mr.MessageReaderConfig(threshold_step=0)
    from mentalens.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="objective"):
        mr.MessageReaderConfig(objective="best")


def test_it_only_raises_and_names_itself(installed, monkeypatch) -> None:
    rows = [r for r in _rows(SPLITS) if r["level"] in ("moderate", "high", "imminent")][:400]
    raised = 0
    for r in rows:
        if raised >= 3:
            break
        with_reader = assess(r["messages"])
        with_env = {c.rule for c in with_reader.cues}
        monkeypatch.setenv("MENTALENS_MESSAGE_READER", "0")
        without = assess(r["messages"])
        monkeypatch.delenv("MENTALENS_MESSAGE_READER")
        assert with_reader.level >= without.level
        if with_reader.level > without.level:
            raised += 1
            mine = [c for c in with_reader.cues if (c.rule or "").startswith("learned-message:")]
            assert mine and mine[0].rule == f"learned-message:{with_reader.level.value}"
            assert "message reader" in mine[0].note and with_reader.semantic_level == with_reader.level
        assert not any((c.rule or "").startswith("learned-message:") for c in without.cues)
        assert with_env >= {c.rule for c in without.cues}
    assert raised >= 1  # a reader trained on these splits lifts some of their under-triaged items


def test_off_with_the_semantic_layer_and_for_spanish(installed) -> None:
    text = "Pills are in my hand. Just wanted to say the people in this server were the only good part of this year."
    assert not any((c.rule or "").startswith("learned-message:") for c in assess(text, semantic=False).cues)
    spanish = "Tengo las pastillas en la mano. Solo quería decir que ustedes fueron lo único bueno de este año."
    assert mr.message_cue([spanish], RiskLevel.NONE) is None
    assert mr.message_cue([text], RiskLevel.IMMINENT) is None  # nothing left to raise


def test_a_broken_reader_leaves_the_other_layers_in_charge(tmp_path, monkeypatch, caplog) -> None:
    bad = tmp_path / "broken.json.gz"
    bad.write_bytes(b"not a model")
    text = "I want to kill myself. Nobody would even notice"
    monkeypatch.setenv("MENTALENS_MESSAGE_READER", "0")
    mr.reset()
    expected = assess(text).level
    monkeypatch.delenv("MENTALENS_MESSAGE_READER")
    monkeypatch.setenv("MENTALENS_MESSAGE_READER_MODEL", str(bad))
    mr.reset()
    before = sem.status()["failures"]
    with caplog.at_level(logging.WARNING):
        a = assess(text)
    mr.reset()
    assert a.level == expected and expected >= RiskLevel.MODERATE
    assert sem.status()["failures"] == before + 1
    assert "message risk reader failed" in caplog.text and "notice" not in caplog.text


def test_tuning_on_a_held_out_or_validation_split_is_refused() -> None:
    with pytest.raises(DataError, match="held out"):
        mr.MessageReaderConfig(tune_splits=("dev", "test"))
    with pytest.raises(DataError, match="validation"):
        mr.MessageReaderConfig(tune_splits=("dev", "dev2"), validation_splits=("dev2",))


def test_the_shipped_reader_was_tuned_on_read_splits_only_within_its_limits(monkeypatch) -> None:
    """Rounds 43 and 45 of issue 7 (docs/safety.md): the packaged reader, an ensemble of 5 reading the window and its
    sentences' maximum, trained on the 81 read splits and 20,000 everyday comments with dev75/dev76 kept out for its
    validation, thresholds within both limits (one GoEmotions dev comment in 5,000), under the gate it runs with."""
    monkeypatch.delenv("MENTALENS_MESSAGE_READER_MODEL", raising=False)
    monkeypatch.delenv("MENTALENS_MESSAGE_READER", raising=False)
    mr.reset()
    reader = mr.get_reader()
    assert reader is not None and mr.model_path() == mr.default_path()
    meta = reader.meta
    assert meta["kind"] == "message" and reader.gate == "sentences" == meta["config"]["gate"]
    assert set(meta["tune_splits"]) == set(mr.TUNE_SPLITS) and reader.reading == "neutral"
    assert {"dev75", "dev76"} <= set(meta["validation_splits"])
    assert meta["pooling"] == meta["config"]["pooling"] == mr.MessageReaderConfig().pooling == "window+max"
    assert reader.weights[0].shape[0] == 2 * 384  # the window's vector and its sentences' maximum
    assert meta["config"]["ensemble"] == mr.MessageReaderConfig().ensemble == 5
    assert meta["config"]["everyday_train"] == mr.MessageReaderConfig().everyday_train == 20000
    assert meta["data"]["everyday_train"] > 19000  # a few fall to the leakage guard
    assert meta["config"]["threshold_step"] == mr.MessageReaderConfig().threshold_step
    assert not set(meta["tune_splits"]) & (set(meta["validation_splits"]) | set(sem.HELD_OUT_SPLITS))
    oof, cfg = meta["out_of_fold_at_thresholds"], meta["config"]
    assert oof["benign_raised_rate"] <= cfg["max_benign_oof_rate"] == 0.002
    assert cfg["max_everyday_rate"] == mr.MessageReaderConfig().max_everyday_rate == 0.0002
    assert oof["everyday_raised_rate"] <= cfg["max_everyday_rate"]
    assert reader.thresholds[0] == mr.OFF and meta["in_sample_at_thresholds"]["benign_raised"] == 0
    mr.reset()


def test_a_seed_ensemble_is_one_mlp_whose_logit_is_the_members_mean() -> None:
    from mentalens.errors import ModelError
    from mentalens.safety.learned import LearnedRiskModel, fold_ensemble

    rng = np.random.default_rng(0)
    members = [LearnedRiskModel([rng.normal(size=(6, 5)), rng.normal(size=(5, 4))],
                                [rng.normal(size=5), rng.normal(size=4)], [0.5] * 4) for _ in range(3)]
    x = rng.normal(size=(7, 6))
    folded = fold_ensemble(members)
    assert folded.weights[0].shape == (6, 15) and folded.thresholds == [0.5] * 4
    logit = np.mean([np.log(m.probabilities(x) / (1 - m.probabilities(x))) for m in members], axis=0)
    assert np.allclose(folded.probabilities(x), 1 / (1 + np.exp(-logit)), atol=1e-5)
    assert not np.allclose(folded.probabilities(x), members[0].probabilities(x), atol=1e-3)
    with pytest.raises(ModelError, match="one-hidden-layer"):
        fold_ensemble([LearnedRiskModel([rng.normal(size=(6, 4))], [rng.normal(size=4)], [0.5] * 4)])
    with pytest.raises(DataError, match="ensemble"):
        mr.MessageReaderConfig(ensemble=0)


def test_max_pooling_adds_each_dimension_s_strongest_sentence_to_the_window_vector() -> None:
    from mentalens.errors import UnknownNameError
    from mentalens.safety.learned import read
    from mentalens.safety.sentence_encoder import get_encoder

    enc = get_encoder()
    windows = [["Long shift again, the usual.", "Anyway. The pills are counted out on the desk and I'm done."],
               ["   "], ["ok"]]
    wv = enc.encode([read(mr.message_text(w), "neutral") for w in windows])
    assert np.array_equal(mr.window_features(wv, windows, "window", enc, "neutral"), wv)
    x = mr.window_features(wv, windows, "window+max", enc, "neutral")
    assert x.shape == (3, 2 * wv.shape[1]) and np.array_equal(x[:, :wv.shape[1]], wv)
    sents = mr.window_sentences(windows[0])
    assert len(sents) == 3 and sents[-1].startswith("The pills")
    assert np.allclose(x[0, wv.shape[1]:], enc.encode([read(s, "neutral") for s in sents]).max(0))
    assert np.array_equal(x[1, wv.shape[1]:], wv[1])  # no sentence: the window's own vector
    with pytest.raises(UnknownNameError, match="pooling"):
        mr.MessageReaderConfig(pooling="window+min")


def test_an_artefact_with_an_unknown_pooling_leaves_the_other_layers_in_charge(built, tmp_path, monkeypatch) -> None:
    from mentalens.errors import ModelError
    from mentalens.safety.learned import LearnedRiskModel

    model = LearnedRiskModel.load(built[0])
    model.meta = {**model.meta, "pooling": "window+attention"}
    path = model.save(tmp_path / "future.json.gz")
    monkeypatch.setenv("MENTALENS_MESSAGE_READER_MODEL", str(path))
    mr.reset()
    before = sem.status()["failures"]
    with pytest.raises(ModelError, match="unknown pooling 'window\\+attention'"):
        mr.message_cue(["Long shift again.", "The pills are counted out on the desk and I'm done."], RiskLevel.NONE)
    assess(["Long shift again.", "The pills are counted out on the desk and I'm done."])
    assert sem.status()["failures"] == before + 1
    mr.reset()


@pytest.mark.parametrize("gate", ["sentences", "sentences+prototype", "sentences+prototype-moderate", "undiscounted"])
def test_each_gate_admits_the_windows_it_names(gate) -> None:
    """Round 37: "sentences" leaves a lone sentence to the sentence readers, "sentences+prototype" admits one near a
    risk prototype (the sentence readers' veto) up to high, "undiscounted" admits any; none admits a window whose cue
    the rules read as past."""
    from mentalens.safety.sentence_encoder import get_encoder

    enc, bank = get_encoder(), sem.get_bank()
    cfg = mr.MessageReaderConfig(gate=gate)
    high, imminent = RiskLevel.HIGH.rank, RiskLevel.IMMINENT.rank

    def ceiling(text: str) -> int:
        return mr._gate_at_run_time([text], assess(text, semantic=False), cfg, enc, bank)

    crisis = "The pills are lined up on my desk and I'm done waiting."
    lookalike = "I want to jump on the trampoline with my kids."
    assert ceiling("Pills are in my hand. You were the only good part of this year.") == imminent
    assert ceiling(crisis) == {"sentences": 0, "sentences+prototype": high,
                               "sentences+prototype-moderate": RiskLevel.MODERATE.rank, "undiscounted": imminent}[gate]
    assert ceiling(lookalike) == (imminent if gate == "undiscounted" else 0)
    assert ceiling("I used to want to kill myself. I'm doing well now.") == 0


def test_a_ceiling_turns_off_the_heads_above_it() -> None:
    allowed = mr.head_allowed(np.array([0, RiskLevel.HIGH.rank, RiskLevel.IMMINENT.rank]))
    assert allowed.tolist() == [[False] * 4, [True, True, True, False], [True] * 4]
    # as in the threshold search: the row capped at high is raised to high, the other to imminent
    oof = np.array([[0.0, 0.99, 0.99, 0.99], [0.0, 0.99, 0.99, 0.99]])
    ceilings = np.array([RiskLevel.HIGH.rank, RiskLevel.IMMINENT.rank])
    levels = mr._levels(np.where(mr.head_allowed(ceilings), oof, 0.0), [mr.OFF, 0.5, 0.5, 0.5])
    assert levels.tolist() == [RiskLevel.HIGH.rank, RiskLevel.IMMINENT.rank]


@pytest.mark.parametrize("gate", ["sentences", "sentences+prototype", "sentences+prototype-moderate"])
def test_at_run_time_a_lone_sentence_is_raised_no_higher_than_its_ceiling(gate, tmp_path, monkeypatch) -> None:
    """A reader that asks for imminent on everything: a lone crisis sentence the rules leave at none is left alone
    under "sentences" and raised no higher than the gate's ceiling under the others; a two-sentence window goes to
    imminent under all."""
    from mentalens.safety.learned import LearnedRiskModel

    always = LearnedRiskModel.logistic(np.zeros((4, 2 * 384)), np.full(4, 9.0), [mr.OFF, 0.5, 0.5, 0.5])
    always.meta = {"kind": "message", "pooling": "window+max", "gate": gate, "reading": "neutral"}
    monkeypatch.setenv("MENTALENS_MESSAGE_READER_MODEL", str(always.save(tmp_path / "always.json.gz")))
    mr.reset()
    lone = "The pills are lined up on my desk and I'm done waiting."
    assert assess(lone, semantic=False).level < RiskLevel.HIGH
    got = mr.message_cue([lone], RiskLevel.NONE)
    if gate == "sentences":
        assert got is None
    else:
        top = mr.LONE_SENTENCE_CEILINGS[gate]
        assert top < RiskLevel.IMMINENT and got is not None and got[0] == top
        assert got[1].rule == f"learned-message:{top.value}"
    two = mr.message_cue(["Pills are in my hand.", "You were the only good part of this year."], RiskLevel.NONE)
    assert two is not None and two[0] == RiskLevel.IMMINENT
    mr.reset()
