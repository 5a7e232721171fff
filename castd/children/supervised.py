"""One record per supervised child (Frigate's watchdog, gunicorn's arbiter): the process, the factory
that makes a new one, the restart policy, and how it is being ended, in one object that every castd
parent uses (front end -> supervisor, supervisor -> encoder, supervisor -> cast worker).

Ending never blocks the parent's loop: `end()` sends the child its quit message and sets a deadline;
`poll()`, called on every pass (the child's exit sentinel wakes the loop), reaps it, or past the
deadline kills its group and keeps polling. Only once the old child is reaped may a new one start, so
"at most one child" holds even while one ends.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

from castd.children import exits
from castd.children.piped import Child
from castd.children.policy import Decision, RestartPolicy, Verdict

C = TypeVar("C", bound=Child)

KILL_WAIT = 2.0  # after SIGKILL, how long until the parent logs that a child will not die


class Run(enum.Enum):
    EMPTY = "empty"  # no child, none planned
    RUNNING = "running"
    ENDING = "ending"  # asked to quit (or killed); waiting for its exit
    RESTART_PENDING = "restart_pending"  # no child; a new one is due at `restart_at`


class Exited(msgspec.Struct, frozen=True):
    """A reaped child: who, its status, whether the parent had asked it to end, and why."""

    pid: int
    code: int | None
    asked: bool  # the parent ended it (quit, or a kill by the parent's own watchdog)
    reason: str | None = None  # the parent's reason when it killed the child (a stall)

    def describe(self) -> str:
        return exits.describe(self.code)


class Supervised(Generic[C]):
    """At most one child at a time; its end is asked for, bounded by a deadline, and always reaped.

    Invariants: `spawn()` refuses while a child exists (alive or not yet reaped); no method blocks;
    `state` is RUNNING or ENDING exactly while `child` is set.
    """

    def __init__(self, name: str, factory: Callable[..., C], policy: RestartPolicy, quit_message: msgspec.Struct,
                 clock: Callable[[], float], grace: float = 2.0) -> None:
        self.name, self.factory, self.policy = name, factory, policy
        self.quit_message, self.clock, self.grace = quit_message, clock, grace
        self.child: C | None = None
        self.state = Run.EMPTY
        self.restart_at: float | None = None
        self.kill_at: float | None = None  # ENDING: when the group gets SIGKILL
        self.killed = False
        self.kill_reason: str | None = None
        self.restarts = 0

    # ---- acting ---------------------------------------------------------------------------------
    def spawn(self, *args: Any) -> C:
        if self.child is not None:
            raise RuntimeError(f"{self.name}: a child is still there (pid {self.child.pid})")
        self.child = self.factory(*args)
        self.state, self.restart_at = Run.RUNNING, None
        self.kill_at, self.killed, self.kill_reason = None, False, None
        return self.child

    def end(self, grace: float | None = None) -> None:
        """Ask the child to quit; past `grace` seconds its group is killed. Idempotent."""
        if self.child is None:
            self.state, self.restart_at = Run.EMPTY, None
            return
        if self.state is Run.ENDING:
            return
        self.state = Run.ENDING
        self.child.send(self.quit_message)
        self.kill_at = self.clock() + (self.grace if grace is None else grace)

    def kill(self, reason: str | None = None) -> None:
        """Kill the child's group now (a stall, a shutdown deadline); it is reaped by poll()."""
        if self.child is None:
            return
        self.state = Run.ENDING
        self.kill_reason = self.kill_reason or reason
        self.killed = True
        self.kill_at = self.clock() + KILL_WAIT
        self.child.kill()

    def forget_restart(self) -> None:
        if self.state is Run.RESTART_PENDING:
            self.state, self.restart_at = Run.EMPTY, None

    # ---- watching -------------------------------------------------------------------------------
    def waitables(self) -> list[Any]:
        return self.child.waitables() if self.child is not None else []

    def poll(self) -> Exited | None:
        """Reap the child if it has ended; escalate an end past its deadline. Never blocks."""
        child = self.child
        if child is None:
            return None
        code = child.exitcode()
        if code is None:
            if self.state is Run.ENDING and self.kill_at is not None and self.clock() >= self.kill_at:
                if not self.killed:
                    self.kill()
                else:  # still there after SIGKILL: try again, keep polling
                    self.kill_at = self.clock() + KILL_WAIT
                    child.kill()
            return None
        asked = self.state is Run.ENDING
        child.close()
        self.child, self.state, self.kill_at = None, Run.EMPTY, None
        return Exited(pid=child.pid, code=code, asked=asked, reason=self.kill_reason)

    def failed(self, exited: Exited, working_for: float | None) -> Decision:
        """The child ended on its own (or by the parent's watchdog): plan the restart, or give up."""
        decision = self.policy.exited(self.clock(), exited.code, working_for)
        if decision.verdict is Verdict.RESTART:
            self.state, self.restart_at = Run.RESTART_PENDING, self.clock() + decision.delay
        else:
            self.state, self.restart_at = Run.EMPTY, None
        return decision

    def restart_due(self) -> bool:
        return self.state is Run.RESTART_PENDING and self.restart_at is not None and self.clock() >= self.restart_at
