"""The real cast worker child: castd/cast/worker.py spawned on a Pipe (pychromecast is imported in the
worker only: the supervisor process never loads it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from castd.cast.messages import event_decoder
from castd.children.piped import PipedChild
from castd.config import Config


def _worker_main(conn: Any, config_bytes: bytes) -> None:
    from castd.cast import worker  # pychromecast stays in the worker

    worker.main(conn, config_bytes)


class CastProcess(PipedChild):
    def __init__(self, config: Config, clock: Callable[[], float]) -> None:
        super().__init__(_worker_main, msgspec.msgpack.encode(config), "castd-cast", event_decoder, clock)
