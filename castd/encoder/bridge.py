"""Across an encoder restart: the TV keeps the last picture it was shown, and its player keeps playing.

A new encoder child needs Xvfb, Chromium and the page before it captures its first frame: measured
with probe runs of bench.glass's kill section, the player ran dry 3.4 s after a SIGKILL (HOLD-BACK
3 s of buffer) and showed new frames 5.8 to 7.9 s after it (load ~10), while Shaka sat in
BUFFERING; castd's own freeze watch re-LOADs a TV stuck for `cast_stall_seconds` (5 s), so a slow
restart turned into a blank TV and a new LOAD. The stream need not wait for the page: the child
opens its HLS output first (PyAV is imported by then: ~0.5 s after the spawn on a quiet machine)
and encodes the last picture the session listed, decoded from its last segment, on the session's
timeline, so media time keeps pace with the wall clock (hls.py fills the outage up to it, then one
frame per 1/fps) while Xvfb, Chromium and the page come up. The player sees the picture it had, still, and
never runs dry; the new page replaces it at the page's first frame (encoder/child.py).

No bridge when there is no picture to hold (the session listed nothing yet, the segment does not
decode): then the stream waits for the page as before.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av

from castd.encoder.hls import HlsOutput, MediaPlaylist
from castd.logs import log
from castd.presets import Preset
from castd.protocol import Timeline


def last_picture(folder: Path, size: int) -> av.VideoFrame | None:
    """The last video frame of the last segment the session's playlist lists, or None."""
    segments = MediaPlaylist.load(folder, size).state.segments
    if not segments:
        return None
    path = folder / segments[-1].name
    frame = None
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                pass
    except (av.FFmpegError, OSError) as exc:
        log.warning("no picture to hold across the restart", segment=path.name, error=str(exc))
        return None
    return frame


class Bridge:
    """Encodes one still picture into the session's output at the frame rate until `end()`; then the
    capture loop takes the output over (HlsOutput is used by one thread at a time: this one, then that)."""

    def __init__(self, output: HlsOutput, picture: av.VideoFrame, fps: int) -> None:
        self.output = output
        self.picture = picture
        self._interval = 1.0 / fps
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.frames = 0
        self._thread = threading.Thread(target=self._run, name="bridge", daemon=True)
        self._thread.start()

    @classmethod
    def begin(cls, folder: Path, preset: Preset, timeline: Timeline) -> Bridge | None:
        """A bridge for a child that continues a session after a break, if there is a picture to hold."""
        picture = last_picture(folder, preset.window_segments)
        if picture is None:
            return None
        output = HlsOutput(folder, preset, timeline=timeline)  # a continuation: no first hold (hls._start_clock)
        log.info("holding the last picture until the page is back", segments=output.segments())
        return cls(output, picture, preset.fps)

    def _run(self) -> None:
        tick = time.monotonic()
        try:
            while not self._stop.is_set():
                self.output.write_video(self.picture, time.monotonic())
                self.frames += 1
                tick += self._interval
                self._stop.wait(max(0.0, tick - time.monotonic()))
        except BaseException as exc:  # handed to the thread that takes the output over
            self._error = exc

    def end(self) -> av.VideoFrame:
        """Stop encoding here; returns the held picture (the capture loop repeats it until the page is
        on screen). Raises what the bridge thread hit, if anything."""
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.picture
