"""ASGI middleware: request size limit, access log without user text, security headers, API keys.

Pure ASGI (not BaseHTTPMiddleware) so that streamed replies pass through untouched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any

from mentalens.server.errors import APIError, error_body

log = logging.getLogger("mentalens.server")

_ID_IN_PATH = re.compile(r"/sess_[A-Za-z0-9_-]+")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """413 for bodies over max_bytes: by Content-Length up front, or while the body streams in."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        message = (f"request body too large: the limit is {limit:,} bytes; shorten the message (or the history "
                   "sent with it), or raise --max-request-bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    return await _send_json(send, 400, error_body(400, "invalid Content-Length header"))
                if too_big:
                    return await _send_json(send, 413, error_body(413, message, "request_too_large"))
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise APIError(413, message, "request_too_large")
            return msg

        await self.app(scope, limited_receive, send)


class AccessLog:
    """One line per request: method, route, status, latency. Never bodies, queries or headers."""

    def __init__(self, app: Any, security_headers: bool = True):
        self.app, self.security_headers = app, security_headers

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 0}

        async def send_wrapper(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
                if self.security_headers:
                    headers = list(msg.get("headers", []))
                    present = {k.lower() for k, _ in headers}
                    headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                    msg = {**msg, "headers": headers}
            await send(msg)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = route_of(scope)
            log.info("%s %s %s %.0fms", scope.get("method", "?"), path, status["code"] or "-",
                     (time.perf_counter() - start) * 1000)


def route_of(scope: dict) -> str:
    """The route template a request matched ("/v1/sessions/{session_id}"), never the raw path: a path is
    written by the client and may carry its text (GET /v1/sessions/<anything>). Unmatched paths are not named."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return "<unmatched path>"
    if template in ("", "/") and route.__class__.__name__ == "Mount":
        return "<mount>"
    return _ID_IN_PATH.sub("/{id}", template) + ("/..." if route.__class__.__name__ == "Mount" else "")


def key_owner(key: str) -> str:
    """What a session records about its creator: a hash of the key, never the key."""
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def check_api_key(authorization: str | None, keys: list[str]) -> str:
    """The owner id for this request; APIError(401) for a missing or wrong key when keys are configured."""
    if not keys:
        return "local"
    if not authorization:
        raise APIError(401, "missing API key: send the header 'Authorization: Bearer <key>'", "missing_api_key",
                       headers={"WWW-Authenticate": "Bearer"})
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise APIError(401, "malformed Authorization header: use 'Authorization: Bearer <key>'", "invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})
    for k in keys:
        if hmac.compare_digest(token.encode(), k.encode()):
            return key_owner(k)
    raise APIError(401, "invalid API key: check the key you were given", "invalid_api_key",
                   headers={"WWW-Authenticate": "Bearer"})
