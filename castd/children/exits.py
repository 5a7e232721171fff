"""Why a child ended: castd's own exit codes, and one sentence for any exit status.

A child that cannot boot (a missing binary, an X server that will not start) exits with CANNOT_BOOT:
retrying it cannot help, so its parent gives up at once instead of retrying five times with doubling
delays (gunicorn's arbiter halts on its workers' boot-error code 3 for the same reason). A child that
fails while working exits with CRASHED and is restarted with paced retries. A child that finds itself
built from another castd than its parent (castd was upgraded in place while it ran) exits with
VERSION_MISMATCH: no restart can mend it, only a restart of the whole castd (castd/children/version.py).
A negative status is a signal; SIGKILL that castd did not send is most often the kernel's OOM killer (a 1 GB Pi running
Chromium, ~440 MB PSS, is where castd meets it), so the sentence says so.
"""

from __future__ import annotations

import enum
import signal

OK = 0
CRASHED = 1  # failed while running: a paced restart may help
CANNOT_BOOT = 3  # cannot start at all: a restart will fail the same way
VERSION_MISMATCH = 4  # the child's castd is not its parent's: restart castd as a whole


class Exit(enum.Enum):
    CLEAN = "clean"
    CRASHED = "crashed"
    CANNOT_BOOT = "cannot_boot"
    VERSION_MISMATCH = "version_mismatch"
    SIGNALLED = "signalled"
    UNKNOWN = "unknown"


def classify(code: int | None) -> Exit:
    if code == OK:
        return Exit.CLEAN
    if code == CRASHED:
        return Exit.CRASHED
    if code == CANNOT_BOOT:
        return Exit.CANNOT_BOOT
    if code == VERSION_MISMATCH:
        return Exit.VERSION_MISMATCH
    if code is not None and code < 0:
        return Exit.SIGNALLED
    return Exit.UNKNOWN


def describe(code: int | None) -> str:
    """A phrase for logs and /status: `exited with code 1 (crashed)`, `killed by SIGKILL (...)`."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (perhaps out of memory?)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    kind = classify(code)
    what = {Exit.CLEAN: "clean", Exit.CRASHED: "crashed", Exit.CANNOT_BOOT: "cannot boot",
            Exit.VERSION_MISMATCH: "version mismatch"}.get(kind)
    return f"exited with code {code}" + (f" ({what})" if what else "")
