"""A small JSON-over-HTTP client for castd's own API (stdlib only: the CLI must start fast).

It talks to the address in the config (a wildcard listen address means this machine) and sends
the configured token as `Authorization: Bearer ...`. Every failure becomes a ClientError with a
sentence a person can act on.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import msgspec

from castd.api.schemas import PublicStatus, StatusResponse
from castd.config import Config

WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


class ClientError(Exception):
    """The request did not work; `status` is the HTTP status, or None when castd was unreachable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def base_url(config: Config) -> str:
    host = config.host.strip()
    if host in WILDCARDS:
        host = "::1" if host in ("::", "[::]") else "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.port}"


class Client:
    def __init__(self, base: str, token: str = "", timeout: float = 10.0) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: Config) -> "Client":
        return cls(base_url(config), config.token)

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def status(self) -> StatusResponse | PublicStatus:
        """/status decoded with the types the API encodes it with (castd/api/schemas.py): the full one
        with the token (or when castd has none), else the public one."""
        return decode_status(self.get("/status"))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _decode(response.read(), response.status)
        except urllib.error.HTTPError as exc:
            payload = _decode(exc.read(), exc.code, strict=False)
            message = payload.get("error") if isinstance(payload, dict) else None
            if exc.code == 401 and not self.token:
                message = (message or "unauthorized") + "; castd wants a token: set `token` in the config " \
                          "or CASTD_TOKEN"
            raise ClientError(message or f"HTTP {exc.code} {exc.reason}", exc.code) from None
        except urllib.error.URLError as exc:
            reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
            raise ClientError(f"cannot reach castd at {self.base} ({reason}); is it running? "
                              "(`castd serve`, or `systemctl status castd`)") from None
        except (TimeoutError, OSError) as exc:
            raise ClientError(f"castd at {self.base} did not answer ({exc})") from None


def decode_status(raw: Any) -> StatusResponse | PublicStatus:
    try:
        if isinstance(raw, dict) and "session" not in raw and "auth_required" in raw:
            return msgspec.convert(raw, PublicStatus)
        return msgspec.convert(raw, StatusResponse)
    except msgspec.ValidationError as exc:
        raise ClientError(f"castd's /status does not match this client's version ({exc})") from None


def _decode(raw: bytes, status: int, strict: bool = True) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        if strict:
            raise ClientError(f"castd answered HTTP {status} with something that is not JSON", status) from None
        return {}
