"""The webhook token: which endpoints need it, where a request may carry it, and a constant-time check.

Senders differ: Home Assistant and curl can send `Authorization: Bearer ...`; IFTTT can only put it in
the body (`"token": ...` in JSON, `token=...` in a form) or the URL (`?token=...`, the only place a
one-URL sender's GET has). Any one of them is enough. A failure is the
same 401 whichever part was missing or wrong, and the token itself is never logged (it is registered
with castd.logs at start-up, so even a line that quotes a URL shows `***`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from urllib.parse import parse_qs

import msgspec

from castd.config import Config
from castd.logs import log

OPEN, PARTIAL, PROTECTED = "open", "partial", "protected"
# Default deny: every path not named here needs the token (so a new endpoint is protected from birth).
OPEN_PATHS = {"/health", "/openapi.json", "/demo", "/"}  # "/": the preview page's HTML (it asks for the token)
OPEN_PREFIXES = ("/stream/",)  # the session id in the path is the secret (128 random bits)
PARTIAL_PATHS = {"/status"}  # without the token: state and health only
UNAUTHORIZED_MESSAGE = ("authentication required: send castd's token as 'Authorization: Bearer <token>', "
                        "a \"token\" field in the body (JSON or form), or ?token=<token>")
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="castd"'}


def access_level(path: str) -> str:
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return OPEN
    return PARTIAL if path in PARTIAL_PATHS else PROTECTED


def _digest(value: str) -> bytes:
    # Hashing first makes the comparison constant-time in the candidate's length as well.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


class TokenCheck:
    def __init__(self, token: str) -> None:
        self._digest = _digest(token) if token else None

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def matches(self, candidate: str | None) -> bool:
        if self._digest is None or not candidate:
            return False
        return hmac.compare_digest(_digest(candidate), self._digest)


def header_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of exactly one `Authorization: Bearer` header, else None."""
    values = [v for k, v in headers if k == b"authorization"]
    if len(values) != 1:
        return None
    scheme, _, credentials = values[0].decode("latin-1").strip().partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def query_token(query_string: bytes) -> str | None:
    """The value of exactly one `token` query parameter, else None."""
    try:
        values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True,
                          max_num_fields=100).get("token", [])
    except ValueError:
        return None
    return values[0] if len(values) == 1 else None


class _BodyToken(msgspec.Struct):
    token: str | None = None


def body_token(body: bytes, content_type: str = "") -> str | None:
    """The `token` field of a form body, or of a JSON object body whatever its label (else None)."""
    if content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        try:
            values = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100).get("token", [])
        except (UnicodeError, ValueError):
            return None
        return values[0] if len(values) == 1 else None
    try:
        found = msgspec.json.decode(body, type=_BodyToken).token
    except (msgspec.DecodeError, RecursionError, UnicodeError):  # bad UTF-8 in a string: UnicodeDecodeError
        return None
    return found if isinstance(found, str) else None


CONTROL_PATHS = ("/start", "/stop", "/next", "/previous")


class FailureLog:
    """One line per interval for requests refused for want of the token, with a count, so a flood cannot
    flood the journal. A try at a control path without the token is a warning (someone wants to drive
    castd and cannot); any other 401 (a browser's own /favicon.ico, a status poll with an old token) is
    info, so `journalctl -p warning` does not show the user's own browser."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval, self.last, self.suppressed = interval, float("-inf"), 0

    def note(self, client: str, path: str, method: str = "") -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            self.suppressed += 1
            return
        level = "WARNING" if path in CONTROL_PATHS else "INFO"
        log.log(level, "request refused", method=method or None, path=path, status=401, client=client,
                reason="without a valid token", suppressed=self.suppressed or None)
        self.last, self.suppressed = now, 0


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen_refusal(config: Config) -> str | None:
    """Why castd must not start listening as configured: beyond loopback with no token, unless insecure."""
    if config.token or config.insecure or is_loopback_host(config.host):
        return None
    return (f"refusing to listen on {config.host or 'all addresses'} without a token: anyone who can reach it "
            "could control castd. Set token (config or CASTD_TOKEN), listen on 127.0.0.1, or pass --insecure")
