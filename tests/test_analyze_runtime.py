"""The shipped analyzer's encoder runtime (ONNX Runtime, int8 weights), its neutral reading of gender words
and names, and the counterfactual augmentation of its training data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mentalens.analyze.text import prepare

POSTS = [
    "I can't sleep. Nothing feels worth it anymore! My dog is the only reason I get up.",
    "My husband yells at me every day. He says I'm useless and I believe him.",
    "Exams next week and I haven't started. My chest is tight all the time.",
    "ok",
]


@pytest.fixture(scope="module")
def encoders():
    from mentalens.analyze.encoder import Encoder, EncoderConfig

    return Encoder(EncoderConfig()), Encoder(EncoderConfig(runtime="onnx", quantize=True))


def test_onnx_int8_is_close_to_fp32_and_independent_of_the_batch(encoders):
    from mentalens.analyze.features import encoded_features

    torch_enc, onnx_enc = encoders
    preps = [prepare(p) for p in POSTS]
    ref = np.stack([encoded_features(e) for e in torch_enc.encode_prepared(preps)])
    batch = np.stack([encoded_features(e) for e in onnx_enc.encode_prepared(preps)])
    cos = (ref * batch).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(batch, axis=1)
    assert cos.min() > 0.995, cos
    # the same post alone gives bit-identical features: results never depend on what else is analysed
    for i, p in enumerate(preps):
        alone = encoded_features(onnx_enc.encode_prepared([p])[0])
        assert np.array_equal(alone, batch[i])


def test_occlusion_is_exact_under_the_onnx_runtime(encoders):
    from mentalens.analyze.evidence import leave_one_out_features
    from mentalens.analyze.features import encoded_features

    _, enc = encoders
    p = prepare("I lost my job last month. My family doesn't talk to me. I walk my dog every morning.")
    e = enc.encode_prepared([p])[0]
    loo = leave_one_out_features(e)
    for i in range(len(p.sentences)):
        q = prepare(" ".join(s.text for j, s in enumerate(p.sentences) if j != i))
        assert np.allclose(loo[i], encoded_features(enc.encode_prepared([q])[0]), atol=1e-5)


def test_unknown_runtime_is_a_clear_error():
    from mentalens.analyze.encoder import Encoder, EncoderConfig
    from mentalens.errors import ModelError

    with pytest.raises(ModelError, match="runtime"):
        Encoder(EncoderConfig(runtime="tensorrt"))


# ------------------------------------------------------------------------------------------------ neutral


def test_neutral_text_maps_sentence_spans():
    from mentalens.evaluate.bias.neutral import neutralize

    text = "My mom said she hates her job. I told her. Dave agrees with him and he cries."
    p = prepare(text)
    out, spans = neutralize(p.encoder_text, p.encoder_spans)
    assert out == "My parent said they hate their job. I told them. Alex agrees with them and they cry."
    assert [out[s:e] for s, e in spans] == ["My parent said they hate their job.", "I told them.",
                                            "Alex agrees with them and they cry."]  # fmt: skip
    # words that only look gendered, and meaning-bearing ones, are read as written
    assert neutralize("I miss my Sister Act DVD. Mayday!")[0] == "I miss my Sibling Act DVD. Mayday!"
    assert neutralize("I am pregnant and scared")[0] == "I am pregnant and scared"


def test_gender_and_name_swaps_of_real_posts_read_the_same(data_dir):
    """Over real IMHI test posts, every swapped-gender and swapped-name counterfactual of the audit reads
    exactly like its original: the mitigation cannot be undone by these edits."""
    from mentalens.data import load_imhi
    from mentalens.evaluate.bias import counterfactuals
    from mentalens.evaluate.bias.neutral import neutralize

    posts = list(dict.fromkeys(r.post for r in load_imhi(data_dir, split="test", fmt="instruction")))[:1500]
    checked = 0
    for post in posts:
        base = neutralize(post)[0]
        made, _ = counterfactuals(post, ["gender", "name"])
        for c in made:
            if c.variant == "they":  # they-forms differ in "them"/"their" only where the audit's rule does
                continue
            assert neutralize(c.text)[0] == base, (c.attribute, c.variant)
            checked += 1
    assert checked > 300


# ------------------------------------------------------------------------------------------------ augmentation


def test_augment_texts_keeps_the_source_row():
    from mentalens.analyze.train import augment_texts

    texts = ["I am not okay and I don't have any friends.", "Nothing to rewrite here.", "I'm 24 and tired."]
    aug, src = augment_texts(texts, ("dialect", "age"))
    assert len(aug) == len(src) == 4 and list(src) == [0, 2, 2, 2]
    assert aug[0] == "I ain't okay and I don't have no friends."
    assert augment_texts(texts, ())[0] == []


def test_counterfactual_copies_never_leak_into_the_validation_fold():
    """Copies identical to their source post: if a copy joined a fold that validates its source, a weakly
    regularised model would recall random labels; kept with their source, out-of-fold accuracy stays near
    chance."""
    from mentalens.analyze.train import Augmented, cross_val_proba

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 200)).astype(np.float32)
    y = rng.choice(np.array(["no", "yes"]), size=120)
    aug = Augmented(X.copy(), np.arange(120))
    oof = cross_val_proba(X, y, ["no", "yes"], C=100.0, folds=5, seed=0, aug=aug)
    acc = float((np.where(oof[:, 1] >= 0.5, "yes", "no") == y).mean())
    assert acc < 0.7
    leaky = cross_val_proba(np.vstack([X, X]), np.concatenate([y, y]), ["no", "yes"], C=100.0, folds=5, seed=0)
    assert float((np.where(leaky[:, 1] >= 0.5, "yes", "no") == np.concatenate([y, y])).mean()) > 0.8


def test_feature_cache_key_names_runtime_reading_and_onnx_recipe(encoders, monkeypatch):
    """Heads must be trained on the features they are served with: a cached feature of another runtime,
    reading or ONNX export recipe is never reused."""
    import mentalens.analyze.onnx as onnx_mod

    torch_enc, onnx_enc = encoders
    key = onnx_enc.fingerprint
    assert key != torch_enc.fingerprint
    monkeypatch.setattr(onnx_enc.config, "neutralize", True)
    assert onnx_enc.fingerprint not in (key, torch_enc.fingerprint)
    monkeypatch.setattr(onnx_enc.config, "neutralize", False)
    monkeypatch.setattr(onnx_mod, "ONNX_VERSION", onnx_mod.ONNX_VERSION + 1)
    assert onnx_enc.fingerprint != key


def test_exporting_to_onnx_leaves_the_model_in_eval_mode(tmp_path):
    # found by the semantic risk layer's test on a fresh cache: the exporter restored its wrapper's training
    # mode, which switched the caller's model's dropout on (its torch vectors then drifted from the export's)
    import torch
    from transformers import BertConfig, BertModel

    from mentalens.analyze.onnx import export_onnx

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=3000, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64, hidden_dropout_prob=0.5)).eval()
    ids = torch.tensor([[1, 5, 7, 2]])
    with torch.inference_mode():
        before = model(input_ids=ids).last_hidden_state
    export_onnx(model, tmp_path / "tiny.onnx", quantize=False)
    assert not model.training and not any(m.training for m in model.modules())
    with torch.inference_mode():
        assert torch.equal(model(input_ids=ids).last_hidden_state, before)


def test_shared_weighting_gives_a_post_and_its_copies_one_posts_weight():
    """"share": a post with three stated-age copies weighs as much as a post with none (four rows of 1/4);
    "copy" counts every copy as a post. train_head chooses between them by CV and records the choice."""
    from mentalens.analyze.datasets import HeadData, Split
    from mentalens.analyze.train import Augmented, TrainConfig, train_head
    from mentalens.errors import ConfigError

    aug = Augmented(np.zeros((4, 2), dtype=np.float32), np.array([0, 2, 2, 2]))
    post_w, copy_w = dataclasses.replace(aug, weighting="share").weights(3)
    assert post_w.tolist() == [0.5, 1.0, 0.25] and copy_w.tolist() == [0.5, 0.25, 0.25, 0.25]
    assert [post_w[i] + copy_w[aug.src == i].sum() for i in range(3)] == [1.0, 1.0, 1.0]
    assert [w.tolist() for w in aug.weights(3)] == [[1.0, 1.0, 1.0], [1.0] * 4]
    with pytest.raises(ConfigError, match="augment_weighting"):
        dataclasses.replace(aug, weighting="double").weights(3)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)).astype(np.float32)
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=200) > 0, "yes", "no")
    src = np.repeat(np.arange(0, 200, 4), 3)  # every fourth post has three copies
    copies = Augmented(X[src] + np.float32(0.05) * rng.normal(size=(len(src), 6)).astype(np.float32), src)
    h = HeadData("DR", "DR", None, ("no", "yes"), Split(list(map(str, range(200))), list(y)), Split(), "test")
    fh = train_head(h, X, y, TrainConfig(c_grid=(1.0,), folds=3, augment_weighting=("copy", "share")), aug=copies)
    m = fh.spec.metrics
    assert m["augment_weighting"] in ("copy", "share") and set(m["grid"]) == {"C=1,w=0,aug=copy", "C=1,w=0,aug=share"}
    assert m["cv_weighted_f1"] == max(m["grid"].values())
