"""Which URLs castd agrees to open in its browser."""

from __future__ import annotations

from urllib.parse import urlsplit

from castd.api.errors import ApiError

ALLOWED_SCHEMES = ("http", "https")


def check_url(url: str) -> str:
    """Return the URL if Chromium may open it; otherwise raise a 400 that says why."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise ApiError(400, "url: must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ApiError(400, f"url: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"'{scheme}:'" if scheme else "no scheme"
        raise ApiError(400, f"url: only http and https URLs can be cast ({shown} is not allowed)")
    if not parts.hostname:
        raise ApiError(400, "url: has no host name")
    if parts.username or parts.password:
        raise ApiError(400, "url: credentials in the URL are not accepted; put them in the site config")
    return url
