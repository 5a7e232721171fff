"""castd over MQTT, beside the same over HTTP: start and switch times, a group start to three castd,
idle CPU with a broker connected and without one.

    .venv/bin/python -m bench.mqtt_latency [--rounds 7] [--group-rounds 5] [--idle-seconds 30]

Real parts only: Debian's mosquitto on a free loopback port (tests/broker.py), real castd daemons
(tests/helpers.py Daemon), stream-only sessions (no Cast device). Every start asks for a page of one
solid colour, a new colour each time; a segment counts when its last decoded frame has that colour,
and the time is when it was first listed in the media playlist (bench/hlswatch.py), counted from just
before the HTTP request was sent or the MQTT message was published.

- command: during a stream, a page switch over HTTP or MQTT, alternating, 2 x `rounds` each; the time
  from the request to the state message showing the new page (the transport alone: both paths end at
  the same observation).
- cold: castd idle (standby off), then a start over HTTP or MQTT, alternating, `rounds` each.
- switch: during a stream, a start of another colour (same session), HTTP and MQTT alternating.
- group: three castd in group "shop"; one message on castd/group/shop/start; per round the spread
  (latest minus earliest first segment of the three) and the latest.
- idle: two idle castd side by side for the same windows, one connected to the broker, one with no
  MQTT; CPU-s/s of each whole process tree (front end, supervisor, tracker) from /proc.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.hlswatch import SegmentWatcher, media_url_of, shows_colour
from bench.proc import cpu_delta, cpu_snapshot, tree
import httpx

from bench.testhelpers import Daemon, Mosquitto, PageServer, Watcher, mqtt_env, wait_for

PALETTE = ["ff0000", "0000ff", "00ff00", "ffff00", "ff00ff", "00ffff", "ff8000", "8000ff"]
TIMEOUT = 90.0  # generous: a loaded 2-core machine starts three Chromiums slowly


def rgb(hexa: str) -> tuple[int, int, int]:
    return int(hexa[0:2], 16), int(hexa[2:4], 16), int(hexa[4:6], 16)


def castd_env(broker: Mosquitto, node: str, **mqtt: str) -> dict[str, str]:
    """A castd on `broker` as `node`, no snapshots (they would add load to what is measured), INFO logs."""
    return {**mqtt_env(broker, node, snapshot_seconds="0", **mqtt), "CASTD_LOG_LEVEL": "INFO"}


def idle(d: Daemon) -> None:
    d.post("/stop")
    d.wait_state("idle", 30)
    time.sleep(0.5)


def watcher_for(d: Daemon, session_before: str | None, started: float) -> SegmentWatcher:
    """The media playlist of the session castd started after `started` (found on /status)."""
    status = wait_for(lambda: (s := d.status())["session"] not in (None, session_before) and s["stream_url"] and s,
                      TIMEOUT, interval=0.01, message="the new session")
    return SegmentWatcher(httpx.Client(timeout=5), media_url_of(status["stream_url"]))


def start(d: Daemon, ha: Watcher, node: str, how: str, hexa: str, pages: PageServer) -> float:
    """Seconds from the request to the first segment of the page (castd idle before)."""
    before = d.status()["session"]
    body = json.dumps({"url": pages.url(f"/color/{hexa}"), "device": ""})
    started = time.time()
    if how == "http":
        d.post("/start", content=body, headers={"Content-Type": "application/json"})
    else:
        ha.publish(f"castd/{node}/start", body)
    watcher = watcher_for(d, before, started)
    seconds, _ = watcher.first_matching(lambda data: shows_colour(data, rgb(hexa)), started, TIMEOUT)
    return seconds


def switch(d: Daemon, ha: Watcher, node: str, how: str, hexa: str, pages: PageServer,
           watcher: SegmentWatcher) -> float:
    body = json.dumps({"url": pages.url(f"/color/{hexa}"), "device": ""})
    watcher.prime()
    started = time.time()
    if how == "http":
        d.post("/start", content=body, headers={"Content-Type": "application/json"})
    else:
        ha.publish(f"castd/{node}/start", body)
    seconds, _ = watcher.first_matching(lambda data: shows_colour(data, rgb(hexa)), started, TIMEOUT)
    return seconds


def first_message(watcher: Watcher, topic: str, predicate, after: float, timeout: float = TIMEOUT) -> float:
    """When the earliest message on `topic` since `after` (monotonic) that passes `predicate` arrived."""
    watcher.wait(topic, predicate, timeout=timeout, after=after)
    return min(m.at for m in watcher.on(topic) if m.at >= after and predicate(m))


def medians(label: str, samples: dict[str, list[float]]) -> None:
    http, mqtt = statistics.median(samples["http"]), statistics.median(samples["mqtt"])
    print(f"{label:<8} HTTP median {http:.3f} s   MQTT median {mqtt:.3f} s   MQTT - HTTP {mqtt - http:+.3f} s"
          f"   (n={len(samples['http'])}+{len(samples['mqtt'])}; HTTP {sorted(samples['http'])}, "
          f"MQTT {sorted(samples['mqtt'])})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--group-rounds", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--idle-windows", type=int, default=3)
    parser.add_argument("--only", default="command,cold,switch,group,idle")
    args = parser.parse_args()
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="castd-bench-mqtt-"))
    pages = PageServer()
    broker = Mosquitto(tmp / "mosquitto").start()
    ha = Watcher(broker, "castd/+/error")
    daemons: list[Daemon] = []
    try:
        one = Daemon(runtime_dir=tmp / "one", env_extra=castd_env(broker, "one"))
        daemons.append(one.start())
        wait_for(lambda: one.status()["mqtt"]["state"] == "connected", 20, message="MQTT")
        colour = 0
        if "cold" in only:
            samples: dict[str, list[float]] = {"http": [], "mqtt": []}
            for i in range(args.rounds * 2):
                how = ("http", "mqtt")[i % 2] if (i // 2) % 2 == 0 else ("mqtt", "http")[i % 2]
                idle(one)
                samples[how].append(round(start(one, ha, "one", how, PALETTE[colour % 8], pages), 3))
                colour += 1
            idle(one)
            medians("cold", samples)
        if "switch" in only:
            samples = {"http": [], "mqtt": []}
            before = one.status()["session"]
            t0 = time.time()
            one.post("/start", json={"url": pages.url(f"/color/{PALETTE[colour % 8]}"), "device": ""})
            watcher = watcher_for(one, before, t0)
            watcher.first_matching(lambda data: shows_colour(data, rgb(PALETTE[colour % 8])), t0, TIMEOUT)
            for i in range(args.rounds * 2):
                colour += 1
                how = ("http", "mqtt")[i % 2] if (i // 2) % 2 == 0 else ("mqtt", "http")[i % 2]
                time.sleep(0.2 + (i * 0.37) % 1.0)  # land at every phase of the 1 s segment clock
                samples[how].append(round(switch(one, ha, "one", how, PALETTE[colour % 8], pages, watcher), 3))
            idle(one)
            medians("switch", samples)
        if "command" in only:
            # the transport alone: from the request (POST or publish) to the state message that shows the
            # new page; both paths end at the same observation, so their difference is HTTP vs the broker
            states = Watcher(broker, "castd/one/state")
            samples = {"http": [], "mqtt": []}
            one.post("/start", json={"url": pages.url(f"/color/{PALETTE[colour % 8]}"), "device": ""})
            one.wait_state("streaming", 60)
            for i in range(args.rounds * 4):
                colour += 1
                how = ("http", "mqtt")[i % 2] if (i // 2) % 2 == 0 else ("mqtt", "http")[i % 2]
                url = pages.url(f"/color/{PALETTE[colour % 8]}?n={i}")
                body = json.dumps({"url": url, "device": ""})
                time.sleep(0.3)
                sent = time.monotonic()
                if how == "http":
                    one.post("/start", content=body, headers={"Content-Type": "application/json"})
                else:
                    states.publish("castd/one/start", body)
                seen = first_message(states, "castd/one/state", lambda m, url=url: m.json()["url"] == url, sent)
                samples[how].append(round(seen - sent, 4))
            states.close()
            idle(one)
            medians("command", samples)
        if "group" in only:
            fleet = {}
            for node in ("g1", "g2", "g3"):
                fleet[node] = Daemon(runtime_dir=tmp / node, env_extra=castd_env(broker, node, groups="shop")).start()
                daemons.append(fleet[node])
            for d in fleet.values():
                wait_for(lambda d=d: d.status()["mqtt"]["state"] == "connected", 20, message="MQTT")
            spreads, latest, acted = [], [], []
            states = Watcher(broker, "castd/+/state")
            for _ in range(args.group_rounds):
                colour += 1
                hexa = PALETTE[colour % 8]
                for d in fleet.values():
                    idle(d)
                before = {node: d.status()["session"] for node, d in fleet.items()}
                started, started_mono = time.time(), time.monotonic()
                ha.publish("castd/group/shop/start", json.dumps({"url": pages.url(f"/color/{hexa}"), "device": ""}))
                watchers = {node: watcher_for(d, before[node], started) for node, d in fleet.items()}
                firsts = {}
                deadline = time.monotonic() + TIMEOUT
                while len(firsts) < 3 and time.monotonic() < deadline:
                    for node, watcher in watchers.items():
                        if node in firsts:
                            continue
                        for url, seen_at in watcher.poll():
                            data = watcher.fetch(url)
                            if data and shows_colour(data, rgb(hexa)):
                                firsts[node] = seen_at - started
                                break
                    time.sleep(0.02)
                if len(firsts) < 3:
                    raise RuntimeError(f"group start: only {sorted(firsts)} streamed")
                url = pages.url(f"/color/{hexa}")
                taken = [first_message(states, f"castd/{node}/state", lambda m: m.json()["url"] == url, started_mono)
                         for node in fleet]
                acted.append(round(max(taken) - min(taken), 4))
                spreads.append(round(max(firsts.values()) - min(firsts.values()), 3))
                latest.append(round(max(firsts.values()), 3))
                print(f"group    round: first segments {dict(sorted((k, round(v, 3)) for k, v in firsts.items()))}",
                      flush=True)
            states.close()
            for d in fleet.values():
                idle(d)
            print(f"group    the three took the start (state message with the page): spread median "
                  f"{statistics.median(acted) * 1000:.1f} ms, max {max(acted) * 1000:.1f} ms", flush=True)
            print(f"group    spread of the three first segments: median {statistics.median(spreads):.3f} s, "
                  f"max {max(spreads):.3f} s; last of the three: median {statistics.median(latest):.3f} s "
                  f"(n={len(spreads)})", flush=True)
        if "idle" in only:
            plain = Daemon(runtime_dir=tmp / "plain", env_extra={"CASTD_LOG_LEVEL": "INFO"}).start()
            daemons.append(plain)
            idle(one)
            time.sleep(2)
            with_mqtt, without = [], []
            for _ in range(args.idle_windows):
                trees = {"mqtt": tree(one.process.pid), "plain": tree(plain.process.pid)}
                before = {k: cpu_snapshot(v) for k, v in trees.items()}
                time.sleep(args.idle_seconds)
                after = {k: cpu_snapshot(tree(p)) for k, p in (("mqtt", one.process.pid),
                                                               ("plain", plain.process.pid))}
                with_mqtt.append(cpu_delta(before["mqtt"], after["mqtt"]) / args.idle_seconds)
                without.append(cpu_delta(before["plain"], after["plain"]) / args.idle_seconds)
            a, b = statistics.median(with_mqtt), statistics.median(without)
            print(f"idle     CPU with MQTT connected {a:.4f} CPU-s/s, without MQTT {b:.4f} CPU-s/s, "
                  f"difference {a - b:+.4f} CPU-s/s (windows of {args.idle_seconds:.0f} s: "
                  f"{[round(x, 4) for x in with_mqtt]} vs {[round(x, 4) for x in without]})", flush=True)
        if ha.messages:  # every start above was valid: castd refused none
            print(f"note: {len(ha.messages)} messages on castd's error topics: {ha.messages[:3]}")
    finally:
        for d in daemons:
            d.finish()
        ha.close()
        broker.stop()
        pages.close()
        shutil.rmtree(tmp, ignore_errors=True)  # castd's runtime dirs, logs, the broker's folder (left in /tmp before)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
