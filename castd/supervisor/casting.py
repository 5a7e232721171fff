"""The supervisor's side of casting: what the session wants from its devices, the cast worker process
that talks to them (restarted when it dies), and what the devices' reports mean for the session.

The supervisor calls begin() when a session starts (the worker connects and launches the app while the
encoder warms up), stream_ready() at the first segment (the LOAD), end() when the session ends, and
poll() every turn of its loop. poll() returns the reasons when the viewer took every device back
(stopped from the TV or a phone, another app): the session then ends, and castd does not cast again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from castd.cast.takeover import Act, Facts, Policy, Sharer
from castd.cast.messages import CastQuit, CastStop, CastTarget, CastWant, DeviceReport, WorkerCommand
from castd.children import exits
from castd.children.piped import Child
from castd.children.policy import RestartPolicy, RetryLater, Verdict
from castd.children.supervised import Exited, Run, Supervised
from castd.config import Config
from castd.logs import log
from castd.protocol import USER_STATES, CastDevice, CastSection, Mode
from castd.sharing import Sharing

STOP_WAIT = 30.0  # a stop not confirmed by then is forgotten (the worker tried; the device is away)
WORKER_IDLE_EXIT = 60.0  # with nothing to cast or stop for this long, the worker exits
MAX_WORKER_CRASHES = 10  # within CRASH_WINDOW: stop restarting it for this session
CRASH_WINDOW = 300.0
WORKER_GRACE = 3.0  # stopping media on the TVs may take a round trip or two

WorkerFactory = Callable[[Config], Child]


class _Cast(msgspec.Struct, kw_only=True):
    session: str
    mode: Mode
    title: str
    devices: list[str]
    stream_path: str | None = None
    page_url: str | None = None
    sharing: Sharing = Sharing()


class Casting:
    """What the session wants from its devices, and the one cast worker that does it.

    Invariants: at most one worker process (castd/children/supervised.py); the worker, when (re)started,
    is sent the whole wanted state (the current session and every unconfirmed stop), so a restart loses
    nothing; castd never casts again to a device the viewer took back during the session.
    """

    def __init__(self, config: Config, factory: WorkerFactory, clock: Callable[[], float],
                 wall: Callable[[], float]) -> None:
        self.config = config
        self.clock, self.wall = clock, wall
        policy = RestartPolicy(first=0.5, cap=30.0, healthy_after=60.0, max_crashes=MAX_WORKER_CRASHES,
                               window=CRASH_WINDOW)
        self.worker: Supervised[Child] = Supervised("cast worker", factory, policy, CastQuit(), clock, WORKER_GRACE)
        self.current: _Cast | None = None
        self.devices: dict[str, CastDevice] = {}
        # TVs a link waits on now because another app runs there (its last report said so; it asks the TV
        # every 2 s and reports any change): what a start's answer can already tell (known_waits)
        self.busy: dict[str, CastDevice] = {}  # spec.casefold() -> that report
        self.app_sessions: dict[tuple[str, str], str | None] = {}  # (session, spec) -> castd's receiver session
        self.stopping: dict[str, tuple[list[str], float]] = {}  # session -> (specs not yet stopped, deadline)
        self.worker_restarts = 0
        self.idle_since = clock()
        self.given_up: str | None = None  # session for which the worker crashed too often...
        self.retry = RetryLater(first=config.retry_seconds)  # ...until its next try (children/policy.py)
        self.retry_at: float | None = None
        self.spawned_at = 0.0
        self.closed = False  # castd is shutting down: no new worker
        self.upgraded = False  # the worker exited with exits.VERSION_MISMATCH: castd has to restart

    # ---- what the supervisor wants ----------------------------------------------------------
    def begin(self, session: str, mode: Mode, devices: list[str], title: str, page_url: str | None = None,
              sharing: Sharing = Sharing()) -> None:
        if self.current is not None and self.current.session != session:
            self.end()
        taken = {spec.casefold() for spec in devices}
        for old, (specs, deadline) in list(self.stopping.items()):  # the new session takes these over:
            self.stopping[old] = ([s for s in specs if s.casefold() not in taken], deadline)  # no stop there
        if not devices:
            return
        self.current = _Cast(session=session, mode=mode, title=title, devices=list(devices),
                             page_url=page_url if mode == "direct" else None, sharing=sharing)
        self.devices = {spec: CastDevice(device=spec, updated_at=self.wall()) for spec in devices}
        self.given_up, self.retry_at = None, None
        self.retry.reset()
        self.worker.policy.crashes = []
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

    def share(self, session: str, sharing: Sharing) -> None:
        """A page switch that changes how the session shares its TVs (a start with other sharing keys)."""
        cast = self.current
        if cast is not None and cast.session == session and cast.sharing != sharing:
            cast.sharing = sharing
            self._want()

    def end(self) -> None:
        """Stop the media and quit castd's app on the session's devices (where they still show it)."""
        cast, self.current = self.current, None
        self.devices = {}
        if cast is None:
            return
        child = self.worker.child
        if child is not None:
            for report in child.messages():  # an app launched a moment ago must be known
                self._on_report(report)
        targets = self._targets(cast.session, cast.devices)
        if child is None:  # a fresh worker needs to know what to quit; without a hint there is nothing
            targets = [t for t in targets if t.app_session]
        if not targets:
            self._forget(cast.session)
            return
        self.stopping[cast.session] = ([t.spec for t in targets], self.clock() + STOP_WAIT)
        self.given_up = None
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
        if cast is not None:
            self._send(self._want_message(cast))

    def _want_message(self, cast: _Cast) -> CastWant:
        return CastWant(session=cast.session, mode=cast.mode, title=cast.title,
                        devices=self._targets(cast.session, self._wanted_devices(cast)),
                        stream_path=cast.stream_path, page_url=cast.page_url, sharing=cast.sharing)

    def _send(self, command: WorkerCommand) -> None:
        if self.given_up is not None and self.given_up == getattr(command, "session", None):
            return
        child = self.worker.child
        if child is None:
            self._spawn_if_needed()  # a new worker is sent the whole wanted state
        elif self.worker.state is Run.RUNNING:
            child.send(command)
        # ending (idle exit): once it is reaped, poll() starts a new one with the whole state

    def _spawn_if_needed(self) -> None:
        if self.worker.child is not None or self.worker.restart_at is not None or self.closed:
            return
        if self.current is None and not self.stopping:
            return
        if self.current is not None and self.given_up == self.current.session and not self.stopping:
            return
        child = self.worker.spawn(self.config)
        self.spawned_at = self.clock()
        log.info("cast worker started", pid=child.pid)
        for session, (specs, _) in self.stopping.items():
            child.send(CastStop(session=session, devices=self._targets(session, specs)))
        cast = self.current
        if cast is not None and self.given_up != cast.session:
            child.send(self._want_message(cast))

    def waitables(self) -> list[Any]:
        return self.worker.waitables()

    def poll(self) -> list[str] | None:
        """Read the worker's reports, reap and restart it; the viewer's reasons when the session is over."""
        now = self.clock()
        child = self.worker.child
        if child is not None:
            for report in child.messages():
                self._on_report(report)
        exited = self.worker.poll()
        if exited is not None:
            self.busy.clear()  # its links went with it: nothing is known until a new one reports
        if exited is not None and not exited.asked:
            self._worker_died(exited, now)
        elif self.worker.child is not None:
            self.retry.working(now - self.spawned_at)
        if self.retry_at is not None and now >= self.retry_at and self.current is not None:
            log.info("cast worker: casting tried again", session=self.current.session, retries=self.retry.rounds)
            self.given_up, self.retry_at = None, None
            self.worker.policy.crashes = []
            self._spawn_if_needed()  # a new worker is sent the whole wanted state
        if self.worker.restart_due():
            self.worker_restarts += 1
            self.worker.restart_at = None
            self.worker.forget_restart()
            self._spawn_if_needed()
        elif exited is not None and exited.asked:
            log.debug("cast worker ended", pid=exited.pid, how=exited.describe())
            self._spawn_if_needed()  # something came up while it was ending
        for session, (specs, deadline) in list(self.stopping.items()):
            if not specs or now > deadline:
                if specs:
                    log.warning("cast stop not confirmed; giving up on it", session=session, devices=", ".join(specs))
                del self.stopping[session]
                self._forget(session)
        if self.current is not None or self.stopping:
            self.idle_since = now
        elif self.worker.child is not None and now - self.idle_since > WORKER_IDLE_EXIT:
            self.end_worker()
        return self._viewer_verdict()

    def _on_report(self, report: DeviceReport) -> None:
        spec = report.device.device
        if report.device.state == "waiting" and report.device.app:
            self.busy[spec.casefold()] = report.device
        else:
            self.busy.pop(spec.casefold(), None)
        self.app_sessions[(report.session, spec.casefold())] = report.app_session
        cast = self.current
        if cast is not None and report.session == cast.session and spec in self.devices:
            self.devices[spec] = report.device
        pending = self.stopping.get(report.session)
        if pending is not None and report.device.state == "stopped" and spec in pending[0]:
            pending[0].remove(spec)
            log.info("cast stopped on the device", session=report.session, device=spec, note=report.device.reason)

    def _forget(self, session: str) -> None:
        """Drop what is known of `session`'s app sessions, and of any other session neither on nor stopping:
        a report can come after its session's stop finished, and would otherwise stay for months."""
        keep = set(self.stopping) | ({self.current.session} if self.current is not None else set())
        for key in [k for k in self.app_sessions if k[0] == session or k[0] not in keep]:
            del self.app_sessions[key]

    def _worker_died(self, exited: Exited, now: float) -> None:
        lived = now - self.spawned_at  # a worker has no "working" state of its own: a long life is one
        if exits.classify(exited.code) is exits.Exit.VERSION_MISMATCH:
            self.upgraded = True  # the loop ends castd (a worker of another castd cannot be restarted)
        if self.current is None and not self.stopping:
            log.warning("cast worker exited", pid=exited.pid, how=exited.describe())
            self.worker.forget_restart()
            return
        decision = self.worker.failed(exited, lived if lived >= self.worker.policy.backoff.healthy_after else None)
        if decision.verdict is Verdict.GIVE_UP:
            crashes = len(self.worker.policy.crashes)
            delay = self.retry.gave_up(exited.code) if self.current is not None else None
            self.retry_at = None if delay is None else now + delay
            log.error("cast worker keeps crashing; casting given up for now" if delay else
                      "cast worker keeps crashing; casting given up for this session", how=exited.describe(),
                      crashes=crashes, retry_in=delay)
            for spec, device in self.devices.items():
                self.devices[spec] = msgspec.structs.replace(
                    device, state="failed", retry_in=delay, updated_at=self.wall(),
                    reason=f"the cast worker crashed {crashes} times in {CRASH_WINDOW:g}s")
            self.given_up = self.current.session if self.current is not None else None
            self.stopping.clear()
            return
        log.warning("cast worker died; restarting it", pid=exited.pid, how=exited.describe(),
                    restart_in=decision.delay)
        for spec, device in self.devices.items():
            if device.state not in USER_STATES:
                self.devices[spec] = msgspec.structs.replace(device, reason="cast worker restarting",
                                                             updated_at=self.wall())

    def _viewer_verdict(self) -> list[str] | None:
        """Every device is out of castd's hands, and the viewer did it on at least one: their reasons."""
        if self.current is None or not self.devices:
            return None
        devices = list(self.devices.values())
        done = all(d.state in USER_STATES or (d.state == "failed" and d.retry_in is None) for d in devices)
        if not done or not any(d.state in USER_STATES for d in devices):
            return None
        return [f"{d.device}: {d.reason or d.state}" for d in devices]

    def known_waits(self, specs: list[str], sharing: Sharing) -> list[CastDevice]:
        """The TVs among `specs` that a start with `sharing` will wait for, as far as castd knows now: a link
        waits there for another app (found by the spec, or the name, UUID or address it resolved to), and
        castd/cast/takeover.py's rule for a new session with these keys (the TV's [[tvs]] keys and the
        config's beneath them, as the link resolves them) says wait. A TV castd has no link to is not
        guessed at: its link says within a status round trip, in /status."""
        found = []
        for spec in specs:
            key = spec.casefold()
            seen = self.busy.get(key) or next(
                (d for d in self.busy.values()
                 if key in {(n or "").casefold() for n in (d.name, d.uuid, f"{d.host}:{d.port}", d.host)}), None)
            if seen is None or seen.app is None:
                continue
            below = self.config.tv_sharing(spec, seen.name, seen.uuid, f"{seen.host}:{seen.port}", seen.host)
            decision = Sharer(Policy.of(sharing.over(below))).decide(self.clock(),
                                                                      Facts(app_id=seen.app, app_name=seen.app))
            if decision.act is Act.WAIT:
                found.append(CastDevice(device=spec, state="waiting", reason=decision.reason, app=seen.app,
                                        name=seen.name, host=seen.host, port=seen.port, uuid=seen.uuid,
                                        model=seen.model, updated_at=seen.updated_at))
        return found

    def any_playing(self) -> bool:
        return any(d.state == "playing" for d in self.devices.values())

    def section(self, note: str | None) -> CastSection:
        specs = self.current.devices if self.current is not None else []
        child = self.worker.child
        return CastSection(devices=[self.devices[s] for s in specs if s in self.devices], note=note,
                           stopping=sum(len(specs) for specs, _ in self.stopping.values()),
                           worker_pid=child.pid if child is not None else None,
                           worker_restarts=self.worker_restarts)

    # ---- shutdown (driven by the supervisor's loop; nothing here waits) ---------------------------
    def settled(self) -> bool:
        """No stop is waiting for a device's confirmation (or no worker could give one)."""
        return not self.stopping or self.worker.child is None

    def end_worker(self) -> None:
        self.worker.end()
        self.worker.forget_restart()

    def close(self) -> None:
        """castd is shutting down: end the worker (it has been sent every stop), start no other."""
        self.closed = True
        self.end_worker()

    def kill_worker(self) -> None:
        if self.worker.child is not None and not self.worker.killed:
            self.worker.kill("shutdown")

    def done(self) -> bool:
        return self.worker.child is None
