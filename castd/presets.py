"""Quality presets: picture size, frame rate, bitrate cap and x264 tuning.

Dashboards change slowly, so frame rates are low and x264 is tuned for still images;
the bitrate cap (VBV) keeps a busy page from flooding a Wi-Fi link.
"""

from __future__ import annotations

import msgspec


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
    playlist_size: int = 6

    @property
    def gop(self) -> int:
        """Frames between keyframes: one per segment, so every segment starts clean."""
        return max(1, round(self.fps * self.segment_seconds))


PRESETS: dict[str, Preset] = {
    "1080p": Preset("1080p", 1920, 1080, 10, 6000, crf=24),
    "720p": Preset("720p", 1280, 720, 10, 3500),
    "low-latency": Preset("low-latency", 1280, 720, 15, 4000, x264_preset="superfast",
                          x264_tune="zerolatency", playlist_size=4),
}

DEFAULT_PRESET = "720p"


def get_preset(name: str) -> Preset:
    """Return the preset called `name`; KeyError names the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown quality {name!r}; valid: {', '.join(PRESETS)}") from None
