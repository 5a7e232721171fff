"""A real Home Assistant against a real castd, over a real Mosquitto: do castd's entities appear, with the
right states, and does pressing Stop in Home Assistant stop castd?

    python3.13 -m venv /tmp/ha && /tmp/ha/bin/pip install homeassistant paho-mqtt
    .venv/bin/python -m bench.ha_check --hass /tmp/ha/bin/hass

Not part of the suite (Home Assistant is a large install, on a Python of its own). Everything runs on
127.0.0.1: Mosquitto on a free port (tests/broker.py), castd (tests/helpers.py Daemon, stream only),
Home Assistant with a fresh config folder (http, api, config, onboarding). The script onboards a user
through Home Assistant's REST API, adds the MQTT integration through its config flow (broker = the test
broker), then reads castd's entities from /api/states and drives them with /api/services.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.testhelpers import Daemon, Mosquitto, PageServer, free_port, mqtt_env, wait_for

NODE = "ha_tv"
CONFIG = """homeassistant:
  name: castd check
  latitude: 52.52
  longitude: 13.40
  elevation: 34
  unit_system: metric
  time_zone: Europe/Berlin
  country: DE
  currency: EUR
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
onboarding:
logger:
  default: warning
  logs:
    homeassistant.components.mqtt: info
"""


class HomeAssistant:
    def __init__(self, hass: str, folder: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "configuration.yaml").write_text(CONFIG.format(port=self.port))
        self.log = (folder / "hass.log").open("ab")
        self.process = subprocess.Popen([hass, "-c", str(folder)], stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        self.token = ""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def up(self, timeout: float) -> None:
        def answering():
            if self.process.poll() is not None:
                raise RuntimeError(f"Home Assistant exited: see {self.folder / 'hass.log'}")
            try:
                return httpx.get(f"{self.base}/api/onboarding", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(answering, timeout, interval=1.0, message="Home Assistant's HTTP API")

    def onboard(self) -> None:
        client_id = f"{self.base}/"
        r = httpx.post(f"{self.base}/api/onboarding/users", timeout=30, json={
            "client_id": client_id, "name": "castd check", "username": "castd", "password": "castd-check-1234",
            "language": "en"})
        r.raise_for_status()
        r = httpx.post(f"{self.base}/auth/token", timeout=30, data={
            "grant_type": "authorization_code", "code": r.json()["auth_code"], "client_id": client_id})
        r.raise_for_status()
        self.token = r.json()["access_token"]

    def add_mqtt(self, broker_port: int) -> dict:
        r = httpx.post(f"{self.base}/api/config/config_entries/flow", headers=self.headers(), timeout=60,
                       json={"handler": "mqtt", "show_advanced_options": False})
        r.raise_for_status()
        step = r.json()
        for _ in range(5):
            if step.get("type") == "create_entry":
                return step
            if step.get("type") == "menu":
                data = {"next_step_id": "broker"}
            elif step.get("type") == "form":
                data = {"broker": "127.0.0.1", "port": broker_port}
            else:
                raise RuntimeError(f"MQTT config flow: {step}")
            r = httpx.post(f"{self.base}/api/config/config_entries/flow/{step['flow_id']}", headers=self.headers(),
                           timeout=60, json=data)
            r.raise_for_status()
            step = r.json()
        raise RuntimeError(f"MQTT config flow did not finish: {step}")

    def states(self) -> dict[str, dict]:
        r = httpx.get(f"{self.base}/api/states", headers=self.headers(), timeout=10)
        r.raise_for_status()
        return {s["entity_id"]: s for s in r.json()}

    def call(self, domain: str, service: str, data: dict) -> None:
        r = httpx.post(f"{self.base}/api/services/{domain}/{service}", headers=self.headers(), timeout=30, json=data)
        r.raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def castd_entities(states: dict[str, dict]) -> dict[str, dict]:
    return {eid: s for eid, s in states.items() if f"castd_{NODE}" in eid}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hass", required=True, help="the hass command of a Home Assistant venv")
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="castd-ha-check-"))
    pages = PageServer()
    broker = Mosquitto(tmp / "mosquitto").start()
    castd = Daemon(runtime_dir=tmp / "castd", env_extra=mqtt_env(broker, NODE, snapshot_seconds="3")).start()
    ha = HomeAssistant(args.hass, tmp / "ha")
    failures: list[str] = []

    def expect(what: str, ok: bool, detail="") -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f"  ({detail})" if detail else ""), flush=True)
        if not ok:
            failures.append(what)

    try:
        t0 = time.monotonic()
        ha.up(args.startup_timeout)
        print(f"Home Assistant answering after {time.monotonic() - t0:.0f} s", flush=True)
        ha.onboard()
        entry = ha.add_mqtt(broker.port)
        print(f"MQTT integration added: {entry.get('title')}", flush=True)
        t1 = time.monotonic()
        wait_for(lambda: len(castd_entities(ha.states())) >= 11, 120, interval=0.5,
                 message="castd's entities in Home Assistant")
        print(f"castd's entities appeared {time.monotonic() - t1:.1f} s after the MQTT integration was added",
              flush=True)
        # created from the discovery message, they are unavailable until the retained `online` is read
        entities = wait_for(lambda: (e := castd_entities(ha.states())) and all(
            x["state"] != "unavailable" for x in e.values()) and e, 60, interval=0.5,
            message="castd's entities to be available")
        print(f"... and available {time.monotonic() - t1:.1f} s after", flush=True)
        print("castd's entities as Home Assistant shows them:")
        for eid, s in sorted(entities.items()):
            attrs = {k: v for k, v in s["attributes"].items() if k in ("options", "friendly_name", "device_class",
                                                                         "unit_of_measurement", "max")}
            print(f"  {eid:<45} {s['state']!r:<14} {json.dumps(attrs)}")
        e = f"castd_{NODE}"
        expect("sensor State is idle", entities.get(f"sensor.{e}_state", {}).get("state") == "idle")
        expect("binary sensor Casting is off", entities.get(f"binary_sensor.{e}_casting", {}).get("state") == "off")
        expect("buttons Stop and Reload page exist", f"button.{e}_stop" in entities and f"button.{e}_reload_page"
               in entities)
        expect("text URL, select Recent page, image Picture exist", all(
            x in entities for x in (f"text.{e}_url", f"select.{e}_recent_page", f"image.{e}_picture")))
        unavailable = [eid for eid, s in entities.items() if s["state"] == "unavailable"]
        expect("no entity is unavailable", not unavailable, unavailable)
        url = pages.url("/color/00ff00")
        castd.post("/start", json={"url": url, "device": ""})
        castd.wait_state("streaming", 60)
        wait_for(lambda: ha.states()[f"sensor.{e}_state"]["state"] == "streaming", 30, message="HA: streaming")
        s = ha.states()
        expect("after a start over HTTP: State streaming, Casting on, Page host 127.0.0.1, URL shown",
               s[f"binary_sensor.{e}_casting"]["state"] == "on" and s[f"sensor.{e}_page_host"]["state"] ==
               "127.0.0.1" and s[f"text.{e}_url"]["state"] == url,
               {k: s[k]["state"] for k in (f"binary_sensor.{e}_casting", f"sensor.{e}_page_host", f"text.{e}_url")})
        wait_for(lambda: url in ha.states()[f"select.{e}_recent_page"]["attributes"].get("options", []), 30,
                 message="the select to offer the page")
        expect("the select offers and shows the page", ha.states()[f"select.{e}_recent_page"]["state"] == url)
        wait_for(lambda: ha.states()[f"image.{e}_picture"]["state"] not in ("unknown", "unavailable"), 30,
                 message="a picture")
        expect("the image entity has a picture", True, ha.states()[f"image.{e}_picture"]["state"])
        other = pages.url("/color/0000ff")
        ha.call("text", "set_value", {"entity_id": f"text.{e}_url", "value": other})
        wait_for(lambda: castd.status()["url"] == other, 30, message="castd to show the URL set in HA")
        expect("text set_value in HA switches castd's page", castd.status()["url"] == other)
        ha.call("select", "select_option", {"entity_id": f"select.{e}_recent_page", "option": url})
        wait_for(lambda: castd.status()["url"] == url, 30, message="castd to show the option chosen in HA")
        expect("select_option in HA switches castd's page back", castd.status()["url"] == url)
        t1 = time.monotonic()
        ha.call("button", "press", {"entity_id": f"button.{e}_stop"})
        castd.wait_state("idle", 30)
        expect("pressing Stop in HA stops castd", castd.status()["state"] == "idle",
               f"idle after {time.monotonic() - t1:.2f} s")
        wait_for(lambda: ha.states()[f"sensor.{e}_state"]["state"] == "idle", 30, message="HA: idle")
        expect("HA shows State idle again", True)
        castd.stop()
        wait_for(lambda: ha.states()[f"sensor.{e}_state"]["state"] == "unavailable", 30, message="unavailable")
        expect("castd stopped: its entities are unavailable in HA", True)
    finally:
        ha.stop()
        castd.finish()
        broker.stop()
        pages.close()
        print(f"Home Assistant's log: {tmp / 'ha' / 'hass.log'}")
    print(f"{len(failures)} failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
