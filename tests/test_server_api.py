"""The HTTP API in-process (TestClient): OpenAI shapes, sessions, analysis, risk, limits, keys, persistence, logs.

The app runs the real analyzer, safety layer and retrieval counsellor (embedded backend).
"""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
from fastapi.testclient import TestClient

from mentalens.errors import ConfigError
from mentalens.server import ServerConfig, create_app
from mentalens.server.state import build_engine

KEY = "test-key-0123456789abcdef"
OTHER = "other-key-0123456789abcdef"
SECRET_TEXT = "my-unique-private-sentence-about-my-sister"


@pytest.fixture(scope="module")
def analyzer():
    from mentalens.analyze import get_analyzer

    return get_analyzer()


@pytest.fixture(scope="module")
def engine(analyzer, data_dir):
    return build_engine(ServerConfig(), analyzer)


@pytest.fixture(scope="module")
def client(engine, analyzer):
    app = create_app(ServerConfig(), engine=engine, analyzer=analyzer)
    with TestClient(app) as c:
        yield c


def chat(client, content, **extra):
    body = {"model": "mentalens", "messages": [{"role": "user", "content": content}], **extra}
    return client.post("/v1/chat/completions", json=body)


def sse(text: str) -> list:
    events = [line[len("data: "):] for line in text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


@pytest.mark.timeout(300)
def test_the_app_loads_its_own_analyzer_and_engine(analyzer):
    """What `mentalens serve` does: nothing handed in, everything loaded at start-up (no lock taken twice)."""
    with TestClient(create_app(ServerConfig())) as c:
        health = c.get("/healthz").json()
        assert health["ready"] is True and health["backend"] == "embedded"
        assert chat(c, "My sister and I don't talk anymore.").status_code == 200


def test_chat_completion_has_the_openai_shape_and_the_mentalens_object(client):
    r = chat(client, "My partner and I keep fighting about money. How do we stop?", temperature=0.2,
             max_tokens=400)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "mentalens" and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert "how counsellors have answered similar questions" in choice["message"]["content"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    ml = body["mentalens"]
    assert ml["risk"]["level"] == "none" and not ml["escalated"]
    assert ml["analysis"]["emotions"] and ml["disclosure"].startswith("You are talking to an AI")


def test_streaming_sends_chunks_ending_with_done_and_resources_for_a_crisis(client):
    r = chat(client, "I am going to kill myself tonight, I have the rope ready.", stream=True, locale="US",
             stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = sse(r.text)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    final = next(c for c in chunks if "mentalens" in c)
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["mentalens"]["risk"]["level"] in ("high", "imminent")
    assert text.startswith(final["mentalens"]["escalation_text"].strip()) and "988" in text
    assert chunks[-1]["usage"]["completion_tokens"] > 0 and chunks[-1]["choices"] == []


def test_models_analyze_and_risk(client):
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["mentalens", "mentalens-embedded"]
    post = "I haven't slept properly in weeks. I feel empty and nothing is fun anymore. I cry every night."
    a = client.post("/v1/analyze", json={"text": post}).json()
    assert set(a["tasks"]) and a["emotions"] and "not_a_diagnosis" in a
    for result in a["tasks"].values():
        for ev in result["evidence"]:
            assert a["text"][ev["start"]:ev["end"]] == ev["sentence"]
    m = client.post("/v1/analyze", json={"messages": [{"role": "user", "content": post}]})
    assert m.status_code == 200 and m.json()["text"] == a["text"]
    risk = client.post("/v1/risk", json={"text": "I want to end my life", "locale": "GB"}).json()
    assert risk["level"] in ("moderate", "high", "imminent") and "Samaritans" in risk["escalation_text"]
    calm = client.post("/v1/risk", json={"messages": [{"role": "user", "content": "I passed my exam!"}]}).json()
    assert calm["level"] == "none" and calm["escalation_text"] is None


def test_sessions_keep_history_timeline_and_export_then_delete(client):
    s = client.post("/v1/sessions", json={"locale": "US"})
    assert s.status_code == 201
    sid = s.json()["id"]
    for text in ("I feel so lonely since I moved to a new city.", "Today a colleague invited me to lunch!"):
        r = chat(client, text, session_id=sid)
        assert r.status_code == 200 and r.json()["mentalens"]["session_id"] == sid
    got = client.get(f"/v1/sessions/{sid}").json()
    assert [t["user"] for t in got["turns"]] == ["I feel so lonely since I moved to a new city.",
                                                  "Today a colleague invited me to lunch!"]
    assert len(got["messages"]) == 4
    timeline = client.get(f"/v1/sessions/{sid}/timeline").json()
    assert len(timeline["risk"]) == 2 and set(timeline["risk"]) <= {"none", "low"}
    assert timeline["series"] and all(len(v) == 2 for v in timeline["series"].values())
    export = client.get(f"/v1/sessions/{sid}/export")
    assert "attachment" in export.headers["content-disposition"] and export.json()["id"] == sid
    assert client.delete(f"/v1/sessions/{sid}").json()["deleted"] is True
    assert client.get(f"/v1/sessions/{sid}").status_code == 404


BAD = [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}', 404, "unknown model"),
    (b'{"model": "mentalens", "messages": []}', 422, "messages is empty"),
    (b'{"model": "mentalens"}', 422, "'messages' is required"),
    (b'{"model": "mentalens", "messages": [{"role": "wizard", "content": "hi"}]}', 422, "messages.0.role"),
    (b'{"model": "mentalens", "messages": [{"role": "assistant", "content": "hi"}]}', 422, "from the user"),
    (b'{"model": "mentalens", "messages": [{"role": "user", "content": "  "}]}', 422, "empty"),
    (b'{"model": "mentalens", "messages": [{"role": "user", "content": "hi"}], "session_id": "sess_x"}', 404,
     "unknown session"),
    (b'{"model": "mentalens", "messages": [{"role": "user", "content": "hi"}], "temperature": 9}', 422,
     "temperature"),
    (b'{"model": "mentalens", "messages": [{"role": "user", "content": "hi"}], "n": 3}', 422, "n must be 1"),
    ("\udcff".encode("utf-8", "surrogatepass"), 400, "malformed JSON"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD)
def test_bad_chat_requests_get_a_clear_4xx(client, body, status, message):
    r = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert message in err["message"] and "\n" not in err["message"]


def test_other_bad_input_and_the_server_keeps_serving(client):
    huge = {"model": "mentalens", "messages": [{"role": "user", "content": "a" * 1_000_000}]}
    r = client.post("/v1/chat/completions", json=huge)
    assert r.status_code == 413 and "too large" in r.json()["error"]["message"]
    long = {"model": "mentalens", "messages": [{"role": "user", "content": "é" * 40_000}]}
    assert client.post("/v1/chat/completions", json=long).status_code == 422
    assert client.post("/v1/analyze", json={}).status_code == 422
    assert client.post("/v1/analyze", json={"text": "   "}).status_code == 422
    both = {"text": "a", "messages": [{"role": "user", "content": "b"}]}
    assert client.post("/v1/risk", json=both).status_code == 422
    assert client.post("/v1/sessions", json={"persist": True}).status_code == 400  # persistence is off
    assert client.post("/v1/sessions", json={"colour": "blue"}).status_code == 422
    assert client.get("/v1/sessions/sess_nope/timeline").status_code == 404
    assert client.delete("/v1/sessions/sess_nope").status_code == 404
    assert client.get("/v1/nothing").status_code == 404
    assert client.put("/v1/chat/completions").status_code == 405
    assert chat(client, "Still there? I had a rough day at school.").status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"


def test_openapi_schema_lists_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/v1/chat/completions", "/v1/models", "/v1/analyze", "/v1/risk", "/v1/sessions",
              "/v1/sessions/{session_id}", "/healthz"):
        assert p in paths


def test_api_keys_are_required_and_sessions_belong_to_their_key(engine, analyzer, monkeypatch):
    with pytest.raises(ConfigError, match="without API keys"):
        ServerConfig(host="0.0.0.0")
    monkeypatch.setenv("MENTALENS_API_KEYS", f"{KEY}, {OTHER}")
    assert ServerConfig.from_env(host="0.0.0.0").api_keys == [KEY, OTHER]
    assert ServerConfig(host="::1").api_keys == [] and ServerConfig(host="localhost").host == "localhost"
    with pytest.raises(ConfigError, match="at least 16"):
        ServerConfig(api_keys=["short"])
    app = create_app(ServerConfig(host="0.0.0.0", api_keys=[KEY, OTHER]), engine=engine, analyzer=analyzer)
    with TestClient(app) as c:
        assert c.get("/healthz").json()["auth_required"] is True
        r = c.get("/v1/models")
        assert r.status_code == 401 and "missing API key" in r.json()["error"]["message"]
        r = c.get("/v1/models", headers={"Authorization": "Bearer wrong-key-000000000"})
        assert r.status_code == 401 and "invalid API key" in r.json()["error"]["message"]
        assert c.get("/v1/models", headers={"Authorization": KEY}).status_code == 401
        mine = {"Authorization": f"Bearer {KEY}"}
        sid = c.post("/v1/sessions", json={}, headers=mine).json()["id"]
        theirs = {"Authorization": f"Bearer {OTHER}"}
        assert c.get(f"/v1/sessions/{sid}", headers=theirs).status_code == 404
        assert c.delete(f"/v1/sessions/{sid}", headers=theirs).status_code == 404
        body = {"model": "mentalens", "messages": [{"role": "user", "content": "hello"}], "session_id": sid}
        assert c.post("/v1/chat/completions", json=body, headers=theirs).status_code == 404
        assert c.post("/v1/chat/completions", json=body, headers=mine).status_code == 200
        assert c.get(f"/v1/sessions/{sid}", headers=mine).status_code == 200


def test_sqlite_persistence_survives_a_restart(tmp_path, engine, analyzer):
    db = tmp_path / "sessions.db"
    config = ServerConfig(persistence=f"sqlite:{db}")
    with TestClient(create_app(config, engine=engine, analyzer=analyzer)) as c:
        kept = c.post("/v1/sessions", json={"persist": True}).json()["id"]
        passing = c.post("/v1/sessions", json={}).json()["id"]
        for sid in (kept, passing):
            body = {"model": "mentalens", "messages": [{"role": "user", "content": SECRET_TEXT}], "session_id": sid}
            assert c.post("/v1/chat/completions", json=body).status_code == 200
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT session_id, idx, data FROM mentalens_turns").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(kept, 0)]  # only the session that asked to be kept
    assert SECRET_TEXT in json.loads(rows[0][2])["user"]
    with TestClient(create_app(config, engine=engine, analyzer=analyzer)) as c:
        got = c.get(f"/v1/sessions/{kept}").json()
        assert got["turns"][0]["user"] == SECRET_TEXT and got["persist"] is True
        assert c.get(f"/v1/sessions/{passing}").status_code == 404
        assert c.delete(f"/v1/sessions/{kept}").status_code == 200
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM mentalens_turns").fetchone()[0] == 0


def test_cors_is_closed_by_default_and_opens_only_for_named_origins(client, engine, analyzer):
    pre = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    r = client.options("/v1/chat/completions", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    app = create_app(ServerConfig(cors_origins=["https://app.example"]), engine=engine, analyzer=analyzer)
    with TestClient(app) as c:
        ok = c.options("/v1/chat/completions", headers={**pre, "Origin": "https://app.example"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        bad = c.options("/v1/chat/completions", headers=pre)
        assert "access-control-allow-origin" not in bad.headers


def test_logs_carry_no_user_text(client, caplog):
    with caplog.at_level(logging.DEBUG):
        chat(client, SECRET_TEXT)
        chat(client, SECRET_TEXT, stream=True)
        client.post("/v1/analyze", json={"text": SECRET_TEXT})
        client.post("/v1/chat/completions", content=b'{"model": "' + SECRET_TEXT.encode() + b'"',
                    headers={"content-type": "application/json"})
    lines = [r.getMessage() for r in caplog.records]
    assert any("POST /v1/chat/completions 200" in line for line in lines)
    assert not any(SECRET_TEXT in line for line in lines)


def test_security_headers_on_the_web_app(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/chat.js").status_code == 200


def test_memory_sessions_are_bounded():
    from mentalens.counsel.session import ChatSession
    from mentalens.server.store import MemoryStore

    store = MemoryStore(max_sessions=2, ttl_s=3600)
    a, b, c = ChatSession(), ChatSession(), ChatSession()
    store.create(a)
    store.create(b)
    assert store.get(a.id) is a  # a is now the most recently used
    store.create(c)
    assert store.get(b.id) is None and store.get(a.id) is a and store.get(c.id) is c
    stale = MemoryStore(ttl_s=0)
    stale.create(a)
    assert stale.get(a.id) is None


def test_busy_sessions_and_a_saturated_server_answer_409_and_503(analyzer):
    import threading
    import time

    from mentalens.backend import Backend
    from mentalens.counsel import CounselEngine

    gate = threading.Event()

    class Waiting(Backend):
        name = "waiting"

        def answer(self, prompts, config=None):
            return []

        def stream(self, messages, config=None):
            gate.wait(30)
            yield "Thank you for waiting. "

    engine = CounselEngine(Waiting(), analyzer=analyzer)
    app = create_app(ServerConfig(max_concurrency=1, queue_timeout_s=0.2, preload=False), engine=engine,
                     analyzer=analyzer)
    with TestClient(app) as c:
        sid = c.post("/v1/sessions", json={}).json()["id"]
        body = {"model": "mentalens", "messages": [{"role": "user", "content": "hello there"}], "session_id": sid}
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(r=c.post("/v1/chat/completions", json=body)))
        worker.start()
        try:
            deadline = time.monotonic() + 30
            while not app.state.mentalens._busy and time.monotonic() < deadline:
                time.sleep(0.02)
            again = c.post("/v1/chat/completions", json=body)
            assert again.status_code == 409 and "still being written" in again.json()["error"]["message"]
            other = chat(c, "is anyone there?")
            assert other.status_code == 503 and other.headers["retry-after"] == "5"
        finally:
            gate.set()
            worker.join(30)
        assert first["r"].status_code == 200 and first["r"].json()["choices"][0]["message"]["content"]
        assert chat(c, "and now?").status_code == 200
