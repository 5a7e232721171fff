"""Human-readable text for what castd's API returns: the status table and the device list."""

from __future__ import annotations

import time
from typing import Any

from castd.api.schemas import PublicStatus, StatusResponse
from castd.protocol import LIVE_STATES, CastDevice


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def cast_devices(status: StatusResponse | PublicStatus) -> list[CastDevice]:
    """The session's devices as its cast links last reported them."""
    return list(status.cast.devices) if isinstance(status, StatusResponse) else []


def device_label(device: CastDevice) -> str:
    name = device.name or device.host or device.uuid or device.device
    reason = device.last_error if device.state == "failed" and device.last_error else device.reason
    return " ".join(part for part in (name, device.state, f"({reason})" if reason else "") if part)


def showing(status: StatusResponse, now: float) -> str:
    """The programme in words: the dashboard or playlist item, why it is on, what comes next."""
    parts = []
    if status.playlist:
        item, items = status.item, status.items
        place = f" item {item + 1}/{items}" if item is not None and items else ""
        parts.append(f"playlist {status.playlist}{place} ({status.dashboard or '?'})")
        if status.next_switch_at:
            parts.append(f"next in {duration(status.next_switch_at - now)}")
    elif status.dashboard:
        parts.append(f"dashboard {status.dashboard}")
    if status.source == "schedule":
        parts.append(f"by schedule {status.schedule or '?'}")
    elif status.source == "interrupt":
        parts.append("interrupt, then back" + (f" in {duration(status.ends_at - now)}" if status.ends_at else ""))
    return ", ".join(parts) or "-"


def ends_in(status: StatusResponse, now: float) -> str:
    """When the session ends by itself, and what ends it: a duration ends it, an interrupt's end gives the
    screen back (the session goes on), the schedule's next boundary hands it to the schedule."""
    ends = status.ends_at
    if ends is None:
        return "never (until stopped)"
    left = duration(ends - now)
    if status.ends_by == "interrupt":
        return f"not by itself: the interrupt gives the screen back in {left}"
    if status.ends_by == "schedule":
        return f"{left} (the schedule takes over then)"
    return left


def status_table(status: StatusResponse | PublicStatus) -> str:
    if isinstance(status, PublicStatus):
        return (f"state  {status.state}\nok     {'yes' if status.ok else 'no'}\n"
                "(castd has a token: set `token` in the config or CASTD_TOKEN to see the details)")
    live = status.state in LIVE_STATES
    now = status.updated_at or time.time()  # the daemon's clock, not ours
    started = status.started_at
    devices = cast_devices(status)
    rows = [
        ("state", status.state + (f" (next try in {duration(status.retry_at - now)}, round {status.retries + 1})"
                                  if status.state == "retrying" and status.retry_at else "")),
        ("session", status.session or "-"),
        ("url", status.url or "-"),
        ("showing", showing(status, now) if live else "-"),
        ("quality", status.quality or "-"),
        ("device", ", ".join(device_label(d) for d in devices) if devices else
         (", ".join(status.devices) or ("none set" if live else "-"))),
        ("uptime", duration(now - started) if live and started else "-"),
        ("ends in", ends_in(status, now) if live else "-"),
        ("page", status.page or "-"),
        ("fps", f"{status.fps:.1f}" if live else "-"),
        ("frames", f"{status.frames} ({status.segments} segments)" if live else "-"),
        ("restarts", str(status.restarts)),
        ("memory watchdog", f"{status.memory_reloads} page reloads, {status.memory_restarts} encoder restarts"
         if live else "-"),
        ("stream", status.stream_url or "-"),
        ("last error", status.last_error.splitlines()[0] if status.last_error else "-"),
    ]
    mqtt = status.mqtt
    if mqtt is not None:  # the broker link (castd/mqtt/), only when one is configured
        text = f"{mqtt.state} to {mqtt.broker} as {mqtt.base_topic}"
        if mqtt.state != "connected" and mqtt.last_error:
            text += f" ({mqtt.last_error})"
        rows.append(("mqtt", text))
    for camera in status.cameras:  # the cameras the encoder reads now
        text = f"{camera.state} ({camera.shown})"
        if camera.state == "live" and camera.codec:
            text += f" {camera.codec} {camera.width}x{camera.height}"
            if camera.audio:
                text += f", audio {camera.audio}"
        if camera.error and camera.state != "live":
            text += f": {camera.error}" + (f"; retry in {camera.retry_in:g} s" if camera.retry_in is not None else "")
        rows.append((f"camera {camera.name}", text))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


DEVICE_COLUMNS = ("name", "model", "host", "port", "uuid", "status")


def devices_table(devices: list[dict[str, Any]]) -> str:
    if not devices:
        return "no devices found"
    rows = [[_cell(d, c) for c in DEVICE_COLUMNS] for d in devices]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(DEVICE_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(DEVICE_COLUMNS, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _cell(device: dict[str, Any], column: str) -> str:
    value = device.get(column)
    if column == "status" and value is None:
        value = device.get("state") or device.get("activity") or device.get("app")
    return "-" if value is None or value == "" else str(value)


def dashboards_table(answer: dict[str, Any]) -> str:
    """GET /dashboards as text: one line per dashboard, playlist and schedule."""
    lines: list[str] = []
    boards = answer.get("dashboards") or []
    lines.append("dashboards:" if boards else "dashboards: none configured ([[dashboards]] in the config)")
    width = max((len(b.get("name", "")) for b in boards), default=0)
    for board in boards:
        devices = ", ".join(board.get("devices") or []) or "stream only"
        lines.append(f"  {board.get('name', '?'):<{width}}  {board.get('quality', '?'):<11} {devices:<20} "
                     f"{board.get('url', '')}")
    for playlist in answer.get("playlists") or []:
        items = ", ".join(f"{i.get('dashboard')} {i.get('seconds', 0):g}s" for i in playlist.get("items") or [])
        how = "loop" if playlist.get("loop") else "once"
        lines.append(f"playlist {playlist.get('name')} ({how}, {playlist.get('quality')}): {items}")
    for camera in answer.get("cameras") or []:
        lines.append(f"camera {camera.get('name')}: {camera.get('url')} ({camera.get('transport')})")
    for entry in answer.get("schedules") or []:
        what = f"dashboard {entry['dashboard']}" if entry.get("dashboard") else f"playlist {entry.get('playlist')}"
        on = "  <- on now" if entry.get("active") else ""
        lines.append(f"schedule {entry.get('name')}: {','.join(entry.get('days') or [])} {entry.get('start')}-"
                     f"{entry.get('end')} {entry.get('timezone')}: {what}{on}")
    return "\n".join(lines)
