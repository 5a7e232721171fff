"""Pictures in yuv420p, put together with plain memory copies: a camera letterboxed full screen, cameras
in the corners over the page, and the small "CAMERA OFFLINE" mark on a picture that is not current.

No numpy and no filter graph: a 720p frame is three planes of rows, and pasting a 640x360 camera into
it is 360 + 180 + 180 row copies (ctypes.memmove, ~0.2 ms in all, measured in bench/cameras.py), cheaper
than building an FFmpeg overlay graph again each time the set of overlays changes. Offsets and sizes are
even, so the half-size chroma planes line up.
"""

from __future__ import annotations

import ctypes

import av

from castd.protocol import Overlay

BLACK = (16, 128, 128)  # Y, U, V (limited range)
CARD = (40, 128, 128)  # dark grey: a camera with no picture yet, offline
MARGIN = 0.025  # an overlay's distance from the picture's edges, as a fraction of the width

# a 5x7 font for the one text castd draws itself
_GLYPHS = {
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "O": ("01110", "10001", "10001", "10001", "10001", "10001", "01110"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "N": ("10001", "11001", "10101", "10011", "10001", "10001", "10001"),
    " ": ("00000",) * 7,
}
MARK_TEXT = "CAMERA OFFLINE"


def even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def blank(width: int, height: int, colour: tuple[int, int, int] = BLACK) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, colour):
        ctypes.memset(plane.buffer_ptr, value, plane.buffer_size)
    return frame


def copy(frame: av.VideoFrame) -> av.VideoFrame:
    """A frame of our own with the same picture (one memmove per plane)."""
    out = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for dst, src in zip(out.planes, frame.planes):
        if dst.line_size == src.line_size:
            ctypes.memmove(dst.buffer_ptr, src.buffer_ptr, min(dst.buffer_size, src.buffer_size))
        else:
            _rows(dst, 0, 0, src, src.width, src.height)
    return out


def paste(dst: av.VideoFrame, src: av.VideoFrame, x: int, y: int) -> None:
    """Copy `src` (yuv420p) into `dst` (yuv420p) with its top-left corner at x, y (even), clipped."""
    width, height = min(src.width, dst.width - x), min(src.height, dst.height - y)
    if width <= 0 or height <= 0:
        return
    for index, (d, s) in enumerate(zip(dst.planes, src.planes)):
        shift = 0 if index == 0 else 1
        _rows(d, x >> shift, y >> shift, s, width >> shift, height >> shift)


def _rows(dst, x: int, y: int, src, width: int, height: int) -> None:
    d_line, s_line = dst.line_size, src.line_size
    d_ptr, s_ptr = dst.buffer_ptr + y * d_line + x, src.buffer_ptr
    move = ctypes.memmove
    for row in range(height):
        move(d_ptr + row * d_line, s_ptr + row * s_line, width)


def fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest even size with the aspect of width x height inside box_w x box_h."""
    scale = min(box_w / width, box_h / height)
    return min(box_w, even(width * scale)), min(box_h, even(height * scale))


_marks: dict[int, av.VideoFrame] = {}


def offline_mark(width: int) -> av.VideoFrame:
    """White "CAMERA OFFLINE" on black for a camera picture `width` pixels wide: 5x7 glyphs at 2x (a
    14 px text, 176 px wide) up to 800 px, larger beyond (3x for a full 1280x720 camera)."""
    scale = max(2, width // 400)
    if scale in _marks:
        return _marks[scale]
    pad = 2 * scale
    width = even(len(MARK_TEXT) * 6 * scale + 2 * pad)
    height = even(7 * scale + 2 * pad)
    mark = blank(width, height)
    luma = mark.planes[0]
    for n, char in enumerate(MARK_TEXT):
        for gy, bits in enumerate(_GLYPHS[char]):
            for gx, bit in enumerate(bits):
                if bit == "1":
                    for dy in range(scale):
                        at = (pad + gy * scale + dy) * luma.line_size + pad + (n * 6 + gx) * scale
                        ctypes.memset(luma.buffer_ptr + at, 235, scale)
    _marks[scale] = mark
    return mark


def mark_offline(frame: av.VideoFrame, x: int, y: int, width: int) -> None:
    """The mark in the top-left corner of the picture area at x, y that is `width` wide."""
    mark = offline_mark(width)
    inset = even(width * 0.02)
    paste(frame, mark, x + inset, y + inset)


def overlay_box(overlay: Overlay, size: float, width: int, height: int, cam_w: int, cam_h: int
                ) -> tuple[int, int, int, int]:
    """Where a camera overlay goes: (x, y, w, h), its aspect kept, inside a corner box of `size` x
    the picture (0.5: a quarter of it), MARGIN from the edges."""
    box_w, box_h = even(width * size), even(height * size)
    w, h = fit(cam_w, cam_h, box_w, box_h)
    margin = even(width * MARGIN)
    x = margin if overlay.position.endswith("left") else width - margin - w
    y = margin if overlay.position.startswith("top") else height - margin - h
    return even(x), even(y), w, h
