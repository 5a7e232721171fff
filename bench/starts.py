"""Start and switch timings: from the POST /start to the first finished segment that shows the page.

Every run asks for a page of a different solid colour, and a segment counts only when its decoded
last frame has that colour, so a segment of the previous page (or of about:blank) never counts.
The time is when the segment was first listed in the media playlist, i.e. when a player could
fetch it.
"""

from __future__ import annotations

import random
import time

from bench.control import Castd
from bench.hlswatch import BenchError, SegmentWatcher, media_url_of, shows_colour

PALETTE = ["ff0000", "0000ff", "00ff00", "ffff00", "ff00ff", "00ffff", "ff8000", "8000ff"]
START_TIMEOUT = 30.0


def colour(run: int) -> tuple[str, tuple[int, int, int]]:
    hexa = PALETTE[run % len(PALETTE)]
    return hexa, (int(hexa[0:2], 16), int(hexa[2:4], 16), int(hexa[4:6], 16))


def start_from_idle(castd: Castd, pages, runs: int, quality: str, nothing_running: bool,
                    first_colour: int = 0, standby: bool = False) -> list[float]:
    """Seconds from POST /start (castd idle; with `standby`, its warm standby ready) to the first
    segment showing the page, per run."""
    times = []
    for run in range(runs):
        castd.settle_idle(nothing_running=nothing_running, standby=standby)
        hexa, rgb = colour(first_colour + run)
        started = time.time()
        body = castd.start(pages.url(f"/color/{hexa}"), quality)
        watcher = SegmentWatcher(castd.client, media_url_of(body["stream_url"]))
        seconds, _ = watcher.first_matching(lambda data: shows_colour(data, rgb), started, START_TIMEOUT)
        times.append(round(seconds, 3))
    castd.settle_idle(nothing_running=nothing_running, standby=standby)
    return times


def switches(castd: Castd, pages, runs: int, quality: str, seed: int = 7) -> tuple[list[float], dict]:
    """Seconds from a POST /start during a stream to the first segment showing the new page.

    The pause before each switch is random (0.2-1.2 s) so switches land at every phase of the
    1 s segment clock instead of always at the same one. Returns the times and the session body.
    """
    rng = random.Random(seed)
    hexa, rgb = colour(0)
    started = time.time()
    body = castd.start(pages.url(f"/color/{hexa}"), quality)
    watcher = SegmentWatcher(castd.client, media_url_of(body["stream_url"]))
    watcher.first_matching(lambda data: shows_colour(data, rgb), started, START_TIMEOUT)
    times = []
    for run in range(1, runs + 1):
        time.sleep(rng.uniform(0.2, 1.2))
        hexa, rgb = colour(run)
        watcher.prime()
        started = time.time()
        switched = castd.start(pages.url(f"/color/{hexa}"), quality)
        if not switched.get("switched") or switched["session"] != body["session"]:
            raise BenchError("castd started a new session instead of switching the page")
        seconds, _ = watcher.first_matching(lambda data: shows_colour(data, rgb), started, START_TIMEOUT)
        times.append(round(seconds, 3))
    return times, body
