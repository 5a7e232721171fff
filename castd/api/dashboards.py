"""GET /dashboards: the names /start takes (dashboards, playlists, cameras) and the schedules, from the config.

What a Home Assistant select or a phone shortcut offers; URLs are shown with secret-looking query
values masked, like everywhere else.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from castd.api.errors import json_response
from castd.api.schemas import (CameraInfo, DashboardInfo, DashboardsResponse, PlaylistInfo, PlaylistItemInfo,
                               ScheduleInfo)
from castd.config import Config, masked_url
from castd.logs import scrub
from castd.programme import schedule
from castd.programme.targets import dashboard_target, playlist_target


def listing(config: Config, now: float) -> DashboardsResponse:
    window = schedule.active(config.schedules, now)
    return DashboardsResponse(
        dashboards=[DashboardInfo(name=board.name, url=scrub(board.url), quality=target.quality,
                                  devices=list(target.devices))
                    for board in config.dashboards for target in [dashboard_target(config, board.name)]],
        cameras=[CameraInfo(name=name, url=scrub(masked_url(camera.url)), transport=camera.transport,
                            snapshot=bool(camera.snapshot_url))
                 for name, camera in config.cameras.items()],
        playlists=[PlaylistInfo(name=p.name, items=[PlaylistItemInfo(dashboard=i.dashboard, seconds=i.seconds)
                                                    for i in p.items],
                                loop=p.loop, quality=target.quality, devices=list(target.devices))
                   for p in config.playlists for target in [playlist_target(config, p.name)]],
        schedules=[ScheduleInfo(name=entry.name or f"schedule {i + 1}", days=entry.days or ["daily"],
                                start=entry.start, end=entry.end, timezone=entry.zone(),
                                dashboard=entry.dashboard or None, playlist=entry.playlist or None,
                                active=window is not None and window.entry == i)
                   for i, entry in enumerate(config.schedules)],
        schedule_override=config.schedule_override)


async def dashboards(request: Request) -> Response:
    return json_response(listing(request.app.state.config, time.time()))
