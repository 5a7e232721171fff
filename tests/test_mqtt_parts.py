"""castd/mqtt/'s pure parts, without a broker: the state plan, the command checks, the discovery payload
against Home Assistant's documented schema, the [mqtt] config."""

from __future__ import annotations

import json

import msgspec
import pytest
from hadiscovery import check
from jinja2.sandbox import ImmutableSandboxedEnvironment

from castd.config import Config, ConfigError, load_config
from castd.mqtt.commands import Refusal, interpret
from castd.mqtt.discovery import component_key, discovery_payload
from castd.mqtt.settings import MqttSettings
from castd.mqtt.state import REFRESH_SECONDS, StatePlan, state_payload
from castd.mqtt.topics import Inbound, Topics
from castd.protocol import CastDevice, CastSection, Reload, Start, Status, Stop
from castd.urls import Allowlist


def streaming(**kw) -> Status:
    fields = dict(state="streaming", session="S3CRET-session", url="http://ha.local:8123/lovelace/0?token=abc",
                  stream_path="/stream/S3CRET-session/index.m3u8", frames=10, fps=9.9, segments=2)
    fields.update(kw)
    return Status(**fields)


def test_the_state_payload_has_no_session_no_stream_path_and_scrubbed_urls():
    status = streaming(cast=CastSection(devices=[CastDevice(device="Living Room TV", state="playing",
                                                            stream_url="http://x/stream/S3CRET-session/")]))
    payload = state_payload(status, selected=None)
    text = json.dumps(payload)
    assert "S3CRET" not in text and "abc" not in text
    assert payload["url_host"] == "ha.local" and payload["casting"] is True
    assert payload["cast_states"] == {"Living Room TV": "playing"}


def test_a_retrying_session_says_so_and_why_on_the_state_topic():
    status = streaming(state="retrying", fps=0.0, retry_at=1_700_000_060.0, retries=2,
                       last_error="encoder exited with code 1 (crashed): net::ERR_CONNECTION_REFUSED at "
                                  "http://ha.local/?token=abc; gave up after 4 restarts; retrying in 120s")
    payload = state_payload(status)
    assert payload["state"] == "retrying" and payload["retry_at"] == 1_700_000_060.0 and payload["retries"] == 2
    assert "ERR_CONNECTION_REFUSED" in payload["last_error"] and "abc" not in json.dumps(payload)
    assert StatePlan().decide(0.0, payload)
    settings = MqttSettings(host="b")
    component = discovery_payload(settings, Topics.of(settings), version="0", configuration_url="http://pi/",
                                  options=[], select_name="Recent page", devices=[])
    state = next(c for c in component["cmps"].values() if c.get("dev_cla") == "enum")
    assert "retrying" in state["ops"], "Home Assistant's enum sensor knows the state"


def test_state_goes_out_when_something_a_person_sees_changes_and_counters_only_every_refresh():
    plan = StatePlan()
    first = state_payload(streaming())
    assert plan.decide(0.0, first)
    plan.sent(0.0, first)
    assert not plan.decide(0.5, first)  # the same snapshot again
    counted = state_payload(streaming(frames=20, fps=10.1, segments=3))
    assert not plan.decide(1.0, counted)  # only counters moved: not yet
    assert plan.decide(REFRESH_SECONDS + 0.1, counted)  # ... but they do go out after a while
    assert plan.decide(1.0, state_payload(streaming(url="http://other/")))  # a new page: at once
    assert plan.decide(1.0, state_payload(streaming(state="failed")))
    plan.forget()
    assert plan.decide(1.0, first)  # a new connection publishes again


CONFIG = Config(max_duration=600)
ALLOW = Allowlist.parse([])


@pytest.mark.parametrize("kind,payload,expected", [
    (Inbound.START, b'{"url": "http://a.b/", "device": ""}', Start),
    (Inbound.START, b'{"url": "http://a.b/", "duration": 9999}', Refusal),
    (Inbound.START, b"x" * 70000, Refusal),
    (Inbound.STOP, b"", Stop),
    (Inbound.STOP, b"{}", Stop),
    (Inbound.STOP, b"PRESS", Refusal),
    (Inbound.RELOAD, b"{}", Reload),
    (Inbound.URL, b"http://a.b/page", Start),
    (Inbound.URL, b"javascript:alert(1)", Refusal),
    (Inbound.URL, b"\xff", Refusal),
    (Inbound.SELECT, b"http://a.b/known", Start),
    (Inbound.SELECT, b"http://a.b/unknown", Refusal),
])
def test_a_control_message_becomes_the_http_apis_command_or_its_error(kind, payload, expected):
    result = interpret(kind, payload, CONFIG, ALLOW, options=["http://a.b/known"])
    assert isinstance(result, expected), result
    if isinstance(result, Refusal):
        assert 400 <= result.status < 500 and result.message


def test_an_allowlist_refusal_is_a_403_as_over_http():
    result = interpret(Inbound.URL, b"http://evil.example/", CONFIG, Allowlist.parse(["http://ha.local:8123"]), [])
    assert result == Refusal(403, "url: not on castd's allowlist (allowlist in config)")


def test_the_discovery_payload_passes_the_schema_check_with_devices_and_without_control():
    for control in ("always", "never"):
        settings = MqttSettings(host="b", node_id="pi-kitchen", control=control)
        topics = Topics.of(settings)
        payload = discovery_payload(settings, topics, version="0.1.0", configuration_url="http://pi:8765/",
                                    options=["http://a/1", "http://a/2"], select_name="Recent page",
                                    devices=["Living Room TV", "192.168.1.30:8009", "living room tv"])
        problems, expanded = check(topics.discovery, json.loads(json.dumps(payload)))
        assert not problems, problems
        cmps = expanded["components"]
        assert ("stop" in cmps) == (control == "always")
        cast_keys = sorted(k for k in cmps if k.startswith("cast_"))
        assert cast_keys == ["cast_192_168_1_30_8009", "cast_living_room_tv", "cast_living_room_tv_"]
        env = ImmutableSandboxedEnvironment()
        state = state_payload(streaming(cast=CastSection(devices=[CastDevice(device="Living Room TV",
                                                                             state="playing")])))
        assert env.from_string(cmps["cast_living_room_tv"]["value_template"]).render(value_json=state) == "playing"
        assert env.from_string(cmps["cast_192_168_1_30_8009"]["value_template"]).render(value_json=state) == "idle"
        assert env.from_string(cmps["cast"]["value_template"]).render(value_json=state) == "playing"


def test_the_schema_check_catches_what_home_assistant_would_silently_ignore_or_refuse():
    settings = MqttSettings(host="b", node_id="n", control="always")
    topics = Topics.of(settings)
    good = discovery_payload(settings, topics, version="1", configuration_url="http://h/", options=[],
                             select_name="x", devices=[])
    bad = json.loads(json.dumps(good))
    bad["cmps"]["state"]["stat_topic"] = bad["cmps"]["state"].pop("stat_t")  # a typo
    bad["cmps"]["fps"]["uniq_id"] = bad["cmps"]["state"]["uniq_id"]  # a duplicate
    del bad["cmps"]["select"]["ops"]
    del bad["o"]
    problems, _ = check(topics.discovery, bad)
    text = "\n".join(problems)
    for expected in ("unknown key 'stat_topic'", "used twice", "select needs ['options']", "origin (o) is required"):
        assert expected in text, text
    assert check("homeassistant/sensor/n/config", good)[0]  # not the device topic


def test_control_topics_are_off_by_default_until_castd_logs_in_or_control_is_always():
    anonymous = MqttSettings(host="b")
    assert anonymous.control == "with-login" and not anonymous.accepts_control()
    assert "mqtt.username" in anonymous.control_off_because() and "always" in anonymous.control_off_because()
    payload = discovery_payload(anonymous, Topics.of(anonymous), version="0", configuration_url="http://pi/",
                                options=[], select_name="Recent page", devices=[])
    assert "stop" not in payload["cmps"] and "url" not in payload["cmps"], "no buttons that do nothing"
    assert MqttSettings(host="b", username="castd").accepts_control()
    assert MqttSettings(host="b", control="always").control_off_because() is None
    assert MqttSettings(host="b", username="castd", control="never").control_off_because() == "mqtt.control is never"
    assert load_config(None, environ={"CASTD_CONFIG": "", "CASTD_MQTT_HOST": "b",
                                             "CASTD_MQTT_CONTROL": "always"}).mqtt.accepts_control()


def test_component_keys_are_home_assistant_ids():
    assert component_key("Wohnzimmer Fernseher (oben)") == "wohnzimmer_fernseher_oben"
    assert component_key("⚡") == "device"


def test_the_mqtt_table_is_checked_at_start_up(tmp_path):
    config = tmp_path / "castd.toml"
    config.write_text('[mqtt]\nhost = "broker.lan"\nusername = "castd"\npassword = "pw"\ngroups = ["shop"]\n')
    config.chmod(0o600)
    loaded = load_config(config, environ={"CASTD_MQTT_NODE_ID": "tv1"})
    assert loaded.mqtt.host == "broker.lan" and loaded.mqtt.node_id == "tv1" and loaded.mqtt.groups == ["shop"]
    assert loaded.mqtt.resolved_base_topic() == "castd/tv1" and loaded.mqtt.resolved_port() == 1883
    config.chmod(0o644)  # a password in a file every user can read
    with pytest.raises(ConfigError, match="holds secrets"):
        load_config(config, environ={})
    for env, message in ((({"CASTD_MQTT_NODE_ID": "a/b"}), "mqtt.node_id"),
                         (({"CASTD_MQTT_BASE_TOPIC": "castd/#"}), "mqtt.base_topic"),
                         (({"CASTD_MQTT_CONTROL": "sometimes"}), "mqtt.control"),
                         (({"CASTD_MQTT_CA_FILE": "/x.pem"}), "mqtt.ca_file")):
        with pytest.raises(ConfigError, match=message):
            load_config(None, environ={"CASTD_CONFIG": "", **env})


def test_the_readmes_discovery_message_is_what_castd_sends():
    from helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("### The discovery message"):]
    shown = json.loads(block[block.index("```json\n") + 8:block.index("\n```", block.index("```json"))])
    settings = MqttSettings(host="homeassistant.local", node_id="living_room", username="castd", password="x")
    sent = discovery_payload(settings, Topics.of(settings), version=shown["o"]["sw"],
                             configuration_url="http://castd-living.local:8765/",
                             options=["http://homeassistant.local:8123/lovelace/0?kiosk",
                                      "http://homeassistant.local:8123/dashboard-cameras/0?kiosk"],
                             select_name="Recent page", devices=["Living Room TV"])
    assert shown == json.loads(json.dumps(sent))


def test_with_dashboards_the_select_starts_them_by_name_and_refuses_others_like_http():
    config = msgspec.convert({"dashboards": [{"name": "kitchen", "url": "http://ha.local:8123/kitchen"}]}, Config)
    started = interpret(Inbound.SELECT, b"kitchen", config, ALLOW, options=["kitchen"])
    assert isinstance(started, Start) and started.dashboard == "kitchen" and started.url == "http://ha.local:8123/kitchen"
    refused = interpret(Inbound.SELECT, b"garage", config, ALLOW, options=["kitchen"])
    assert refused == Refusal(404, "no dashboard named 'garage'; dashboards: kitchen")


def test_the_takeover_switch_and_volume_number_are_settings_for_starts_from_mqtt():
    from castd.mqtt.commands import Setting
    from castd.sharing import Sharing

    on = interpret(Inbound.TAKEOVER, b"ON", CONFIG, ALLOW, options=[])
    assert isinstance(on, Setting) and on.sharing == Sharing(takeover="when-idle")
    loud = interpret(Inbound.VOLUME, b"35.0", CONFIG, ALLOW, options=[], sharing=on.sharing)
    assert isinstance(loud, Setting) and loud.sharing == Sharing(takeover="when-idle", volume=35)
    assert interpret(Inbound.VOLUME, b"None", CONFIG, ALLOW, options=[], sharing=loud.sharing).sharing.volume is None
    for kind, payload in ((Inbound.VOLUME, b"101"), (Inbound.VOLUME, b"loud"), (Inbound.TAKEOVER, b"maybe")):
        refused = interpret(kind, payload, CONFIG, ALLOW, options=[])
        assert isinstance(refused, Refusal) and refused.status == 400 and kind.value in refused.message
    # a start from Home Assistant gets the settings where its own JSON sets nothing
    start = interpret(Inbound.START, b'{"url": "http://a.b/", "takeover": "always"}', CONFIG, ALLOW, options=[],
                      sharing=loud.sharing)
    assert isinstance(start, Start) and start.sharing == Sharing(takeover="always", volume=35)
    picked = interpret(Inbound.URL, b"http://a.b/page", CONFIG, ALLOW, options=[], sharing=loud.sharing)
    assert isinstance(picked, Start) and picked.sharing == loud.sharing
    payload = state_payload(streaming(cast=CastSection(devices=[CastDevice(device="tv", state="waiting",
                                                                           app="Netflix", volume=20)])),
                            sharing=loud.sharing)
    assert (payload["takeover"], payload["volume"]) == ("when-idle", 35)
    assert payload["cast"]["devices"][0]["app"] == "Netflix" and payload["cast"]["devices"][0]["volume"] == 20
    settings = MqttSettings(host="b", node_id="n", control="always")  # control entities need control on
    discovery = discovery_payload(settings, Topics.of(settings), version="1", configuration_url="http://h/",
                                  options=[], select_name="x", devices=[])
    problems, expanded = check(Topics.of(settings).discovery, json.loads(json.dumps(discovery)))
    assert not problems, problems
    env, cmps = ImmutableSandboxedEnvironment(), expanded["components"]
    assert env.from_string(cmps["takeover"]["value_template"]).render(value_json=payload) == "ON"
    assert env.from_string(cmps["volume"]["value_template"]).render(value_json=payload) == "35"
    assert cmps["volume"]["command_topic"] == "castd/n/volume/set" and cmps["takeover"]["retain"] is True
