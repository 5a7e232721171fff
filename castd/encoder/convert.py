"""Getting captured pictures into the form x264 wants, with as little work as possible."""

from __future__ import annotations

import ctypes

import av
from av.video.reformatter import VideoReformatter

_libc = ctypes.CDLL(None)
_memcmp = _libc.memcmp
_memcmp.restype = ctypes.c_int
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


def same_picture(a: av.VideoFrame, b: av.VideoFrame) -> bool:
    """True when two frames hold byte-identical pictures (memcmp of each plane, no copies)."""
    if (a.width, a.height, a.format.name) != (b.width, b.height, b.format.name):
        return False
    for pa, pb in zip(a.planes, b.planes):
        if pa.buffer_size != pb.buffer_size or _memcmp(pa.buffer_ptr, pb.buffer_ptr, pa.buffer_size):
            return False
    return True


class Yuv420Converter:
    """x11grab's bgr0 -> the yuv420p x264 wants, skipping pictures that did not change.

    A dashboard changes a few times a second at most, and converting a 720p picture costs ~1.3 ms
    of CPU where comparing it with the last one costs ~0.1 ms, so an unchanged picture re-sends
    the last converted frame. That is safe: x264 copies its input, and the previous raw frame we
    keep for the comparison holds its own reference to x11grab's buffer.
    """

    def __init__(self) -> None:
        self._reformatter = VideoReformatter()
        self._raw: av.VideoFrame | None = None
        self._yuv: av.VideoFrame | None = None
        self.reused = 0

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if frame.format.name == "yuv420p":
            return frame
        if self._raw is not None and same_picture(frame, self._raw):
            self.reused += 1
            return self._yuv  # type: ignore[return-value]
        # one thread: the frame loop runs at 10-15 fps, and a second thread only adds sync cost
        self._yuv = self._reformatter.reformat(frame, format="yuv420p", threads=1)
        self._raw = frame
        return self._yuv
