"""Device resolution: from a spec (name, host[:port] or UUID) to an address pychromecast can connect to.

Names and UUIDs are looked up by mDNS each time a link (re)connects, so a TV that changed its DHCP
address is found again. Every device is handed to pychromecast with cast_type "cast": given any port
other than 8009 pychromecast would otherwise guess "group" (and on 8009 ask the device over HTTPS).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Callable

from pychromecast.models import CastInfo, HostServiceInfo
from zeroconf import Zeroconf

from castd.cast.mdns import Browser, Found, make_zeroconf
from castd.specs import DeviceSpec, parse_spec


class NotFound(Exception):
    """The spec names no device that can be found right now."""


@dataclass(frozen=True)
class Resolved:
    spec: str
    host: str  # an IP address
    port: int
    name: str | None = None
    uuid: str | None = None
    model: str | None = None

    def cast_info(self) -> CastInfo:
        return CastInfo({HostServiceInfo(self.host, self.port)}, self.uuid, self.model,  # type: ignore[arg-type]
                        self.name, self.host, self.port, "cast", None)


def _matches(spec: DeviceSpec) -> Callable[[Found], bool]:
    if spec.kind == "uuid":
        wanted = str(spec.uuid)
        return lambda found: found.uuid == wanted
    wanted_name = spec.text.casefold()
    return lambda found: (found.name or "").casefold() == wanted_name


def host_ip(host: str) -> str:
    """An IP address for a host spec (DNS names are looked up), IPv4 first: Cast devices are found and
    reached over IPv4 (mDNS answers A records; pychromecast connects there), while a name such as
    `localhost` or `tv.lan` may list ::1 or an AAAA record first (Debian 13's /etc/hosts does): taking
    that one made `localhost:PORT` a second TV beside `127.0.0.1:PORT`, and a connect that failed."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NotFound(f"cannot resolve {host}: {exc.strerror}") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)  # stable: the resolver's order within a family
    return str(infos[0][4][0])


class Resolver:
    """Resolves specs; the mDNS browser starts on the first name or UUID and runs until close()."""

    def __init__(self, interfaces: list[str], timeout: float) -> None:
        self.interfaces = interfaces
        self.timeout = timeout
        self._lock = threading.Lock()
        self._zc: Zeroconf | None = None
        self._browser: Browser | None = None

    def _get_browser(self) -> Browser:
        with self._lock:
            if self._browser is None:
                zc = self._zc = make_zeroconf(self.interfaces)
                self._browser = Browser(zc)
            return self._browser

    def resolve(self, text: str, interrupted: Callable[[], bool] = lambda: False) -> Resolved:
        spec = parse_spec(text)
        if spec.kind == "host":
            assert spec.host is not None
            return Resolved(spec.text, host_ip(spec.host), spec.port, name=spec.text)
        found = self._get_browser().wait_for(_matches(spec), self.timeout, interrupted)
        if found is None:
            what = "UUID" if spec.kind == "uuid" else "name"
            raise NotFound(f"no Cast device with {what} {spec.text!r} answered mDNS within {self.timeout:g}s")
        return Resolved(spec.text, found.host, found.port, name=found.name, uuid=found.uuid, model=found.model)

    def known(self, text: str) -> tuple[str, int] | None:
        """The address a spec resolves to, without waiting: an address spec (a DNS name is looked up), or a
        name or UUID mDNS has already answered; None otherwise."""
        try:
            spec = parse_spec(text)
            if spec.kind == "host":
                assert spec.host is not None
                return host_ip(spec.host), spec.port
        except (NotFound, ValueError):
            return None
        with self._lock:
            browser = self._browser
        found = browser.wait_for(_matches(spec), 0.0) if browser is not None else None
        return (found.host, found.port) if found is not None else None

    def close(self) -> None:
        with self._lock:
            browser, zc = self._browser, self._zc
            self._browser = self._zc = None
        if browser is not None:
            browser.close()
        if zc is not None:
            zc.close()
