"""The HLS output: PyAV's hls muxer for the media playlist and segments, our own master playlist.

FFmpeg's master playlist writes a garbage AVERAGE-BANDWIDTH about half the time, which older
Shaka Player rejects, so index.m3u8 is written here from the real stream parameters: CODECS from
the SPS the encoder actually produced plus the AAC track that is really there.
"""

from __future__ import annotations

import ctypes
import os
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from castd.presets import Preset

MASTER_PLAYLIST = "index.m3u8"
MEDIA_PLAYLIST = "stream.m3u8"
AUDIO_RATE = 48000
AUDIO_FRAME = 1024


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


def hls_options(preset: Preset, folder: Path) -> dict[str, str]:
    """The hls muxer's settings: 1 s TS segments, a short live playlist, files replaced atomically."""
    return {
        "hls_time": str(preset.segment_seconds),
        "hls_list_size": str(preset.playlist_size),
        "hls_flags": "delete_segments+independent_segments+temp_file+omit_endlist",
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


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class HlsOutput:
    """One live HLS rendition: H.264 video + silent stereo AAC, 1 s TS segments, short playlist."""

    def __init__(self, folder: Path, preset: Preset) -> None:
        self.folder = folder
        self.preset = preset
        self.time_base = Fraction(1, preset.fps)
        self.playlist = folder / MEDIA_PLAYLIST
        self.container = av.open(str(self.playlist), mode="w", format="hls", options=hls_options(preset, folder))
        self.video = self.container.add_stream("libx264", rate=preset.fps, options=x264_options(preset))
        self.video.width, self.video.height = preset.width, preset.height
        self.video.pix_fmt = "yuv420p"
        self.video.time_base = self.time_base
        self.video.codec_context.time_base = self.time_base
        self.audio = self.container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self.audio.bit_rate = 64000
        self._silence = av.AudioFrame(format="fltp", layout="stereo", samples=AUDIO_FRAME)
        for plane in self._silence.planes:
            plane.update(bytes(plane.buffer_size))
        self._silence.sample_rate = AUDIO_RATE
        self._audio_samples = 0
        self._last_pts = -1
        self._to_yuv = Yuv420Converter()
        self.codec_string: str | None = None
        self.master_written = False
        self.frames = 0

    def write_video(self, frame: av.VideoFrame, seconds: float) -> None:
        """Encode one captured frame shown at `seconds` since the stream began."""
        pts = max(self._last_pts + 1, round(seconds * self.preset.fps))
        self._last_pts = pts
        frame = self._to_yuv(frame)
        frame.pts = pts
        frame.time_base = self.time_base
        frame.pict_type = PictureType.NONE  # x11grab marks every frame I; x264 would make each an IDR
        for packet in self.video.encode(frame):
            if self.codec_string is None:
                extradata = self.video.codec_context.extradata or b""
                self.codec_string = h264_codec_string(extradata) or h264_codec_string(bytes(packet))
            self.container.mux(packet)
        self.frames += 1
        self._write_audio_until(pts / self.preset.fps + 0.2)

    def _write_audio_until(self, seconds: float) -> None:
        while self._audio_samples < seconds * AUDIO_RATE:
            self._silence.pts = self._audio_samples
            self._silence.time_base = Fraction(1, AUDIO_RATE)
            for packet in self.audio.encode(self._silence):
                self.container.mux(packet)
            self._audio_samples += AUDIO_FRAME

    def _write_master(self) -> None:
        p = self.preset
        bandwidth = p.maxrate_kbps * 1000 + 64000
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
