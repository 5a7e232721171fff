"""The silent stereo AAC track beside the video (receivers have refused HLS video without audio).

Silence encodes to the same 6-byte AAC packet every time once the encoder is past its first
packet, so after two equal packets in a row the packet is muxed again with new timestamps instead
of running the AAC encoder ~5 times per video frame (that was ~0.7 ms of CPU per frame, more than
converting an unchanged picture). The packets are the encoder's own bytes; only pts/dts change.

The track starts where the video does, at the session media time the encoder child continues
from (protocol.Timeline). AAC's first packet is the encoder's priming (pts 1024 samples before
the first input sample); it is dropped, so no timestamp falls before the start: a negative one
would make the muxer shift every stream by 21.3 ms, and a restarted child would then not line up
with the segments before it.
"""

from __future__ import annotations

from fractions import Fraction

import av

AUDIO_RATE = 48000
AUDIO_FRAME = 1024  # samples per AAC frame
AUDIO_BIT_RATE = 64000


class SilentAac:
    def __init__(self, container: av.container.OutputContainer, start: float = 0.0) -> None:
        self.container = container
        self.stream = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self.stream.bit_rate = AUDIO_BIT_RATE
        self.time_base = Fraction(1, AUDIO_RATE)
        self._frame = av.AudioFrame(format="fltp", layout="stereo", samples=AUDIO_FRAME)
        for plane in self._frame.planes:
            plane.update(bytes(plane.buffer_size))
        self._frame.sample_rate = AUDIO_RATE
        self._start = round(start * AUDIO_RATE)
        self._samples = self._start  # session samples handed to the encoder (or replaced by a repeat)
        self._last: bytes | None = None
        self._repeat: bytes | None = None
        self._next_pts = 0          # pts of the next repeated packet
        self.encoded = 0            # packets the encoder really produced

    def write_until(self, seconds: float) -> None:
        """Mux silence up to `seconds` of session media time."""
        while self._samples < seconds * AUDIO_RATE:
            if self._repeat is None:
                self._encode_one()
            else:
                self._mux_repeat()
            self._samples += AUDIO_FRAME

    def skip_to(self, seconds: float) -> None:
        """Go on at `seconds` (a timeline jump after an outage): no silence for the time between."""
        samples = round(seconds * AUDIO_RATE)
        if samples > self._samples:
            self._next_pts += samples - self._samples
            self._samples = self._start = samples

    def _encode_one(self) -> None:
        self._frame.pts = self._samples
        self._frame.time_base = self.time_base
        for packet in self.stream.encode(self._frame):
            assert packet.pts is not None  # an encoded audio packet always has one
            payload = bytes(packet)
            if payload == self._last:
                self._repeat = payload
            self._last = payload
            self._next_pts = packet.pts + AUDIO_FRAME
            self.encoded += 1
            if packet.pts >= self._start:  # the priming packet lies before the start
                self.container.mux(packet)

    def _mux_repeat(self) -> None:
        packet = av.Packet(self._repeat)
        packet.pts = packet.dts = self._next_pts
        packet.duration = AUDIO_FRAME
        packet.time_base = self.time_base
        packet.stream = self.stream
        packet.is_keyframe = True
        self._next_pts += AUDIO_FRAME
        self.container.mux(packet)
