"""`castd start --wait`: follow one session through its steps by polling /status.

Steps, in order: browser (the encoder and its Chromium are starting), page loaded, first
segment (streaming), casting and playing (only when a device is involved). A snapshot can skip
steps, so every step up to the one reached is printed, each once. It ends when the stream runs
(no device) or a device plays, and fails with the reason otherwise.

Only snapshots that answer this request count: /start answers with the `seq` the supervisor gave it,
and every snapshot carries the seq of the last command applied, so one taken before the start took
effect (which, on a switch, still shows the old page "loaded" and "streaming", and on a new session the
old session and the old encoder's pid) is skipped. A switch keeps the stream running: its "first
segment" is the new page in the stream (`page_shown`), not the stream's first segment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from castd.api.schemas import PublicStatus, StatusResponse
from castd.client.http import Client, ClientError
from castd.client.render import cast_devices, device_label
from castd.protocol import CAST_HELD

STEPS = ("browser", "page loaded", "first segment", "casting", "playing")
POLL = 0.25
DEVICE_GRACE = 5.0  # seconds to wait for device info after streaming, when a device was asked for


class WaitFailed(Exception):
    pass


class TvWaiting(Exception):
    """The session streams, and castd waits for its TVs (another app on them, or standby): not a failure,
    but not the picture on the TV either; `castd start --wait` says so and exits 5 (castd/exitcodes.py)."""


def _reached(status: StatusResponse, switch: bool = False) -> int:
    """How many STEPS this snapshot shows as done (raises WaitFailed on a failure)."""
    state = status.state
    if state == "failed":
        raise WaitFailed(f"session failed: {_first_line(status.last_error) or 'no reason given'}")
    if state == "retrying":
        raise WaitFailed(f"session gave up for now and is retried later: {_first_line(status.last_error) or '?'} "
                         "(`castd stop` ends it)")
    if status.page == "error":
        raise WaitFailed(f"the page did not load: {_first_line(status.last_error) or '?'} "
                         "(the session goes on showing it; `castd stop` ends it)")
    on_stream = state == "streaming" and (status.page_shown or status.mode == "direct")
    done = 0
    if switch or status.encoder_pid or status.page in ("loading", "loaded") or on_stream:
        done = 1
    if status.page == "loaded" or on_stream:
        done = 2
    if on_stream:
        done = 3
        devices = cast_devices(status)
        states = {d.state for d in devices}
        final = [d for d in devices if d.state == "failed" and d.retry_in is None]  # a planned retry is no end
        if devices and len(final) == len(devices):
            raise WaitFailed("casting failed: " + ", ".join(device_label(d) for d in devices))
        if states & set(CAST_HELD):
            done = 4
        if "playing" in states:
            done = 5
    return done


def _detail(step: str, status: StatusResponse, switch: bool = False) -> str:
    if step == "browser":
        if switch:
            return f"switching the page (encoder pid {status.encoder_pid or '?'} runs on)"
        return f"Chromium starting (encoder pid {status.encoder_pid or '?'})"
    if step == "page loaded":
        return status.url or ""
    if step == "first segment":
        return f"{'the new page is on the ' if switch else ''}stream {status.stream_url or '?'}"
    return ", ".join(device_label(d) for d in cast_devices(status))


def _first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


def wait_for_session(client: Client, session: str, *, want_device: bool, timeout: float, seq: int = 0,
                     switch: bool = False, out: Callable[[str], None] = print,
                     clock: Callable[[], float] = time.monotonic) -> str:
    """Print each step as it is reached; return a closing line, or raise WaitFailed. `seq`: the start's
    (snapshots from before it are skipped); `switch`: it switched the page of the running session."""
    started = clock()
    printed = 0
    streaming_at: float | None = None
    restarts: int | None = None
    while True:
        try:
            status = client.status()
        except ClientError as exc:
            raise WaitFailed(exc.message) from None
        if isinstance(status, PublicStatus):
            raise WaitFailed("castd has a token: set `token` in the config or CASTD_TOKEN to follow the session")
        restarts = status.supervisor_restarts if restarts is None else restarts
        if status.seq < seq and status.supervisor_restarts == restarts:  # from before the start took effect
            if clock() - started > timeout:
                raise WaitFailed(f"timed out after {timeout:.0f}s: castd did not report the start")
            time.sleep(POLL)
            continue
        if status.session != session:
            if status.session:
                raise WaitFailed(f"replaced by a newer start (session {status.session})")
            raise WaitFailed(f"the session ended: {_first_line(status.last_error) or 'stopped'}")
        if status.state in ("idle", "stopping"):
            raise WaitFailed(f"the session ended: {_first_line(status.last_error) or 'stopped'}")
        reached = _reached(status, switch)
        now = clock()
        while printed < reached:
            detail = _detail(STEPS[printed], status, switch)
            out(f"  [{now - started:5.1f}s] {STEPS[printed]:<13} {detail}".rstrip())
            printed += 1
        if reached == len(STEPS):
            return "playing on the TV"
        if reached >= 3:
            devices = cast_devices(status)
            waiting = [d for d in devices if d.state == "waiting"]
            if waiting and not any(d.state in CAST_HELD for d in devices):
                raise TvWaiting("streaming, and castd waits for the TV: "
                                + "; ".join(device_label(d) for d in waiting)
                                + ". castd casts when it is free (`castd status` shows it, `castd stop` ends it)")
            streaming_at = streaming_at or now
            has_devices = bool(cast_devices(status))
            if not has_devices and not want_device:
                return "streaming (no device set: open the stream URL in a player)"
            if not has_devices and now - streaming_at >= DEVICE_GRACE:
                return "streaming, but castd reports no cast state for a device"
        if now - started > timeout:
            raise WaitFailed(f"timed out after {timeout:.0f}s at step {STEPS[min(reached, 4)]!r} "
                             f"(state {status.state})")
        time.sleep(POLL)
