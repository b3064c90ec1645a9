"""Every error the API returns: OpenAI's shape, one clear line, the right 4xx, never a stack trace.

    {"error": {"message": "...", "type": "invalid_request_error", "param": "messages", "code": "..."}}
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mentalens.errors import ConfigError, DataError, MentalensError, UnknownNameError

log = logging.getLogger("mentalens.server")

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_busy",
}


class APIError(Exception):
    """An error with a status and a one-line message for the client."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.headers = status, message, code, param, headers


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": TYPES.get(status, "invalid_request_error"), "param": param,
                      "code": code}}


def error_response(status: int, message: str, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, param), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str | None]:
    errors = exc.errors()
    if not errors:
        return 422, "the request body is invalid", None
    first = errors[0]
    kind = first.get("type", "")
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return 400, f"malformed JSON in the request body{': ' + str(detail) if detail else ''}: send valid JSON", None
    loc = [str(p) if str(p).isprintable() else repr(str(p)) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc)[:120] or None
    msg = " ".join(str(first.get("msg", "invalid value")).split())
    msg = msg.removeprefix("Value error, ")
    if kind == "missing":
        return 422, f"'{param}' is required", param
    if kind in ("model_attributes_type", "dict_type") and not loc:
        return 400, "the request body must be a JSON object", None
    extra = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return 422, f"{param + ': ' if param else ''}{msg}{extra}", param


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a clear JSON error."""

    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.param, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, param = _validation_message(exc)
        return error_response(status, message, "invalid_json" if status == 400 else "invalid_request", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs for the API)"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(UnknownNameError)
    async def _unknown(request: Request, exc: UnknownNameError) -> JSONResponse:
        return error_response(404, str(exc), "unknown_name")

    @app.exception_handler(MentalensError)
    async def _mentalens(request: Request, exc: MentalensError) -> JSONResponse:
        status = 400 if isinstance(exc, DataError | ConfigError) else 422
        return error_response(status, str(exc), "invalid_request")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # type and code location only: an exception's message may contain user text
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        loc = f"{where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno}" if where else "?"
        from mentalens.server.middleware import route_of

        log.error("internal error %s at %s on %s %s", type(exc).__name__, loc, request.method, route_of(request.scope))
        return error_response(500, "internal error: the server logged it; please retry or report it",
                              "internal_error")
