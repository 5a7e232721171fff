"""The supervisor's side of the programme (castd/programme/): commands in, the wanted session out,
and the resume file kept up to date.

The loop asks `follow()` once per pass what to do with its wanted session; the answer is one of
keep, switch (same quality, mode and devices: a page switch inside the session, so the TV keeps
its one LOAD and one stream URL), new (another session) or stop. A playlist item's change, an
interrupt's end, a schedule window's start all arrive this way, at most a loop tick (0.25 s) late.
After a restart the first `new` carries the saved session id and start time, so the same stream
URL comes back on the same TVs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import msgspec

from castd.config import Config
from castd.logs import log
from castd.programme.programme import Programme, Show, restore
from castd.programme.targets import Target
from castd.protocol import PageOverrides, Start
from castd.supervisor import resume

Action = Literal["keep", "switch", "new", "stop"]


class Change(msgspec.Struct, kw_only=True, frozen=True):
    action: Action
    show: Show | None = None
    session: str | None = None  # new: the session id to use (a resumed one), or None for a fresh one
    started_at: float | None = None  # new, resumed: when that session began
    reason: str = ""  # stop: why the programme has nothing more to show


class Current(msgspec.Struct, kw_only=True, frozen=True):
    """The loop's wanted session, as far as the programme cares."""

    session: str
    quality: str
    mode: str
    devices: tuple[str, ...]
    url: str
    page: PageOverrides


def target_of(command: Start) -> Target:
    return Target(url=command.url, quality=command.quality, devices=tuple(command.devices), mode=command.mode,
                  page=command.page, dashboard=command.dashboard, playlist=command.playlist, sharing=command.sharing)


class Director:
    def __init__(self, config: Config, now: float | None = None) -> None:
        self.config = config
        self.folder: Path | None = config.resolved_state_dir() if config.resume else None
        self.programme = Programme(config)
        self.resumed: resume.Saved | None = None  # used by the first `new` after a restart
        self._written: tuple | None = None
        if self.folder is not None:
            self._load(time.time() if now is None else now)

    def _load(self, now: float) -> None:
        assert self.folder is not None
        saved = resume.load(self.folder)
        if saved is None:
            return
        self.programme, problems = restore(self.config, saved.programme, now)
        for problem in problems:
            log.warning("resume: dropped what the config no longer has", reason=problem)
        if saved.session and self.programme.decide(now) is not None:
            self.resumed = saved
            log.info("resuming", session=saved.session, state_dir=str(self.folder))
        self._written = (self.programme.revision, saved.session)

    # ---- commands ------------------------------------------------------------------------------
    def start(self, command: Start, now: float) -> None:
        self.resumed = None
        self.programme.start(target_of(command), now, command.duration, command.then)

    def stop(self, now: float) -> None:
        self.resumed = None
        self.programme.stop(now)

    def step(self, count: int, now: float) -> bool:
        return self.programme.step(count, now)

    def why_no_step(self, now: float) -> str:
        return self.programme.why_no_step(now)

    # ---- the question of each pass ----------------------------------------------------------------
    def follow(self, now: float, current: Current | None, reload: bool = False) -> Change:
        """What to do with the wanted session at `now`; `reload`: a command asked for this page again."""
        show = self.programme.decide(now)
        if show is None:
            if current is None:
                return Change(action="keep")
            return Change(action="stop", reason=self.programme.ended or "the programme has nothing to show")
        if current is not None and (current.quality, current.mode, current.devices) == show.session_key:
            if reload or current.url != show.url or current.page != show.page:
                return Change(action="switch", show=show)
            return Change(action="keep", show=show)
        saved, self.resumed = self.resumed, None
        if saved is not None and saved.key == show.session_key:
            return Change(action="new", show=show, session=saved.session, started_at=saved.started_at)
        return Change(action="new", show=show)

    def next_change(self, now: float) -> float | None:
        return self.programme.next_change(now)

    # ---- the resume file ---------------------------------------------------------------------------
    def keep(self, session: str | None, started_at: float | None, key: tuple | None) -> None:
        """Write the resume file when the programme or the session changed since the last write."""
        if self.folder is None:
            return
        mark = (self.programme.revision, session)
        if mark == self._written:
            return
        self._written = mark
        try:
            resume.save(self.folder, resume.Saved(format=resume.FORMAT, session=session, started_at=started_at, key=key,
                                                  programme=self.programme.state))
        except OSError as exc:
            log.warning("resume state not written", state_dir=str(self.folder), error=str(exc))
