"""BARTScore on a tiny random BART (built from a config + a trained BART tokenizer): the definition, agreement
with the authors' loop (ported line for line in bench/), independence of batching, directions."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from mentalens.errors import ModelError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scorer():
    from mentalens.evaluate.bartscore import BARTScorer
    from mentalens.evaluate.tiny_bart import build_tiny_bart

    return BARTScorer(build_tiny_bart(), device="cpu", batch_size=16)


@pytest.fixture(scope="module")
def reference(scorer):
    spec = importlib.util.spec_from_file_location("bartscore_reference", REPO / "bench" / "bartscore_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ReferenceBARTScorer(scorer.model, scorer.tokenizer, device="cpu", max_length=scorer.max_length)


@pytest.fixture(scope="module")
def pairs(imhi_dir):
    from mentalens.data import load_imhi

    recs = load_imhi(imhi_dir / "test_data" / "test_instruction", sets=["dreaddit"])[:12]
    hyps = [r.answer.split("Reasoning:")[0] + " Reasoning: " + r.post[:150] for r in recs]
    hyps[3] = ""  # a model that answered nothing
    hyps[5] = " ".join([recs[5].post] * 12)  # longer than BART's 1024 tokens: truncated as the authors do
    return hyps, [r.answer for r in recs]


def test_score_is_mean_token_log_likelihood(scorer):
    import torch

    src, tgt = "The poster feels hopeless.", "Yes, the poster suffers from depression."
    enc_s = scorer.tokenizer([src], return_tensors="pt")
    enc_t = scorer.tokenizer([tgt], return_tensors="pt")
    with torch.no_grad():
        logits = scorer.model(**enc_s, labels=enc_t["input_ids"]).logits[0]
    logp = torch.log_softmax(logits, -1).gather(1, enc_t["input_ids"][0][:, None])[:, 0]
    expected = logp.mean().item()  # every target token counts, <s> and </s> included
    assert enc_t["input_ids"][0, 0] == scorer.tokenizer.bos_token_id
    assert scorer.score([src], [tgt])[0] == pytest.approx(expected, abs=1e-5)
    assert expected < 0


def test_equal_to_the_authors_loop_and_to_any_batching(scorer, reference, pairs):
    hyps, refs = pairs
    assert len(scorer.tokenizer(hyps[5])["input_ids"]) > scorer.max_length
    ours = scorer.score(hyps, refs)
    theirs = reference.score(hyps, refs, batch_size=4)
    assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 1e-4
    scorer.batch_size = 1
    try:
        one_by_one = scorer.score(hyps[:5], refs[:5])
    finally:
        scorer.batch_size = 16
    assert max(abs(a - b) for a, b in zip(ours[:5], one_by_one, strict=True)) < 1e-4
    assert all(math.isfinite(x) and x < 0 for x in ours)


def test_directions(scorer, pairs):
    hyps, refs = pairs
    hyps, refs = hyps[:5], refs[:5]
    d = scorer.directions(hyps, refs, srcs=refs, which=("hyp_ref", "ref_hyp", "f_avg", "f_harm", "src_hyp"))
    assert d["hyp_ref"] == pytest.approx(scorer.score(hyps, refs))  # MentaLLaMA's: score(generated, goldens)
    assert d["ref_hyp"] == pytest.approx(scorer.score(refs, hyps))
    for p, r, f, h in zip(d["ref_hyp"], d["hyp_ref"], d["f_avg"], d["f_harm"], strict=True):
        assert f == pytest.approx((p + r) / 2)
        assert h == pytest.approx(2 * p * r / (p + r))
        assert min(p, r) <= h <= max(p, r)
    assert scorer.directions(hyps, refs, which=("src_hyp",)) == {}  # no sources, no faithfulness


def test_bad_checkpoints_and_weights(tmp_path, scorer):
    from mentalens.evaluate.bartscore import BARTScorer

    with pytest.raises(ModelError, match="cannot load BART checkpoint"):
        BARTScorer(tmp_path / "missing")
    with pytest.raises(ModelError, match="not found"):
        BARTScorer(scorer.checkpoint, weights=tmp_path / "bart.pth")
    import torch

    torch.save({"encoder.weight": torch.zeros(2)}, tmp_path / "wrong.pth")
    with pytest.raises(ModelError, match="does not match"):
        BARTScorer(scorer.checkpoint, weights=tmp_path / "wrong.pth")
    good = {k: v.clone() for k, v in scorer.model.state_dict().items()}
    torch.save(good, tmp_path / "bart.pth")
    again = BARTScorer(scorer.checkpoint, weights=tmp_path / "bart.pth")
    assert again.score(["a b"], ["c d"]) == pytest.approx(scorer.score(["a b"], ["c d"]), abs=1e-6)
