"""The real encoder child: castd/encoder/child.py spawned on a Pipe (imports PyAV and selenium in the
child only: the supervisor process never loads them)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from castd.children.logcap import tail
from castd.children.piped import PipedChild
from castd.protocol import ChildParams, child_message_decoder


def _encoder_main(conn: Any, params_bytes: bytes) -> None:
    from castd.encoder import child  # the child's imports (av, selenium) stay in the child

    child.main(conn, params_bytes)


class EncoderProcess(PipedChild):
    """An encoder child; its log folder (Chromium's and Xvfb's output) and its $TMPDIR (Chromium's
    profile and temporary folders) go when it is closed, i.e. once it has been reaped."""

    def __init__(self, params: ChildParams, clock: Callable[[], float]) -> None:
        self.params = params
        super().__init__(_encoder_main, msgspec.msgpack.encode(params), "castd-encoder", child_message_decoder,
                         clock)

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.params.logs_dir, ignore_errors=True)
        if self.params.tmp_dir:
            shutil.rmtree(self.params.tmp_dir, ignore_errors=True)

    def log_tail(self, limit: int = 600) -> str:
        """The last lines Chromium/chromedriver and Xvfb printed, for a failure report."""
        parts = []
        for name in ("chromedriver.log", "xvfb.log"):
            text = tail(Path(self.params.logs_dir) / name, limit)  # the end only: never the whole file
            if text:
                parts.append(f"{name}: ...{text}")
        return "\n".join(parts)


def remove_session_files(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def sweep_tmp(root: Path, keep: str | None = None) -> list[Path]:
    """Remove every encoder's $TMPDIR under `root` but `keep` (the live child's): what a SIGKILLed child,
    or a helper that outlived it, left there. Returns what was removed."""
    try:
        folders = [path for path in root.iterdir() if str(path) != keep]
    except OSError:
        return []
    for path in folders:
        shutil.rmtree(path, ignore_errors=True)
    return folders
