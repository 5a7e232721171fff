"""GET /devices: Cast devices found by mDNS plus the configured hosts, and what each is doing.

Discovery talks to devices with pychromecast, which never runs in the front end: each run is a short
child process (castd/cast/discovery.py). One run at a time; a fresh answer is reused for a few seconds,
so a burst of requests costs one run.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time

import anyio.to_thread
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from castd.api.errors import ApiError, json_response
from castd.api.schemas import DevicesResponse
from castd.cast.info import PROBE_TIMEOUT, DeviceInfo
from castd.cast.media import APP_DASHCAST, APP_MEDIA_RECEIVER
from castd.config import Config
from castd.protocol import CAST_HELD, CastSection

CACHE_SECONDS = 5.0
MAX_SECONDS = 10.0
_ctx = multiprocessing.get_context("spawn")


def _child(conn, config_bytes: bytes, seconds: float) -> None:
    from castd.cast import discovery

    discovery.child_main(conn, config_bytes, seconds)


class Discovery:
    def __init__(self, config: Config) -> None:
        self.config_bytes = msgspec.msgpack.encode(config)
        self._lock = asyncio.Lock()
        self._cache: tuple[float, float, list[DeviceInfo]] | None = None  # (when, seconds, devices)

    async def run(self, seconds: float) -> list[DeviceInfo]:
        async with self._lock:
            cached = self._cache
            if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS and cached[1] >= seconds:
                return cached[2]
            devices = await anyio.to_thread.run_sync(self._run_child, seconds)
            self._cache = (time.monotonic(), seconds, devices)
            return devices

    def _run_child(self, seconds: float) -> list[DeviceInfo]:
        parent, child = _ctx.Pipe(duplex=False)
        process = _ctx.Process(target=_child, args=(child, self.config_bytes, seconds), name="castd-discovery",
                               daemon=True)
        process.start()
        child.close()
        try:
            if not parent.poll(seconds + 2 * PROBE_TIMEOUT + 10):
                raise ApiError(503, "device discovery did not finish in time")
            try:
                result = msgspec.msgpack.decode(parent.recv_bytes(), type=list[DeviceInfo] | str)
            except (EOFError, OSError, msgspec.DecodeError):
                raise ApiError(503, "device discovery failed (its process died)") from None
            if isinstance(result, str):
                raise ApiError(503, f"device discovery failed: {result}")
            return result
        finally:
            if process.is_alive():
                process.kill()
            process.join(2)
            parent.close()


def _seconds(request: Request, config: Config) -> float:
    raw = request.query_params.get("timeout")
    if raw is None:
        return config.mdns_timeout
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.2 <= value <= MAX_SECONDS:  # also false for nan
        raise ApiError(400, f"timeout: seconds to listen for devices, between 0.2 and {MAX_SECONDS:g}")
    return value


def _mark_castd(devices: list[DeviceInfo], cast: CastSection) -> list[DeviceInfo]:
    """A device showing castd's app while the session casts to it is doing `castd`."""
    ours = [d for d in cast.devices if d.state in CAST_HELD]
    out = []
    for info in devices:
        mine = any((d.host, d.port) == (info.host, info.port) or (d.uuid and d.uuid == info.uuid) for d in ours)
        if mine and info.app_id in (APP_MEDIA_RECEIVER, APP_DASHCAST):
            info = msgspec.structs.replace(info, activity="castd")
        out.append(info)
    return out


async def devices(request: Request) -> Response:
    config: Config = request.app.state.config
    seconds = _seconds(request, config)
    found = await request.app.state.discovery.run(seconds)
    return json_response(DevicesResponse(devices=_mark_castd(found, request.app.state.supervisor.status.cast),
                                         seconds=seconds))
