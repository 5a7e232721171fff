"""The supervisor's one encoder, as an explicit state and its data.

Each loop pass compares what the commands want with this slot and acts on the difference
(Supervisor.reconcile); the slot only records where its child stands and does the one thing each
transition needs (spawn, send Begin/Navigate/Park, ask to quit, kill). Ending a child never waits: the
slot is ENDING until the child's exit wakes the loop, so the loop keeps answering commands and pushing
status while a hung encoder is killed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from castd.children.piped import Child
from castd.children.policy import Decision, RestartPolicy
from castd.children.supervised import Exited, Run, Supervised
from castd.protocol import ENCODER_QUIT_GRACE, Begin, ChildParams, Navigate, Overlay, Overlays, Park, Quit


class Phase(enum.Enum):
    EMPTY = "empty"  # no encoder process
    STARTING = "starting"  # working on `session`; its page is not yet in a finished segment
    STREAMING = "streaming"  # working on `session`; the page has been in a listed segment
    PARKED = "parked"  # alive, warm standby at about:blank, no session
    ENDING = "ending"  # asked to quit (or killed); the next child waits until this one is reaped
    RESTART_PENDING = "restart_pending"  # no process; a new one for `session` is due at restart_at


WORKING = (Phase.STARTING, Phase.STREAMING)


class EncoderChild(Child, Protocol):
    params: ChildParams

    def log_tail(self, limit: int = 600) -> str: ...


class Watch:
    """When a counter last moved: the stall watchdog's view of frames and segments."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.value: int | None = None
        self.changed_at = clock()

    def update(self, value: int) -> None:
        if value != self.value:
            self.value, self.changed_at = value, self.clock()

    def age(self) -> float:
        return self.clock() - self.changed_at


class EncoderSlot:
    """Where the one encoder stands.

    Invariants: at most one encoder process exists at any time (a child is spawned only in EMPTY or
    RESTART_PENDING, i.e. after the previous one was reaped); `session` is set in STARTING, STREAMING and
    RESTART_PENDING, and in ENDING while a session's child ends; PARKED has a live child and no session.
    """

    def __init__(self, factory: Callable[[ChildParams], EncoderChild], policy: RestartPolicy,
                 clock: Callable[[], float], grace: float = ENCODER_QUIT_GRACE) -> None:
        self.run: Supervised[EncoderChild] = Supervised("encoder", factory, policy, Quit(), clock, grace)
        self.clock = clock
        self.phase = Phase.EMPTY
        self.session: str | None = None
        self.nav = -1
        self.quality: str | None = None
        self.working_since: float | None = None  # STREAMING: when the page first showed
        self.frames, self.segments = Watch(clock), Watch(clock)
        self.last_words: str | None = None  # the child's last reported error
        self.last_words_at: float | None = None  # when: from then on it is ending on its own
        self.leftover: list[Path] = []  # folders of sessions a parked (or ending) child may still write
        self.overlays: list[Overlay] = []  # the camera overlays the child was last told to show

    @property
    def child(self) -> EncoderChild | None:
        return self.run.child

    @property
    def policy(self) -> RestartPolicy:
        return self.run.policy

    # ---- transitions ---------------------------------------------------------------------------
    def start(self, params: ChildParams) -> EncoderChild:
        """A new child, for params.session or (None) parked; only from EMPTY or RESTART_PENDING."""
        assert self.phase in (Phase.EMPTY, Phase.RESTART_PENDING), self.phase
        child = self.run.spawn(params)
        self.session, self.nav, self.quality = params.session, params.nav, params.preset.name
        self.overlays = list(params.overlays)
        self.phase = Phase.STARTING if params.session else Phase.PARKED
        self._fresh()
        self.last_words = self.last_words_at = None
        return child

    def begin(self, message: Begin) -> None:
        """Stream a session in the parked child."""
        assert self.phase is Phase.PARKED and self.child is not None
        self.child.send(message)
        self.session, self.nav, self.phase = message.session, message.nav, Phase.STARTING
        self.overlays = []
        self._fresh()

    def navigate(self, message: Navigate) -> None:
        assert self.phase in WORKING and self.child is not None
        self.child.send(message)
        self.nav = message.nav

    def show_overlays(self, overlays: list[Overlay]) -> None:
        assert self.phase in WORKING and self.child is not None
        self.child.send(Overlays(items=list(overlays)))
        self.overlays = list(overlays)

    def ready(self) -> None:
        if self.phase is Phase.STARTING:
            self.phase, self.working_since = Phase.STREAMING, self.clock()

    def park(self, folder: Path) -> None:
        """End the session, keep the child warm; its folder goes once the child says it parked."""
        assert self.phase in WORKING and self.child is not None
        self.child.send(Park())
        self.leftover.append(folder)
        self.phase, self.session, self.working_since = Phase.PARKED, None, None

    def end(self, grace: float | None = None) -> None:
        """Ask the child to quit (non-blocking); the slot is ENDING until it is reaped."""
        if self.child is None:
            self.clear()
            return
        self.run.end(grace)
        self.phase, self.working_since = Phase.ENDING, None

    def kill(self, reason: str) -> None:
        """The watchdog's end: SIGKILL now; the exit, once reaped, counts as a failure with `reason`."""
        self.run.kill(reason)
        self.phase, self.working_since = Phase.ENDING, None

    def clear(self) -> None:
        """Forget a planned restart (its session ended)."""
        self.run.forget_restart()
        if self.child is None:
            self.phase, self.session = Phase.EMPTY, None

    # ---- the child ended -----------------------------------------------------------------------
    def reap(self) -> tuple[Exited, Phase] | None:
        """The reaped child's exit and the phase it was in, or None while it runs."""
        phase, working_since = self.phase, self.working_since
        exited = self.run.poll()
        if exited is None:
            return None
        self.phase, self.working_since = Phase.EMPTY, None
        self._working_for = None if working_since is None else self.clock() - working_since
        return exited, phase

    def plan_restart(self, exited: Exited) -> Decision:
        """After a session's child failed: RESTART_PENDING (same session), or EMPTY when given up."""
        decision = self.run.failed(exited, self._working_for)
        if self.run.state is Run.RESTART_PENDING:
            self.phase = Phase.RESTART_PENDING
        else:
            self.phase, self.session = Phase.EMPTY, None
        return decision

    def restart_due(self) -> bool:
        return self.phase is Phase.RESTART_PENDING and self.run.restart_due()

    def take_leftover(self) -> list[Path]:
        folders, self.leftover = self.leftover, []
        return folders

    def _fresh(self) -> None:
        self.frames, self.segments = Watch(self.clock), Watch(self.clock)
        self.working_since = None
        self.run.restart_at = None

    _working_for: float | None = None
