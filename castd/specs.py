"""Device specs: how a person names a Cast device in the config or in /start.

A spec is one of
- a UUID (`3a7c...` with or without dashes): found by mDNS;
- a host: an IP address, `[IPv6]`, or a DNS name with a dot, optionally `:port` (default 8009);
- anything else: a friendly name as the device announces it ("Living Room TV"), found by mDNS,
  compared without regard to case.
A list is a comma-separated string in the config (or a TOML array), a JSON array in /start.
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuid_mod
from dataclasses import dataclass

DEFAULT_PORT = 8009
MAX_SPEC_LENGTH = 200
MAX_DEVICES = 8
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


@dataclass(frozen=True)
class DeviceSpec:
    text: str  # as given (stripped)
    kind: str  # "host" | "uuid" | "name"
    host: str | None = None
    port: int = DEFAULT_PORT
    uuid: uuid_mod.UUID | None = None

    @property
    def address(self) -> str:
        """host:port for a host spec, with brackets for IPv6."""
        host = self.host or ""
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def _split_port(text: str) -> tuple[str, int | None] | None:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            return None
        if not rest:
            return host, None
        if not rest.startswith(":") or not rest[1:].isdigit():
            return None
        return host, int(rest[1:])
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
        return host, int(port)
    return text, None


def parse_spec(text: str) -> DeviceSpec:
    """Classify one spec (see the module docstring). Raises ValueError for an empty or too long one."""
    text = text.strip()
    if not text:
        raise ValueError("a device name, host or UUID may not be empty")
    if len(text) > MAX_SPEC_LENGTH:
        raise ValueError(f"a device spec may be at most {MAX_SPEC_LENGTH} characters")
    compact = text.replace("-", "")
    if len(compact) == 32 and all(c in "0123456789abcdefABCDEF" for c in compact):
        return DeviceSpec(text, "uuid", uuid=uuid_mod.UUID(compact))
    split = _split_port(text)
    if split is not None:
        host, port = split
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"{text!r}: port must be between 1 and 65535")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            return DeviceSpec(text, "host", host=str(address), port=port or DEFAULT_PORT)
        if _HOSTNAME.match(host) and ("." in host.rstrip(".") or port is not None):
            return DeviceSpec(text, "host", host=host.rstrip(".").lower(), port=port or DEFAULT_PORT)
    return DeviceSpec(text, "name")


def split_specs(value: str | list[str]) -> list[str]:
    """The config's `device`: a comma-separated string or a list; blanks dropped, duplicates once."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return dedupe(items)


def dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        item = item.strip()
        if item and item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out


def check_specs(items: list[str]) -> list[str]:
    """Validate a list of specs for the config or /start; returns them cleaned. ValueError names the problem."""
    cleaned = dedupe(items)
    if len(cleaned) > MAX_DEVICES:
        raise ValueError(f"at most {MAX_DEVICES} devices at once")
    for item in cleaned:
        parse_spec(item)
    return cleaned
