"""The /status snapshot, built by one pure function at push time.

The supervisor decides from its own state (Wanted, the encoder slot, Casting); Status is only what it
tells the front end. Building it in one place from that state means no decision ever reads a field
back from the snapshot, and a snapshot cannot disagree with the state it describes.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from castd.paths import stream_path
from castd.programme.programme import Show
from castd.protocol import CameraStatus, CastSection, Mode, Overlay, PageOverrides, PageState, Standby, State, Status
from castd.supervisor.slot import Phase


class Wanted(msgspec.Struct, kw_only=True):
    """The session the commands ask for; the encoder slot is made to match it."""

    session: str
    url: str
    quality: str
    nav: int
    started_at: float
    ends_at: float | None
    devices: list[str] = []  # Cast device specs; empty: stream only
    mode: Mode = "hls"  # direct: the device loads the page itself; no encoder
    page: PageOverrides = msgspec.field(default_factory=PageOverrides)
    show: Show | None = None  # what the programme put on screen (dashboard, playlist item, why)
    media_start: float = 0.0  # where its timeline begins: 0, or (resumed) the seconds since it began
    overlays: list[Overlay] = []  # cameras over the picture (each until its `until`)


class Facts(msgspec.Struct, kw_only=True):
    """What the loop has learned about one session (the wanted one, or the one that gave up)."""

    phase: Literal["starting", "streaming", "failed", "retrying"] = "starting"
    page: PageState | None = None
    last_error: str | None = None
    restarts: int = 0
    retry_at: float | None = None  # retrying: epoch seconds of the next round
    retries: int = 0
    frames: int = 0
    fps: float = 0.0
    segments: int = 0
    memory_reloads: int = 0
    memory_restarts: int = 0
    page_hangs: int = 0  # hung pages the encoder's page watchdog found (and cured)
    page_nav: int = -1  # the navigation `page` is about (a newer one wanted: that page is loading)
    shown_nav: int = -1  # the last navigation whose page reached a listed segment (Ready)
    cameras: list[CameraStatus] = []  # as the encoder last reported them


def build_status(session: Wanted | None, facts: Facts | None, phase: Phase, encoder_pid: int | None,
                 cast: CastSection, supervisor_pid: int, updated_at: float, interrupts: int = 0,
                 stream_format: str | None = None, seq: int = 0) -> Status:
    """`session`: the wanted session, or the failed one still shown; `phase`: the encoder slot's.

    `page` and `page_shown` are about the wanted navigation only: a switch is "loading" in the very
    snapshot that acknowledges it, never the old page's "loaded" (a `castd start --wait` read that as
    success for a page that then failed)."""
    standby: Standby | None = "warm" if phase is Phase.PARKED else None
    if session is None or facts is None:
        state: State = "stopping" if phase is Phase.ENDING else "idle"
        return Status(state=state, encoder_pid=encoder_pid, standby=standby, cast=cast,
                      supervisor_pid=supervisor_pid, updated_at=updated_at, seq=seq)
    page = facts.page if facts.page_nav == session.nav or facts.page is None else "loading"
    return Status(state=facts.phase, session=session.session, url=session.url, quality=session.quality,
                  started_at=session.started_at, ends_at=session.ends_at,
                  stream_path=stream_path(session.session) if session.mode == "hls" else None,
                  page=page, page_shown=facts.shown_nav == session.nav, seq=seq, frames=facts.frames,
                  fps=facts.fps, segments=facts.segments, restarts=facts.restarts, last_error=facts.last_error,
                  retry_at=facts.retry_at, retries=facts.retries, encoder_pid=encoder_pid, standby=standby,
                  mode=session.mode, devices=list(session.devices), cast=cast, supervisor_pid=supervisor_pid,
                  updated_at=updated_at, memory_reloads=facts.memory_reloads, memory_restarts=facts.memory_restarts,
                  page_hangs=facts.page_hangs,
                  interrupts=interrupts, stream_format=stream_format if session.mode == "hls" else None,
                  cameras=facts.cameras, overlays=list(session.overlays),
                  **_programme(session.show))


def _programme(show: Show | None) -> dict[str, Any]:
    """The programme's part of /status: why this is on screen and what comes next."""
    if show is None:
        return {}
    return {"source": show.source, "dashboard": show.dashboard, "playlist": show.playlist, "item": show.item,
            "items": show.items, "next_switch_at": show.next_switch_at, "schedule": show.schedule,
            "ends_by": show.ends_by}
