"""Training pieces of the analyzer: leakage-free data, head fitting, threshold folding, storage."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def training_data(data_dir):
    from mentalens.analyze.datasets import build_training_data
    from mentalens.data import LeakageGuard

    guard = LeakageGuard.from_data_dir(data_dir)
    return guard, build_training_data(data_dir, guard, seed=13)


def test_no_training_text_is_an_imhi_test_post(training_data):
    guard, td = training_data
    texts = []
    for h in td.heads.values():
        texts += h.train.texts + h.val.texts + (h.extra_train.texts if h.extra_train else [])
    texts += td.tsid_weak.train.texts + td.tsid_weak.val.texts
    assert len(texts) > 15_000
    assert not any(guard.contains(t) for t in texts)
    # the guard really removed the CAMS test posts that raw CAMS contains
    assert td.leakage["raw/cams"].dropped >= 625
    assert td.leakage["raw/irf/train"].dropped > 0


def test_every_head_has_data_and_the_right_labels(training_data):
    from mentalens.tasks import get_task

    _, td = training_data
    for key, h in td.heads.items():
        task = get_task(h.task)
        assert set(h.train.labels + h.val.labels) <= set(task.labels), key
        assert len(h.val) >= 100, key
    assert set(td.tsid_weak.train.labels) == set(get_task("T-SID").labels)
    assert "loneliness" not in td.heads  # no data: transferred, never trained


def test_threshold_is_folded_into_the_bias():
    from mentalens.analyze.datasets import HeadData, Split
    from mentalens.analyze.train import TrainConfig, predict_proba, train_head

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    y = np.where(X[:, 0] + 0.8 * rng.normal(size=300) > 0.6, "yes", "no")  # imbalanced: threshold != 0.5
    h = HeadData("DR", "DR", None, ("no", "yes"), Split(list(map(str, range(300))), list(y)), Split(), "test")
    cfg = TrainConfig(c_grid=(1.0,), folds=3)
    fh = train_head(h, X, y, cfg)
    t = fh.spec.metrics["threshold"]
    assert fh.spec.metrics["cv_weighted_f1"] > 70
    from mentalens.analyze.heads import logit

    raw_b = fh.b + np.float32(logit(t))
    p_raw = predict_proba(fh.W, raw_b, X)[:, 1]
    p_folded = predict_proba(fh.W, fh.b, X)[:, 1]
    assert np.array_equal(p_raw >= t, p_folded >= 0.5 - 1e-7)


def test_multilabel_head_learns_each_column():
    from mentalens.analyze.train import fit_multilabel, tune_emotion_thresholds

    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 6)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0.5, X[:, 1] < -0.5, X[:, 2] + X[:, 3] > 1], axis=1).astype(np.float32)
    W, b = fit_multilabel(X, Y, C=10.0, seed=0)
    P = 1 / (1 + np.exp(-(X @ W.T + b)))
    th, f1 = tune_emotion_thresholds(Y, P)
    assert (f1 > 0.85).all()
    assert W.shape == (3, 6) and b.shape == (3,)


def test_headset_roundtrip(tmp_path):
    from mentalens.analyze.heads import HeadSet, HeadSpec

    specs = [
        HeadSpec("DR", "DR", None, ["no", "yes"], "binary", start=0, size=1),
        HeadSpec("SAD", "SAD", None, ["a", "b", "c"], "softmax", start=1, size=3),
        HeadSpec("emotions", None, None, ["x", "y"], "sigmoid", start=4, size=2, thresholds=[0.3, 0.6]),
    ]
    rng = np.random.default_rng(2)
    hs = HeadSet(specs, rng.normal(size=(6, 5)), rng.normal(size=6), {"features": "mean", "encoder": {}})
    hs.save(tmp_path)
    back = HeadSet.load(tmp_path)
    X = rng.normal(size=(4, 5)).astype(np.float32)
    for key in ("DR", "SAD", "emotions"):
        assert np.allclose(hs.probabilities(hs.logits(X), key), back.probabilities(back.logits(X), key))
    assert np.allclose(back.probabilities(back.logits(X), "SAD").sum(1), 1)
    assert back.specs["emotions"].thresholds == [0.3, 0.6]


def test_the_encoder_is_tuned_on_train_splits_only(training_data):
    from mentalens.analyze.tuning import tuning_tasks

    guard, td = training_data
    tasks = tuning_tasks(td)
    assert set(tasks) == {"DR", "dreaddit", "SAD", "CAMS", "IRF"}
    val = {t for h in td.heads.values() for t in h.val.texts}  # every task's: IMHI sets share posts
    for name, (texts, labels, names) in tasks.items():
        assert texts and not any(t in val for t in texts), name  # validation posts stay unseen by the encoder
        assert not any(guard.contains(t) for t in texts), name
        assert all(len(ys) == len(texts) and set(ys) <= set(n) for ys, n in zip(labels, names, strict=True))
    assert len(tasks["IRF"][1]) == 2  # both risk factors of each raw IRF post
    small = tuning_tasks(td, max_posts=50, seed=1)
    assert all(len(t[0]) == 50 for t in small.values())
    assert len(tasks["CAMS"][0]) < len(td.heads["CAMS"].train)  # CAMS train holds Irf/MultiWD val posts
    assert small["DR"][0] == tuning_tasks(td, max_posts=50, seed=1)["DR"][0]  # fixed seed, same subset
