"""The embedded analyzer with the shipped artefact: labels, evidence, explanations, batch, IMHI answers, CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from mentalens.errors import DataError, ModelError

DEPRESSED = (
    "I haven't left my bed in three days. Everything feels grey and pointless, even the things I used to love. "
    "I cry every night and I hate myself. My cat needs feeding so I get up once a day."
)
NEUTRAL = "Had a great weekend hiking with my friends, the weather was perfect. Thanks for the trail tips!"

TASK_KEYS = {
    "DR", "dreaddit", "SAD", "CAMS", "loneliness", "T-SID",
    "IRF.thwarted belongingness", "IRF.perceived burdensomeness",
    *(f"MultiWD.{a}" for a in ("spiritual", "physical", "intellectual", "social", "vocational", "emotional")),
}  # fmt: skip


@pytest.fixture(scope="session")
def az():
    from mentalens.analyze import get_analyzer

    return get_analyzer()


def test_shipped_artefact_is_small_and_complete(az):
    from mentalens.analyze import default_artefact

    size = sum(f.stat().st_size for f in default_artefact().rglob("*") if f.is_file())
    assert size < 3_000_000
    assert set(az.task_keys) == TASK_KEYS
    assert len(az.emotion_labels) == 28 and len(az.emotion_thresholds) == 28
    # provenance is recorded: leakage counts and the zero-shot/weak heads are marked as such
    trained = az.heads.meta["trained"]
    assert trained["leakage"]["raw/cams"]["dropped"] > 1000
    assert az.heads.specs["loneliness"].transfer == "IRF.thwarted belongingness"
    assert "weak" in az.heads.specs["T-SID"].source
    # served as trained: int8 ONNX Runtime encoder reading gender words and names neutralised, heads
    # trained with dialect/age counterfactual copies; the manifest says how to rebuild it
    enc = az.heads.meta["encoder"]
    assert enc["runtime"] == "onnx" and enc["quantize"] and enc["neutralize"]
    assert az.encoder.config.runtime == "onnx" and az.encoder.config.neutralize
    assert set(trained["augment"]) == {"dialect", "age"} and az.heads.specs["DR"].metrics["augmented"] > 50
    assert trained["command"].startswith("mentalens train analyzer --data")
    # the encoder is LoRA-tuned (issue 3): the adapter ships beside the heads and is merged when loaded
    assert enc["adapter"] == "adapter" and (default_artefact() / "adapter" / "adapter_model.safetensors").is_file()
    assert az.encoder.config.adapter == str(default_artefact() / "adapter")
    assert trained["tuning"]["adapter_sha1"] and trained["tuning"]["posts"]["SAD"] > 5000


def test_analysis_of_a_depressed_post(az):
    a = az.analyze(DEPRESSED)
    assert set(a.tasks) == TASK_KEYS
    dr = a.tasks["DR"]
    assert dr.label == "yes" and dr.probability > 0.5
    assert abs(sum(dr.probabilities.values()) - 1) < 1e-5
    assert dr.evidence, "a positive finding cites the sentences it rests on"
    for ev in dr.evidence:
        assert a.text[ev.start : ev.end] == ev.sentence and ev.score > 0
    assert [e.score for e in dr.evidence] == sorted((e.score for e in dr.evidence), reverse=True)
    # the cat sentence is not the top evidence for depression
    assert "cat" not in dr.evidence[0].sentence
    assert dr.answer.startswith("Yes, the poster suffers from depression. Reasoning:")
    # emotions: all 28, sorted; sadness-like emotions rank high for this post
    labels = [e.label for e in a.emotions]
    assert len(labels) == 28 and [e.score for e in a.emotions] == sorted((e.score for e in a.emotions), reverse=True)
    assert {"sadness", "grief", "disappointment", "remorse"} & set(labels[:3])
    assert len(a.sentence_emotions) == len(a.sentences) == 4
    json.dumps(a.to_dict())  # JSON-safe


def test_neutral_post_is_not_depressed(az):
    a = az.analyze(NEUTRAL)
    assert a.tasks["DR"].label == "no"
    assert a.tasks["T-SID"].label == "none"
    assert a.emotions[0].label in {"gratitude", "pride", "joy", "admiration", "excitement"}


def test_explanations_quote_only_the_post(az):
    a = az.analyze(DEPRESSED)
    for r in a.tasks.values():
        assert "Reasoning:" in r.answer
        for quoted in re.findall(r'"([^"]+)"', r.answer):
            assert quoted.removesuffix(" ...") in a.text, (r.key, quoted)


def test_batch_equals_single(az):
    texts = [DEPRESSED, NEUTRAL, "My boss shouts at me every day and I can't sleep before work."]
    batch = az.analyze_batch(texts, evidence=True, risk=False)
    for t, b in zip(texts, batch, strict=True):
        s = az.analyze(t, evidence=True, risk=False)
        for k in TASK_KEYS:
            assert s.tasks[k].label == b.tasks[k].label
            assert abs(s.tasks[k].probability - b.tasks[k].probability) < 1e-4
            assert [e.start for e in s.tasks[k].evidence] == [e.start for e in b.tasks[k].evidence]


def test_bad_input_never_crashes(az):
    with pytest.raises(DataError, match="empty"):
        az.analyze("   ")
    with pytest.raises(DataError, match="text 1 is empty"):
        az.analyze_batch(["ok then", ""])
    kept = az.analyze_batch(["ok then", ""], on_empty="keep", risk=False)
    assert kept[1].tasks == {} and kept[1].warnings
    emoji = az.analyze("😭😭😭", risk=False)
    assert emoji.tasks and any("emoji" in w for w in emoji.warnings)
    html = az.analyze("<p>I feel <b>so alone</b> all the time</p>", risk=False)
    assert "<" not in html.text and "HTML markup removed" in html.warnings
    foreign = az.analyze("Je suis très fatigué et je ne veux plus rien faire aujourd'hui", risk=False)
    assert foreign.language == "non-English" and any("English" in w for w in foreign.warnings)
    raw = az.analyze(b"I feel \xff\xfe awful", risk=False)
    assert any("UTF-8" in w for w in raw.warnings)
    huge = az.analyze("I am tired of everything. " * 5000, evidence=True, risk=False)
    assert huge.truncated and any("truncated" in w for w in huge.warnings)


def test_answers_to_imhi_questions(az, imhi_dir):
    """Every IMHI question wording (instruction and completion) reaches the right head, and the answer
    starts with that task's own label sentence, so IMHI tools parse it."""
    from mentalens.data import load_imhi
    from mentalens.tasks import get_task

    recs = []
    for fmt in ("instruction", "complete"):
        by_set: dict[str, list] = {}
        for r in load_imhi(imhi_dir, split="test", fmt=fmt):
            by_set.setdefault((r.set_name, r.aspect), []).append(r)
        recs += [rs[0] for rs in by_set.values()]
    assert len(recs) >= 2 * 14
    from mentalens.analyze.backend import EmbeddedBackend

    answers = EmbeddedBackend(analyzer=az).answer([r.query for r in recs])
    for i, (r, ans) in enumerate(zip(recs, answers, strict=True)):
        task = get_task(r.task)
        label = task.parse(ans)
        assert label is not None, (r.set_name, ans)
        assert ans.startswith(task.gold_sentence(label)), ans
        if i % 7 == 0:  # the single-query path gives the same answer
            assert ans == az.answer(r.post, r.question)


def test_unknown_question_and_classify(az):
    text = az.answer(DEPRESSED, "What is the capital of France?")
    assert "IMHI questions only" in text
    r = az.classify(DEPRESSED, "DR")
    assert r.label == "yes" and r.key == "DR"
    r = az.classify(DEPRESSED, "Irf", aspect="burdensomeness")
    assert r.key == "IRF.perceived burdensomeness"
    with pytest.raises(Exception, match="aspect"):
        az.classify(DEPRESSED, "MultiWD")


def test_quality_floor_on_real_posts(az, imhi_dir):
    """A regression floor far below the bench figures: 80 dreaddit test posts, stress or not."""
    from mentalens.analyze.train import weighted_f1
    from mentalens.data import load_imhi

    recs = load_imhi(imhi_dir, split="test", fmt="instruction", sets=["dreaddit"])[:80]
    X = az.features([r.post for r in recs])
    pred, _ = az.predict(X, "dreaddit")
    assert weighted_f1([r.label for r in recs], pred) > 65


def test_embed_is_the_sentence_transformers_vector(az):
    v = az.embed(["I feel lonely", "I feel so alone", "The weather is sunny"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_broken_artefact_is_a_clear_error(tmp_path):
    from mentalens.analyze import Analyzer

    with pytest.raises(ModelError, match="no analyzer artefact"):
        Analyzer.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    (tmp_path / "weights.npz").write_bytes(b"junk")
    with pytest.raises(ModelError, match="unreadable"):
        Analyzer.load(tmp_path)


def test_risk_comes_from_the_safety_layer(az):
    a = az.analyze("I feel like everyone would be better off without me and I keep thinking about ending it.")
    assert a.risk is not None and a.risk_level in {"low", "moderate", "high", "imminent"}
    assert a.to_dict()["risk"] is not None


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_analyze_json(cli):
    code, out, err = cli("analyze", DEPRESSED, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["tasks"]["DR"]["label"] == "yes" and d["emotions"]


def test_cli_analyze_panel_and_errors(cli):
    code, out, _ = cli("analyze", NEUTRAL)
    assert code == 0 and "mentalens analysis" in out and "not a diagnosis" in out
    code, _, err = cli("analyze", "   ")
    assert code == 2 and err.startswith("error: empty text")
    code, _, err = cli("analyze")
    assert code == 2 and "either TEXT or --file" in err


def test_cli_analyze_file(cli, tmp_path):
    src = tmp_path / "posts.jsonl"
    src.write_bytes(
        b'{"text": "I can\'t stop worrying about my exams"}\n{"text": ""}\n{"post": "bad \xff bytes but still text"}\n'
    )
    out = tmp_path / "out.jsonl"
    code, _, err = cli("analyze", "--file", str(src), "--output", str(out), "--no-evidence")
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["tasks"] and rows[1]["tasks"] == {}
    assert "UTF-8" in err
    csv_out = tmp_path / "out.csv"
    code, _, _ = cli("analyze", "--file", str(src), "--output", str(csv_out))
    assert code == 0 and csv_out.read_text().startswith("index,risk_level")
    bad = tmp_path / "posts.xlsx"
    bad.write_text("x")
    code, _, err = cli("analyze", "--file", str(bad))
    assert code == 2 and "unsupported file type" in err
    assert not (tmp_path / "nothing.jsonl").exists()
