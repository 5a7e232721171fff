"""The Starlette application: routes, error handlers, and the lifespan that owns the supervisor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from castd import paths
from castd.api import control, dashboards, devices, openapi, pages, snapshot, stream
from castd.api.blocking import PlaylistWatch
from castd.api.errors import ApiError, on_api_error, on_http_error, on_server_error
from castd.api.gate import Gate
from castd.api.ratelimit import TokenBucket
from castd.config import Config
from castd.logs import log
from castd.logs import scrub
from castd.protocol import Start, Status
from castd.sdnotify import notify, watchdog_interval
from castd.api.handle import SupervisorHandle, SupervisorUnavailable, new_command_id
from castd.urls import Allowlist

CHECK_INTERVAL = 0.5


def create_app(config: Config, *, demo: bool = False) -> Starlette:
    """Build castd's app. `demo=True` starts a cast of the embedded demo once serving."""
    runtime_dir = config.resolved_runtime_dir()
    config = Config(**{**{f: getattr(config, f) for f in config.__struct_fields__},
                       "runtime_dir": str(runtime_dir)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        handle = SupervisorHandle(config)
        app.state.supervisor = handle
        app.state.discovery = devices.Discovery(config)
        handle.on_status.append(_status_notifier())
        bridge = app.state.mqtt = _mqtt_bridge(config, handle, app)
        handle.start()
        tasks = [asyncio.create_task(_watch(handle))]
        interval = watchdog_interval()
        if interval:
            tasks.append(asyncio.create_task(_watchdog_pings(interval, handle)))
        if demo:
            asyncio.create_task(_start_demo(handle, config))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            log.info("shutting down")
            notify("STOPPING=1\nSTATUS=stopping")
            if bridge is not None:
                await bridge.close()
            await handle.close()

    routes = [
        # GET on the four control paths is for one-URL senders, and works only with a token (control.py)
        Route("/start", control.start, methods=["POST", "GET"]),
        Route("/stop", control.stop, methods=["POST", "GET"]),
        Route("/next", control.step, methods=["POST", "GET"]),
        Route("/previous", control.step, methods=["POST", "GET"]),
        Route("/dashboards", dashboards.dashboards, methods=["GET"]),
        Route("/status", control.status, methods=["GET"]),
        Route("/health", control.health, methods=["GET"]),
        Route("/devices", devices.devices, methods=["GET"]),
        Route("/", pages.preview, methods=["GET"]),
        Route("/snapshot.jpg", snapshot.snapshot, methods=["GET"]),
        Route("/demo", pages.demo, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/stream/{session}/{name}", stream.stream_file, methods=["GET"]),
        Route("/stream/{session}/{name}", stream.stream_options, methods=["OPTIONS"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(Gate, config=config)],
                    exception_handlers={ApiError: on_api_error, HTTPException: on_http_error,
                                        Exception: on_server_error})
    app.state.config = config
    app.state.allowlist = Allowlist.parse(config.allowlist)
    app.state.start_limiter = TokenBucket(config.rate_limit_burst, config.rate_limit_per_minute)
    app.state.switch_limiter = TokenBucket(config.switch_rate_limit_burst, config.switch_rate_limit_per_minute)
    app.state.openapi = msgspec.json.encode(openapi.build(config))
    app.state.sessions_dir = paths.sessions_dir(runtime_dir)
    app.state.playlist_watch = PlaylistWatch()
    return app


def _mqtt_bridge(config: Config, handle: SupervisorHandle, app: Starlette):
    """castd on its MQTT broker (castd/mqtt/), when one is configured: it sees every snapshot, and
    its control messages go to the supervisor like webhooks. aiomqtt is imported only then."""
    if not config.mqtt.host:
        return None
    from castd.mqtt.client import MqttBridge

    bridge = MqttBridge(config, handle, app.state.allowlist, app.state.sessions_dir)
    handle.on_status.append(bridge.on_status)
    bridge.start()
    return bridge


async def _watch(handle: SupervisorHandle) -> None:
    """Restart the supervisor if it dies (the front end outlives any fault below it)."""
    while True:
        await asyncio.sleep(CHECK_INTERVAL)
        try:
            handle.check()
        except Exception:
            log.exception("supervisor watch failed")


async def _watchdog_pings(interval: float, handle: SupervisorHandle) -> None:
    """WATCHDOG=1 from the event loop itself, and only while the supervisor answers its pings (handle.chain_ok):
    if the loop wedges, or the supervisor stays silent through its own restart, systemd restarts castd."""
    while True:
        if handle.chain_ok():
            notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def _status_notifier():
    """A callback sending STATUS= to systemd when the state or the page changes."""
    last: list[tuple] = [()]

    def on_status(status: Status) -> None:
        key = (status.state, status.session, status.url)
        if key != last[0]:
            last[0] = key
            text = status.state if not status.url else f"{status.state}: {scrub(status.url)}"
            notify(f"STATUS={text}")

    return on_status


async def _start_demo(handle: SupervisorHandle, config: Config) -> None:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    url = f"http://{host}:{config.port}/demo"
    if not Allowlist.parse(config.allowlist).allows_url(url):
        log.warning("the demo URL is not on the allowlist; the browser will block it", url=url)
    await asyncio.sleep(0.3)
    try:
        ack = await handle.command(Start(id=new_command_id(), url=url, quality=config.quality))
    except SupervisorUnavailable as exc:
        log.error("could not start the demo", error=str(exc))
        return
    if ack.session is None:
        log.error("could not start the demo", error=ack.error)
        return
    base = f"http://{host}:{config.port}"
    log.info("demo cast started", session=ack.session, url=url)
    preview = f"{base}/" + ("#token=YOUR_TOKEN" if config.token else "")
    print(f"\ncastd is casting its demo dashboard.\n  preview: {preview}   (the picture, the state, a Stop button)\n"
          f"  status:  {base}/status\n"
          f"  stream:  {base}{paths.stream_path(ack.session)}   (open it in VLC, mpv or ffplay)\n"
          f"  stop:    curl -X POST {base}/stop\n", flush=True)
