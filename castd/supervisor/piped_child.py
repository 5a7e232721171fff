"""A child process the supervisor talks to over a Pipe (the encoder, the cast worker).

Spawned (never forked: the supervisor runs threads), msgspec messages both ways, and ended with
its whole process group: the child leads one, so one killpg takes every helper it started.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable

import msgspec

from castd.procutil import kill_group

_ctx = multiprocessing.get_context("spawn")


class PipedChild:
    END_GRACE = 2.0  # seconds a child gets to quit cleanly before its group is killed

    def __init__(self, target: Callable, payload: bytes, name: str, decoder: msgspec.msgpack.Decoder,
                 quit_message: msgspec.Struct) -> None:
        self._decoder, self._quit = decoder, quit_message
        self.conn, child_conn = _ctx.Pipe()
        self.process = _ctx.Process(target=target, args=(child_conn, payload), name=name, daemon=False)
        self.process.start()
        child_conn.close()
        self.pid: int = self.process.pid  # type: ignore[assignment]
        self.started_at = time.monotonic()
        self.last_message_at = self.started_at

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, command: msgspec.Struct) -> bool:
        try:
            self.conn.send_bytes(msgspec.msgpack.encode(command))
            return True
        except (BrokenPipeError, OSError):
            return False

    def messages(self) -> list:
        """Everything the child has sent so far (never blocks)."""
        out = []
        try:
            while self.conn.poll():
                out.append(self._decoder.decode(self.conn.recv_bytes()))
        except (EOFError, OSError, msgspec.DecodeError):
            pass
        if out:
            self.last_message_at = time.monotonic()
        return out

    def end(self, grace: float | None = None) -> int | None:
        """Ask the child to quit, wait up to `grace` (END_GRACE), then kill its whole process group."""
        grace = self.END_GRACE if grace is None else grace
        if self.process.is_alive():
            self.send(self._quit)
            self.process.join(grace)
        kill_group(self.pid)
        self.process.join(1.0)
        if self.process.is_alive():  # not in its own group yet (killed before setpgrp)
            self.process.kill()
            self.process.join(1.0)
        self.conn.close()
        return self.process.exitcode
