"""`mentalens chat`, `mentalens counsel index` and `mentalens serve` from the command line."""

from __future__ import annotations

import io
import json
import sys

import pytest


@pytest.fixture(scope="module")
def _index_ready(data_dir):
    from mentalens.analyze import get_analyzer
    from mentalens.counsel.retrieval import RetrievalCounsellor

    RetrievalCounsellor(analyzer=get_analyzer()).index  # noqa: B018 - the cached index exists


def test_chat_in_the_terminal_with_feelings_and_end(cli, monkeypatch, _index_ready):
    script = "\n".join([
        "I feel really lonely since my best friend moved away.",
        "/feelings",
        "I want to kill myself tonight.",
        "/nonsense",
        "/end",
    ]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    code, out, err = cli("chat", "--locale", "US", "--no-stream")
    assert code == 0, err
    assert "You are talking to an AI" in out
    assert "how counsellors have answered similar questions" in out
    assert "Your feelings over this conversation" in out
    assert "988" in out and "help is available" in out
    assert "unknown command /nonsense" in out
    assert "The conversation was deleted." in out


def test_chat_streams_by_default_and_quits(cli, monkeypatch, _index_ready):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n/quit\n"))
    code, out, _ = cli("chat")
    assert code == 0 and "I'm here to listen" in out and "Nothing from this conversation was saved" in out


def test_counsel_index_reports_the_cached_index(cli, _index_ready):
    code, out, err = cli("counsel", "index", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["questions"] > 800 and info["answers"] > 2000 and info["cache"].endswith(".npz")


def test_bad_options_fail_with_one_line(cli, monkeypatch, tmp_path):
    code, _, err = cli("serve", "--host", "0.0.0.0")
    assert code == 2 and "without API keys" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("chat", "--backend", "nope")
    assert code == 2 and "unknown backend 'nope'" in err
    code, _, err = cli("counsel", "index", "--data", str(tmp_path))
    assert code == 2 and "no CounselChat file" in err
    code, _, err = cli("serve", "--persist", "mysql://x")
    assert code == 2 and "unknown persistence" in err
