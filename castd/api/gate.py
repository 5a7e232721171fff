"""The front door: every HTTP request passes here before routing.

In order: browser-forged requests (cross-site; without a token also DNS rebinding and requests relayed
by a proxy or tunnel) are refused with 403, then the token
is checked where one is configured (401), so a caller without the token learns nothing about
validation, state or the allowlist. A token in the body (a JSON field whatever the Content-Type, or a
form field) means reading the body here (with the same size limit as everywhere) and handing it on
unchanged to the endpoint.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from castd.api import auth, crosssite
from castd.api.errors import ApiError, body_too_large, check_declared_length, error_response, log_refusal
from castd.config import Config

AUTHENTICATED = "castd.authenticated"  # scope key: did this request carry the token (True when none is set)
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def is_authenticated(scope: Scope) -> bool:
    return bool(scope.get(AUTHENTICATED, False))


class Gate:
    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app = app
        self.check = auth.TokenCheck(config.token)
        self.max_body = config.max_body_bytes
        self.own_names = {name.lower() for name in (config.host, config.stream_host.rsplit(":", 1)[0]) if name}
        self.failures = auth.FailureLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        level = auth.access_level(scope["path"])
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if level != auth.OPEN:
            problem = crosssite.cross_site_problem(scope["method"], headers, scope["path"])
            if problem is None and not self.check.enabled:
                problem = crosssite.tokenless_problem(headers, self.own_names)
            if problem:
                log_refusal(scope["method"], scope["path"], _client(scope), 403, problem)
                await error_response(403, problem)(scope, receive, send)
                return
        authenticated = not self.check.enabled
        if not authenticated and level != auth.OPEN:
            authenticated = (self.check.matches(auth.header_token(scope["headers"]))
                             or self.check.matches(auth.query_token(scope.get("query_string", b""))))
            if not authenticated and level == auth.PROTECTED and scope["method"] in BODY_METHODS:
                try:
                    body = await _read_limited(receive, headers, self.max_body)
                except ApiError as exc:
                    log_refusal(scope["method"], scope["path"], _client(scope), exc.status, exc.message)
                    await error_response(exc.status, exc.message)(scope, receive, send)
                    return
                authenticated = self.check.matches(auth.body_token(body, headers.get("content-type", "")))
                receive = _replay(body, receive)
            if not authenticated and level == auth.PROTECTED:
                self.failures.note(_client(scope), scope["path"], scope["method"])
                await error_response(401, auth.UNAUTHORIZED_MESSAGE, auth.UNAUTHORIZED_HEADERS)(
                    scope, receive, send)
                return
        scope[AUTHENTICATED] = authenticated
        await self.app(scope, receive, send)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "?"


async def _read_limited(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    check_declared_length(headers.get("content-length"), limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands the endpoint the body already read, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
