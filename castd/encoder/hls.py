"""The HLS output: x264 + AAC (silence, or a camera's sound: audio.py) cut into MPEG-TS segments by
FFmpeg's segment muxer; both playlists written here.

Why not FFmpeg's hls muxer (measured with PyAV 18.1 / FFmpeg 8, the wheel castd runs):
- its master playlist writes a garbage AVERAGE-BANDWIDTH about half the time, which older Shaka
  Player rejects, so index.m3u8 is written here from the real stream parameters: CODECS from the
  SPS the encoder actually produced plus the AAC track that is really there;
- with `append_list` (needed to go on after an encoder restart) it sets its discontinuity flag
  whether or not a playlist existed, so every fresh playlist opened with #EXT-X-DISCONTINUITY;
  it never writes #EXT-X-DISCONTINUITY-SEQUENCE, so a player joining once the tag has left the
  window numbers the segments after a restart wrongly (RFC 8216 section 4.3.3.3);
- it takes a segment's EXTINF from the timestamps of the keyframes around it, and a TS frame has
  no duration of its own: the old held first picture (one frame, pts 0.021 s) was listed as
  0.700 s, and players saw a 0.7 s hole after it.
So the segment muxer only cuts files (at every keyframe, timestamps untouched), and MediaPlaylist
lists each one once it is complete, with the media time it really covers, in one session timeline
(protocol.Timeline): the first frame of a child is at Timeline.start (the end of what the
playlist already lists), and #EXT-X-DISCONTINUITY marks only a new encoder after a crash. The
playlist's state is kept beside it (playlist.json; the stream route never serves it), so a new
child continues the numbering, the window and the discontinuity sequence exactly.

Segments are cut by media time: a keyframe is forced once a segment spans `gop` frames of
timestamps (the stream format's segment length: 1 s or 0.5 s), not only every `gop` frames, so a
capture hiccup (frames skipped, timestamps jump) cannot make a segment longer than EXT-X-TARGETDURATION
allows (an EXTINF rounded to the nearest second must not exceed it, and the target must never change).
A held first picture cut by the stream format's own lengths (hls-fast-big: 1.4 s, then 0.5 s ones) is the
one exception to that rule, and 1.4 s still rounds to 1.
"""

from __future__ import annotations

import math
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import msgspec
from av.video.frame import PictureType

from castd.encoder.convert import Yuv420Converter
from castd.encoder.audio import AUDIO_BIT_RATE, AacTrack
from castd.paths import MASTER_PLAYLIST, MEDIA_PLAYLIST
from castd.presets import TARGET_DURATION, Preset, segment_starts
from castd.protocol import Timeline

STATE_FILE = "playlist.json"
SEGMENT_PATTERN = "seg%05d.ts"
KEEP_REMOVED = 3.0  # seconds of segments kept on disk after they leave the list (a player may still fetch them)
# Where a player starts and stays, and how long the first picture is held, come from the stream format
# (presets.StreamFormat, config `stream_format`): "hls-1s" declares EXT-X-SERVER-CONTROL HOLD-BACK 3.0,
# RFC 8216bis's minimum of three target durations (Shaka keeps its playhead HOLD-BACK behind a live edge
# that moves with the wall clock, and sees a new segment up to one refresh after it is listed: with 1 s
# segments it needs more than ~2.3 s; without the tag it took the last three EXTINFs at load, 0.7 s, and
# stalled 4 to 13 times a minute). "hls-fast" and "hls-fast-big" (0.5 s segments) set the delay with a
# negative EXT-X-START instead (presets.py has what each Shaka line does with each tag, read in its source).
# The new page's first picture fills StreamFormat.first_hold seconds at the start of a session (whole
# segments, of the lengths StreamFormat.held_segments gives, listed a frame after the page is on screen): a
# player LOADed then starts its delay behind the edge at once, showing the page, with that much buffered,
# instead of starting at the edge and stalling. Measured trade-offs: bench/README.md ("At the glass",
# "Stream formats").
MAX_FILL = 60.0  # seconds of an outage filled at most (a restart takes 2-3 s on a quiet machine, 17 s at load 30)
CATCH_UP = 1  # seconds of missed time filled per frame captured


def server_control(preset: Preset) -> list[str]:
    """The playlist's tags that place a player (HOLD-BACK, PART-HOLD-BACK, EXT-X-START), say it may hold a
    reload (CAN-BLOCK-RELOAD) and declare partial segments (EXT-X-PART-INF), per the stream format."""
    shape = preset.stream
    tags = []
    control = (["CAN-BLOCK-RELOAD=YES"] if shape.block_reload else []) + (
        [f"HOLD-BACK={shape.hold_back:.3f}"] if shape.hold_back else []) + (
        [f"PART-HOLD-BACK={shape.part_hold_back:.3f}"] if shape.part_hold_back is not None else [])
    if control:
        tags.append("#EXT-X-SERVER-CONTROL:" + ",".join(control))
    if shape.part_hold_back is not None:
        tags.append(f"#EXT-X-PART-INF:PART-TARGET={shape.segment_seconds:.3f}")
    if shape.start_offset is not None:
        tags.append(f"#EXT-X-START:TIME-OFFSET={shape.start_offset:.3f}")
    return tags


def x264_options(preset: Preset) -> dict[str, str]:
    """Dashboard-friendly x264: High profile capped at level 4.1, a keyframe at every segment
    start, no scene-cut keyframes, no B-frames or lookahead (zerolatency), VBV-capped CRF. HlsOutput asks
    for every keyframe; x264's own interval is the longest segment (a held first one may be longer than
    the rest), so it never adds one inside it."""
    gop, keyint = preset.gop, preset.keyint
    return {
        "preset": preset.x264_preset,
        "tune": preset.x264_tune,
        "profile": "high",
        "crf": str(preset.crf),
        "maxrate": f"{preset.maxrate_kbps}k",
        "bufsize": f"{preset.maxrate_kbps * 2}k",
        "g": str(keyint),
        "keyint_min": str(gop),
        "sc_threshold": "0",
        "x264-params": f"keyint={keyint}:min-keyint={gop}:scenecut=0:level=4.1:bframes=0:rc-lookahead=0",
    }


# The segment muxer cuts at the first keyframe after segment_time has passed; set below any
# segment length, it cuts at every keyframe, so the encoder alone decides where segments end.
CUT_AT_EVERY_KEYFRAME = "0.01"


def segment_options(first_number: int) -> dict[str, str]:
    """The segment muxer's settings: TS files cut at keyframes, timestamps left as given."""
    return {
        "segment_format": "mpegts",
        "segment_time": CUT_AT_EVERY_KEYFRAME,
        "segment_start_number": str(first_number),
        "reset_timestamps": "0",
        "segment_format_options": "mpegts_copyts=1",
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


def write_atomic(path: Path, text: str | bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text.encode() if isinstance(text, str) else text)
    os.replace(tmp, path)


class Segment(msgspec.Struct, frozen=True):
    number: int
    duration: float  # seconds of media: from its first frame to the next segment's first frame
    discontinuity: bool = False  # the first segment of a new encoder after a crash

    @property
    def name(self) -> str:
        return SEGMENT_PATTERN % self.number


class PlaylistState(msgspec.Struct):
    """The live media playlist as data: what is listed, and the counters a continuation needs."""

    size: int
    media_sequence: int = 0  # number of the first listed segment
    discontinuity_sequence: int = 0  # DISCONTINUITY tags that have left the window
    next_number: int = 0
    end: float = 0.0  # session media time at the end of the last listed segment
    origin: float | None = None  # wall-clock time (time.time()) of media time 0: media runs with the wall
    segments: list[Segment] = []
    removed: list[int] = []  # numbers that left the list, files not deleted yet
    keep: int = 3  # how many of those to keep (KEEP_REMOVED seconds of segments)


class MediaPlaylist:
    """The live media playlist of one session (pure: no I/O but load/save of its own state).

    Invariants: segments are numbered without gaps; EXT-X-MEDIA-SEQUENCE is the number of the
    first one listed; EXT-X-DISCONTINUITY-SEQUENCE counts the DISCONTINUITY tags that have left
    the window (RFC 8216 4.3.3.3); `end` is the sum of every EXTINF ever listed in the session.
    """

    def __init__(self, state: PlaylistState) -> None:
        self.state = state

    @classmethod
    def load(cls, folder: Path, size: int) -> MediaPlaylist:
        try:
            state = msgspec.json.decode((folder / STATE_FILE).read_bytes(), type=PlaylistState)
        except (FileNotFoundError, msgspec.DecodeError):
            state = PlaylistState(size=size)
        state.size = size
        return cls(state)

    def save(self, folder: Path) -> None:
        write_atomic(folder / STATE_FILE, msgspec.json.encode(self.state))

    def add(self, duration: float, discontinuity: bool = False) -> list[int]:
        """List the next segment; returns the numbers whose files may be deleted now."""
        s = self.state
        s.segments.append(Segment(s.next_number, round(duration, 6), discontinuity))
        s.next_number += 1
        s.end = round(s.end + duration, 6)
        # the window keeps `size` segments, and never less than three target durations (RFC 8216
        # 6.2.2), which short segments cut at page changes could otherwise leave
        while len(s.segments) > s.size and sum(x.duration for x in s.segments[1:]) >= 3 * TARGET_DURATION:
            gone = s.segments.pop(0)
            s.media_sequence = gone.number + 1
            if gone.discontinuity:
                s.discontinuity_sequence += 1
            s.removed.append(gone.number)
        expired, s.removed = s.removed[:-s.keep], s.removed[-s.keep:]
        return expired

    def render(self, control: list[str] | tuple[str, ...] = (), part_target: float | None = None) -> str:
        """The playlist's text. With `part_target`, each segment no longer than it that ends within three
        target durations of the playlist's end is also listed as one partial segment of itself (RFC 8216bis
        4.4.4.9: older partial segments SHOULD go; a part is at most PART-TARGET long)."""
        s = self.state
        parted: set[int] = set()
        if part_target is not None:
            to_end = 0.0
            for segment in reversed(s.segments):
                if to_end >= 3 * TARGET_DURATION:
                    break
                if segment.duration <= part_target + 1e-6:
                    parted.add(segment.number)
                to_end += segment.duration
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{TARGET_DURATION}",
                 f"#EXT-X-MEDIA-SEQUENCE:{s.media_sequence}"]
        if s.discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{s.discontinuity_sequence}")
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
        lines += control
        for segment in s.segments:
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if segment.number in parted:
                lines.append(f'#EXT-X-PART:DURATION={segment.duration:.6f},URI="{segment.name}",INDEPENDENT=YES')
            lines += [f"#EXTINF:{segment.duration:.6f},", segment.name]
        return "\n".join(lines) + "\n"

    @property
    def listed(self) -> int:
        """Segments listed so far in the session (the next one's number)."""
        return self.state.next_number


class HlsOutput:
    """One live HLS rendition: H.264 video + stereo AAC (silence, or a camera's sound), TS segments cut
    at keyframes (the stream format's 1 s or 0.5 s of media apart unless a page change asks for one sooner), a short
    playlist, one timeline.

    The first picture of a new session is encoded as the `held` segments (their lengths, first_hold
    seconds in all: the same frame repeated, so the time is really filled) to list whole segments the moment
    the page is shown."""

    def __init__(self, folder: Path, preset: Preset, held: tuple[float, ...] = (),
                 timeline: Timeline | None = None) -> None:
        timeline = timeline or Timeline()
        self.folder = folder
        self.preset = preset
        self.fps = preset.fps
        self.time_base = Fraction(1, preset.fps)
        self.playlist_path = folder / MEDIA_PLAYLIST
        self.playlist = MediaPlaylist.load(folder, preset.window_segments)
        state = self.playlist.state
        state.keep = max(1, math.ceil(KEEP_REMOVED / preset.segment_seconds))
        # continue where the playlist ends (the supervisor's clock may lag the last listed segment)
        start = max(timeline.start, state.end)
        self._start_pts = round(start * preset.fps)
        # the held first picture's segments (presets.StreamFormat.held_segments), cut here rather than by gop
        self._held = held
        self._hold = sum(held)
        self._held_cuts: set[int] = set()
        self._held_until = 0  # pts before which only the held cuts start segments
        self._control = server_control(preset)
        self._part_target = preset.segment_seconds if preset.stream.part_hold_back is not None else None
        # a playlist that already lists segments was left by a child that died: a real break
        self._discontinuity = bool(state.segments)
        self._drop_unlisted_segments()
        self.container = av.open(str(folder / SEGMENT_PATTERN), mode="w", format="segment",
                                 options=segment_options(state.next_number))
        self.video = self.container.add_stream("libx264", rate=preset.fps, options=x264_options(preset))
        self.video.width, self.video.height = preset.width, preset.height
        self.video.pix_fmt = "yuv420p"
        self.video.time_base = self.time_base
        self.video.codec_context.time_base = self.time_base
        self.sound = AacTrack(self.container, start=start)  # silent unless the loop gives it a camera's feed
        self.audio = self.sound.stream
        self._last_pts = self._start_pts - 1
        self._clock: float | None = None  # the monotonic time of session media time 0
        self._shown: float | None = None  # when the picture being encoded was decoded, about (audio.py)
        self._fresh = True  # this child starts the session's timeline (no origin to keep pace with)
        self._previous: av.VideoFrame | None = None  # the last picture encoded
        self._finished: list[float] = []  # durations of segments cut but maybe not yet closed
        self._segment_pts: int | None = None  # pts of the keyframe that opened the current segment
        self._to_yuv = Yuv420Converter()
        self.codec_string: str | None = None
        self.master_written = False
        self.frames = 0
        self._batch = False  # list segments in the state only; write the playlist once at the end (_publish)
        self._unpublished = False  # listed in the state, not yet in the playlist file

    @property
    def media_end(self) -> float:
        return self.playlist.state.end

    def write_video(self, frame: av.VideoFrame, seconds: float, keyframe: bool = False) -> bool:
        """Encode one frame captured at `seconds` (monotonic clock); `keyframe` starts a new
        segment with it. Frames go on one timeline that keeps pace with the wall clock (see
        _start_clock); time the loop missed is filled with the previous picture. Returns whether
        a segment began (asked for, or by the 1 s rule)."""
        frame = self._to_yuv(frame)
        started = False
        self._shown = seconds - 0.5 / self.fps  # a camera's picture in it: decoded half a frame before, on average
        if self._clock is None or self._previous is None:
            began = time.monotonic()
            pts, clock = self._start_clock(seconds, time.time())
            # A new session's held picture is listed in one write: written segment by segment, a player
            # (or tests/hlsrules.py, on Debian 13) could read a playlist of 0.5-1 s under hls-fast's
            # EXT-X-START -1.5, a point outside what is listed (RFC 8216 4.3.5.2 SHOULD NOT).
            self._batch = self._fresh
            try:
                for held in range(self._last_pts + 1, pts):
                    started |= self._encode(frame, held, False)
            finally:
                self._batch = False
            self._publish()
            if self._fresh:  # the clock starts once the held picture is out, or the next frame
                clock += time.monotonic() - began  # would find that time missing (a short segment)
                self.playlist.state.origin = time.time() - pts / self.fps
            self._clock = clock
        else:
            # a frame captured late (the loop was held up: a busy machine, a long encode, a
            # restart) leaves the previous picture on screen meanwhile, as a player would: it is
            # encoded for that time, so no segment holds less than its EXTINF (seen at load 30: a
            # 1.2 s and a 2.7 s hole). At most CATCH_UP frames per frame captured, so the loop
            # keeps reporting (the supervisor's frame watchdog) while a restart's outage is filled.
            live = round((seconds - self._clock) * self.fps)
            pts = max(self._last_pts + 1, min(live, self._last_pts + 1 + self.preset.gop * CATCH_UP))
            if keyframe:  # a cut for a new page comes first; filling before it could end a segment
                pts = self._last_pts + 1  # just before it (a 0.1 s one, seen); the next frames catch up
            for held in range(self._last_pts + 1, pts):
                started |= self._encode(self._previous, held, False)
        started |= self._encode(frame, pts, keyframe)
        self._previous = frame
        self.frames += 1
        return started

    def _start_clock(self, seconds: float, wall: float) -> tuple[int, float]:
        """Tie the session timeline to the clocks at the child's first frame: returns its pts
        and the monotonic time of media time 0.

        A new session: the first picture is held first_hold seconds (frames before it repeat
        it), so its first segments are listed a frame after the page is on screen (and a player
        LOADed then finds HOLD-BACK seconds of the page to start from). A child after a crash
        (first_hold is not used): media time keeps pace with the wall clock
        (PlaylistState.origin), because a player's live edge does: Shaka moves its seek range
        with the wall clock, and a timeline resumed where the dead child stopped sat as far
        behind it as the restart took, forever (measured: Shaka 4.16 stuck at "cannot find
        segment", jumping 3 s every 3 s). The outage is filled with the first picture at once
        (write_video), up to MAX_FILL; a longer one jumps (after the DISCONTINUITY that starts
        every child after a crash)."""
        state = self.playlist.state
        origin = state.origin
        self._fresh = origin is None
        if origin is None:
            pts = self._start_pts + max(0, round(self._hold * self.fps) - 1)
            if held := self._held:
                cuts = [self._start_pts + cut for cut in segment_starts(held, self.fps)]
                self._held_cuts, self._held_until = set(cuts[1:]), cuts[-1]
            state.origin = wall - pts / self.fps
            return pts, seconds - pts / self.fps
        live = round((wall - origin) * self.fps)
        if live - self._start_pts > round(MAX_FILL * self.fps):
            self._start_pts = live - round(MAX_FILL * self.fps)
            self._last_pts = self._start_pts - 1
            self.sound.skip_to(self._start_pts / self.fps)
        # a continuation fills the outage up to the wall clock and no further: holding first_hold more
        # put media 2.5 s ahead of the wall clock per restart, and after six SIGKILLs Shaka 4.16 re-anchored
        # its timeline 15 s ahead of its playhead and stalled for good (bench.glass kill, 3 of 10)
        pts = max(self._start_pts, live)
        return pts, seconds - (wall - origin)

    def _encode(self, frame: av.VideoFrame, pts: int, keyframe: bool) -> bool:
        if pts in self._held_cuts:
            keyframe = True  # the held picture's next segment
        elif pts < self._held_until:
            pass  # inside a held segment longer than gop: its own cuts alone
        elif self._segment_pts is not None and pts - self._segment_pts >= self.preset.gop:
            keyframe = True  # a segment never spans more than gop frames of media time
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self.time_base
        # x11grab marks every frame I, and x264 makes an IDR of every I: only ask for one on purpose
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        started = False
        for packet in self.video.encode(frame):  # (zerolatency: this frame's packet comes out now)
            if self.codec_string is None:
                extradata = self.video.codec_context.extradata or b""
                self.codec_string = h264_codec_string(extradata) or h264_codec_string(bytes(packet))
            opened, at = self._segment_pts, packet.pts  # (mux rescales the packet to 90 kHz)
            assert at is not None  # libx264 stamps every packet
            if packet.is_keyframe:
                self._segment_pts = at
                started = True
            self.container.mux(packet)  # a keyframe closes the segment before it...
            if packet.is_keyframe and opened is not None:
                self._finished.append((at - opened) / self.fps)
        self.sound.write_until(pts / self.fps, self._shown)
        self._list_closed()
        return started

    def _list_closed(self) -> None:
        """...once the muxer really processed that keyframe: it closes a segment's file and opens
        the next one in one step, so the next file's existence says the segment is complete. (A
        packet can wait in the interleaving queue; listing at mux() time once served a segment
        whose file was still being written: 1880 bytes of audio, "no video stream".)"""
        while self._finished:
            following = self.folder / (SEGMENT_PATTERN % (self.playlist.state.next_number + 1))
            if not following.exists():
                return
            self._list(self._finished.pop(0))

    def _list(self, duration: float) -> None:
        """The segment before the keyframe just muxed is complete: list it."""
        expired = self.playlist.add(duration, discontinuity=self._discontinuity)
        self._discontinuity = False
        self.playlist.save(self.folder)
        self._unpublished = True
        if not self._batch:
            self._publish()
        for number in expired:
            (self.folder / (SEGMENT_PATTERN % number)).unlink(missing_ok=True)

    def _publish(self) -> None:
        """Write the media playlist (and, with its first segment, the master) if something was listed."""
        if not self._unpublished:
            return
        self._unpublished = False
        write_atomic(self.playlist_path, self.playlist.render(self._control, self._part_target))
        if not self.master_written and self.codec_string:
            self._write_master()
            self.master_written = True

    def _drop_unlisted_segments(self) -> None:
        """A child that died left its unfinished segment and perhaps files nobody lists any
        more: remove them (the unfinished one would be overwritten anyway)."""
        keep = {s.name for s in self.playlist.state.segments}
        keep |= {SEGMENT_PATTERN % n for n in self.playlist.state.removed}
        for segment in self.folder.glob("seg*.ts"):
            if segment.name not in keep:
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
        """Segments listed so far in the session; the master playlist appears with the first
        one, so a player that finds index.m3u8 always finds a media playlist with a segment."""
        return self.playlist.listed

    def close(self) -> None:
        """End the encoder (the session ends: its unfinished last segment is never listed)."""
        try:
            for packet in self.video.encode(None):
                self.container.mux(packet)
        except Exception:
            pass
        self.container.close()
