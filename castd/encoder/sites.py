"""Which [[sites]] entry applies to a URL, and the page settings after the /start overrides.

A prefix matches only its own origin (scheme, host and port compared exactly, the path as a string
prefix), so `http://ha.local` never hands its cookies to `http://ha.local.evil.example/`.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlsplit

import msgspec

from castd.config import Site
from castd.protocol import PageOverrides

DEFAULT_PORTS = {"http": 80, "https": 443}
NO_SITE = Site(prefix="")  # what a page that matches no [[sites]] entry gets
_SECRET_KEY = re.compile(r"(?i)(^|_)(token|secret|password|key)$")  # access_token, not token_type


def origin_of(url: str) -> str:
    """`scheme://host[:port]` as a browser writes `location.origin` (default ports left out)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS.get(scheme)) else f"{scheme}://{host}:{port}"


def _path(url: str) -> str:
    return urlsplit(url).path or "/"


def match_site(url: str, sites: list[Site]) -> Site | None:
    """The site whose prefix matches `url` (same origin, path prefix); the longest prefix wins."""
    origin, path = origin_of(url), _path(url)
    best: Site | None = None
    for site in sites:
        if origin_of(site.prefix) == origin and path.startswith(_path(site.prefix)):
            if best is None or len(_path(site.prefix)) > len(_path(best.prefix)):
                best = site
    return best


def settings_for(url: str, sites: list[Site], overrides: PageOverrides | None = None) -> Site:
    """The settings to show `url` with: its site (or the defaults) with the request's overrides on top."""
    site = match_site(url, sites) or NO_SITE
    if overrides is None:
        return site
    changes = {name: value for name in ("zoom", "reload_seconds", "ready_selector")
               if (value := getattr(overrides, name)) is not None}
    return msgspec.structs.replace(site, **changes) if changes else site


def auth_header(site: Site) -> str | None:
    """The Authorization header value for the site's basic_auth, if it has one."""
    if not site.basic_auth:
        return None
    return "Basic " + base64.b64encode(site.basic_auth.encode()).decode()


def site_secrets(sites: list[Site]) -> list[str]:
    """Every secret value in the sites (to register with the log scrubber), including the forms
    in which they travel: a basic-auth pair, its password, its header, and the strings inside a
    JSON localStorage value (Home Assistant's hassTokens holds the access token that way)."""
    found: list[str] = []
    for site in sites:
        found += site.cookies.values()
        found += site.headers.values()
        found += site.local_storage.values()
        for value in site.local_storage.values():
            found += _json_strings(value)
        if site.basic_auth:
            found += [site.basic_auth, site.basic_auth.split(":", 1)[1], auth_header(site) or ""]
            found.append((auth_header(site) or "").removeprefix("Basic "))
    return [value for value in found if value]


def _json_strings(text: str) -> list[str]:
    """String values of secret-looking keys in a JSON object (e.g. access_token, refresh_token)."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    return [value for key, value in data.items() if isinstance(value, str) and _SECRET_KEY.search(key)]
