"""The mentalens server: OpenAI-compatible chat, analysis, risk, sessions, and the web app, in one process.

    app = create_app(ServerConfig())          # uvicorn.run(app, host=..., port=...)

Routes (all JSON errors in OpenAI's shape, see server.errors):
    POST /v1/chat/completions   OpenAI chat (stream: SSE chat.completion.chunk ... data: [DONE]) + `mentalens`
    GET  /v1/models             the served model ids
    POST /v1/analyze            analyzer JSON for a text or messages
    POST /v1/risk               safety assessment (+ escalation text) for a text or messages
    POST /v1/sessions           new session; GET/DELETE /v1/sessions/{id}; GET .../export, .../timeline
    GET  /healthz               liveness, readiness and what the web app needs to know
    GET  /, /analyze            the web app (server/static, no build step)
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from mentalens.server import errors
from mentalens.server.config import ServerConfig
from mentalens.server.errors import APIError
from mentalens.server.middleware import AccessLog, BodyLimit, check_api_key
from mentalens.server.schemas import (
    AnalyzeOut,
    AnalyzeRequest,
    ChatCompletion,
    ChatCompletionRequest,
    ErrorResponse,
    Health,
    ModelList,
    RiskRequest,
    RiskResponse,
    SessionCreate,
    SessionDeleted,
    SessionOut,
    Timeline,
)
from mentalens.server.state import AppState

STATIC = Path(__file__).parent / "static"

_ERROR_TEXT = {
    400: "Malformed JSON or request (persistence off for a persisted session)",
    401: "Missing or wrong API key (when the server has keys)",
    404: "Unknown model or session (another key's session is unknown too)",
    409: "A reply is still being written in this session",
    413: "Request body too large",
    422: "Invalid request: what is wrong is named in the message",
    503: "Every generation slot stayed busy for the queue timeout: retry after Retry-After seconds",
}


def _documented(ok: Any, *codes: int, extra: dict[str, Any] | None = None) -> dict[Any, Any]:
    """OpenAPI responses: the 200 body and every error the route can answer (all in OpenAI's error shape)."""
    out: dict[Any, Any] = {200: {"model": ok, **(extra or {})}}
    for code in (400, 401, 404, 413, 422, *codes):
        out[code] = {"model": ErrorResponse, "description": _ERROR_TEXT[code]}
    return out


_SSE = {"content": {"text/event-stream": {"schema": {"type": "string", "description": (
    "stream=true: `data: {chat.completion.chunk}` events, the last chunk carrying `mentalens`, then "
    "`data: [DONE]`")}}}}


def create_app(config: ServerConfig | None = None, engine: Any = None, analyzer: Any = None) -> FastAPI:
    """The FastAPI app for a config (engine/analyzer may be given, e.g. shared across apps or in tests)."""
    from mentalens import __version__

    config = config or ServerConfig()
    state = AppState(config, engine=engine, analyzer=analyzer)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if config.preload:
            await run_in_threadpool(state.load)
        yield
        state.close()

    app = FastAPI(
        title="mentalens",
        version=__version__,
        description=(
            "Analysis-aware counselling chat (OpenAI-compatible), mental-health text analysis and risk "
            "assessment. mentalens is an AI: it does not diagnose and is not a therapist."
        ),
        lifespan=lifespan,
    )
    app.state.mentalens = state
    errors.install(app)

    if config.api_keys:  # documented in the OpenAPI schema (a Bearer scheme) only when keys are on
        from fastapi import Security
        from fastapi.security import HTTPBearer

        bearer = HTTPBearer(auto_error=False, description="An API key given to `mentalens serve --api-key`")

        def owner(request: Request, _: Any = Security(bearer)) -> str:
            return check_api_key(request.headers.get("authorization"), config.api_keys)
    else:

        def owner(request: Request) -> str:
            return check_api_key(request.headers.get("authorization"), config.api_keys)

    # -- chat ---------------------------------------------------------------------------------------------------
    @app.get("/v1/models", tags=["chat"], response_model=None, responses=_documented(ModelList))
    def list_models(_: str = Depends(owner)) -> dict[str, Any]:
        created = int(state.started)
        try:
            info = state.engine.backend.describe() if state.ready else {"backend": config.backend}
        except Exception:
            info = {"backend": config.backend}
        return {"object": "list", "data": [
            {"id": mid, "object": "model", "created": created, "owned_by": "mentalens", "mentalens": info}
            for mid in state.model_ids()
        ]}

    @app.post("/v1/chat/completions", tags=["chat"], response_model=None,
              responses=_documented(ChatCompletion, 409, 503, extra=_SSE))
    async def chat_completions(body: ChatCompletionRequest, who: str = Depends(owner)) -> Any:
        if body.model not in state.model_ids():
            raise APIError(404, f"unknown model {body.model!r}: use one of {', '.join(state.model_ids())} "
                           "(GET /v1/models)", "model_not_found", "model")
        session, message, stored = await run_in_threadpool(_session_for, state, body, who)
        generation = _generation(body, config)
        permit = await state.acquire_async(session.id if stored else None)
        if permit is None:
            raise APIError(503, await run_in_threadpool(_busy_message, state, session, message), "server_busy",
                           headers={"Retry-After": "5"})
        engine = state.engine
        completion_id = "chatcmpl-" + secrets.token_hex(12)
        created = int(time.time())
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            stream = _sse(state, engine, session, stored, message, generation, body.model, completion_id, created,
                          include_usage, permit)
            return StreamingResponse(stream, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            end = await run_in_threadpool(engine.reply, session, message, generation)
            if stored:
                await run_in_threadpool(state.store.append_turn, session, end.turn)
        finally:
            permit.release()
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": end.reply},
                         "finish_reason": end.finish_reason, "logprobs": None}],
            "usage": _usage(end),
            "mentalens": {**end.mentalens(), "session_id": session.id if stored else None},
        }

    # -- analysis -----------------------------------------------------------------------------------------------
    @app.post("/v1/analyze", tags=["analysis"], response_model=None, responses=_documented(AnalyzeOut))
    def analyze(body: AnalyzeRequest, _: str = Depends(owner)) -> dict[str, Any]:
        from mentalens import safety

        text = _checked_text(body.joined(), config)
        result = state.analyzer.analyze(text, evidence=body.evidence)
        out = result.to_dict()
        # the full safety layer (semantic layer included), not the analyzer's bulk rules + classifier reading
        out["risk"] = safety.assess(text, locale=body.locale or config.locale).to_dict()
        out["risk_level"] = out["risk"]["level"]
        out["not_a_diagnosis"] = getattr(safety, "NOT_A_DIAGNOSIS", "")
        return out

    @app.post("/v1/risk", tags=["analysis"], response_model=None, responses=_documented(RiskResponse))
    def risk(body: RiskRequest, _: str = Depends(owner)) -> dict[str, Any]:
        from mentalens import safety

        locale = body.locale or config.locale
        if body.messages:
            for m in body.messages:
                _checked_text(m.text() or " ", config)
            subject: Any = [{"role": m.role, "content": m.text()} for m in body.messages
                            if m.role in ("user", "assistant")]
            if not any(m["role"] == "user" and m["content"].strip() for m in subject):
                raise APIError(422, "messages has no user message with text", "invalid_request", "messages")
        else:
            subject = _checked_text(body.text or "", config)
        assessment = safety.assess(subject, locale=locale)
        out = assessment.to_dict()
        out["escalation_text"] = safety.escalation_text(assessment, locale) if assessment.requires_escalation else None
        return out

    # -- sessions -----------------------------------------------------------------------------------------------
    @app.post("/v1/sessions", tags=["sessions"], status_code=201, response_model=None,
              responses={201: {"model": SessionOut}, **{k: v for k, v in _documented(SessionOut).items() if k != 200}})
    def create_session(body: SessionCreate | None = None, who: str = Depends(owner)) -> dict[str, Any]:
        from mentalens.counsel.session import ChatSession

        body = body or SessionCreate()
        if body.persist and not config.persistent:
            raise APIError(400, "persistence is off on this server: create the session without persist, or start "
                           "the server with --persist sqlite:PATH", "persistence_off", "persist")
        session = ChatSession(locale=body.locale or config.locale, owner=who, persist=body.persist)
        state.store.create(session)
        return session.to_dict()

    def _owned(session_id: str, who: str):
        session = state.store.get(session_id)
        if session is None or session.owner != who:  # another key's session is as unknown as a missing one
            raise APIError(404, f"unknown session {session_id!r}: create one with POST /v1/sessions",
                           "session_not_found", "session_id")
        return session

    @app.get("/v1/sessions/{session_id}", tags=["sessions"], response_model=None, responses=_documented(SessionOut))
    def get_session(session_id: str, who: str = Depends(owner)) -> dict[str, Any]:
        return _owned(session_id, who).to_dict()

    @app.get("/v1/sessions/{session_id}/timeline", tags=["sessions"], response_model=None,
             responses=_documented(Timeline))
    def get_timeline(session_id: str, who: str = Depends(owner)) -> dict[str, Any]:
        return _owned(session_id, who).timeline()

    @app.get("/v1/sessions/{session_id}/export", tags=["sessions"], response_model=None,
             responses=_documented(SessionOut))
    def export_session(session_id: str, who: str = Depends(owner)) -> JSONResponse:
        session = _owned(session_id, who)
        return JSONResponse(session.to_dict(), headers={
            "Content-Disposition": f'attachment; filename="mentalens-{session.id}.json"'})

    @app.delete("/v1/sessions/{session_id}", tags=["sessions"], response_model=None,
                responses=_documented(SessionDeleted))
    def delete_session(session_id: str, who: str = Depends(owner)) -> dict[str, Any]:
        _owned(session_id, who)
        state.store.delete(session_id)
        return {"id": session_id, "object": "mentalens.session.deleted", "deleted": True}

    # -- health and web app -------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"], response_model=None, responses={200: {"model": Health}})
    async def healthz() -> dict[str, Any]:
        """On the event loop itself (no worker thread): it answers however busy the thread pool is."""
        from mentalens import safety

        return {
            "status": "ok",
            "ready": state.ready,
            "version": __version__,
            "backend": config.backend,
            "models": state.model_ids(),
            "auth_required": bool(config.api_keys),
            "persistence": config.persistent,
            "max_message_chars": config.max_message_chars,
            "disclosure": getattr(safety, "AI_DISCLOSURE", ""),
            "not_a_diagnosis": getattr(safety, "NOT_A_DIAGNOSIS", ""),
            "uptime_s": round(time.time() - state.started, 1),
            "stats": state.stats(),
        }

    if config.web:
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(STATIC / "index.html", media_type="text/html")

        @app.get("/favicon.ico", include_in_schema=False)
        def favicon() -> FileResponse:
            return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

        @app.get("/analyze", include_in_schema=False)
        def analyze_page() -> FileResponse:
            return FileResponse(STATIC / "analyze.html", media_type="text/html")

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], allow_credentials=False)
    app.add_middleware(BodyLimit, max_bytes=config.max_request_bytes)
    app.add_middleware(AccessLog)
    return app


# -- helpers ---------------------------------------------------------------------------------------------------
def _checked_text(text: str, config: ServerConfig) -> str:
    if not text or not text.strip():
        raise APIError(422, "the text is empty: send the text to analyse", "empty_text", "text")
    if len(text) > config.max_message_chars:
        raise APIError(422, f"the text is {len(text):,} characters long; the limit is {config.max_message_chars:,}",
                       "text_too_long", "text")
    return text


BUSY = "the server is busy with other replies: retry in a few seconds"


def _busy_message(state: AppState, session: Any, message: str) -> str:
    """The 503 text when no generation slot frees up in time. A message that shows risk gets the crisis
    resources first: under load the person gets no reply, but never a refusal without resources (the web app
    shows this text). Found by bench/load.py: crisis messages were shed with a bare "server busy"."""
    from mentalens import safety
    from mentalens.counsel.engine import assessment_window

    try:
        locale = session.locale or state.engine.config.locale
        conversation = [*session.messages, {"role": "user", "content": message}]
        assessment = safety.assess(assessment_window(conversation), locale=locale)
        if not assessment.requires_escalation:
            return BUSY
        return safety.escalation_text(assessment, locale).strip() + f"\n\n({BUSY}.)"
    except Exception as exc:  # a 503 all the same; the failure is logged (type only: no user text)
        errors.log.error("busy risk check failed: %s", type(exc).__name__)
        return BUSY


def _session_for(state: AppState, body: ChatCompletionRequest, who: str):
    """The session this request continues (server-side id) or an ephemeral one built from its messages."""
    from mentalens.counsel.session import ChatSession, Turn

    config = state.config
    msgs = [(m.role, m.text()) for m in body.messages]
    if len(msgs) > config.max_messages:
        raise APIError(422, f"{len(msgs)} messages; the limit is {config.max_messages}: send fewer (or use a "
                       "session)", "too_many_messages", "messages")
    for _, text in msgs:
        if len(text) > config.max_message_chars:
            raise APIError(422, f"a message is {len(text):,} characters long; the limit is "
                           f"{config.max_message_chars:,}: shorten it", "message_too_long", "messages")
    if msgs[-1][0] != "user":
        raise APIError(422, "the last message must be from the user (role 'user')", "invalid_messages", "messages")
    message = msgs[-1][1]
    if not message.strip():
        raise APIError(422, "the last user message is empty: send some text", "empty_message", "messages")
    if body.session_id:
        session = state.store.get(body.session_id)
        if session is None or session.owner != who:
            raise APIError(404, f"unknown session {body.session_id!r}: create one with POST /v1/sessions",
                           "session_not_found", "session_id")
        return session, message, True
    # stateless: the client's history (system messages are not passed on: the counsellor role is fixed)
    session = ChatSession(locale=body.locale or config.locale, owner=who)
    pending_user: str | None = None
    for role, text in msgs[:-1]:
        if role == "user":
            pending_user = text if pending_user is None else pending_user + "\n" + text
        elif role == "assistant" and pending_user is not None:
            session.turns.append(Turn(index=len(session.turns), user=pending_user, reply=text, created=time.time()))
            pending_user = None
    if pending_user is not None:
        message = pending_user + "\n" + message
        if len(message) > config.max_message_chars:
            raise APIError(422, f"the trailing user messages are {len(message):,} characters together; the limit is "
                           f"{config.max_message_chars:,}", "message_too_long", "messages")
    return session, message, False


def _generation(body: ChatCompletionRequest, config: ServerConfig):
    from mentalens.backend import GenerationConfig

    stop = body.stop if isinstance(body.stop, list) else ([body.stop] if body.stop else [])
    return GenerationConfig(
        max_new_tokens=body.max_completion_tokens or body.max_tokens or config.default_max_tokens,
        temperature=body.temperature if body.temperature is not None else 0.7,
        top_p=body.top_p if body.top_p is not None else 1.0,
        seed=body.seed,
        stop=tuple(s for s in stop if s),
        timeout_s=config.total_timeout_s,
    )


def _usage(end: Any) -> dict[str, int]:
    return {"prompt_tokens": end.prompt_tokens, "completion_tokens": end.completion_tokens,
            "total_tokens": end.prompt_tokens + end.completion_tokens}


def _chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None,
           **extra: Any) -> str:
    data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _sse(state: AppState, engine: Any, session: Any, stored: bool, message: str, generation: Any, model: str,
         cid: str, created: int, include_usage: bool, permit: Any) -> Iterator[str]:
    """Server-sent events: a role chunk, content deltas, a final chunk with `mentalens`, then [DONE]."""
    from mentalens.counsel.engine import TurnEnd

    try:
        yield _chunk(cid, created, model, {"role": "assistant", "content": ""})
        for event in engine.turn(session, message, generation):
            if isinstance(event, TurnEnd):
                if stored:  # committed before the final chunk and [DONE] acknowledge the reply
                    state.store.append_turn(session, event.turn)
                extra = {"mentalens": {**event.mentalens(), "session_id": session.id if stored else None}}
                yield _chunk(cid, created, model, {}, event.finish_reason, **extra)
                if include_usage:
                    data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                            "choices": [], "usage": _usage(event)}
                    yield f"data: {json.dumps(data)}\n\n"
            else:
                yield _chunk(cid, created, model, {"content": event.text})
    except Exception as exc:  # after the headers: report in-band, never a broken stream
        errors.log.error("stream failed: %s", type(exc).__name__)
        body = errors.error_body(500, "the reply failed part-way: please retry", "stream_failed")
        yield f"data: {json.dumps(body)}\n\n"
    finally:
        permit.release()
    yield "data: [DONE]\n\n"
