"""A cursor through a playlist's items: which item is on at `now`, and when the next switch is.

The cursor is two numbers, the item index and the wall time at which that item began (`since`),
so it survives a restart in the state file and answers for any `now`: after a 3 s restart the same
item goes on with its remaining time. A pause (an interrupt over the playlist) freezes it; on
resume the item has the time it had left. A clock that jumps forward by hours is not replayed item
by item (whole rounds are skipped arithmetically); one that jumps back restarts the current item.
"""

from __future__ import annotations

import msgspec


class Cursor(msgspec.Struct, kw_only=True):
    index: int = 0
    since: float = 0.0  # wall time at which the current item began
    paused_at: float | None = None  # set while an interrupt covers the playlist
    finished: bool = False  # a once-through playlist past its last item


def advance(cursor: Cursor, durations: list[float], loop: bool, now: float) -> None:
    """Move the cursor to the item on at `now` (no-op while paused or finished)."""
    if cursor.paused_at is not None or cursor.finished or not durations:
        return
    cursor.index %= len(durations)
    if now < cursor.since:  # the clock went back: start the item again from now
        cursor.since = now
        return
    total = sum(durations)
    if loop and now - cursor.since > 2 * total:  # a long jump: skip whole rounds at once
        cursor.since += ((now - cursor.since) // total - 1) * total
    while now >= cursor.since + durations[cursor.index]:
        cursor.since += durations[cursor.index]
        if cursor.index + 1 < len(durations):
            cursor.index += 1
        elif loop:
            cursor.index = 0
        else:
            cursor.finished = True
            return


def next_switch(cursor: Cursor, durations: list[float]) -> float | None:
    if cursor.paused_at is not None or cursor.finished or not durations:
        return None
    return cursor.since + durations[cursor.index % len(durations)]


def step(cursor: Cursor, count: int, length: int, now: float) -> None:
    """/next (+1) and /previous (-1): that item, with its full time, from now (wrapping round)."""
    cursor.index = (cursor.index + count) % length
    cursor.since, cursor.finished = now, False


def pause(cursor: Cursor, now: float) -> None:
    if cursor.paused_at is None:
        cursor.paused_at = now


def resume(cursor: Cursor, now: float) -> None:
    if cursor.paused_at is not None:
        cursor.since += max(0.0, now - cursor.paused_at)
        cursor.paused_at = None
