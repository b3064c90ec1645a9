"""The retrieval counsellor on the real CounselChat file with the real analyzer's encoder."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mentalens.backend import GenerationConfig, get_backend
from mentalens.counsel.retrieval import (
    QUESTIONS_BACK,
    RetrievalCounsellor,
    RetrievalIndex,
    chunk_words,
    encoder_fingerprint,
)


def _quote(reply: str) -> str:
    """The counsellor excerpt of a retrieval reply (the opening may quote the person too)."""
    return re.search(r"questions[^\n]*:\n\n“(.+?)”\n\n", reply, re.S).group(1)


@pytest.fixture(scope="module")
def analyzer():
    from mentalens.analyze import get_analyzer

    return get_analyzer()


@pytest.fixture(scope="module")
def counsellor(analyzer, data_dir):
    c = RetrievalCounsellor(analyzer=analyzer)
    c.index  # noqa: B018 - built (or read from the cache) once for the module
    return c


def test_index_covers_every_question_and_is_cached_by_checksum(counsellor, analyzer, data_dir):
    from mentalens.data import load_counselchat

    idx = counsellor.index
    questions = {r.question_id for r in load_counselchat()}
    assert set(idx.question_ids) == questions
    assert idx.embeddings.shape == (len(questions), 384)
    assert np.allclose(np.linalg.norm(idx.embeddings, axis=1), 1.0, atol=1e-4)
    assert idx.path is not None and idx.path.is_file() and idx.checksum[:20] != ""

    calls = []

    def counting_embed(texts):
        calls.append(len(texts))
        return analyzer.embed(texts)

    again = RetrievalIndex.load_or_build(counting_embed, encoder_fingerprint(analyzer))
    assert calls == []  # read from the cache, not re-embedded
    assert np.array_equal(again.embeddings, idx.embeddings)
    other = RetrievalIndex.cache_path(idx.checksum, "another-encoder")
    assert other != idx.path  # another encoder never reuses these vectors


def test_a_corrupt_cache_is_rebuilt_not_trusted(tmp_path, monkeypatch, analyzer, data_dir):
    monkeypatch.setenv("MENTALENS_CACHE", str(tmp_path))
    import pandas as pd

    small = tmp_path / "cc.csv"
    pd.read_csv(data_dir / "counselchat/data/20200325_counsel_chat.csv", nrows=30).to_csv(small, index=False)
    built = RetrievalIndex.load_or_build(analyzer.embed, encoder_fingerprint(analyzer), data=small)
    assert built.path.is_file()
    built.path.write_bytes(b"not an npz file")
    rebuilt = RetrievalIndex.load_or_build(analyzer.embed, encoder_fingerprint(analyzer), data=small)
    assert np.allclose(rebuilt.embeddings, built.embeddings, atol=1e-5)


def test_nearest_question_shares_the_topic_on_held_out_questions(counsellor, data_dir):
    """Val questions against train questions only (CounselChat's split): the nearest train question's topic
    agrees far more often than the majority topic would (bench/counsel_retrieval.py has the full numbers)."""
    from collections import Counter

    from mentalens.data import load_counselchat

    idx = counsellor.index
    split = {r.question_id: r.split for r in load_counselchat()}
    rows = {q: i for i, q in enumerate(idx.question_ids)}
    train = [q for q in idx.question_ids if split[q] == "train"]
    val = [q for q in idx.question_ids if split[q] == "val"]
    assert len(train) > 500 and len(val) > 50
    sims = idx.embeddings[[rows[q] for q in val]] @ idx.embeddings[[rows[q] for q in train]].T
    nearest = [train[j] for j in sims.argmax(axis=1)]
    agreement = np.mean([idx.topics[n] == idx.topics[q] for n, q in zip(nearest, val, strict=True)])
    majority = Counter(idx.topics[q] for q in val).most_common(1)[0][1] / len(val)
    assert agreement > majority + 0.2, (agreement, majority)


def test_reply_reflects_the_message_and_quotes_counsellors_honestly(counsellor):
    msg = "I can't sleep at night and I keep thinking that I am worthless and a failure at everything."
    reply = counsellor.reply([{"role": "user", "content": msg}])
    assert "Here is how counsellors have answered similar questions" in reply
    assert "written for someone else's question" in reply
    assert reply.rstrip().endswith("?")
    quote = _quote(reply)
    assert len(quote) > 80
    assert not re.search(r"https?://|www\.|\bLMFT\b|\bLPC\b|\bPhD\b", reply)
    # the quoted answer is one of CounselChat's, from a question the encoder finds close to the message
    hits = counsellor.find(msg)
    assert any(quote[:60] in a.excerpt for h in hits for a in counsellor.index.quotable(h.question_id))
    assert hits[0].similarity > counsellor.config.min_similarity


def test_the_opening_names_the_emotions_the_analyzer_found(counsellor, analyzer):
    from mentalens.counsel.analysis import EMOTION_WORDS, top_emotions

    msg = "My dad died last month and I just cry all day. I miss him so much."
    found = [lb for lb, _ in top_emotions(analyzer.analyze(msg), k=2, min_score=0.05)]
    reply = counsellor.reply([{"role": "user", "content": msg}])
    opening = reply.split("\n\n")[0]
    if found:
        assert any(EMOTION_WORDS[lb] in opening for lb in found if lb in EMOTION_WORDS)
    assert "I miss him so much" in opening or "I just cry all day" in opening or "My dad died" in opening


def test_answers_are_not_repeated_and_questions_back_vary(counsellor):
    msgs = [{"role": "user", "content": "I feel anxious all the time at work and my heart races."}]
    first = counsellor.reply(msgs)
    msgs += [{"role": "assistant", "content": first},
             {"role": "user", "content": "I feel anxious all the time at work and my heart races."}]
    second = counsellor.reply(msgs)
    q1, q2 = _quote(first), _quote(second)
    assert q1 != q2
    back1 = next(q for q in QUESTIONS_BACK if q in first)
    assert back1 not in second


def test_small_talk_and_unrelated_text_get_no_quote(counsellor):
    assert "counsellors" not in counsellor.reply([{"role": "user", "content": "hi"}])
    assert "welcome" in counsellor.reply([{"role": "user", "content": "thanks so much"}]).lower()
    odd = counsellor.reply([{"role": "user", "content": "The quarterly VAT invoice template uses column B."}])
    assert "Here is how counsellors" not in odd and odd.rstrip().endswith("?")


def test_at_risk_no_stranger_s_answer_is_quoted(counsellor):
    msgs = [{"role": "user", "content": "I have been thinking about killing myself every day this week."}]
    reply = counsellor.reply(msgs)
    assert "counsellors have answered" not in reply and "Are you safe right now?" in reply
    from mentalens.safety.guard import check_reply

    assert check_reply(reply) == []


def test_stream_is_the_reply_in_pieces_and_max_tokens_is_honoured(counsellor):
    msgs = [{"role": "user", "content": "How do I stop arguing with my mother every day?"}]
    pieces = list(counsellor.stream(msgs, GenerationConfig()))
    assert len(pieces) > 10
    assert "".join(pieces) == counsellor.reply(msgs, GenerationConfig())
    full = counsellor.reply(msgs)
    fitted = counsellor.reply(msgs, GenerationConfig(max_new_tokens=len(full) // 4 - 30))
    assert len(fitted) <= len(full) - 100 and fitted.rstrip().endswith("?")  # a shorter quote, same shape
    assert _quote(fitted) in _quote(full)
    short = counsellor.reply(msgs, GenerationConfig(max_new_tokens=20))
    assert len(short) <= 20 * 4 + 1 and short.endswith("…")
    assert "".join(chunk_words("a  b\nc d ", 2)) == "a  b\nc d "


def test_the_embedded_backend_chats_through_this_counsellor(analyzer):
    backend = get_backend("embedded", analyzer=analyzer)
    reply = backend.chat([{"role": "user", "content": "I think my partner is cheating on me, what should I do?"}])
    assert "how counsellors have answered similar questions" in reply
