"""The cast worker process: pychromecast lives here and nowhere else.

The supervisor starts it (spawn), talks to it over a Pipe (castd/cast/messages.py) and restarts it when
it dies, pychromecast segfault included, without ending the session: the new worker gets the whole wanted
state again, with the receiver session castd had launched on each device, and adopts what still plays.
It leads its own process group and dies with the supervisor (PR_SET_PDEATHSIG).

One thread per device (castd/cast/link.py); this module only routes commands to links and reports back.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import msgspec

from castd.cast.devices import Resolver
from castd.cast.link import Link, Plan, replace
from castd.cast.messages import CastQuit, CastStop, CastWant, DeviceReport, WorkerCommand, command_decoder, encode
from castd.children import exits
from castd.config import Config
from castd.protocol import USER_STATES
from castd.logs import log, register_secret, setup_logging
from castd.procutil import set_pdeathsig

ORPHAN_STOP_SECONDS = 3.0  # with the supervisor gone, this long to take castd off the TVs
JOIN_SECONDS = 1.5  # then this long for the links to close their connections


def tune_pychromecast(heartbeat_timeout: float) -> None:
    """pychromecast pings every 10 s and gives up 20 s after the last PONG, checked every 5 s: make
    that `cast_heartbeat_timeout` (these module constants are read at each use)."""
    from pychromecast import socket_client
    from pychromecast.controllers import heartbeat

    setattr(heartbeat, "HB_PING_TIME", heartbeat_timeout / 2)  # declared int there; read as seconds
    setattr(heartbeat, "HB_PONG_TIME", heartbeat_timeout / 2)
    socket_client.SELECT_TIMEOUT = min(5.0, heartbeat_timeout / 4)


class _Demoted(logging.Handler):
    """pychromecast's own log lines go to DEBUG: castd's link logs tell the story once."""

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("pychromecast", level=record.levelname, text=record.getMessage())


class Worker:
    def __init__(self, conn, config: Config, stopping: threading.Event) -> None:
        self.conn = conn
        self.config = config
        self.stopping = stopping
        self.links: dict[str, Link] = {}
        self.resolver = Resolver(config.mdns_interfaces, config.mdns_timeout)
        self._send_lock = threading.Lock()
        self.orphaned = False

    def report(self, link: Link) -> None:
        self._send(DeviceReport(session=link.session, device=link.snapshot(), app_session=link.app_session))

    def _send(self, message: msgspec.Struct) -> None:
        with self._send_lock:
            try:
                self.conn.send_bytes(encode(message))
            except (BrokenPipeError, OSError):
                self.orphaned = True
                self.stopping.set()

    def run(self) -> None:
        log.info("cast worker ready", pid=os.getpid())
        while not self.stopping.is_set():
            try:
                if not self.conn.poll(0.2):
                    continue
                command = command_decoder.decode(self.conn.recv_bytes())
            except (EOFError, OSError):
                log.warning("supervisor gone; cast worker stopping")
                self.orphaned = True
                break
            except msgspec.DecodeError as exc:
                log.error("undecodable cast command", error=str(exc))
                continue
            self.handle(command)
        self.shutdown(stop_devices=self.orphaned)

    def handle(self, command: WorkerCommand) -> None:
        if isinstance(command, CastWant):
            plan = Plan(session=command.session, mode=command.mode, title=command.title,
                        stream_path=command.stream_path, page_url=command.page_url, sharing=command.sharing)
            for target in command.devices:
                link = self.links.get(target.spec.casefold())
                if link is None or not link.is_alive():
                    self._start_link(target.spec, plan, target.app_session)
                else:
                    link.spec = target.spec  # as this session spells it (links are keyed case-blind)
                    link.update(plan)
        elif isinstance(command, CastStop):
            for target in command.devices:
                link = self.links.get(target.spec.casefold())
                if link is None or not link.is_alive():
                    self._start_link(target.spec, Plan(session=command.session, mode="hls", title="", stop=True),
                                     target.app_session)
                elif link.plan.session == command.session:
                    link.update(replace(link.plan, stop=True))
        elif isinstance(command, CastQuit):
            self.stopping.set()

    def _start_link(self, spec: str, plan: Plan, app_session: str | None) -> None:
        link = Link(spec, plan, self.config, self.resolver, self.report, app_session=app_session)
        self.links[spec.casefold()] = link
        link.start()

    def shutdown(self, stop_devices: bool) -> None:
        links = [link for link in self.links.values() if link.is_alive()]
        if stop_devices:  # nobody will stop these sessions later: take castd off the TVs now
            for link in links:
                link.update(replace(link.plan, stop=True))
            deadline = time.monotonic() + ORPHAN_STOP_SECONDS
            while time.monotonic() < deadline and any(link.state not in ("stopped", *USER_STATES)
                                                      for link in links):
                time.sleep(0.05)
        for link in links:
            link.close()
        deadline = time.monotonic() + JOIN_SECONDS  # a link stuck in a connect is left to os._exit
        for link in links:
            link.join(max(0.0, deadline - time.monotonic()))
        self.resolver.close()
        log.info("cast worker exiting")


def main(conn, config_bytes: bytes) -> None:
    """Entry point of the spawned worker."""
    os.setpgrp()
    set_pdeathsig(signal.SIGTERM)
    config = msgspec.msgpack.decode(config_bytes, type=Config)
    setup_logging(config.log_level)
    register_secret(config.token)
    logging.basicConfig(handlers=[_Demoted()], level=logging.INFO, force=True)
    tune_pychromecast(config.cast_heartbeat_timeout)
    stopping = threading.Event()
    worker = Worker(conn, config, stopping)

    def on_term(*_) -> None:  # the supervisor died (PR_SET_PDEATHSIG): nobody else will stop the TVs
        worker.orphaned = True
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = exits.OK
    try:
        worker.run()
    except Exception:  # a crash is reported by the exit code; the supervisor restarts the worker
        log.exception("cast worker crashed")
        code = exits.CRASHED
    os._exit(code)
