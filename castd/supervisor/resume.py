"""The resume file: what castd is meant to show, kept in its state directory across restarts.

One small JSON file (`programme.json`, a few hundred bytes) in `state_dir` or systemd's
$STATE_DIRECTORY (the unit's StateDirectory=castd, /var/lib/castd). It is written only when the
programme changes (a command, an interrupt beginning or ending), never per playlist item: a
cursor's position follows from when its item began, so an SD card sees a write per command, not
one every few seconds. Each write goes to a temporary file that is fsynced and renamed over the old
one, then the folder is fsynced: after a power cut the file is the old one or the new one, whole.

A file that does not parse, or that is not castd's (no `"format": "castd-resume-1"`), is logged and
ignored; castd then starts with nothing on screen, as if there were no file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec

from castd.logs import log
from castd.programme.programme import State

FILE_NAME = "programme.json"
FORMAT: Literal["castd-resume-1"] = "castd-resume-1"
MAX_BYTES = 256 * 1024  # a larger file is not castd's


class Saved(msgspec.Struct, kw_only=True):
    format: Literal["castd-resume-1"]  # required: a file without it is not castd's
    session: str | None = None  # the session on screen, resumed under the same stream URL
    started_at: float | None = None
    key: tuple[str, str, tuple[str, ...]] | None = None  # its quality, mode, devices
    programme: State = msgspec.field(default_factory=State)


def load(folder: Path) -> Saved | None:
    """The saved state, or None (no file; or a bad one, logged)."""
    path = folder / FILE_NAME
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("resume state not readable; ignored", path=str(path), error=str(exc))
        return None
    if len(data) > MAX_BYTES:
        log.warning("resume state too large to be castd's; ignored", path=str(path), bytes=len(data))
        return None
    try:
        return msgspec.json.decode(data, type=Saved)
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
        log.warning("resume state is corrupt or not castd's; ignored", path=str(path), error=str(exc)[:200])
        return None


def save(folder: Path, saved: Saved) -> None:
    """Write atomically and durably (temporary file, fsync, rename, fsync the folder)."""
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    path, tmp = folder / FILE_NAME, folder / (FILE_NAME + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, msgspec.json.encode(saved))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
