"""[[schedules]] as windows of real time: which entry is on at `now`, and when that next changes.

An entry's `start` and `end` are wall-clock times in its time zone, so a window is computed per
local day with zoneinfo and only then turned into epoch seconds. That is what makes DST right: an
07:00-09:00 entry in Europe/Berlin starts at 06:00 UTC in winter and 05:00 UTC in summer, and a
01:00-03:00 entry on the night the clocks go back lasts three real hours (it is two on the
night they go forward). A wall time that does not exist (02:30 on the spring-forward night) is
read with the offset before the change (fold=0), i.e. 03:30 summer time (02:15-02:45 that night
runs 03:15-03:45); a window that this leaves empty (02:30-03:00 that night) does not happen. A time
that exists twice (02:30 on the fall-back night) means its first occurrence.

Nothing here keeps state, so a clock that jumps (NTP setting a Pi's clock after boot, a person
changing it) simply gives the answer for the new time: a window jumped over is skipped, a window
jumped back into is on again. Where windows overlap, the later-starting one wins (the same start:
the one listed later in the config), so a short entry inside a long one takes the screen and gives
it back.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from castd.config import ScheduleEntry, parse_clock

LOOK_BACK_DAYS = 1  # a window that started yesterday (past midnight) may still be on
LOOK_AHEAD_DAYS = 8  # a weekly entry starts within a week


@dataclass(frozen=True, order=True)
class Window:
    """One occurrence of a schedule entry: [start, end) in epoch seconds."""

    start: float
    entry: int  # index in config.schedules (second in the order: the same start, the later entry wins)
    end: float

    @property
    def key(self) -> tuple[int, float]:
        return (self.entry, self.start)


def _at(day: date, at: time, zone: zoneinfo.ZoneInfo) -> float:
    return datetime.combine(day, at, tzinfo=zone).timestamp()


def _compute(entries: list[ScheduleEntry], now: float) -> list[Window]:
    found: list[Window] = []
    for index, entry in enumerate(entries):
        zone = zoneinfo.ZoneInfo(entry.zone())
        today = datetime.fromtimestamp(now, zone).date()
        days = entry.weekdays()
        start_at, end_at = parse_clock(entry.start, "start"), parse_clock(entry.end, "end")
        wraps = end_at <= start_at
        for offset in range(-LOOK_BACK_DAYS - 1, LOOK_AHEAD_DAYS + 1):
            day = today + timedelta(days=offset)
            if day.weekday() not in days:
                continue
            start = _at(day, start_at, zone)
            end = _at(day + timedelta(days=1) if wraps else day, end_at, zone)
            if end > start:
                found.append(Window(start=start, entry=index, end=end))
    return sorted(found)


# The supervisor asks every pass (4 a second); computing ~11 days of windows per entry with zoneinfo
# costs ~0.5 ms per entry here (more on a Pi). The list is valid for any `now` within the same hour
# (it spans a day back and a week ahead), so it is kept per hour and per config: the entries
# themselves are held in the key's value, so their ids cannot be reused while cached.
_cache: dict[tuple, tuple[list[ScheduleEntry], list[Window]]] = {}


def windows(entries: list[ScheduleEntry], now: float) -> list[Window]:
    """Every occurrence from a day before `now` to a week after it, ordered by start."""
    key = (tuple(id(entry) for entry in entries), int(now // 3600))
    hit = _cache.get(key)
    if hit is None:
        if len(_cache) > 8:
            _cache.clear()
        hit = _cache[key] = (list(entries), _compute(entries, now))
    return hit[1]


def active(entries: list[ScheduleEntry], now: float) -> Window | None:
    """The window on at `now`: of those on, the one that started last."""
    on = [w for w in windows(entries, now) if w.start <= now < w.end]
    return max(on) if on else None


def next_boundary(entries: list[ScheduleEntry], now: float) -> float | None:
    """The first time after `now` at which a window starts or ends (what is on may change there)."""
    times = [t for w in windows(entries, now) for t in (w.start, w.end) if t > now]
    return min(times) if times else None
