"""What castd should show at `now`: manual starts, schedule windows and interrupts, in one stack.

From the bottom: the schedule's current window (a dashboard or a playlist), a manual start over it,
and interrupts over both (`"then": "resume"`: shown for `duration`, then what was under them comes
back; nested ones end newest first). The top layer is what is shown; a playlist under an interrupt
is paused, so it comes back at the same item with the time it had left.

How long a manual start beats the schedule is config `schedule_override`: "boundary" (default)
until the schedule's next boundary (a window starting or ending), "session" until the manual
session ends. A stop clears the manual start and the interrupts and keeps the schedule's current
window off until its next boundary (a person who stopped the screen at 08:10 does not want the
08:00-09:00 window back at 08:10:01). A session that failed counts as a stop.

`decide(now)` is the only question the supervisor asks; commands change the stack. No I/O and no
clock: `now` (epoch seconds) is always an argument, so the tests run days of DST in milliseconds.
The whole state is `State`, a msgspec Struct the resume file keeps.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from castd.config import Config
from castd.programme import playlist as cursor_ops
from castd.programme import schedule
from castd.programme.playlist import Cursor
from castd.programme.targets import (Target, Then, UnknownName, dashboard_page, dashboard_target, find_dashboard,
                                     find_playlist, playlist_target)
from castd.protocol import Mode, PageOverrides
from castd.sharing import Sharing

Source = Literal["manual", "schedule", "interrupt"]


class Layer(msgspec.Struct, kw_only=True):
    source: Source
    target: Target
    started_at: float
    until: float | None = None  # a duration's end
    boundary: float | None = None  # a manual start in "boundary" mode: the schedule takes over here
    window: tuple[int, float] | None = None  # source schedule: the window (entry, start) it shows
    cursor: Cursor | None = None  # a playlist's position


class State(msgspec.Struct, kw_only=True):
    """Everything the programme knows (what the resume file keeps)."""

    base: Layer | None = None  # the manual start
    interrupts: list[Layer] = []  # oldest first
    scheduled: Layer | None = None  # the schedule's current window
    suppressed: tuple[int, float] | None = None  # a window stopped by hand: off until its end


# what a show's ends_at is: its duration ends the session; an interrupt gives the screen back to what
# was on (the session goes on); the schedule takes over (a window's end, or a boundary ending a manual start)
EndsBy = Literal["duration", "interrupt", "schedule"]


class Show(msgspec.Struct, kw_only=True, frozen=True):
    """What should be on screen now. quality, mode and devices make the session: a Show that
    differs from the last only in its page is a page switch (one LOAD, one stream URL)."""

    source: Source
    url: str
    quality: str
    devices: tuple[str, ...]
    mode: Mode
    page: PageOverrides
    dashboard: str | None = None
    playlist: str | None = None
    item: int | None = None  # the playlist item on screen (0-based)
    items: int | None = None
    next_switch_at: float | None = None  # when the playlist moves to its next item
    ends_at: float | None = None  # when this show ends by itself (a duration, a window's end)
    schedule: str | None = None  # the schedule entry's name, when the schedule decided
    ends_by: EndsBy | None = None  # what ends_at is: see EndsBy
    sharing: Sharing = Sharing()  # how the session shares the TV (castd/sharing.py); not part of the session key

    @property
    def session_key(self) -> tuple:
        return (self.quality, self.mode, self.devices)


class Programme:
    def __init__(self, config: Config, state: State | None = None) -> None:
        self.config = config
        self.state = state if state is not None else State()
        self.revision = 0  # bumped by every change worth keeping in the state file
        self.ended = ""  # why the last layer ended by itself (for the log's stop reason)

    # ---- commands -------------------------------------------------------------------------
    def start(self, target: Target, now: float, duration: float | None = None, then: Then = "stop") -> None:
        """A manual start; `then="resume"` with a duration is an interrupt over whatever is on."""
        layer = Layer(source="manual", target=target, started_at=now,
                      until=now + duration if duration else None,
                      cursor=Cursor(since=now) if target.playlist else None)
        for below in self._layers():  # what was on stops its clock now, not at the next decide()
            if below.cursor is not None:
                cursor_ops.pause(below.cursor, now)
        if then == "resume" and duration:
            layer.source = "interrupt"
            self.state.interrupts.append(layer)
        else:
            if self.config.schedule_override == "boundary" and self.config.schedules:
                layer.boundary = schedule.next_boundary(self.config.schedules, now)
            self.state.base, self.state.interrupts = layer, []
        self.revision += 1

    def stop(self, now: float) -> None:
        """End the manual start and the interrupts; keep the schedule's current window off until it ends."""
        state = self.state
        window = schedule.active(self.config.schedules, now)
        state.base, state.interrupts, state.scheduled = None, [], None
        state.suppressed = window.key if window else None
        self.revision += 1

    def step(self, count: int, now: float) -> bool:
        """/next and /previous: move the playlist on screen; False when no playlist is on screen."""
        self.decide(now)
        layer = self._top()
        if layer is None or layer.cursor is None or layer.target.playlist is None:
            return False
        length = len(find_playlist(self.config, layer.target.playlist).items)
        cursor_ops.step(layer.cursor, count, length, now)
        self.revision += 1
        return True

    def why_no_step(self, now: float) -> str:
        """Why step() said no, in words: an interrupt covers a playlist (it is paused underneath and
        comes back with the time it had left: stepping it unseen would move what the viewer returns
        to), or no playlist is on at all."""
        top = self._top()
        below = [layer for layer in self._layers()[:-1] if layer.target.playlist is not None]
        if top is not None and top in self.state.interrupts and below:
            back = f" in {max(0, round(top.until - now))} s" if top.until is not None else ""
            return (f"an interrupt is on screen ({top.target.dashboard or top.target.url}); the playlist "
                    f"{below[-1].target.playlist} is paused underneath and comes back{back}: step it then")
        return "no playlist is on screen"

    # ---- the question -----------------------------------------------------------------------
    def decide(self, now: float) -> Show | None:
        """What should be on screen at `now` (None: nothing; castd stops)."""
        self._expire(now)
        top = self._top()
        for layer in self._layers():
            if layer.cursor is not None and layer is not top:
                if layer.cursor.paused_at is None:
                    cursor_ops.pause(layer.cursor, now)
                    self.revision += 1
        if top is None:
            return None
        if top.cursor is not None:
            if top.cursor.paused_at is not None:
                cursor_ops.resume(top.cursor, now)
                self.revision += 1
            durations = self._durations(top)
            cursor_ops.advance(top.cursor, durations, self._loops(top), now)
            if top.cursor.finished:  # a once-through playlist is over: that layer ends
                self.ended = "playlist finished"
                self._drop(top)
                return self.decide(now)
        return self._show(top)

    def next_change(self, now: float) -> float | None:
        """The earliest time after `now` at which decide() may answer differently."""
        times = [schedule.next_boundary(self.config.schedules, now)]
        for layer in self._layers():
            times += [layer.until, layer.boundary]
        top = self._top()
        if top is not None and top.cursor is not None:
            times.append(cursor_ops.next_switch(top.cursor, self._durations(top)))
        future = [t for t in times if t is not None and t > now]
        return min(future) if future else None

    # ---- inside -------------------------------------------------------------------------------
    def _layers(self) -> list[Layer]:
        state = self.state
        return [layer for layer in (state.scheduled, state.base, *state.interrupts) if layer is not None]

    def _top(self) -> Layer | None:
        layers = self._layers()
        return layers[-1] if layers else None

    def _drop(self, layer: Layer) -> None:
        state = self.state
        if layer in state.interrupts:
            state.interrupts.remove(layer)
        elif layer is state.base:
            state.base = None
        elif layer is state.scheduled:
            state.suppressed, state.scheduled = layer.window, None
        self.revision += 1

    def _expire(self, now: float) -> None:
        state = self.state
        for layer in [i for i in state.interrupts if i.until is not None and now >= i.until]:
            self.ended = "interrupt over"
            self._drop(layer)
        base = state.base
        if base is not None and base.until is not None and now >= base.until:
            self.ended = "session duration reached"
            self._drop(base)
        elif base is not None and base.boundary is not None and now >= base.boundary:
            self.ended = "schedule boundary: the schedule takes over"
            self._drop(base)
        window = schedule.active(self.config.schedules, now)
        key = window.key if window else None
        if state.suppressed is not None and state.suppressed != key:
            state.suppressed = None
            self.revision += 1
        if window is None or key == state.suppressed:
            if state.scheduled is not None:
                self.ended = "schedule window ended"
                state.scheduled = None
                self.revision += 1
            return
        if state.scheduled is None or state.scheduled.window != key:
            state.scheduled = self._window_layer(window)
            self.revision += 1

    def _window_layer(self, window: schedule.Window) -> Layer:
        entry = self.config.schedules[window.entry]
        devices = None if entry.device is None else tuple(_split(entry.device))
        if entry.playlist:
            target = playlist_target(self.config, entry.playlist, devices=devices)
        else:
            target = dashboard_target(self.config, entry.dashboard, devices=devices)
        target = msgspec.structs.replace(target, sharing=entry.sharing().over(target.sharing))
        return Layer(source="schedule", target=target, started_at=window.start, until=window.end,
                     window=window.key, cursor=Cursor(since=window.start) if entry.playlist else None)

    def _durations(self, layer: Layer) -> list[float]:
        return [item.seconds for item in find_playlist(self.config, layer.target.playlist or "").items]

    def _loops(self, layer: Layer) -> bool:
        return find_playlist(self.config, layer.target.playlist or "").loop

    def _show(self, layer: Layer) -> Show:
        target = layer.target
        ends_at = min((t for t in (layer.until, layer.boundary) if t is not None), default=None)
        ends_by: EndsBy | None = None
        if ends_at is not None:
            ends_by = "interrupt" if layer.source == "interrupt" else \
                "duration" if ends_at == layer.until and layer.source == "manual" else "schedule"
        name = None
        if layer.window is not None:
            entry = self.config.schedules[layer.window[0]]
            name = entry.name or f"schedule {layer.window[0] + 1}"
        show = Show(source=layer.source, url=target.url, quality=target.quality, devices=target.devices,
                    mode=target.mode, page=target.page, dashboard=target.dashboard, ends_at=ends_at, schedule=name,
                    ends_by=ends_by, sharing=target.sharing)
        if target.playlist is None or layer.cursor is None:
            return show
        playlist = find_playlist(self.config, target.playlist)
        index = layer.cursor.index % len(playlist.items)
        board = find_dashboard(self.config, playlist.items[index].dashboard)
        return msgspec.structs.replace(show, url=board.url, page=dashboard_page(board), dashboard=board.name,
                                       playlist=playlist.name, item=index, items=len(playlist.items),
                                       next_switch_at=cursor_ops.next_switch(layer.cursor, self._durations(layer)))


def _split(device: str | list[str]) -> list[str]:
    from castd.specs import split_specs

    return split_specs(device)


def restore(config: Config, state: State, now: float) -> tuple[Programme, list[str]]:
    """A programme from a saved state, dropping (with a reason each) layers whose names are gone."""
    problems: list[str] = []
    programme = Programme(config, state)

    def valid(layer: Layer | None) -> bool:
        if layer is None:
            return False
        try:
            if layer.target.playlist is not None:
                find_playlist(config, layer.target.playlist)
            elif layer.target.dashboard is not None and layer.source == "schedule":
                find_dashboard(config, layer.target.dashboard)
        except UnknownName as exc:
            problems.append(str(exc))
            return False
        if layer.window is not None and layer.window[0] >= len(config.schedules):
            problems.append("a schedule entry is gone")
            return False
        return True

    state.base = state.base if valid(state.base) else None
    state.interrupts = [layer for layer in state.interrupts if valid(layer)]
    state.scheduled = state.scheduled if valid(state.scheduled) else None
    programme.decide(now)
    return programme, problems
