"""JSON errors a person understands, and the request-body reader that enforces size limits
(castd/api/bodies.py turns the body into fields).

Every refused request is logged here, once, at info, with its reason (`request refused method=POST
path=/start status=400 reason=...`): a refusal is castd working as meant, so it is no warning, and
`journalctl -p warning` keeps showing only castd's own problems. (401s are counted in auth.FailureLog;
the gate's own refusals call log_refusal too.)
"""

from __future__ import annotations

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from castd.logs import log

MAX_BODY = 64 * 1024  # the default; config max_body_bytes may lower it


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
        self.context: dict[str, object] = {}  # what the log line of the refusal names (url, dashboard...)


def json_response(data, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(data), status_code=status, media_type="application/json",
                    headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message, "status": status}, status, headers)


def log_refusal(method: str, path: str, client: str, status: int, reason: str, **context: object) -> None:
    log.info("request refused", method=method, path=path, status=status, client=client, reason=reason, **context)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    log_refusal(request.method, request.url.path, _client(request), exc.status, exc.message, **exc.context)
    return error_response(exc.status, exc.message, exc.headers)


_HTTP_MESSAGES = {404: "no such endpoint", 405: "method not allowed for this endpoint"}


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = _HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
    log_refusal(request.method, request.url.path, _client(request), exc.status_code, message)
    return error_response(exc.status_code, message, getattr(exc, "headers", None))


async def on_server_error(request: Request, exc: Exception) -> Response:
    return error_response(500, "internal error; see the castd log")


def is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("", "application/json", "text/json") or kind.endswith("+json")


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body too large (limit {limit} bytes)")


def limits(request: Request) -> tuple[int, int]:
    config = getattr(request.app.state, "config", None)
    return (config.max_body_bytes, config.max_json_depth) if config is not None else (MAX_BODY, 8)


def check_declared_length(declared: str | None, limit: int) -> None:
    """Refuse a body by its Content-Length before reading any of it."""
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "invalid Content-Length header")
        if int(declared) > limit:
            raise body_too_large(limit)


async def read_body(request: Request) -> bytes:
    """The raw body, at most max_body_bytes (413 beyond, checked before and while reading)."""
    limit = limits(request)[0]
    check_declared_length(request.headers.get("content-length"), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def describe_validation(text: str) -> str:
    if text.startswith("Object contains unknown field"):
        return text.replace("Object contains unknown field", "unknown field")
    if " - at `$." in text:
        message, _, where = text.rpartition(" - at `$.")
        return f"{where.rstrip('`')}: {message}"
    if text.startswith("Expected `object`"):
        return "body must be a JSON object"
    return text
