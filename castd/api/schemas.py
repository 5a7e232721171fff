"""Request and response shapes, as msgspec types (validation and documentation in one place)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from castd.protocol import State

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=4096, description="http(s) URL of the page to cast")]
Seconds = Annotated[float, msgspec.Meta(gt=0, description="seconds until the session ends by itself")]
Zoom = Annotated[float, msgspec.Meta(ge=0.25, le=5, description="page zoom (beats the site's zoom)")]
ReloadSeconds = Annotated[float, msgspec.Meta(ge=0, le=7 * 86400,
                                              description="reload the page every N seconds (0: never; at least 1)")]
Selector = Annotated[str, msgspec.Meta(min_length=1, max_length=1024,
                                       description="CSS selector that must be present before the page is shown")]


class StartRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Url
    quality: str | None = None
    duration: Seconds | None = None
    token: str | None = None
    zoom: Zoom | None = None
    reload_seconds: ReloadSeconds | None = None
    ready_selector: Selector | None = None


class StopRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: str | None = None


class StartResponse(msgspec.Struct, kw_only=True):
    session: str
    state: State
    url: str
    quality: str
    duration: float | None
    switched: bool
    stream_url: str
    seq: int




class StopResponse(msgspec.Struct, kw_only=True):
    stopped: str | None
    state: State
    seq: int


class ErrorResponse(msgspec.Struct, kw_only=True):
    error: str
    status: int
