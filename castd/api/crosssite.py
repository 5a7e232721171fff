"""Requests a browser was tricked into sending: cross-site forms and fetches, and DNS rebinding.

Webhook senders (IFTTT, Home Assistant, curl) send no Origin header. A web page can still make a
browser POST to castd, including the page castd itself is showing, which runs next to castd's
loopback port. Browsers mark such requests with `Origin` / `Sec-Fetch-Site`; those are refused.
DNS rebinding (evil.example resolving to 127.0.0.1) passes that check, but the request then names
evil.example in its Host header: without a token, castd answers control requests only when it is
addressed by IP or as localhost (or by the names in its own config). Likewise a tunnel or reverse
proxy on the same machine (cloudflared, ngrok, nginx) makes the internet look like loopback; the
forwarding headers it adds give it away, and without a token such requests are refused too.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# GET here changes state (one-URL senders, token required): a browser sending it cross-site is refused
STATE_CHANGING_GETS = {"/start", "/stop", "/next", "/previous"}
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip", "cf-connecting-ip")


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


def cross_site_problem(method: str, headers: dict[str, str], path: str = "") -> str | None:
    """Why a state-changing request looks browser-forged, or None."""
    if method in SAFE_METHODS and path not in STATE_CHANGING_GETS:
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


def tokenless_problem(headers: dict[str, str], own_names: set[str]) -> str | None:
    """Why a control request must not be answered while castd has no token (rebinding, a proxy), or None."""
    if any(name in headers for name in PROXY_HEADERS):
        return ("castd has no token and this request came through a proxy or tunnel; set a token "
                "(config token or CASTD_TOKEN) before exposing castd")
    name = _hostname(headers.get("host", "")).rstrip(".")
    if name == "localhost" or _is_ip(name) or name in own_names:
        return None
    return ("castd has no token, so it answers control requests only when addressed by IP address or as "
            "localhost (DNS rebinding guard); set a token to use a host name")
