"""A fake Google Cast device for tests: a TLS Cast v2 server on 127.0.0.1 that real pychromecast talks to.

All protocol work runs on one asyncio event loop in one background thread, so a connection's TLS
stream is only ever read and written from that thread. Media checks for LOAD (HTTP fetch + PyAV
decode) run in a small thread pool and post their result back to the loop. Public methods may be
called from any thread; recorded state is guarded by one re-entrant lock (`wait_for` waits on it).

Behaviour modelled on a real receiver:
- Virtual connections: a sender must CONNECT (urn:x-cast:com.google.cast.tp.connection) to a
  destination before that destination answers it. With `strict_connections=True` (the default)
  messages sent without one are dropped and listed in `.dropped`, as a device does; heartbeat PINGs
  are answered regardless.
- Replies echo the request's requestId; unsolicited status updates carry requestId 0 and destination
  "*" and go to every sender connected to that destination.
- App transportId == sessionId (a fresh UUID per launch). When an app stops, every sender connected
  to its transport receives a CLOSE from that transport.
- LOAD: the previous media session ends with IDLE/INTERRUPTED, the contentId is fetched and checked
  (see hlscheck.py); success -> MEDIA_STATUS BUFFERING (the LOAD reply) then PLAYING (or PAUSED if
  autoplay is false); failure -> LOAD_FAILED (with itemId and detailedErrorCode, so pychromecast's
  MediaStatusListener.load_media_failed fires) then MEDIA_STATUS IDLE/ERROR. A newer LOAD while one
  is being checked answers the older one with LOAD_CANCELLED.
- After a session reaches IDLE it is gone: MEDIA GET_STATUS answers `status: []`, and commands that
  name its mediaSessionId get INVALID_REQUEST / INVALID_MEDIA_SESSION_ID.
- The device keeps playing when senders disconnect (drop_connections), as a real one does.

Two media engines. The default (fast) one checks a LOAD by fetching and decoding one segment and then
plays a clock. `engine="shaka4"` (or any line in glass.LINES: "shaka49", "shaka415", "shaka5") plays
what it is LOADed in the real Shaka Player in headless Chromium (engine.py, tests/glass) and reports
MEDIA_STATUS from that player's state:
currentTime, BUFFERING/PLAYING/PAUSED, IDLE/ERROR on a Shaka error; faults can freeze that player.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import copy
import ipaddress
import logging
import ssl
import struct
import threading
import time
import uuid as uuid_mod
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from . import protocol as P
from .engine import LoadOutcome, Reading, ShakaEngine
from .hlscheck import Fetch, MediaCheck, check_media
from .tlscert import server_context

_LOGGER = logging.getLogger("fakecast")
T = TypeVar("T")

SUPPORTED_MEDIA_COMMANDS = 12303  # pause, seek, stream volume/mute, edit tracks, playback rate


@dataclass
class Envelope:
    """One message as received, with its routing fields."""

    conn: int
    source_id: str
    destination_id: str
    namespace: str
    payload: dict


@dataclass
class _Conn:
    id: int
    writer: asyncio.StreamWriter
    peer: Any
    virtual: set[tuple[str, str]] = field(default_factory=set)  # (sender id, destination id)
    tasks: list[asyncio.Task] = field(default_factory=list)
    outbox: collections.deque = field(default_factory=collections.deque)  # (due time, frame)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _App:
    app_id: str
    display_name: str
    namespaces: list[str]
    session_id: str
    transport_id: str
    status_text: str = ""


@dataclass
class _Media:
    media_session_id: int
    item_id: int
    media: dict
    autoplay: bool
    state: str = "IDLE"
    idle_reason: str | None = None
    position: float = 0.0
    since: float = field(default_factory=time.monotonic)
    volume: dict = field(default_factory=lambda: {"level": 1.0, "muted": False})
    generation: int = 0
    engine_time: float | None = None  # the Shaka engine's currentTime, when an engine plays it
    clock_stopped: bool = False  # the fast engine's "clock" freeze: PLAYING, currentTime still

    def current_time(self) -> float:
        if self.engine_time is not None:
            return self.engine_time
        if self.state == "PLAYING" and not self.clock_stopped:
            return self.position + (time.monotonic() - self.since)
        return self.position


@dataclass
class _PendingLoad:
    generation: int
    session: _Media
    conn: _Conn
    sender: str
    request_id: int


class FakeCastDevice:
    """A fake Cast device. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        name: str = "Fake TV",
        model: str = "Chromecast",
        uuid: uuid_mod.UUID | str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        validate_media: bool = True,
        require_cors: bool = True,
        require_audio: bool = False,
        strict_connections: bool = True,
        ping_interval: float | None = 5.0,
        latency: float = 0.02,
        playing_delay: float = 0.05,
        fetch_timeout: float = 5.0,
        engine: str | None = None,
        engine_config: str | None = None,
    ) -> None:
        if host == "localhost":
            host = "127.0.0.1"
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"FakeCastDevice only listens on loopback addresses, not {host!r}")
        self.name = name
        self.model = model
        self.uuid = uuid_mod.UUID(str(uuid)) if uuid is not None else uuid_mod.uuid4()
        self.host = host
        self.port = port
        self.validate_media = validate_media
        self.require_cors = require_cors
        self.require_audio = require_audio
        self.strict_connections = strict_connections
        self.ping_interval = ping_interval
        self.latency = latency
        self.playing_delay = playing_delay
        self.fetch_timeout = fetch_timeout
        self.engine_line = engine  # None: the fast engine (fetch + decode); a glass.LINES name: Shaka Player
        self.engine_config = engine_config
        self._engine: ShakaEngine | None = None

        self._cond = threading.Condition(threading.RLock())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._advertiser = None
        self._handler_tasks: set[asyncio.Task] = set()
        self._timers: set[asyncio.TimerHandle] = set()

        # device state (mutated on the loop thread with the lock held)
        self._conns: dict[int, _Conn] = {}
        self._conn_seq = 0
        self._total_connections = 0
        self._app: _App | None = None
        self._media: _Media | None = None
        self._pending: _PendingLoad | None = None
        self._media_seq = 0
        self._item_seq = 0
        self._generation = 0
        self._last_state: str | None = None
        self._last_idle_reason: str | None = None
        self._volume = {"controlType": "attenuation", "level": 1.0, "muted": False, "stepInterval": 0.05}
        self._standby = False  # isStandBy (HDMI-CEC): the TV is off
        self._active_input = True  # isActiveInput: the TV shows this device's input
        self._cec = True  # a LAUNCH wakes the TV and switches its input (what HA's cast turn_on relies on)
        self._volume_log: list[dict] = []  # every SET_VOLUME received (receiver namespace), in order

        # fault switches
        self._heartbeat_stopped = False
        self._switched_off = False
        self._fail_next_load = False
        self._fail_next_launch: str | None = None
        self._ssl_context: ssl.SSLContext | None = None

        # records
        self._messages: list[tuple[str, dict]] = []
        self._envelopes: list[Envelope] = []
        self._sent: list[tuple[int, str, dict]] = []
        self._dropped: list[tuple[str, dict, str]] = []
        self._loads: list[dict] = []
        self._load_results: list[MediaCheck] = []
        self._dashcast_loads: list[dict] = []
        self._fetches: list[Fetch] = []
        self._pongs = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeCastDevice":
        if self._thread is not None:
            raise RuntimeError("already started")
        ctx = server_context()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="fakecast-load")
        self._thread = threading.Thread(target=self._run_loop, name=f"fakecast-{self.name}", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._listen(ctx), loop).result(10)
            if self.engine_line is not None:
                self._engine = ShakaEngine(self.engine_line, self._engine_event(self._engine_reading),
                                           self._engine_event(self._engine_loaded), self.engine_config)
        except BaseException:
            self.stop()
            raise
        _LOGGER.debug("fake cast device %r listening on %s:%s", self.name, self.host, self.port)
        return self

    def stop(self) -> None:
        """Stop serving, close every socket, join every thread, end the engine's Chromium. Idempotent."""
        self.unadvertise()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            except Exception:
                _LOGGER.exception("fakecast shutdown")
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._thread = None

    def __enter__(self) -> "FakeCastDevice":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_loop(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _listen(self, ctx: ssl.SSLContext) -> None:
        self._ssl_context = ctx
        self._server = await asyncio.start_server(
            self._on_client, self.host, self.port, ssl=ctx, ssl_handshake_timeout=5.0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _set_listening(self, listening: bool) -> int:
        """Listen again (returns 0), or stop listening and abort every open sender connection
        (returns how many). Since Python 3.12 `Server.wait_closed()` waits until every connection
        the server accepted has closed (3.11 returned at once), so a device that is switched off
        must end its connections before it waits, or it waits forever."""
        if listening:
            self._switched_off = False
            if self._server is None:
                assert self._ssl_context is not None
                await self._listen(self._ssl_context)
            return 0
        self._switched_off = True
        server, self._server = self._server, None
        if server is not None:
            server.close()  # no new connections (ECONNREFUSED) ...
        dropped = self._abort_connections()  # ... and the open ones die with the device
        if server is not None:
            await server.wait_closed()
        return dropped

    def _abort_connections(self) -> int:
        with self._cond:
            conns = list(self._conns.values())
        for conn in conns:
            conn.writer.transport.abort()
        return len(conns)

    async def _shutdown(self) -> None:
        self._switched_off = True
        if self._server is not None:
            self._server.close()
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()
        with self._cond:
            conns = list(self._conns.values())
            self._pending = None
        for conn in conns:
            conn.writer.transport.abort()
            for task in conn.tasks:
                task.cancel()
        # Aborted transports end their handlers (EOF); cancel whatever is still running after that.
        tasks = [t for t in self._handler_tasks if not t.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=3)
        await asyncio.sleep(0)  # let transports run their connection_lost callbacks
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # ------------------------------------------------------------------ connection identity

    def cast_info_tuple(self) -> tuple[str, int, uuid_mod.UUID, str, str]:
        """(host, port, uuid, model, name) for pychromecast.get_chromecast_from_host.

        pychromecast makes such a device a cast *group* (cast_type "group") because port != 8009.
        """
        return (self.host, self.port, self.uuid, self.model, self.name)

    def cast_info(self, cast_type: str = "cast", manufacturer: str = "Google Inc."):
        """A pychromecast CastInfo with cast_type preset, for pychromecast.Chromecast(cast_info=...).

        Presetting cast_type skips pychromecast's get_cast_type(), which would call this a group
        (port != 8009) or, on port 8009, try https://<host>:8443/setup/eureka_info.
        """
        from pychromecast.models import CastInfo, HostServiceInfo

        return CastInfo(
            {HostServiceInfo(self.host, self.port)},
            self.uuid,
            self.model,
            self.name,
            self.host,
            self.port,
            cast_type,
            manufacturer,
        )

    # ------------------------------------------------------------------ mDNS

    def advertise(self, zeroconf_instance=None):
        """Announce this device as _googlecast._tcp.local. on 127.0.0.1 (own Zeroconf unless given)."""
        from .mdns import Advertiser, service_info

        if self._thread is None:
            raise RuntimeError("start() the device before advertise()")
        if self._advertiser is None:
            info = service_info(name=self.name, model=self.model, uuid=self.uuid, host=self.host, port=self.port)
            self._advertiser = Advertiser(info, zeroconf_instance)
        return self._advertiser.info

    def unadvertise(self) -> None:
        adv, self._advertiser = self._advertiser, None
        if adv is not None:
            adv.close()

    # ------------------------------------------------------------------ recorded state (any thread)

    def _snap(self, fn: Callable[[], T]) -> T:
        with self._cond:
            return fn()

    @property
    def messages(self) -> list[tuple[str, dict]]:
        """(namespace, payload) of every message received, in order (heartbeats included)."""
        return self._snap(lambda: list(self._messages))

    @property
    def envelopes(self) -> list[Envelope]:
        """Every message received with connection id, source and destination ids."""
        return self._snap(lambda: list(self._envelopes))

    @property
    def sent(self) -> list[tuple[int, str, dict]]:
        """(connection id, namespace, payload) of every message the fake wrote."""
        return self._snap(lambda: list(self._sent))

    @property
    def dropped(self) -> list[tuple[str, dict, str]]:
        """(namespace, payload, reason) of messages ignored, e.g. sent without a virtual connection."""
        return self._snap(lambda: list(self._dropped))

    @property
    def loads(self) -> list[dict]:
        """Payloads of every media LOAD received."""
        return self._snap(lambda: copy.deepcopy(self._loads))

    @property
    def load_results(self) -> list[MediaCheck]:
        """The fake's check of each validated LOAD (fetches, codec, size, audio, error)."""
        return self._snap(lambda: list(self._load_results))

    @property
    def fetches(self) -> list[Fetch]:
        """Every HTTP request the fake made while checking LOADs."""
        return self._snap(lambda: list(self._fetches))

    @property
    def dashcast_loads(self) -> list[dict]:
        """Payloads received on the DashCast namespace (url, force, reload, reload_time)."""
        return self._snap(lambda: copy.deepcopy(self._dashcast_loads))

    @property
    def current_app(self) -> str | None:
        return self._snap(lambda: self._app.app_id if self._app else None)

    @property
    def app_display_name(self) -> str | None:
        return self._snap(lambda: self._app.display_name if self._app else None)

    @property
    def session_id(self) -> str | None:
        return self._snap(lambda: self._app.session_id if self._app else None)

    @property
    def transport_id(self) -> str | None:
        return self._snap(lambda: self._app.transport_id if self._app else None)

    @property
    def media_session_id(self) -> int | None:
        return self._snap(lambda: self._media.media_session_id if self._media else None)

    @property
    def player_state(self) -> str | None:
        """PLAYING/PAUSED/BUFFERING of the live session; "LOADING" while a LOAD is being checked;
        after a session ended, its last state (IDLE); None before any LOAD."""

        def get() -> str | None:
            if self._pending is not None:
                return "LOADING"
            if self._media is not None:
                return self._media.state
            return self._last_state

        return self._snap(get)

    @property
    def player(self):
        """The Shaka engine's last reading (a glass.PlayerState), None with the fast engine or before a LOAD."""
        return self._engine.last if self._engine is not None else None

    def wait_colour(self, rgb: tuple[int, int, int], timeout: float = 30.0, after: float = 0.0, tolerance: int = 36):
        """The first frame of colour `rgb` the engine's player presented at wall time >= `after`."""
        from glass import close_to  # pylint: disable=import-outside-toplevel

        if self._engine is None:
            raise RuntimeError("wait_colour needs a Shaka engine (FakeCastDevice(engine='shaka4'))")

        def seen():
            state = self._engine.last if self._engine is not None else None
            return next((c for c in (state.colours if state else [])
                         if c.t >= after and close_to(c.rgb, rgb, tolerance)), None)

        try:
            return self.wait_for(seen, timeout, what=f"the player presents {rgb}")
        except TimeoutError as exc:
            state = self._engine.last if self._engine is not None else None
            recent = [(c.rgb, round(c.t - after, 2)) for c in (state.colours[-6:] if state else [])]
            raise TimeoutError(f"{exc}; last colours presented (rgb, seconds after `after`): {recent}; "
                               f"now {state.colour if state else None}") from None

    @property
    def idle_reason(self) -> str | None:
        return self._snap(lambda: self._media.idle_reason if self._media else self._last_idle_reason)

    @property
    def volume(self) -> dict:
        return self._snap(lambda: dict(self._volume))

    @property
    def connections(self) -> int:
        """Number of currently open sender TCP connections."""
        return self._snap(lambda: len(self._conns))

    @property
    def total_connections(self) -> int:
        """Number of sender TCP connections accepted since start."""
        return self._snap(lambda: self._total_connections)

    @property
    def pongs(self) -> int:
        return self._snap(lambda: self._pongs)

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, what: str | None = None) -> T:
        """Wait until predicate() is truthy and return its value; TimeoutError otherwise.

        Re-evaluated on every state change of the fake and at least every 20 ms, so it may also
        look at other objects (a pychromecast client, a listener's list).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tail = [(ns.rsplit(".", 1)[-1], p.get("type")) for ns, p in self._messages[-8:]]
                    raise TimeoutError(
                        f"fakecast: timed out after {timeout}s waiting for {what or predicate!r}; "
                        f"player_state={self.player_state} app={self.current_app} "
                        f"connections={len(self._conns)} last received={tail}"
                    )
                self._cond.wait(min(remaining, 0.02))

    # ------------------------------------------------------------------ fault injection (any thread)

    def _call(self, fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
        """Run fn(*args) on the loop thread with the lock held; return its result."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("FakeCastDevice is not running")
        if threading.current_thread() is self._thread:
            return self._locked(fn, *args)
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(self._locked(fn, *args))
            except BaseException as exc:
                fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._cond:
            try:
                return fn(*args)
            finally:
                self._cond.notify_all()

    def drop_connections(self, graceful: bool = False) -> int:
        """Close every sender connection (abort the TCP stream; with graceful=True send TLS
        close_notify first). Keeps listening, so senders can reconnect. Returns how many closed."""

        def close_gracefully() -> int:
            conns = list(self._conns.values())
            for conn in conns:
                conn.writer.close()
            return len(conns)

        return self._call(close_gracefully if graceful else self._abort_connections)

    def refuse_connections(self, refuse: bool = True) -> int:
        """Switch the device off (refuse=True): stop listening, so connect() gets ECONNREFUSED, and
        abort every open sender connection; returns how many were open. refuse=False switches it
        back on, listening on the same port (returns 0). What it plays is kept either way."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("FakeCastDevice is not running")
        return asyncio.run_coroutine_threadsafe(self._set_listening(not refuse), loop).result(10)

    def stop_heartbeat(self, stopped: bool = True) -> None:
        """Stop (or resume) answering PINGs and sending our own PINGs."""
        self._call(setattr, self, "_heartbeat_stopped", stopped)

    def fail_next_load(self, fail: bool = True) -> None:
        """Make the next media LOAD fail with LOAD_FAILED whatever its URL."""
        self._call(setattr, self, "_fail_next_load", fail)

    def fail_next_launch(self, reason: str | None = "NOT_FOUND") -> None:
        """Answer the next LAUNCH with LAUNCH_ERROR(reason); None clears it."""
        self._call(setattr, self, "_fail_next_launch", reason)

    def stop_from_remote(self, reason: str = "CANCELLED", quit_app: bool = False) -> bool:
        """The person pressed stop on the TV remote: push MEDIA_STATUS IDLE with idleReason `reason`
        (CANCELLED, INTERRUPTED, FINISHED, ERROR) to every connected sender. With quit_app=True the
        receiver app then exits as well. Returns False if nothing was playing or loading."""
        if reason not in ("CANCELLED", "INTERRUPTED", "FINISHED", "ERROR"):
            raise ValueError(f"idleReason must be CANCELLED, INTERRUPTED, FINISHED or ERROR, not {reason!r}")

        def run() -> bool:
            done = False
            if self._pending is not None:
                self._cancel_pending()
                done = True
            if self._media is not None and self._media.state != "IDLE":
                self._end_media(reason, None)
                done = True
            if quit_app and self._app is not None:
                self._stop_app()
                self._broadcast_receiver_status()
                done = True
            return done

        return self._call(run)

    def switch_app(
        self, app_id: str = P.APP_YOUTUBE, display_name: str = "YouTube", namespaces: list[str] | None = None
    ) -> str:
        """Another sender (or the remote) starts another app: the current app and its media session
        end (senders get CLOSE on its transport), and RECEIVER_STATUS announces the new app with a new
        sessionId. Returns the new sessionId."""

        def run() -> str:
            self._stop_app()
            app = self._start_app(app_id, display_name, namespaces)
            self._broadcast_receiver_status()
            return app.session_id

        return self._call(run)

    def quit_app(self, idle_screen: bool = False) -> bool:
        """The app on screen quits by itself (the person's film ended, the timer rang out): its media
        ends, senders on its transport get CLOSE, and RECEIVER_STATUS shows no app, or the Backdrop idle
        screen with idle_screen=True. Returns False if no app ran."""

        def run() -> bool:
            had = self._app is not None
            self._stop_app()
            if idle_screen:
                self._start_app(P.APP_BACKDROP)
            self._broadcast_receiver_status()
            return had

        return self._call(run)

    def show_idle_screen(self) -> str:
        """Ambient mode / the photo frame covers whatever ran (castd's app included): Backdrop starts."""
        return self.switch_app(P.APP_BACKDROP, "Backdrop")

    def set_standby(self, standby: bool, active_input: bool | None = None, cec: bool | None = None) -> None:
        """The TV goes to standby (or wakes), or another input is chosen (active_input=False); every sender
        hears RECEIVER_STATUS. cec=False: a LAUNCH no longer wakes it (a TV without HDMI-CEC)."""

        def run() -> None:
            self._standby = standby
            if active_input is not None:
                self._active_input = active_input
            if cec is not None:
                self._cec = cec
            self._broadcast_receiver_status()

        self._call(run)

    @property
    def standby(self) -> bool:
        return self._snap(lambda: self._standby)

    @property
    def volume_log(self) -> list[dict]:
        """Every receiver SET_VOLUME's `volume` object, in order."""
        return self._snap(lambda: copy.deepcopy(self._volume_log))

    def set_volume(self, level: float | None = None, muted: bool | None = None) -> None:
        """The person turns the volume (or mutes) on the remote; every sender hears RECEIVER_STATUS."""

        def run() -> None:
            if level is not None:
                self._volume["level"] = level
            if muted is not None:
                self._volume["muted"] = muted
            self._broadcast_receiver_status()

        self._call(run)

    def freeze_player(self, how: str | None = "segments") -> None:
        """The receiver's player freezes until the next LOAD. "segments": with the Shaka engine every
        segment fetch hangs, so the buffer runs dry and the player sits in BUFFERING with nothing buffered,
        as Shaka 4.16 did after an encoder restart (issue 11); the fast engine goes BUFFERING at once.
        "clock" (fast engine only): the player says PLAYING while its currentTime stands still. A
        Shaka player cannot be held that way: playbackRate 0 is Shaka's own buffering switch, which it
        resets at its next buffering event. None thaws it."""
        if how not in ("segments", "clock", None):
            raise ValueError(f"freeze_player: 'segments', 'clock' or None, not {how!r}")
        if self._engine is not None:
            if how == "clock":
                raise ValueError("a Shaka player cannot be frozen with a still clock; use 'segments'")
            self._engine.freeze(how)
            return

        def run() -> None:
            media = self._media
            if media is None or media.state == "IDLE":
                return
            now = time.monotonic()
            media.position, media.since = media.current_time(), now
            media.clock_stopped = how == "clock"
            state = "BUFFERING" if how == "segments" else "PLAYING" if media.state == "BUFFERING" else media.state
            if state != media.state:
                media.state = state
                self._send_media_status(None, None, 0)

        self._call(run)

    def viewer_pause(self, paused: bool = True) -> bool:
        """The viewer presses pause (or play) on the remote: the player pauses and every sender hears
        PAUSED (PLAYING). Returns False if nothing was playing."""

        def run() -> bool:
            media = self._media
            if media is None or media.state == "IDLE":
                return False
            if self._engine is not None:
                self._engine.pause() if paused else self._engine.play()
            if paused:
                media.position, media.state = media.current_time(), "PAUSED"
            else:
                media.state = "PLAYING"
            media.since = time.monotonic()
            self._send_media_status(None, None, 0)
            return True

        return self._call(run)

    def push_receiver_status(self) -> None:
        """Send an unsolicited RECEIVER_STATUS to every sender connected to the platform."""
        self._call(self._broadcast_receiver_status)

    def push_media_status(self) -> None:
        """Send an unsolicited MEDIA_STATUS to every sender connected to the app's transport."""
        self._call(lambda: self._send_media_status(None, None, 0))

    # ------------------------------------------------------------------ socket handling (loop thread)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handler_tasks.add(task)
        if self._switched_off:  # its TLS handshake was under way when the device went off
            writer.transport.abort()
            self._handler_tasks.discard(task)
            return
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # Finish normally: on 3.11 the stream callback calls task.exception() and logs
            # a spurious traceback for a cancelled handler task.
            pass
        finally:
            self._handler_tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._cond:
            self._conn_seq += 1
            conn = _Conn(self._conn_seq, writer, writer.get_extra_info("peername"))
            self._conns[conn.id] = conn
            self._total_connections += 1
            self._cond.notify_all()
        _LOGGER.debug("conn %d from %s", conn.id, conn.peer)
        conn.tasks.append(asyncio.create_task(self._writer(conn)))
        if self.ping_interval:
            conn.tasks.append(asyncio.create_task(self._pinger(conn)))
        try:
            while True:
                header = await reader.readexactly(4)
                (size,) = struct.unpack(">I", header)
                if size > P.MAX_MESSAGE_SIZE:
                    _LOGGER.warning("conn %d: %d-byte message exceeds the Cast limit; closing", conn.id, size)
                    break
                body = await reader.readexactly(size)
                self._locked(self._dispatch, conn, body)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError) as exc:
            _LOGGER.debug("conn %d closed: %r", conn.id, exc)
        finally:
            for task in conn.tasks:
                task.cancel()
            with self._cond:
                self._conns.pop(conn.id, None)
                self._cond.notify_all()
            if not writer.is_closing():
                writer.close()

    async def _pinger(self, conn: _Conn) -> None:
        assert self.ping_interval
        while True:
            await asyncio.sleep(self.ping_interval)
            with self._cond:
                if self._heartbeat_stopped:
                    continue
                for sender in sorted({s for s, d in conn.virtual if d == P.PLATFORM_ID}):
                    self._send(conn, P.PLATFORM_ID, sender, P.NS_HEARTBEAT, {"type": "PING"})

    async def _writer(self, conn: _Conn) -> None:
        """Write queued frames in order, each no earlier than its due time (the device's latency)."""
        loop = asyncio.get_running_loop()
        while True:
            await conn.wakeup.wait()
            conn.wakeup.clear()
            while conn.outbox:
                due, frame = conn.outbox[0]
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                conn.outbox.popleft()
                if conn.writer.is_closing():
                    conn.outbox.clear()
                    break
                conn.writer.write(frame)

    def _send(self, conn: _Conn, source: str, destination: str, namespace: str, payload: dict) -> None:
        if conn.writer.is_closing():
            return
        frame = P.encode(source, destination, namespace, payload)
        if self.latency > 0 or conn.outbox:
            assert self._loop is not None
            conn.outbox.append((self._loop.time() + self.latency, frame))
            conn.wakeup.set()
        else:
            conn.writer.write(frame)
        self._sent.append((conn.id, namespace, payload))
        if namespace != P.NS_HEARTBEAT:
            _LOGGER.debug("conn %d -> %s %s: %s", conn.id, destination, namespace, payload)

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None

        def fire() -> None:
            self._timers.discard(handle)
            self._locked(fn, *args)

        handle = self._loop.call_later(delay, fire)
        self._timers.add(handle)

    # ------------------------------------------------------------------ message routing (loop thread, locked)

    def _dispatch(self, conn: _Conn, body: bytes) -> None:
        try:
            msg, payload = P.decode(body)
        except Exception:
            _LOGGER.warning("conn %d: undecodable CastMessage", conn.id)
            return
        ns, src, dst = msg.namespace, msg.source_id, msg.destination_id
        data = payload if payload is not None else {}
        self._messages.append((ns, data))
        self._envelopes.append(Envelope(conn.id, src, dst, ns, data))
        if ns != P.NS_HEARTBEAT:
            _LOGGER.debug("conn %d <- %s->%s %s: %s", conn.id, src, dst, ns, data)
        if payload is None:
            self._dropped.append((ns, data, "payload is not a JSON object"))
            return
        mtype = data.get("type")

        if ns == P.NS_CONNECTION:
            self._on_connection(conn, src, dst, mtype)
            return
        if ns == P.NS_HEARTBEAT:
            if mtype == "PING" and not self._heartbeat_stopped:
                self._send(conn, dst, src, P.NS_HEARTBEAT, {"type": "PONG"})
            elif mtype == "PONG":
                self._pongs += 1
            return
        if self.strict_connections and (src, dst) not in conn.virtual:
            self._dropped.append((ns, data, f"no virtual connection {src} -> {dst}"))
            return
        if dst == P.PLATFORM_ID:
            if ns == P.NS_RECEIVER:
                self._on_receiver(conn, src, data)
            else:
                self._dropped.append((ns, data, "namespace not handled by receiver-0"))
            return
        app = self._app
        if app is None or dst != app.transport_id:
            self._dropped.append((ns, data, f"no such transport {dst}"))
            return
        if ns not in app.namespaces:
            self._dropped.append((ns, data, f"app {app.app_id} does not speak {ns}"))
        elif ns == P.NS_MEDIA:
            self._on_media(conn, src, data)
        elif ns == P.NS_DASHCAST:
            self._dashcast_loads.append(data)
        else:
            self._dropped.append((ns, data, "namespace accepted but not modelled"))

    def _on_connection(self, conn: _Conn, src: str, dst: str, mtype: Any) -> None:
        if mtype == "CONNECT":
            known = dst == P.PLATFORM_ID or (self._app is not None and dst == self._app.transport_id)
            if known:
                conn.virtual.add((src, dst))
            else:
                # A device answers a CONNECT to a transport that does not exist (any more) with CLOSE.
                self._send(conn, dst, src, P.NS_CONNECTION, {"type": "CLOSE", "reasonCode": 5})
        elif mtype == "CLOSE":
            conn.virtual.discard((src, dst))

    # --- receiver namespace

    def _receiver_status(self, request_id: int) -> dict:
        status: dict[str, Any] = {
            "volume": dict(self._volume),
            "isActiveInput": self._active_input,
            "isStandBy": self._standby,
            "userEq": {},
        }
        if self._app is not None:
            app = self._app
            status["applications"] = [
                {
                    "appId": app.app_id,
                    "appType": "WEB",
                    "displayName": app.display_name,
                    "iconUrl": "",
                    "isIdleScreen": app.app_id in P.IDLE_SCREEN_APPS,
                    "launchedFromCloud": False,
                    "namespaces": [{"name": n} for n in app.namespaces],
                    "sessionId": app.session_id,
                    "statusText": app.status_text or app.display_name,
                    "transportId": app.transport_id,
                    "universalAppId": app.app_id,
                }
            ]
        return {"type": "RECEIVER_STATUS", "requestId": request_id, "status": status}

    def _broadcast_receiver_status(self, except_conn: _Conn | None = None) -> None:
        for conn in list(self._conns.values()):
            if conn is except_conn:
                continue
            if any(d == P.PLATFORM_ID for _, d in conn.virtual):
                self._send(conn, P.PLATFORM_ID, P.BROADCAST_ID, P.NS_RECEIVER, self._receiver_status(0))

    def _reply_receiver_status(self, conn: _Conn, src: str, request_id: int, broadcast: bool) -> None:
        self._send(conn, P.PLATFORM_ID, src, P.NS_RECEIVER, self._receiver_status(request_id))
        if broadcast:
            self._broadcast_receiver_status(except_conn=conn)

    def _on_receiver(self, conn: _Conn, src: str, data: dict) -> None:
        rid = data.get("requestId", 0)
        mtype = data.get("type")
        if mtype == "GET_STATUS":
            self._reply_receiver_status(conn, src, rid, broadcast=False)
        elif mtype == "LAUNCH":
            app_id = data.get("appId")
            if self._fail_next_launch is not None:
                reason, self._fail_next_launch = self._fail_next_launch, None
                self._send(conn, P.PLATFORM_ID, src, P.NS_RECEIVER,
                           {"type": "LAUNCH_ERROR", "reason": reason, "requestId": rid})
                return
            if not isinstance(app_id, str) or not app_id:
                self._send(conn, P.PLATFORM_ID, src, P.NS_RECEIVER,
                           {"type": "INVALID_REQUEST", "reason": "INVALID_COMMAND", "requestId": rid})
                return
            if self._app is None or self._app.app_id != app_id:
                self._stop_app()
                self._start_app(app_id)
            if self._cec:
                self._standby, self._active_input = False, True
            self._reply_receiver_status(conn, src, rid, broadcast=True)
        elif mtype == "STOP":
            session = data.get("sessionId")
            if session is not None and (self._app is None or session != self._app.session_id):
                self._send(conn, P.PLATFORM_ID, src, P.NS_RECEIVER,
                           {"type": "INVALID_REQUEST", "reason": "INVALID_SESSION_ID", "requestId": rid})
                return
            self._stop_app()
            self._reply_receiver_status(conn, src, rid, broadcast=True)
        elif mtype == "SET_VOLUME":
            vol = data.get("volume") or {}
            self._volume_log.append(dict(vol))
            if "level" in vol:
                self._volume["level"] = min(max(float(vol["level"]), 0.0), 1.0)
            if "muted" in vol:
                self._volume["muted"] = bool(vol["muted"])
            self._reply_receiver_status(conn, src, rid, broadcast=True)
        elif mtype == "GET_APP_AVAILABILITY":
            avail = {a: "APP_AVAILABLE" for a in data.get("appId") or []}
            self._send(conn, P.PLATFORM_ID, src, P.NS_RECEIVER,
                       {"responseType": "GET_APP_AVAILABILITY", "availability": avail, "requestId": rid})
        else:
            self._send(conn, P.PLATFORM_ID, src, P.NS_RECEIVER,
                       {"type": "INVALID_REQUEST", "reason": "INVALID_COMMAND", "requestId": rid})

    def _start_app(self, app_id: str, display_name: str | None = None, namespaces: list[str] | None = None) -> _App:
        known_name, known_ns = P.APP_INFO.get(app_id, (app_id, [P.NS_MEDIA]))
        session = str(uuid_mod.uuid4())
        self._app = _App(app_id, display_name or known_name,
                         list(namespaces if namespaces is not None else known_ns), session, session)
        return self._app

    def _stop_app(self) -> None:
        """The running app exits: its media session vanishes and its transport closes."""
        app, self._app = self._app, None
        if app is None:
            return
        if self._pending is not None:
            self._cancel_pending()
        if self._media is not None:
            self._last_state, self._last_idle_reason = "IDLE", None
            self._media = None
            if self._engine is not None:
                self._engine.unload()
        for conn in list(self._conns.values()):
            for src, dst in sorted(conn.virtual):
                if dst == app.transport_id:
                    conn.virtual.discard((src, dst))
                    self._send(conn, app.transport_id, src, P.NS_CONNECTION, {"type": "CLOSE", "reasonCode": 5})

    # --- media namespace

    def _media_status_entry(self, media: _Media) -> dict:
        entry: dict[str, Any] = {
            "mediaSessionId": media.media_session_id,
            "playbackRate": 1,
            "playerState": media.state,
            "currentTime": round(media.current_time(), 3),
            "supportedMediaCommands": SUPPORTED_MEDIA_COMMANDS,
            "volume": dict(media.volume),
            "activeTrackIds": [],
            "currentItemId": media.item_id,
            "repeatMode": "REPEAT_OFF",
            "media": copy.deepcopy(media.media),
        }
        if media.state == "IDLE":
            entry["idleReason"] = media.idle_reason
        return entry

    def _media_status(self, request_id: int, media: _Media | None) -> dict:
        return {
            "type": "MEDIA_STATUS",
            "requestId": request_id,
            "status": [self._media_status_entry(media)] if media is not None else [],
        }

    def _send_media_status(self, conn: _Conn | None, src: str | None, request_id: int,
                           media: _Media | None = None) -> None:
        """Reply to (conn, src) with request_id; broadcast the same status to everyone else on the transport."""
        app = self._app
        if app is None:
            return
        media = media if media is not None else self._media
        for other in list(self._conns.values()):
            if conn is not None and other is conn:
                if (src, app.transport_id) in other.virtual or not self.strict_connections:
                    self._send(other, app.transport_id, src or P.BROADCAST_ID, P.NS_MEDIA,
                               self._media_status(request_id, media))
            elif any(d == app.transport_id for _, d in other.virtual):
                self._send(other, app.transport_id, P.BROADCAST_ID, P.NS_MEDIA, self._media_status(0, media))

    def _media_error(self, conn: _Conn, src: str, rid: int, mtype: str, reason: str, **extra: Any) -> None:
        assert self._app is not None
        self._send(conn, self._app.transport_id, src, P.NS_MEDIA,
                   {"type": mtype, "reason": reason, "requestId": rid, **extra})

    def _on_media(self, conn: _Conn, src: str, data: dict) -> None:
        rid = data.get("requestId", 0)
        mtype = data.get("type")
        if mtype == "GET_STATUS":
            self._send_media_status_to(conn, src, rid)
            return
        if mtype == "LOAD":
            self._on_load(conn, src, data)
            return
        media = self._media
        if media is None or media.state == "IDLE" or data.get("mediaSessionId") != media.media_session_id:
            self._media_error(conn, src, rid, "INVALID_REQUEST", "INVALID_MEDIA_SESSION_ID")
            return
        now = time.monotonic()
        if self._engine is not None and mtype in ("PLAY", "PAUSE"):
            self._engine.play() if mtype == "PLAY" else self._engine.pause()
        if mtype == "PLAY":
            if media.state != "PLAYING":
                media.state, media.since = "PLAYING", now
        elif mtype == "PAUSE":
            media.position, media.state, media.since = media.current_time(), "PAUSED", now
        elif mtype == "SEEK":
            media.position = float(data.get("currentTime", media.current_time()))
            media.since = now
            resume = data.get("resumeState")
            if resume == "PLAYBACK_START":
                media.state = "PLAYING"
            elif resume == "PLAYBACK_PAUSE":
                media.state = "PAUSED"
        elif mtype == "STOP":
            self._end_media("CANCELLED", (conn, src, rid))
            return
        elif mtype == "SET_VOLUME":
            media.volume.update({k: v for k, v in (data.get("volume") or {}).items() if k in ("level", "muted")})
        elif mtype in ("SET_PLAYBACK_RATE", "EDIT_TRACKS_INFO", "QUEUE_UPDATE"):
            pass
        else:
            self._media_error(conn, src, rid, "INVALID_REQUEST", "INVALID_COMMAND")
            return
        self._send_media_status(conn, src, rid)

    def _send_media_status_to(self, conn: _Conn, src: str, rid: int) -> None:
        assert self._app is not None
        media = self._media if self._media is not None and self._media.state != "IDLE" else None
        self._send(conn, self._app.transport_id, src, P.NS_MEDIA, self._media_status(rid, media))

    def _end_media(self, reason: str, reply_to: tuple[_Conn, str, int] | None) -> None:
        media = self._media
        if media is None:
            return
        if self._engine is not None and reason != "ERROR":
            self._engine.unload()  # stopped, or replaced by a new LOAD (which loads over it anyway)
        media.position = media.current_time()
        media.state, media.idle_reason = "IDLE", reason
        if reply_to is not None:
            self._send_media_status(reply_to[0], reply_to[1], reply_to[2], media)
        else:
            self._send_media_status(None, None, 0, media)
        self._last_state, self._last_idle_reason = "IDLE", reason
        self._media = None

    def _cancel_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None or self._app is None:
            return
        if (pending.sender, self._app.transport_id) in pending.conn.virtual:
            self._send(pending.conn, self._app.transport_id, pending.sender, P.NS_MEDIA,
                       {"type": "LOAD_CANCELLED", "requestId": pending.request_id, "itemId": pending.session.item_id})

    def _on_load(self, conn: _Conn, src: str, data: dict) -> None:
        self._loads.append(copy.deepcopy(data))
        media_info = data.get("media") or {}
        if self._pending is not None:
            self._cancel_pending()
        if self._media is not None and self._media.state != "IDLE":
            self._end_media("INTERRUPTED", None)
        self._media_seq += 1
        self._item_seq += 1
        self._generation += 1
        session = _Media(
            media_session_id=self._media_seq,
            item_id=self._item_seq,
            media=copy.deepcopy(media_info),
            autoplay=data.get("autoplay", True) is not False,
            position=float(data.get("currentTime") or 0.0),
            generation=self._generation,
        )
        pending = _PendingLoad(self._generation, session, conn, src, data.get("requestId", 0))
        self._pending = pending
        if self._fail_next_load:
            self._fail_next_load = False
            result = MediaCheck(str(media_info.get("contentId")), error="fail_next_load() was set", error_code=104)
            self._load_results.append(result)
            self._load_finished(pending, result)
        elif self._engine is not None:  # the player is the check: it fetches, parses and plays
            self._engine.load(pending.generation, str(media_info.get("contentId")))
        elif not self.validate_media:
            self._load_finished(pending, MediaCheck(str(media_info.get("contentId")), ok=True))
        else:
            assert self._executor is not None and self._loop is not None
            loop = self._loop
            fut = self._executor.submit(
                check_media,
                str(media_info.get("contentId")),
                media_info,
                timeout=self.fetch_timeout,
                require_cors=self.require_cors,
                require_audio=self.require_audio,
                on_fetch=self._record_fetch,
            )

            def done(f: concurrent.futures.Future) -> None:
                if f.cancelled():
                    return
                try:
                    loop.call_soon_threadsafe(self._locked, self._checked, pending.generation, f.result())
                except RuntimeError:  # loop already closed: device stopped meanwhile
                    pass

            fut.add_done_callback(done)

    def _record_fetch(self, fetch: Fetch) -> None:  # worker thread
        with self._cond:
            self._fetches.append(fetch)
            self._cond.notify_all()

    def _checked(self, generation: int, result: MediaCheck) -> None:
        self._load_results.append(result)
        pending = self._pending
        if pending is None or pending.generation != generation:
            return  # superseded by a newer LOAD, a STOP or an app change
        if not result.ok:
            _LOGGER.info("fake receiver: LOAD of %s fails: %s", result.url, result.error)
        self._load_finished(pending, result)

    def _load_finished(self, pending: _PendingLoad, result: MediaCheck) -> None:
        self._pending = None
        app = self._app
        if app is None:
            return
        session = pending.session
        self._media = session
        can_reply = (pending.sender, app.transport_id) in pending.conn.virtual and pending.conn.id in self._conns
        if result.ok:
            session.state = "BUFFERING"
            self._send_media_status(pending.conn if can_reply else None, pending.sender, pending.request_id)
            if self._engine is None:  # the Shaka engine's readings say when it plays
                self._later(self.playing_delay, self._start_playing, session.media_session_id)
        elif result.hangs:
            session.state = "BUFFERING"  # and never a reply: the receiver hangs
            self._send_media_status(None, None, 0)
        else:
            if can_reply:
                self._send(
                    pending.conn,
                    app.transport_id,
                    pending.sender,
                    P.NS_MEDIA,
                    {
                        "type": "LOAD_FAILED",
                        "requestId": pending.request_id,
                        "itemId": session.item_id,
                        "detailedErrorCode": result.error_code or 104,
                        "reason": "GENERIC_LOAD_ERROR",
                        "customData": {"fakecast": result.error},
                    },
                )
            self._end_media("ERROR", None)

    def _start_playing(self, media_session_id: int) -> None:
        media = self._media
        if media is None or media.media_session_id != media_session_id or media.state != "BUFFERING":
            return
        media.state = "PLAYING" if media.autoplay else "PAUSED"
        media.since = time.monotonic()
        self._send_media_status(None, None, 0)


    # --- the Shaka engine (its readings arrive from its thread; handled here on the loop)

    def _engine_event(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        def post(event: Any) -> None:
            loop = self._loop
            try:
                if loop is not None:
                    loop.call_soon_threadsafe(self._locked, handler, event)
            except RuntimeError:  # loop closed: the device is stopping
                pass

        return post

    def _engine_loaded(self, outcome: LoadOutcome) -> None:
        pending = self._pending
        if pending is None or pending.generation != outcome.generation:
            return  # superseded by a newer LOAD, a STOP or an app change
        result = MediaCheck(pending.session.media.get("contentId", ""), ok=outcome.ok, error=outcome.error,
                            error_code=outcome.error_code)
        self._load_results.append(result)
        if not outcome.ok:
            _LOGGER.info("fake receiver: Shaka could not load %s: %s", result.url, result.error)
        self._load_finished(pending, result)

    def _engine_reading(self, reading: Reading) -> None:
        media = self._media
        if media is None or media.generation != reading.generation or media.state == "IDLE":
            return
        media.engine_time = reading.current_time
        if reading.player_state == "IDLE":
            _LOGGER.info("fake receiver: Shaka error %s; the session ends with IDLE/ERROR", reading.error_code)
            self._end_media("ERROR", None)
        elif reading.player_state != media.state:
            media.state = reading.player_state
            self._send_media_status(None, None, 0)  # a receiver tells its senders of every state change
