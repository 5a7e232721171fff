"""Liveness by asking: a child is alive while it answers, not while its process exists.

uvicorn's supervisor pings each worker over its pipe and ends the one that does not answer within
`timeout_worker_healthcheck` (5 s); gunicorn's arbiter ends workers whose heartbeat is older than
`timeout` (30 s). castd's front end does the same with its supervisor: a supervisor stuck in a pass (a
bug, a blocking call, a SIGSTOP) still holds its PID and its pipe, so waiting for its exit would show
503 for ever while systemd's watchdog, fed by the healthy event loop, saw nothing wrong.

Numbers: a ping every 2 s costs the supervisor one tiny message per 8 of its passes (TICK 0.25 s); its
longest pass was measured at a few ms (bench/loopblock.py) and a new supervisor answers about 1 s after
its spawn (its imports), so a 10 s deadline ends only a supervisor that really stopped, and a wedge is
cured in about 12 s: well inside systemd's WatchdogSec (30 s), which is fed only while the supervisor
answered within `feed_within` seconds (see `answering`).

Invariant: no clock, no I/O; one ping outstanding at most; ids are never reused (a late answer from an
ended child cannot count for its successor).
"""

from __future__ import annotations

import math


class Liveness:
    def __init__(self, every: float = 2.0, deadline: float = 10.0) -> None:
        self.every, self.deadline = every, deadline
        self.count = 0  # pings sent, ever: ids stay unique across children
        self.waiting: str | None = None  # the id of the unanswered ping
        self.asked_at = -math.inf  # when the last ping went out
        self.answered_at = -math.inf  # when the child last answered (or was started)

    def started(self, now: float) -> None:
        """A new child: it counts as answering from now, and is asked after `every`."""
        self.waiting, self.asked_at, self.answered_at = None, now, now

    def ping(self, now: float) -> str | None:
        """The id of a ping to send now, or None (one is outstanding, or the last went out recently)."""
        if self.waiting is not None or now - self.asked_at < self.every:
            return None
        self.count += 1
        self.waiting, self.asked_at = f"ping-{self.count}", now
        return self.waiting

    def answered(self, now: float, ping_id: str) -> bool:
        """An answer came; True if it was the one waited for."""
        if ping_id != self.waiting:
            return False
        self.waiting, self.answered_at = None, now
        return True

    def wedged(self, now: float) -> bool:
        """The outstanding ping is older than the deadline: the child is as dead as one that exited."""
        return self.waiting is not None and now - self.asked_at > self.deadline

    def answering(self, now: float, within: float) -> bool:
        """The child answered (or was started) within `within` seconds."""
        return now - self.answered_at <= within
