"""Watching castd's live HLS output from the outside, as a player would.

The watcher polls the media playlist and notes the moment each segment is first listed: that is
when a player can have it. Decoding helpers tell which page a segment shows.
"""

from __future__ import annotations

import time

import httpx

from bench.testhelpers import close_to, open_segment

POLL_INTERVAL = 0.025


class BenchError(RuntimeError):
    """A benchmark step that could not complete (castd did not do what was asked in time)."""


def media_url_of(stream_url: str) -> str:
    """The media playlist next to the master playlist (the master only appears with the first
    segment, and a start is timed from before that)."""
    from castd.paths import MEDIA_PLAYLIST

    return stream_url.rsplit("/", 1)[0] + "/" + MEDIA_PLAYLIST


class SegmentWatcher:
    def __init__(self, client: httpx.Client, media_url: str) -> None:
        self.client = client
        self.media_url = media_url
        self.base = media_url.rsplit("/", 1)[0]
        self.seen: set[str] = set()

    def listed(self) -> list[str]:
        try:
            response = self.client.get(self.media_url)
        except httpx.HTTPError:
            return []
        if response.status_code != 200:
            return []
        return [f"{self.base}/{line}" for line in response.text.splitlines() if line and not line.startswith("#")]

    def prime(self) -> None:
        """Ignore the segments listed now: only later ones can show what comes next."""
        self.seen.update(self.listed())

    def poll(self) -> list[tuple[str, float]]:
        """Segments listed since the last poll, each with the wall time it was first seen."""
        urls = self.listed()
        now = time.time()
        new = [(url, now) for url in urls if url not in self.seen]
        self.seen.update(urls)
        return new

    def fetch(self, url: str) -> bytes | None:
        try:
            response = self.client.get(url)
        except httpx.HTTPError:
            return None
        return response.content if response.status_code == 200 else None

    def first_matching(self, test, since: float, timeout: float) -> tuple[float, bytes]:
        """Wait for the first new segment whose data passes `test`; returns (seconds from
        `since` until it was listed, its data)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for url, seen_at in self.poll():
                data = self.fetch(url)
                if data and test(data):
                    return seen_at - since, data
            time.sleep(POLL_INTERVAL)
        raise BenchError(f"no segment showing the page within {timeout:.0f}s")


def frames_of(data: bytes) -> list:
    try:
        with open_segment(data) as container:
            return list(container.decode(video=0))
    except Exception:  # a damaged or partial segment shows nothing
        return []


def rgb_points(frame, points) -> list[tuple[int, int, int]]:
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    data = bytes(plane)
    out = []
    for x, y in points:
        at = y * plane.line_size + x * 3
        out.append((data[at], data[at + 1], data[at + 2]))
    return out


def shows_colour(data: bytes, rgb: tuple[int, int, int]) -> bool:
    """True when the segment's last frame is `rgb` in the middle and near the corners."""
    frames = frames_of(data)
    if not frames:
        return False
    frame = frames[-1]
    w, h = frame.width, frame.height
    points = ((w // 2, h // 2), (8, 8), (w - 9, h - 9))
    return all(close_to(found, rgb) for found in rgb_points(frame, points))
