"""The supervisor's handle on the cast worker process: spawn, talk, end (with its whole group)."""

from __future__ import annotations

import multiprocessing
import time

import msgspec

from castd.cast.messages import CastQuit, WorkerCommand, WorkerEvent, encode, event_decoder
from castd.config import Config
from castd.procutil import kill_group

_ctx = multiprocessing.get_context("spawn")


def _worker_main(conn, config_bytes: bytes) -> None:
    """Imports pychromecast in the worker only (the supervisor stays without it)."""
    from castd.cast import worker  # pylint: disable=import-outside-toplevel

    worker.main(conn, config_bytes)


class CastProcess:
    def __init__(self, config: Config) -> None:
        self.conn, child_conn = _ctx.Pipe()
        self.process = _ctx.Process(target=_worker_main, args=(child_conn, msgspec.msgpack.encode(config)),
                                    name="castd-cast", daemon=False)
        self.process.start()
        child_conn.close()
        self.pid: int = self.process.pid  # type: ignore[assignment]
        self.started_at = time.monotonic()

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, command: WorkerCommand) -> bool:
        try:
            self.conn.send_bytes(encode(command))
            return True
        except (BrokenPipeError, OSError):
            return False

    def messages(self) -> list[WorkerEvent]:
        out = []
        try:
            while self.conn.poll():
                out.append(event_decoder.decode(self.conn.recv_bytes()))
        except (EOFError, OSError, msgspec.DecodeError):
            pass
        return out

    def end(self, grace: float = 3.0) -> int | None:
        """Ask the worker to quit, wait up to `grace`, then kill its whole process group."""
        if self.process.is_alive():
            self.send(CastQuit())
            self.process.join(grace)
        kill_group(self.pid)
        self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        self.conn.close()
        return self.process.exitcode
