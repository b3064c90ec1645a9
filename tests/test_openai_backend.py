"""OpenAIBackend against a real HTTP server on localhost (FastAPI + uvicorn in a thread).

The server speaks the OpenAI wire format (JSON completions, server-sent-event streams) and can be told
to misbehave: fail N times with 503/429, answer with HTML, drop the stream, send broken events. Its
"model" is a real tiny Llama behind HFBackend, so answers through HTTP must equal answers computed
directly.
"""

# no `from __future__ import annotations`: FastAPI must see the real Request class on the local handlers
import json
import socket
import threading
import time

import pytest

from mentalens.backend import BACKENDS, GenerationConfig
from mentalens.errors import BackendError, ConfigError
from mentalens.llm.openai_backend import OpenAIBackend, normalise_base_url


@pytest.fixture(scope="module")
def model():
    import torch

    from mentalens.llm.backend import HFBackend
    from mentalens.llm.tiny import tiny_family

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield HFBackend(str(tiny_family()["small"]), batch_size=4)
    torch.set_num_threads(before)


class Script:
    """What the fake server should do next (shared with its handlers)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.fail_next = 0  # answer this many requests with fail_status
        self.fail_status = 503
        self.retry_after: str | None = None
        self.mode = "ok"  # ok | html | no_choices | broken_stream | bad_event | drop_stream | json_stream
        self.calls = 0
        self.auth: list[str | None] = []
        self.bodies: list[dict] = []
        self.delay_s = 0.0


@pytest.fixture(scope="module")
def server(model):
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

    script = Script()
    app = FastAPI()

    def _gen(body) -> GenerationConfig:
        return GenerationConfig(
            max_new_tokens=body.get("max_tokens", 16), temperature=body.get("temperature", 0.0),
            stop=tuple(body.get("stop") or ()), seed=body.get("seed"),
        )

    async def _gate(request: Request):
        script.calls += 1
        script.auth.append(request.headers.get("authorization"))
        body = await request.json()
        script.bodies.append(body)
        if script.delay_s:
            time.sleep(script.delay_s)
        if script.fail_next > 0:
            script.fail_next -= 1
            headers = {"retry-after": script.retry_after} if script.retry_after else {}
            return body, JSONResponse({"error": {"message": "busy"}}, status_code=script.fail_status, headers=headers)
        if script.mode == "html":
            return body, PlainTextResponse("<html>proxy login</html>", media_type="text/html")
        if script.mode == "no_choices":
            return body, JSONResponse({"id": "x", "object": "chat.completion"})
        return body, None

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body, early = await _gate(request)
        if early is not None:
            return early
        cfg = _gen(body)
        if not body.get("stream"):
            text = model.chat(body["messages"], cfg)
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            return {"id": "c1", "object": "chat.completion", "model": body["model"], "choices": [choice]}
        if script.mode == "json_stream":
            return {"choices": [{"message": {"role": "assistant", "content": model.chat(body["messages"], cfg)}}]}

        def events():
            yield ": keep-alive\n\n"
            yield "data: " + json.dumps({"choices": [{"delta": {"role": "assistant"}}]}) + "\n\n"
            for i, delta in enumerate(model.stream(body["messages"], cfg)):
                if script.mode == "bad_event" and i == 1:
                    yield "data: {not json\n\n"
                    return
                if script.mode == "drop_stream" and i == 1:
                    raise RuntimeError("connection dropped")
                yield "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": delta}}]}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request):
        body, early = await _gate(request)
        if early is not None:
            return early
        raw = model.chat_prompts
        model.chat_prompts = False  # /v1/completions continues the raw prompt
        try:
            text = model.answer([body["prompt"]], _gen(body))[0]
        finally:
            model.chat_prompts = raw
        return {"id": "t1", "object": "text_completion", "choices": [{"index": 0, "text": text}]}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="error", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "test server did not start"
    yield f"http://127.0.0.1:{port}", script
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def live(server):
    url, script = server
    script.reset()
    return url, script


def _backend(url: str, **kw) -> OpenAIBackend:
    kw.setdefault("backoff_s", 0.01)
    return OpenAIBackend(url, "tiny", **kw)


def test_registered_and_base_urls_normalised():
    assert BACKENDS.get("openai") is OpenAIBackend
    assert normalise_base_url("http://localhost:8000") == "http://localhost:8000/v1"
    assert normalise_base_url("https://api.example.com/v1/") == "https://api.example.com/v1"
    assert normalise_base_url("https://host/openai/v1beta") == "https://host/openai/v1beta"
    with pytest.raises(ConfigError):
        normalise_base_url("localhost:8000")
    with pytest.raises(ConfigError):
        OpenAIBackend("http://localhost:1", "")


def test_chat_answers_over_http_equal_the_model_and_keep_order(live, model):
    url, script = live
    prompts = ["Does the poster suffer from stress?", "Hello", "I lost my job and cannot sleep."]
    cfg = GenerationConfig(max_new_tokens=10)
    with _backend(url, concurrency=3) as backend:
        got = backend.answer(prompts, cfg)
    direct = [model.chat([{"role": "user", "content": p}], cfg).strip() for p in prompts]
    assert got == direct and len(set(got)) == 3
    assert script.calls == 3 and all(b["model"] == "tiny" and b["max_tokens"] == 10 for b in script.bodies)


def test_completions_mode_sends_the_raw_prompt(live, model):
    url, script = live
    with _backend(url, mode="completions") as backend:
        out = backend.answer(["Post: I feel tired  Question: stress? "], GenerationConfig(max_new_tokens=6))
    assert "prompt" in script.bodies[0] and "messages" not in script.bodies[0]
    assert len(out) == 1 and isinstance(out[0], str)


def test_stream_yields_the_same_text_as_the_model(live, model):
    url, _ = live
    msgs = [{"role": "user", "content": "Tell me about sleep."}]
    cfg = GenerationConfig(max_new_tokens=12)
    with _backend(url) as backend:
        deltas = list(backend.stream(msgs, cfg))
    assert len(deltas) > 1 and "".join(deltas) == model.chat(msgs, cfg)


def test_a_server_ignoring_stream_true_still_works(live, model):
    url, script = live
    script.mode = "json_stream"
    msgs = [{"role": "user", "content": "hi"}]
    with _backend(url) as backend:
        cfg = GenerationConfig(max_new_tokens=5)
        assert backend.chat(msgs, cfg) == model.chat(msgs, cfg)


def test_5xx_and_429_are_retried_with_backoff_then_succeed(live):
    url, script = live
    script.fail_next, script.fail_status = 2, 503
    with _backend(url, max_retries=3) as backend:
        assert backend.answer(["hi"], GenerationConfig(max_new_tokens=3))
    assert script.calls == 3
    script.reset()
    script.fail_next, script.fail_status, script.retry_after = 1, 429, "0.2"
    started = time.perf_counter()
    with _backend(url, max_retries=2) as backend:
        list(backend.stream([{"role": "user", "content": "hi"}], GenerationConfig(max_new_tokens=3)))
    assert script.calls == 2 and time.perf_counter() - started >= 0.2  # Retry-After was honoured


def test_retries_run_out_with_one_clear_error(live):
    url, script = live
    script.fail_next, script.fail_status = 10, 502
    with _backend(url, max_retries=2) as backend, pytest.raises(BackendError, match="failed after 3 attempt.*HTTP 502"):
        backend.answer(["hi"])
    assert script.calls == 3


def test_unreachable_server_is_a_backend_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = _backend(f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(BackendError, match="ConnectError.*server is running"):
        backend.answer(["hi"])
    with pytest.raises(BackendError, match="ConnectError"):
        list(backend.stream([{"role": "user", "content": "hi"}]))


def test_client_errors_are_not_retried_and_name_the_fix(live, monkeypatch):
    url, script = live
    script.fail_next, script.fail_status = 1, 401
    with _backend(url) as backend, pytest.raises(BackendError, match="HTTP 401: busy: set OPENAI_API_KEY"):
        backend.answer(["hi"])
    assert script.calls == 1
    script.reset()
    script.fail_next, script.fail_status = 1, 404
    with _backend(url) as backend, pytest.raises(BackendError, match="check base_url"):
        list(backend.stream([{"role": "user", "content": "hi"}]))


def test_garbage_responses_are_backend_errors(live):
    url, script = live
    script.mode = "html"
    with _backend(url) as backend:
        with pytest.raises(BackendError, match="did not return JSON"):
            backend.answer(["hi"])
        with pytest.raises(BackendError, match="instead of an event stream"):
            list(backend.stream([{"role": "user", "content": "hi"}]))
    script.mode = "no_choices"
    with _backend(url) as backend, pytest.raises(BackendError, match="without choices"):
        backend.answer(["hi"])
    script.mode = "bad_event"
    with _backend(url) as backend, pytest.raises(BackendError, match="not JSON"):
        msgs = [{"role": "user", "content": "a longer question please"}]
        list(backend.stream(msgs, GenerationConfig(max_new_tokens=8)))


def test_api_key_comes_from_the_environment_and_is_never_described(live, monkeypatch):
    url, script = live
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("MENTALENS_OPENAI_API_KEY", "sk-test-123")
    with _backend(url) as backend:
        backend.answer(["hi"], GenerationConfig(max_new_tokens=2))
        assert "sk-test" not in json.dumps(backend.describe())
    assert script.auth[-1] == "Bearer sk-test-123"
    monkeypatch.delenv("MENTALENS_OPENAI_API_KEY")
    with _backend(url) as backend:
        backend.answer(["hi"], GenerationConfig(max_new_tokens=2))
    assert script.auth[-1] is None


def test_sampling_settings_reach_the_server(live):
    url, script = live
    cfg = GenerationConfig(max_new_tokens=4, temperature=0.7, top_p=0.9, top_k=20, seed=3, stop=("\n", "###"))
    with _backend(url) as backend:
        backend.answer(["hi"], cfg)
    body = script.bodies[-1]
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["top_k"] == 20 and body["seed"] == 3
    assert body["stop"] == ["\n", "###"] and "repetition_penalty" not in body
