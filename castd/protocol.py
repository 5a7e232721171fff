"""Messages on castd's two pipes, as msgspec tagged unions.

front end <-> supervisor: commands with ids go down; Acks and Status snapshots come up.
supervisor <-> encoder child: Begin/Navigate/Park/Quit go down; Progress and the ChildEvents come up.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import msgspec

from castd import __version__

from castd.config import Camera, Site
from castd.presets import Preset
from castd.sharing import Sharing

# retrying: a round of restarts gave up, the session is still wanted and is tried again at `retry_at`
State = Literal["idle", "starting", "streaming", "stopping", "failed", "retrying"]
LIVE_STATES: tuple[State, ...] = ("starting", "streaming")  # a session is on
Then = Literal["stop", "resume"]
Mode = Literal["hls", "direct"]  # hls: castd encodes and casts the stream; direct: the device loads the page
PageState = Literal["loading", "loaded", "error", "hung"]  # hung: the page watchdog is curing it
HangCure = Literal["new_browser", "new_encoder"]  # the page watchdog's steps (castd/encoder/pagewatch.py)
FailCode = Literal["page_hung"]  # why a child gave up, for machines (the sentence is Failed.error)
Standby = Literal["warm"]  # a parked encoder keeps Xvfb + Chromium ready


OverlayPosition = Literal["top-left", "top-right", "bottom-left", "bottom-right"]
OVERLAY_POSITIONS: tuple[OverlayPosition, ...] = ("top-left", "top-right", "bottom-left", "bottom-right")
OverlayWhere = Literal["top-left", "top-right", "bottom-left", "bottom-right", "off"]  # off: remove it
MAX_OVERLAYS = 4
CameraState = Literal["connecting", "live", "offline"]


class Overlay(msgspec.Struct, kw_only=True, frozen=True):
    """A camera in a corner over the session's picture (picture-in-picture), until `until` (epoch s)."""

    camera: str
    position: OverlayPosition = "top-right"
    size: float | None = None  # a fraction of the picture's width; None: the camera's overlay_size
    until: float | None = None


class CameraStatus(msgspec.Struct, kw_only=True):
    """/status `cameras`: one camera the encoder reads now, as its reader thread last saw it."""

    name: str
    state: CameraState
    shown: Literal["full", "overlay"] = "full"
    error: str | None = None  # why the last attempt failed (credentials never in it)
    failures: int = 0  # failed attempts in a row; the next one comes after a backoff
    retry_in: float | None = None  # state offline: seconds until the next attempt
    connected_at: float | None = None  # epoch seconds of the current connection
    last_frame_at: float | None = None  # epoch seconds of the newest decoded frame
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    audio: str | None = None  # audio = true: its sound ("aac (passed through)", "pcm_alaw 8000 Hz -> aac", "none")


class PageOverrides(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Per-request page settings from /start; they beat the matching [[sites]] entry. Never secrets."""

    zoom: float | None = None
    reload_seconds: float | None = None
    ready_selector: str | None = None


# ---- front end -> supervisor -------------------------------------------------------------
class Start(msgspec.Struct, tag=True):
    id: str
    url: str  # a playlist: empty (its items' dashboards give the pages)
    quality: str
    duration: float | None = None
    devices: list[str] = []  # Cast device specs (castd/specs.py); empty: stream only
    mode: Mode = "hls"
    page: PageOverrides = msgspec.field(default_factory=PageOverrides)
    dashboard: str | None = None  # the [[dashboards]] name the url and page came from
    playlist: str | None = None  # a [[playlists]] name: rotate its items in this one session
    then: Then = "stop"  # after `duration`: stop, or resume what was on screen before (an interrupt)
    sharing: Sharing = Sharing()  # the request's sharing keys over its dashboard's or playlist's
    # a camera over the running session's picture (url is "camera:NAME"; `duration`: how long, None: until removed)
    overlay: OverlayWhere | None = None
    overlay_size: float | None = None


class Step(msgspec.Struct, tag=True):
    """/next (+1) and /previous (-1) through the playlist on screen."""

    id: str
    count: int = 1


class Stop(msgspec.Struct, tag=True):
    id: str
    reason: str = "stop requested"


class Shutdown(msgspec.Struct, tag=True):
    id: str


class Reload(msgspec.Struct, tag=True):
    """Load the current session's page again (same URL and page settings; the stream goes on)."""

    id: str


class Ping(msgspec.Struct, tag=True):
    """Are you there? The supervisor answers with an Ack in the pass that reads it (castd/children/liveness.py)."""

    id: str


Command = Start | Stop | Shutdown | Step | Reload | Ping


# ---- supervisor -> front end -------------------------------------------------------------
CastState = Literal["connecting", "launched", "loading", "playing", "paused", "failed", "user_stopped", "other_app",
                    "stopping", "stopped", "waiting", "retrying"]
# waiting: the TV is not free (cast/takeover.py); see reason. retrying: a round of cast_retries tries gave up,
# the next round starts in retry_in seconds (cast/link.py)
USER_STATES: tuple[CastState, ...] = ("user_stopped", "other_app")  # the viewer took the device back
CAST_ON_THE_WAY: tuple[CastState, ...] = ("connecting", "launched", "loading")  # castd is putting it on the TV
# the session holds the TV
CAST_HELD: tuple[CastState, ...] = (*CAST_ON_THE_WAY, "playing", "paused", "failed", "retrying")


class CastDevice(msgspec.Struct, kw_only=True):
    """One device of the session, as its cast link last reported it."""

    device: str  # the spec as given (name, host[:port] or UUID)
    state: CastState = "connecting"
    reason: str | None = None
    name: str | None = None
    host: str | None = None
    port: int | None = None
    uuid: str | None = None
    model: str | None = None
    stream_url: str | None = None  # the URL this device was told to play
    failures: int = 0  # failed attempts in a row (connect, launch, LOAD); reset after a healthy minute
    retry_in: float | None = None  # state failed or retrying: seconds to the next try (None: gave up for the session)
    last_error: str | None = None
    updated_at: float = 0.0
    reloads: int = 0  # LOADs again because the TV's player was stuck (BUFFERING or a still currentTime)
    reload_reason: str | None = None  # why the last of them
    media_time: float | None = None  # the receiver's currentTime when last seen advancing (MEDIA_STATUS)
    media_time_at: float | None = None  # wall time it was seen
    app: str | None = None  # the other app on the device (the one castd waits out), by its name
    volume: int | None = None  # the TV's volume (0-100) and mute, from its last receiver status
    muted: bool | None = None


class CastSection(msgspec.Struct, kw_only=True):
    """/status `cast`: per device state, apart from the stream's own state."""

    devices: list[CastDevice] = []
    note: str | None = None  # e.g. "no device set"
    stopping: int = 0  # devices of ended sessions castd is still taking its app off
    worker_pid: int | None = None
    worker_restarts: int = 0


class Status(msgspec.Struct, kw_only=True, omit_defaults=False):
    """What the supervisor knows, pushed on every change and at least once a second."""

    state: State = "idle"
    session: str | None = None
    url: str | None = None
    quality: str | None = None
    started_at: float | None = None
    ends_at: float | None = None
    stream_path: str | None = None
    stream_format: str | None = None  # the stream's shape (config stream_format, castd/presets.py); None: no stream
    page: PageState | None = None
    frames: int = 0
    fps: float = 0.0
    segments: int = 0
    restarts: int = 0
    last_error: str | None = None
    retry_at: float | None = None  # state retrying: epoch seconds of the next round of starts
    retries: int = 0  # rounds given up and retried later this session (castd/children/policy.py RetryLater)
    encoder_pid: int | None = None
    standby: Standby | None = None
    mode: Mode | None = None
    memory_reloads: int = 0  # pages reloaded by the memory watchdog this session (config memory_limit_mb)
    memory_restarts: int = 0  # encoders restarted by it (a reload did not bring the browser under the limit)
    page_hangs: int = 0  # hung pages found by the page watchdog this session (each cured: a new browser or encoder)
    devices: list[str] = []  # the session's Cast device specs (with quality and mode: what a switch keeps)
    # the programme (castd/programme/): why this is on screen, and what comes next
    source: str | None = None  # manual | schedule | interrupt
    dashboard: str | None = None  # the [[dashboards]] name on screen
    playlist: str | None = None
    item: int | None = None  # the playlist item on screen (0-based)
    items: int | None = None
    next_switch_at: float | None = None  # epoch seconds of the playlist's next page switch
    schedule: str | None = None  # the schedule entry that decided
    interrupts: int = 0  # interrupts stacked ("then": "resume"); the screen goes back when they end
    ends_by: str | None = None  # what ends_at is: duration (the session ends), interrupt (the screen goes
    # back to what was on), schedule (the schedule takes over: a window's end or its next boundary)
    cameras: list[CameraStatus] = []  # the cameras the encoder reads (full screen or overlays)
    overlays: list[Overlay] = []  # cameras shown over the picture now
    cast: CastSection = msgspec.field(default_factory=CastSection)
    supervisor_pid: int | None = None
    updated_at: float = 0.0
    # which request this snapshot answers: the seq of the last command the supervisor applied (a start's
    # answer carries its own `seq`: a snapshot with a smaller one was taken before that start took effect)
    seq: int = 0
    page_shown: bool = False  # the page on `url` (this navigation, not the one before) is in a listed segment


class Ack(msgspec.Struct, tag=True):
    command_id: str
    ok: bool
    seq: int = 0  # order in which the supervisor applied the command (newest wins)
    session: str | None = None
    switched: bool = False
    stopped: str | None = None
    error: str | None = None
    # a start or a step: what the programme put on screen (the snapshot may come a moment later)
    url: str | None = None
    dashboard: str | None = None
    playlist: str | None = None
    item: int | None = None
    # a start: the session's TVs castd already knows it will wait for (a link of the cast worker sees another
    # app on it, and the start's sharing keys say when-idle); empty: none known, /status tells soon after
    waiting: list[CastDevice] = []


class Snapshot(msgspec.Struct, tag=True):
    status: Status


SupervisorEvent = Ack | Snapshot


# ---- supervisor -> encoder child ---------------------------------------------------------
class Timeline(msgspec.Struct, kw_only=True, frozen=True):
    """Where an encoder child continues the session's one media timeline.

    The supervisor owns the session clock: a session's media time starts at 0 with its first
    frame and runs on across page switches and encoder restarts, so a player sees one continuous
    stream. A child starting (or beginning a session from standby) is told where to continue:
    `start` is the media time (seconds) of its first frame, the end of the last segment the
    session's playlist lists (Progress.media_end of the child before it). `discontinuity` is True
    only where the stream really breaks (a new child after a crash: new encoder state, new SPS).
    """

    start: float = 0.0
    discontinuity: bool = False


class Navigate(msgspec.Struct, tag=True):
    url: str
    nav: int = 0  # increases with every navigation, so events can be matched to it
    page: PageOverrides = msgspec.field(default_factory=PageOverrides)


class Quit(msgspec.Struct, tag=True):
    pass


class Begin(msgspec.Struct, tag=True):
    """Start streaming a session in a parked (warm standby) child."""

    session: str
    folder: str
    url: str
    nav: int = 0
    page: PageOverrides = msgspec.field(default_factory=PageOverrides)
    timeline: Timeline = msgspec.field(default_factory=Timeline)


class Overlays(msgspec.Struct, tag=True):
    """The cameras to show over the picture from now on (the whole list; empty: none)."""

    items: list[Overlay] = []


# An encoder child ends within 3 s of Quit (encoder/child.py: its page thread 2 s, its helpers 1 s);
# the supervisor kills its group only after this, so a normal end also removes its files itself.
ENCODER_QUIT_GRACE = 4.0


class Park(msgspec.Struct, tag=True):
    """End the session but keep Xvfb and Chromium ready at about:blank (warm standby)."""


ChildCommand = Navigate | Quit | Begin | Park | Overlays


class ChildParams(msgspec.Struct, kw_only=True):
    """Everything an encoder child is started with (spawn: it shares no memory with its parent)."""

    session: str | None  # None: start parked (warm standby at boot)
    url: str
    nav: int = 0
    preset: Preset
    folder: str
    logs_dir: str
    chromium: str
    chromedriver: str
    xvfb: str
    page_load_timeout: float
    page_hang_seconds: float = 5.0  # the page watchdog's budget for a probe (castd/encoder/pagewatch.py)
    tmp_dir: str = ""  # TMPDIR of the child's whole tree (Chromium's profile too); removed when it has gone
    renderer_heap_mb: int = 512
    log_level: str = "INFO"
    allowlist: list[str] = []  # canonical URL prefixes; empty: anywhere
    log_secrets: list[str] = []  # values no log line may show (the token)
    sites: list[Site] = []
    page: PageOverrides = msgspec.field(default_factory=PageOverrides)
    timeline: Timeline = msgspec.field(default_factory=Timeline)  # where this child continues the session
    cameras: dict[str, Camera] = {}  # the config's [cameras.NAME] (credentials: log_secrets holds them)
    overlays: list[Overlay] = []


# ---- encoder child -> supervisor ---------------------------------------------------------
class Progress(msgspec.Struct, tag=True):
    frames: int
    fps: float
    segments: int
    last_frame_at: float
    last_segment_at: float | None
    media_end: float = 0.0  # session media time (s) at the end of the last listed segment (see Timeline)
    cameras: list[CameraStatus] = []


class Ready(msgspec.Struct, tag=True):
    """The page of navigation `nav` is in a finished, listed segment (a player can show it)."""

    nav: int
    url: str


class PageLoaded(msgspec.Struct, tag=True):
    nav: int
    url: str
    seconds: float


class PageFailed(msgspec.Struct, tag=True):
    """The page did not load; the encoder shows castd's error card and tries again."""

    nav: int
    url: str
    error: str


class PageHung(msgspec.Struct, tag=True):
    """The page watchdog found the browser not answering and applies `cure` (pagewatch.py)."""

    nav: int
    url: str
    reason: str
    cure: HangCure


class Failed(msgspec.Struct, tag=True):
    """The child's last words before it exits (the exit code, castd/children/exits.py, says how)."""

    error: str
    code: FailCode | None = None


class Parked(msgspec.Struct, tag=True):
    """The session's files are closed; the child waits at about:blank (warm standby)."""


ChildEvent = Ready | PageLoaded | PageFailed | PageHung | Failed | Parked
ChildMessage = Progress | Ready | PageLoaded | PageFailed | PageHung | Failed | Parked

_encoder = msgspec.msgpack.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


command_decoder = msgspec.msgpack.Decoder(Command)
event_decoder = msgspec.msgpack.Decoder(SupervisorEvent)
child_command_decoder = msgspec.msgpack.Decoder(ChildCommand)
child_message_decoder = msgspec.msgpack.Decoder(ChildMessage)


# the files that define what crosses castd's pipes: these messages, the config and presets every child
# is started with, and the cast worker's messages (read as bytes, not imported: cast/ sits above)
CONTRACT_FILES = ("protocol.py", "config.py", "presets.py", "mqtt/settings.py", "cast/messages.py")


def _fingerprint() -> str:
    """castd's version and a hash of the contract files as this process loaded them (0.2 ms).

    Computed once, at import: a parent keeps the version it started with while an upgrade replaces the
    files under it, and each child it spawns computes its own from what is on disk then. Two processes
    that differ here may not decode each other's messages (castd/children/piped.py checks at spawn).
    """
    digest = hashlib.sha256(__version__.encode())
    root = Path(__file__).parent
    for name in CONTRACT_FILES:
        try:
            digest.update((root / name).read_bytes())
        except OSError:
            digest.update(b"-")
    return f"{__version__}+{digest.hexdigest()[:12]}"


PROTOCOL_VERSION = _fingerprint()
