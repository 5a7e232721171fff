"""Turn one MQTT control message into the command the HTTP API would send, or the error it would give.

No I/O: the client (castd/mqtt/client.py) sends what this returns. Every check is the HTTP API's own
(castd/api/bodies.decode_json, castd/api/control.resolve_target and start_command: URL policy,
allowlist, dashboards, presets, max_duration, devices, page overrides, body size and JSON depth), so a
message is accepted over MQTT exactly when the same JSON would be accepted by POST /start, and refused
with the same sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from castd.api.bodies import decode_json
from castd.api.control import onto_session, resolve_target, start_command
from castd.api.errors import ApiError
from castd.api.schemas import StartRequest, StopRequest
from castd.config import Config
from castd.mqtt.topics import Inbound
from castd.protocol import Reload, Start, Status, Stop
from castd.sharing import SHARING_KEYS, Sharing
from castd.api.handle import new_command_id
from castd.urls import Allowlist

NO_CAMERA = "None"  # the camera select's state when no camera is full screen


@dataclass(frozen=True)
class Refusal:
    """A message castd will not act on; published on <base>/error as {"error", "status", "topic"}."""

    status: int  # the HTTP status the same request would get
    message: str


@dataclass(frozen=True)
class Setting:
    """Home Assistant's switch or number changed the sharing keys of the starts made over MQTT."""

    sharing: Sharing


def interpret(kind: Inbound, payload: bytes, config: Config, allowlist: Allowlist,
              options: list[str], sharing: Sharing = Sharing(),
              status: Status | None = None) -> Start | Stop | Reload | Setting | Refusal:
    """The command a control message asks for. `options`: the select entity's choices (dashboard
    names when [[dashboards]] are configured, else recent URLs); `sharing`: the MQTT entities' settings,
    under what a start's own JSON sets and over its dashboard's and the config's."""
    if len(payload) > config.max_body_bytes:
        return Refusal(413, f"request body too large (limit {config.max_body_bytes} bytes)")
    try:
        if kind is Inbound.START:
            if not payload.strip():
                raise ApiError(400, "request body is empty; send a JSON object or a form")
            return plan(decode_json(payload, StartRequest, config.max_json_depth), config, allowlist, sharing,
                        status)
        if kind in (Inbound.STOP, Inbound.RELOAD):
            if payload.strip():
                decode_json(payload, StopRequest, config.max_json_depth)
            return Stop(id=new_command_id(), reason="stop requested over MQTT") if kind is Inbound.STOP \
                else Reload(id=new_command_id())
        if kind.setting and not payload.strip():
            return Setting(sharing)  # an empty retained message clears a kept setting: nothing changes now
        if kind is Inbound.TAKEOVER:
            choice = payload.strip().upper()
            if choice not in (b"ON", b"OFF"):
                raise ApiError(400, "takeover: send ON (only when the TV is free) or OFF (always)")
            return Setting(msgspec.structs.replace(sharing, takeover="when-idle" if choice == b"ON" else "always"))
        if kind is Inbound.VOLUME:
            return Setting(msgspec.structs.replace(sharing, volume=_volume(payload)))
        text = _text(payload)
        if kind is Inbound.URL:
            return plan(StartRequest(url=text), config, allowlist, sharing)
        if kind is Inbound.CAMERA:
            if text == NO_CAMERA:
                raise ApiError(400, "camera: pick a camera (the dashboard select or Stop takes it off)")
            return plan(StartRequest(camera=text), config, allowlist, sharing, status)  # unknown: 404 with names
        if kind is Inbound.SELECT:
            if config.dashboards:
                return plan(StartRequest(dashboard=text), config, allowlist, sharing)  # unknown: 404 with names
            if text not in options:
                shown = ", ".join(repr(o) for o in options[:10]) or "none yet"
                return Refusal(400, f"select: {text[:200]!r} is not one of the options ({shown})")
            return plan(StartRequest(url=text), config, allowlist, sharing)
    except ApiError as exc:
        return Refusal(exc.status, exc.message)
    return Refusal(400, f"not a control topic ({kind.value})")


def plan(body: StartRequest, config: Config, allowlist: Allowlist, sharing: Sharing = Sharing(),
         status: Status | None = None) -> Start:
    """`status`: the running session, which a camera without a quality or device joins (as over HTTP)."""
    unset = {key: getattr(sharing, key) for key in SHARING_KEYS
             if getattr(body, key) is None and getattr(sharing, key) is not None}
    body = msgspec.structs.replace(body, **unset)  # the entities' settings where the message set nothing
    target = resolve_target(body, config, allowlist)
    if status is not None:
        target = onto_session(body, target, status)
    return start_command(body, target, config)


def _volume(payload: bytes) -> int | None:
    text = payload.strip().decode("ascii", "replace")
    if text.lower() == "none":
        return None  # leave the TV's volume alone
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"volume: {text[:20]!r} is not a number from 0 to 100 (or None)") from None
    if not 0 <= value <= 100:
        raise ApiError(400, "volume: must be from 0 to 100 (or None: leave it alone)")
    return round(value)


def _text(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ApiError(400, "payload is not valid UTF-8") from None
    if not text:
        raise ApiError(400, "payload is empty; send a URL")
    if len(text) > 4096:
        raise ApiError(400, "url: longer than 4096 characters")
    return text
