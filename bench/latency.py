"""Page-to-segment latency: how old a picture is when the segment holding it is listed.

The clock page (clockcode.py) draws Date.now() into every frame; the bench decodes each new
segment castd serves, reads the time drawn in each frame, and subtracts it from the moment the
segment appeared in the playlist. Page, castd and bench share this machine's clock.
"""

from __future__ import annotations

import time

from bench import clockcode
from bench.control import Castd
from bench.hlswatch import BenchError, SegmentWatcher, frames_of, media_url_of


def clock_times_ms(data: bytes, now_ms: int) -> list[int | None]:
    """The time drawn in each frame of a segment (None where the pattern cannot be read)."""
    out: list[int | None] = []
    for frame in frames_of(data):
        value = clockcode.read_value(frame)
        out.append(None if value is None else clockcode.unwrap_ms(value, now_ms))
    return out


def page_to_segment(castd: Castd, pages, quality: str, segments: int, session: dict | None = None) -> dict:
    """Switch (or start) to the clock page, then measure `segments` consecutive segments."""
    started = time.time()
    body = castd.start(pages.url("/clock"), quality)
    watcher = SegmentWatcher(castd.client, media_url_of((session or body)["stream_url"]))
    watcher.prime()
    watcher.first_matching(lambda data: any(clock_times_ms(data, int(time.time() * 1000))), started, 30)
    ages: list[float] = []
    oldest: list[float] = []
    newest: list[float] = []
    unreadable = frames = 0
    deadline = time.monotonic() + segments * 3 + 10
    measured = 0
    while measured < segments:
        if time.monotonic() > deadline:
            raise BenchError(f"only {measured} of {segments} segments appeared")
        for url, seen_at in watcher.poll():
            data = watcher.fetch(url)
            if data is None:
                continue
            drawn = clock_times_ms(data, int(seen_at * 1000))
            frames += len(drawn)
            readable = [ms for ms in drawn if ms is not None]
            unreadable += len(drawn) - len(readable)
            if not readable:
                continue
            seg_ages = [seen_at - ms / 1000 for ms in readable]
            ages += seg_ages
            oldest.append(max(seg_ages))
            newest.append(min(seg_ages))
            measured += 1
        time.sleep(0.02)
    return {"ages": [round(a, 3) for a in ages], "oldest_per_segment": [round(a, 3) for a in oldest],
            "newest_per_segment": [round(a, 3) for a in newest], "frames": frames, "unreadable": unreadable,
            "segments": measured}
