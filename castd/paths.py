"""Where castd's files and URLs live: one definition for the front end, the supervisor, the encoder and the
cast worker (the shared layer: it imports nothing of castd).

Under the runtime folder (config runtime_dir): `sessions/<session>/` holds a session's HLS files and its
preview picture, `logs/<random>/` the output of one encoder's Chromium and Xvfb. A session's stream is
served at /stream/<session>/index.m3u8, and a TV reaches it at stream_base + that path.
"""

from __future__ import annotations

from pathlib import Path

MASTER_PLAYLIST = "index.m3u8"
SNAPSHOT_NAME = "snapshot.jpg"


def sessions_dir(runtime_dir: Path) -> Path:
    return runtime_dir / "sessions"


def logs_dir(runtime_dir: Path) -> Path:
    return runtime_dir / "logs"


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
