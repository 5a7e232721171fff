import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from broker import Mosquitto, Watcher  # noqa: E402
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


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """One real Mosquitto for a test module (anonymous logins, no persistence); stopped at its end."""
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def ha(broker):
    """The module's Home Assistant: a paho client on the module's broker, subscribed to every topic from
    before any castd starts, so it holds every message castd ever sent there."""
    w = Watcher(broker, "#")
    yield w
    w.close()
