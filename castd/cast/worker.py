"""The cast worker process: pychromecast lives here and nowhere else.

The supervisor starts it (spawn), talks to it over a Pipe (castd/cast/messages.py) and restarts it when
it dies, pychromecast segfault included, without ending the session: the new worker gets the whole wanted
state again, with the receiver session castd had launched on each device, and adopts what still plays.
It leads its own process group and dies with the supervisor (PR_SET_PDEATHSIG).

One thread per device (castd/cast/link.py); this module only routes commands to links and reports back.
One device, one link (as Home Assistant keys its casts by UUID): a TV named once by friendly name and once
by address resolves to the same address, and the second link to resolve it hands its plan to the first
and ends before it connects, so two links never LAUNCH and LOAD over each other, nor does an old
session's stop quit the new session's app. Links are keyed by the address the spec resolves to
(host, port): an address spec has no UUID until a connection, and every spec resolves to an address.
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
from castd.protocol import USER_STATES, CastDevice
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
        self.links: dict[str, Link] = {}  # by spec (case-blind); two specs may name one link
        self.identities: dict[tuple[str, int], Link] = {}  # by the address the spec resolved to
        self._links_lock = threading.Lock()
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
            given: dict[int, str] = {}  # links that got this plan -> the spec they got it under
            for target in command.devices:
                link = self._link_for(target.spec)
                if link is None:
                    self._start_link(target.spec, plan, target.app_session)
                elif id(link) in given:  # the same TV twice in one session: cast once, say why
                    self._send(DeviceReport(session=plan.session, device=CastDevice(
                        device=target.spec, state="failed", reason=f"the same TV as {given[id(link)]}: cast there once",
                        updated_at=time.time())))
                    continue
                else:
                    with self._links_lock:
                        self._hand_over(link, target.spec, plan)
                given[id(self.links[target.spec.casefold()])] = target.spec
        elif isinstance(command, CastStop):
            stopping: dict[int, str] = {}
            for target in command.devices:
                link = self._link_for(target.spec)
                if link is not None and id(link) in stopping:  # the same TV twice: stopped once
                    self._stopped(command.session, target.spec, f"the same TV as {stopping[id(link)]}")
                    continue
                if link is not None:
                    stopping[id(link)] = target.spec
                if link is None:
                    self._start_link(target.spec, Plan(session=command.session, mode="hls", title="", stop=True),
                                     target.app_session)
                elif link.plan.session == command.session:
                    link.update(replace(link.plan, stop=True))
                else:  # that TV went on to a newer session: nothing of this one is left to stop
                    self._stopped(command.session, target.spec, f"the TV ({link.spec}) went on to a newer session")
        elif isinstance(command, CastQuit):
            self.stopping.set()

    def _link_for(self, spec: str) -> Link | None:
        """The live link that drives the TV `spec` names: by the spec, else by the address it resolves to
        without waiting (an address, or a name mDNS has already answered)."""
        with self._links_lock:
            link = self.links.get(spec.casefold())
            if link is not None and link.is_alive() and not link.quit.is_set():
                return link
        address = self.resolver.known(spec)
        with self._links_lock:
            link = self.identities.get(address) if address is not None else None
            if link is not None and link.is_alive() and not link.quit.is_set():
                self.links[spec.casefold()] = link
                return link
        return None

    def _start_link(self, spec: str, plan: Plan, app_session: str | None) -> None:
        link = Link(spec, plan, self.config, self.resolver, self.report, app_session=app_session, claim=self.claim)
        with self._links_lock:
            self.links[spec.casefold()] = link
        link.start()

    def claim(self, link: Link, address: tuple[str, int]) -> str | None:
        """A link resolved its spec (in its own thread): None, it drives that TV; else why it must end."""
        with self._links_lock:
            other = self.identities.get(address)
            if other is None or other is link or not other.is_alive() or other.quit.is_set():
                self.identities[address] = link
                return None
            plan, theirs = link.plan, other.plan
            if plan.session == theirs.session and not plan.stop and not theirs.stop:
                return f"the same TV as {other.spec}: cast there once"
            if plan.stop:  # a stop for a session: the link that has the TV does it, if it is that session's
                if theirs.session == plan.session:
                    other.update(replace(theirs, stop=True))
                else:
                    self._stopped(plan.session, link.spec, f"the TV ({other.spec}) went on to a newer session")
            else:
                self._hand_over(other, link.spec, plan)
            return f"handed over to the link of {other.spec}"

    def _hand_over(self, link: Link, spec: str, plan: Plan) -> None:
        """The TV's one link takes this plan, under the spec this session spells it with (lock held)."""
        theirs = link.plan
        if theirs.session != plan.session and link.spec.casefold() != spec.casefold():
            self._stopped(theirs.session, link.spec, f"the TV went on to a new session as {spec}")
        link.spec = spec
        self.links[spec.casefold()] = link
        link.update(plan)

    def _stopped(self, session: str, spec: str, reason: str) -> None:
        self._send(DeviceReport(session=session, device=CastDevice(device=spec, state="stopped", reason=reason,
                                                                   updated_at=time.time())))

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
