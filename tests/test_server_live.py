"""A real uvicorn server on a free loopback port: the official `openai` client, raw SSE over HTTP, and a crisis
answered with resources while the LLM backend it is configured with is unreachable."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from mentalens.server import ServerConfig
from mentalens.server.live import LiveServer, free_port
from mentalens.server.state import build_engine

CRISIS = "I can't do this anymore. I'm going to kill myself tonight, I already have the pills."


@pytest.fixture(scope="module")
def analyzer():
    from mentalens.analyze import get_analyzer

    return get_analyzer()


@pytest.fixture(scope="module")
def live(analyzer, data_dir):
    config = ServerConfig(port=0)
    with LiveServer(config, engine=build_engine(config, analyzer), analyzer=analyzer) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(live):
    return openai.OpenAI(base_url=live.url + "/v1", api_key="not-needed-on-loopback", max_retries=0, timeout=60)


def test_the_official_openai_client_chats(client):
    assert [m.id for m in client.models.list().data] == ["mentalens", "mentalens-embedded"]
    done = client.chat.completions.create(
        model="mentalens",
        messages=[{"role": "system", "content": "You are helpful."},
                  {"role": "user", "content": "How do I cope with panic attacks before exams?"}],
        temperature=0.3,
        max_tokens=400,
    )
    assert done.object == "chat.completion" and done.choices[0].finish_reason == "stop"
    assert "how counsellors have answered similar questions" in done.choices[0].message.content
    assert done.usage.total_tokens > 0
    extra = done.model_extra["mentalens"]
    assert extra["risk"]["level"] == "none" and extra["analysis"]["emotions"]


def test_the_official_openai_client_streams_and_sees_errors(client):
    stream = client.chat.completions.create(
        model="mentalens-embedded",
        messages=[{"role": "user", "content": "My parents are divorcing and I feel torn between them."}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 10 and "counsellors" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    with pytest.raises(openai.NotFoundError, match="unknown model"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="messages is empty"):
        client.chat.completions.create(model="mentalens", messages=[])


def test_a_session_through_the_openai_client(client, live):
    sid = httpx.post(live.url + "/v1/sessions", json={}).json()["id"]
    for text in ("I got rejected from my dream job.", "I keep replaying the interview in my head."):
        r = client.chat.completions.create(model="mentalens", messages=[{"role": "user", "content": text}],
                                           extra_body={"session_id": sid})
        assert r.model_extra["mentalens"]["session_id"] == sid
    session = httpx.get(f"{live.url}/v1/sessions/{sid}").json()
    assert len(session["turns"]) == 2 and len(session["timeline"]["risk"]) == 2


def test_raw_sse_like_curl(live):
    body = {"model": "mentalens", "stream": True, "messages": [{"role": "user", "content": CRISIS}]}
    events = []
    with httpx.stream("POST", live.url + "/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert chunks[-1]["mentalens"]["risk"]["level"] in ("high", "imminent")
    assert "emergency" in text.lower()


def test_crisis_answered_with_resources_while_the_llm_backend_is_unreachable(analyzer):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    config = ServerConfig(port=0, backend="openai", locale="US",
                          backend_options={"base_url": dead, "model": "qwen2.5-7b", "max_retries": 0,
                                           "timeout_s": 5})
    with LiveServer(config, engine=build_engine(config, analyzer), analyzer=analyzer) as srv:
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list().data] == ["mentalens", "mentalens-openai"]
        r = client.chat.completions.create(model="mentalens", messages=[{"role": "user", "content": CRISIS}])
        reply = r.choices[0].message.content
        extra = r.model_extra["mentalens"]
        assert extra["fallback"] and extra["escalated"]
        assert "988" in reply and reply.startswith(extra["escalation_text"].strip())
        stream = client.chat.completions.create(model="mentalens", stream=True,
                                                messages=[{"role": "user", "content": "I feel anxious about work."}])
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert "counsellors" in text  # the retrieval counsellor stands in for the dead model
