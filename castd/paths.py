"""Where castd's files and URLs live: one definition for the front end, the supervisor, the encoder and the
cast worker (the shared layer: it imports nothing of castd).

Under the runtime folder (config runtime_dir): `sessions/<session>/` holds a session's HLS files and its
preview picture, `logs/<random>/` the output of one encoder's Chromium and Xvfb, `tmp/<random>/` the
$TMPDIR of one encoder's tree (Chromium's profile and its `org.chromium.Chromium.*` folders). A session's stream is
served at /stream/<session>/index.m3u8, and a TV reaches it at stream_base + that path.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

MASTER_PLAYLIST = "index.m3u8"
MEDIA_PLAYLIST = "stream.m3u8"  # what the master lists; the front end holds a request for it (api/freshedge.py)
SNAPSHOT_NAME = "snapshot.jpg"


def sessions_dir(runtime_dir: Path) -> Path:
    return runtime_dir / "sessions"


def logs_dir(runtime_dir: Path) -> Path:
    return runtime_dir / "logs"


# Chromium puts a socket at $TMPDIR/org.chromium.Chromium.scoped_dir.XXXXXX/SingletonSocket, and a Unix
# socket's path has room for 107 bytes: measured, Chromium starts with a 60-character $TMPDIR and not with
# a 70-character one. A runtime folder too deep for that (a test's tmp_path) gets its encoders' $TMPDIR
# in a short folder of the system's temp dir instead, named after the runtime folder (so each castd sweeps
# only its own).
TMP_DIR_MAX = 52


def tmp_root(runtime_dir: Path) -> Path:
    """The folder holding one `<random>/` $TMPDIR per encoder child (12 characters are added)."""
    inside = runtime_dir / "tmp"
    if len(str(inside.absolute())) + 13 <= TMP_DIR_MAX:
        return inside
    tag = hashlib.sha1(str(runtime_dir.absolute()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"castd-{tag}"


def stream_path(session: str) -> str:
    """The URL path of a session's master playlist."""
    return f"/stream/{session}/{MASTER_PLAYLIST}"


def configured_stream_base(stream_host: str, port: int) -> str:
    """`http://host:port` from the config's stream_host: a name or IPv4 address with or without a port,
    `[v6]` or `[v6]:port`, or a bare IPv6 address (bracketed here); castd's port where none is given."""
    host = stream_host
    if host.startswith("["):
        has_port = "]:" in host
    elif host.count(":") > 1:  # a bare IPv6 address
        host, has_port = f"[{host}]", False
    else:
        has_port = ":" in host
    return f"http://{host}" if has_port else f"http://{host}:{port}"
