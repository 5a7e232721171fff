"""Blocking playlist reload (RFC 8216bis 6.2.5.2) for a stream format with partial segments
(presets.py "hls-fast-parts": CAN-BLOCK-RELOAD=YES, which Low-Latency HLS requires):
`GET .../stream.m3u8?_HLS_msn=N[&_HLS_part=P]` is answered once what it asks for is listed.

- castd lists a segment and its one partial segment (itself) together, when the segment is complete. So part 0
  of segment N is listed with N, and a part P >= 1 of N never is: the playlist that satisfies it is the one
  that lists segment N + 1 (its part 0, the next part after N's last). Shaka asks for `_HLS_msn=N+1&_HLS_part=0`
  after a playlist whose last segment has parts (HlsParser.getNextMediaSequenceAndPart_), `_HLS_msn` alone after
  one whose last segment has none (the 1.4 s held first one).
- Already listed: the playlist at once. N more than two past the last listed: 400 at once (the draft's SHOULD:
  such a client is confused, holding it would only tie up a connection). `_HLS_part` without `_HLS_msn`: 400
  (the draft: an error).
- Otherwise the request waits, without blocking the event loop, until the playlist lists it, at most three
  target durations (3 s: TARGET_DURATION is 1); then 503, as the draft says, and the player retries. Shaka
  retries a failed playlist update on its next refresh timer (HlsParser.onUpdate_).

How a held request learns that a segment was listed: the encoder child writes the playlist (os.replace of
a new file: a new inode each time, encoder/hls.py write_atomic) in another process. The front end's other
source, the supervisor's snapshot, follows the encoder's Progress report every 0.5 s (encoder/child.py
REPORT_INTERVAL): a whole hls-fast segment late, so a hold answered from it would come later than the
player's own poll. The standard library has no inotify and none of castd's libraries wraps it, so
`PlaylistWatch` stats the file every 10 ms, from one task per playlist that runs only while a request is
held (an lstat is ~2 us: ~0.02 % of a core while held), reads it (in a worker thread, as the stream route
reads) when it changed, and wakes every held request of it at once through one asyncio.Condition. A
request is answered ~10 ms at most after its segment is listed, with the very text that lists it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from castd.presets import TARGET_DURATION

POLL = 0.01  # seconds between two looks at a held playlist
HOLD_LIMIT = 3.0 * TARGET_DURATION  # RFC 8216bis 6.2.5.2: then 503
AHEAD_LIMIT = 2  # `_HLS_msn` more than this past the last listed segment: 400

Reader = Callable[[], Awaitable[str | None]]  # the playlist's text, None when it is gone


class BadDirective(ValueError):
    """A delivery directive castd cannot honour: the sentence goes into the 400."""


def _whole(query: Mapping[str, str], name: str, what: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BadDirective(f"{name} must be {what} (a whole number >= 0), not {raw[:40]!r}")
    return int(raw)


def requested_msn(query: Mapping[str, str]) -> int | None:
    """The media sequence number of the segment whose listing answers the request (module docstring: part 0
    of N is listed with N, a later part of N with N + 1); None without a directive; BadDirective when
    malformed."""
    msn = _whole(query, "_HLS_msn", "a media sequence number")
    part = _whole(query, "_HLS_part", "a partial segment index")
    if msn is None:
        if part is not None:
            raise BadDirective("_HLS_part without _HLS_msn (RFC 8216bis 6.2.5.2)")
        return None
    return msn + 1 if part else msn


def last_msn(text: str) -> int:
    """The media sequence number of the last segment a media playlist lists (-1 before the first)."""
    first, count = 0, 0
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            first = int(line.partition(":")[2])
        elif line and not line.startswith("#"):
            count += 1
    return first + count - 1 if count else -1


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


@dataclass
class _Watched:
    condition: asyncio.Condition
    read: Reader
    task: asyncio.Task | None = None
    signature: tuple[int, int, int] | None = (-1, -1, -1)  # never a file's: the first look always reads
    text: str | None = None
    last: int = -1
    waiting: int = 0


class PlaylistWatch:
    """Holds playlist requests until their segment is listed.

    Invariant: at most one polling task per playlist, alive only while a request for it is held."""

    def __init__(self, poll: float = POLL) -> None:
        self.poll = poll
        self._watched: dict[Path, _Watched] = {}

    def watching(self) -> int:
        """Playlists polled now (0 when no request is held)."""
        return len(self._watched)

    async def wait_listed(self, path: Path, msn: int, read: Reader) -> str:
        """The text of `path` once it lists segment `msn` (the caller bounds the wait: asyncio.timeout)."""
        watched = self._watched.get(path)
        if watched is None:
            watched = self._watched[path] = _Watched(asyncio.Condition(), read)
            watched.task = asyncio.create_task(self._poll(path, watched))
        watched.waiting += 1
        try:
            async with watched.condition:
                await watched.condition.wait_for(lambda: watched.last >= msn)
            assert watched.text is not None  # last >= 0 only once a text was read
            return watched.text
        finally:
            watched.waiting -= 1
            if watched.waiting == 0 and self._watched.get(path) is watched:
                assert watched.task is not None
                watched.task.cancel()
                del self._watched[path]

    async def _poll(self, path: Path, watched: _Watched) -> None:
        while True:
            now = _signature(path)
            if now != watched.signature:
                watched.signature = now
                text = await watched.read()
                if text is not None:
                    async with watched.condition:
                        watched.text, watched.last = text, last_msn(text)
                        watched.condition.notify_all()
            await asyncio.sleep(self.poll)
