"""The supervisor's one loop (gunicorn-arbiter style): commands, child reports, child exits, signals
and timers all arrive as events in one place; every wait has a timeout; every child is reaped.

Each pass: queued signals, then commands (applied to the *wanted* session and acked at once), then the
children's reports and exits, then timers; then one reconcile() compares the wanted session with the
encoder slot (castd/supervisor/slot.py) and acts on the difference; then the status is built from that
state and pushed. Nothing in a pass waits on a child: ending one is a request plus a deadline, and its
exit is a later event. Measured with bench/loopblock.py: the longest pass went from 2.0 s (a stop of a
hung encoder joined it) to a few milliseconds.

Newest start wins: pending commands are drained and applied in order to the wanted session, then the
slot is reconciled once, so a burst of 20 starts costs one browser start and some navigations, not 20
restarts. A start with the same quality as the running session is a switch: the encoder keeps running,
the page changes, the stream URL stays.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from typing import Any

import msgspec

from castd import paths
from castd.cast.media import title_for
from castd.children import exits, logcap
from castd.children.policy import RestartPolicy, RetryLater, Verdict
from castd.children.supervised import Exited
from castd.config import Config, camera_name
from castd.encoder.xvfb import clean_stale_locks
from castd.encoder.sites import site_secrets
from castd.logs import log, register_secret, scrub, setup_logging
from castd.presets import get_preset
from castd.sharing import Sharing
from castd.procutil import end_orphans, set_child_subreaper, set_pdeathsig, tree_pss_mb
from castd.protocol import (ENCODER_QUIT_GRACE, MAX_OVERLAYS, Ack, Begin, ChildEvent, ChildParams, Command, Failed,
                            Navigate, Overlay, PageFailed, PageHung, PageLoaded, PageOverrides, Parked, Ping, Progress,
                            Ready, Reload, Shutdown, Snapshot, Start, Status, Step, Stop, Timeline, command_decoder,
                            encode)
from castd.supervisor.director import Current, Director
from castd.supervisor.casting import Casting, WorkerFactory
from castd.supervisor.cast_process import CastProcess
from castd.supervisor.encoder_process import EncoderProcess, remove_session_files, sweep_tmp
from castd.supervisor.memory import Action, MemoryWatch
from castd.supervisor.slot import WORKING, EncoderChild, EncoderSlot, Phase
from castd.supervisor.status import Facts, Wanted, build_status
from castd.urls import Allowlist

SNAPSHOT_INTERVAL = 0.5
TICK = 0.25
CAST_STOP_WAIT = 1.5  # at shutdown, how long the devices may take to confirm the stop
SHUTDOWN_LIMIT = 3.5  # at shutdown, every child is killed by then (the front end waits 4 s)
ORPHAN_WAIT = 0.3  # then how long an orphan it adopted may take to die (SIGKILLed: a few ms)
SLOW_PASS = 0.1  # a loop pass longer than this is logged (DEBUG)
# a child that had reached streaming and then died is restarted at once; this many such crashes
# within CRASH_WINDOW seconds end the session as failed instead (it would otherwise loop forever)
MAX_CRASHES_IN_WINDOW = 20
CRASH_WINDOW = 300.0

EncoderFactory = Callable[[ChildParams], EncoderChild]


def new_session_id() -> str:
    """128 random bits, URL-safe: the stream URL is unguessable."""
    return secrets.token_urlsafe(16)


class Supervisor:
    """castd's only decision maker.

    Invariants: at most one encoder process alive at any time (the slot spawns only after the previous
    child is reaped); a command is acked in the pass that reads it, before any child is touched; no pass
    blocks on a child; Status is never read back for a decision.
    """

    def __init__(self, conn: Connection, config: Config, *, encoder_factory: EncoderFactory | None = None,
                 worker_factory: WorkerFactory | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, memory_probe: Callable[[int], float] = tree_pss_mb,
                 probe_in_thread: bool = True, subreaper: bool = False) -> None:
        for secret in (*config.log_secrets(), *site_secrets(config.sites)):
            register_secret(secret)  # every secret of the config, as in the front end and the encoder
        self.conn = conn
        self.subreaper = subreaper  # main() made this process one: adopted orphans are ours to end
        self.config = config
        self.clock, self.wall = clock, wall
        self.sessions_dir = paths.sessions_dir(config.resolved_runtime_dir())
        self.logs_dir = paths.logs_dir(config.resolved_runtime_dir())
        self.tmp_root = paths.tmp_root(config.resolved_runtime_dir())  # the encoders' $TMPDIRs
        self.wanted: Wanted | None = None
        self.facts: Facts | None = None  # of the wanted session, or of the failed one (shown until a new start)
        self.failed: Wanted | None = None
        self.media_end = 0.0  # the session clock: media time at the end of its last listed segment
        policy = RestartPolicy(first=0.5, cap=30.0, healthy_after=60.0, max_failures=config.max_restarts,
                               max_crashes=MAX_CRASHES_IN_WINDOW, window=CRASH_WINDOW,
                               after_work=0.0)  # a TV is watching: the crash bridge must be quick
        self.encoder = EncoderSlot(encoder_factory or (lambda params: EncoderProcess(params, clock)), policy, clock)
        # after a give-up, the wanted session's next round of starts (castd/children/policy.py RetryLater)
        self.retry = RetryLater(first=config.retry_seconds)
        self.retry_at: float | None = None  # monotonic time of the next round; None: no round is waited for
        self.casting = Casting(config, worker_factory or (lambda cfg: CastProcess(cfg, clock)), clock, wall)
        self.memory = MemoryWatch(config.memory_limit_mb, config.memory_check_seconds)
        self.memory_probe = memory_probe
        # the probe walks /proc and reads smaps_rollup of Chromium's processes: measured 20-35 ms of CPU and
        # up to 0.4 s of wall time on a loaded machine, so it runs in a thread and the loop takes its answer
        self.memory_pool = ThreadPoolExecutor(1, "memory") if probe_in_thread else None
        self._memory_sample: Future[float] | None = None
        self.signals: list[int] = []  # queued by the signal handlers, handled by the loop
        self.shutdown_at: float | None = None  # when shutting down began
        self.orphans: list[int] = []  # adopted processes (we are a subreaper) ended but not yet reaped
        self._children: set[int] = set()  # PIDs of the encoder and the cast worker at the last pass
        self.front_end_gone = False
        self.applied = 0  # commands applied so far
        self.undecodable = 0  # commands that could not be decoded (each logged, up to a bound)
        self._logs_trimmed_at = 0.0
        self.exit_code = 0  # exits.VERSION_MISMATCH: a child is newer castd; the whole castd must restart
        self.longest_pass = 0.0
        self.longest_pass_cpu = 0.0  # CPU time of this process in that pass
        self._last_push = 0.0
        self._pushed: Status | None = None
        self._standby_booted = config.standby != "boot"
        self.director = Director(config, now=wall())  # the programme: manual starts, playlists, schedules, interrupts

    # ---- the loop ---------------------------------------------------------------------------------
    def run(self, wake_fd: int | None = None) -> None:
        self._clean_runtime()
        log.info("supervisor ready", pid=os.getpid(), runtime_dir=str(self.sessions_dir))
        self.step()
        self.push(force=True)
        while not self.finished():
            waitables: list[Any] = [] if self.front_end_gone else [self.conn]
            waitables += self.encoder.run.waitables() + self.casting.waitables()
            if wake_fd is not None:
                waitables.append(wake_fd)
            ready = wait(waitables, timeout=self._tick())
            if wake_fd is not None and wake_fd in ready:
                _drain(wake_fd)
            started, cpu = time.monotonic(), time.process_time()
            self.step()
            took = time.monotonic() - started
            if took > self.longest_pass:
                self.longest_pass, self.longest_pass_cpu = took, time.process_time() - cpu
        self.push(force=True)
        remove_session_files(self.tmp_root)  # no encoder is left to use it
        log.info("supervisor exiting", longest_pass_ms=round(self.longest_pass * 1000, 1),
                 its_cpu_ms=round(self.longest_pass_cpu * 1000, 1))

    def step(self) -> None:
        """One pass: take in every event, reconcile once, push. A pass longer than SLOW_PASS is logged with
        the time of each part, wall clock and this process's CPU (a loaded machine stretches the first,
        work that blocks shows in neither: it waits)."""
        wall, cpu = time.monotonic(), time.process_time()
        parts: list[tuple[str, float]] = []
        for part in (self._take_signals, self._read_commands, self._read_encoder, self._reap_encoder,
                     self._watch_encoder, self._watch_memory, self._trim_logs, self._poll_cast, self._timers,
                     self.reconcile,
                     self._end_orphans, self._shutdown_deadlines, self.push, self._keep):
            started = time.monotonic()
            part()
            parts.append((part.__name__, time.monotonic() - started))
        took = time.monotonic() - wall
        if took > SLOW_PASS:
            log.debug("slow loop pass", ms=round(took * 1000, 1), cpu_ms=round((time.process_time() - cpu) * 1000, 1),
                      parts=" ".join(f"{name}={ms * 1000:.0f}" for name, ms in parts if ms >= 0.005))

    def _tick(self) -> float:
        """Wait at most TICK, less when the programme changes sooner (a playlist switch is punctual)."""
        now = self.wall()
        change = self.director.next_change(now)
        return TICK if change is None else max(0.0, min(TICK, change - now))

    def _keep(self) -> None:
        """The resume file follows what is on screen; not at shutdown: that is what a restart resumes."""
        if self.shutdown_at is not None:
            return
        wanted = self.wanted
        if wanted is None:
            self.director.keep(None, None, None)
        else:
            self.director.keep(wanted.session, wanted.started_at, (wanted.quality, wanted.mode, tuple(wanted.devices)))

    def finished(self) -> bool:
        """Shut down: no encoder, no cast worker, and nothing they left behind (bounded: past
        SHUTDOWN_LIMIT an orphan that will not die is left to the front end, which reports it)."""
        return (self.shutdown_at is not None and self.encoder.phase is Phase.EMPTY and self.encoder.child is None
                and self.casting.done()
                and (not self.orphans or self.clock() - self.shutdown_at >= SHUTDOWN_LIMIT + ORPHAN_WAIT))

    def status(self) -> Status:
        wanted = self.wanted or self.failed
        child = self.encoder.child
        # the pid of the encoder that works for this session (or of the parked standby), not of an
        # old session's child that is still ending
        mine = child is not None and (wanted is None or self.encoder.session in (None, wanted.session))
        return build_status(wanted, self.facts, self.encoder.phase, child.pid if child and mine else None,
                            self.casting.section(self._cast_note()), os.getpid(), 0.0,
                            len(self.director.programme.state.interrupts), self.config.stream_format,
                            seq=self.applied)

    def push(self, force: bool = False) -> None:
        if self.front_end_gone:
            return
        now = self.clock()
        status = self.status()
        if not force and status == self._pushed and now - self._last_push < SNAPSHOT_INTERVAL:
            return
        self._pushed = status
        self._last_push = now
        self._send(Snapshot(status=msgspec.structs.replace(status, updated_at=self.wall())))

    def _send(self, message: msgspec.Struct) -> None:
        try:
            self.conn.send_bytes(encode(message))
        except (BrokenPipeError, OSError):
            self._front_end_lost()

    def _front_end_lost(self) -> None:
        if not self.front_end_gone:
            log.warning("front end pipe closed; shutting down")
            self.front_end_gone = True
            self._begin_shutdown("castd is shutting down")

    # ---- signals and shutdown ---------------------------------------------------------------------
    def _take_signals(self) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            log.info("signal", name=signal.Signals(signum).name)
            self._begin_shutdown("castd is shutting down")

    def _begin_shutdown(self, reason: str) -> None:
        if self.shutdown_at is not None:
            return
        self.shutdown_at = self.clock()
        self._set_wanted(None, reason)

    def _end_orphans(self) -> None:
        """End and reap what an ended child left behind. The supervisor is a subreaper: Chromium helpers
        that outlive a killed encoder (its crashpad handlers live in sessions of their own, so a kill of
        the encoder's group misses them) come to us, not to the front end. Looked for only when a child
        has gone and while some are still unreaped: a walk of /proc costs a few ms."""
        if not self.subreaper:  # in a test's own process: its other children are none of our business
            return
        children = {child.pid for child in (self.encoder.child, self.casting.worker.child) if child is not None}
        gone = bool(self._children - children)
        self._children = children
        if gone or self.orphans:
            self.orphans = end_orphans(keep=children)

    def _shutdown_deadlines(self) -> None:
        """Shutting down: the worker ends once the devices confirm (or CAST_STOP_WAIT passed); past
        SHUTDOWN_LIMIT whatever still runs is killed (and still reaped by a later pass)."""
        if self.shutdown_at is None:
            return
        elapsed = self.clock() - self.shutdown_at
        if self.casting.settled() or elapsed >= CAST_STOP_WAIT:
            self.casting.close()
        if elapsed >= SHUTDOWN_LIMIT:
            if self.encoder.child is not None and not self.encoder.run.killed:
                self.encoder.kill("shutdown")
            self.casting.kill_worker()

    # ---- commands ---------------------------------------------------------------------------------
    def _read_commands(self) -> None:
        if self.front_end_gone:
            return
        commands: list[Command] = []
        try:
            while self.conn.poll():
                data = self.conn.recv_bytes()
                try:
                    commands.append(command_decoder.decode(data))
                except msgspec.DecodeError as exc:  # logged, and the commands after it still read
                    self.undecodable += 1
                    if self.undecodable <= 5 or self.undecodable % 100 == 0:
                        log.error("undecodable command; dropped", error=str(exc), size=len(data),
                                  count=self.undecodable)
        except (EOFError, OSError):
            self._front_end_lost()
        acks = []
        for command in commands:
            if isinstance(command, Ping):  # the front end's liveness check: answered, nothing applied
                self._send(Ack(command_id=command.id, ok=True))
                continue
            self.applied += 1
            ack = self._apply(command)
            ack.seq = self.applied
            acks.append(ack)
        if acks:  # the new state first, so /status agrees with an Ack the moment it arrives; both
            self.push(force=True)  # before any slow work (reconcile runs later in this pass)
        for ack in acks:
            self._send(ack)

    def _apply(self, command: Command) -> Ack:
        now = self.wall()
        if isinstance(command, Start):
            if self.shutdown_at is not None:
                return Ack(command_id=command.id, ok=False, error="castd is shutting down")
            if command.overlay is not None:
                return self._overlay(command, now)
            before = self.wanted.session if self.wanted else None
            self.director.start(command, now)
            self._follow(now, reload=True, reason="replaced by a new start")
            if self.wanted is None:
                return Ack(command_id=command.id, ok=False, error="nothing to show")
            show = self.wanted.show
            waiting = self.casting.known_waits(self.wanted.devices, show.sharing if show is not None else Sharing())
            return self._on_screen(Ack(command_id=command.id, ok=True, session=self.wanted.session,
                                       switched=self.wanted.session == before, waiting=waiting))
        if isinstance(command, Stop):
            stopped = self.wanted.session if self.wanted else None
            self.director.stop(now)
            self._follow(now, reason=command.reason)
            return Ack(command_id=command.id, ok=True, stopped=stopped)
        if isinstance(command, Step):
            if self.shutdown_at is not None or not self.director.step(command.count, now):
                return Ack(command_id=command.id, ok=False, error=self.director.why_no_step(now))
            self._follow(now)
            return self._on_screen(Ack(command_id=command.id, ok=True, switched=True,
                                       session=self.wanted.session if self.wanted else None))
        if isinstance(command, Reload):
            if self.wanted is None:
                return Ack(command_id=command.id, ok=False, error="nothing is being cast")
            self.wanted.nav += 1  # the reconcile step navigates to the same URL again
            log.info("session reload", session=self.wanted.session, url=self.wanted.url)
            self._retry_now("a reload")
            return Ack(command_id=command.id, ok=True, session=self.wanted.session, switched=True)
        if isinstance(command, Shutdown):
            self._begin_shutdown("castd is shutting down")
            return Ack(command_id=command.id, ok=True)
        return Ack(command_id=getattr(command, "id", ""), ok=False, error="unknown command")

    def _overlay(self, command: Start, now: float) -> Ack:
        """A camera in a corner over the running session (or out of it): the page goes on underneath."""
        wanted = self.wanted
        name = camera_name(command.url) or ""
        if wanted is None or wanted.mode != "hls" or name not in self.config.cameras:
            return Ack(command_id=command.id, ok=False,
                       error="an overlay goes over a running session: start a dashboard (or a camera) first")
        items = [item for item in wanted.overlays if item.camera != name]
        if command.overlay is not None and command.overlay != "off":
            items = [item for item in items if item.position != command.overlay]  # one camera per corner
            items.append(Overlay(camera=name, position=command.overlay, size=command.overlay_size,
                                 until=now + command.duration if command.duration else None))
        wanted.overlays = items[-MAX_OVERLAYS:]
        log.info("camera overlay", session=wanted.session, camera=name, position=command.overlay,
                 duration=command.duration)
        return self._on_screen(Ack(command_id=command.id, ok=True, session=wanted.session, switched=True))

    def _on_screen(self, ack: Ack) -> Ack:
        """A start's or a step's Ack says what the programme put on screen."""
        show = self.wanted.show if self.wanted is not None else None
        if show is not None:
            ack.url, ack.dashboard, ack.playlist, ack.item = show.url, show.dashboard, show.playlist, show.item
        return ack

    def _follow(self, now: float, reload: bool = False, reason: str = "") -> None:
        """Make the wanted session what the programme says is on screen now (castd/programme/ through
        director.py): keep it, switch its page (same quality, mode, devices: one LOAD, one stream URL),
        replace it, or end it. `reload`: a start asked for this page again."""
        if self.shutdown_at is not None:  # shutting down: nothing new starts (the resume file keeps what was on)
            return
        wanted = self.wanted
        current = None
        if wanted is not None:
            current = Current(session=wanted.session, quality=wanted.quality, mode=wanted.mode,
                              devices=tuple(wanted.devices), url=wanted.url, page=wanted.page)
        change = self.director.follow(now, current, reload)
        show = change.show
        if change.action == "keep":
            if wanted is not None and show is not None:
                wanted.show, wanted.ends_at = show, show.ends_at
            return
        if change.action == "stop":
            self._set_wanted(None, reason or change.reason)
            return
        assert show is not None
        if change.action == "switch" and wanted is not None:
            wanted.url, wanted.page, wanted.nav = show.url, show.page, wanted.nav + 1
            wanted.show, wanted.ends_at = show, show.ends_at
            self._retry_now("a new page")
            if wanted.mode == "direct":
                self.casting.switch_page(wanted.session, wanted.url)
            self.casting.share(wanted.session, show.sharing)
            log.info("session switch", session=wanted.session, url=show.url, quality=show.quality,
                     dashboard=show.dashboard, playlist=show.playlist, item=show.item, source=show.source,
                     schedule=show.schedule)
            return
        started = change.started_at if change.started_at is not None else now
        new = Wanted(session=change.session or new_session_id(), url=show.url, quality=show.quality, nav=0,
                     started_at=started, ends_at=show.ends_at, page=show.page, devices=list(show.devices),
                     mode=show.mode, show=show, media_start=max(0.0, now - started) if change.session else 0.0)
        self._set_wanted(new, reason or "the programme changed the session")
        log.info("session start" if change.session is None else "session resumed", session=new.session,
                 url=show.url, quality=show.quality, dashboard=show.dashboard, playlist=show.playlist,
                 source=show.source, schedule=show.schedule, mode=show.mode, devices=", ".join(show.devices) or None)

    def _set_wanted(self, wanted: Wanted | None, reason: str) -> None:
        """The one place the wanted session changes: logs, the session clock, casting."""
        old = self.wanted
        if old is not None:
            log.info("session stop", session=old.session, reason=reason)
        if old is None and wanted is None:
            return  # a stop of nothing: a failed session stays shown until the next start
        self.wanted, self.failed = wanted, None
        self.facts = Facts() if wanted is not None else None
        # a new session, a new timeline (a resumed one goes on where its media time would be)
        self.media_end = wanted.media_start if wanted is not None else 0.0
        self.encoder.policy.reset()
        self.retry.reset()
        self.retry_at = None
        # first: the TVs stop, or the worker connects and launches the app, while the encoder starts
        self.casting.end()
        if wanted is not None:
            self.casting.begin(wanted.session, wanted.mode, wanted.devices, title_for(wanted.url), wanted.url,
                               wanted.show.sharing if wanted.show is not None else Sharing())

    # ---- reconcile the encoder slot with the wanted session ----------------------------------------
    def reconcile(self) -> None:
        """Compare the wanted session with the encoder slot and act on the difference (a few steps at
        most: a working child of an old session parks, then begins the new one)."""
        wanted = self.wanted if self.wanted is not None and self.wanted.mode == "hls" else None
        slot = self.encoder
        for _ in range(3):
            phase = slot.phase
            if phase is Phase.ENDING:
                return  # its exit is the next event
            if phase in WORKING:
                if wanted is None or slot.session != wanted.session:
                    self._release()
                    continue
                if slot.nav != wanted.nav:
                    slot.navigate(Navigate(url=wanted.url, nav=wanted.nav, page=wanted.page))
                    self._facts().page = "loading"
                if slot.overlays != wanted.overlays:
                    slot.show_overlays(wanted.overlays)
                return
            if phase is Phase.PARKED:
                if self.shutdown_at is not None:
                    slot.end()
                elif wanted is not None and slot.quality == wanted.quality:
                    self._begin_parked(wanted)
                elif wanted is not None:
                    slot.end()  # the wrong size: the new child starts once this one is reaped
                return
            if phase is Phase.RESTART_PENDING:
                if wanted is None or slot.session != wanted.session:
                    self._remove_folder(slot.session)
                    slot.clear()
                    continue
                if slot.restart_due():
                    self._facts().restarts += 1
                    self._spawn(wanted)
                return
            # EMPTY
            if wanted is not None and self.retry_at is not None:
                if self.clock() >= self.retry_at:
                    self._retry_now("its time came")
                    self._spawn(wanted)
                return
            if wanted is not None:
                self._spawn(wanted)
            elif not self._standby_booted and self.shutdown_at is None:
                self._standby_booted = True
                self._spawn(None)
            return

    def _release(self) -> None:
        """The slot's session is no longer wanted: park the child (warm standby) or end it."""
        slot = self.encoder
        folder = self.sessions_dir / (slot.session or "")
        if self.config.standby != "off" and self.shutdown_at is None:
            slot.park(folder)
            return
        slot.leftover.append(folder)
        slot.end()

    def _begin_parked(self, wanted: Wanted) -> None:
        slot = self.encoder
        slot.begin(Begin(session=wanted.session, folder=str(self.sessions_dir / wanted.session), url=wanted.url,
                         nav=wanted.nav, page=wanted.page, timeline=self._timeline()))
        self._facts().page = "loading"
        self.memory.reset(self.clock())
        log.info("encoder reused from standby", session=wanted.session, pid=slot.child.pid if slot.child else None,
                 url=wanted.url)

    def _timeline(self) -> Timeline:
        """Where the next child continues the wanted session: at the end of what its playlist
        already lists; a child after another one of the same session is a real break."""
        return Timeline(start=self.media_end, discontinuity=self.media_end > 0)

    def _spawn(self, wanted: Wanted | None) -> None:
        """Start a child: for the wanted session, or (None) as a warm standby."""
        config = self.config
        quality = wanted.quality if wanted else config.quality
        params = ChildParams(session=wanted.session if wanted else None, url=wanted.url if wanted else "",
                             nav=wanted.nav if wanted else 0, preset=get_preset(quality, config.stream_format),
                             folder=str(self.sessions_dir / wanted.session) if wanted else "",
                             # one folder per child, named by its session (README, Logs); a warm standby's
                             # child is "standby-..." and keeps that name for the sessions it then serves
                             logs_dir=str(self.logs_dir / f"{wanted.session if wanted else 'standby'}-"
                                                          f"{secrets.token_hex(3)}"),
                             tmp_dir=str(self.tmp_root / secrets.token_hex(6)),
                             page_hang_seconds=config.page_hang_seconds,
                             chromium=config.chromium, chromedriver=config.chromedriver, xvfb=config.xvfb,
                             page_load_timeout=config.page_load_timeout,
                             renderer_heap_mb=config.renderer_heap_mb, log_level=config.log_level,
                             allowlist=list(Allowlist.parse(config.allowlist).prefixes),
                             log_secrets=config.log_secrets(),
                             sites=config.sites, page=wanted.page if wanted else PageOverrides(),
                             timeline=self._timeline() if wanted else Timeline(),
                             cameras=config.cameras, overlays=list(wanted.overlays) if wanted else [])
        child = self.encoder.start(params)
        self._standby_booted = True  # `standby = "boot"` means one parked child at start-up, not one per idle
        self.memory.reset(self.clock())
        if wanted:
            self._facts().page = "loading"
            log.info("encoder started", session=wanted.session, pid=child.pid, url=wanted.url)
        else:
            log.info("standby encoder started", pid=child.pid, quality=quality)

    def _facts(self) -> Facts:
        if self.facts is None:
            self.facts = Facts()
        return self.facts

    # ---- the encoder's reports and exit ------------------------------------------------------------
    def _read_encoder(self) -> None:
        slot = self.encoder
        child = slot.child
        if child is None:
            return
        for message in child.messages():
            if isinstance(message, (Failed, PageFailed)):  # a child's words go to /status, MQTT and the log:
                message.error = scrub(message.error)  # masked at the door, with every secret castd knows
            current = slot.phase in WORKING and self.wanted is not None and slot.session == self.wanted.session
            if isinstance(message, Progress):
                slot.frames.update(message.frames)
                if message.segments:
                    slot.segments.update(message.segments)
                if current:
                    facts = self._facts()
                    facts.frames, facts.fps, facts.segments = message.frames, message.fps, message.segments
                    facts.cameras = message.cameras
                    self.media_end = max(self.media_end, message.media_end)
            else:
                self._on_child_event(message, current)

    def _on_child_event(self, event: ChildEvent, current: bool) -> None:
        """`current`: the child works on the wanted session; the page events count for its status only
        when they are about the wanted navigation (an older one may still report)."""
        slot = self.encoder
        session = slot.session
        wanted = self.wanted
        on_nav = current and wanted is not None and not isinstance(event, (Parked, Failed)) \
            and event.nav == wanted.nav
        if isinstance(event, PageHung):
            self._page_hung(event, on_nav)
            return
        if isinstance(event, Parked):
            for folder in slot.take_leftover():
                remove_session_files(folder)
        elif isinstance(event, Failed):
            slot.last_words, slot.last_words_at = event.error, self.clock()
            if current:
                self._facts().last_error = event.error
            log.error("encoder error", session=session, error=event.error)
        elif isinstance(event, Ready):
            if current:
                slot.ready()
            if on_nav and wanted is not None:
                facts = self._facts()
                self.casting.stream_ready(wanted.session, paths.stream_path(wanted.session))
                if facts.phase == "starting":
                    log.info("first segment", session=session, url=event.url,
                             seconds=round(self.wall() - wanted.started_at, 2))
                else:
                    log.info("page switched", session=session, url=event.url)
                facts.phase, facts.shown_nav = "streaming", event.nav
        elif isinstance(event, PageLoaded):
            if on_nav:
                facts = self._facts()
                facts.page, facts.page_nav = "loaded", event.nav
            log.info("page loaded", session=session, url=event.url, seconds=event.seconds)
        elif isinstance(event, PageFailed):
            if on_nav:
                facts = self._facts()
                facts.page, facts.page_nav, facts.last_error = "error", event.nav, f"page: {event.error}"
            log.warning("page failed to load", session=session, url=event.url, error=event.error)

    def _page_hung(self, event: PageHung, on_nav: bool) -> None:
        """The child's page watchdog found its browser not answering; it cures it (a new browser, or it
        exits for a new encoder, which the restart path handles). Counted; /health is unhealthy until the
        page is loaded again."""
        slot = self.encoder
        if slot.phase in WORKING and self.wanted is not None and slot.session == self.wanted.session:
            facts = self._facts()
            facts.page_hangs += 1
            if on_nav:
                facts.page, facts.page_nav, facts.last_error = "hung", event.nav, f"page hung: {event.reason}"
        cure = "starting a new browser" if event.cure == "new_browser" else "restarting the encoder"
        log.warning(f"page hung; {cure}", session=slot.session, url=event.url, reason=event.reason,
                    cure=event.cure)

    def _reap_encoder(self) -> None:
        slot = self.encoder
        child = slot.child
        tail = scrub(child.log_tail()) if child is not None and child.exitcode() is not None else ""
        reaped = slot.reap()
        if reaped is None:
            return
        exited, phase = reaped
        log.debug("encoder ended", pid=exited.pid, exitcode=exited.code, how=exited.describe())
        self._sweep()
        if exits.classify(exited.code) is exits.Exit.VERSION_MISMATCH and slot.session is None:
            self._upgraded("standby encoder")
        if exited.asked and exited.reason is None or phase is Phase.PARKED or slot.session is None:
            if phase is Phase.PARKED and not exited.asked:
                log.warning("standby encoder exited; the next start will be cold", pid=exited.pid,
                            how=exited.describe(), output=tail[-300:] or None)
            for folder in slot.take_leftover():
                remove_session_files(folder)
            slot.clear()
            return
        self._encoder_failed(exited, tail)

    def _encoder_failed(self, exited: Exited, tail: str) -> None:
        """Restart the child (the stream URL stays), paced; give up as `failed` on a crash loop
        (castd/children/policy.py has the rules)."""
        slot = self.encoder
        wanted = self.wanted
        if exited.reason is not None:
            reason = f"stalled: {exited.reason}"
        else:
            last_words = f": {slot.last_words}" if slot.last_words else ""
            reason = f"encoder {exited.describe()}{last_words}"
        decision = slot.plan_restart(exited)
        if exits.classify(exited.code) is exits.Exit.VERSION_MISMATCH:  # no restart, no retry, no programme
            self._remove_folder(slot.session)  # change: castd ends, and the new one resumes what was on
            slot.clear()
            self._upgraded("encoder")
            return
        if wanted is None or wanted.session != (slot.session or wanted.session):
            self._remove_folder(slot.session)  # its session ended while it was being killed
            slot.clear()
            return
        facts = self._facts()
        facts.last_error = reason
        facts.phase = "starting"
        if decision.verdict is Verdict.GIVE_UP:
            gave_up = f"{reason}; gave up after {facts.restarts} restarts ({decision.why})"
            remove_session_files(self.sessions_dir / wanted.session)
            slot.clear()
            delay = self.retry.gave_up(exited.code) if self.shutdown_at is None else None
            if delay is not None:
                self._retry_later(wanted, facts, gave_up, delay, tail)
                return
            facts.phase = "failed"
            facts.last_error = gave_up + (f"\n{tail}" if tail else "")
            log.error("session failed", session=wanted.session, url=wanted.url, error=reason,
                      restarts=facts.restarts, why=decision.why, output=tail[-300:] or None)
            facts_kept = facts
            self.director.stop(self.wall())  # as a stop: no restart loop through the programme
            self._set_wanted(None, "failed")
            self.failed, self.facts = wanted, facts_kept
            return
        log.warning("encoder failed; restarting", session=wanted.session, url=wanted.url, error=reason,
                    restart_in=decision.delay, restarts=facts.restarts,
                    hint="out of memory?" if exited.code == -signal.SIGKILL and exited.reason is None else None)

    def _upgraded(self, child: str) -> None:
        """A child runs another castd than this supervisor (upgraded in place): no child can be started
        any more. The supervisor ends its session and exits with VERSION_MISMATCH; the front end then
        exits too, and systemd (Restart=on-failure) starts the new castd. Logged once."""
        if self.exit_code:
            return
        self.exit_code = exits.VERSION_MISMATCH
        log.error("castd was upgraded while running; ending this castd so the new one can start", child=child)
        self._begin_shutdown("castd was upgraded while running")

    def _retry_later(self, wanted: Wanted, facts: Facts, gave_up: str, delay: float, tail: str) -> None:
        """A round of restarts gave up but the session is still wanted (the programme still shows it: a
        schedule window, an unlimited dashboard, a duration not over): the TVs are released, and the
        next round starts in `delay` seconds (reconcile). A stop, a new start, the programme's end all
        go through _set_wanted, which forgets the plan."""
        facts.phase, facts.retries = "retrying", facts.retries + 1
        facts.retry_at = self.wall() + delay
        facts.last_error = f"{gave_up}; retrying in {delay:.0f}s" + (f"\n{tail}" if tail else "")
        self.retry_at = self.clock() + delay
        log.warning("session retrying later", session=wanted.session, url=wanted.url, error=gave_up,
                    retry_in=round(delay), retries=facts.retries, output=tail[-300:] or None)
        self.casting.end()  # no TV waits on a stream that is not there; the next round casts again

    def _retry_now(self, why: str) -> None:
        """Start the next round of the retrying session now: a fresh set of quick restarts, the TVs again,
        and a timeline that follows the wall clock (the player gets a new LOAD)."""
        wanted = self.wanted
        if self.retry_at is None or wanted is None:
            return
        self.retry_at = None
        self.encoder.policy.reset()
        facts = self._facts()
        facts.phase, facts.retry_at, facts.restarts, facts.last_error = "starting", None, 0, None  # a new round
        self.media_end = max(self.media_end, self.wall() - wanted.started_at)
        log.info("session retry", session=wanted.session, url=wanted.url, why=why, retries=facts.retries)
        self.casting.begin(wanted.session, wanted.mode, wanted.devices, title_for(wanted.url), wanted.url)

    def _watch_encoder(self) -> None:
        """The stall watchdog: a working child silent, or without new frames or segments, is killed."""
        slot = self.encoder
        child = slot.child
        if child is None or slot.phase not in WORKING:
            return
        if slot.working_since is not None:
            slot.policy.working(self.clock() - slot.working_since)
            self.retry.working(self.clock() - slot.working_since)
        config = self.config
        if slot.last_words_at is not None:  # it said why it fails and is ending (its helpers, its files)
            if self.clock() - slot.last_words_at < ENCODER_QUIT_GRACE:
                return
            log.warning("encoder did not exit after its last words; killing it", session=slot.session)
            slot.kill(f"no exit {ENCODER_QUIT_GRACE:g}s after: {slot.last_words}")
            return
        silent = self.clock() - child.last_message_at
        # not one report yet: Xvfb, PyAV and Chromium are starting (measured 1-2 s idle, over 3 s on a loaded
        # 2-core machine); the frame and segment rules start with the first report
        booting = child.last_message_at == child.started_at
        if silent > config.frame_stall_seconds + (config.page_load_timeout if booting else 0):
            reason = f"no report from the encoder for {silent:.1f}s"
        elif slot.frames.value is not None and slot.frames.age() > config.frame_stall_seconds:
            reason = f"no new frame for {slot.frames.age():.1f}s"
        elif slot.segments.age() > config.segment_stall_seconds + (
                0 if slot.segments.value else config.page_load_timeout):
            reason = f"no new segment for {slot.segments.age():.1f}s"
        else:
            return
        log.warning("encoder stalled; killing it", session=slot.session, reason=reason)
        slot.kill(reason)

    def _trim_logs(self) -> None:
        """Chromium's, chromedriver's and Xvfb's output files stay bounded (castd/children/logcap.py)."""
        child = self.encoder.child
        now = self.clock()
        if child is None or now < self._logs_trimmed_at + logcap.TRIM_EVERY:
            return
        self._logs_trimmed_at = now
        for name in logcap.trim_folder(child.params.logs_dir):
            log.debug("child output trimmed", file=name, pid=child.pid, kept_lines=logcap.KEEP_LINES)

    def _watch_memory(self) -> None:
        """The memory watchdog (castd/supervisor/memory.py): reload the page, then restart the encoder."""
        slot, wanted = self.encoder, self.wanted
        child = slot.child
        now = self.clock()
        if child is None or slot.phase is not Phase.STREAMING or wanted is None:
            self._memory_sample = None  # a sample of a child that no longer streams is not used
            return
        sample = self._memory_sample
        if sample is None:
            if not self.memory.due(now):
                return
            if self.memory_pool is None:
                pss = self.memory_probe(child.pid)
            else:
                self._memory_sample = self.memory_pool.submit(self.memory_probe, child.pid)
                return
        elif not sample.done():
            return
        else:
            self._memory_sample = None
            try:
                pss = sample.result()
            except OSError:
                return
        action = self.memory.decide(now, pss)
        if action is Action.NONE:
            return
        facts = self._facts()
        if action is Action.RELOAD:
            facts.memory_reloads += 1
            log.warning("browser memory over the limit; reloading the page", session=wanted.session,
                        pss_mb=round(pss), limit_mb=self.config.memory_limit_mb)
            wanted.nav += 1  # reconcile sends the Navigate; the encoder holds its last picture meanwhile
            return
        facts.memory_restarts += 1
        log.warning("browser memory still over the limit after a reload; restarting the encoder",
                    session=wanted.session, pss_mb=round(pss), limit_mb=self.config.memory_limit_mb)
        slot.end()  # once reaped, reconcile starts a new child that continues the session's timeline

    # ---- cast news and timers ------------------------------------------------------------------------
    def _cast_note(self) -> str | None:
        devices = self.wanted.devices if self.wanted is not None else self.config.default_devices()
        return "no device set" if not devices else None

    def _poll_cast(self) -> None:
        """Cast news: the session ends when the viewer took the TVs back."""
        verdict = self.casting.poll()
        if self.casting.upgraded:
            self._upgraded("cast worker")
        wanted = self.wanted
        if wanted is None:
            return
        facts = self._facts()
        if wanted.mode == "direct" and facts.phase == "starting" and self.casting.any_playing():
            facts.phase = "streaming"
            log.info("page on the device", session=wanted.session, url=wanted.url,
                     seconds=round(self.wall() - wanted.started_at, 2))
        if verdict:
            log.warning("session ended by the viewer; castd will not cast it again", session=wanted.session,
                        devices="; ".join(verdict))
            self.director.stop(self.wall())  # as a stop: a schedule window stays off until it ends
            self._set_wanted(None, "the viewer took the TV back")

    def _timers(self) -> None:
        self._follow(self.wall())  # a duration, a playlist item, an interrupt's end, a schedule window
        wanted = self.wanted
        if wanted is not None and wanted.overlays:  # an overlay's duration
            now = self.wall()
            wanted.overlays = [item for item in wanted.overlays if item.until is None or item.until > now]

    def _remove_folder(self, session: str | None) -> None:
        if session:
            remove_session_files(self.sessions_dir / session)

    # ---- start-up ------------------------------------------------------------------------------------
    def _clean_runtime(self) -> None:
        """Remove session folders and X locks left by an earlier crash."""
        if self.sessions_dir.exists():
            for stale in self.sessions_dir.iterdir():
                remove_session_files(stale)
                log.info("removed stale session folder", path=str(stale))
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        remove_session_files(self.logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._sweep()

    def _sweep(self) -> None:
        """What dead encoders left: their $TMPDIRs (Chromium's profiles; a SIGKILL leaves them) and the X
        locks of their killed Xvfbs. At start-up and after each encoder has been reaped (a few ms)."""
        for path in sweep_tmp(self.tmp_root):
            log.info("removed a dead encoder's temporary folder", path=str(path))
        for lock in clean_stale_locks():
            log.info("removed stale X lock", path=lock)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, OSError):
        pass


def main(conn: Connection, config_bytes: bytes) -> None:
    """Entry point of the spawned supervisor process."""
    config = msgspec.msgpack.decode(config_bytes, type=Config)
    set_pdeathsig(signal.SIGTERM)
    set_child_subreaper()  # what a killed encoder leaves comes to us (see Supervisor._end_orphans)
    setup_logging(config.log_level)
    supervisor = Supervisor(conn, config, subreaper=True)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)  # a signal wakes the loop's wait(); the handler only queues it
    signal.signal(signal.SIGTERM, lambda signum, _frame: supervisor.signals.append(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        supervisor.run(wake_read)
        if supervisor.exit_code:
            sys.exit(supervisor.exit_code)  # the front end reads it (castd/api/handle.py)
    except Exception:
        log.exception("supervisor crashed")
        for child in (supervisor.encoder.child, supervisor.casting.worker.child):
            if child is not None:
                child.kill()
        raise
