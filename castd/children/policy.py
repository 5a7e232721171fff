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
