"""castd and a broker that does not want it: a wrong password, a TLS broker (trusted and not), MQTT
turned off, and `castd mqtt-forget`. Real Mosquitto brokers with configs written here (a password file
made with mosquitto_passwd, a throwaway CA made with openssl); castd stays idle (no browser)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from broker import Mosquitto, Watcher, mqtt_env, retained
from helpers import ROOT, Daemon, wait_for

PASSWORD = "right-horse-battery-9"
WRONG = "wrong-staple-7730"


@pytest.fixture(scope="module")
def locked_broker(tmp_path_factory):
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto-passwd"), users={"castd": PASSWORD, "ha": PASSWORD}).start()
    yield b
    b.stop()


def test_a_wrong_password_is_a_clear_error_and_http_keeps_working(locked_broker, tmp_path):
    ha = Watcher(locked_broker, "castd/#", username="ha", password=PASSWORD)
    d = Daemon(runtime_dir=tmp_path / "run", env_extra=mqtt_env(locked_broker, "locked", username="castd",
                                                                password=WRONG))
    try:
        d.start()
        mqtt = wait_for(lambda: (m := d.status()["mqtt"])["last_error"] and m, 20, message="a login error")
        assert mqtt["state"] in ("retrying", "connecting") and mqtt["connects"] == 0
        assert "refused castd's login" in mqtt["last_error"] and "mqtt.password" in mqtt["last_error"]
        line = wait_for(lambda: [ln for ln in d.log().splitlines() if "refused castd's login" in ln], 10,
                        message="the log line")[0]
        assert "ERROR" in line and "mqtt connection failed" in line
        # HTTP does not wait for the broker: every endpoint answers at once
        for _ in range(5):
            health = httpx.get(d.base + "/health", timeout=2)
            assert health.status_code == 200 and health.json()["mqtt"] in ("retrying", "connecting")
            assert d.post("/stop").json()["stopped"] is None
        assert ha.on("castd/locked/availability") == []  # nothing got through
        table = subprocess.run([sys.executable, "-m", "castd", "status", "--port", str(d.port)], cwd=ROOT,
                               capture_output=True, text=True, timeout=30, env={**os.environ, "CASTD_CONFIG": ""})
        mqtt_row = [line for line in table.stdout.splitlines() if line.startswith("mqtt")]
        assert mqtt_row and "refused castd's login" in mqtt_row[0], table.stdout
        log = d.log()
        assert WRONG not in log and PASSWORD not in log
    finally:
        d.finish()
    # the same castd with the right password is let in
    d = Daemon(runtime_dir=tmp_path / "run2", env_extra=mqtt_env(locked_broker, "locked", username="castd",
                                                                 password=PASSWORD))
    try:
        d.start()
        ha.wait("castd/locked/availability", lambda m: m.payload == b"online")
        assert d.status()["mqtt"]["state"] == "connected"
    finally:
        d.finish()
        ha.close()


def test_control_with_a_broker_login_by_default(locked_broker, tmp_path):
    """control = "with-login" (the default): without a username castd only reports; with one it obeys (here:
    refuses bad input on the error topic, which shows it is listening)."""
    ha = Watcher(locked_broker, "castd/#", "homeassistant/#", username="ha", password=PASSWORD)
    d = Daemon(runtime_dir=tmp_path / "run", env_extra=mqtt_env(
        locked_broker, "guarded", username="castd", password=PASSWORD))
    try:
        d.start()
        ha.wait("castd/guarded/availability", lambda m: m.payload == b"online")
        cmps = ha.wait("homeassistant/device/guarded/config").json()["cmps"]
        assert {"stop", "reload", "url", "select"} <= set(cmps)
        ha.publish("castd/guarded/start", "nonsense")
        assert ha.wait("castd/guarded/error").json()["status"] == 400
    finally:
        d.finish()
        ha.close()


def test_tls_with_castds_ca_file_connects_and_an_untrusted_certificate_is_named(tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto-tls", tls=True).start()
    ha = Watcher(broker, "castd/#")
    trusted = Daemon(runtime_dir=tmp_path / "run", env_extra=mqtt_env(broker, "secure", tls="true",
                                                                      ca_file=str(broker.ca_file)))
    untrusted = Daemon(runtime_dir=tmp_path / "run2", env_extra=mqtt_env(broker, "naive", tls="true"))
    try:
        trusted.start()
        ha.wait("castd/secure/availability", lambda m: m.payload == b"online")
        mqtt = trusted.status()["mqtt"]
        assert mqtt["state"] == "connected" and mqtt["tls"] is True
        untrusted.start()  # the system's CAs do not know the test CA
        mqtt = wait_for(lambda: (m := untrusted.status()["mqtt"])["last_error"] and m, 20, message="a TLS error")
        assert "certificate is not trusted" in mqtt["last_error"] and "mqtt.ca_file" in mqtt["last_error"]
        assert untrusted.get("/health").status_code == 200
    finally:
        trusted.finish()
        untrusted.finish()
        ha.close()
        broker.stop()


def test_turning_mqtt_off_or_mqtt_forget_removes_the_device_from_home_assistant(tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto").start()
    try:
        for node, how in (("leaving", "enabled=false"), ("forgotten", "castd mqtt-forget")):
            d = Daemon(runtime_dir=tmp_path / f"run-{node}", env_extra=mqtt_env(broker, node))
            try:
                d.start()
                assert retained(broker, f"homeassistant/device/{node}/config").payload
            finally:
                d.finish()
            if how == "enabled=false":
                d = Daemon(runtime_dir=tmp_path / f"run-{node}", env_extra=mqtt_env(broker, node, enabled="false"))
                try:
                    d.start()
                    wait_for(lambda d=d: "removed castd's device" in d.log(), 20, message="the removal")
                    assert d.status()["mqtt"]["state"] == "off"
                finally:
                    d.finish()
            else:
                out = subprocess.run([sys.executable, "-m", "castd", "mqtt-forget"], cwd=ROOT, timeout=60,
                                     env={**os.environ, **mqtt_env(broker, node)}, capture_output=True, text=True)
                assert out.returncode == 0, out.stderr
                assert f"removed device {node}" in out.stdout
            # a new subscriber (Home Assistant starting) finds no device, no state, no availability
            watcher = Watcher(broker, f"homeassistant/device/{node}/config", f"castd/{node}/#")
            time.sleep(1.0)
            assert [m for m in watcher.messages if m.payload] == [], how
            watcher.close()
    finally:
        broker.stop()


def test_doctor_logs_in_to_the_broker_and_names_a_refused_login(locked_broker):
    from castd.config import Config
    from castd.doctor import check_mqtt
    from castd.mqtt.settings import MqttSettings

    def doctor(password: str):
        return check_mqtt(Config(mqtt=MqttSettings(host="127.0.0.1", port=locked_broker.port, username="castd",
                                                   password=password, node_id="doc")))

    good, bad = doctor(PASSWORD), doctor(WRONG)
    assert good.result == "OK" and "logged in" in good.detail
    assert bad.result == "FAIL" and "refused castd's login" in bad.detail and bad.fix
    assert check_mqtt(Config()).result == "SKIP"
