"""Bounded output files of a child's helpers: the last lines, never the whole history.

Chromium's and chromedriver's output (chromedriver.log) and Xvfb's (xvfb.log) go to files in the runtime
folder (/run/castd: RAM), written by those programs themselves with O_APPEND (Xvfb's file is opened "ab",
selenium opens chromedriver's "a+"). A page that logs an error per frame makes Chromium print ~10 lines a
second: ~100 MB a month on a Pi that nobody watches. So the supervisor trims them (Frigate keeps the last
100 lines of each ffmpeg's output): a file past MAX_BYTES is cut to its last KEEP_LINES lines, in place.
With O_APPEND the writers go on at the new end; a line written between the read and the truncate is lost,
which is what a bounded log means anyway. Reading a tail seeks to the end: never the whole file.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_BYTES = 256 * 1024  # per file; checked every TRIM_EVERY seconds by the supervisor
KEEP_LINES = 100
TRIM_EVERY = 30.0
_TAIL_READ = 64 * 1024  # 100 lines of Chromium's output are well under this


def tail(path: Path, limit: int) -> str:
    """The last `limit` bytes of a file as text ("" when missing), reading only those."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - limit))
            return fh.read(limit).decode(errors="replace").strip()
    except OSError:
        return ""


def trim(path: Path, max_bytes: int = MAX_BYTES, keep_lines: int = KEEP_LINES) -> bool:
    """Cut a file longer than `max_bytes` to its last `keep_lines` lines; True when it was cut."""
    try:
        with open(path, "a+b") as fh:  # O_APPEND like the writers: after the cut, every write goes at the end
            size = fh.seek(0, os.SEEK_END)
            if size <= max_bytes:
                return False
            fh.seek(max(0, size - _TAIL_READ))
            lines = fh.read().splitlines(keepends=True)[1:]  # the first may be a piece of a line
            kept = b"".join(lines[-keep_lines:])[-max_bytes // 2:]
            fh.truncate(0)
            fh.write(b"[castd: earlier output dropped, %d bytes]\n" % (size - len(kept)) + kept)
            return True
    except OSError:
        return False


def trim_folder(folder: str | Path) -> list[str]:
    """Trim every file in a child's log folder; returns the names that were cut."""
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    return [entry.name for entry in entries if entry.is_file() and trim(entry)]
