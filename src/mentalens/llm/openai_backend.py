"""OpenAIBackend: any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server, Ollama, TGI, mentalens serve).

Talks HTTP with httpx directly, so no `openai` package is needed at runtime. `answer()` sends prompts
concurrently (a bounded thread pool) to /v1/chat/completions (mode="chat", each prompt as one user turn)
or /v1/completions (mode="completions", raw prompt: base models, IMHI completion format). `stream()`
reads server-sent events from /v1/chat/completions.

Connect errors, timeouts, 5xx and 429 are retried with exponential backoff (honouring Retry-After); a
stream is only retried before its first token. When retries run out, or the server answers with an
error or something that is not an OpenAI response, a BackendError says what happened and what to check.
The API key comes from the argument or the environment (MENTALENS_OPENAI_API_KEY, OPENAI_API_KEY) and is
never logged or shown by describe(). No user text is ever put in an error message.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal
from urllib.parse import urlsplit

from mentalens.backend import Backend, GenerationConfig, Message
from mentalens.errors import BackendError, ConfigError

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
API_KEY_ENV = ("MENTALENS_OPENAI_API_KEY", "OPENAI_API_KEY")
MAX_BACKOFF_S = 30.0


def normalise_base_url(base_url: str) -> str:
    """"http://host:8000" -> "http://host:8000/v1"; URLs with a path are kept as given."""
    url = str(base_url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"base_url {base_url!r} is not an http(s) URL: write e.g. http://localhost:8000/v1")
    if parts.path in ("", "/"):
        url += "/v1"
    return url


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class OpenAIBackend(Backend):
    """A model served behind an OpenAI-compatible HTTP API."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60,
        max_retries: int = 3,
        concurrency: int = 4,
        *,
        mode: Literal["chat", "completions"] = "chat",
        system_prompt: str | None = None,
        backoff_s: float = 0.5,
        extra_body: dict[str, Any] | None = None,
    ):
        import httpx

        if not model:
            raise ConfigError("model is required: the model name the endpoint serves (see its /v1/models)")
        if mode not in ("chat", "completions"):
            raise ConfigError(f"mode must be 'chat' or 'completions', not {mode!r}")
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise ConfigError("concurrency must be >= 1, max_retries >= 0 and timeout_s > 0")
        self.base_url = normalise_base_url(base_url)
        self.model = model
        self.mode = mode
        self.system_prompt = system_prompt
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.concurrency = int(concurrency)
        self.backoff_s = float(backoff_s)
        self.extra_body = dict(extra_body or {})
        key = api_key or next((os.environ[k] for k in API_KEY_ENV if os.environ.get(k)), None)
        headers = {"Accept": "application/json", "User-Agent": "mentalens"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
            limits=httpx.Limits(max_connections=self.concurrency + 2),
        )
        self._closed = threading.Event()

    # -------------------------------------------------------------------------------- request bodies
    def _sampling(self, config: GenerationConfig) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": config.max_new_tokens}
        body["temperature"] = config.temperature
        if config.top_p != 1.0:
            body["top_p"] = config.top_p
        if config.top_k:  # not in OpenAI's API; vLLM, llama.cpp and TGI accept it
            body["top_k"] = config.top_k
        if config.repetition_penalty != 1.0:  # likewise a common extension
            body["repetition_penalty"] = config.repetition_penalty
        if config.seed is not None:
            body["seed"] = config.seed
        if config.stop:
            body["stop"] = list(config.stop)[:4]  # OpenAI accepts at most four
        body.update(self.extra_body)
        return body

    def _messages(self, messages: Sequence[Message]) -> list[dict[str, str]]:
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        if self.system_prompt and not (msgs and msgs[0]["role"] == "system"):
            msgs.insert(0, {"role": "system", "content": self.system_prompt})
        return msgs

    # -------------------------------------------------------------------------------- HTTP with retries
    def _url(self, endpoint: str) -> str:
        return f"{self.base_url}/{endpoint}"

    def _retry_loop(self, attempt_fn, what: str, timeout: float | None):
        last = ""
        for attempt in range(self.max_retries + 1):
            if self._closed.is_set():
                raise BackendError("backend closed")
            try:
                return attempt_fn(timeout)
            except _Retryable as exc:
                last = exc.reason
                if attempt == self.max_retries:
                    break
                delay = exc.retry_after if exc.retry_after is not None else self.backoff_s * 2**attempt
                delay = min(MAX_BACKOFF_S, delay) * (1 + 0.1 * random.random())
                time.sleep(delay)
        raise BackendError(
            f"{what} at {self.base_url} failed after {self.max_retries + 1} attempt(s) ({last}): check that the "
            "server is running and reachable, or raise max_retries/timeout_s"
        )

    def _check_status(self, response: Any) -> None:
        status = response.status_code
        if status < 400:
            return
        if status in RETRY_STATUS:
            raise _Retryable(f"HTTP {status}", _retry_after(response.headers.get("retry-after")))
        detail = _error_detail(response)
        hint = {
            401: "set OPENAI_API_KEY / MENTALENS_OPENAI_API_KEY or pass api_key",
            403: "the API key lacks access to this model",
            404: f"check base_url ({self.base_url}) and the model name {self.model!r} (see /v1/models)",
        }.get(status, "check the request settings for this server")
        raise BackendError(f"{self.base_url} answered HTTP {status}{': ' + detail if detail else ''}: {hint}")

    def _post_json(self, endpoint: str, body: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        import httpx

        def attempt(t: float | None) -> dict[str, Any]:
            try:
                response = self._client.post(self._url(endpoint), json=body, timeout=t or self.timeout_s)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                raise _Retryable(type(exc).__name__) from None
            self._check_status(response)
            try:
                data = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BackendError(
                    f"{self.base_url}/{endpoint} did not return JSON (content-type "
                    f"{response.headers.get('content-type', '?')}): is base_url an OpenAI-compatible API?"
                ) from None
            if not isinstance(data, dict):
                raise BackendError(f"{self.base_url}/{endpoint} returned JSON that is not an object: not an OpenAI API")
            return data

        return self._retry_loop(attempt, f"POST /{endpoint}", timeout)

    # -------------------------------------------------------------------------------- Backend API
    def complete_one(self, prompt: str, config: GenerationConfig) -> str:
        """One completion for one prompt (chat or completions mode)."""
        body = self._sampling(config)
        if self.mode == "chat":
            body["messages"] = self._messages([{"role": "user", "content": prompt}])
            data = self._post_json("chat/completions", body, config.timeout_s)
            return _choice_text(data, chat=True, where=self.base_url)
        body["prompt"] = prompt
        data = self._post_json("completions", body, config.timeout_s)
        return _choice_text(data, chat=False, where=self.base_url)

    def answer(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        config = config or GenerationConfig()
        prompts = [str(p) for p in prompts]
        if not prompts:
            return []
        if len(prompts) == 1 or self.concurrency == 1:
            return [self.complete_one(p, config).strip() for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)), thread_name_prefix="openai") as pool:
            futures = [pool.submit(self.complete_one, p, config) for p in prompts]
            return [f.result().strip() for f in futures]

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        import httpx

        config = config or GenerationConfig()
        body = self._sampling(config)
        body["messages"] = self._messages(messages)
        body["stream"] = True
        url = self._url("chat/completions")

        def attempt(t: float | None):
            try:
                request = self._client.build_request("POST", url, json=body, timeout=t or self.timeout_s)
                response = self._client.send(request, stream=True)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                raise _Retryable(type(exc).__name__) from None
            if response.status_code >= 400:
                response.read()
                response.close()
                self._check_status(response)
            return response

        response = self._retry_loop(attempt, "POST /chat/completions (stream)", config.timeout_s)
        try:
            ctype = response.headers.get("content-type", "")
            if "text/event-stream" not in ctype:
                response.read()
                try:  # a server that ignores stream=true and answers with one JSON document
                    data = response.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise BackendError(
                        f"{self.base_url}/chat/completions sent {ctype or 'no content-type'} instead of an event "
                        "stream: is base_url an OpenAI-compatible API?"
                    ) from None
                text = _choice_text(data, chat=True, where=self.base_url)
                if text:
                    yield text
                return
            yield from _sse_deltas(response, self.base_url)
        except httpx.TransportError as exc:
            raise BackendError(
                f"stream from {self.base_url} broke off ({type(exc).__name__}): the server closed the connection"
            ) from None
        finally:
            response.close()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "base_url": self.base_url, "model": self.model, "mode": self.mode}

    def close(self) -> None:
        self._closed.set()
        self._client.close()


# ------------------------------------------------------------------------------------------------ parsing


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_detail(response: Any) -> str:
    try:
        data = response.json()
    except Exception:
        return ""
    err = data.get("error") if isinstance(data, dict) else None
    msg = err.get("message") if isinstance(err, dict) else (err if isinstance(err, str) else data.get("detail"))
    return str(msg)[:200] if msg else ""


def _choice_text(data: dict[str, Any], *, chat: bool, where: str) -> str:
    if "error" in data and "choices" not in data:
        detail = data["error"].get("message") if isinstance(data["error"], dict) else data["error"]
        raise BackendError(f"{where} returned an error: {str(detail)[:200]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BackendError(f"{where} returned a response without choices: not an OpenAI-compatible answer")
    first = choices[0]
    if chat:
        message = first.get("message")
        text = message.get("content") if isinstance(message, dict) else None
        if text is None and isinstance(first.get("text"), str):
            text = first["text"]
    else:
        text = first.get("text")
        if text is None and isinstance(first.get("message"), dict):
            text = first["message"].get("content")
    if text is None:
        return ""  # e.g. a refusal or tool call with no text
    if not isinstance(text, str):
        raise BackendError(f"{where} returned a non-text completion: not an OpenAI-compatible answer")
    return text


def _sse_deltas(response: Any, where: str) -> Iterator[str]:
    """Text deltas from an OpenAI server-sent-event stream (`data: {...}` lines, `data: [DONE]`).

    A stream that ends with neither `[DONE]` nor a `finish_reason` was cut off (the connection closed
    mid-reply): that is an error, not a short reply, so the caller can fall back instead of showing half a
    sentence."""
    data_lines: list[str] = []
    finished = [False]
    for line in response.iter_lines():
        if line.startswith(":"):
            continue  # comment / keep-alive
        if line.startswith("data:"):
            data_lines.append(line[5:].lstrip(" "))
            continue
        if line.strip() or not data_lines:
            continue  # other fields (event:, id:, retry:) carry nothing we need
        payload, data_lines = "\n".join(data_lines), []
        if payload.strip() == "[DONE]":
            return
        yield from _event_text(payload, where, finished)
    if data_lines:  # a last event without its blank line
        payload = "\n".join(data_lines)
        if payload.strip() == "[DONE]":
            return
        yield from _event_text(payload, where, finished)
    if not finished[0]:
        raise BackendError(f"stream from {where} ended without [DONE] or a finish_reason: the connection was cut "
                           "mid-reply")


def _event_text(payload: str, where: str, finished: list[bool] | None = None) -> Iterator[str]:
    try:
        event = json.loads(payload)
    except json.JSONDecodeError:
        raise BackendError(f"{where} sent a stream event that is not JSON: not an OpenAI-compatible stream") from None
    if not isinstance(event, dict):
        raise BackendError(f"{where} sent a stream event that is not an object")
    if "error" in event:
        detail = event["error"].get("message") if isinstance(event["error"], dict) else event["error"]
        raise BackendError(f"{where} reported an error mid-stream: {str(detail)[:200]}")
    for choice in event.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        if choice.get("finish_reason") and finished is not None:
            finished[0] = True
        delta = choice.get("delta") or {}
        text = delta.get("content") if isinstance(delta, dict) else None
        if text is None:
            text = choice.get("text")
        if isinstance(text, str) and text:
            yield text


__all__ = ["OpenAIBackend", "normalise_base_url"]
