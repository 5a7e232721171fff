import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import Daemon, PageServer, still_alive  # noqa: E402


@pytest.fixture(scope="session")
def pages():
    server = PageServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """One real castd for a test module (starting Chromium is the slow part; reuse it)."""
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("castd") / "run").start()
    yield d
    d.stop()
    # multiprocessing's resource tracker notices castd is gone and exits by itself, which on a
    # loaded machine can take a moment after castd's own exit: give stragglers a few seconds
    deadline = time.monotonic() + 5
    while still_alive(d.seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = d.kill_leftovers()
    assert not left, f"processes outlived castd: {left}"


@pytest.fixture
def idle_daemon(daemon):
    """The module's daemon, stopped and idle before the test."""
    daemon.post("/stop")
    daemon.wait_state("idle")
    return daemon
