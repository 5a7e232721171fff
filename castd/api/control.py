"""The control endpoints: /start, /stop, /status, /health."""

from __future__ import annotations

import math
import re
import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from castd.api.bodies import decode_body
from castd.api.errors import ApiError, error_response, json_response
from castd.api.gate import is_authenticated
from castd.api.schemas import (HealthResponse, PublicStatus, StartRequest, StartResponse, StatusResponse,
                               StepResponse, StopRequest, StopResponse)
from castd.api.urlpolicy import check_url
from castd.specs import check_specs
from castd.config import Config, camera_url, validate_page_values
from castd.logs import log, scrub
from castd.paths import configured_stream_base, stream_path
from castd.presets import PRESETS
from castd.api.handle import SupervisorHandle, SupervisorUnavailable, new_command_id
from castd.programme.targets import Target, UnknownName, dashboard_target, playlist_target
from castd.protocol import LIVE_STATES, PageOverrides, Start, Status, Step, Stop
from castd.urls import Allowlist

SNAPSHOT_STALE_AFTER = 3.0
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def _supervisor(request: Request) -> SupervisorHandle:
    return request.app.state.supervisor


def _mqtt(request: Request):
    """The MQTT bridge (castd/mqtt/client.py), or None when no broker is configured."""
    return getattr(request.app.state, "mqtt", None)


def _config(request: Request) -> Config:
    return request.app.state.config


def stream_base(request: Request) -> str:
    """Base URL a player uses to reach castd: the configured stream_host, else what the client used."""
    config = _config(request)
    if config.stream_host:
        return configured_stream_base(config.stream_host, config.port)
    return str(request.base_url).rstrip("/")


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


GET_NEEDS_TOKEN = ("GET {path} changes state only when castd has a token (config token), sent as ?token=: "
                   "anything that fetches a URL can send a GET (link previews, browsers prefetching, an <img> "
                   "on any web page), so without a secret in it a GET is not a request a person made. "
                   "Use POST, or set a token")


def refuse_tokenless_get(request: Request) -> None:
    """GET /start, /stop, /next, /previous: for one-URL senders, and only with a token (see GET_NEEDS_TOKEN)."""
    if request.method == "HEAD":  # link checkers and previews send HEAD by themselves: never an action
        raise ApiError(405, f"HEAD {request.url.path} does nothing; use POST (or GET with the token)",
                       {"Allow": "POST, GET"})
    if request.method == "GET" and not _config(request).token:
        raise ApiError(405, GET_NEEDS_TOKEN.format(path=request.url.path), {"Allow": "POST"})


def resolve_target(body: StartRequest, config: Config, allowlist: Allowlist) -> Target:
    """The request as one Target: url, dashboard, playlist or camera, with the request's fields on top."""
    given = [name for name in ("url", "dashboard", "playlist", "camera") if getattr(body, name) is not None]
    if len(given) != 1:
        raise ApiError(400, "give exactly one of url, dashboard, playlist, camera"
                            + (f" (got {', '.join(given)})" if given else ""))
    if (body.overlay is not None or body.overlay_size is not None) and body.camera is None:
        raise ApiError(400, "overlay: goes with a camera ({\"camera\": NAME, \"overlay\": \"top-right\"})")
    if body.quality is not None and body.quality not in PRESETS:
        raise ApiError(400, f"quality: unknown preset {body.quality!r}; valid: {', '.join(PRESETS)}")
    devices = None if body.device is None else tuple(start_devices(body.device, config))
    page = page_overrides(body)
    try:
        if body.dashboard is not None:
            target = dashboard_target(config, body.dashboard, quality=body.quality, devices=devices)
            page = PageOverrides(**{k: v if v is not None else getattr(target.page, k)
                                    for k, v in msgspec.structs.asdict(page).items()})
            return msgspec.structs.replace(target, page=page, mode=body.mode or "hls")
        if body.playlist is not None:
            if body.mode == "direct":
                raise ApiError(400, "mode: a playlist is streamed (hls); direct mode is for single pages")
            return playlist_target(config, body.playlist, quality=body.quality, devices=devices)
        if body.camera is not None:
            return camera_target(body, config, devices)
    except UnknownName as exc:
        raise ApiError(404, str(exc)) from None
    return Target(url=check_url(body.url or "", allowlist), quality=body.quality or config.quality,
                  devices=devices if devices is not None else tuple(config.default_devices()),
                  mode=body.mode or "hls", page=page)


def camera_target(body: StartRequest, config: Config, devices: tuple[str, ...] | None) -> Target:
    """A camera in the page's place ("camera:NAME"); it is always encoded (castd reads it, not the TV)."""
    name = body.camera or ""
    if name not in config.cameras:
        raise UnknownName(f"no camera named {name!r}; cameras: {', '.join(config.cameras) or 'none configured'}")
    if body.mode == "direct":
        raise ApiError(400, "mode: a camera is streamed (hls); castd reads it, not the device")
    return Target(url=camera_url(name), quality=body.quality or config.quality,
                  devices=devices if devices is not None else tuple(config.default_devices()), mode="hls")


def onto_session(body: StartRequest, target: Target, status: Status) -> Target:
    """A camera asked for without a quality or a device goes into the running session (a switch: the
    TV keeps its LOAD and stream URL) rather than starting another at the config's quality."""
    if body.camera is None or body.quality is not None or body.device is not None:
        return target
    if status.state not in LIVE_STATES or status.mode != "hls" or not status.quality:
        return target
    return msgspec.structs.replace(target, quality=status.quality, devices=tuple(status.devices))


def is_switch(status: Status, target: Target) -> bool:
    """Would this start only switch the page of the running session (no new browser, no new LOAD)?
    The supervisor's own rule (same quality, mode and devices), read from its last snapshot."""
    return (status.state in LIVE_STATES and status.quality == target.quality
            and status.mode == target.mode and tuple(status.devices) == target.devices)


def take_limit(request: Request, switch: bool) -> None:
    """Count this request in its bucket: page switches in their own, looser one (config switch_rate_*)."""
    state = request.app.state
    wait = (state.switch_limiter if switch else state.start_limiter).take()
    if wait:
        kind = "page switches" if switch else "starts"
        keys = "switch_rate_limit_burst and switch_rate_limit_per_minute" if switch else \
            "rate_limit_burst and rate_limit_per_minute"
        raise ApiError(429, f"too many {kind}; retry in {math.ceil(wait)} s ({keys} in config)",
                       {"Retry-After": str(math.ceil(wait))})


async def start(request: Request) -> Response:
    refuse_tokenless_get(request)
    body = await decode_body(request, StartRequest)
    config = _config(request)
    try:
        target, problem = resolve_target(body, config, request.app.state.allowlist), None
        target = onto_session(body, target, _supervisor(request).status)
    except ApiError as exc:
        target, problem = None, exc
    # Counted before refusing: a sender is limited whether its starts are valid or not. The bucket is
    # the supervisor's rule read from its last snapshot (a wrong guess costs one token of the other).
    try:
        take_limit(request, switch=target is not None and is_switch(_supervisor(request).status, target))
        if problem is not None or target is None:  # logged with its reason where every refusal is (api/errors.py)
            raise problem or ApiError(400, "nothing to start")
        command = start_command(body, target, config)
    except ApiError as exc:
        exc.context = {"url": body.url, "dashboard": body.dashboard, "playlist": body.playlist, "camera": body.camera}
        raise
    then = command.then
    log.info("webhook start", client=_client(request), url=target.url or None, dashboard=target.dashboard,
             playlist=target.playlist, camera=body.camera, overlay=body.overlay, quality=target.quality,
             duration=body.duration, then=then,
             mode=target.mode, devices=", ".join(target.devices) or None)
    try:
        ack = await _supervisor(request).command(command)
    except SupervisorUnavailable as exc:
        raise ApiError(503, f"castd is not ready: {exc}") from None
    if not ack.ok or ack.session is None:
        raise ApiError(409, ack.error or "start refused")
    status = _supervisor(request).status
    url = ack.url or target.url
    return json_response(StartResponse(
        session=ack.session, state="streaming" if ack.switched and status.state == "streaming" else "starting",
        url=url, quality=target.quality, duration=body.duration, switched=ack.switched,
        stream_url=stream_base(request) + stream_path(ack.session) if target.mode == "hls" else None,
        mode=target.mode, devices=list(target.devices), seq=ack.seq, dashboard=ack.dashboard or target.dashboard,
        playlist=target.playlist, camera=body.camera, overlay=body.overlay, then=then, waiting=ack.waiting))


def start_command(body: StartRequest, target: Target, config: Config) -> Start:
    """The Start a resolved request asks for; ApiError (the 4xx an HTTP caller gets) when it may not.

    With resolve_target, the one check for every way in: POST /start and castd's MQTT control
    topics (castd/mqtt/commands.py) both call them.
    """
    if body.duration is not None and body.duration > config.max_duration:
        raise ApiError(400, f"duration: at most {config.max_duration} seconds (max_duration in config)")
    then = body.then or "stop"
    if then == "resume" and body.duration is None:
        raise ApiError(400, "then: \"resume\" needs a duration (how long to show this before going back)")
    if target.mode == "direct" and not target.devices:
        raise ApiError(400, "mode: direct needs a device (a `device` field, or `device` in the config)")
    if body.overlay is not None and body.then is not None:
        raise ApiError(400, "then: an overlay ends by itself after `duration` (the page under it goes on)")
    return Start(id=new_command_id(), url=target.url, quality=target.quality, duration=body.duration,
                 page=target.page, devices=list(target.devices), mode=target.mode, dashboard=target.dashboard,
                 playlist=target.playlist, then=then if body.overlay is None else "stop", overlay=body.overlay,
                 overlay_size=body.overlay_size, sharing=body.sharing().over(target.sharing))


def start_devices(field: str | list[str] | None, config: Config) -> list[str]:
    """The devices of a start: the request's `device` (a spec or a list), else the config's default."""
    if field is None:
        return config.default_devices()
    try:
        return check_specs([field] if isinstance(field, str) else field)
    except ValueError as exc:
        raise ApiError(400, f"device: {exc}") from None


def page_overrides(body: StartRequest) -> PageOverrides:
    """The request's page settings (zoom, reload, ready selector), checked like the config's."""
    try:
        validate_page_values(body.zoom, body.reload_seconds)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    if body.ready_selector is not None and any(ord(c) < 0x20 for c in body.ready_selector):
        raise ApiError(400, "ready_selector: must not contain control characters")
    return PageOverrides(zoom=body.zoom, reload_seconds=body.reload_seconds, ready_selector=body.ready_selector)


async def stop(request: Request) -> Response:
    refuse_tokenless_get(request)
    await decode_body(request, StopRequest, optional=True)
    log.info("webhook stop", client=_client(request))
    try:
        ack = await _supervisor(request).command(Stop(id=new_command_id()))
    except SupervisorUnavailable as exc:
        raise ApiError(503, f"castd is not ready: {exc}") from None
    return json_response(StopResponse(stopped=ack.stopped, state="idle" if ack.stopped is None else "stopping",
                                      seq=ack.seq))


async def step(request: Request) -> Response:
    """POST /next and /previous: the playlist on screen moves one item (a page switch)."""
    refuse_tokenless_get(request)
    await decode_body(request, StopRequest, optional=True)
    take_limit(request, switch=True)
    count = -1 if request.url.path == "/previous" else 1
    try:
        ack = await _supervisor(request).command(Step(id=new_command_id(), count=count))
    except SupervisorUnavailable as exc:
        raise ApiError(503, f"castd is not ready: {exc}") from None
    if not ack.ok:
        raise ApiError(409, ack.error or "no playlist is on screen")
    log.info("webhook step", client=_client(request), count=count)
    return json_response(StepResponse(session=ack.session, playlist=ack.playlist, item=ack.item,
                                      dashboard=ack.dashboard, seq=ack.seq))


async def status(request: Request) -> Response:
    handle = _supervisor(request)
    current = handle.status
    if not is_authenticated(request.scope):
        return json_response(PublicStatus(state=current.state,
                                          ok=health_problem(handle, _config(request)) is None))
    fields = msgspec.structs.asdict(current)
    fields["url"] = scrub(current.url) if current.url else None  # secret-looking query values masked
    fields["last_error"] = scrub(current.last_error) if current.last_error else None
    return json_response(StatusResponse(
        **fields, stream_url=f"{stream_base(request)}{current.stream_path}" if current.stream_path else None,
        supervisor_restarts=handle.restarts,
        snapshot_age=round(time.monotonic() - handle.snapshot_at, 3) if handle.snapshot_at else None,
        mqtt=_mqtt(request).status() if _mqtt(request) else None))


def health_problem(handle: SupervisorHandle, config: Config) -> str | None:
    """Why castd is not healthy right now, or None."""
    if not handle.alive():
        return "supervisor is not running" + (f" ({handle.last_death})" if handle.last_death else "")
    age = time.monotonic() - handle.snapshot_at if handle.snapshot_at else None
    if age is None:
        return "supervisor is starting"
    if age > SNAPSHOT_STALE_AFTER:
        return f"supervisor has not reported for {age:.1f}s"
    status = handle.status
    if status.state == "failed":
        return f"last session failed: {(status.last_error or '').splitlines()[0] if status.last_error else '?'}"
    if status.state == "retrying":
        wait = max(0, round((status.retry_at or 0) - time.time()))
        return f"retrying in {wait}s: {(status.last_error or '?').splitlines()[0]}"
    if status.state == "streaming" and status.fps <= 0 and status.mode != "direct":
        return "encoder is not producing frames"
    if status.page == "hung":  # the TV holds the last picture while the page watchdog cures it
        return (status.last_error or "page hung").splitlines()[0]
    return None


async def health(request: Request) -> Response:
    handle = _supervisor(request)
    problem = health_problem(handle, _config(request))
    body = HealthResponse(ok=problem is None, state=handle.status.state,
                          mqtt=_mqtt(request).state if _mqtt(request) else None)
    if problem:  # /health is open: no URLs, no secrets in what it says
        body.reason = scrub(_URL_IN_TEXT.sub("<url>", problem))
    elif handle.last_death:
        body.note = f"recovered: {handle.last_death}"
    return json_response(body, 200 if problem is None else 503)


async def not_found(request: Request) -> Response:
    return error_response(404, "no such endpoint")
