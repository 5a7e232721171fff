"""GET /stream/<session>/<file>: the live playlists and segments of the current session only.

Open to anyone who knows the session id (128 random bits), so: names are matched against a strict
pattern (no separators, no dots but the extension), only the current session answers, and only
plain files directly in its folder are served: a symlink there, or in place of the folder, is a 404.

In a stream format with blocking reload (presets.py `block_reload`: "hls-fast-parts"), a media playlist
request with `_HLS_msn` (and `_HLS_part`) is held until that is listed (RFC 8216bis 6.2.5.2: api/blocking.py);
in the others the directives are ignored, as a server that does not declare CAN-BLOCK-RELOAD may, and a
request may wait for a fresh edge instead (api/freshedge.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import time
from pathlib import Path

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from castd.api.blocking import (AHEAD_LIMIT, HOLD_LIMIT, POLL, BadDirective, PlaylistWatch, last_msn,
                                requested_msn)
from castd.api.errors import error_response
from castd.api.freshedge import FreshEdge
from castd.paths import MEDIA_PLAYLIST
from castd.presets import STREAM_FORMATS

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
    shape = STREAM_FORMATS.get(status.stream_format or "")
    blocking = name == MEDIA_PLAYLIST and shape is not None and shape.block_reload and "_HLS_" in request.url.query
    if name == MEDIA_PLAYLIST and shape is not None and not blocking:
        await wait_for_fresh(folder / name, FreshEdge(shape.segment_seconds))
    try:
        data = await anyio.to_thread.run_sync(read_plain_file, folder, name)
    except OSError:  # missing, removed, or not a plain file (symlinks refused)
        return error_response(404, "not written yet or already removed", CORS)
    if blocking:
        held = await _held(request, folder, name, data)
        if isinstance(held, Response):
            return held
        data = held
    kind = match.group(1)
    cache = "no-cache, no-store" if kind == "m3u8" else "public, max-age=60"
    return Response(data, media_type=CONTENT_TYPES[kind], headers={**CORS, "Cache-Control": cache})


async def _held(request: Request, folder: Path, name: str, data: bytes) -> bytes | Response:
    """The playlist once it lists what `_HLS_msn` / `_HLS_part` ask for (a blocking reload), or the error to send."""
    try:
        msn = requested_msn(request.query_params)
    except BadDirective as exc:
        return error_response(400, str(exc), CORS)
    text = data.decode()
    last = last_msn(text)
    if msn is None or last >= msn:
        return data
    if msn > last + AHEAD_LIMIT:
        return error_response(400, f"_HLS_msn asks for segment {msn}, more than {AHEAD_LIMIT} past the last one "
                              f"listed ({last}): RFC 8216bis 6.2.5.2", CORS)

    async def read() -> str | None:
        try:
            return (await anyio.to_thread.run_sync(read_plain_file, folder, name)).decode()
        except OSError:
            return None

    watch: PlaylistWatch = request.app.state.playlist_watch
    listed: str | None = None
    try:
        async with asyncio.timeout(HOLD_LIMIT):
            listed = await watch.wait_listed(folder / name, msn, read)
    except TimeoutError:
        pass
    status = request.app.state.supervisor.status
    if status.session != request.path_params["session"] or status.state in ("idle", "failed"):
        return error_response(404, "no such stream (the session ended)", CORS)
    if listed is None:
        return error_response(503, f"segment {msn} was not listed within {HOLD_LIMIT:g} s (three target "
                              "durations): RFC 8216bis 6.2.5.2", CORS)
    return listed.encode()


async def wait_for_fresh(path: Path, edge: FreshEdge) -> None:
    """Return once the media playlist is rewritten (a segment listed) or the hold FreshEdge allows is over;
    at once when the playlist is fresh, missing or stopped (freshedge.py has why and the numbers)."""
    try:
        seen = os.stat(path)  # written by os.replace: a new inode each time, its mtime the listing's moment
    except OSError:
        return
    listed = (seen.st_ino, seen.st_mtime_ns)
    deadline = time.monotonic() + edge.hold(time.time() - seen.st_mtime_ns / 1e9)
    while time.monotonic() < deadline:
        await anyio.sleep(POLL)
        try:
            now = os.stat(path)
        except OSError:
            return
        if (now.st_ino, now.st_mtime_ns) != listed:
            return


def read_plain_file(folder: Path, name: str) -> bytes:
    """The bytes of folder/name, refusing symlinks (as the folder or the file) and anything not a file."""
    if not stat.S_ISDIR(os.lstat(folder).st_mode):
        raise NotADirectoryError(str(folder))
    fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(name)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


async def stream_options(request: Request) -> Response:
    return Response(status_code=204, headers={**CORS, "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                                              "Access-Control-Allow-Headers": "*"})
