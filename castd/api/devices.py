"""GET /devices: Cast devices found by mDNS plus the configured hosts, and what each is doing.

Discovery talks to devices with pychromecast, which never runs in the front end: each run is a short
child process (castd/cast/discovery.py). One run at a time; a fresh answer is reused for a few seconds,
so a burst of requests costs one run.
"""

from __future__ import annotations

import asyncio
import math
import time
from multiprocessing.connection import wait
from typing import Any

import anyio.to_thread
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from castd.api.errors import ApiError, json_response
from castd.api.schemas import DevicesResponse
from castd.cast.info import PROBE_TIMEOUT, DeviceInfo, DiscoveryJob
from castd.children.piped import PipedChild
from castd.cast.media import APP_DASHCAST, APP_MEDIA_RECEIVER
from castd.config import Config
from castd.protocol import CAST_HELD, CastSection

CACHE_SECONDS = 5.0
MAX_SECONDS = 10.0
_answer = msgspec.msgpack.Decoder(list[DeviceInfo] | str)


def _child(conn: Any, payload: bytes) -> None:
    from castd.cast import discovery  # pychromecast in the child only

    discovery.child_main(conn, payload)


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
        """In a worker thread: one discovery child (castd's one spawn path, castd/children/piped.py), its
        one answer, then it is killed if still there and reaped."""
        job = DiscoveryJob(config_bytes=self.config_bytes, seconds=seconds)
        child = PipedChild(_child, msgspec.msgpack.encode(job), "castd-discovery", _answer)
        deadline = time.monotonic() + seconds + 2 * PROBE_TIMEOUT + 10
        try:
            while True:
                answers = child.messages()
                if answers:
                    result = answers[0]
                    break
                if child.eof or child.exitcode() is not None:
                    raise ApiError(503, "device discovery failed (its process died)")
                if time.monotonic() > deadline:
                    raise ApiError(503, "device discovery did not finish in time")
                wait(child.waitables(), timeout=0.2)
            if isinstance(result, str):
                raise ApiError(503, f"device discovery failed: {result}")
            return result
        finally:
            child.kill()
            child.process.join(2)
            child.close()


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
