"""The address a TV uses to fetch castd's stream.

`stream_host` in the config wins. Otherwise castd asks the kernel which local address it would use to
reach the device (a UDP socket connect()ed to the device sends nothing; getsockname() then names the
source address of that route). A device on the LAN gets castd's LAN address, never 127.0.0.1; a device
on loopback (the tests' fake) gets 127.0.0.1, which is right for it.
"""

from __future__ import annotations

import ipaddress
import socket

from castd.config import Config
from castd.paths import configured_stream_base


class Unreachable(Exception):
    """castd cannot offer the device a stream address it could reach."""


def route_address(device_ip: str) -> str:
    """The local address on the route to `device_ip` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in device_ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((device_ip, 9))
        return probe.getsockname()[0]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def stream_base(config: Config, device_ip: str) -> str:
    """`http://host:port` for a device at `device_ip`; Unreachable when it could not fetch from there."""
    if config.stream_host:
        return configured_stream_base(config.stream_host, config.port)
    try:
        local = route_address(device_ip)
    except OSError as exc:
        raise Unreachable(f"no route to {device_ip}: {exc.strerror or exc}") from None
    if _is_loopback(local) and not _is_loopback(device_ip):
        raise Unreachable(f"the route to {device_ip} is through loopback; set stream_host")
    if not _is_loopback(local) and _is_loopback(config.host):
        raise Unreachable(f"castd listens on {config.host} only, which the device at {device_ip} cannot reach: "
                          "set host = \"0.0.0.0\" (with a token) or stream_host")
    host = f"[{local}]" if ":" in local else local
    return f"http://{host}:{config.port}"
