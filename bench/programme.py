"""Issue 14's numbers: playlist switches on the server, a scheduled start's punctuality, and kill -9
of the whole daemon + a restart until the resumed stream serves again.

    .venv/bin/python -m bench.programme [--switches N] [--starts N] [--resumes N]

Everything against the real daemon (tests' Daemon runner), real Chromium, the real stream decoded
with PyAV, the real clock; medians printed, every sample written to bench/results/programme-*.json.

- switch: a looping playlist of six solid-colour dashboards, 2.5 s each. For each item change,
  the time from the programme's switch time (/status next_switch_at, the wall clock) until the first
  newly listed segment whose last frame shows the new item's colour. Target: median <= 0.5 s.
- scheduled start: [[schedules]] entries in UTC that start on a minute boundary, every other minute
  (the config has minute resolution), with warm standby (standby = "boot", as a Pi on a schedule would
  run). Reported: the supervisor's decision (/status started_at minus the window start) and the first
  segment showing the page, from the window start. Target: on time within 0.5 s.
- resume: a playlist streaming, then SIGKILL of castd's main process (its children end after it), and
  a new `castd serve` on the same state dir: seconds from that process's start until the resumed
  session's stream URL lists a segment the new encoder made showing the right item. Target <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from bench.hlswatch import BenchError, SegmentWatcher, media_url_of, shows_colour
from bench.pages import serve
from bench.stats import summary
from bench.testhelpers import Daemon, still_alive, wait_for

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
           "magenta": (255, 0, 255), "cyan": (0, 255, 255)}
ITEM_SECONDS = 2.5
RESULTS = Path(__file__).resolve().parent / "results"


def boards(pages) -> str:
    return "".join(f'[[dashboards]]\nname = "{name}"\nurl = "{pages.url("/color/%02x%02x%02x" % rgb)}"\n\n'
                   for name, rgb in COLOURS.items())


def playlist(name: str, seconds: float) -> str:
    items = ", ".join(f'{{dashboard = "{board}", seconds = {seconds}}}' for board in COLOURS)
    return f'[[playlists]]\nname = "{name}"\nitems = [{items}]\n\n'


def daemon(folder: Path, config: str, env: dict[str, str] | None = None, port: int | None = None) -> Daemon:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "castd.toml").write_text(config)
    d = Daemon(runtime_dir=folder / "run", args=["--config", str(folder / "castd.toml")],
               env_extra={"CASTD_LOG_LEVEL": "INFO", "CASTD_STATE_DIR": str(folder / "state"), **(env or {})})
    if port is not None:
        d.port = port  # the same address: the TV's stream URL stays valid across the restart
    return d


def streaming(d: Daemon, timeout: float = 60) -> dict:
    return wait_for(lambda: (s := d.status())["state"] == "streaming" and s, timeout, message="streaming")


# ---- playlist switches -------------------------------------------------------------------------------
def bench_switch(pages, tmp: Path, count: int) -> list[float]:
    d = daemon(tmp / "switch", boards(pages) + playlist("all", ITEM_SECONDS)).start()
    samples: list[float] = []
    try:
        started = d.post("/start", json={"playlist": "all"}).json()
        streaming(d)
        client = httpx.Client(timeout=5)
        watcher = SegmentWatcher(client, media_url_of(started["stream_url"]))
        names = list(COLOURS)
        while len(samples) < count:
            status = d.status()
            switch_at, item = status["next_switch_at"], status["item"]
            if switch_at - time.time() < 0.6:  # too close to start watching cleanly: take the next one
                time.sleep(max(0.0, switch_at - time.time()) + 0.1)
                continue
            watcher.prime()
            colour = COLOURS[names[(item + 1) % len(names)]]
            seconds, _ = watcher.first_matching(lambda data: shows_colour(data, colour), switch_at, 10)
            samples.append(round(seconds, 3))
        return samples
    finally:
        d.finish()


# ---- scheduled starts ---------------------------------------------------------------------------------
def bench_scheduled(pages, tmp: Path, count: int) -> tuple[list[float], list[float]]:
    now = datetime.now(timezone.utc)
    first = (now + timedelta(seconds=40)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    windows = [first + timedelta(minutes=2 * i) for i in range(count)]
    entries = "".join(f'[[schedules]]\nstart = "{w:%H:%M}"\nend = "{w + timedelta(minutes=1):%H:%M}"\n'
                      f'timezone = "UTC"\ndashboard = "{list(COLOURS)[i % len(COLOURS)]}"\n\n'
                      for i, w in enumerate(windows))
    d = daemon(tmp / "scheduled", boards(pages) + entries, {"CASTD_STANDBY": "boot"}).start()
    decided: list[float] = []
    on_screen: list[float] = []
    client = httpx.Client(timeout=5)
    try:
        wait_for(lambda: d.status().get("standby") == "warm", 60, message="warm standby")
        for i, window in enumerate(windows):
            start = window.timestamp()
            colour = COLOURS[list(COLOURS)[i % len(COLOURS)]]
            while time.time() < start - 0.5:
                time.sleep(min(1.0, start - 0.5 - time.time()))
            status = wait_for(lambda: (s := d.status())["session"] and s, 10, interval=0.01,
                              message="the scheduled session")
            watcher = SegmentWatcher(client, media_url_of(d.base + status["stream_path"]))
            seconds, _ = watcher.first_matching(lambda data: shows_colour(data, colour), start, 10)
            decided.append(round(d.status()["started_at"] - start, 3))
            on_screen.append(round(seconds, 3))
            print(f"bench.programme: window {window:%H:%M} decided {decided[-1]:+.3f} s, on the stream "
                  f"{on_screen[-1]:+.3f} s", file=sys.stderr, flush=True)
            wait_for(lambda: d.status()["state"] == "idle", 90, message="the window's end")
        return decided, on_screen
    finally:
        d.finish()


# ---- kill -9 and resume ----------------------------------------------------------------------------------
STEPS = ("supervisor ready", "session resumed", "encoder running", "page loaded", "first segment")


def log_steps(text: str, since: float) -> dict[str, float]:
    """Seconds from `since` to the first log line of each step after it (castd logs local time, ms)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        try:
            at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        if at < since - 0.01:
            continue
        for step in STEPS:
            if step not in found and f": {step}" in line:
                found[step] = round(at - since, 3)
    return found


def bench_resume(pages, tmp: Path, count: int) -> tuple[list[float], list[dict], list[float]]:
    """kill -9 + restart, `count` times; then as many fresh starts (a new process, POST /start as soon
    as it answers) under the same load, for comparison."""
    folder = tmp / "resume"
    config = boards(pages) + playlist("slow", 600)
    d = daemon(folder, config).start()
    samples: list[float] = []
    steps: list[dict] = []
    fresh: list[float] = []
    client = httpx.Client(timeout=5)
    try:
        started = d.post("/start", json={"playlist": "slow"}).json()
        streaming(d)
        d.post("/next")  # green: the resumed item must be this one
        green = COLOURS["green"]
        media = media_url_of(started["stream_url"])
        for _ in range(count):
            wait_for(lambda: newest_shows(client, media, green), 30, message="green streaming")
            below = d.record_descendants()
            os.kill(d.process.pid, signal.SIGKILL)
            d.process.wait(10)
            wait_for(lambda: not still_alive(below), 30, message="the old processes gone")
            d = daemon(folder, config, port=d.port)
            began = time.time()
            d.start(wait_healthy=False)
            watcher = SegmentWatcher(client, media)  # the same stream URL: the same session id
            seconds, _ = watcher.first_matching(lambda data: shows_colour(data, green), began, 30)
            samples.append(round(seconds, 3))
            steps.append(log_steps(d.log(), began))
            print(f"bench.programme: resumed stream serving {seconds:.3f} s after the new process started "
                  f"{steps[-1]}", file=sys.stderr, flush=True)
        d.finish()
        for i in range(count):  # the same, from nothing: a new process and a start as soon as it answers
            d = daemon(tmp / f"fresh{i}", config)
            began = time.time()
            d.start()
            started = d.post("/start", json={"dashboard": "green"}).json()
            watcher = SegmentWatcher(client, media_url_of(started["stream_url"]))
            seconds, _ = watcher.first_matching(lambda data: shows_colour(data, green), began, 30)
            fresh.append(round(seconds, 3))
            d.finish()
        return samples, steps, fresh
    finally:
        d.finish()


def newest_shows(client: httpx.Client, media: str, colour: tuple[int, int, int]) -> bool:
    urls = SegmentWatcher(client, media).listed()
    return bool(urls) and shows_colour(client.get(urls[-1]).content, colour)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.programme", description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--starts", type=int, default=3, help="scheduled starts (one every 2 minutes)")
    parser.add_argument("--resumes", type=int, default=5)
    parser.add_argument("--only", default="switch,scheduled,resume")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    pages = serve()
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load": os.getloadavg()}
    try:
        with tempfile.TemporaryDirectory(prefix="castd-bench-") as tmp:
            if "switch" in only:
                results["switch"] = summary(samples := bench_switch(pages, Path(tmp), args.switches))
                results["switch"]["samples"] = samples
            if "resume" in only:
                samples, steps, fresh = bench_resume(pages, Path(tmp), args.resumes)
                results["resume"] = {**summary(samples), "samples": samples, "steps": steps}
                results["fresh_start"] = {**summary(fresh), "samples": fresh}
                results["resume_steps"] = {step: summary([s[step] for s in steps if step in s]) for step in STEPS}
            if "scheduled" in only:
                decided, on_screen = bench_scheduled(pages, Path(tmp), args.starts)
                results["scheduled_decision"] = {**summary(decided), "samples": decided}
                results["scheduled_on_stream"] = {**summary(on_screen), "samples": on_screen}
    except BenchError as exc:
        print(f"bench.programme: {exc}", file=sys.stderr)
        return 1
    finally:
        pages.close()
    rows = [("switch", "playlist switch -> first segment with the new page", "median <= 0.5 s"),
            ("scheduled_decision", "scheduled start: supervisor's decision after the window start", "<= 0.5 s"),
            ("scheduled_on_stream", "scheduled start: first segment with the page, from the window start", "<= 0.5 s"),
            ("resume", "kill -9 + restart -> resumed stream serving, from the new process's start", "<= 3 s"),
            ("fresh_start", "for comparison: new process + POST /start as soon as it answers -> first segment",
             "-")]
    for key, what, target in rows:
        if key in results:
            r = results[key]
            print(f"{what}: median {r['median']:.3f} s, p95 {r['p95']:.3f} s, max {r['max']:.3f} s (n={r['n']}); "
                  f"target {target}")
    if "resume_steps" in results:
        print("resume, from the new process's start (medians of its log lines): " + ", ".join(
            f"{step} {r['median']:.2f} s" for step, r in results["resume_steps"].items() if r["median"] is not None))
    if "resume" in results and "fresh_start" in results:
        print(f"resume / fresh start: {results['resume']['median'] / results['fresh_start']['median']:.2f}x "
              f"(load average at the start: {results['load'][0]:.1f})")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"programme-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"samples: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
