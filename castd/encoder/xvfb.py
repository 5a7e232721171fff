"""A private X server for one Chromium window.

Xvfb picks its own free display (-displayfd) so a stale lock from an earlier crash can never
make us grab somebody else's screen.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from typing import IO
from pathlib import Path

from castd.procutil import with_pdeathsig


class XvfbError(RuntimeError):
    pass


# Chromium shrinks a window that is exactly the screen's size by one pixel each way (measured:
# 1279x719 on a 1280x720 screen), so the screen gets a margin and we grab only the window.
SCREEN_MARGIN = 8


class Xvfb:
    def __init__(self, binary: str, width: int, height: int, log_path: Path | None = None,
                 timeout: float = 10.0) -> None:
        self.width, self.height = width, height
        self.log_path = log_path
        read_fd, write_fd = os.pipe()
        log_file: IO[bytes] | int = log_path.open("ab") if log_path else subprocess.DEVNULL
        try:
            # dies with the thread that starts it (setpriv: no preexec_fn, see castd/procutil.py)
            self.process = subprocess.Popen(
                with_pdeathsig([binary, "-displayfd", str(write_fd),
                                "-screen", "0", f"{width + SCREEN_MARGIN}x{height + SCREEN_MARGIN}x24",
                                "-nolisten", "tcp", "-noreset", "-nocursor", "-dpi", "96"]),
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
            )
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            raise XvfbError(f"cannot run {binary}: {exc}") from exc
        finally:
            if not isinstance(log_file, int):
                log_file.close()
        os.close(write_fd)
        try:
            self.display = self._read_display(read_fd, timeout)
        except Exception:
            self.stop()
            raise
        finally:
            os.close(read_fd)

    def _read_display(self, fd: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise XvfbError("Xvfb did not report a display in time")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 16)
                if not chunk:
                    raise XvfbError(f"Xvfb exited: {self.log_tail()}")
                data += chunk
        return ":" + data.decode().strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, limit: int = 400) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-limit:].decode(errors="replace").strip()


def clean_stale_locks() -> list[str]:
    """Remove /tmp/.X<n>-lock files whose server is gone (left by a crash); returns what was removed."""
    removed = []
    for lock in Path("/tmp").glob(".X*-lock"):
        try:
            pid = int(lock.read_text().strip())
        except (OSError, ValueError):
            continue
        if not Path(f"/proc/{pid}").exists():
            try:
                lock.unlink()
                socket = Path("/tmp/.X11-unix") / f"X{lock.name[2:-5]}"
                socket.unlink(missing_ok=True)
                removed.append(str(lock))
            except OSError:
                pass
    return removed
