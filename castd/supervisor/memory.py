"""The browser's memory watchdog: Chromium showing a dashboard for hours grows (Home Assistant's
frontend has been reported at ~2 GB; kiosk users on a 1 GB Pi reload it about hourly), so the
supervisor samples the PSS of the encoder's whole tree (Xvfb, Chromium and its helpers, the encoder)
every `memory_check_seconds` while it streams.

Past `memory_limit_mb` it first reloads the page (a Navigate to the same URL: the encoder repeats its
last picture while the page loads, so the TV sees no blank and the stream goes on). If the tree is still
over the limit `GRACE_CHECKS` samples later, the reload did not help (a leak in the browser, not the
page): the encoder is restarted, the session and its stream URL stay, and the new child continues the
session's timeline where the old one stopped (the TV holds its last frames ~2 s while Chromium starts).

The default limit, 650 MB, fits a 1 GB Pi at 720p: a fresh tree measures ~550-580 MB PSS here
(Chromium ~440, Xvfb ~50, encoder 60-90), castd's own other processes ~120 MB and the OS ~120 MB, so
650 + 240 stays under a Pi 3's ~920 MB MemTotal while leaving the page ~70-100 MB to grow.
"""

from __future__ import annotations

import enum

GRACE_CHECKS = 3  # samples after a reload before a restart


class Action(enum.Enum):
    NONE = "none"
    RELOAD = "reload"
    RESTART = "restart"


class MemoryWatch:
    """Decides, from PSS samples of one encoder's tree, when to reload its page and when to restart it.

    Invariants: pure (the caller samples and passes `now`); at most one reload per excursion over the
    limit, and a restart only after a reload had `GRACE_CHECKS` samples to work.
    """

    def __init__(self, limit_mb: float, interval: float) -> None:
        self.limit_mb, self.interval = limit_mb, interval
        self.next_at = 0.0
        self.reloaded_at: float | None = None

    def due(self, now: float) -> bool:
        return self.limit_mb > 0 and now >= self.next_at

    def decide(self, now: float, pss_mb: float) -> Action:
        self.next_at = now + self.interval
        if pss_mb <= self.limit_mb:
            self.reloaded_at = None
            return Action.NONE
        if self.reloaded_at is None:
            self.reloaded_at = now
            return Action.RELOAD
        if now - self.reloaded_at >= GRACE_CHECKS * self.interval:
            self.reloaded_at = None
            return Action.RESTART
        return Action.NONE

    def reset(self, now: float) -> None:
        """A new child (or a new session in it): start watching afresh after one interval."""
        self.next_at, self.reloaded_at = now + self.interval, None
