"""RFC 8216's rules for a live media playlist, checked on every playlist a server served, and every
segment's real content (decoded with PyAV) against its EXTINF.

Playlists are parsed by the `m3u8` library, not by hand. `PlaylistWatch` polls a live media playlist
over HTTP (a player refreshes about once per target duration; this polls several times faster, so it
sees every version), keeps each distinct text, downloads each segment the moment it is listed (before
the server's window drops it) and fetches each segment once more when it leaves the list (RFC 8216
6.2.2: it must stay available a while). The three checks return a list of problems, one sentence
each, so a failing test says every rule broken at once:

- playlist_problems(text): one playlist on its own (4.3, 6.2.2);
- reload_problems(snapshots): successive versions against each other (6.2.1, 6.2.2, 4.3.3.3);
- timeline_problems(segments, ...): the media each segment holds against its EXTINF, and one timeline
  across segments (castd's own rule: timestamps continue across DISCONTINUITY too).
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field

import av
import httpx
import m3u8

AAC_FRAME = 1024 / 48000


@dataclass
class Listed:
    """One segment as the playlist listed it (by media sequence number) and as it was served."""

    msn: int
    uri: str
    duration: float
    discontinuity: bool
    data: bytes | None = None
    status_after_removal: int | None = None


def playlist_problems(text: str) -> list[str]:
    """A live media playlist on its own, by RFC 8216."""
    problems = []
    if not text.startswith("#EXTM3U"):
        problems.append("does not start with #EXTM3U (4.3.1.1)")
    pl = m3u8.loads(text)
    if pl.is_variant:
        return problems + ["is a master playlist, expected a media playlist"]
    target = pl.target_duration
    if target is None:
        problems.append("no EXT-X-TARGETDURATION (4.3.3.1: required)")
    elif int(target) != target:
        problems.append(f"EXT-X-TARGETDURATION {target} is not a decimal integer (4.3.3.1)")
    if pl.is_endlist or (pl.playlist_type or "").upper() == "VOD":
        problems.append("ENDLIST or PLAYLIST-TYPE:VOD in a live playlist")
    first_segment = text.find("#EXTINF")
    for tag in ("#EXT-X-MEDIA-SEQUENCE", "#EXT-X-DISCONTINUITY-SEQUENCE", "#EXT-X-TARGETDURATION"):
        at = text.find(tag + ":")
        if at != -1 and first_segment != -1 and at > first_segment:
            problems.append(f"{tag} after the first segment (4.3.3)")
    durations = [s.duration for s in pl.segments]
    if any(d != int(d) for d in durations) and (pl.version or 1) < 3:
        problems.append(f"decimal EXTINF with EXT-X-VERSION {pl.version} (7: needs 3)")
    if target is not None:
        for s in pl.segments:
            if round(s.duration) > target:
                problems.append(f"{s.uri}: EXTINF {s.duration} rounds above the target duration {target} (4.3.3.1)")
        if pl.media_sequence and sum(durations) < 3 * target - 1e-6:
            problems.append(f"segments were removed although only {sum(durations):.3f}s remain, under three "
                            f"target durations (6.2.2)")
        control = pl.server_control
        hold_back = getattr(control, "hold_back", None) if control else None
        if hold_back is not None and hold_back < 3 * target:
            problems.append(f"HOLD-BACK {hold_back} under three target durations (4.3.3.8)")
    if text.count("#EXT-X-START:") > 1:
        problems.append("EXT-X-START more than once (4.3.5: at most once)")
    if pl.start is not None:
        offset = pl.start.time_offset
        at = text.find("#EXT-X-START:")
        if first_segment != -1 and at > first_segment:
            problems.append("EXT-X-START after the first segment (4.3.5)")
        # castd bends 4.3.5.2's SHOULD (not within three target durations of a live playlist's end: see
        # presets.py); what it may not do is point before the playlist, where it would mean its start
        if offset >= 0 or -offset > sum(durations) + 1e-6:
            problems.append(f"EXT-X-START TIME-OFFSET {offset} is not a point inside the listed "
                            f"{sum(durations):.3f}s counted from the live end (4.3.5.2)")
    if not pl.segments:
        problems.append("lists no segment")
    uris = [s.uri for s in pl.segments]
    if len(set(uris)) != len(uris):
        problems.append("a segment URI is listed twice")
    if (pl.media_sequence or 0) == 0 and pl.segments and pl.segments[0].discontinuity:
        problems.append("EXT-X-DISCONTINUITY before the stream's first segment")
    for s in pl.segments:
        if s.duration <= 0:
            problems.append(f"{s.uri}: EXTINF {s.duration} is not positive")
    return problems + part_problems(pl)


def part_problems(pl: m3u8.M3U8) -> list[str]:
    """Partial segments (RFC 8216bis, Low-Latency HLS: 4.4.3.7, 4.4.3.8, 4.4.4.9, 6.2.5.2)."""
    parted = [s for s in pl.segments if s.parts]
    control = pl.server_control
    if not parted:
        return ["EXT-X-PART-INF without any EXT-X-PART"] if pl.part_inf else []
    problems = []
    if not pl.part_inf:  # (m3u8 gives {} when the tag is absent)
        return ["EXT-X-PART without EXT-X-PART-INF (4.4.3.7: required)"]
    target = pl.part_inf.part_target
    hold = getattr(control, "part_hold_back", None) if control else None
    if hold is None:
        problems.append("partial segments without PART-HOLD-BACK (4.4.3.8: required with EXT-X-PART-INF)")
    elif hold < 2 * target:
        problems.append(f"PART-HOLD-BACK {hold} under twice PART-TARGET {target} (4.4.3.8)")
    if not control or control.can_block_reload != "YES":
        problems.append("partial segments without CAN-BLOCK-RELOAD=YES (Low-Latency HLS needs blocking reload)")
    to_end = 0.0
    for s in reversed(pl.segments):
        for part in s.parts:
            if part.duration > target + 1e-6:
                problems.append(f"{part.uri}: a partial segment of {part.duration}s, over PART-TARGET {target}")
        if s.parts and to_end >= 3 * (pl.target_duration or 1):
            problems.append(f"{s.uri}: partial segments listed {to_end:.3f}s from the end, over three target "
                            f"durations (4.4.4.9: SHOULD be removed)")
        if s.parts and abs(sum(p.duration for p in s.parts) - s.duration) > 1e-3:
            problems.append(f"{s.uri}: its partial segments last {sum(p.duration for p in s.parts):.3f}s, "
                            f"its EXTINF {s.duration}")
        to_end += s.duration
    return problems


def listed_segments(text: str) -> list[Listed]:
    pl = m3u8.loads(text)
    first = pl.media_sequence or 0
    return [Listed(first + i, s.uri, s.duration, bool(s.discontinuity)) for i, s in enumerate(pl.segments)]


def reload_problems(snapshots: list[str]) -> list[str]:
    """Successive versions of one live playlist, by RFC 8216 6.2.1/6.2.2 and 4.3.3.3."""
    problems: list[str] = []
    known: dict[int, Listed] = {}
    previous = None
    for n, text in enumerate(snapshots):
        pl = m3u8.loads(text)
        segments = listed_segments(text)
        for s in segments:
            seen = known.setdefault(s.msn, s)
            if (seen.uri, seen.duration, seen.discontinuity) != (s.uri, s.duration, s.discontinuity):
                problems.append(f"version {n}: segment {s.msn} changed from {seen} to {s} (6.2.1)")
        if previous is not None:
            old_pl, old = previous
            if pl.target_duration != old_pl.target_duration:
                problems.append(f"version {n}: EXT-X-TARGETDURATION changed {old_pl.target_duration} -> "
                                f"{pl.target_duration} (6.2.1)")
            old_first, first = old_pl.media_sequence or 0, pl.media_sequence or 0
            if first < old_first:
                problems.append(f"version {n}: EXT-X-MEDIA-SEQUENCE went back {old_first} -> {first} (6.2.1)")
            if segments and old and segments[-1].msn < old[-1].msn:
                problems.append(f"version {n}: a segment was removed from the end (6.2.1)")
            gone = range(old_first, first)
            if all(m in known for m in gone):
                tags = sum(known[m].discontinuity for m in gone)
                expected = (old_pl.discontinuity_sequence or 0) + tags
                if (pl.discontinuity_sequence or 0) != expected:
                    problems.append(f"version {n}: EXT-X-DISCONTINUITY-SEQUENCE {pl.discontinuity_sequence or 0}, "
                                    f"expected {expected} after {tags} tag(s) left the window (4.3.3.3)")
        previous = (pl, segments)
    return problems


@dataclass
class Media:
    """What one segment holds, decoded."""

    video: list[float]  # presentation times (s) of every video frame, in order
    keyframe_first: bool
    audio: list[tuple[float, float]]  # (pts, duration) of every audio packet, seconds


def decode(data: bytes) -> Media:
    with av.open(io.BytesIO(data), format="mpegts") as container:
        frames = [(float(f.pts * f.time_base), f.key_frame) for f in container.decode(video=0)]
    with av.open(io.BytesIO(data), format="mpegts") as container:
        audio = [(float(p.pts * p.time_base), float(p.duration * p.time_base))
                 for p in container.demux(audio=0) if p.pts is not None]
    return Media([t for t, _ in frames], bool(frames and frames[0][1]), audio)


def timeline_problems(segments: list[Listed], fps: float, max_gap: float = 0.35,
                      continuous: bool = True) -> list[str]:
    """Each segment's media against its EXTINF, and the timeline across segments.

    A segment listed as d seconds must hold video from its start up to d later: its first frame
    is a keyframe at the start, every frame lies before start + d, and the last one is shown at
    most `max_gap` before the end (a TS frame has no duration of its own; a player shows it until
    the next one, so the gap is a frame the grabber delivered late, not a hole). The silent audio
    covers the segment to within one AAC frame. Consecutive segments join exactly: the next one
    starts where EXTINF says this one ends, across a DISCONTINUITY too when `continuous`.
    """
    problems = []
    frame = 1 / fps
    previous: tuple[Listed, Media] | None = None
    for s in sorted((s for s in segments if s.data), key=lambda s: s.msn):
        media = decode(s.data)
        if not media.video:
            problems.append(f"segment {s.msn}: no video frame")
            continue
        start, end = media.video[0], media.video[0] + s.duration
        if not media.keyframe_first:
            problems.append(f"segment {s.msn}: does not start with a keyframe")
        held = media.video[-1] + frame - start
        if media.video[-1] >= end - 1e-3 or held < s.duration - max_gap:
            problems.append(f"segment {s.msn}: EXTINF {s.duration:.3f} but its video runs "
                            f"{start:.3f}..{media.video[-1]:.3f} ({len(media.video)} frames, {held:.3f}s held)")
        if media.audio:
            a_start, a_end = media.audio[0][0], media.audio[-1][0] + media.audio[-1][1]
            if a_start > start + AAC_FRAME + 1e-3 or a_end < end - AAC_FRAME - 1e-3:
                problems.append(f"segment {s.msn}: audio {a_start:.3f}..{a_end:.3f} does not cover "
                                f"{start:.3f}..{end:.3f}")
        else:
            problems.append(f"segment {s.msn}: no audio")
        if previous is not None and previous[0].msn == s.msn - 1 and (continuous or not s.discontinuity):
            before, media_before = previous
            expected = media_before.video[0] + before.duration
            if abs(start - expected) > 1e-3:
                problems.append(f"segment {s.msn} starts at {start:.3f}, segment {before.msn} ended at "
                                f"{expected:.3f} by its EXTINF: a {start - expected:+.3f}s jump")
        previous = (s, media)
    return problems


@dataclass
class PlaylistWatch:
    """Polls a live media playlist; keeps every version and every segment listed (see module doc)."""

    url: str
    interval: float = 0.1
    snapshots: list[str] = field(default_factory=list)
    segments: dict[int, Listed] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="playlist-watch", daemon=True)
        self._client = httpx.Client(timeout=5)

    def __enter__(self) -> PlaylistWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()

    def _run(self) -> None:
        base = self.url.rsplit("/", 1)[0]
        while not self._stop.is_set():
            try:
                response = self._client.get(self.url)
                if response.status_code == 200 and (not self.snapshots or response.text != self.snapshots[-1]):
                    self._take(response.text, base)
            except httpx.HTTPError as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.interval)

    def _take(self, text: str, base: str) -> None:
        listed = listed_segments(text)
        msns = {s.msn for s in listed}
        if self.snapshots:
            for old in listed_segments(self.snapshots[-1]):
                if old.msn not in msns and old.msn < min(msns, default=0) and old.msn in self.segments:
                    self.segments[old.msn].status_after_removal = self._client.get(f"{base}/{old.uri}").status_code
        self.snapshots.append(text)
        for s in listed:
            if s.msn not in self.segments:
                response = self._client.get(f"{base}/{s.uri}")
                s.data = response.content if response.status_code == 200 else None
                if s.data is None:
                    self.errors.append(f"segment {s.msn} ({s.uri}) listed but HTTP {response.status_code}")
                self.segments[s.msn] = s

    def problems(self, fps: float, continuous: bool = True) -> list[str]:
        """Every rule broken by what was served, from every version seen."""
        found = [f"version {n}: {p}" for n, text in enumerate(self.snapshots) for p in playlist_problems(text)]
        found += reload_problems(self.snapshots)
        found += timeline_problems(list(self.segments.values()), fps, continuous=continuous)
        found += [f"segment {s.msn} gone (HTTP {s.status_after_removal}) right after it left the list (6.2.2)"
                  for s in self.segments.values() if s.status_after_removal not in (None, 200)]
        return found + self.errors

    def wait_segments(self, count: int, timeout: float) -> None:
        """Until `count` more segments than now have been listed."""
        target = max(self.segments, default=-1) + count
        deadline = time.monotonic() + timeout
        while max(self.segments, default=-1) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} new segments within {timeout}s")
            time.sleep(0.1)
