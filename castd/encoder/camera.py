"""One camera, read by FFmpeg (PyAV) on a thread of its own; the frame loop takes its newest picture.

The frame loop runs at the session's rate (10-15 fps) and must never wait on a network: a camera
that answers slowly, drops or refuses the login would freeze the TV. So each camera has a reader
thread that connects, decodes every frame (H.264 can only be decoded whole) and keeps the newest
one; the frame loop asks `picture(width, height)` and gets it scaled to the size it needs, at
most once per decoded frame (a 1080p camera at 25 fps scaled to 720p only when the 10 fps loop
takes it: ~60% of the scaling saved, see bench/cameras.py).

RTSP goes over TCP by default (FFmpeg's `rtsp_transport`): UDP loses packets on a busy Wi-Fi and
H.264 then smears until the next keyframe. FFmpeg's own socket timeout (`timeout`, microseconds) and
PyAV's open/read timeouts bound every wait, so `stop()` takes effect within READ_TIMEOUT at worst.

A fault (no answer, a refused login, a dropped stream, garbage) ends the attempt; the next comes
after a backoff (0.5, 1, 2, 4, 8, 15 s, then every 15 s: a blip is bridged in half a second, and a
camera rebooting, ~30-60 s, is back within 15 s of it), and meanwhile the last picture stays
available, marked stale by `state`.

A camera with `audio = true` has its sound read on the same connection (one demuxer, one thread): put
into `audio` (an AudioFeed) as AAC frames the stream's track takes while the camera is on screen
(castd/encoder/audio.py: passed through when it is AAC-LC 48 kHz stereo, else resampled for its encoder).
A camera without sound, or whose sound does not decode, is shown as ever, silent (logged once).
"""

from __future__ import annotations

import threading
import time
from urllib.parse import quote, urlsplit, urlunsplit

import av
from av.video.reformatter import Interpolation, VideoReformatter

from castd.config import Camera
from castd.encoder.audio import AUDIO_FRAME, AUDIO_RATE, AudioFeed, passes_through, strip_adts
from castd.logs import log
from castd.protocol import CameraState, CameraStatus

OPEN_TIMEOUT = 5.0  # seconds to connect and read the stream's first headers (a LAN camera answers in ms)
READ_TIMEOUT = 5.0  # seconds without a packet: the camera is gone
LOG_EVERY = 20  # failed attempts with the same error between two log lines (20 x 15 s: 5 minutes)
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # seconds before attempt n+1 after n failures in a row (then the last)


def backoff(failures: int) -> float:
    return BACKOFF[min(failures, len(BACKOFF)) - 1] if failures > 0 else 0.0


def source_url(camera: Camera) -> str:
    """The URL FFmpeg opens: the configured one with `username`/`password` put in (percent-encoded)."""
    if not camera.username:
        return camera.url
    parts = urlsplit(camera.url)
    host = parts.netloc.rpartition("@")[2]
    auth = quote(camera.username, safe="") + (":" + quote(camera.password, safe="") if camera.password else "")
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))


# FFmpeg probes a new input for 5 s / 5 MB by default before the first frame: measured 2.1 s to the first
# frame from tests/rtspserver.py with the defaults, 0.35 s with these (RTSP's SDP already names the codec
# and its parameters; a decoder learns the size from the first keyframe anyway)
PROBE = {"analyzeduration": "100000", "probesize": "32768"}


# An HLS camera (go2rtc, Frigate, a camera's own /live.m3u8): FFmpeg's hls demuxer starts 3 segments from
# the live edge by default; 2 is one segment of buffer (the next one is listed while the last is shown) and
# 1-2 s less delay with the 1-2 s segments such servers cut.
HLS_START = "-2"


def open_options(camera: Camera) -> dict[str, str]:
    scheme = urlsplit(camera.url).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return {**PROBE, "rtsp_transport": camera.transport, "timeout": str(int(READ_TIMEOUT * 1e6))}
    return {**PROBE, "rw_timeout": str(int(READ_TIMEOUT * 1e6)), "live_start_index": HLS_START}


class Pacer:
    """Hands an HLS camera's pictures out at their own pace. FFmpeg reads a segment as fast as HTTP brings
    it (a 1 s segment decodes in ~10 ms), and the frame loop takes only the newest picture: unpaced, the TV
    would show one picture per segment. So each frame waits until its timestamp is due on our clock
    (anchored at the first); a camera late by more than RESYNC (a slow playlist refresh) or a jump in
    its timestamps is anchored again. RTSP and MJPEG cameras send in real time: not paced."""

    RESYNC = 1.0  # seconds

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._anchor: tuple[float, float] | None = None  # (camera time, monotonic)

    def wait(self, camera_time: float | None) -> None:
        if camera_time is None:
            return
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (camera_time, now)
            return
        due = self._anchor[1] + camera_time - self._anchor[0]
        if due < now - self.RESYNC or due > now + self.RESYNC:
            self._anchor = (camera_time, now)
        elif due > now:
            self._stop.wait(due - now)


def describe(exc: BaseException, waited: float = 0.0) -> str:
    """One line for /status and the log: what went wrong, never the URL (it may hold credentials).
    `waited`: how long the attempt took; FFmpeg's RTSP client reports a silent peer as invalid data
    once its socket timeout has passed (measured: InvalidDataError after 5.0 s)."""
    if waited >= READ_TIMEOUT - 0.2 and isinstance(exc, av.InvalidDataError):
        return f"no answer (timed out after {waited:.0f} s)"
    if isinstance(exc, av.HTTPUnauthorizedError) or isinstance(exc, av.HTTPForbiddenError):
        return "login refused (check the camera's username and password)"
    if isinstance(exc, av.HTTPNotFoundError):
        return "no such stream on the camera (check the URL's path)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens at the camera's address and port)"
    if isinstance(exc, (av.ExitError, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(exc, av.InvalidDataError):
        return "the camera sent nothing FFmpeg can read as video (check the URL: a web page, not a stream?)"
    if isinstance(exc, av.DecoderNotFoundError):
        return "the camera's video codec is not one castd can decode (use H.264, H.265 or MJPEG)"
    if isinstance(exc, av.FFmpegError):
        text = exc.strerror or type(exc).__name__
        return f"{text} (errno {exc.errno})" if exc.errno else text
    return f"{type(exc).__name__}: {exc}"[:200]


class CameraReader:
    """Reads one camera until stop(): at most one connection at a time, the newest frame kept.

    `state` is connecting (no frame yet on this attempt), live (frames arriving), or offline (the
    last attempt failed; the next comes after backoff(failures))."""

    def __init__(self, name: str, camera: Camera, shown: str = "full") -> None:
        self.name = name
        self.camera = camera
        self.shown = shown
        self.state: CameraState = "connecting"
        self.error: str | None = None
        self.failures = 0
        self.retry_at: float | None = None  # monotonic
        self.connected_at: float | None = None  # epoch
        self.frame: av.VideoFrame | None = None  # the newest decoded frame
        self.frame_at: float | None = None  # its monotonic time
        self.frame_wall: float | None = None
        self.frames = 0
        self.codec: str | None = None
        self.audio: AudioFeed | None = AudioFeed() if camera.audio else None
        self.attempts = 0
        self._logged: str | None = None  # the error last logged (a new one is logged at once)
        self._stop = threading.Event()
        self._scaled: tuple[int, int, int, av.VideoFrame] | None = None  # (frame number, w, h) -> picture
        self._reformatter = VideoReformatter()
        self._thread = threading.Thread(target=self._run, name=f"camera-{name}", daemon=True)

    def start(self) -> CameraReader:
        self._thread.start()
        if self.camera.snapshot_url:
            threading.Thread(target=self._snapshot, name=f"snapshot-{self.name}", daemon=True).start()
        return self

    def stop(self) -> None:
        """Ask the thread to end (it does within READ_TIMEOUT; it holds no file and no process)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return not self._thread.is_alive()

    def picture(self, width: int, height: int) -> av.VideoFrame | None:
        """The newest frame scaled to width x height (yuv420p), or None before the first one.
        Called by the frame loop only (the scaler and its cache are that thread's)."""
        frame, number = self.frame, self.frames
        if frame is None:
            return None
        cached = self._scaled
        if cached is not None and cached[:3] == (number, width, height):
            return cached[3]
        scaled = self._reformatter.reformat(frame, width=width, height=height, format="yuv420p",
                                            interpolation=Interpolation.BILINEAR, threads=1)
        self._scaled = (number, width, height, scaled)
        return scaled

    def status(self) -> CameraStatus:
        frame = self.frame
        now = time.monotonic()
        return CameraStatus(
            name=self.name, state=self.state, shown="overlay" if self.shown == "overlay" else "full",
            error=self.error, failures=self.failures,
            retry_in=round(max(0.0, self.retry_at - now), 1) if self.state == "offline" and self.retry_at else None,
            connected_at=self.connected_at, last_frame_at=self.frame_wall, codec=self.codec,
            width=frame.width if frame is not None else None, height=frame.height if frame is not None else None,
            audio=self.audio.codec if self.audio is not None else None)

    # ---- the reader threads -------------------------------------------------------------------------
    def _snapshot(self) -> None:
        """The camera's still picture, shown while its stream connects (a JPEG over HTTP answers in ~0.1 s
        where an RTSP stream needs its next keyframe: up to a GOP, 1-4 s on common cameras)."""
        snapshot = Camera(url=self.camera.snapshot_url, username=self.camera.username, password=self.camera.password)
        try:
            with av.open(source_url(snapshot), options=open_options(snapshot),
                         timeout=(OPEN_TIMEOUT, READ_TIMEOUT)) as container:
                for frame in container.decode(video=0):
                    if self.frame is None and not self._stop.is_set():
                        self.frame, self.frame_at, self.frame_wall = frame, time.monotonic(), time.time()
                        log.info("camera snapshot", camera=self.name, width=frame.width, height=frame.height)
                    return
        except Exception as exc:  # the stream may still come: the snapshot is only a head start
            log.warning("camera snapshot failed", camera=self.name, error=describe(exc))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.attempts += 1
            began, frames = time.monotonic(), self.frames
            self.state = "connecting" if self.frame is None or self.state != "offline" else "offline"
            try:
                ended = self._read()
                if self._stop.is_set():
                    return
                self.error = ended
            except Exception as exc:  # every fault of one camera ends here: the frame loop goes on
                if self._stop.is_set():
                    return
                self.error = describe(exc, time.monotonic() - began if self.frames == frames else 0.0)
            self.failures += 1
            delay = backoff(self.failures)
            self.state, self.connected_at = "offline", None
            self.retry_at = time.monotonic() + delay
            if self.error != self._logged or self.failures % LOG_EVERY == 0:  # a long outage: a line every ~5 min
                log.warning("camera offline", camera=self.name, error=self.error, failures=self.failures,
                            retry_in=delay)
                self._logged = self.error
            self._stop.wait(delay)

    def _read(self) -> str:
        """One connection: decode until the camera stops; returns why it ended (or raises)."""
        with av.open(source_url(self.camera), options=open_options(self.camera),
                     timeout=(OPEN_TIMEOUT, READ_TIMEOUT)) as container:
            if not container.streams.video:
                return "the camera sends no video"
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # a 1080p H.264 camera decodes on both cores of a Pi
            self.codec = stream.codec_context.name
            sound = self._sound(container)
            pacer = Pacer(self._stop) if container.format.name == "hls" else None
            for packet in container.demux(stream, *([sound.stream] if sound else [])):
                if self._stop.is_set():
                    return "stopped"
                if sound is not None and packet.stream is sound.stream:
                    sound.packet(packet)
                    continue
                for frame in stream.decode(packet):
                    if pacer is not None:
                        pacer.wait(frame.time)
                    self.frame, self.frame_at, self.frame_wall = frame, time.monotonic(), time.time()
                    if sound is not None and frame.time is not None:
                        sound.feed.saw_picture(frame.time, self.frame_at)
                    self.frames += 1
                    if self.state != "live":
                        self.state, self.failures, self.error, self._logged = "live", 0, None, None
                        self.connected_at = time.time()
                        log.info("camera live", camera=self.name, codec=self.codec, width=frame.width,
                                 height=frame.height, attempt=self.attempts,
                                 audio=self.audio.codec if self.audio else "off")
        return "the camera ended its stream"

    def _sound(self, container) -> _Sound | None:
        """The connection's audio, when the camera is configured with audio = true and sends some."""
        feed = self.audio
        if feed is None:
            return None
        feed.restart()
        if not container.streams.audio:
            if feed.codec != "none":
                log.warning("camera sends no audio", camera=self.name)
            feed.codec = "none"
            return None
        return _Sound(self.name, container.streams.audio[0], feed)


class _Sound:
    """One connection's audio stream into the camera's feed: packets as they are, or frames resampled."""

    def __init__(self, camera: str, stream, feed: AudioFeed) -> None:
        self.camera, self.stream, self.feed = camera, stream, feed
        codec = stream.codec_context
        self.through = passes_through(codec)
        name = codec.name
        feed.codec = f"{name} (passed through)" if self.through else f"{name} {codec.sample_rate} Hz -> aac"
        self._resampler = None if self.through else \
            av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=AUDIO_FRAME)
        self._failed = False

    def packet(self, packet) -> None:
        if packet.size == 0 or packet.pts is None:
            return
        if self.through:
            self.feed.put(float(packet.pts * packet.time_base), strip_adts(bytes(packet)))
            return
        try:
            for frame in packet.decode():
                for out in self._resampler.resample(frame):  # type: ignore[union-attr]
                    if out.time is not None:
                        self.feed.put(out.time, out)
        except (av.FFmpegError, ValueError) as exc:  # the picture goes on; its sound is silent until the next one
            if not self._failed:
                log.warning("camera audio does not decode", camera=self.camera, error=describe(exc))
                self._failed = True
