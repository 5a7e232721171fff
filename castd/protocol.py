"""Messages on castd's two pipes, as msgspec tagged unions.

front end <-> supervisor: commands with ids go down; Acks and Status snapshots come up.
supervisor <-> encoder child: Navigate/Quit go down; Progress and ChildEvent come up.
"""

from __future__ import annotations

from typing import Literal

import msgspec

State = Literal["idle", "starting", "streaming", "stopping", "failed"]


class PageOverrides(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Per-request page settings from /start; they beat the matching [[sites]] entry. Never secrets."""

    zoom: float | None = None
    reload_seconds: float | None = None
    ready_selector: str | None = None


# ---- front end -> supervisor -------------------------------------------------------------
class Start(msgspec.Struct, tag=True):
    id: str
    url: str
    quality: str
    duration: float | None = None
    page: PageOverrides = msgspec.field(default_factory=PageOverrides)


class Stop(msgspec.Struct, tag=True):
    id: str
    reason: str = "stop requested"


class Shutdown(msgspec.Struct, tag=True):
    id: str


Command = Start | Stop | Shutdown


# ---- supervisor -> front end -------------------------------------------------------------
class Status(msgspec.Struct, kw_only=True, omit_defaults=False):
    """What the supervisor knows, pushed on every change and at least once a second."""

    state: State = "idle"
    session: str | None = None
    url: str | None = None
    quality: str | None = None
    started_at: float | None = None
    ends_at: float | None = None
    stream_path: str | None = None
    page: str | None = None  # loading | loaded | error
    frames: int = 0
    fps: float = 0.0
    segments: int = 0
    restarts: int = 0
    last_error: str | None = None
    encoder_pid: int | None = None
    standby: str | None = None  # "warm" while a parked child keeps Xvfb + Chromium ready
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


class Snapshot(msgspec.Struct, tag=True):
    status: Status


SupervisorEvent = Ack | Snapshot


# ---- supervisor -> encoder child ---------------------------------------------------------
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


class Park(msgspec.Struct, tag=True):
    """End the session but keep Xvfb and Chromium ready at about:blank (warm standby)."""


ChildCommand = Navigate | Quit | Begin | Park


# ---- encoder child -> supervisor ---------------------------------------------------------
class Progress(msgspec.Struct, tag=True):
    frames: int
    fps: float
    segments: int
    last_frame_at: float
    last_segment_at: float | None


class ChildEvent(msgspec.Struct, tag=True):
    """Something worth a log line: kind is ready | page_loaded | page_error | error | parked."""

    kind: str
    message: str = ""
    url: str | None = None
    nav: int = 0


ChildMessage = Progress | ChildEvent

_encoder = msgspec.msgpack.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


command_decoder = msgspec.msgpack.Decoder(Command)
event_decoder = msgspec.msgpack.Decoder(SupervisorEvent)
child_command_decoder = msgspec.msgpack.Decoder(ChildCommand)
child_message_decoder = msgspec.msgpack.Decoder(ChildMessage)
