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

from castd.config import Config
from castd.encoder.child import ChildParams
from castd.encoder.xvfb import clean_stale_locks
from castd.logs import log, setup_logging
from castd.presets import get_preset
from castd.procutil import set_pdeathsig
from castd.protocol import (Ack, ChildEvent, Command, Navigate, PageOverrides, Progress, Shutdown, Snapshot,
                            Start, Status, Stop, command_decoder, encode)
from castd.supervisor.backoff import Backoff
from castd.supervisor.encoder_process import EncoderProcess, remove_session_files

SNAPSHOT_INTERVAL = 0.5
TICK = 0.25


class Wanted(msgspec.Struct, kw_only=True):
    """The session the commands ask for; the encoder is made to match it."""

    session: str
    url: str
    quality: str
    nav: int
    started_at: float
    ends_at: float | None
    page: PageOverrides = msgspec.field(default_factory=PageOverrides)


def new_session_id() -> str:
    """128 random bits, URL-safe: the stream URL is unguessable."""
    return secrets.token_urlsafe(16)


class Supervisor:
    def __init__(self, conn: Connection, config: Config) -> None:
        self.conn = conn
        self.config = config
        self.sessions_dir = config.resolved_runtime_dir() / "sessions"
        self.status = Status(supervisor_pid=os.getpid())
        self.wanted: Wanted | None = None
        self.encoder: EncoderProcess | None = None
        self.encoder_session: str | None = None
        self.encoder_nav = -1
        self.backoff = Backoff()
        self.restart_at: float | None = None
        self.streaming_since: float | None = None
        self.running = True
        self.applied = 0  # commands applied so far
        self._last_push = 0.0
        self._pushed: Status | None = None

    # ---- main loop ---------------------------------------------------------------------
    def run(self) -> None:
        self._clean_runtime()
        self.push(force=True)
        log.info("supervisor ready", pid=os.getpid(), runtime_dir=str(self.sessions_dir))
        while self.running:
            waitables: list = [self.conn]
            if self.encoder:
                waitables += [self.encoder.conn, self.encoder.sentinel]
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
            self._timers()
            self.push()
        self._end_encoder()
        self.status.state = "idle"
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
        if isinstance(command, Shutdown):
            self.wanted = None
            self.running = False
            return Ack(command_id=command.id, ok=True)
        return Ack(command_id=getattr(command, "id", ""), ok=False, error="unknown command")

    def _apply_start(self, command: Start) -> Ack:
        now = time.time()
        ends_at = now + command.duration if command.duration else None
        wanted = self.wanted
        if wanted and wanted.quality == command.quality and self.status.state != "failed":
            wanted.url, wanted.nav, wanted.ends_at = command.url, wanted.nav + 1, ends_at
            wanted.page = command.page
            log.info("session switch", session=wanted.session, url=command.url, quality=command.quality)
            return Ack(command_id=command.id, ok=True, session=wanted.session, switched=True)
        self.wanted = Wanted(session=new_session_id(), url=command.url, quality=command.quality, nav=0,
                             started_at=now, ends_at=ends_at, page=command.page)
        log.info("session start", session=self.wanted.session, url=command.url, quality=command.quality,
                 duration=command.duration)
        return Ack(command_id=command.id, ok=True, session=self.wanted.session)

    # ---- reconcile the encoder with the wanted session -----------------------------------
    def _reconcile(self) -> None:
        wanted = self.wanted
        if wanted is None:
            if self.encoder or self.status.state not in ("idle", "failed"):
                self.status.state = "stopping"
                self.push(force=True)
                self._end_encoder()
                self._reset_status("idle")
            elif self.status.state == "failed":
                pass
            return
        if self.encoder_session != wanted.session:
            if self.encoder:
                self.status.state = "stopping"
                self.push(force=True)
                self._end_encoder()
            self._reset_status("starting")
            self.backoff.reset()
            self._spawn()
        elif self.encoder and self.encoder_nav != wanted.nav:
            self.encoder.send(Navigate(url=wanted.url, nav=wanted.nav, page=wanted.page))
            self.encoder_nav = wanted.nav
            self.status.page = "loading"
        self._fill_status()

    def _fill_status(self) -> None:
        wanted = self.wanted
        if wanted is None:
            return
        self.status.session, self.status.url, self.status.quality = wanted.session, wanted.url, wanted.quality
        self.status.started_at, self.status.ends_at = wanted.started_at, wanted.ends_at
        self.status.stream_path = f"/stream/{wanted.session}/index.m3u8"

    def _reset_status(self, state: str) -> None:
        self.status = Status(state=state, supervisor_pid=os.getpid())  # type: ignore[arg-type]
        self.streaming_since = None
        self._fill_status()

    def _spawn(self) -> None:
        wanted = self.wanted
        assert wanted is not None
        config = self.config
        params = ChildParams(session=wanted.session, url=wanted.url, preset=get_preset(wanted.quality),
                             folder=str(self.sessions_dir / wanted.session), chromium=config.chromium,
                             chromedriver=config.chromedriver, xvfb=config.xvfb,
                             page_load_timeout=config.page_load_timeout, log_level=config.log_level,
                             sites=config.sites, page=wanted.page)
        self.encoder = EncoderProcess(params)
        self.encoder_session, self.encoder_nav = wanted.session, wanted.nav
        self.status.page = "loading"
        self.restart_at = None
        log.info("encoder started", session=wanted.session, pid=self.encoder.pid, url=wanted.url)

    def _end_encoder(self, remove_files: bool = True) -> None:
        encoder, self.encoder = self.encoder, None
        self.restart_at = None
        if encoder is None:
            return
        code = encoder.end()
        log.debug("encoder ended", session=encoder.params.session, exitcode=code)
        if remove_files:
            remove_session_files(encoder.folder)
        self.encoder_session = None

    # ---- child reports -----------------------------------------------------------------
    def _read_child(self) -> None:
        assert self.encoder is not None
        for message in self.encoder.messages():
            if isinstance(message, Progress):
                self.status.frames, self.status.fps = message.frames, message.fps
                self.status.segments = message.segments
            elif isinstance(message, ChildEvent):
                self._on_child_event(message)

    def _on_child_event(self, event: ChildEvent) -> None:
        session = self.encoder_session
        current = self.wanted is not None and event.nav == self.wanted.nav
        if event.kind == "ready" and current:
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
            self.status.last_error = event.message
            log.error("encoder error", session=session, error=event.message)

    def _on_child_exit(self) -> None:
        encoder = self.encoder
        assert encoder is not None
        tail = encoder.log_tail()
        code = encoder.end(grace=0)
        self.encoder = None
        self.encoder_session = None
        if self.wanted is None:
            return
        self._encoder_failed(f"encoder exited with code {code}", tail)

    def _encoder_failed(self, reason: str, tail: str = "") -> None:
        """Count a failure; restart with backoff, or give up as `failed` after too many in a row."""
        wanted = self.wanted
        assert wanted is not None
        self.status.restarts += 1
        self.status.last_error = reason if not self.status.last_error or "exited" in reason else \
            f"{reason} (last: {self.status.last_error})"
        if self.backoff.failures + 1 >= self.config.max_restarts:
            self.status.state = "failed"
            self.status.last_error = f"{reason}; gave up after {self.status.restarts} restarts" + \
                (f"\n{tail}" if tail else "")
            log.error("session failed", session=wanted.session, url=wanted.url, error=reason,
                      restarts=self.status.restarts, output=tail[-300:] or None)
            self.wanted = None
            remove_session_files(self.sessions_dir / wanted.session)
            return
        delay = self.backoff.next_delay()
        self.restart_at = time.monotonic() + delay
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
            self._spawn()
            return
        encoder = self.encoder
        if encoder is None or wanted is None:
            return
        if self.streaming_since is not None:
            self.backoff.healthy_since(now - self.streaming_since)
        silent = now - encoder.last_message_at
        if silent > self.config.frame_stall_seconds:
            self._kill_stalled(f"no report from the encoder for {silent:.1f}s")
        elif self.status.state == "streaming" and self.status.segments and \
                now - self._last_segment_change() > self.config.segment_stall_seconds:
            self._kill_stalled(f"no new segment for {self.config.segment_stall_seconds:.0f}s")

    def _last_segment_change(self) -> float:
        segments = self.status.segments
        if segments != getattr(self, "_seen_segments", None):
            self._seen_segments = segments
            self._seen_segments_at = time.monotonic()
        return self._seen_segments_at

    def _kill_stalled(self, reason: str) -> None:
        encoder = self.encoder
        assert encoder is not None
        log.warning("encoder stalled; killing it", session=encoder.params.session, reason=reason)
        tail = encoder.log_tail()
        encoder.end(grace=0)
        self.encoder = None
        self.encoder_session = None
        self._encoder_failed(reason, tail)

    # ---- start-up ----------------------------------------------------------------------
    def _clean_runtime(self) -> None:
        """Remove session folders and X locks left by an earlier crash."""
        if self.sessions_dir.exists():
            for stale in self.sessions_dir.iterdir():
                remove_session_files(stale)
                log.info("removed stale session folder", path=str(stale))
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        for lock in clean_stale_locks():
            log.info("removed stale X lock", path=lock)


def main(conn: Connection, config_bytes: bytes) -> None:
    """Entry point of the spawned supervisor process."""
    config = msgspec.msgpack.decode(config_bytes, type=Config)
    set_pdeathsig(signal.SIGTERM)
    setup_logging(config.log_level)
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
