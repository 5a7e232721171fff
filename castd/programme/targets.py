"""What a name in the config stands for: a dashboard or a playlist resolved to what castd casts.

Shared by the front end (to answer /start with the URL, quality and devices, and 404 on an
unknown name) and the programme (to turn a schedule entry or a playlist item into a page).
Precedence: the request's fields, then the dashboard's (or playlist's), then the config's.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from castd.specs import split_specs
from castd.config import Config, Dashboard, Playlist
from castd.protocol import Mode, PageOverrides
from castd.sharing import Sharing

Then = Literal["stop", "resume"]


class Target(msgspec.Struct, kw_only=True, frozen=True):
    """One thing to show: a page (url), or a playlist (its items' pages, in one session)."""

    url: str = ""  # a playlist: empty (its items' URLs come from their dashboards)
    quality: str
    devices: tuple[str, ...] = ()
    mode: Mode = "hls"
    page: PageOverrides = msgspec.field(default_factory=PageOverrides)
    dashboard: str | None = None  # the named dashboard the page is
    playlist: str | None = None  # the named playlist
    sharing: Sharing = Sharing()  # the dashboard's or playlist's sharing keys (castd/sharing.py)


class UnknownName(LookupError):
    """A dashboard or playlist name that is not configured; the message lists the names there are."""


def _names(items) -> str:
    return ", ".join(item.name for item in items) or "none configured"


def find_dashboard(config: Config, name: str) -> Dashboard:
    found = config.dashboard(name)
    if found is None:
        raise UnknownName(f"no dashboard named {name!r}; dashboards: {_names(config.dashboards)}")
    return found


def find_playlist(config: Config, name: str) -> Playlist:
    found = config.playlist(name)
    if found is None:
        raise UnknownName(f"no playlist named {name!r}; playlists: {_names(config.playlists)}")
    return found


def dashboard_page(board: Dashboard) -> PageOverrides:
    return PageOverrides(zoom=board.zoom, reload_seconds=board.reload_seconds, ready_selector=board.ready_selector)


def _devices(device: str | list[str]) -> tuple[str, ...]:
    return tuple(split_specs(device))


def dashboard_target(config: Config, name: str, *, quality: str | None = None,
                     devices: tuple[str, ...] | None = None) -> Target:
    board = find_dashboard(config, name)
    if devices is None:
        devices = _devices(board.device) if board.device is not None else tuple(config.default_devices())
    return Target(url=board.url, quality=quality or board.quality or config.quality, devices=devices,
                  page=dashboard_page(board), dashboard=board.name, sharing=board.sharing())


def playlist_target(config: Config, name: str, *, quality: str | None = None,
                    devices: tuple[str, ...] | None = None) -> Target:
    playlist = find_playlist(config, name)
    first = find_dashboard(config, playlist.items[0].dashboard)
    if devices is None:
        for source in (playlist.device, first.device):
            if source is not None:
                devices = _devices(source)
                break
        else:
            devices = tuple(config.default_devices())
    return Target(quality=quality or playlist.quality or first.quality or config.quality, devices=devices,
                  playlist=playlist.name, sharing=playlist.sharing().over(first.sharing()))
