"""The small risk classifier: torch/sklearn-free inference equals sklearn, leakage-guarded data, rules decide."""

from __future__ import annotations

import gzip
import json

import pytest

from mentalens.safety import RiskLevel, assess
from mentalens.safety import classifier as C


@pytest.fixture(scope="module")
def real_texts(data_dir):
    from mentalens.data import load_cssrs, load_goemotions

    users = load_cssrs(data_dir)
    posts = [(p, int(u.labels["cssrs"] != "Supportive")) for u in users[:120] for p in u.posts[:3] if len(p) > 20]
    emo = [(r.text, 0) for r in load_goemotions(data_dir, split="dev")[:300]]
    return posts + emo


def test_char_wb_matches_sklearn() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False).build_analyzer()
    for text in ["i wanna kil myslef", "  a\tb  ", "Me tomé todas las pastillas 💊", "x", ""]:
        assert C.char_wb_ngrams(text, 2, 5) == analyzer(text)


def test_pure_python_inference_equals_sklearn(real_texts) -> None:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [t for t, _ in real_texts]
    y = np.array([lab for _, lab in real_texts])
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), preprocessor=C.preprocess, sublinear_tf=True,
                          min_df=2, max_features=5000)
    lr = LogisticRegression(C=2.0, max_iter=2000).fit(vec.fit_transform(texts), y)
    clf = C.RiskClassifier({t: int(i) for t, i in vec.vocabulary_.items()}, list(vec.idf_), list(lr.coef_[0]),
                           float(lr.intercept_[0]), max_chars=10**9)
    probe = texts[::7] + ["I want to kill myself", "lol this exam", ""]
    ours = np.array(clf.probabilities(probe))
    theirs = lr.predict_proba(vec.transform(probe))[:, 1]
    assert np.max(np.abs(ours - theirs)) < 1e-9


def test_neutral_reading_inference_equals_sklearn_too(real_texts) -> None:
    import functools

    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [t for t, _ in real_texts]
    y = np.array([lab for _, lab in real_texts])
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, max_features=5000,
                          preprocessor=functools.partial(C.preprocess, reading="neutral"))
    lr = LogisticRegression(C=2.0, max_iter=2000).fit(vec.fit_transform(texts), y)
    clf = C.RiskClassifier({t: int(i) for t, i in vec.vocabulary_.items()}, list(vec.idf_), list(lr.coef_[0]),
                           float(lr.intercept_[0]), max_chars=10**9, reading="neutral")
    probe = texts[::7] + ["My wife says I ain't trying. I'm 45 and I want to end it"]
    assert np.max(np.abs(np.array(clf.probabilities(probe)) - lr.predict_proba(vec.transform(probe))[:, 1])) < 1e-9


def test_shipped_classifier_reads_gender_names_dialect_and_ages_the_same() -> None:
    # the bias audit's finding (bench/bias.py): a pronoun, a name, "ain't" or a stated age moved the
    # probability across the threshold. Texts written for this test.
    clf = C.get_classifier(required=True)
    assert clf.reading == "neutral"
    groups = [
        ["My husband left and he took the kids. I can't see the point anymore.",
         "My wife left and she took the kids. I can't see the point anymore."],
        ["Emily keeps telling me I'm a burden and she's right.", "Jamal keeps telling me I'm a burden and he's right."],
        ["I'm not okay and nobody cares. I don't have anybody.", "I ain't okay and nobody cares. I don't have nobody."],
        ["I'm 16 and I feel like a burden to everyone", "I'm 70 and I feel like a burden to everyone"],
    ]
    for texts in groups:
        probs = clf.probabilities(texts)
        assert max(probs) - min(probs) < 1e-9, (texts, probs)
    # the reading changes what the classifier reads, never what the rules read or what the person sees
    assert C.preprocess("She said I ain't 16", reading="plain") == "she said i aint 16"


def test_shipped_artefact_is_small_deterministic_and_documented(tmp_path) -> None:
    path = C.default_path()
    assert path.is_file() and path.stat().st_size < 3_000_000
    clf = C.RiskClassifier.load(path)
    again = clf.save(tmp_path / "copy.json.gz")
    assert again.read_bytes() == path.read_bytes()  # rounding + sorted keys + gzip mtime 0
    meta = json.loads(gzip.decompress(path.read_bytes()))["meta"]
    assert meta["report"]["irf_train"]["leakage_dropped"] > 0  # the leakage guard ran
    assert 0 < clf.threshold_review <= clf.threshold_low < 1
    assert 0 <= clf.probability("I want to end my life") <= 1


def test_bad_artefact_is_a_clear_error(tmp_path) -> None:
    from mentalens.errors import ModelError

    bad = tmp_path / "x.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(ModelError, match="mentalens train risk"):
        C.RiskClassifier.load(bad)


class _Stub:
    def __init__(self, p: float):
        self.p, self.threshold_low, self.threshold_review = p, 0.8, 0.6

    def probability(self, text: str) -> float:
        return self.p


def test_classifier_only_raises_where_the_rules_saw_nothing(monkeypatch) -> None:
    monkeypatch.setattr(C, "get_classifier", lambda required=False: _Stub(0.99))
    raised = assess("everything feels grey and pointless lately")
    assert raised.rule_level == RiskLevel.NONE and raised.level == RiskLevel.LOW and raised.review
    for text in ("This exam is killing me", "I'm not suicidal, just tired", "my dad hits me"):
        a = assess(text)
        assert a.level == RiskLevel.NONE, text  # an idiom, a denial or a flag is a rule decision
    monkeypatch.setattr(C, "get_classifier", lambda required=False: _Stub(0.0))
    for text, lvl in (("I'm going to kill myself tonight", "imminent"), ("I want to die", "low")):
        assert assess(text, semantic=False).level == lvl  # never lowered (semantic layer: test_safety_semantic)


def test_training_data_is_leakage_guarded(data_dir) -> None:
    from mentalens.data import LeakageGuard, load_cssrs

    cfg = C.RiskTrainConfig(goemotions_train=200, goemotions_val=100)
    ds = C.build_datasets(data_dir, cfg)
    guard = LeakageGuard.from_data_dir(data_dir)
    assert not any(guard.contains(t) for t, _, _ in ds["train"][::5])
    assert ds["report"]["irf_train"]["leakage_dropped"] > 0
    held_out = {p for u in load_cssrs(data_dir) if C.cssrs_split(u.id) == "test" for p in u.posts}
    assert held_out and not held_out & {t for t, _, src in ds["train"] if src == "cssrs"}
    assert {src for _, _, src in ds["train"]} == {"cssrs", "irf", "goemotions"}
    assert {src for _, _, src in ds["val"]} == {"imhi_irf_val", "goemotions_dev"}
