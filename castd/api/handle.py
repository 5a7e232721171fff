"""The front end's side of the supervisor: spawn it, send commands, keep its latest snapshot.

Runs inside uvicorn's event loop: the pipe is watched with `add_reader`, so /status answers from
the last snapshot without waiting on anything, and a command waits only for its Ack (which the
supervisor sends in the pass that reads the command, before any child is touched). If the supervisor
dies, the death is remembered for /health, what it left behind is ended, and a new one is started with
the same restart policy every castd parent uses (castd/children/).

Liveness by asking (castd/children/liveness.py): a Ping every 2 s; a supervisor that has not answered
for `supervisor_timeout` seconds is killed and counts as dead. systemd's watchdog is fed only while the
supervisor answers (`chain_ok`), so a front end that cannot cure it gets castd restarted as a whole.

Nothing here walks /proc in the steady state: orphans come to the front end (a subreaper) only when a
supervisor dies (while it lives, it is the nearer subreaper), so they are looked for after a death only,
for REAP_AFTER_DEATH seconds, on the periodic check and never with a sleep on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from castd.children import exits
from castd.children.liveness import Liveness
from castd.children.piped import Child, PipedChild
from castd.children.policy import RestartPolicy
from castd.children.supervised import Run, Supervised
from castd.config import Config
from castd.logs import log
from castd.procutil import (adopted_children, descendants, group_members, kill_group, kill_tree, pid_alive,
                            reap_adopted, set_child_subreaper)
from castd.protocol import Ack, Command, Ping, Shutdown, Snapshot, Status, SupervisorEvent, event_decoder

HEALTHY_AFTER = 60.0  # a supervisor that ran this long before dying is restarted at once
PING_EVERY = 2.0
REAP_AFTER_DEATH = 5.0  # after a supervisor's death, how long its orphans are looked for (then reaped)


class SupervisorUnavailable(RuntimeError):
    pass


def _supervisor_main(conn: Any, config_bytes: bytes) -> None:
    from castd.supervisor import loop  # the supervisor's modules load in its own process only

    loop.main(conn, config_bytes)


def spawn_supervisor(config: Config) -> Child:
    return PipedChild(_supervisor_main, msgspec.msgpack.encode(config), "castd-supervisor", event_decoder)


class SupervisorHandle:
    """The front end's one supervisor.

    Invariants: at most one supervisor process (castd/children/supervised.py); a dead one's leftovers
    (the encoder and cast worker groups, adopted because the front end is a subreaper) are ended before
    a new one starts; every command's future ends (Ack, timeout, or the supervisor's death).
    """

    def __init__(self, config: Config, factory: Callable[[Config], Child] = spawn_supervisor) -> None:
        self.config = config
        self.status = Status()
        self.snapshot_at = 0.0  # monotonic time of the last snapshot
        self.started_at = 0.0
        self.restarts = 0
        self.last_death: str | None = None
        self.slot: Supervised[Child] = Supervised("supervisor", factory, RestartPolicy(first=0.2),
                                                  Shutdown(id="close"), time.monotonic, grace=4.0)
        self._reading: int | None = None  # the pipe's fd watched by the event loop
        self._pending: dict[str, asyncio.Future[Ack]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.on_status: list[Callable[[Status], None]] = []
        self.liveness = Liveness(every=PING_EVERY, deadline=config.supervisor_timeout)
        self._reap_until = 0.0  # monotonic: look for adopted orphans until then (after a death)
        self.exit_code = 0  # castd's exit status: exits.VERSION_MISMATCH once an upgrade was found

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        set_child_subreaper()  # orphans of a dead supervisor come to us, not to init
        child = self.slot.spawn(self.config)
        self.started_at = time.monotonic()
        self.liveness.started(self.started_at)
        conn = child.waitables()[0]
        self._reading = conn.fileno()
        self._loop.add_reader(self._reading, self._on_readable)
        log.info("supervisor started", pid=child.pid)

    def alive(self) -> bool:
        child = self.slot.child
        return child is not None and self.slot.state is Run.RUNNING and child.exitcode() is None

    async def close(self, timeout: float = 4.0) -> None:
        """Ask the supervisor to end its session and exit; its group is killed if it does not in time."""
        self._closing = True
        if self.slot.child is None:
            return
        if self.alive():
            try:
                await self.command(Shutdown(id=_new_id()), timeout=1.0)
            except SupervisorUnavailable:
                pass
        self.slot.end(timeout)
        while self.slot.child is not None:
            exited = self.slot.poll()
            if exited is None:
                await asyncio.sleep(0.05)
            elif exited.code != 0:
                log.warning("supervisor ended", pid=exited.pid, how=exited.describe())
        self._detach()
        self._sweep(self.status)
        await asyncio.sleep(0.05)  # SIGKILLed leftovers die in a few ms: collect them before castd exits
        reap_adopted()

    def _detach(self) -> None:
        if self._reading is not None and self._loop is not None:
            try:
                self._loop.remove_reader(self._reading)
            except (ValueError, OSError):
                pass
            self._reading = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SupervisorUnavailable("supervisor exited"))
        self._pending.clear()

    def chain_ok(self) -> bool:
        """The whole chain answers: the supervisor answered a ping lately (or is being replaced in time).
        What feeds systemd's watchdog: one missed deadline plus a restart, then systemd steps in."""
        if self._closing:
            return True
        return self.liveness.answering(time.monotonic(), 2 * self.liveness.deadline + PING_EVERY)

    def check(self) -> bool:
        """Called periodically: ping the supervisor; if it died or stopped answering, note why, clean up
        after it, start a new one."""
        now = time.monotonic()
        if now < self._reap_until:
            reap_adopted()
        if self._closing:
            return False
        self._ask(now)
        exited = self.slot.poll()
        if exited is not None:  # just died: clean up, then restart after a paced delay
            how = exited.reason or exited.describe()
            self.last_death = f"supervisor exited ({how}) at {time.strftime('%H:%M:%S')}"
            self._detach()
            self._sweep(self.status)
            self.status = Status()
            if exits.classify(exited.code) is exits.Exit.VERSION_MISMATCH:
                self._upgraded()
                return False
            lived = now - self.started_at
            decision = self.slot.failed(exited, lived if lived >= HEALTHY_AFTER else None)
            log.error("supervisor died; starting a new one", pid=exited.pid, how=how,
                      restart_in=decision.delay)
        if not self.slot.restart_due():
            return False
        self.slot.forget_restart()
        self.restarts += 1
        self.start()
        return True

    def _upgraded(self) -> None:
        """The supervisor, or a child of it, is another castd than this front end: castd was upgraded in
        place while it ran. No supervisor this front end starts can work, so castd exits (code 4) and
        systemd's Restart=on-failure starts the new version. Logged once."""
        self.exit_code = exits.VERSION_MISMATCH
        self._closing = True
        self.last_death = "castd was upgraded while running; restarting"
        log.error("castd was upgraded while running; exiting so that the new version starts",
                  exit_code=self.exit_code)
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful shutdown; server.py returns exit_code

    def _ask(self, now: float) -> None:
        """The liveness check: a ping when one is due; a supervisor past its deadline is killed (its exit,
        reaped by the next poll, is a death like any other)."""
        child = self.slot.child
        if child is None or not self.alive():
            return
        if self.liveness.wedged(now):
            reason = f"not answering for {now - self.liveness.asked_at:.1f}s"
            log.error("supervisor not answering; ending it", pid=child.pid, reason=reason)
            self.slot.kill(reason)
            return
        ping_id = self.liveness.ping(now)
        if ping_id is not None:
            child.send(Ping(id=ping_id))

    def _sweep(self, status: Status) -> None:
        """End everything a dead supervisor left behind: the encoder's and the cast worker's groups and
        trees (re-parented to us: we are a subreaper), then collect them."""
        leaders = set(adopted_children())
        ours = set(descendants(os.getpid()))  # a PID from an old snapshot may be another program's by now
        for pid in (status.encoder_pid, status.cast.worker_pid):
            if pid and pid in ours:
                leaders.add(pid)
        # only what still runs counts as left: a dead but unreaped orphan (a zombie) is collected below, and
        # the last snapshot's encoder and worker PIDs are usually long gone after a clean exit
        alive = {pid for leader in leaders
                 for pid in (leader, *group_members(leader), *descendants(leader)) if pid_alive(pid)}
        for pid in leaders:
            kill_group(pid)
            kill_tree(pid, include_root=True)
        if alive:
            log.warning("ended processes left by the supervisor", pids=",".join(map(str, sorted(alive))))
        reap_adopted()  # what is dead already; the rest on the next checks (no sleep on the event loop)
        self._reap_until = time.monotonic() + REAP_AFTER_DEATH

    # ---- messages ----------------------------------------------------------------------
    def _on_readable(self) -> None:
        child = self.slot.child
        if child is None:
            return
        for event in child.messages():
            self._handle(event)
        if child.eof:  # an EOF stays readable: stop watching (check() notes the death)
            self._detach()

    def _handle(self, event: SupervisorEvent) -> None:
        if isinstance(event, Snapshot):
            self.status = event.status
            self.snapshot_at = time.monotonic()
            for callback in self.on_status:
                callback(event.status)
        elif isinstance(event, Ack):
            if self.liveness.answered(time.monotonic(), event.command_id):
                return
            future = self._pending.pop(event.command_id, None)
            if future is not None and not future.done():
                future.set_result(event)

    async def command(self, command: Command, timeout: float = 5.0) -> Ack:
        child = self.slot.child
        if child is None or self._reading is None or not self.alive():
            raise SupervisorUnavailable("supervisor is not running")
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[command.id] = future
        try:
            if not child.send(command):
                raise SupervisorUnavailable("supervisor pipe closed")
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise SupervisorUnavailable("supervisor did not answer in time") from None
        finally:
            self._pending.pop(command.id, None)


def _new_id() -> str:
    return uuid.uuid4().hex


new_command_id = _new_id
