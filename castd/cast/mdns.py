"""mDNS: find `_googlecast._tcp` devices (name, model, UUID, address) on the configured interfaces.

castd reads the records itself instead of using pychromecast's CastBrowser, which also starts polling
every host it sees over HTTP and closes the Zeroconf instance it was given.
"""

from __future__ import annotations

import ipaddress
import threading
import time
import uuid as uuid_mod
from dataclasses import dataclass
from typing import Callable

from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

SERVICE_TYPE = "_googlecast._tcp.local."


@dataclass(frozen=True)
class Found:
    name: str | None
    model: str | None
    uuid: str
    host: str
    port: int
    service: str


def make_zeroconf(interfaces: list[str]) -> Zeroconf:
    """A Zeroconf on the given addresses (empty: all interfaces). Close it when done."""
    if not interfaces:
        return Zeroconf(interfaces=InterfaceChoice.All)
    v6 = any(ipaddress.ip_address(a).version == 6 for a in interfaces)
    v4 = any(ipaddress.ip_address(a).version == 4 for a in interfaces)
    version = IPVersion.All if v4 and v6 else (IPVersion.V6Only if v6 else IPVersion.V4Only)
    return Zeroconf(interfaces=list(interfaces), ip_version=version)


def _text(properties: dict, key: str) -> str | None:
    value = properties.get(key.encode())
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Browser:
    """Collects Cast devices as they answer; `wait_for` returns the first that matches."""

    def __init__(self, zc: Zeroconf) -> None:
        self.zc = zc
        self._cond = threading.Condition()
        self._found: dict[str, Found] = {}
        self._browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[self._on_change])

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            with self._cond:
                self._found.pop(name, None)
            return
        info = zeroconf.get_service_info(service_type, name, timeout=2000)
        if info is None or info.port is None:
            return
        props = info.properties or {}
        raw_uuid = _text(props, "id")
        addresses = info.parsed_addresses()
        if not raw_uuid or not addresses:
            return
        try:
            device_uuid = str(uuid_mod.UUID(raw_uuid))
        except ValueError:
            return
        found = Found(name=_text(props, "fn"), model=_text(props, "md"), uuid=device_uuid,
                      host=addresses[0], port=info.port, service=name)
        with self._cond:
            self._found[name] = found
            self._cond.notify_all()

    def devices(self) -> list[Found]:
        with self._cond:
            return sorted(self._found.values(), key=lambda f: ((f.name or "").lower(), f.uuid))

    def wait_for(self, match: Callable[[Found], bool], timeout: float,
                 interrupted: Callable[[], bool] = lambda: False) -> Found | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for found in self._found.values():
                    if match(found):
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or interrupted():
                    return None
                self._cond.wait(min(remaining, 0.1))

    def close(self) -> None:
        try:
            self._browser.cancel()
        except RuntimeError:
            pass


def browse(interfaces: list[str], seconds: float) -> list[Found]:
    """Every Cast device that answers within `seconds`."""
    zc = make_zeroconf(interfaces)
    try:
        browser = Browser(zc)
        time.sleep(seconds)
        browser.close()
        return browser.devices()
    finally:
        zc.close()
