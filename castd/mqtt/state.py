"""What castd publishes on `<base>/state`, and when (a pure decision, like encoder/pagecut.py).

The payload is /status without secrets (no session id, no stream URLs: the session id is the key to
/stream/<session>/, and a broker is often shared), with URLs and errors scrubbed, plus a few flat
fields Home Assistant's templates read directly (url_host, casting, cast_states, selected).

The supervisor pushes a snapshot on every change and at least once a second, and frames/fps/segments
change in nearly all of them. Publishing each one would be a fast timer: ~3,600 retained messages an
hour per castd, each fanned out to every subscriber of a fleet. So a state is published when something
a person would notice changes (state, page, device states, errors, ...), and the counters ride along
with those, or at most every REFRESH_SECONDS while they alone change (120 messages an hour while
streaming, none while idle).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import msgspec

from castd.logs import scrub
from castd.protocol import Status
from castd.sharing import Sharing

REFRESH_SECONDS = 30.0
# fields that change with every frame; they alone never make a state worth publishing at once
COUNTERS = ("frames", "fps", "segments", "updated_at")
# what /status shows that the broker must not: the session id opens /stream/<session>/
PRIVATE = ("session", "stream_path", "encoder_pid", "supervisor_pid")
CAMERA_FIELDS = ("name", "state", "shown", "error", "failures", "codec", "width", "height")
DEVICE_FIELDS = ("device", "name", "state", "reason", "host", "port", "model", "failures", "retry_in",
                 "last_error", "app", "volume", "muted", "reloads")


def casting(status: Status) -> bool:
    """The binary sensor: castd is putting a page on screen (or into its stream) right now."""
    return status.state == "streaming"


def state_payload(status: Status, selected: str | None = None, sharing: Sharing = Sharing()) -> dict[str, Any]:
    fields = msgspec.structs.asdict(status)
    for key in PRIVATE:
        fields.pop(key, None)
    fields["url"] = scrub(status.url) if status.url else None
    fields["last_error"] = scrub(status.last_error) if status.last_error else None
    devices = []
    for device in status.cast.devices:
        entry = {key: getattr(device, key) for key in DEVICE_FIELDS}
        entry["last_error"] = scrub(device.last_error) if device.last_error else None
        devices.append(entry)
    fields["cast"] = {"devices": devices, "note": status.cast.note}
    fields["url_host"] = (urlsplit(status.url).hostname or None) if status.url else None
    fields["casting"] = casting(status)
    fields["cast_states"] = {device.device: device.state for device in status.cast.devices}
    # the cameras' steady facts only: their frame times change with every report (see COUNTERS)
    fields["cameras"] = [{key: getattr(camera, key) for key in CAMERA_FIELDS} for camera in status.cameras]
    fields["selected"] = selected
    fields["takeover"] = sharing.takeover or "always"  # the switch: the starts made over MQTT
    fields["volume"] = sharing.volume  # the number (None: castd leaves the TV's volume alone)
    return fields


class StatePlan:
    """Decides whether a new state payload goes out now. No I/O, no clock of its own."""

    def __init__(self, refresh: float = REFRESH_SECONDS) -> None:
        self.refresh = refresh
        self.sent_key: tuple | None = None
        self.sent_full: dict[str, Any] | None = None
        self.sent_at = -math.inf

    @staticmethod
    def key(payload: dict[str, Any]) -> tuple:
        return tuple((k, repr(v)) for k, v in sorted(payload.items()) if k not in COUNTERS)

    def decide(self, now: float, payload: dict[str, Any]) -> bool:
        if self.key(payload) != self.sent_key:
            return True
        changed = {k: v for k, v in payload.items() if k != "updated_at"} != \
            {k: v for k, v in (self.sent_full or {}).items() if k != "updated_at"}
        return changed and now - self.sent_at >= self.refresh

    def sent(self, now: float, payload: dict[str, Any]) -> None:
        self.sent_key, self.sent_full, self.sent_at = self.key(payload), payload, now

    def forget(self) -> None:
        """A new connection (the broker may have lost its retained messages): publish the next one."""
        self.sent_key, self.sent_full, self.sent_at = None, None, -math.inf
