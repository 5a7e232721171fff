"""Quality presets (picture size, frame rate, bitrate cap and x264 tuning) and stream formats
(segment length and where a player sits behind the live edge).

Dashboards change slowly, so frame rates are low and x264 is tuned for still images;
the bitrate cap (VBV) keeps a busy page from flooding a Wi-Fi link.

Stream formats (config `stream_format`; issue 19, numbers in bench/README.md "Stream formats"). What a
player does with a live HLS playlist was read in Shaka Player's source (tests/glass/node_modules/<line>/
dist/shaka-player.compiled.debug.js, HlsParser.changePresentationTimelineToLive_):
- 4.15 and later (the receiver's coming 4.15.35-caf1, 4.16, 5.x): delay = HOLD-BACK, else the sum of the
  last three EXTINFs listed in the first playlist it loads, then `delay = min(-TIME-OFFSET, delay)` for a
  negative EXT-X-START (so EXT-X-START can only lower it).
- 4.9.2 (the receiver's 4.9.2-caf2): delay = HOLD-BACK, else the largest EXT-X-TARGETDURATION x
  min(liveSegmentsDelay 3, max(1, segments listed at load - 2)); EXT-X-START is not read for live. And it
  holds playback until `rebufferingGoal: 2` s are buffered (4.13+ default 0).
- every line refreshes the playlist every `lastTargetDuration_` (getUpdatePlaylistDelay_): the last listed
  EXTINF (determineLastTargetDuration_), the smallest over the playlists one refresh reads (`update()` sets
  it to Infinity before each refresh: a minimum per refresh, not over the session). 0.5 s segments mean a
  0.5 s refresh although EXT-X-TARGETDURATION is 1 (an integer: RFC 8216 4.3.3.1).
- where a line starts fetching (StreamingEngine.getSegmentReferenceNeeded_): 4.15 and 4.16 play HLS in MSE
  sequence mode (`hls.sequenceMode` = the browser supports it) and fetch the segment holding their start
  point first; 5.x (`hls.sequenceMode` false) and 4.9.2 (no such check) look it up
  `streaming.inaccurateManifestTolerance` (2 s) earlier and fetch every segment from there, each one a
  request and a transmux before the playhead moves (Shaka 5.2 with the six 0.5 s segments of hls-fast's
  held picture: three or four before the one at its start point, 0.05 s each on loopback, ~0.1 s on the
  jittery link). hls-fast-big, the default, holds the first picture in fewer, longer segments for that
  (bench/README.md, "A first segment of 1.4 s" and "hls-fast-big, the default").
- 4.16 and 5.x default to `streaming.lowLatencyMode` true (4.9.2, 4.15: false). A playlist that lists partial
  segments (EXT-X-PART) turns their low-latency configuration on (`createDefaultForLL`:
  inaccurateManifestTolerance 0, so 5.x fetches from its start point too): "hls-fast-parts" below
  (bench/README.md, "What is left of issue 19's targets" and "hls-fast-parts").
"""

from __future__ import annotations

from typing import Literal

import msgspec

StreamFormatName = Literal["hls-1s", "hls-fast", "hls-fast-big", "hls-fast-parts", "hls-fast-nohb"]

# EXT-X-TARGETDURATION, seconds; segments are cut at most 1 s (+ one frame after a hiccup) apart (encoder/
# hls.py). 0.5 s segments keep it at 1: it is a decimal integer (RFC 8216 4.3.3.1), and Shaka refreshes by the
# last EXTINF anyway (above). Here, below the encoder, because the front end's blocking reload times by it too
# (api/blocking.py).
TARGET_DURATION = 1


def segment_starts(lengths: tuple[float, ...], fps: int) -> list[int]:
    """Where segments of these lengths (seconds) start, in frames from the first one's start (0 first)."""
    starts, at = [], 0.0
    for length in lengths:
        starts.append(round(at * fps))
        at += length
    return starts


class StreamFormat(msgspec.Struct, frozen=True):
    """The shape of the stream a player is given: how long a segment is, and what sets its delay.

    `first_hold` is how long the session's first picture is held (whole segments, listed at once), so
    that what is listed at the LOAD moment starts every line with that much buffered. `first_segments`
    cuts it into segments of those lengths (they add up to first_hold); empty, into segment_seconds ones."""

    name: str
    segment_seconds: float
    hold_back: float | None  # EXT-X-SERVER-CONTROL HOLD-BACK (RFC 8216bis: a MUST of >= 3 target durations)
    start_offset: float | None  # a negative EXT-X-START TIME-OFFSET, or None
    first_hold: float
    first_segments: tuple[float, ...] = ()
    # Partial segments (RFC 8216bis Low-Latency HLS, "hls-fast-parts"): EXT-X-PART-INF PART-TARGET =
    # segment_seconds, each recent segment no longer than that listed also as one partial segment of itself,
    # EXT-X-SERVER-CONTROL PART-HOLD-BACK = this and CAN-BLOCK-RELOAD=YES (a playlist request with
    # `_HLS_msn`/`_HLS_part` is held until it is listed: api/blocking.py). None: no partial segments.
    part_hold_back: float | None = None

    def __post_init__(self) -> None:
        if self.first_segments and abs(sum(self.first_segments) - self.first_hold) > 1e-6:
            raise ValueError(f"{self.name}: first_segments {self.first_segments} do not add up to {self.first_hold}")
        if self.part_hold_back is not None and self.part_hold_back < 2 * self.segment_seconds:
            raise ValueError(f"{self.name}: PART-HOLD-BACK must be at least twice PART-TARGET (RFC 8216bis 4.4.3.8)")

    @property
    def block_reload(self) -> bool:
        """Whether a playlist request may be held until what it asks for is listed (CAN-BLOCK-RELOAD=YES)."""
        return self.part_hold_back is not None

    @property
    def held_segments(self) -> tuple[float, ...]:
        """The lengths, in seconds, of the segments the held first picture is listed as."""
        return self.first_segments or (self.segment_seconds,) * round(self.first_hold / self.segment_seconds)


STREAM_FORMATS: dict[str, StreamFormat] = {
    # 1 s segments 3 s behind the edge in every line (HOLD-BACK 3.0, RFC 8216bis's minimum for a 1 s
    # target): 0 visible stalls in every line (bench/README.md), 3.8-3.9 s from a webhook to the glass.
    "hls-1s": StreamFormat("hls-1s", 1.0, hold_back=3.0, start_offset=None, first_hold=3.0),
    # 0.5 s segments (a keyframe every 0.5 s), HOLD-BACK 3.0 and EXT-X-START -1.5: 4.15+ sit
    # min(1.5, 3.0) = 1.5 s behind their edge (a switch at the glass in 2.0-2.3 s where hls-1s takes 3.9;
    # 4.15 1.98-2.00 once the playlist route keeps the edge fresh: api/freshedge.py, bench/README.md run E);
    # 4.9.2 does not read EXT-X-START and keeps HOLD-BACK's 3 s (a switch as with hls-1s: 3.78 against 3.80
    # s; 3.74 in a later run), with 3 s buffered at once from the 3 s first hold (over its 2 s rebuffering
    # goal: no still start on loopback; on the jittery link it fetches four segments for its 2 s and showed a
    # 0.45 s still start in 2 of 2 loads, hls-1s 0.35 s in 1 of 2: bench/README.md, run B).
    # RFC 8216 4.3.5.2 says TIME-OFFSET SHOULD NOT be within three target durations of the end of a live
    # playlist (8216bis says the same of HOLD-BACK's start point); castd bends that SHOULD on purpose: those
    # 3 s are what a viewer waits on every page switch, and the 0.5 s refresh (above) leaves 1.5 s of buffer
    # ~0.3-0.8 s to spare. -1.0 (a 1.9-2.1 s switch) left still pictures of 0.33-0.59 s at the start on
    # 5.2 in 2 of 4 loads; -1.5 played 40 minutes on the jittery link with none (bench/README.md).
    "hls-fast": StreamFormat("hls-fast", 0.5, hold_back=3.0, start_offset=-1.5, first_hold=3.0),
    # The default: hls-fast with the held first picture as one 1.4 s segment and three of 0.5 s (2.9 s): a player
    # LOADed as it is listed starts (4.15+: the edge - 1.5) at 1.4 or 1.9 s, a segment start, with one or
    # two segments before it, where hls-fast has three or four of 0.5 s. 5.2 and 4.9.2 fetch every segment
    # from 2 s before their start point (above), each a request before the playhead moves, and never catch
    # up what those requests cost. 1.4, not 1.5: an EXTINF rounds to at most EXT-X-TARGETDURATION 1 (RFC
    # 8216 4.3.3.1). 1.4 + 1.1 s put 4.15's start point inside the 1.1 s segment, and it started at that
    # segment's start, 0.6 s early. Side by side with hls-fast in one run (bench/README.md run T), a switch
    # at the glass: 4.9.2 3.47 / 3.78 s (loopback / jittery link; hls-fast 3.72 / 3.85), 4.15 1.88 / 1.94
    # (1.89 / 2.01), 4.16 1.84 / 1.93 (2.05 / 2.04), 5.2 2.01 / 2.10 (2.12 / 2.37); 160 player-minutes
    # on the jittery link, the busy machine's included, without a buffering spell (runs U, V).
    "hls-fast-big": StreamFormat("hls-fast-big", 0.5, hold_back=3.0, start_offset=-1.5, first_hold=2.9,
                                 first_segments=(1.4, 0.5, 0.5, 0.5)),
    # hls-fast-big whose 0.5 s segments are each also listed as one partial segment of itself (listed when
    # the segment is, so nothing arrives sooner), with PART-HOLD-BACK 1.5 (3 x PART-TARGET, RFC 8216bis's
    # SHOULD) and blocking reload. Why: Shaka 4.16 and 5.x (lowLatencyMode on by default) then take their
    # low-latency configuration, in which 5.x fetches from its start point instead of 2 s before it
    # (bench/README.md, "What is left of issue 19's targets"). 4.9.2 and 4.15 (lowLatencyMode off) ignore
    # the parts and keep HOLD-BACK / EXT-X-START as in hls-fast-big. Not the default: beside hls-fast-big in
    # one run (bench/README.md run Y), a switch at the glass on 5.2 over the jittery link 1.96 s against 2.28
    # (4.16 1.99 / 2.05, level elsewhere), but on 4.9.2, the receiver's engine today, 3.82 against 3.62 (a
    # second run of 4.9.2 alone: 3.70 against 3.68). One soak so far (run Z, the jittery link).
    "hls-fast-parts": StreamFormat("hls-fast-parts", 0.5, hold_back=3.0, start_offset=-1.5, first_hold=2.9,
                                   first_segments=(1.4, 0.5, 0.5, 0.5), part_hold_back=1.5),
    # The same without HOLD-BACK (issue 19's shape b as first tried): 4.15+ as above (the last three EXTINFs,
    # 1.5 s, cap the delay); 4.9.2 takes 1 x min(3, max(1, n - 2)) from the n segments it finds at load:
    # 2 s when it loads while the four held ones are the newest, 3 s from the fifth on, so it sits 2-3 s
    # behind and starts with a still picture when it must wait for its 2 s rebuffering goal.
    "hls-fast-nohb": StreamFormat("hls-fast-nohb", 0.5, hold_back=None, start_offset=-1.5, first_hold=2.0),
}
DEFAULT_STREAM_FORMAT: StreamFormatName = "hls-fast-big"


class Preset(msgspec.Struct, frozen=True):
    name: str
    width: int
    height: int
    fps: int
    maxrate_kbps: int
    x264_preset: str = "veryfast"
    x264_tune: str = "stillimage,zerolatency"
    crf: int = 23
    segment_seconds: float = 1.0
    playlist_size: int = 6  # seconds of media listed, whatever the segment length (see window_segments)
    stream_format: str = DEFAULT_STREAM_FORMAT  # STREAM_FORMATS key; sets segment_seconds (get_preset)

    @property
    def gop(self) -> int:
        """Frames between keyframes: one per segment, so every segment starts clean."""
        return max(1, round(self.fps * self.segment_seconds))

    @property
    def keyint(self) -> int:
        """The longest run of frames without a keyframe: a segment, or the longest held first one."""
        return max([self.gop, *(round(self.fps * length) for length in self.stream.held_segments)])

    @property
    def window_segments(self) -> int:
        """Segments the live playlist lists: playlist_size seconds of them, whatever their length. A
        stalled Shaka whose playhead falls out of that window is put back at the window's start plus its
        safeSeekOffset (5 s), capped at the seek range end (PresentationTimeline.getSafeSeekRangeStart):
        a 3 s window (six 0.5 s segments) left no room between the two, and in one bench.glass run Shaka
        4.15 on hls-fast sat buffering for 56 s under load ~35."""
        return max(self.playlist_size, round(self.playlist_size / self.segment_seconds))

    @property
    def stream(self) -> StreamFormat:
        return STREAM_FORMATS[self.stream_format]


PRESETS: dict[str, Preset] = {
    "1080p": Preset("1080p", 1920, 1080, 10, 6000, crf=24),
    "720p": Preset("720p", 1280, 720, 10, 3500),
    "low-latency": Preset("low-latency", 1280, 720, 15, 4000, x264_preset="superfast",
                          x264_tune="zerolatency", playlist_size=4),
}

DEFAULT_PRESET = "720p"


def get_preset(name: str, stream_format: str = DEFAULT_STREAM_FORMAT) -> Preset:
    """Return the preset called `name` in `stream_format`; KeyError names the valid ones."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown quality {name!r}; valid: {', '.join(PRESETS)}") from None
    try:
        shape = STREAM_FORMATS[stream_format]
    except KeyError:
        raise KeyError(f"unknown stream_format {stream_format!r}; valid: {', '.join(STREAM_FORMATS)}") from None
    return msgspec.structs.replace(preset, stream_format=shape.name, segment_seconds=shape.segment_seconds)
