"""castd as a Home Assistant device: a real Mosquitto broker, a real castd, and a paho client that plays
Home Assistant (reads the discovery message, checks it against the documented schema, renders the
templates, presses the buttons, sets the text and the select, and sees castd act).

One broker (tests/conftest.py) and one castd for the module; sessions are stream-only (no Cast device).
"""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest
from broker import Watcher, mqtt_env, retained
from hadiscovery import check, topics_of
from helpers import Daemon, wait_for
from jinja2.sandbox import ImmutableSandboxedEnvironment

NODE = "tv1"
BASE = f"castd/{NODE}"
DISCOVERY = f"homeassistant/device/{NODE}/config"


@pytest.fixture(scope="module")
def castd(broker, ha, tmp_path_factory):
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("castd-mqtt") / "run",
               env_extra={**mqtt_env(broker, NODE, groups="shop", snapshot_seconds="2"),
                          "CASTD_MAX_DURATION": "3600"}).start()
    ha.wait(f"{BASE}/availability", lambda m: m.payload == b"online")
    yield d
    d.finish()


def discovery(ha: Watcher) -> dict:
    message = ha.wait(DISCOVERY, lambda m: bool(m.payload))
    problems, expanded = check(message.topic, json.loads(message.payload))
    assert not problems, problems
    return expanded


def render(template: str, state: dict) -> str:
    """A value template as Home Assistant renders it (Jinja2, sandboxed, `value_json` = the payload)."""
    env = ImmutableSandboxedEnvironment()
    return env.from_string(template).render(value_json=state, value=json.dumps(state)).strip()


def state_now(ha: Watcher) -> dict:
    return ha.wait(f"{BASE}/state").json()


def wait_state(ha: Watcher, predicate, timeout: float = 40.0, after: float = 0.0) -> dict:
    return ha.wait(f"{BASE}/state", lambda m: predicate(m.json()), timeout=timeout, after=after).json()


def test_castd_announces_a_device_that_matches_home_assistants_documented_schema(castd, ha):
    message = retained(ha.broker, DISCOVERY)  # Home Assistant may start after castd
    assert json.loads(message.payload) == json.loads(ha.last(DISCOVERY).payload)
    payload = discovery(ha)
    device = payload["device"]
    assert device["identifiers"] == [f"castd_{NODE}"] and device["name"] == f"castd {NODE}"
    assert device["configuration_url"] == f"http://127.0.0.1:{castd.port}/"
    assert httpx.get(device["configuration_url"], timeout=10).status_code == 200  # the preview page
    assert payload["origin"]["name"] == "castd" and payload["origin"]["sw_version"]
    platforms = {cid: c["platform"] for cid, c in payload["components"].items()}
    assert {"select", "text", "image", "binary_sensor"} <= set(platforms.values())
    assert [cid for cid, p in platforms.items() if p == "button"] == ["stop", "reload"]
    assert {"state", "page_host", "fps", "restarts", "cast"} <= {c for c, p in platforms.items() if p == "sensor"}


def test_every_topic_in_the_discovery_exists_and_every_template_renders(castd, ha):
    payload = discovery(ha)
    state = state_now(ha)
    control = {f"{BASE}/{t}" for t in ("stop", "reload", "url/set", "select/set", "takeover/set", "volume/set")}
    assert ha.last(payload["availability_topic"]).payload == b"online"
    for cid, component in payload["components"].items():
        for option, topic in topics_of(component).items():
            if option == "command_topic":
                assert topic in control, (cid, topic)
            elif option in ("state_topic", "json_attributes_topic"):
                assert retained(ha.broker, topic).json() == state, (cid, topic)
            elif option == "image_topic":
                assert topic == f"{BASE}/snapshot"
            else:
                raise AssertionError(f"{cid}: unexpected topic option {option}")
        if "value_template" not in component:
            continue
        value = render(component["value_template"], state)
        platform = component["platform"]
        if platform == "binary_sensor":
            assert value in ("ON", "OFF"), (cid, value)
        if platform == "select":
            assert value in component["options"] or value == "None", (cid, value)
        if platform == "text":
            assert len(value) <= component["max"]
        if platform == "switch":
            assert value in ("ON", "OFF"), (cid, value)
        if platform == "number":
            assert value == "None" or component["min"] <= float(value) <= component["max"], (cid, value)
        if cid == "state":
            assert value == "idle" and value in component["options"]
    assert render(payload["components"]["fps"]["value_template"], state) == "0.0"


def test_state_and_availability_are_retained_and_carry_no_secrets(castd, ha):
    assert retained(ha.broker, f"{BASE}/availability").payload == b"online"
    data = retained(ha.broker, f"{BASE}/state").json()
    for private in ("session", "stream_path", "encoder_pid", "supervisor_pid"):
        assert private not in data
    mqtt = castd.status()["mqtt"]
    assert mqtt["state"] == "connected" and mqtt["node_id"] == NODE and mqtt["base_topic"] == BASE
    assert castd.get("/health").json()["mqtt"] == "connected"


def test_home_assistant_presses_and_sets_and_castd_acts(castd, ha, pages):
    green, blue = pages.url("/color/00ff00"), pages.url("/color/0000ff")
    t0 = time.monotonic()
    ha.publish(f"{BASE}/url/set", green)  # the text entity
    state = wait_state(ha, lambda s: s["state"] == "streaming" and s["url"] == green, after=t0)
    assert state["casting"] is True and state["url_host"] == "127.0.0.1"
    assert castd.status()["url"] == green
    picture = ha.wait(f"{BASE}/snapshot", after=t0, timeout=30)
    assert picture.payload[:3] == b"\xff\xd8\xff"  # a JPEG: the image entity's bytes
    # the select now offers the page, and shows it as selected
    payload = wait_for(lambda: (p := discovery(ha)) and green in p["components"]["select"]["options"] and p,
                       20, message="the select to offer the page")
    assert render(payload["components"]["select"]["value_template"], state_now(ha)) == green
    # a second page through /start, then choose the first again in the select: a switch, same session
    session = castd.status()["session"]
    castd.post("/start", json={"url": blue, "device": ""})
    wait_state(ha, lambda s: s["url"] == blue and s["state"] == "streaming")
    t1 = time.monotonic()
    ha.publish(f"{BASE}/select/set", green)
    wait_state(ha, lambda s: s["url"] == green and s["state"] == "streaming", after=t1)
    assert castd.status()["session"] == session
    # reload: the same page is requested again, in the same session
    wait_for(lambda: castd.status()["page"] == "loaded", 30, message="the switched page to load")
    hits = pages.server.RequestHandlerClass.hits.get("/color/00ff00", 0)
    ha.publish(f"{BASE}/reload", "{}")
    wait_for(lambda: pages.server.RequestHandlerClass.hits.get("/color/00ff00", 0) > hits, 20,
             message="the page to be loaded again")
    assert castd.status()["session"] == session and "session reload" in castd.log()
    # the stop button sends its payload_press
    stop = discovery(ha)["components"]["stop"]
    t2 = time.monotonic()
    ha.publish(stop["command_topic"], stop["payload_press"])
    wait_state(ha, lambda s: s["state"] == "idle" and s["casting"] is False, after=t2)
    castd.wait_state("idle", 30)
    seen = [m.json()["state"] for m in ha.on(f"{BASE}/state") if m.at >= t2]
    wait_for(lambda: ha.last(f"{BASE}/state").json()["state"] == "idle", 30,
             message=f"the last state message to say idle (seen since the press: {seen})")


BAD_STARTS = [
    b"not json",
    b"[]",
    b"{}",
    b'{"url": "ftp://example.com/"}',
    b'{"url": "http://127.0.0.1:1/", "quality": "8k"}',
    b'{"url": "http://127.0.0.1:1/", "duration": 999999}',
    b'{"url": "http://127.0.0.1:1/", "bogus": 1}',
    b'{"url": "http://127.0.0.1:1/", "zoom": 99}',
    b'{"url": "http://user:pw@127.0.0.1:1/"}',
    b'{"url": "http://127.0.0.1:1/", "mode": "direct", "device": ""}',
    b'{"url": ' + b"[" * 20 + b"]" * 20 + b"}",
    b"\xff\xfe",
]


def test_a_bad_start_gets_the_same_answer_as_over_http(castd, ha):
    for body in BAD_STARTS:
        http = castd.post("/start", content=body, headers={"Content-Type": "application/json"})
        assert http.status_code == 400, (body, http.text)
        t0 = time.monotonic()
        ha.publish(f"{BASE}/start", body)
        error = ha.wait(f"{BASE}/error", lambda m: m.json()["topic"] == f"{BASE}/start", after=t0).json()
        assert error["status"] == http.status_code and error["error"] == http.json()["error"], body
    assert castd.status()["state"] == "idle"


def test_a_retained_control_message_is_refused_not_replayed(broker, ha, tmp_path):
    """A start left retained on the broker reaches castd with retain=1 at every (re)connect; obeying it
    would start the page again each time. castd refuses it on the error topic instead."""
    node = "retained"
    ha.publish(f"castd/{node}/start", json.dumps({"url": "http://127.0.0.1:1/x", "device": ""}), retain=True)
    t0 = time.monotonic()
    d = Daemon(runtime_dir=tmp_path / "run", env_extra=mqtt_env(broker, node))
    try:
        d.start()
        error = ha.wait(f"castd/{node}/error", after=t0).json()
        assert error["status"] == 400 and "retained" in error["error"], error
        assert d.status()["state"] == "idle" and d.status()["mqtt"]["rejected"] == 1
    finally:
        ha.publish(f"castd/{node}/start", "", retain=True)
        d.finish()


def test_1000_garbage_messages_are_each_answered_and_change_nothing(castd, ha, pages):
    url = pages.url("/color/ff00ff")
    castd.post("/start", json={"url": url, "device": ""})
    before = wait_state(ha, lambda s: s["state"] == "streaming" and s["url"] == url)
    session, pid = castd.status()["session"], castd.process.pid
    rejected = castd.status()["mqtt"]["rejected"]
    rng = random.Random(13)
    topics = [f"{BASE}/{t}" for t in ("start", "stop", "reload", "url/set", "select/set")] + \
        ["castd/group/shop/start", "castd/group/shop/stop"]
    t0 = time.monotonic()
    for batch in range(10):  # in batches of 100: a loaded machine must not make the broker's queues overflow
        for i in range(batch * 100, batch * 100 + 100):
            topic = topics[i % len(topics)]
            ha.client.publish(topic, garbage(rng, topic), qos=0)
        try:
            wait_for(lambda n=batch * 100 + 100: len([m for m in ha.on(f"{BASE}/error") if m.at >= t0]) >= n, 90,
                     message=f"{batch * 100 + 100} answers on the error topic")
        except AssertionError as exc:  # say where they were lost: castd's count tells broker from castd
            raise AssertionError(f"{exc}; castd refused {castd.status()['mqtt']['rejected'] - rejected}") from None
    errors = [m for m in ha.on(f"{BASE}/error") if m.at >= t0]
    assert len(errors) == 1000
    assert all(e.json()["status"] in (400, 413) and e.json()["error"] for e in errors)
    status = castd.status()
    assert castd.process.poll() is None and castd.process.pid == pid
    assert status["session"] == session and status["url"] == url and status["state"] == "streaming"
    assert status["mqtt"]["rejected"] == rejected + 1000 and status["mqtt"]["state"] == "connected"
    assert castd.get("/health").status_code == 200
    assert before["url"] == state_now(ha)["url"]
    castd.post("/stop")
    castd.wait_state("idle")


def garbage(rng: random.Random, topic: str) -> bytes:
    """A message that no check may accept on `topic` (random, but invalid by construction)."""
    kind = rng.randrange(6)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) + b"\xff"  # not UTF-8
    if kind == 1:
        return b"{" * rng.randrange(20, 200)  # not JSON, too deep
    if kind == 2:
        return json.dumps({"url": f"javascript:{rng.random()}", "junk": [1, 2, 3]}).encode()
    if kind == 3:
        return json.dumps({"unknown_field": rng.random()}).encode()
    if kind == 4:
        return b"x" * (70 * 1024)  # over max_body_bytes
    return "".join(rng.choice("abc def;<>\"'\\") for _ in range(rng.randrange(1, 60))).encode() + b" not a url"


def test_the_takeover_switch_and_the_volume_number_are_kept_retained_and_shown(castd, ha):
    """Settings, not actions: Home Assistant retains them (`retain` in the discovery) and castd takes a retained
    one, unlike a retained start; a bad value is refused on the error topic and changes nothing."""
    t0 = time.monotonic()
    ha.publish(f"{BASE}/takeover/set", "ON", retain=True)
    ha.publish(f"{BASE}/volume/set", "35", retain=True)
    state = wait_state(ha, lambda s: s["takeover"] == "when-idle" and s["volume"] == 35, after=t0)
    components = discovery(ha)["components"]
    assert render(components["takeover"]["value_template"], state) == "ON"
    assert render(components["volume"]["value_template"], state) == "35"
    t1 = time.monotonic()
    ha.publish(f"{BASE}/volume/set", "loud")
    error = ha.wait(f"{BASE}/error", after=t1).json()
    assert error["status"] == 400 and "volume" in error["error"]
    assert state_now(ha)["volume"] == 35
    for topic in ("takeover/set", "volume/set"):  # clear the retained settings for the next test
        ha.publish(f"{BASE}/{topic}", "", retain=True)
    t2 = time.monotonic()
    ha.publish(f"{BASE}/takeover/set", "OFF")
    ha.publish(f"{BASE}/volume/set", "None")
    wait_state(ha, lambda s: s["takeover"] == "always" and s["volume"] is None, after=t2)
