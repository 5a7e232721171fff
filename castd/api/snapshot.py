"""GET /snapshot.jpg: the latest picture of the current session (a Home Assistant camera can poll it).

The encoder child writes it about once a second into the session folder; this only serves the
file of the session that is running now, and a 404 JSON error when there is none.
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response

from castd.api.errors import error_response
from castd.paths import SNAPSHOT_NAME
from castd.protocol import LIVE_STATES



async def snapshot(request: Request) -> Response:
    status = request.app.state.supervisor.status
    if status.session is None or status.state not in LIVE_STATES:
        return error_response(404, "nothing is being cast right now")
    path = request.app.state.sessions_dir / status.session / SNAPSHOT_NAME
    try:
        data = await anyio.Path(path).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return error_response(404, "no picture yet; the session is starting")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
