import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import Daemon, PageServer  # noqa: E402


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
    d.finish()


@pytest.fixture
def idle_daemon(daemon):
    """The module's daemon, stopped and idle before the test."""
    daemon.post("/stop")
    daemon.wait_state("idle")
    return daemon
