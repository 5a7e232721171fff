"""Messages on castd's two pipes, as msgspec tagged unions.

front end <-> supervisor: commands with ids go down; Acks and Status snapshots come up.
supervisor <-> encoder child: Begin/Navigate/Park/Quit go down; Progress and the ChildEvents come up.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from castd.config import Site
from castd.presets import Preset

State = Literal["idle", "starting", "streaming", "stopping", "failed"]
LIVE_STATES: tuple[State, ...] = ("starting", "streaming")  # a session is on
Then = Literal["stop", "resume"]
Mode = Literal["hls", "direct"]  # hls: castd encodes and casts the stream; direct: the device loads the page
PageState = Literal["loading", "loaded", "error", "hung"]  # hung: the page watchdog is curing it
HangCure = Literal["new_browser", "new_encoder"]  # the page watchdog's steps (castd/encoder/pagewatch.py)
FailCode = Literal["page_hung"]  # why a child gave up, for machines (the sentence is Failed.error)
Standby = Literal["warm"]  # a parked encoder keeps Xvfb + Chromium ready


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


Command = Start | Stop | Shutdown | Step | Reload


# ---- supervisor -> front end -------------------------------------------------------------
CastState = Literal["connecting", "launched", "loading", "playing", "paused", "failed", "user_stopped", "other_app",
                    "stopping", "stopped"]
USER_STATES: tuple[CastState, ...] = ("user_stopped", "other_app")  # the viewer took the device back
CAST_ON_THE_WAY: tuple[CastState, ...] = ("connecting", "launched", "loading")  # castd is putting it on the TV
CAST_HELD: tuple[CastState, ...] = (*CAST_ON_THE_WAY, "playing", "paused", "failed")  # the session holds the TV


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
    retry_in: float | None = None  # state failed: seconds to the next try when one was planned (None: gave up)
    last_error: str | None = None
    updated_at: float = 0.0
    reloads: int = 0  # LOADs again because the TV's player was stuck (BUFFERING or a still currentTime)
    reload_reason: str | None = None  # why the last of them
    media_time: float | None = None  # the receiver's currentTime when last seen advancing (MEDIA_STATUS)
    media_time_at: float | None = None  # wall time it was seen


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
    page: PageState | None = None
    frames: int = 0
    fps: float = 0.0
    segments: int = 0
    restarts: int = 0
    last_error: str | None = None
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
    cast: CastSection = msgspec.field(default_factory=CastSection)
    supervisor_pid: int | None = None
    updated_at: float = 0.0


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


# An encoder child ends within 3 s of Quit (encoder/child.py: its page thread 2 s, its helpers 1 s);
# the supervisor kills its group only after this, so a normal end also removes its files itself.
ENCODER_QUIT_GRACE = 4.0


class Park(msgspec.Struct, tag=True):
    """End the session but keep Xvfb and Chromium ready at about:blank (warm standby)."""


ChildCommand = Navigate | Quit | Begin | Park


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


# ---- encoder child -> supervisor ---------------------------------------------------------
class Progress(msgspec.Struct, tag=True):
    frames: int
    fps: float
    segments: int
    last_frame_at: float
    last_segment_at: float | None
    media_end: float = 0.0  # session media time (s) at the end of the last listed segment (see Timeline)


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
