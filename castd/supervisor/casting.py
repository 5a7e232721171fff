"""The supervisor's side of casting: what the session wants from its devices, the cast worker process
that talks to them (restarted when it dies), and what the devices' reports mean for the session.

The supervisor calls begin() when a session starts (the worker connects and launches the app while the
encoder warms up), stream_ready() at the first segment (the LOAD), end() when the session ends, and
poll() every turn of its loop. poll() returns the reasons when the viewer took every device back
(stopped from the TV or a phone, another app): the session then ends, and castd does not cast again.
"""

from __future__ import annotations

import time

import msgspec

from castd.cast.messages import CastStop, CastTarget, CastWant, DeviceReport
from castd.config import Config
from castd.logs import log
from castd.protocol import CastDevice, CastSection
from castd.supervisor.backoff import Backoff
from castd.supervisor.cast_process import CastProcess

USER_STATES = ("user_stopped", "other_app")
STOP_WAIT = 30.0  # a stop not confirmed by then is forgotten (the worker tried; the device is away)
WORKER_IDLE_EXIT = 60.0  # with nothing to cast or stop for this long, the worker exits
MAX_WORKER_CRASHES = 10  # within CRASH_WINDOW: stop restarting it for this session
CRASH_WINDOW = 300.0


class _Cast(msgspec.Struct, kw_only=True):
    session: str
    mode: str
    title: str
    devices: list[str]
    stream_path: str | None = None
    page_url: str | None = None


class Casting:  # pylint: disable=too-many-instance-attributes
    def __init__(self, config: Config) -> None:
        self.config = config
        self.worker: CastProcess | None = None
        self.current: _Cast | None = None
        self.devices: dict[str, CastDevice] = {}
        self.app_sessions: dict[tuple[str, str], str | None] = {}  # (session, spec) -> castd's receiver session
        self.stopping: dict[str, tuple[list[str], float]] = {}  # session -> (specs not yet stopped, deadline)
        self.backoff = Backoff(first=0.5, cap=30.0, healthy_after=60.0)
        self.restart_at: float | None = None
        self.crashes: list[float] = []
        self.worker_restarts = 0
        self.idle_since = time.monotonic()
        self.given_up: str | None = None  # session for which the worker crashed too often
        self.changed = False  # a report changed the status: push a snapshot

    # ---- what the supervisor wants ----------------------------------------------------------
    def begin(self, session: str, mode: str, devices: list[str], title: str, page_url: str | None = None) -> None:
        if self.current is not None and self.current.session != session:
            self.end()
        taken = {spec.casefold() for spec in devices}
        for old, (specs, deadline) in list(self.stopping.items()):  # the new session takes these over:
            self.stopping[old] = ([s for s in specs if s.casefold() not in taken], deadline)  # no stop there
        if not devices:
            return
        self.current = _Cast(session=session, mode=mode, title=title, devices=list(devices),
                             page_url=page_url if mode == "direct" else None)
        self.devices = {spec: CastDevice(device=spec, updated_at=time.time()) for spec in devices}
        self.crashes, self.given_up = [], None
        self._want()

    def stream_ready(self, session: str, stream_path: str) -> None:
        """The stream has its first segment: LOAD it (once per session; a page switch changes nothing)."""
        cast = self.current
        if cast is None or cast.session != session or cast.mode != "hls" or cast.stream_path == stream_path:
            return
        cast.stream_path = stream_path
        log.info("stream ready; casting", session=session, devices=", ".join(cast.devices))
        self._want()

    def switch_page(self, session: str, page_url: str) -> None:
        """Direct mode: the device must load the new page itself."""
        cast = self.current
        if cast is not None and cast.session == session and cast.mode == "direct" and cast.page_url != page_url:
            cast.page_url = page_url
            self._want()

    def end(self) -> None:
        """Stop the media and quit castd's app on the session's devices (where they still show it)."""
        cast, self.current = self.current, None
        self.devices = {}
        if cast is None:
            return
        if self.worker is not None:
            for report in self.worker.messages():  # an app launched a moment ago must be known
                self._on_report(report)
        targets = self._targets(cast.session, cast.devices)
        if self.worker is None:  # a fresh worker needs to know what to quit; without a hint there is nothing
            targets = [t for t in targets if t.app_session]
        if not targets:
            self._forget(cast.session)
            return
        self.stopping[cast.session] = ([t.spec for t in targets], time.monotonic() + STOP_WAIT)
        self.given_up = None
        self.changed = True
        self._send(CastStop(session=cast.session, devices=targets))

    # ---- the worker ----------------------------------------------------------------------------
    def _targets(self, session: str, specs: list[str]) -> list[CastTarget]:
        return [CastTarget(spec=spec, app_session=self.app_sessions.get((session, spec.casefold())))
                for spec in specs]

    def _wanted_devices(self, cast: _Cast) -> list[str]:
        """The session's devices castd may still act on: never those the viewer took back (a restarted
        worker would otherwise find castd's idle app there and LOAD again)."""
        return [spec for spec in cast.devices
                if spec not in self.devices or self.devices[spec].state not in USER_STATES]

    def _want(self) -> None:
        cast = self.current
        if cast is None:
            return
        self._send(CastWant(session=cast.session, mode=cast.mode, title=cast.title,
                            devices=self._targets(cast.session, self._wanted_devices(cast)),
                            stream_path=cast.stream_path, page_url=cast.page_url))

    def _send(self, command) -> None:
        if self.given_up is not None and self.given_up == getattr(command, "session", None):
            return
        if self.worker is None and self.restart_at is None:
            self._spawn()
            return  # _spawn sends the whole wanted state
        if self.worker is not None:
            self.worker.send(command)

    def _spawn(self) -> None:
        self.restart_at = None
        self.worker = CastProcess(self.config)
        self.changed = True
        log.info("cast worker started", pid=self.worker.pid)
        for session, (specs, _) in self.stopping.items():
            self.worker.send(CastStop(session=session, devices=self._targets(session, specs)))
        self._want_now()

    def _want_now(self) -> None:
        cast = self.current
        if cast is not None and self.worker is not None:
            self.worker.send(CastWant(session=cast.session, mode=cast.mode, title=cast.title,
                                      devices=self._targets(cast.session, self._wanted_devices(cast)),
                                      stream_path=cast.stream_path, page_url=cast.page_url))

    def waitables(self) -> list:
        return [self.worker.conn, self.worker.sentinel] if self.worker is not None else []

    def poll(self) -> list[str] | None:
        """Read the worker's reports, restart it if it died; the viewer's reasons when the session is over."""
        now = time.monotonic()
        worker = self.worker
        if worker is not None:
            for report in worker.messages():
                self._on_report(report)
            if not worker.alive():
                self._worker_died(worker, now)
        elif self.restart_at is not None and now >= self.restart_at:
            self.worker_restarts += 1
            self._spawn()
        for session, (specs, deadline) in list(self.stopping.items()):
            if not specs or now > deadline:
                if specs:
                    log.warning("cast stop not confirmed; giving up on it", session=session, devices=", ".join(specs))
                del self.stopping[session]
                self._forget(session)
                self.changed = True
        if self.current is not None or self.stopping:
            self.idle_since = now
        elif self.worker is not None and now - self.idle_since > WORKER_IDLE_EXIT:
            self._end_worker()
        return self._viewer_verdict()

    def _on_report(self, report: DeviceReport) -> None:
        spec = report.device.device
        self.app_sessions[(report.session, spec.casefold())] = report.app_session
        cast = self.current
        if cast is not None and report.session == cast.session and spec in self.devices:
            self.devices[spec] = report.device
            self.changed = True
        pending = self.stopping.get(report.session)
        if pending is not None and report.device.state == "stopped" and spec in pending[0]:
            pending[0].remove(spec)
            self.changed = True
            log.info("cast stopped on the device", session=report.session, device=spec, note=report.device.reason)

    def _forget(self, session: str) -> None:
        for key in [k for k in self.app_sessions if k[0] == session]:
            del self.app_sessions[key]

    def _worker_died(self, worker: CastProcess, now: float) -> None:
        code = worker.end(grace=0)
        self.worker = None
        if now - worker.started_at > self.backoff.healthy_after:
            self.backoff.reset()
        self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW] + [now]
        if not self.current and not self.stopping:
            log.warning("cast worker exited", pid=worker.pid, exitcode=code)
            return
        if len(self.crashes) >= MAX_WORKER_CRASHES:
            log.error("cast worker keeps crashing; casting given up for this session", exitcode=code,
                      crashes=len(self.crashes))
            for spec, device in self.devices.items():
                self.devices[spec] = msgspec.structs.replace(
                    device, state="failed", retry_in=None, updated_at=time.time(),
                    reason=f"the cast worker crashed {len(self.crashes)} times in {CRASH_WINDOW:g}s")
            self.given_up = self.current.session if self.current is not None else None
            self.stopping.clear()
            self.changed = True
            return
        delay = self.backoff.next_delay()
        self.restart_at = now + delay
        log.warning("cast worker died; restarting it", pid=worker.pid, exitcode=code, restart_in=delay)
        for spec, device in self.devices.items():
            if device.state not in USER_STATES:
                self.devices[spec] = msgspec.structs.replace(device, reason="cast worker restarting",
                                                             updated_at=time.time())
        self.changed = True

    def _viewer_verdict(self) -> list[str] | None:
        """Every device is out of castd's hands, and the viewer did it on at least one: their reasons."""
        if self.current is None or not self.devices:
            return None
        devices = list(self.devices.values())
        done = all(d.state in USER_STATES or (d.state == "failed" and d.retry_in is None) for d in devices)
        if not done or not any(d.state in USER_STATES for d in devices):
            return None
        return [f"{d.device}: {d.reason or d.state}" for d in devices]

    def any_playing(self) -> bool:
        return any(d.state == "playing" for d in self.devices.values())

    def section(self, note: str | None) -> CastSection:
        specs = self.current.devices if self.current is not None else []
        return CastSection(devices=[self.devices[s] for s in specs if s in self.devices], note=note,
                           stopping=sum(len(specs) for specs, _ in self.stopping.values()),
                           worker_pid=self.worker.pid if self.worker is not None else None,
                           worker_restarts=self.worker_restarts)

    # ---- shutdown --------------------------------------------------------------------------------
    def shutdown(self, timeout: float) -> None:
        """End the session's cast, wait (up to `timeout`) until the devices confirm, then end the worker."""
        self.end()
        deadline = time.monotonic() + timeout
        while self.stopping and self.worker is not None and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.05)
        self._end_worker()

    def _end_worker(self) -> None:
        worker, self.worker = self.worker, None
        self.restart_at = None
        self.changed = True
        if worker is not None:
            code = worker.end(grace=2.0)
            log.debug("cast worker ended", pid=worker.pid, exitcode=code)
