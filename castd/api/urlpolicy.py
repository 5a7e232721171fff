"""Which URLs castd agrees to open in its browser: http(s) only, unambiguous, and on the allowlist."""

from __future__ import annotations

from castd.api.errors import ApiError
from castd.urls import Allowlist, UrlRejected, parse_target


def check_url(url: str, allowlist: Allowlist | None = None) -> str:
    """Return the URL if Chromium may open it; otherwise a 400 that says why, or 403 off the allowlist."""
    try:
        target = parse_target(url)
    except UrlRejected as exc:
        raise ApiError(400, str(exc)) from None
    if allowlist is not None and not allowlist.allows(target):
        raise ApiError(403, "url: not on castd's allowlist (allowlist in config)")
    return url
