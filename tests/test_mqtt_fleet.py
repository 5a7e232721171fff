"""A fleet: three castd instances (own ports, runtime dirs, node ids) on one real Mosquitto broker.

A group start reaches all three; each one's state and availability are right; the broker stopped and
started again during a stream (castd keeps streaming, reconnects, announces itself again); one castd
killed is marked offline by its last will, and is online again when restarted. Sessions are stream-only.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from broker import Mosquitto, Watcher, mqtt_env
from helpers import Daemon, wait_for

NODES = ("tv_a", "tv_b", "tv_c")


def base(node: str) -> str:
    return f"castd/{node}"


def member(broker: Mosquitto, node: str, runtime_dir) -> Daemon:
    return Daemon(runtime_dir=runtime_dir, env_extra=mqtt_env(broker, node, groups="shop", keepalive="10",
                                                               snapshot_seconds="0"))


@pytest.fixture(scope="module")
def fleet(broker, ha, tmp_path_factory):
    daemons = {node: member(broker, node, tmp_path_factory.mktemp(node) / "run").start() for node in NODES}
    for node in NODES:
        ha.wait(f"{base(node)}/availability", lambda m: m.payload == b"online")
    yield daemons
    for d in daemons.values():
        d.finish()


def state(ha: Watcher, node: str, predicate, timeout: float = 60.0, after: float = 0.0) -> dict:
    return ha.wait(f"{base(node)}/state", lambda m: predicate(m.json()), timeout=timeout, after=after).json()


def group_start(ha: Watcher, url: str) -> float:
    t0 = time.monotonic()
    ha.publish("castd/group/shop/start", json.dumps({"url": url, "device": ""}))
    for node in NODES:
        state(ha, node, lambda s: s["state"] == "streaming" and s["url"] == url, after=t0)
    return t0


def test_a_group_start_reaches_every_member_and_each_reports_its_own_state(fleet, ha, pages):
    url = pages.url("/color/00ffff")
    group_start(ha, url)
    sessions = set()
    for node, d in fleet.items():
        status = d.status()
        assert status["state"] == "streaming" and status["url"] == url
        assert status["mqtt"]["node_id"] == node and status["mqtt"]["commands"] >= 1
        assert ha.last(f"{base(node)}/availability").payload == b"online"
        sessions.add(status["session"])
    assert len(sessions) == 3  # three castd, three sessions: nothing is shared but the broker
    discovered = {json.loads(ha.last(f"homeassistant/device/{node}/config").payload)["dev"]["ids"][0]
                  for node in NODES}
    assert discovered == {f"castd_{node}" for node in NODES}


def test_the_broker_restarting_during_a_stream_stops_nothing_and_castd_announces_itself_again(fleet, ha, pages,
                                                                                               broker):
    url = pages.url("/color/ffff00")
    group_start(ha, url)
    segments = {node: d.status()["segments"] for node, d in fleet.items()}
    broker.stop()
    for d in fleet.values():
        wait_for(lambda d=d: d.status()["mqtt"]["state"] in ("retrying", "connecting"), 30,
                 message="castd to notice the broker is gone")
    time.sleep(3)  # a few seconds without a broker, while streaming
    for node, d in fleet.items():
        status = d.status()
        assert status["state"] == "streaming" and status["segments"] > segments[node], node
        assert d.get("/health").status_code == 200
        assert status["mqtt"]["last_error"], status["mqtt"]  # why it is not connected
    restarted_at = time.monotonic()
    broker.start()  # same port, same config, no persistence: every retained message is gone
    for node, d in fleet.items():
        ha.wait(f"homeassistant/device/{node}/config", lambda m: bool(m.payload), after=restarted_at, timeout=60)
        ha.wait(f"{base(node)}/availability", lambda m: m.payload == b"online", after=restarted_at, timeout=60)
        state(ha, node, lambda s: s["state"] == "streaming" and s["url"] == url, after=restarted_at)
        mqtt = d.status()["mqtt"]
        assert mqtt["state"] == "connected" and mqtt["connects"] >= 2
        assert d.status()["session"] is not None and d.status()["state"] == "streaming"
    assert "mqtt connection lost; reconnecting" in fleet["tv_a"].log()
    t0 = time.monotonic()
    ha.publish("castd/group/shop/stop", "{}")
    for node in NODES:
        state(ha, node, lambda s: s["state"] == "idle", after=t0)


def test_a_killed_member_is_marked_offline_by_its_will_and_comes_back_online(fleet, ha, broker):
    victim = fleet["tv_b"]
    victim.record_descendants()
    t0 = time.monotonic()
    victim.process.send_signal(signal.SIGKILL)  # no chance to say goodbye: only the broker's will can
    victim.process.wait(10)
    offline = ha.wait(f"{base('tv_b')}/availability", lambda m: m.payload == b"offline", after=t0, timeout=30)
    assert offline.payload == b"offline"
    for node in ("tv_a", "tv_c"):
        assert ha.last(f"{base(node)}/availability").payload == b"online"
    victim.kill_leftovers(grace=10)
    t1 = time.monotonic()
    fleet["tv_b"] = member(broker, "tv_b", victim.runtime_dir).start()
    ha.wait(f"{base('tv_b')}/availability", lambda m: m.payload == b"online", after=t1, timeout=30)
    state(ha, "tv_b", lambda s: s["state"] == "idle", after=t1)
    assert fleet["tv_b"].status()["mqtt"]["state"] == "connected"
