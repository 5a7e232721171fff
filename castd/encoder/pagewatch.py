"""The page watchdog: when the browser has stopped answering, and which cure comes next.

A page running `while(true){}` froze the TV while castd said all was well: the renderer's main
thread never returns, so every chromedriver command to it waits `page_load_timeout` (20 s) and
fails with "Timed out receiving message from renderer" (measured: probes, a CDP
Runtime.terminateExecution, a navigation, all 20.0 s each; a page-level DevTools socket of our own
got no answer either). The page thread cannot notice from inside such a call, so it says what it
is waiting for (a `Call`, with the budget a healthy browser needs for it) and the frame loop, which
never blocks on the browser, asks this object on every frame whether that call is overdue.

Budgets: a probe (`return 1` every second between loads, the readiness polls) answers in milliseconds,
so `page_hang_seconds` (5 s) is generous; with the 1 s probe interval a hung page is found within
6 s. (It was 2 s: in bench.month's hour at load average 9-29, 7 of 20 hung pages were found after more
than the issue's 10 s, 7.6-14.0 s.) A navigation may legitimately take `page_load_timeout` plus its
site's ready wait; its budget is that plus `page_hang_seconds` (chromedriver cannot be asked anything
while a load runs). A browser start or quit has its own budget (page.py BROWSER_START_BUDGET, _QUIT_).

Cures, in steps. A reload in the same tab cannot help a hung renderer (measured: once the renderer
is killed, chromedriver answers "tab crashed" to every later command, new windows included), so the
first cure kills the tab's renderer and starts a new browser in the same encoder (~1-2 s; Xvfb, the
encoder and the HLS output stay, and the frame loop holds the last picture meanwhile), which loads
the page afresh. If the page hangs again within HEALTHY_AFTER seconds, the next cure is a new encoder
(the supervisor's restart, with its crash bridge holding the picture). A page that stays healthy for
HEALTHY_AFTER seconds starts again at the first step.

Pure: facts in (the clock and the outstanding call), a Cure out; no I/O, no clock of its own.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

HEALTHY_AFTER = 60.0  # seconds of answering after a cure before the next hang starts again at step one


class Cure(enum.Enum):
    """Values match protocol.HangCure (they cross the pipe in PageHung)."""

    NONE = "none"
    NEW_BROWSER = "new_browser"  # kill the hung renderer, start Chromium again, load the page
    NEW_ENCODER = "new_encoder"  # this child gives up (exit code CRASHED); the supervisor restarts it


STEPS = (Cure.NEW_BROWSER, Cure.NEW_ENCODER)


class Call(NamedTuple):
    """What the page thread is waiting for in the browser, since when (monotonic), and how long a
    healthy browser may take for it."""

    what: str  # "probe" | "load" | ...: said in the reason
    since: float
    budget: float


class PageWatch:
    """Decides, from the page thread's outstanding call, when the page hangs and how to cure it.

    Invariants: at most one cure per outstanding call and per budget (the time waited counts from
    the later of the call's start and the last cure); the steps only move forward until the page
    has answered for HEALTHY_AFTER seconds since the last cure.
    """

    def __init__(self, healthy_after: float = HEALTHY_AFTER) -> None:
        self.healthy_after = healthy_after
        self.step = 0  # index into STEPS of the next cure
        self.cured_at: float | None = None
        self.hangs = 0
        self.reason: str | None = None  # why the last cure

    def decide(self, now: float, call: Call | None) -> Cure:
        """`call`: what the page thread waits for now, or None when it is not waiting on the browser."""
        cured_at = self.cured_at
        if call is None or (cured_at is not None and call.since > cured_at):
            if cured_at is not None and now - cured_at >= self.healthy_after:
                self.step, self.cured_at = 0, None  # answered long enough: a later hang starts afresh
            if call is None:
                return Cure.NONE
        assert call is not None
        start = call.since if cured_at is None else max(call.since, cured_at)
        waited = now - start
        if waited < call.budget:
            return Cure.NONE
        cure = STEPS[min(self.step, len(STEPS) - 1)]
        self.step += 1
        self.cured_at = now
        self.hangs += 1
        self.reason = f"the browser did not answer a {call.what} for {waited:.1f}s"
        return cure
