"""A child process on a Pipe (the supervisor, the encoder, the cast worker): the real `Child`.

Spawned (never forked: every castd parent runs threads), msgspec messages both ways, and ended with its
whole process group: the encoder and the cast worker lead one, so one killpg takes every helper they
started. Nothing here waits: `exitcode()` is a WNOHANG poll and `kill()` only sends SIGKILL, so a parent
loop stays responsive while a child ends (it waits on `waitables()`, the pipe and the exit sentinel).

One version at a time: `make install-service` upgrades the venv in place, and a child spawned after that
imports the new castd from disk while its parent runs the old one. So the parent passes the protocol
version it was built with (castd/protocol.py PROTOCOL_VERSION) and the child compares it with its own
before anything else: on a mismatch it logs once and exits with exits.VERSION_MISMATCH, which no parent
retries (castd/children/policy.py); the front end then exits so that systemd starts the new castd.

A message that cannot be decoded is never dropped silently: it is logged (the first MAX_LOGGED of each
child, then one line in DECODE_LOG_EVERY) and counted in `undecodable`.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from castd.children import exits
from castd.logs import log
from castd.procutil import kill_group
from castd.protocol import PROTOCOL_VERSION

_ctx = multiprocessing.get_context("spawn")
MAX_LOGGED = 5  # undecodable messages logged in full per child; then one line every DECODE_LOG_EVERY
DECODE_LOG_EVERY = 100


def _entry(target: Callable[..., None], conn: Any, payload: bytes, parent_version: str, name: str) -> None:
    """The spawned child's first code: refuse to run beside a parent of another castd, then run `target`."""
    from castd import protocol  # this child's own, from the files on disk now

    if protocol.PROTOCOL_VERSION != parent_version:
        from castd.logs import setup_logging

        setup_logging("INFO")
        log.error("castd was upgraded while running: this process is another version than its parent; "
                  "restart castd (systemctl restart castd)", process=name, version=protocol.PROTOCOL_VERSION,
                  parent_version=parent_version)
        os._exit(exits.VERSION_MISMATCH)
    target(conn, payload)


class Child(Protocol):
    """What a parent needs from a child; PipedChild is the real one, the tests pass fakes."""

    pid: int
    started_at: float
    last_message_at: float
    eof: bool  # the child's end of the pipe is closed (it exited, or is exiting)

    def waitables(self) -> list[Any]: ...

    def send(self, command: msgspec.Struct) -> bool: ...

    def messages(self) -> list[Any]: ...

    def exitcode(self) -> int | None: ...

    def kill(self) -> None: ...

    def close(self) -> None: ...


class PipedChild:
    """One spawned process and its end of a Pipe.

    Invariant: no method blocks (a spawn writes its small start-up payload to a fresh pipe; the rest are
    non-blocking polls and signals), and `close()` runs only once the process has been reaped.
    """

    def __init__(self, target: Callable[..., None], payload: bytes, name: str,
                 decoder: msgspec.msgpack.Decoder[Any], clock: Callable[[], float] = time.monotonic,
                 version: str = PROTOCOL_VERSION) -> None:
        self._decoder, self._clock = decoder, clock
        self.name = name
        self.undecodable = 0  # messages from the child that could not be decoded (each one logged or counted)
        self.conn, child_conn = _ctx.Pipe()
        self.process = _ctx.Process(target=_entry, args=(target, child_conn, payload, version, name), name=name,
                                    daemon=False)
        self.process.start()
        child_conn.close()
        assert self.process.pid is not None
        self.pid: int = self.process.pid
        self.started_at = clock()
        self.last_message_at = self.started_at
        self._closed = False
        self.eof = False

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def waitables(self) -> list[Any]:
        if self._closed:
            return []
        return [self.process.sentinel] if self.eof else [self.conn, self.process.sentinel]

    def send(self, command: msgspec.Struct) -> bool:
        try:
            self.conn.send_bytes(msgspec.msgpack.encode(command))
            return True
        except (BrokenPipeError, OSError):
            return False

    def messages(self) -> list[Any]:
        """Everything the child has sent so far (never blocks)."""
        out = []
        try:
            while not self._closed and self.conn.poll():
                data = self.conn.recv_bytes()
                try:
                    out.append(self._decoder.decode(data))
                except msgspec.DecodeError as exc:  # one bad message; the next ones are read on
                    self._undecodable(data, exc)
        except (EOFError, OSError):
            self.eof = True  # always "readable" from now on: the parent stops waiting on the pipe
        if out:
            self.last_message_at = self._clock()
        return out

    def _undecodable(self, data: bytes, exc: msgspec.DecodeError) -> None:
        self.undecodable += 1
        if self.undecodable <= MAX_LOGGED or self.undecodable % DECODE_LOG_EVERY == 0:
            log.error("message from a child could not be decoded; dropped", child=self.name, pid=self.pid,
                      error=str(exc), size=len(data), count=self.undecodable, start=repr(data[:60]))

    def exitcode(self) -> int | None:
        """The exit status once the process has ended (reaped here, WNOHANG), else None."""
        return self.process.exitcode

    def kill(self) -> None:
        """SIGKILL the child's whole group (and the child itself, if it had not made its group yet)."""
        kill_group(self.pid)
        if self.process.exitcode is None:
            self.process.kill()

    def close(self) -> None:
        """Release the pipe; every helper left in the child's group is killed (the leader is gone)."""
        if self._closed:
            return
        self._closed = True
        kill_group(self.pid)
        self.conn.close()

    def end_now(self, quit_message: msgspec.Struct, grace: float) -> int | None:
        """Blocking end for a parent that is itself exiting (a crash path): quit, wait `grace`, kill."""
        if self.process.exitcode is None:
            self.send(quit_message)
            self.process.join(grace)
        self.kill()
        self.process.join(1.0)
        self.close()
        return self.process.exitcode
