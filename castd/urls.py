"""URL rules shared by the API (which URLs /start accepts) and the browser guard (where Chromium may go).

Both sides must agree on what a URL *is*, or an allowlist can be dodged by writing the same place
differently. So every URL is reduced to one canonical string the way Chromium itself would write it
(lower-case scheme and host, IDNA host, no default port, no dot segments), and anything Chromium
could read differently from Python (numeric IPv4 shorthands, look-alike characters, backslashes,
credentials) is refused outright instead of guessed at.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import idna

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 4096
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
# printable ASCII that may stay as it is in a canonical path or query (Chromium escapes the rest)
_KEEP = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>`{}|\\^ ')
# characters that mean something in a DNR urlFilter (the browser guard) and so not in allowlist entries
_FILTER_SPECIALS = set("*^|")


class UrlRejected(ValueError):
    """A URL castd will not open; the message says why, for a 400 answer or a config error."""


@dataclass(frozen=True)
class Target:
    """A URL reduced to the canonical form Chromium would navigate to."""

    scheme: str
    host: str  # IDNA (punycode) and lower case; IPv6 without brackets
    port: int | None  # None when it is the scheme's default
    path: str  # starts with "/", dot segments removed
    query: str  # without the "?", empty when there is none

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + (f":{self.port}" if self.port is not None else "")

    @property
    def canonical(self) -> str:
        return self.origin + self.path + (f"?{self.query}" if self.query else "")


def _check_host(raw: str) -> str:
    """The host as Chromium will use it, or UrlRejected for anything ambiguous or malformed."""
    if raw.startswith("[") or ":" in raw:
        try:
            return str(ipaddress.IPv6Address(raw.strip("[]")))
        except ValueError:
            raise UrlRejected("url: not a valid IPv6 address") from None
    for ch in raw:
        if ord(ch) > 0x7F:
            if unicodedata.normalize("NFKC", ch) != ch:
                raise UrlRejected("url: host name uses look-alike (full-width or compatibility) characters")
            if not ch.isalnum():
                raise UrlRejected("url: host name contains a character that is not a letter or digit")
        elif not (ch.isalnum() or ch in "-._"):
            raise UrlRejected(f"url: host name contains {ch!r}")
    try:
        host = idna.encode(raw, uts46=True).decode("ascii") if not raw.isascii() else raw.lower()
    except idna.IDNAError as exc:
        raise UrlRejected(f"url: not a valid international host name ({exc})") from None
    labels = host.split(".")
    if host.endswith("."):
        labels = labels[:-1]
    if not labels or len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UrlRejected("url: not a valid host name")
    for label in labels:
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError:
                raise UrlRejected("url: not a valid international host name") from None
    if _NUMERIC_LABEL.match(labels[-1]):
        # Chromium reads 2130706433, 0x7f.1 and 127.1 as IPv4 addresses; Python would not.
        try:
            address = ipaddress.IPv4Address(host.rstrip("."))
        except ValueError:
            raise UrlRejected("url: numeric host that is not a dotted IPv4 address (like 192.168.1.20)") from None
        return str(address)
    return host


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, with %2e counted as a dot like Chromium does."""
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments[1:], 1):
        plain = segment.replace("%2e", ".").replace("%2E", ".")
        last = i == len(segments) - 1
        if plain == ".":
            if last:
                out.append("")
        elif plain == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


_HOST_FIRST = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d*)?(/|$)")  # host[:port][/...]


def parse_target(url: str) -> Target:
    """Check a URL for Chromium and reduce it to its canonical form; UrlRejected says why not."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRejected(f"url: longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or 0x7F <= ord(c) <= 0x9F for c in url):
        raise UrlRejected("url: must not contain spaces or control characters")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in url):
        raise UrlRejected("url: contains an unpaired UTF-16 surrogate")
    if "\\" in url:
        raise UrlRejected("url: must not contain backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRejected(f"url: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if "://" not in url and _HOST_FIRST.match(url):  # "homeassistant.local:8123/lovelace": a scheme forgotten
        raise UrlRejected("url: has no scheme; add http:// or https:// in front (e.g. http://"
                          f"{url.split('/', 1)[0]}/...)")
    if scheme not in ALLOWED_SCHEMES:
        shown = f"'{scheme}:'" if scheme else "no scheme"
        raise UrlRejected(f"url: only http and https URLs can be cast ({shown} is not allowed)")
    if "@" in parts.netloc:
        raise UrlRejected("url: credentials in the URL are not accepted; put them in the site config")
    raw_host = parts.netloc.rsplit(":", 1)[0] if port is not None or parts.netloc.endswith(":") else parts.netloc
    if not raw_host or raw_host == "[]":
        raise UrlRejected("url: has no host name")
    if port == 0:
        raise UrlRejected("url: port 0 is not a usable port")
    host = _check_host(raw_host)
    if port == DEFAULT_PORTS[scheme]:
        port = None
    path = _remove_dot_segments(quote(parts.path or "/", safe=_KEEP))
    return Target(scheme=scheme, host=host, port=port, path=path, query=quote(parts.query, safe=_KEEP))


@dataclass(frozen=True)
class Allowlist:
    """Origins (`https://ha.local:8123`) or URL prefixes (`https://grafana.local/d/abc/`) castd may open.

    An entry without a path is an origin: scheme, host and port must match exactly. An entry with a
    path is a prefix of the canonical URL (end it with "/" to mean a folder). Empty: anything goes.
    """

    prefixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: list[str] | tuple[str, ...]) -> "Allowlist":
        """Canonical prefixes for the entries; UrlRejected names the first bad one."""
        prefixes = []
        for entry in entries:
            if _FILTER_SPECIALS & set(entry) or "#" in entry:
                raise UrlRejected(f"allowlist: {entry!r} must not contain '*', '^', '|' or '#'")
            try:
                target = parse_target(entry)
            except UrlRejected as exc:
                raise UrlRejected(f"allowlist: {entry!r}: {str(exc).removeprefix('url: ')}") from None
            path = urlsplit(entry).path
            prefixes.append(target.origin + "/" if path in ("", "/") and not target.query else target.canonical)
        return cls(tuple(dict.fromkeys(prefixes)))

    def __bool__(self) -> bool:
        return bool(self.prefixes)

    def allows(self, target: Target) -> bool:
        if not self.prefixes:
            return True
        canonical = target.canonical
        return any(canonical.startswith(prefix) for prefix in self.prefixes)

    def allows_url(self, url: str) -> bool:
        """For URLs Chromium reports (already canonical): True when allowed, False when not or unparsable."""
        try:
            return self.allows(parse_target(url))
        except UrlRejected:
            return not self.prefixes
