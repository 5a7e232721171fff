"""When a frame is encoded and when it starts a new segment, so a new page reaches players fast.

With segments cut on a fixed 1 s clock, the first segment showing a new page was finished at the
next whole second: 0.5 s after the page was drawn on average, up to a full second. Instead, the
frame after the first one captured SETTLE seconds after the page thread marked the page shown
(ready and painted, two animation frames after its load) is made a keyframe,
and the HLS muxer cuts a segment at every keyframe (see hls.py), so the segment that ends with
the new page is finished and listed right then. Between page changes the encoder cuts every second
of media by itself and says so (segment_started), so the count here follows the real segments.

Before the session's first page has loaded nothing is encoded at all: the stream starts with the
page, never with a blank screen. (Those frames are still captured and counted, so the supervisor's
frame watchdog sees a live loop during a slow first load.) The first picture is held for
the stream format's first_hold seconds (hls.py encodes it repeatedly, so the time is really filled: a player sees
no hole), cut into whole segments, so they are listed one frame after the page is on screen.

A cut never makes two short segments in a row (short: under MIN_SHARE of the format's segment
length, 0.6 s of 1 s, 0.3 s of 0.5 s); when it would, it waits until the current one is long
enough. (This began when FFmpeg's muxer wrote EXT-X-TARGETDURATION as the longest segment rounded,
0 for short ones; castd writes its own now. It still matters to Shaka: it refreshes the playlist every
last-listed EXTINF (HlsParser.determineLastTargetDuration_, reset before each refresh: presets.py), so a
run of short segments keeps it polling that fast for as long as the run lasts.) The share, not a
fixed 0.6 s: 0.5 s segments are all under 0.6 s, and with it no page cut would ever be allowed.
"""

from __future__ import annotations

import enum
import math

SETTLE = 0.04       # seconds from "shown" (painted: two animation frames) until the X screen surely has it
MIN_SHARE = 0.6     # of a segment's length (gop frames): a segment this long is not "short"


class Action(enum.Enum):
    SKIP = "skip"    # do not encode: the first page is not on screen yet
    WRITE = "write"  # encode as usual
    CUT = "cut"      # encode as a keyframe: the segment before it ends with the new page


class PageCut:
    def __init__(self, fps: int, gop: int, settle: float = SETTLE) -> None:
        self.settle = settle
        self.gop = gop
        self.min_frames = math.ceil(MIN_SHARE * gop - 1e-9)
        self.started = False
        self.skipped = 0       # frames captured before the first page was on screen (not encoded)
        self._shown_nav = -1   # newest navigation whose page is in an encoded frame
        self._cut_nav = -1     # newest navigation whose segment has been cut
        self._in_segment = 0   # frames encoded in the current segment so far
        self._current_long = False
        self._previous_long = True

    def decide(self, now: float, wanted: int, loaded: int, loaded_at: float) -> Action:
        """What to do with the frame captured at `now` (monotonic). `wanted` names the navigation
        that should be on screen, `loaded` the last one the browser finished (at `loaded_at`,
        once painted); the page thread's navigation tokens serve as the names."""
        page_on_screen = loaded == wanted and now - loaded_at >= self.settle
        if not self.started:
            if not page_on_screen:
                self.skipped += 1
                return Action.SKIP
            self.started = True
            self._shown_nav = wanted
            self._new_segment(long=True)  # the held first picture (whole segments)
            return Action.WRITE
        if self._shown_nav == wanted and self._cut_nav != wanted and (self._long_enough() or self._previous_long):
            self._cut_nav = wanted
            self._new_segment()
            return Action.CUT
        self._in_segment += 1  # (segment_started() restarts the count where the encoder cut by itself)
        if page_on_screen and self._shown_nav != wanted:
            self._shown_nav = wanted
        return Action.WRITE

    def segment_started(self) -> None:
        """The frame just written (a WRITE) began a segment by the encoder's own rule: 1 s of media
        since the last keyframe (hls.py), which after late frames comes sooner than `gop` frames."""
        self._new_segment()

    def _long_enough(self) -> bool:
        return self._current_long or self._in_segment >= self.min_frames

    def _new_segment(self, long: bool = False) -> None:
        """The frame being decided starts a new segment."""
        self._previous_long = self._long_enough() if self.started and self._in_segment else True
        self._in_segment = 1
        self._current_long = long
