"""The tests' helpers (tests/helpers.py: the Daemon runner, the page server, HLS decoding; tests/glass: Shaka
Player in headless Chromium, the receiver's view), reused
here rather than copied, so the bench drives castd exactly the way the tests do."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from broker import Mosquitto, Watcher, mqtt_env  # noqa: E402
from fakecast import FakeCastDevice  # noqa: E402
from glass import LINES, ShakaPlayer  # noqa: E402
from headless import headless_chromium  # noqa: E402
from helpers import (Daemon, PageHandler, PageServer, close_to, fetch_segment, free_port, open_segment,  # noqa: E402
                     segment_urls, still_alive, wait_for)

__all__ = ["LINES", "FakeCastDevice", "ShakaPlayer", "headless_chromium", "Mosquitto", "Watcher", "mqtt_env",
           "Daemon", "PageHandler", "PageServer", "close_to", "fetch_segment", "free_port", "open_segment",
           "segment_urls", "still_alive", "wait_for"]
