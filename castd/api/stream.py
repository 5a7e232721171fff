"""GET /stream/<session>/<file>: the live playlists and segments of the current session only."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response

from castd.api.errors import error_response

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(m3u8|ts|m4s|mp4)$")
_SESSION = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
CONTENT_TYPES = {"m3u8": "application/vnd.apple.mpegurl", "ts": "video/mp2t", "m4s": "video/iso.segment",
                 "mp4": "video/mp4"}
CORS = {"Access-Control-Allow-Origin": "*"}


async def stream_file(request: Request) -> Response:
    session = request.path_params["session"]
    name = request.path_params["name"]
    status = request.app.state.supervisor.status
    match = _NAME.match(name)
    if (not _SESSION.match(session) or match is None or session != status.session
            or status.state in ("idle", "failed")):
        return error_response(404, "no such stream (the session may have ended)", CORS)
    folder: Path = request.app.state.sessions_dir / session
    try:
        data = await anyio.Path(folder / name).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return error_response(404, "not written yet or already removed", CORS)
    kind = match.group(1)
    cache = "no-cache, no-store" if kind == "m3u8" else "public, max-age=60"
    return Response(data, media_type=CONTENT_TYPES[kind], headers={**CORS, "Cache-Control": cache})


async def stream_options(request: Request) -> Response:
    return Response(status_code=204, headers={**CORS, "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                                              "Access-Control-Allow-Headers": "*"})
