"""What discovery says about one device (the /devices answer); apart so the front end needs no pychromecast."""

from __future__ import annotations

import msgspec

PROBE_TIMEOUT = 3.0  # seconds discovery gives each device to answer its status


class DiscoveryJob(msgspec.Struct, kw_only=True):
    """What the front end hands a discovery child (its answer: list[DeviceInfo], or an error string)."""

    config_bytes: bytes  # castd's Config, msgpack (cast/ does not import the config's types here)
    seconds: float


class DeviceInfo(msgspec.Struct, kw_only=True):
    name: str | None
    model: str | None = None
    host: str
    port: int
    uuid: str | None = None
    source: str  # mdns | config
    device: str  # what to put in /start's `device` to cast to it
    activity: str = "unknown"  # idle | castd | other_app | unreachable
    app_id: str | None = None
    app_name: str | None = None
    error: str | None = None
