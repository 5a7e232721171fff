"""Fake children and a fake clock for the decision tests (tests/test_decisions.py).

The supervisor and the cast side take their child factories as parameters (as uvicorn's supervisor takes
its target), so their decisions can be driven in milliseconds: a FakeChild records what it is sent,
says what the test makes it say, and exits when the test (or a Quit, or a kill) says so. What only a
real Chromium can show stays in the end-to-end tests.
"""

from __future__ import annotations

import itertools
import signal
from typing import Any

from castd.cast.messages import CastQuit
from castd.protocol import Quit

_pids = itertools.count(900_000)


class FakeClock:
    """monotonic() and time() in one: the test moves it with advance()."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeChild:
    """A child process that is not one: `sent` is what the parent sent it, `say()` queues its reports,
    `exit()` ends it; a Quit ends it at once unless it is `frozen` (a hung or SIGSTOPped child)."""

    def __init__(self, params: Any, clock: FakeClock, registry: list[FakeChild]) -> None:
        self.params = params
        self.clock = clock
        self.pid = next(_pids)
        self.started_at = clock()
        self.last_message_at = self.started_at
        self.eof = False
        self.sent: list[Any] = []
        self.outbox: list[Any] = []
        self.code: int | None = None
        self.frozen = False
        self.killed = self.closed = False
        registry.append(self)

    # ---- the Child protocol --------------------------------------------------------------------
    def waitables(self) -> list[Any]:
        return []

    def send(self, command: Any) -> bool:
        if self.code is not None:
            return False
        self.sent.append(command)
        if isinstance(command, (Quit, CastQuit)) and not self.frozen:
            self.exit(0)
        return True

    def messages(self) -> list[Any]:
        out, self.outbox = self.outbox, []
        if out:
            self.last_message_at = self.clock()
        return out

    def exitcode(self) -> int | None:
        return self.code

    def kill(self) -> None:
        self.killed = True
        if self.code is None:
            self.exit(-signal.SIGKILL)

    def close(self) -> None:
        assert self.code is not None, "closed before it was reaped"
        self.closed = True

    def log_tail(self, limit: int = 600) -> str:
        return ""

    # ---- for the test ----------------------------------------------------------------------------
    def say(self, *messages: Any) -> None:
        self.outbox.extend(messages)

    def exit(self, code: int) -> None:
        self.code = code
        self.eof = True

    @property
    def alive(self) -> bool:
        return self.code is None

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.sent if isinstance(m, kind)]
