"""The supervisor's handle on the cast worker process: spawn, talk, end (with its whole group)."""

from __future__ import annotations

import msgspec

from castd.cast.messages import CastQuit, event_decoder
from castd.config import Config
from castd.supervisor.piped_child import PipedChild


def _worker_main(conn, config_bytes: bytes) -> None:
    """Imports pychromecast in the worker only (the supervisor stays without it)."""
    from castd.cast import worker  # pylint: disable=import-outside-toplevel

    worker.main(conn, config_bytes)


class CastProcess(PipedChild):
    END_GRACE = 3.0  # stopping media on the TVs may take a round trip or two

    def __init__(self, config: Config) -> None:
        super().__init__(_worker_main, msgspec.msgpack.encode(config), "castd-cast", event_decoder, CastQuit())
