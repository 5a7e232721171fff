"""Request and response shapes, as msgspec types (validation and documentation in one place).

These types are the single source of the OpenAPI document (castd/api/openapi.py): responses are
built from them, so the document cannot drift from what castd really sends.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from castd.cast.info import DeviceInfo
from castd.specs import MAX_DEVICES, MAX_SPEC_LENGTH
from castd.presets import PRESETS
from castd.sharing import SharingKeys
from castd.protocol import CastDevice, OverlayWhere, State, Status

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=4096, description="http(s) URL of the page to cast")]
Seconds = Annotated[float, msgspec.Meta(gt=0, description="seconds until the session ends by itself "
                                                           "(at most max_duration from the config)")]
Quality = Annotated[str, msgspec.Meta(max_length=64, description="a quality preset",
                                      extra_json_schema={"enum": list(PRESETS)})]
DeviceSpec = Annotated[str, msgspec.Meta(max_length=MAX_SPEC_LENGTH,
                                        description="a Cast device: its friendly name, host[:port] or UUID")]
Devices = Annotated[list[DeviceSpec], msgspec.Meta(max_length=MAX_DEVICES)]
Mode = Literal["hls", "direct"]
Token = Annotated[str, msgspec.Meta(max_length=1024, description="the webhook token, for senders that cannot "
                                                                 "set an Authorization header")]
Zoom = Annotated[float, msgspec.Meta(ge=0.25, le=5, description="page zoom (beats the site's zoom)")]
ReloadSeconds = Annotated[float, msgspec.Meta(ge=0, le=7 * 86400,
                                              description="reload the page every N seconds (0: never; at least 1)")]
Selector = Annotated[str, msgspec.Meta(min_length=1, max_length=1024,
                                       description="CSS selector that must be present before the page is shown")]


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="a name from the config")]
Then = Literal["stop", "resume"]


OverlaySize = Annotated[float, msgspec.Meta(ge=0.1, le=1, description="an overlay's width as a fraction of the "
                                                                       "picture's (0.5: a quarter of it)")]


class StartRequest(SharingKeys, forbid_unknown_fields=True, kw_only=True):
    """Exactly one of url, dashboard, playlist, camera. As JSON (any Content-Type), a form, or (with a token) GET.
    The sharing keys (takeover, sticky, wake, volume, mute, silent_start, restore_volume) beat the
    dashboard's, playlist's and config's."""

    url: Url | None = None
    dashboard: Annotated[Name, msgspec.Meta(description="a [[dashboards]] name")] | None = None
    playlist: Annotated[Name, msgspec.Meta(description="a [[playlists]] name")] | None = None
    camera: Annotated[Name, msgspec.Meta(description="a [cameras.NAME] name: full screen, or with "
                                                     "`overlay` in a corner over the running session")] | None = None
    overlay: Annotated[OverlayWhere, msgspec.Meta(description="with `camera`: show it in this corner over "
                                                              "the running session (off: remove it)")] | None = None
    overlay_size: OverlaySize | None = None
    then: Annotated[Then, msgspec.Meta(description="after `duration`: stop (default), or resume what was "
                                                   "on screen before (an interrupt)")] | None = None
    quality: Quality | None = None
    duration: Seconds | None = None
    device: DeviceSpec | Devices | None = None  # absent: the config's `device`; "" or []: no device
    mode: Mode | None = None  # hls (default): encode and cast the stream; direct: the device loads the page
    token: Token | None = None
    zoom: Zoom | None = None
    reload_seconds: ReloadSeconds | None = None
    ready_selector: Selector | None = None


class StopRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: Token | None = None


class StartResponse(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    session: str
    state: State
    url: str  # a playlist: its first item's
    quality: str
    duration: float | None
    switched: bool
    stream_url: str | None  # None in direct mode (no stream)
    mode: str
    devices: list[str]
    seq: int
    dashboard: str | None = None
    playlist: str | None = None
    camera: str | None = None
    overlay: str | None = None  # the corner the camera went to (or "off")
    then: Then = "stop"
    # TVs castd already knows are busy with another app while this start says when-idle: each `waiting`,
    # with the app's name (castd casts when it quits). Empty: none known yet; /status says within ~2 s
    waiting: list[CastDevice] = []


class StepResponse(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """/next and /previous: the playlist and the item now on screen."""

    session: str | None
    playlist: str | None
    item: int | None
    dashboard: str | None
    seq: int


class DashboardInfo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    url: str  # secret-looking query values masked
    quality: str
    devices: list[str]


class PlaylistItemInfo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    dashboard: str
    seconds: float


class PlaylistInfo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    items: list[PlaylistItemInfo]
    loop: bool
    quality: str
    devices: list[str]


class ScheduleInfo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    days: list[str]
    start: str
    end: str
    timezone: str
    dashboard: str | None
    playlist: str | None
    active: bool  # on now


class CameraInfo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    url: str  # credentials masked (***@)
    transport: str
    snapshot: bool  # a snapshot_url is configured


class DashboardsResponse(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """GET /dashboards: the names /start takes, from the config."""

    dashboards: list[DashboardInfo]
    cameras: list[CameraInfo]
    playlists: list[PlaylistInfo]
    schedules: list[ScheduleInfo]
    schedule_override: str


class StopResponse(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    stopped: str | None
    state: State
    seq: int


MqttState = Literal["connecting", "connected", "retrying", "off"]


class MqttStatus(msgspec.Struct, kw_only=True):
    """castd's link to its MQTT broker (castd/mqtt/), as /status and /health show it."""

    state: MqttState  # off: `enabled = false` (castd only removed its Home Assistant device)
    broker: str  # host:port
    tls: bool
    node_id: str
    base_topic: str
    connected_since: float | None = None  # Unix time of the current connection
    connects: int = 0  # successful connections since castd started
    last_error: str | None = None  # why the last connection failed or ended
    retry_in: float | None = None  # state retrying: seconds until the next try
    commands: int = 0  # control messages obeyed
    rejected: int = 0  # control messages refused (each answered on <base_topic>/error)


class StatusResponse(Status, forbid_unknown_fields=True, kw_only=True):
    """The supervisor's last snapshot, for a caller with the token (or when no token is set)."""

    stream_url: str | None
    supervisor_restarts: int
    snapshot_age: float | None
    mqtt: MqttStatus | None = None  # None: no broker configured


class DevicesResponse(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Cast devices found by mDNS plus the configured hosts, and what each is doing."""

    devices: list[DeviceInfo]
    seconds: float  # how long mDNS was listened to


class PublicStatus(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """/status for a caller without the token: what castd is doing, nothing about what it shows."""

    state: State
    ok: bool
    auth_required: bool = True


class HealthResponse(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    ok: bool
    state: State
    reason: str | None = None
    note: str | None = None
    mqtt: MqttState | None = None  # the broker link (it never makes castd unhealthy: HTTP works without it)


class ErrorResponse(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    error: str
    status: int
