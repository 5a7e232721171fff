"""Human-readable text for what castd's API returns: the status table and the device list."""

from __future__ import annotations

import time
from typing import Any

LIVE_STATES = ("starting", "streaming")


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def cast_devices(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-device cast state in /status, whatever shape it has (a list, or one object), else []."""
    found = status.get("devices", status.get("cast"))
    if isinstance(found, dict):
        found = found.get("devices", [found])
    if not isinstance(found, list):
        return []
    return [d if isinstance(d, dict) else {"name": str(d)} for d in found]


def device_label(device: dict[str, Any]) -> str:
    name = device.get("name") or device.get("host") or device.get("uuid") or "device"
    state = device.get("state") or device.get("cast_state") or ""
    reason = device.get("error") or device.get("reason") or ""
    return " ".join(str(part) for part in (name, state, f"({reason})" if reason else "") if part)


def showing(status: dict[str, Any], now: float) -> str:
    """The programme in words: the dashboard or playlist item, why it is on, what comes next."""
    parts = []
    if status.get("playlist"):
        item, items = status.get("item"), status.get("items")
        place = f" item {item + 1}/{items}" if isinstance(item, int) and items else ""
        parts.append(f"playlist {status['playlist']}{place} ({status.get('dashboard') or '?'})")
        if status.get("next_switch_at"):
            parts.append(f"next in {duration(status['next_switch_at'] - now)}")
    elif status.get("dashboard"):
        parts.append(f"dashboard {status['dashboard']}")
    if status.get("source") == "schedule":
        parts.append(f"by schedule {status.get('schedule') or '?'}")
    elif status.get("source") == "interrupt":
        parts.append("interrupt, then back" + (f" in {duration(status['ends_at'] - now)}"
                                               if status.get("ends_at") else ""))
    return ", ".join(parts) or "-"


def status_table(status: dict[str, Any]) -> str:
    live = status.get("state") in LIVE_STATES
    now = status.get("updated_at") or time.time()  # the daemon's clock, not ours
    started, ends = status.get("started_at"), status.get("ends_at")
    devices = cast_devices(status)
    rows = [
        ("state", status.get("state", "?")),
        ("session", status.get("session") or "-"),
        ("url", status.get("url") or "-"),
        ("showing", showing(status, now) if live else "-"),
        ("quality", status.get("quality") or "-"),
        ("device", ", ".join(device_label(d) for d in devices) if devices else
         (status.get("device") or ("none set" if live else "-"))),
        ("uptime", duration(now - started) if live and started else "-"),
        ("ends in", duration(ends - now) if live and ends else ("never (until stopped)" if live else "-")),
        ("page", status.get("page") or "-"),
        ("fps", f"{status.get('fps', 0):.1f}" if live else "-"),
        ("frames", f"{status.get('frames', 0)} ({status.get('segments', 0)} segments)" if live else "-"),
        ("restarts", str(status.get("restarts", 0))),
        ("stream", status.get("stream_url") or "-"),
        ("last error", (status.get("last_error") or "-").splitlines()[0] if status.get("last_error") else "-"),
    ]
    width = max(len(name) for name, _ in rows)
    table = "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
    if status.get("auth_required"):
        table += "\n(castd has a token: set `token` in the config or CASTD_TOKEN to see the details)"
    return table


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
    for entry in answer.get("schedules") or []:
        what = f"dashboard {entry['dashboard']}" if entry.get("dashboard") else f"playlist {entry.get('playlist')}"
        on = "  <- on now" if entry.get("active") else ""
        lines.append(f"schedule {entry.get('name')}: {','.join(entry.get('days') or [])} {entry.get('start')}-"
                     f"{entry.get('end')} {entry.get('timezone')}: {what}{on}")
    return "\n".join(lines)
