"""Requests a browser was tricked into sending: cross-site forms and fetches, and DNS rebinding.

Webhook senders (IFTTT, Home Assistant, curl) send no Origin header. A web page can still make a
browser POST to castd, including the page castd itself is showing, which runs next to castd's
loopback port. Browsers mark such requests with `Origin` / `Sec-Fetch-Site`; those are refused.
DNS rebinding (evil.example resolving to 127.0.0.1) passes that check, but the request then names
evil.example in its Host header: without a token, castd answers control requests only when it is
addressed by IP or as localhost (or by the names in its own config).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _hostname(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def cross_site_problem(method: str, headers: dict[str, str]) -> str | None:
    """Why a state-changing request looks browser-forged, or None."""
    if method in SAFE_METHODS:
        return None
    if headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
        return "cross-site requests are refused"
    origin = headers.get("origin")
    if origin is not None:
        try:
            origin_host = urlsplit(origin).netloc.lower()
        except ValueError:
            origin_host = ""
        if not origin_host or origin_host != headers.get("host", "").strip().lower():
            return "cross-site requests are refused"
    return None


def rebinding_problem(host_header: str, own_names: set[str]) -> str | None:
    """Why a request without a token configured must not be answered (unknown Host name), or None."""
    name = _hostname(host_header).rstrip(".")
    if name == "localhost" or _is_ip(name) or name in own_names:
        return None
    return ("castd has no token, so it answers control requests only when addressed by IP address or as "
            "localhost (DNS rebinding guard); set a token to use a host name")
