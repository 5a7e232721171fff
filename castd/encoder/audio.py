"""The stream's one audio track: stereo AAC-LC at 48 kHz in every segment of every session, silent unless
a camera with `audio = true` is on screen; then that camera's sound, in sync with its picture.

Why a track always, and always the same one: the track has been in every segment since castd began
(receivers have refused HLS video without audio), and a player cannot cope with one that comes and
goes. Shaka makes its SourceBuffers from the master playlist's CODECS (`avc1...,mp4a.40.2`); the media
element's buffered ranges are the intersection of its SourceBuffers' (the MSE rule), so a segment with
no audio is a hole in them, which Shaka's GapJumpingController (4.9.2's, read in
tests/glass/node_modules/shaka49) jumps over, skipping the picture in it, or stalls at when no audio
follows. A new codec or sample rate mid-stream would need a new LOAD (what issue 21 must avoid). So
camera sound enters the track castd already writes: nothing changes for a player, the master playlist
or the cast LOAD (a media LOAD of H.264 + AAC TS, castd/cast/media.py), and video-only sessions cost
what they always did (one 6-byte packet per 21.3 ms, 0.24 kB/s, now with no encoding at all).

Camera audio comes in two ways (AudioFeed, filled by the camera's reader thread):
- AAC-LC at 48 kHz stereo, the track's own format: its packets are passed through (no decode, no
  encode; ADTS headers stripped, the muxer writes the track's own);
- anything else (G.711 at 8 kHz mono, the default of most IP cameras; AAC at 16 kHz; Opus): decoded,
  resampled to 48 kHz stereo by PyAV (libswresample) and encoded by the track's AAC encoder: 2.2% of
  a core of the x86 test machine while it plays (`python -m bench.cameras --only audio`; a Pi's cores
  are slower), nothing while a page or a camera without sound is on.

Silence costs no encoding: it encodes to the same 6-byte AAC packet every time, so that packet is
made once, by an encoder of its own with the track's settings, and muxed again with new timestamps.
The track's encoder runs only on camera sound; it hands out each packet two frames (42.7 ms) after its
input, so when the sound stops its last two frames are lost and silence goes on seamlessly; packets that
would overlap what is already muxed are dropped, a hole is filled with silence: the track is gapless.

Sync: by the camera's own timestamps, not by arrival. Its sound arrives before the picture of the
same moment (the picture is encoded, and decoded with frame threads: measured with tests/rtspserver.py,
sound placed by arrival played 0.42-0.52 s ahead of its picture), so the reader notes, for every
decoded picture, our clock minus the camera's (AudioFeed.saw_picture, a median over OFFSET_FRAMES),
and the track takes the sound of the camera moment whose picture is being encoded: the frame, not the
session clock, places it (media time runs up to 0.4 s ahead of the wall clock after a burst of frames).
Sound more than SLACK off is dropped or waited for (a click), which re-syncs it after a burst, a drift
of the camera's clock, or the jump at FFmpeg's first RTCP report. Silence is muxed AUDIO_AHEAD (0.2 s)
ahead of the video so the muxer's interleaving never waits; camera sound runs CAMERA_AHEAD (-0.1 s)
behind it instead (its next moment may not be here yet), so segments are listed ~0.1 s later while
a camera's sound plays (HOLD-BACK is 3 s). Measured by tests/test_cameras.py (a tone whose pitch steps
with the camera's time strip): the sound -81 to +4 ms from its picture (the medians of five runs, AAC
passed through and G.711 transcoded), where the test camera's own timestamps put it -12 and -77 ms apart.
"""

from __future__ import annotations

import collections
import statistics
from fractions import Fraction

import av

AUDIO_RATE = 48000
AUDIO_FRAME = 1024  # samples per AAC frame
AUDIO_BIT_RATE = 64000
AUDIO_AHEAD = 0.2  # seconds of silence muxed ahead of the video, so interleaving never waits on audio
CAMERA_AHEAD = -0.1  # seconds the track runs ahead of the video while a camera's sound plays (behind it)
UNIT = AUDIO_FRAME / AUDIO_RATE  # seconds per AAC frame: 21.3 ms
SLACK = 0.08  # seconds sound may be off its picture before it is re-synced (a drop or a wait: a click)
OFFSET_FRAMES = 15  # pictures whose decoding times place the sound (1 s at 15 fps)
BACKLOG = 2.0  # seconds of sound a feed keeps at most (it is taken ~0.1-0.5 s after it arrives)


def silent_packet() -> bytes:
    """The AAC packet silence encodes to with the track's settings (6 bytes), from an encoder of its own."""
    codec = av.CodecContext.create("aac", "w")
    codec.sample_rate, codec.layout, codec.format = AUDIO_RATE, "stereo", "fltp"
    codec.bit_rate = AUDIO_BIT_RATE
    codec.time_base = Fraction(1, AUDIO_RATE)
    frame = silent_frame()
    last = b""
    for n in range(8):
        frame.pts = n * AUDIO_FRAME
        for packet in codec.encode(frame):
            payload = bytes(packet)
            if payload == last:
                return payload
            last = payload
    raise RuntimeError("the AAC encoder never settled on one silent packet")


def silent_frame() -> av.AudioFrame:
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=AUDIO_FRAME)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = AUDIO_RATE
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame


def passes_through(codec: av.CodecContext) -> bool:
    """A camera's audio that goes into the track as it is: AAC-LC, 48 kHz, stereo."""
    return (codec.name == "aac" and codec.profile in ("LC", None) and codec.sample_rate == AUDIO_RATE  # type: ignore[attr-defined]
            and codec.channels == 2)  # type: ignore[attr-defined]


def strip_adts(data: bytes) -> bytes:
    """A raw AAC frame from an ADTS one (HLS cameras' TS segments carry ADTS; RTSP's are raw already)."""
    if len(data) > 7 and data[0] == 0xFF and data[1] & 0xF0 == 0xF0:
        return data[7 if data[1] & 1 else 9:]
    return data


class AudioFeed:
    """One camera's sound on its way into the track, in AAC frames (1024 samples at 48 kHz) with their camera
    time: raw AAC packets (passed through) or fltp stereo frames (to encode). The reader thread puts them, and
    notes for every decoded picture how far the camera's clock is from ours (`saw_picture`); the frame loop
    takes the frame of sound that belongs beside the picture on screen. deque's append and popleft are atomic.
    Invariant: the sound taken is in camera-time order, and within SLACK of the picture (else dropped or
    waited for, which re-syncs it after a burst, a clock drift, or the jump of FFmpeg's first RTCP report)."""

    def __init__(self) -> None:
        self.units: collections.deque[tuple[float, bytes | av.AudioFrame]] = collections.deque()
        self._offsets: collections.deque[float] = collections.deque(maxlen=OFFSET_FRAMES)
        self.offset: float | None = None  # our monotonic clock minus the camera's, when its pictures are decoded
        self._playing = False
        self.codec: str | None = None  # the camera's audio codec, "aac (passed through)" or "pcm_alaw -> aac"
        self.dropped = 0  # frames dropped while playing, for being late (each run of them is a click)
        self.waits = 0  # times the track waited for sound (played silence): before the first, a gap, early sound

    def put(self, camera_time: float, unit: bytes | av.AudioFrame) -> None:
        self.units.append((camera_time, unit))
        if len(self.units) > BACKLOG / UNIT:  # nobody takes (not on screen, or no picture yet): bounded anyway
            self.units.popleft()

    def saw_picture(self, camera_time: float, at: float) -> None:
        """A picture of camera time `camera_time` was decoded at `at` (monotonic): the sound of that camera
        time belongs at `at` too. The median of the last OFFSET_FRAMES (decoding times jitter by a frame)."""
        self._offsets.append(at - camera_time)
        self.offset = statistics.median(self._offsets)

    def restart(self) -> None:
        """A new connection: what is left of the old one is gone (its timestamps have nothing to do with ours)."""
        self.units.clear()
        self._offsets.clear()
        self.offset, self._playing = None, False

    def take(self, at: float) -> bytes | av.AudioFrame | None:
        """The frame of sound that belongs at monotonic time `at` (beside the picture decoded then), or None:
        silence (no picture yet, or the sound is not here yet)."""
        offset, units = self.offset, self.units
        if offset is None:
            return None
        want = at - offset
        slack = SLACK if self._playing else UNIT / 2  # a start lands on the right frame; then only re-sync beyond
        while units and units[0][0] < want - slack:
            units.popleft()
            self.dropped += self._playing  # (at a start, what came before the picture is not a re-sync)
        if not units or units[0][0] > want + slack:
            self.waits += self._playing
            self._playing = False
            return None
        self._playing = True
        return units.popleft()[1]


class AacTrack:
    """The AAC track of one HlsOutput. Invariant: muxed packets are gapless and never overlap (`_next_pts`
    is the end of what is muxed), on the session's timeline from `start`."""

    def __init__(self, container: av.container.OutputContainer, start: float = 0.0) -> None:
        self.container = container
        self.stream = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self.stream.bit_rate = AUDIO_BIT_RATE
        self.time_base = Fraction(1, AUDIO_RATE)
        self._silence = silent_packet()
        self._samples = round(start * AUDIO_RATE)  # the next slot's position (session samples)
        self._next_pts = self._samples  # the end of what is muxed
        self.feed: AudioFeed | None = None  # the camera whose sound plays now (set by the frame loop)
        self.encoded = 0  # packets the track's encoder produced (camera sound only)
        self.passed = 0  # camera packets passed through
        self.played = 0  # AAC frames of camera sound muxed (the rest is silence)

    @property
    def ahead(self) -> float:
        return CAMERA_AHEAD if self.feed is not None else AUDIO_AHEAD

    def write_until(self, video: float, shown: float | None = None) -> None:
        """Mux audio up to `video` (session media time of the frame just encoded) + `ahead`. `shown`: the
        monotonic time at which that frame's camera picture was decoded (about): a camera's sound of that
        moment goes beside it (media time runs a little ahead of the wall clock after a burst of frames, so
        the frame, not the clock, places the sound)."""
        end = (video + self.ahead) * AUDIO_RATE
        feed = self.feed if shown is not None else None
        while self._samples < end:
            unit = feed.take(shown + self._samples / AUDIO_RATE - video) if feed is not None else None  # type: ignore[operator]
            if unit is None:
                self._place(self._silence, self._samples)
            elif isinstance(unit, bytes):
                self.played += self._place(unit, self._samples)
                self.passed += 1
            else:
                unit.pts = self._samples
                unit.time_base = self.time_base
                for packet in self.stream.encode(unit):
                    assert packet.pts is not None  # an encoded audio packet always has one
                    self.encoded += 1
                    self.played += self._place(bytes(packet), packet.pts)
            self._samples += AUDIO_FRAME

    def skip_to(self, seconds: float) -> None:
        """Go on at `seconds` (a timeline jump after an outage): no audio for the time between."""
        samples = round(seconds * AUDIO_RATE)
        if samples > self._samples:
            self._samples = self._next_pts = samples

    def _place(self, payload: bytes, pts: int) -> bool:
        """Mux `payload` at `pts` unless it would overlap what is muxed; returns whether it was."""
        if pts < self._next_pts:
            return False  # the encoder's late output over silence already muxed (its priming, a run's last frames)
        while self._next_pts < pts:  # a hole (the encoder's two-frame delay at a run's start): silence
            self._mux(self._silence, self._next_pts)
        self._mux(payload, pts)
        return True

    def _mux(self, payload: bytes, pts: int) -> None:
        packet = av.Packet(payload)
        packet.pts = packet.dts = pts
        packet.duration = AUDIO_FRAME
        packet.time_base = self.time_base
        packet.stream = self.stream
        packet.is_keyframe = True
        self._next_pts = pts + AUDIO_FRAME
        self.container.mux(packet)
