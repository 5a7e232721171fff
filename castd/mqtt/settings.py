"""The `[mqtt]` table of the config: which broker, who castd is on it, what it obeys.

Kept apart from castd/config.py because only the MQTT room reads most of it; config.py holds it as
one field, so it is validated with everything else at start-up (a bad value names `mqtt.<key>`).
Nothing here imports castd: config.py sits above it.
"""

from __future__ import annotations

import re
import socket
from typing import Literal

import msgspec

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
# Home Assistant: a node/object id in a discovery topic is [a-zA-Z0-9_-]+
_NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# MQTT topic levels castd builds from config: no wildcards, no empty levels, no leading/trailing "/"
_TOPIC = re.compile(r"^[^#+/\x00]+(/[^#+/\x00]+)*$")

Control = Literal["always", "with-login", "never"]


def hostname_node_id() -> str:
    """The machine's host name as a node id: lower case, anything outside [a-z0-9_-] becomes "_"."""
    name = socket.gethostname().split(".")[0].lower() or "castd"
    return re.sub(r"[^a-z0-9_-]", "_", name)[:64]


class MqttSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """castd on an MQTT broker (Home Assistant discovery, control and state topics, fleets).

    Off while `host` is empty. `enabled = false` with a host set makes castd remove its Home
    Assistant device (empty retained discovery payload) from that broker at start-up, once.
    """

    host: str = ""  # broker address; empty: no MQTT
    port: int = 0  # 0: 1883, or 8883 with tls
    username: str = ""
    password: str = ""  # a secret: the config file must then be private (as for the token)
    tls: bool = False
    ca_file: str = ""  # CA certificate (PEM) that signed the broker's certificate; empty: the system's CAs
    client_id: str = ""  # empty: castd-<node_id>
    node_id: str = ""  # empty: from the host name
    base_topic: str = ""  # empty: castd/<node_id>
    group_topic: str = "castd/group"  # <group_topic>/<group>/start and /stop
    groups: list[str] = msgspec.field(default_factory=list)
    name: str = ""  # the device's name in Home Assistant; empty: "castd <node_id>"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    # obey control topics: only when castd logs in (the default: a broker that knows who publishes), always
    # (an anonymous broker: anyone on it can then make castd open any page the allowlist permits), or never.
    # A broker login is often shared by many of Home Assistant's integrations, and control topics take no token.
    control: Control = "with-login"
    keepalive: int = 30  # seconds between pings; the broker marks castd offline after 1.5x this
    snapshot_seconds: float = 10.0  # while casting, a new snapshot picture at most this often; 0: none
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.port and not 0 < self.port < 65536:
            raise ValueError("mqtt.port: must be between 1 and 65535 (or 0 for the default)")
        if self.node_id and not _NODE_ID.match(self.node_id):
            raise ValueError(f"mqtt.node_id: {self.node_id!r} may only hold letters, digits, '_' and '-'")
        for key in ("base_topic", "group_topic", "discovery_prefix"):
            value = getattr(self, key)
            if value and not _TOPIC.match(value):
                raise ValueError(f"mqtt.{key}: {value!r} is not a plain topic (no '+', '#', empty levels "
                                 "or leading/trailing '/')")
        if not self.group_topic or not self.discovery_prefix:
            raise ValueError("mqtt.group_topic and mqtt.discovery_prefix must not be empty")
        for group in self.groups:
            if not _NODE_ID.match(group):
                raise ValueError(f"mqtt.groups: {group!r} may only hold letters, digits, '_' and '-'")
        if not 5 <= self.keepalive <= 3600:
            raise ValueError("mqtt.keepalive: must be between 5 and 3600 seconds")
        if self.snapshot_seconds and self.snapshot_seconds < 1:
            raise ValueError("mqtt.snapshot_seconds: must be 0 (no pictures) or at least 1")
        if self.ca_file and not self.tls:
            raise ValueError("mqtt.ca_file: set tls = true too")
        if self.password and not self.username:
            raise ValueError("mqtt.password: set username too")
        if any(c in self.client_id for c in "\x00#+/") or len(self.client_id) > 128:
            raise ValueError("mqtt.client_id: at most 128 characters, none of '/', '+', '#'")

    # ---- what the empty defaults mean -------------------------------------------------------
    @property
    def active(self) -> bool:
        return bool(self.host) and self.enabled

    def resolved_port(self) -> int:
        return self.port or (DEFAULT_TLS_PORT if self.tls else DEFAULT_PORT)

    def resolved_node_id(self) -> str:
        return self.node_id or hostname_node_id()

    def resolved_client_id(self) -> str:
        return self.client_id or f"castd-{self.resolved_node_id()}"

    def resolved_base_topic(self) -> str:
        return self.base_topic or f"castd/{self.resolved_node_id()}"

    def resolved_name(self) -> str:
        return self.name or f"castd {self.resolved_node_id()}"

    def accepts_control(self) -> bool:
        return self.control == "always" or (self.control == "with-login" and bool(self.username))

    def control_off_because(self) -> str | None:
        """Why control topics are not obeyed, in the words the log and the README use; None when they are."""
        if self.accepts_control():
            return None
        if self.control == "never":
            return "mqtt.control is never"
        return ("castd has no broker login (mqtt.username): set one, or mqtt.control = \"always\" to let anyone "
                "on the broker control castd")
