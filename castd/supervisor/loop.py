"""The supervisor's one loop (gunicorn-arbiter style): commands, child reports, child exits and
timers all arrive as events in one place; every wait has a timeout; every child is reaped.

Newest start wins: pending commands are drained and applied in order to the *wanted* session,
then the running encoder is reconciled with it once, so a burst of 20 starts costs one browser
start and some navigations, not 20 restarts. A start with the same quality as the running
session is a switch: the encoder keeps running, the page changes, the stream URL stays.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path

import msgspec

from castd.cast.media import title_for
from castd.config import Config
from castd.encoder.xvfb import clean_stale_locks
from castd.logs import log, register_secret, setup_logging
from castd.presets import get_preset
from castd.procutil import set_pdeathsig
from castd.protocol import (Ack, Begin, ChildEvent, ChildParams, Command, Navigate, PageOverrides, Park, Progress,
                            Reload, Shutdown, Snapshot, Start, Status, Stop, Timeline, command_decoder, encode)
from castd.supervisor.backoff import Backoff
from castd.supervisor.casting import Casting
from castd.supervisor.encoder_process import EncoderProcess, remove_session_files
from castd.urls import Allowlist

SNAPSHOT_INTERVAL = 0.5
TICK = 0.25
CAST_STOP_WAIT = 1.5  # at shutdown, how long the devices may take to confirm the stop
# a child that had reached streaming and then died is restarted at once; this many such crashes
# within CRASH_WINDOW seconds end the session as failed instead (it would otherwise loop forever)
MAX_CRASHES_IN_WINDOW = 20
CRASH_WINDOW = 300.0


class Watch:
    """When a counter last moved: the watchdog's view of frames and segments."""

    def __init__(self) -> None:
        self.value: int | None = None
        self.changed_at = time.monotonic()

    def update(self, value: int) -> None:
        if value != self.value:
            self.value, self.changed_at = value, time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.changed_at


class Wanted(msgspec.Struct, kw_only=True):
    """The session the commands ask for; the encoder is made to match it."""

    session: str
    url: str
    quality: str
    nav: int
    started_at: float
    ends_at: float | None
    devices: list[str] = []  # Cast device specs; empty: stream only
    mode: str = "hls"  # hls | direct (the device loads the page itself; no encoder)
    page: PageOverrides = msgspec.field(default_factory=PageOverrides)


def new_session_id() -> str:
    """128 random bits, URL-safe: the stream URL is unguessable."""
    return secrets.token_urlsafe(16)


class Supervisor:
    def __init__(self, conn: Connection, config: Config) -> None:
        self.conn = conn
        self.config = config
        self.sessions_dir = config.resolved_runtime_dir() / "sessions"
        self.logs_dir = config.resolved_runtime_dir() / "logs"
        self.folders_to_remove: list[Path] = []  # of sessions whose parked child may still write
        self.status = Status(supervisor_pid=os.getpid())
        self.wanted: Wanted | None = None
        self.encoder: EncoderProcess | None = None
        self.encoder_session: str | None = None
        self.encoder_nav = -1
        self.backoff = Backoff()
        self.restart_at: float | None = None
        self.streaming_since: float | None = None
        self.encoder_ready = False  # the current child has shown the page in a finished segment
        self.child_error: str | None = None  # the current child's last reported error (its last words)
        self.frames_watch = Watch()
        self.segments_watch = Watch()
        self.crash_times: list[float] = []
        self.media_end = 0.0  # the session clock: media time at the end of its last listed segment
        self.casting = Casting(config)
        self.running = True
        self.applied = 0  # commands applied so far
        self._last_push = 0.0
        self._pushed: Status | None = None

    # ---- main loop ---------------------------------------------------------------------
    def run(self) -> None:
        self._clean_runtime()
        if self.config.standby == "boot":
            self._spawn(parked=True)
        self._fill_status()
        self.push(force=True)
        log.info("supervisor ready", pid=os.getpid(), runtime_dir=str(self.sessions_dir))
        while self.running:
            waitables: list = [self.conn]
            if self.encoder:
                waitables += [self.encoder.conn, self.encoder.sentinel]
            waitables += self.casting.waitables()
            try:
                ready = wait(waitables, timeout=TICK)
            except InterruptedError:
                ready = []
            if self.conn in ready:
                self._read_commands()
            if self.encoder is not None:
                self._read_child()
                if not self.encoder.alive():
                    self._on_child_exit()
            self._poll_cast()
            self._timers()
            self.push()
        if self.status.session and self.status.state in ("starting", "streaming"):  # SIGTERM, not a command
            log.info("session stop", session=self.status.session, reason="castd is shutting down")
        self.casting.end()  # the devices stop while the encoder ends
        self._end_session()
        self._end_encoder()
        self.casting.shutdown(CAST_STOP_WAIT)
        self.status = Status(state="idle", supervisor_pid=os.getpid())
        self.push(force=True)
        log.info("supervisor exiting")

    def push(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self.status == self._pushed and now - self._last_push < SNAPSHOT_INTERVAL:
            return
        self.status.updated_at = time.time()
        self.status.encoder_pid = self.encoder.pid if self.encoder else None
        self._send(Snapshot(status=self.status))
        self._pushed = msgspec.structs.replace(self.status)
        self._last_push = now

    def _send(self, message: msgspec.Struct) -> None:
        try:
            self.conn.send_bytes(encode(message))
        except (BrokenPipeError, OSError):
            self.running = False  # the front end is gone; shut down

    # ---- commands ----------------------------------------------------------------------
    def _read_commands(self) -> None:
        commands: list[Command] = []
        try:
            while self.conn.poll():
                commands.append(command_decoder.decode(self.conn.recv_bytes()))
        except (EOFError, OSError):
            log.warning("front end pipe closed; shutting down")
            self.running = False
        except msgspec.DecodeError as exc:
            log.error("undecodable command", error=str(exc))
        acks = []
        for command in commands:
            self.applied += 1
            ack = self._apply(command)
            ack.seq = self.applied
            acks.append(ack)
        if commands:
            self._reconcile()
        for ack in acks:
            self._send(ack)
        self.push(force=bool(commands))

    def _apply(self, command: Command) -> Ack:
        if isinstance(command, Start):
            return self._apply_start(command)
        if isinstance(command, Stop):
            stopped = self.wanted.session if self.wanted else None
            if self.wanted:
                log.info("session stop", session=stopped, reason=command.reason)
            self.wanted = None
            return Ack(command_id=command.id, ok=True, stopped=stopped)
        if isinstance(command, Reload):
            if self.wanted is None:
                return Ack(command_id=command.id, ok=False, error="nothing is being cast")
            self.wanted.nav += 1  # the reconcile step navigates to the same URL again
            log.info("session reload", session=self.wanted.session, url=self.wanted.url)
            return Ack(command_id=command.id, ok=True, session=self.wanted.session, switched=True)
        if isinstance(command, Shutdown):
            if self.wanted:
                log.info("session stop", session=self.wanted.session, reason="castd is shutting down")
            self.wanted = None
            self.running = False
            return Ack(command_id=command.id, ok=True)
        return Ack(command_id=getattr(command, "id", ""), ok=False, error="unknown command")

    def _apply_start(self, command: Start) -> Ack:
        now = time.time()
        ends_at = now + command.duration if command.duration else None
        wanted = self.wanted
        if wanted and wanted.quality == command.quality and wanted.mode == command.mode \
                and wanted.devices == command.devices and self.status.state != "failed":
            wanted.url, wanted.nav, wanted.ends_at = command.url, wanted.nav + 1, ends_at
            wanted.page = command.page
            log.info("session switch", session=wanted.session, url=command.url, quality=command.quality)
            return Ack(command_id=command.id, ok=True, session=wanted.session, switched=True)
        if wanted:
            log.info("session stop", session=wanted.session, reason="replaced by a new start")
        self.wanted = Wanted(session=new_session_id(), url=command.url, quality=command.quality, nav=0,
                             started_at=now, ends_at=ends_at, page=command.page,
                             devices=list(command.devices), mode=command.mode)
        log.info("session start", session=self.wanted.session, url=command.url, quality=command.quality,
                 duration=command.duration, mode=command.mode, devices=", ".join(command.devices) or None)
        return Ack(command_id=command.id, ok=True, session=self.wanted.session)

    # ---- reconcile the encoder with the wanted session -----------------------------------
    def _reconcile(self) -> None:
        wanted = self.wanted
        if wanted is None:
            self.casting.end()  # first: the TVs stop while the encoder ends
            if self.encoder_session is not None or self.status.state not in ("idle", "failed"):
                self.status.state = "stopping"
                self.push(force=True)
                self._end_session()
                self._reset_status("idle")
            return
        if self.encoder_session != wanted.session:
            # first: the worker connects and launches the app while the encoder starts
            self.casting.begin(wanted.session, wanted.mode, wanted.devices, title_for(wanted.url), wanted.url)
            if self.encoder_session is not None:
                self.status.state = "stopping"
                self.push(force=True)
            self._end_session()
            self._reset_status("starting")
            self.media_end = 0.0  # a new session, a new timeline
            self.backoff.reset()
            self.crash_times = []
            if wanted.mode == "direct":
                self.encoder_session, self.encoder_nav = wanted.session, wanted.nav  # no encoder to start
            else:
                self._begin()
        elif wanted.mode == "direct":
            self.casting.switch_page(wanted.session, wanted.url)
        elif self.encoder and self.encoder_nav != wanted.nav:
            self.encoder.send(Navigate(url=wanted.url, nav=wanted.nav, page=wanted.page))
            self.encoder_nav = wanted.nav
            self.status.page = "loading"
        self._fill_status()

    def _fill_status(self) -> None:
        wanted = self.wanted
        self.status.standby = "warm" if self.encoder is not None and self.encoder.parked else None
        self._fill_cast()
        if wanted is None:
            return
        self.status.session, self.status.url, self.status.quality = wanted.session, wanted.url, wanted.quality
        self.status.started_at, self.status.ends_at = wanted.started_at, wanted.ends_at
        self.status.mode, self.status.devices = wanted.mode, list(wanted.devices)
        self.status.stream_path = f"/stream/{wanted.session}/index.m3u8" if wanted.mode == "hls" else None

    def _fill_cast(self) -> None:
        devices = self.wanted.devices if self.wanted is not None else self.config.default_devices()
        self.status.cast = self.casting.section("no device set" if not devices else None)

    def _poll_cast(self) -> None:
        """Cast news: device states into the status; the session ends when the viewer took the TVs back."""
        verdict = self.casting.poll()
        if self.casting.changed:
            self.casting.changed = False
            self._fill_cast()
        wanted = self.wanted
        if wanted is None:
            return
        if wanted.mode == "direct" and self.status.state == "starting" and self.casting.any_playing():
            self.status.state = "streaming"
            log.info("page on the device", session=wanted.session, url=wanted.url,
                     seconds=round(time.time() - wanted.started_at, 2))
        if verdict:
            log.warning("session ended by the viewer; castd will not cast it again", session=wanted.session,
                        devices="; ".join(verdict))
            self.wanted = None
            self._reconcile()

    def _reset_status(self, state: str) -> None:
        self.status = Status(state=state, supervisor_pid=os.getpid())  # type: ignore[arg-type]
        self.streaming_since = None
        self._fill_status()

    def _begin(self) -> None:
        """Stream the wanted session: in the parked child when it fits, else in a new child."""
        wanted = self.wanted
        assert wanted is not None
        encoder = self.encoder
        if encoder is not None and encoder.parked and encoder.quality == wanted.quality and encoder.alive():
            folder = self.sessions_dir / wanted.session
            encoder.send(Begin(session=wanted.session, folder=str(folder), url=wanted.url, nav=wanted.nav,
                               page=wanted.page, timeline=self._timeline()))
            encoder.parked = False
            self._track(wanted)
            log.info("encoder reused from standby", session=wanted.session, pid=encoder.pid, url=wanted.url)
            return
        if encoder is not None:
            self._end_encoder()
        self._spawn()

    def _timeline(self) -> Timeline:
        """Where the next child continues the wanted session: at the end of what its playlist
        already lists; a child after another one of the same session is a real break."""
        return Timeline(start=self.media_end, discontinuity=self.media_end > 0)

    def _track(self, wanted: Wanted) -> None:
        self.encoder_session, self.encoder_nav = wanted.session, wanted.nav
        self.encoder_ready = False
        self.frames_watch, self.segments_watch = Watch(), Watch()
        self.status.page = "loading"
        self.restart_at = None

    def _spawn(self, parked: bool = False) -> None:
        """Start a child: for the wanted session, or (parked=True) as a warm standby."""
        wanted = None if parked else self.wanted
        config = self.config
        quality = wanted.quality if wanted else config.quality
        params = ChildParams(session=wanted.session if wanted else None, url=wanted.url if wanted else "",
                             nav=wanted.nav if wanted else 0,
                             preset=get_preset(quality),
                             folder=str(self.sessions_dir / wanted.session) if wanted else "",
                             logs_dir=str(self.logs_dir / secrets.token_hex(6)),
                             chromium=config.chromium, chromedriver=config.chromedriver, xvfb=config.xvfb,
                             page_load_timeout=config.page_load_timeout,
                             renderer_heap_mb=config.renderer_heap_mb, log_level=config.log_level,
                             allowlist=list(Allowlist.parse(config.allowlist).prefixes),
                             log_secrets=[config.token] if config.token else [],
                             sites=config.sites, page=wanted.page if wanted else PageOverrides(),
                             timeline=self._timeline() if wanted else Timeline())
        self.encoder = EncoderProcess(params)
        self.child_error = None
        if wanted:
            self._track(wanted)
            log.info("encoder started", session=wanted.session, pid=self.encoder.pid, url=wanted.url)
        else:
            log.info("standby encoder started", pid=self.encoder.pid, quality=quality)

    def _end_session(self) -> None:
        """Stop streaming the current session: park the child (warm standby) or end it; the
        session's files go (once the child has closed them, when it parks)."""
        session, self.encoder_session = self.encoder_session, None
        self.restart_at = None
        encoder = self.encoder
        if session is None:
            return
        folder = self.sessions_dir / session
        if encoder is not None and not encoder.parked and self.config.standby != "off" and encoder.alive():
            encoder.send(Park())
            encoder.parked = True
            self.folders_to_remove.append(folder)
            return
        if encoder is not None and not encoder.parked:
            self._end_encoder()
        remove_session_files(folder)

    def _end_encoder(self) -> None:
        encoder, self.encoder = self.encoder, None
        self.restart_at = None
        if encoder is None:
            return
        code = encoder.end()
        log.debug("encoder ended", pid=encoder.pid, exitcode=code)
        self._remove_parked_folders()

    def _remove_parked_folders(self) -> None:
        for folder in self.folders_to_remove:
            remove_session_files(folder)
        self.folders_to_remove.clear()

    # ---- child reports -----------------------------------------------------------------
    def _read_child(self) -> None:
        assert self.encoder is not None
        for message in self.encoder.messages():
            if isinstance(message, Progress):
                self.status.frames, self.status.fps = message.frames, message.fps
                self.status.segments = message.segments
                if not self.encoder.parked:
                    self.media_end = max(self.media_end, message.media_end)
                self.frames_watch.update(message.frames)
                if message.segments:
                    self.segments_watch.update(message.segments)
            elif isinstance(message, ChildEvent):
                self._on_child_event(message)

    def _on_child_event(self, event: ChildEvent) -> None:
        session = self.encoder_session
        current = self.wanted is not None and event.nav == self.wanted.nav
        if event.kind == "parked":
            self._remove_parked_folders()
            self._fill_status()
            return
        if event.kind == "ready":
            self.encoder_ready = True
        if event.kind == "ready" and current:
            self.casting.stream_ready(session or "", f"/stream/{session}/index.m3u8")
            if self.status.state == "starting":
                self.streaming_since = time.monotonic()
                log.info("first segment", session=session, url=event.url,
                         seconds=round(time.time() - (self.status.started_at or time.time()), 2))
            else:
                log.info("page switched", session=session, url=event.url)
            self.status.state = "streaming"
        elif event.kind == "page_loaded":
            if current:
                self.status.page = "loaded"
            log.info("page loaded", session=session, url=event.url, seconds=event.message)
        elif event.kind == "page_error":
            if current:
                self.status.page = "error"
                self.status.last_error = f"page: {event.message}"
            log.warning("page failed to load", session=session, url=event.url, error=event.message)
        elif event.kind == "error":
            self.status.last_error = self.child_error = event.message
            log.error("encoder error", session=session, error=event.message)

    def _on_child_exit(self) -> None:
        encoder = self.encoder
        assert encoder is not None
        tail = encoder.log_tail()
        code = encoder.end(grace=0)
        if encoder.parked:
            self.encoder = None  # a direct session may be running without it: keep encoder_session
        else:
            self._forget_encoder()
        if self.wanted is None or encoder.parked:
            if encoder.parked:
                log.warning("standby encoder exited; the next start will be cold", exitcode=code,
                            output=tail[-300:] or None)
                self._remove_parked_folders()
                self._fill_status()
            return
        last_words = f": {self.child_error}" if self.child_error else ""
        self._encoder_failed(f"encoder exited with code {code}{last_words}", tail)

    def _forget_encoder(self) -> None:
        self.encoder = None
        self.encoder_session = None

    def _encoder_failed(self, reason: str, tail: str = "") -> None:
        """Restart the child (the stream URL stays), paced; give up as `failed` on a crash loop.

        A child that never showed the page counts towards `max_restarts` with doubling delays;
        one that had been streaming is restarted after the first delay (the TV is watching), unless
        such crashes pile up within CRASH_WINDOW.
        """
        wanted = self.wanted
        assert wanted is not None
        now = time.monotonic()
        self.status.last_error = reason
        if self.encoder_ready:
            self.crash_times = [t for t in self.crash_times if now - t < CRASH_WINDOW] + [now]
            give_up = len(self.crash_times) >= MAX_CRASHES_IN_WINDOW
            delay = self.backoff.first
        else:
            give_up = self.backoff.failures + 1 >= self.config.max_restarts
            delay = self.backoff.next_delay()
        self.streaming_since = None
        if give_up:
            self.status.state = "failed"
            self.status.last_error = f"{reason}; gave up after {self.status.restarts} restarts" + \
                (f"\n{tail}" if tail else "")
            log.error("session failed", session=wanted.session, url=wanted.url, error=reason,
                      restarts=self.status.restarts, output=tail[-300:] or None)
            self.wanted = None
            self.casting.end()
            remove_session_files(self.sessions_dir / wanted.session)
            return
        self.restart_at = now + delay
        self.status.state = "starting"
        log.warning("encoder failed; restarting", session=wanted.session, url=wanted.url, error=reason,
                    restart_in=delay, restarts=self.status.restarts)

    # ---- timers ------------------------------------------------------------------------
    def _timers(self) -> None:
        now = time.monotonic()
        wanted = self.wanted
        if wanted and wanted.ends_at and time.time() >= wanted.ends_at:
            log.info("session duration reached", session=wanted.session)
            self.wanted = None
            self._reconcile()
            return
        if wanted and self.encoder is None and self.restart_at is not None and now >= self.restart_at:
            self.encoder_session = None
            self.status.restarts += 1
            self._spawn()
            return
        encoder = self.encoder
        if encoder is None or wanted is None or encoder.parked:  # parked: warm standby during a direct session
            return
        if self.streaming_since is not None:
            self.backoff.healthy_since(now - self.streaming_since)
        config = self.config
        silent = now - encoder.last_message_at
        if silent > config.frame_stall_seconds:
            self._kill_stalled(f"no report from the encoder for {silent:.1f}s")
        elif self.frames_watch.age() > config.frame_stall_seconds:
            self._kill_stalled(f"no new frame for {self.frames_watch.age():.1f}s")
        elif self.segments_watch.age() > config.segment_stall_seconds + (
                0 if self.segments_watch.value else config.page_load_timeout):
            self._kill_stalled(f"no new segment for {self.segments_watch.age():.1f}s")

    def _kill_stalled(self, reason: str) -> None:
        encoder = self.encoder
        assert encoder is not None
        log.warning("encoder stalled; killing it", session=encoder.params.session, reason=reason)
        tail = encoder.log_tail()
        encoder.end(grace=0)
        self._forget_encoder()
        self._encoder_failed(f"stalled: {reason}", tail)

    # ---- start-up ----------------------------------------------------------------------
    def _clean_runtime(self) -> None:
        """Remove session folders and X locks left by an earlier crash."""
        if self.sessions_dir.exists():
            for stale in self.sessions_dir.iterdir():
                remove_session_files(stale)
                log.info("removed stale session folder", path=str(stale))
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        remove_session_files(self.logs_dir)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for lock in clean_stale_locks():
            log.info("removed stale X lock", path=lock)


def main(conn: Connection, config_bytes: bytes) -> None:
    """Entry point of the spawned supervisor process."""
    config = msgspec.msgpack.decode(config_bytes, type=Config)
    set_pdeathsig(signal.SIGTERM)
    setup_logging(config.log_level)
    register_secret(config.token)
    supervisor = Supervisor(conn, config)

    def on_term(*_):
        supervisor.wanted = None
        supervisor.running = False

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        supervisor.run()
    except Exception:
        log.exception("supervisor crashed")
        supervisor._end_encoder()
        raise
