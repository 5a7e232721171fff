"""The front end's side of the supervisor: spawn it, send commands, keep its latest snapshot.

Runs inside uvicorn's event loop: the pipe is watched with `add_reader`, so /status answers from
the last snapshot without waiting on anything, and a command waits only for its Ack (which the
supervisor sends before any slow work). If the supervisor dies, it is started again and the
death is remembered for /health.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable

import msgspec

from castd.config import Config
from castd.logs import log
from castd.procutil import kill_group, kill_tree, reap_adopted, set_child_subreaper
from castd.protocol import Ack, Command, Shutdown, Snapshot, Status, encode, event_decoder
from castd.supervisor import loop
from castd.supervisor.backoff import Backoff

_ctx = multiprocessing.get_context("spawn")


class SupervisorUnavailable(RuntimeError):
    pass


class SupervisorHandle:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.status = Status()
        self.snapshot_at = 0.0  # monotonic time of the last snapshot
        self.started_at = 0.0
        self.restarts = 0
        self.last_death: str | None = None
        self.process = None
        self.conn = None
        self._pending: dict[str, asyncio.Future[Ack]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.on_status: list[Callable[[Status], None]] = []
        self.backoff = Backoff(first=0.2)
        self._death_handled = False
        self._restart_at = 0.0

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        set_child_subreaper()  # orphans of a dead supervisor come to us, not to init
        parent_conn, child_conn = _ctx.Pipe()
        self.process = _ctx.Process(target=loop.main, args=(child_conn, msgspec.msgpack.encode(self.config)),
                                    name="castd-supervisor", daemon=False)
        self.process.start()
        child_conn.close()
        self.conn = parent_conn
        self.started_at = time.monotonic()
        self._death_handled = False
        self._loop.add_reader(parent_conn.fileno(), self._on_readable)
        log.info("supervisor started", pid=self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    async def close(self, timeout: float = 4.0) -> None:
        """Ask the supervisor to end its session and exit; kill it if it does not in time."""
        self._closing = True
        if self.process is None:
            return
        if self.process.is_alive():
            try:
                await self.command(Shutdown(id=_new_id()), timeout=1.0)
            except SupervisorUnavailable:
                pass
            deadline = time.monotonic() + timeout
            while self.process.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        self._detach()
        if self.process.is_alive():
            log.warning("supervisor did not exit in time; killing it", pid=self.process.pid)
            self.process.kill()
        self.process.join(1.0)
        self._sweep(self.status)

    def _detach(self) -> None:
        if self.conn is not None and self._loop is not None:
            try:
                self._loop.remove_reader(self.conn.fileno())
            except (ValueError, OSError):
                pass
            self.conn.close()
            self.conn = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SupervisorUnavailable("supervisor exited"))
        self._pending.clear()

    def check(self) -> bool:
        """Called periodically: if the supervisor died, note why, clean up after it, start a new one."""
        reap_adopted(exclude=self._own_children())
        if self._closing:
            return False
        now = time.monotonic()
        if self.alive():
            self.backoff.healthy_since(now - self.started_at)
            return False
        if not self._death_handled:  # just died: clean up, then restart after a paced delay
            self._death_handled = True
            code = self.process.exitcode if self.process else None
            self.last_death = f"supervisor exited with code {code} at {time.strftime('%H:%M:%S')}"
            self._detach()
            self._sweep(self.status)
            self.status = Status()
            delay = self.backoff.next_delay()
            self._restart_at = now + delay
            log.error("supervisor died; starting a new one", exitcode=code, restart_in=delay)
        if now < self._restart_at:
            return False
        self.restarts += 1
        self.start()
        return True

    def _own_children(self) -> set[int]:
        """Children whose exit status multiprocessing reads itself (never reap those)."""
        from multiprocessing import resource_tracker

        own = {self.process.pid} if self.process is not None and self.process.pid else set()
        tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
        if tracker:
            own.add(tracker)
        return own

    def _sweep(self, status: Status) -> None:
        """End everything a dead supervisor left behind: the encoder's group, and every process
        re-parented to us (we are a subreaper) except multiprocessing's own helper."""
        if status.encoder_pid:
            kill_group(status.encoder_pid)
        keep = self._own_children() - ({self.process.pid} if self.process is not None else set())
        killed = kill_tree(os.getpid(), keep=keep)
        if killed:
            log.warning("ended processes left by the supervisor", pids=",".join(map(str, killed)))
        time.sleep(0.05)
        reap_adopted(exclude=self._own_children())

    # ---- messages ----------------------------------------------------------------------
    def _on_readable(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            while conn.poll():
                self._handle(event_decoder.decode(conn.recv_bytes()))
        except (EOFError, OSError):
            self._detach()
        except msgspec.DecodeError as exc:
            log.error("undecodable supervisor message", error=str(exc))

    def _handle(self, event) -> None:
        if isinstance(event, Snapshot):
            self.status = event.status
            self.snapshot_at = time.monotonic()
            for callback in self.on_status:
                callback(event.status)
        elif isinstance(event, Ack):
            future = self._pending.pop(event.command_id, None)
            if future is not None and not future.done():
                future.set_result(event)

    async def command(self, command: Command, timeout: float = 5.0) -> Ack:
        if self.conn is None or not self.alive():
            raise SupervisorUnavailable("supervisor is not running")
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[command.id] = future
        try:
            self.conn.send_bytes(encode(command))
            return await asyncio.wait_for(future, timeout)
        except (BrokenPipeError, OSError) as exc:
            raise SupervisorUnavailable(f"supervisor pipe: {exc}") from exc
        except asyncio.TimeoutError:
            raise SupervisorUnavailable("supervisor did not answer in time") from None
        finally:
            self._pending.pop(command.id, None)


def _new_id() -> str:
    return uuid.uuid4().hex


new_command_id = _new_id
