"""The HLS output: PyAV's hls muxer for the media playlist and segments, our own master playlist.

FFmpeg's master playlist writes a garbage AVERAGE-BANDWIDTH about half the time, which older
Shaka Player rejects, so index.m3u8 is written here from the real stream parameters: CODECS from
the SPS the encoder actually produced plus the AAC track that is really there.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

from castd.encoder.convert import Yuv420Converter
from castd.encoder.silence import AUDIO_BIT_RATE, SilentAac
from castd.presets import Preset

MASTER_PLAYLIST = "index.m3u8"
MEDIA_PLAYLIST = "stream.m3u8"


def x264_options(preset: Preset) -> dict[str, str]:
    """Dashboard-friendly x264: High profile capped at level 4.1, a keyframe at every segment
    start, no scene-cut keyframes, no B-frames or lookahead (zerolatency), VBV-capped CRF."""
    gop = preset.gop
    return {
        "preset": preset.x264_preset,
        "tune": preset.x264_tune,
        "profile": "high",
        "crf": str(preset.crf),
        "maxrate": f"{preset.maxrate_kbps}k",
        "bufsize": f"{preset.maxrate_kbps * 2}k",
        "g": str(gop),
        "keyint_min": str(gop),
        "sc_threshold": "0",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:level=4.1:bframes=0:rc-lookahead=0",
    }


# The muxer cuts a segment at the first keyframe after hls_time has passed; set below any segment
# length, it cuts at every keyframe, so the encoder alone decides where segments end: x264's
# keyframe interval makes them 1 s, and a keyframe forced after a page change (pagecut.py)
# finishes the segment showing the new page at once.
CUT_AT_EVERY_KEYFRAME = "0.01"


def hls_options(preset: Preset, folder: Path) -> dict[str, str]:
    """The hls muxer's settings: TS segments cut at keyframes, a short live playlist, files
    replaced atomically."""
    return {
        "hls_time": CUT_AT_EVERY_KEYFRAME,
        "hls_list_size": str(preset.playlist_size),
        "hls_flags": "delete_segments+independent_segments+temp_file+omit_endlist+append_list",
        "hls_delete_threshold": "2",
        "hls_segment_type": "mpegts",
        "hls_segment_filename": str(folder / "seg%05d.ts"),
    }


def h264_codec_string(packet_data: bytes) -> str | None:
    """`avc1.PPCCLL` from the first SPS NAL unit in Annex B data, or None if there is none."""
    data = bytes(packet_data)
    i = data.find(b"\x00\x00\x01")
    while i != -1 and i + 6 < len(data):
        nal = data[i + 3]
        if nal & 0x1F == 7:
            profile, constraints, level = data[i + 4], data[i + 5], data[i + 6]
            return f"avc1.{profile:02x}{constraints:02x}{level:02x}"
        i = data.find(b"\x00\x00\x01", i + 3)
    return None


def count_segments(playlist: Path) -> int:
    """Segments written so far: the media sequence of the first listed segment plus those listed."""
    try:
        text = playlist.read_text()
    except FileNotFoundError:
        return 0
    sequence = 0
    listed = 0
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            listed += 1
    return sequence + listed


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class HlsOutput:
    """One live HLS rendition: H.264 video + silent stereo AAC, TS segments cut at keyframes (1 s
    apart unless a page change asks for one sooner), a short playlist."""

    def __init__(self, folder: Path, preset: Preset, first_hold: float = 0.0) -> None:
        self.folder = folder
        self.preset = preset
        self.first_hold = first_hold
        self.time_base = Fraction(1, preset.fps)
        self.playlist = folder / MEDIA_PLAYLIST
        self._drop_unlisted_segments()
        self.container = av.open(str(self.playlist), mode="w", format="hls", options=hls_options(preset, folder))
        self.video = self.container.add_stream("libx264", rate=preset.fps, options=x264_options(preset))
        self.video.width, self.video.height = preset.width, preset.height
        self.video.pix_fmt = "yuv420p"
        self.video.time_base = self.time_base
        self.video.codec_context.time_base = self.time_base
        self.silence = SilentAac(self.container)
        self.audio = self.silence.stream
        self._last_pts = -1
        self._origin: float | None = None
        self._to_yuv = Yuv420Converter()
        self.codec_string: str | None = None
        self.master_written = False
        self.frames = 0

    def write_video(self, frame: av.VideoFrame, seconds: float, keyframe: bool = False) -> None:
        """Encode one frame captured at `seconds` (any clock: the first frame is time 0 and is
        shown for `first_hold` seconds); `keyframe` starts a new segment with it."""
        if self._origin is None:
            self._origin = seconds - self.first_hold
            pts = 0
        else:
            pts = max(self._last_pts + 1, round((seconds - self._origin) * self.preset.fps))
        self._last_pts = pts
        frame = self._to_yuv(frame)
        frame.pts = pts
        frame.time_base = self.time_base
        # x11grab marks every frame I, and x264 makes an IDR of every I: only ask for one on purpose
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        for packet in self.video.encode(frame):
            if self.codec_string is None:
                extradata = self.video.codec_context.extradata or b""
                self.codec_string = h264_codec_string(extradata) or h264_codec_string(bytes(packet))
            self.container.mux(packet)
        self.frames += 1
        self.silence.write_until(pts / self.preset.fps + 0.2)

    def _drop_unlisted_segments(self) -> None:
        """After a restart the muxer appends to the old playlist (numbering goes on, a
        DISCONTINUITY tag marks the join) but forgets older files: remove those nobody lists."""
        try:
            listed = {line for line in self.playlist.read_text().splitlines() if line.endswith(".ts")}
        except FileNotFoundError:
            return
        for segment in self.folder.glob("seg*.ts"):
            if segment.name not in listed:
                segment.unlink(missing_ok=True)

    def _write_master(self) -> None:
        p = self.preset
        bandwidth = p.maxrate_kbps * 1000 + AUDIO_BIT_RATE
        write_atomic(self.folder / MASTER_PLAYLIST, (
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
            f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={p.width}x{p.height},'
            f'FRAME-RATE={p.fps:.3f},CODECS="{self.codec_string},mp4a.40.2"\n'
            f"{MEDIA_PLAYLIST}\n"
        ))

    def segments(self) -> int:
        """Segments finished so far; the master playlist appears with the first one, so a player
        that finds index.m3u8 always finds a media playlist with a segment behind it."""
        count = count_segments(self.playlist)
        if count and not self.master_written and self.codec_string:
            self._write_master()
            self.master_written = True
        return count

    def close(self) -> None:
        try:
            for packet in self.video.encode(None):
                self.container.mux(packet)
        except Exception:
            pass
        self.container.close()
