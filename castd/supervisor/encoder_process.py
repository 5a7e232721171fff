"""The supervisor's handle on its one encoder child: spawn, talk, end (with its whole group)."""

from __future__ import annotations

import multiprocessing
import shutil
import time
from pathlib import Path

import msgspec

from castd.encoder import child
from castd.procutil import kill_group, pid_alive
from castd.protocol import ChildCommand, ChildMessage, Quit, child_message_decoder, encode

_ctx = multiprocessing.get_context("spawn")


class EncoderProcess:
    def __init__(self, params: child.ChildParams) -> None:
        self.params = params
        self.conn, child_conn = _ctx.Pipe()
        self.process = _ctx.Process(target=child.main, args=(child_conn, msgspec.msgpack.encode(params)),
                                    name="castd-encoder", daemon=False)
        self.process.start()
        child_conn.close()
        self.pid: int = self.process.pid  # type: ignore[assignment]
        self.started_at = time.monotonic()
        self.last_message_at = self.started_at
        self.quality = params.preset.name
        self.parked = params.session is None  # in warm standby, streaming nothing

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, command: ChildCommand) -> None:
        try:
            self.conn.send_bytes(encode(command))
        except (BrokenPipeError, OSError):
            pass

    def messages(self) -> list[ChildMessage]:
        """Everything the child has sent so far (never blocks)."""
        out = []
        try:
            while self.conn.poll():
                out.append(child_message_decoder.decode(self.conn.recv_bytes()))
        except (EOFError, OSError):
            pass
        except msgspec.DecodeError:
            pass
        if out:
            self.last_message_at = time.monotonic()
        return out

    def end(self, grace: float = 2.0) -> int | None:
        """Ask the child to quit, wait up to `grace`, then kill its whole process group."""
        if self.process.is_alive():
            self.send(Quit())
            self.process.join(grace)
        kill_group(self.pid)
        self.process.join(1.0)
        if self.process.is_alive():  # not in its own group yet (killed before setpgrp)
            self.process.kill()
            self.process.join(1.0)
        self.conn.close()
        shutil.rmtree(self.logs_folder(), ignore_errors=True)
        return self.process.exitcode

    def logs_folder(self) -> Path:
        return Path(self.params.logs_dir)

    def log_tail(self, limit: int = 600) -> str:
        """The last lines Chromium/chromedriver and Xvfb printed, for a failure report."""
        parts = []
        for name in ("chromedriver.log", "xvfb.log"):
            path = self.logs_folder() / name
            if path.exists():
                text = path.read_bytes()[-limit:].decode(errors="replace").strip()
                if text:
                    parts.append(f"{name}: ...{text}")
        return "\n".join(parts)


def remove_session_files(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def is_running(pid: int | None) -> bool:
    return bool(pid) and pid_alive(pid)  # type: ignore[arg-type]
