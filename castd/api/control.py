"""The control endpoints: /start, /stop, /status, /health."""

from __future__ import annotations

import math
import re
import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from castd.api.errors import ApiError, decode_json_body, error_response, json_response
from castd.api.gate import is_authenticated
from castd.api.schemas import (HealthResponse, PublicStatus, StartRequest, StartResponse, StatusResponse,
                               StopRequest, StopResponse)
from castd.api.urlpolicy import check_url
from castd.cast.specs import check_specs
from castd.config import Config, validate_page_values
from castd.logs import log, scrub
from castd.presets import PRESETS
from castd.protocol import PageOverrides, Start, Stop
from castd.api.handle import SupervisorHandle, SupervisorUnavailable, new_command_id

SNAPSHOT_STALE_AFTER = 3.0
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def _supervisor(request: Request) -> SupervisorHandle:
    return request.app.state.supervisor


def _config(request: Request) -> Config:
    return request.app.state.config


def stream_base(request: Request) -> str:
    """Base URL a player uses to reach castd: the configured stream_host, else what the client used."""
    config = _config(request)
    if config.stream_host:
        host = config.stream_host if ":" in config.stream_host else f"{config.stream_host}:{config.port}"
        return f"http://{host}"
    return str(request.base_url).rstrip("/")


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def start(request: Request) -> Response:
    # Every /start that got past the token check counts, valid or not: it is the sender that is limited.
    wait = request.app.state.start_limiter.take()
    if wait:
        log.warning("webhook start rate limited", client=_client(request), retry_after=round(wait, 1))
        raise ApiError(429, f"too many starts; retry in {math.ceil(wait)} s "
                            "(rate_limit_burst and rate_limit_per_minute in config)",
                       {"Retry-After": str(math.ceil(wait))})
    body = await decode_json_body(request, StartRequest)
    config = _config(request)
    try:
        url = check_url(body.url, request.app.state.allowlist)
    except ApiError as exc:
        log.info("webhook start refused", client=_client(request), url=body.url, reason=exc.message)
        raise
    quality = body.quality or config.quality
    if quality not in PRESETS:
        raise ApiError(400, f"quality: unknown preset {quality!r}; valid: {', '.join(PRESETS)}")
    if body.duration is not None and body.duration > config.max_duration:
        raise ApiError(400, f"duration: at most {config.max_duration} seconds (max_duration in config)")
    devices = start_devices(body.device, config)
    mode = body.mode or "hls"
    if mode == "direct" and not devices:
        raise ApiError(400, "mode: direct needs a device (a `device` field, or `device` in the config)")
    page = page_overrides(body)
    log.info("webhook start", client=_client(request), url=url, quality=quality, duration=body.duration,
             mode=mode, devices=", ".join(devices) or None)
    try:
        ack = await _supervisor(request).command(
            Start(id=new_command_id(), url=url, quality=quality, duration=body.duration, page=page,
                  devices=devices, mode=mode))
    except SupervisorUnavailable as exc:
        raise ApiError(503, f"castd is not ready: {exc}") from None
    if not ack.ok or ack.session is None:
        raise ApiError(409, ack.error or "start refused")
    return json_response(StartResponse(
        session=ack.session, state="streaming" if ack.switched and _supervisor(request).status.state == "streaming"
        else "starting", url=url, quality=quality, duration=body.duration, switched=ack.switched,
        stream_url=f"{stream_base(request)}/stream/{ack.session}/index.m3u8" if mode == "hls" else None,
        mode=mode, devices=devices, seq=ack.seq))


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
    await decode_json_body(request, StopRequest, optional=True)
    log.info("webhook stop", client=_client(request))
    try:
        ack = await _supervisor(request).command(Stop(id=new_command_id()))
    except SupervisorUnavailable as exc:
        raise ApiError(503, f"castd is not ready: {exc}") from None
    return json_response(StopResponse(stopped=ack.stopped, state="idle" if ack.stopped is None else "stopping",
                                      seq=ack.seq))


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
        snapshot_age=round(time.monotonic() - handle.snapshot_at, 3) if handle.snapshot_at else None))


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
    if status.state == "streaming" and status.fps <= 0 and status.mode != "direct":
        return "encoder is not producing frames"
    return None


async def health(request: Request) -> Response:
    handle = _supervisor(request)
    problem = health_problem(handle, _config(request))
    body = HealthResponse(ok=problem is None, state=handle.status.state)
    if problem:  # /health is open: no URLs, no secrets in what it says
        body.reason = scrub(_URL_IN_TEXT.sub("<url>", problem))
    elif handle.last_death:
        body.note = f"recovered: {handle.last_death}"
    return json_response(body, 200 if problem is None else 503)


async def not_found(request: Request) -> Response:
    return error_response(404, "no such endpoint")
