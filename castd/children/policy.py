"""One restart policy for every supervised child: paced retries, a crash window, a give-up.

Rules (each parent sets the numbers; the rules are written once, here):
- A child that never reached its working state (the encoder's page never showed, a worker that lived
  less than `healthy_after`) failed to start: the delay doubles from `first` to `cap`, and after
  `max_failures` such failures in a row the parent gives up (the encoder's `max_restarts`, default 5:
  0.5 + 1 + 2 + 4 s, about 8 s of a broken page before `failed`).
- A child that had been working is restarted after `first` only (a TV is watching; the encoder's is
  0: its crash bridge (encoder/bridge.py) has to list new media within the ~3 s a player has buffered), unless
  `max_crashes` exits fall within `window` seconds (20 in 300 s for the encoder: a page that crashes
  every 15 s would otherwise loop forever).
- Working for `healthy_after` seconds (60) forgives earlier start failures.
- A child that says it cannot boot (exits.CANNOT_BOOT) is given up at once.
- A child that says it runs another castd than its parent (exits.VERSION_MISMATCH) is given up at once,
  and never retried: only a restart of the whole castd can mend that (see castd/children/version.py).

A give-up ends the quick retries, not the wish: `RetryLater` decides when a session that is still wanted
is tried again (a fresh round of `max_failures` starts), minutes apart, so a dashboard whose host was
rebooting, or a Wi-Fi that was down, is back on the TV without a person.
"""

from __future__ import annotations

import enum

import msgspec

from castd.children import exits
from castd.children.backoff import Backoff


class Verdict(enum.Enum):
    RESTART = "restart"
    GIVE_UP = "give_up"


class Decision(msgspec.Struct, frozen=True):
    verdict: Verdict
    delay: float = 0.0
    why: str = ""  # the reason for a give-up, for people


class RestartPolicy:
    """Decides, for each exit of one supervised child, whether and when to start a new one.

    Invariant: it holds no process and reads no clock; the caller passes `now`, so every decision is
    a function of the exits it was told about (tested with plain numbers).
    """

    def __init__(self, first: float = 0.5, cap: float = 30.0, healthy_after: float = 60.0,
                 max_failures: int | None = None, max_crashes: int | None = None, window: float = 300.0,
                 after_work: float | None = None) -> None:
        self.backoff = Backoff(first=first, cap=cap, healthy_after=healthy_after)
        self.after_work = first if after_work is None else after_work  # the delay after a working child's exit
        self.max_failures, self.max_crashes, self.window = max_failures, max_crashes, window
        self.crashes: list[float] = []  # times of exits within `window`

    @property
    def failures(self) -> int:
        return self.backoff.failures

    def exited(self, now: float, code: int | None, working_for: float | None) -> Decision:
        """A child ended without being asked to. `working_for`: seconds it had been in its working state
        (None: it never got there)."""
        if working_for is not None:
            self.backoff.healthy_since(working_for)
        self.crashes = [t for t in self.crashes if now - t < self.window] + [now]
        if exits.classify(code) is exits.Exit.CANNOT_BOOT:
            return Decision(Verdict.GIVE_UP, why="it cannot boot")
        if exits.classify(code) is exits.Exit.VERSION_MISMATCH:
            return Decision(Verdict.GIVE_UP, why="it runs another version of castd (upgraded while running?)")
        if self.max_crashes is not None and len(self.crashes) >= self.max_crashes:
            return Decision(Verdict.GIVE_UP, why=f"{len(self.crashes)} crashes in {self.window:g}s")
        if working_for is not None:
            return Decision(Verdict.RESTART, delay=self.after_work)
        if self.max_failures is not None and self.backoff.failures + 1 >= self.max_failures:
            self.backoff.failures += 1
            return Decision(Verdict.GIVE_UP, why=f"{self.backoff.failures} failed starts in a row")
        return Decision(Verdict.RESTART, delay=self.backoff.next_delay())

    def working(self, seconds: float) -> None:
        """Call while the child works; after `healthy_after` seconds earlier failures are forgiven."""
        self.backoff.healthy_since(seconds)

    def reset(self) -> None:
        self.backoff.reset()
        self.crashes = []


RETRY_CAP = 900.0  # 15 minutes: the longest a still-wanted session waits between two rounds of starts


class RetryLater:
    """After a give-up: when to try a still-wanted session again, or None for never.

    Delays double from `first` (castd's `retry_seconds`, default 60) to RETRY_CAP: 1, 2, 4, 8, 15, 15...
    minutes. A round costs `max_failures` starts (about 8 s of a browser at the encoder's numbers), so at
    the cap a page that never comes back costs under 1 % of the machine's time, and a cause that went away
    (the dashboard's host rebooted: 1-3 minutes) is over after the first or second round. Working for
    `healthy_after` seconds forgives earlier rounds, as RestartPolicy forgives failed starts.

    Never retried: `first` 0 (the user turned retries off), and a version mismatch (retrying starts the
    same mismatched child again; the parent has to be restarted instead).

    Invariant: no clock, no I/O; `rounds` counts the give-ups since the last healthy stretch.
    """

    def __init__(self, first: float = 60.0, cap: float = RETRY_CAP, healthy_after: float = 60.0) -> None:
        self.backoff = Backoff(first=first, cap=max(first, cap), healthy_after=healthy_after)

    @property
    def rounds(self) -> int:
        return self.backoff.failures

    def gave_up(self, code: int | None) -> float | None:
        """A give-up with the child's exit `code`: seconds until the next round, or None (final)."""
        if self.backoff.first <= 0 or exits.classify(code) is exits.Exit.VERSION_MISMATCH:
            return None
        return self.backoff.next_delay()

    def working(self, seconds: float) -> None:
        self.backoff.healthy_since(seconds)

    def reset(self) -> None:
        self.backoff.reset()
