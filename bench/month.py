"""A month in an hour (issue 22): one castd under every fault a month on a Pi brings, scaled to --minutes.

One real `castd serve` (its own runtime dir, config file, token and $TMPDIR), a real Mosquitto, the fake Cast
device with Shaka as its engine (tests/fakecast), and for 60 minutes: 3,000 page switches, 300 sessions
started and stopped, 100 encoder SIGKILLs, 20 hung pages (`while(true){}`), 20 pages that grow memory past the
limit, 50 broker restarts, 50 device disconnects, 10 schedule windows; other lengths scale those counts
(at least one of each). Faults are spread evenly with a fixed seed; switches fill the time between.

Measured before (idle), every --sample-seconds, and after (idle again): castd's processes (its tree, plus
anything carrying the bench's unique folder in its environment, so an orphan re-parented to init still
counts), their PSS, open fds and threads; files under castd's own $TMPDIR, its runtime dir and the /dev/shm
files its processes hold; log lines per hour. Throughout: 5xx answers, and the longest time the player
presented no new frame while a session it had shown stayed on (a stop or a new session resets that clock).
After castd's SIGTERM: processes left, Chromium profiles left, files left.

Targets (the issue's): every resource flat (median of the last 10 % of the run within 5 % of the median of
the first 10 % after warm-up), 0 processes and 0 profiles left, every hung page detected and cured (counted
from /status `page_hangs`; a tree without the page watchdog has no such count and reports "no watchdog"),
0 5xx, no frozen spell over 10 s.

    .venv/bin/python -m bench.month --minutes 60 [--json bench/results/month.json]

$TMPDIR: castd gets a folder of its own under the bench's (the machine is shared, /tmp has others' files);
Chromium and Python both honour $TMPDIR, so what castd leaves in "/tmp" is exactly what is in that folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from bench.compare import ROOT
from bench.pages import serve
from bench.testhelpers import Daemon, FakeCastDevice, Mosquitto, mqtt_env, wait_for

PER_HOUR = {"switch": 3000, "session": 300, "sigkill": 100, "hang": 20, "hog": 20, "broker": 50,
            "disconnect": 50, "window": 10}
PALETTE = ["c02020", "2020c0", "20c020", "c0c020", "c020c0", "20c0c0", "e08040", "4080e0"]
FROZEN_LIMIT = 10.0  # seconds without a new frame at the player: the "frozen"
HANG_WAIT = 20.0  # seconds a hung page is left on for the watchdog (which must detect within 10 s)
HOG_WAIT = 40.0  # seconds a memory hog is left on for the memory watchdog (checks every 10 s by default)
FLAT = 0.05


def plan(minutes: float) -> dict[str, int]:
    """The issue's hourly counts scaled to `minutes`, at least one of each."""
    return {kind: max(1, round(count * minutes / 60)) for kind, count in PER_HOUR.items()}


def windows(began: datetime, minutes: float, count: int) -> list[tuple[datetime, datetime]]:
    """`count` one-minute schedule windows on minute boundaries (schedules have minute resolution), spread over
    the run from its second minute on and ending a minute before it does."""
    first = (began + timedelta(minutes=2)).replace(second=0, microsecond=0)
    room = max(1, int(minutes) - 3)
    step = max(1, room // count)
    return [(first + timedelta(minutes=i * step), first + timedelta(minutes=i * step + 1)) for i in range(count)]


def near_boundary(slots: list[tuple[datetime, datetime]], now: datetime, seconds: float = HOG_WAIT + 10) -> bool:
    """A schedule window starts or ends within `seconds`: no time for a hung page or a hog to be caught."""
    return any(0 <= (edge - now).total_seconds() < seconds for slot in slots for edge in slot)


def config_text(pages_base: str, device: str, slots: list[tuple[datetime, datetime]]) -> str:
    lines = ['quality = "720p"', f'device = "{device}"', "", "[[dashboards]]", 'name = "window"',
             f'url = "{pages_base}/dashboard"', ""]
    for n, (start, end) in enumerate(slots):
        lines += ["[[schedules]]", f'name = "window {n + 1}"', f'start = "{start:%H:%M}"', f'end = "{end:%H:%M}"',
                  'timezone = "UTC"', 'dashboard = "window"', ""]
    return "\n".join(lines)


# ---- castd's processes and files, read from /proc ------------------------------------------------------------
def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _parents() -> dict[int, int]:
    out = {}
    for pid in _pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            out[pid] = int(fields[1])
    return out


def castd_processes(root: int | None, marker: bytes) -> set[int]:
    """castd's tree below `root` plus every live process whose environment names the bench's folder (castd's
    children inherit CASTD_RUNTIME_DIR and TMPDIR from it: an orphan re-parented to init still carries them)."""
    parents = _parents()
    found: set[int] = set()
    if root is not None and root in parents:
        found.add(root)
        changed = True
        while changed:
            before = len(found)
            found |= {pid for pid, parent in parents.items() if parent in found}
            changed = len(found) != before
    for pid in parents:
        if pid in found or pid == os.getpid():
            continue
        try:
            if marker in Path(f"/proc/{pid}/environ").read_bytes():
                found.add(pid)
        except OSError:
            continue
    return found


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _threads(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _fds(pid: int) -> list[str]:
    out = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
    except OSError:
        pass
    return out


def _shm_held(pid: int, links: list[str]) -> set[str]:
    held = {link.removesuffix(" (deleted)") for link in links if link.startswith("/dev/shm/")}
    try:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/dev/shm/"):
                held.add(parts[5].removesuffix(" (deleted)"))
    except OSError:
        pass
    return held


def _files(folder: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(folder)) if folder.exists() else 0


def profiles(folder: Path) -> list[str]:
    """Chromium profile folders: castd's `castd-chromium-*` and any folder holding Chromium's `Local State`."""
    if not folder.exists():
        return []
    return sorted(str(p) for p in folder.rglob("*") if p.is_dir() and
                  (p.name.startswith("castd-chromium-") or (p / "Local State").exists()))


@dataclass
class Bench:
    root: Path
    minutes: float
    seed: int = 22
    sample_seconds: float = 20.0
    tmpdir: Path = field(init=False)
    marker: bytes = field(init=False)
    shm_seen: set[str] = field(default_factory=set)
    samples: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    five_xx: list[str] = field(default_factory=list)
    frozen: dict = field(default_factory=lambda: {"longest": 0.0, "at": None, "over_limit": 0})
    hangs: list[dict] = field(default_factory=list)
    hogs: list[dict] = field(default_factory=list)
    broker_reconnects: list[float] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, fault, outcome), for reading back
    shown: set[str] = field(default_factory=set)  # sessions the player presented a frame of
    hog_until: float = 0.0  # samples before this monotonic time are marked `hog` (a hog's gigabytes, not a leak)
    switch_seconds: list[float] = field(default_factory=list)  # POST /start of a page switch, answer time
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.tmpdir = self.root / "tmp"
        self.tmpdir.mkdir(parents=True)
        self.marker = str(self.root).encode()
        self.began = time.monotonic()

    # ---- measuring ----
    def _state(self, daemon: Daemon) -> tuple[str | None, str | None]:
        try:
            body = httpx.get(daemon.base + "/status", headers=daemon.auth(), timeout=10).json()
        except (httpx.HTTPError, ValueError):
            return None, None
        return body.get("state"), body.get("session")

    def sample(self, daemon: Daemon, label: str) -> dict:
        """One reading of castd's processes and files. The state is read before and after it and kept only
        when both agree (same state, same session): in the 60-minute run of 2026-12-05 a single /status read
        labelled a tree of 7 processes `streaming` (the session changed while /proc was walked), and the
        flatness medians over such rows compared 12.5 processes with 18."""
        before = self._state(daemon)
        pids = castd_processes(daemon.process.pid if daemon.process else None, self.marker)
        pss = fds = threads = 0.0
        shm: set[str] = set()
        for pid in pids:
            links = _fds(pid)
            pss += _pss_mb(pid)
            fds += len(links)
            threads += _threads(pid)
            shm |= _shm_held(pid, links)
        shm = {p for p in shm if os.path.exists(p)}
        self.shm_seen |= shm
        lines = daemon.log_path.read_bytes().count(b"\n") if daemon.log_path.exists() else 0
        after = self._state(daemon)
        state = before[0] if before == after else "changing"
        row = {"label": label, "state": state, "hog": time.monotonic() < self.hog_until,
               "t": round(time.monotonic() - self.began, 1), "procs": len(pids),
               "pss_mb": round(pss, 1), "fds": int(fds), "threads": int(threads),
               "tmp_files": _files(self.tmpdir), "run_files": _files(daemon.runtime_dir), "shm_files": len(shm),
               "log_lines": lines}
        if self.samples:
            prev = self.samples[-1]
            minutes = (row["t"] - prev["t"]) / 60
            row["log_per_h"] = round((lines - prev["log_lines"]) / minutes * 60) if minutes > 0 else 0
        with self.lock:
            row["5xx"] = len(self.five_xx)
            row["done"] = sum(v for k, v in self.counts.items() if not k.endswith("_on_screen"))
        self.samples.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    def request(self, daemon: Daemon, method: str, path: str, **kw) -> httpx.Response | None:
        kw.setdefault("headers", daemon.auth())
        try:
            response = httpx.request(method, daemon.base + path, timeout=30, **kw)
        except httpx.HTTPError as exc:
            self._error(f"{method} {path}: {type(exc).__name__}")
            return None
        if response.status_code >= 500 and path != "/health":
            with self.lock:
                self.five_xx.append(f"{method} {path} {response.status_code} {response.text[:160]}")
        elif response.status_code >= 400:
            self._error(f"{method} {path}: {response.status_code} {response.text[:80]}")
        return response

    def _error(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1

    def sample_every(self, daemon: Daemon, stop: threading.Event) -> None:
        """A sample every sample_seconds in its own thread: a fault that takes 40 s (a hog) delays none."""
        while not stop.wait(self.sample_seconds):
            try:
                self.sample(daemon, "run")
            except OSError as exc:
                self._error(f"sample: {exc}")

    def event(self, kind: str, outcome: str = "") -> None:
        with self.lock:
            self.events.append((round(time.monotonic() - self.began, 1), kind, outcome))

    def watch_player(self, daemon: Daemon, tv: FakeCastDevice, stop: threading.Event) -> None:
        """The longest spell without a new frame at the player, counted only while one session that the
        player had already shown stays on (a stop, a new session or a window's start reset the clock)."""
        session, armed_since = None, None
        while not stop.wait(0.5):
            try:
                status = httpx.get(daemon.base + "/status", headers=daemon.auth(), timeout=10)
            except httpx.HTTPError:
                continue
            if status.status_code >= 500:
                with self.lock:
                    self.five_xx.append(f"GET /status {status.status_code} {status.text[:160]}")
                continue
            body = status.json()
            now = time.time()
            if body.get("state") == "idle" or body.get("session") != session:
                session, armed_since = body.get("session"), now
                continue
            player = tv.player
            if player is None or player.first_frame_at is None or player.first_frame_at < armed_since:
                continue  # not shown yet since this session (or its LOAD) began
            self.shown.add(session)
            still = now - (player.last_frame_at or now)
            with self.lock:
                if still > self.frozen["longest"]:
                    self.frozen.update(longest=round(still, 1), at=round(time.monotonic() - self.began))
                if still > FROZEN_LIMIT and not self.frozen.get("in_spell"):
                    self.frozen["over_limit"] += 1
                self.frozen["in_spell"] = still > FROZEN_LIMIT

    # ---- acting ----
    def start(self, daemon: Daemon, page: str, device: str) -> bool:
        r = self.request(daemon, "POST", "/start", json={"url": page, "device": device})
        return r is not None and r.status_code == 200

    def fault(self, kind: str, daemon: Daemon, tv: FakeCastDevice, broker: Mosquitto, pages, device: str,
              n: int) -> None:
        colour = PALETTE[n % len(PALETTE)]
        if kind == "session":
            self.request(daemon, "POST", "/stop")
            wait_for(lambda: daemon.status()["state"] == "idle", 30, interval=0.2, message="idle after /stop")
            self.start(daemon, pages.url(f"/color/{colour}"), device)
        elif kind == "sigkill":
            status = daemon.status()
            pid = status.get("encoder_pid")
            if status.get("state") == "streaming" and tv.player_state == "PLAYING":
                self.counts["sigkill_on_screen"] = self.counts.get("sigkill_on_screen", 0) + 1
            if pid is None:
                self._error("sigkill: no encoder to kill")
                return
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                self._error("sigkill: encoder already gone")
        elif kind == "broker":
            self.broker_restart(broker)
        elif kind == "disconnect":
            tv.drop_connections()
        elif kind == "hang":
            self.hang(daemon, pages, device, colour)
        elif kind == "hog":
            self.hog(daemon, pages, device, colour)

    def hang(self, daemon: Daemon, pages, device: str, colour: str) -> None:
        before = daemon.status()
        posted = time.monotonic()
        self.start(daemon, pages.url(f"/hang/{colour}"), device)
        found: dict = {"watchdog": "page_hangs" in before, "detected_s": None, "streaming_again_s": None}
        if found["watchdog"]:
            try:
                wait_for(lambda: daemon.status().get("page_hangs", 0) > before["page_hangs"], HANG_WAIT,
                         interval=0.25, message="hang detected")
                found["detected_s"] = round(time.monotonic() - posted, 1)
            except AssertionError:
                pass
        else:
            time.sleep(HANG_WAIT / 2)  # no watchdog to wait for: leave it on a while, as a TV would
        self.start(daemon, pages.url(f"/color/{colour}"), device)  # the cure a person would give, too
        try:
            wait_for(lambda: daemon.status()["state"] == "streaming", 60, interval=0.25, message="streaming")
            found["streaming_again_s"] = round(time.monotonic() - posted, 1)
        except AssertionError:
            pass
        self.hangs.append(found)
        self.event("hang", json.dumps(found))

    def hog(self, daemon: Daemon, pages, device: str, colour: str) -> None:
        before = daemon.status()
        posted = time.monotonic()
        self.start(daemon, pages.url(f"/hog/{colour}"), device)
        found: dict = {"detected_s": None, "how": None}
        self.hog_until = float("inf")
        try:
            after = wait_for(lambda: (s := daemon.status()).get("memory_reloads", 0) + s.get("memory_restarts", 0)
                             > before.get("memory_reloads", 0) + before.get("memory_restarts", 0) and s,
                             HOG_WAIT, interval=0.5, message="memory watchdog")
            found["detected_s"] = round(time.monotonic() - posted, 1)
            found["how"] = "reload" if after["memory_reloads"] > before.get("memory_reloads", 0) else "restart"
        except AssertionError:
            pass
        self.start(daemon, pages.url(f"/color/{colour}"), device)
        self.hog_until = time.monotonic() + 30  # the renderer's gigabytes are given back within a few seconds
        self.hogs.append(found)
        self.event("hog", json.dumps(found))

    def broker_restart(self, broker: Mosquitto) -> None:
        """Stop and start the broker on its port; castd's reconnect is counted from the broker's log (its
        client id starts with castd-) without waiting for it here."""
        broker.stop()
        time.sleep(0.5)
        broker.start()
        started = time.monotonic()
        lines = broker.log().count("New client connected")

        def wait() -> None:
            deadline = started + 120
            while time.monotonic() < deadline:
                if broker.log().count("New client connected") > lines:
                    self.broker_reconnects.append(round(time.monotonic() - started, 1))
                    return
                time.sleep(0.25)
        threading.Thread(target=wait, daemon=True).start()


def flatness(rows: list[dict], warmup_s: float, total_s: float) -> dict[str, dict]:
    """Per resource: the median of the first 10 % of the run after warm-up and of its last 10 %, of the samples
    taken while castd was `streaming` and no memory hog was on (its gigabytes are the hog's, not a leak; a
    sample between a /stop and the next session, or during an encoder restart, has a process tree half the
    size: mixing those would measure the phase, not a leak). Log lines per hour: a rate over every interval."""
    keys = ("procs", "pss_mb", "fds", "threads", "tmp_files", "run_files", "shm_files")
    span = total_s * 0.10
    first = [r for r in rows if warmup_s <= r["t"] < warmup_s + span and r.get("state") == "streaming"
             and not r.get("hog")]
    last = [r for r in rows if r["t"] >= total_s - span and r.get("state") == "streaming" and not r.get("hog")]
    out = _flat(first, last, keys)
    out.update(_flat([r for r in rows if warmup_s <= r["t"] < warmup_s + span],
                     [r for r in rows if r["t"] >= total_s - span], ("log_per_h",)))
    return out


def _flat(first: list[dict], last: list[dict], keys: tuple[str, ...]) -> dict[str, dict]:
    out = {}
    for key in keys:
        a = [r[key] for r in first if key in r]
        b = [r[key] for r in last if key in r]
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        change = (mb - ma) / ma if ma else (0.0 if mb == ma else float("inf"))
        out[key] = {"first": ma, "last": mb, "change": round(change, 3), "flat": abs(change) <= FLAT}
    return out


def run(minutes: float, sample_seconds: float, seed: int, tree: Path | None = None,
        log_copy: Path | None = None) -> dict:
    counts = plan(minutes)
    root = Path(tempfile.mkdtemp(prefix="castd-month-"))
    bench = Bench(root, minutes, seed, sample_seconds)
    pages = serve()
    broker = Mosquitto(root / "broker").start()
    token = secrets.token_urlsafe(24)
    stop_watch = threading.Event()
    daemon: Daemon | None = None
    result: dict = {"minutes": minutes, "plan": counts, "seed": seed}
    try:
        with FakeCastDevice(name=f"month TV {os.getpid()}", engine="shaka4") as tv:
            device = f"127.0.0.1:{tv.port}"
            slots = windows(datetime.now(timezone.utc), minutes, counts["window"])
            config = root / "castd.toml"
            config.write_text(config_text(pages.base, device, slots))
            config.chmod(0o600)
            daemon = Daemon(runtime_dir=root / "run", token=token, cwd=tree or ROOT, args=["--config", str(config)],
                            env_extra={
                "TMPDIR": str(bench.tmpdir), "CASTD_LOG_LEVEL": "INFO", "CASTD_CAST_CONNECT_TIMEOUT": "5",
                **mqtt_env(broker, "month")})
            daemon.start()
            time.sleep(5)
            bench.sample(daemon, "before")
            began = time.monotonic()
            bench.began = began  # sample times from the first session on
            for target in (bench.watch_player, bench.sample_every):
                threading.Thread(target=target, args=(daemon, tv, stop_watch) if target == bench.watch_player
                                 else (daemon, stop_watch), daemon=True).start()
            rng = random.Random(seed)
            faults = [k for k, c in counts.items() if k not in ("switch", "window") for _ in range(c)]
            rng.shuffle(faults)
            length = minutes * 60
            # the faults evenly over the run, the first after 20 s of playing, none in its last 5 %
            times = [20 + i * (length * 0.95 - 20) / len(faults) for i in range(len(faults))]
            bench.start(daemon, pages.url("/dashboard"), device)
            fault_at = 0
            switches = 0
            while (now := time.monotonic()) < began + length:
                elapsed = now - began
                if fault_at < len(faults) and elapsed >= times[fault_at]:
                    if faults[fault_at] in ("hang", "hog") and near_boundary(slots, datetime.now(timezone.utc)):
                        later = next((j for j in range(fault_at + 1, len(faults))
                                      if faults[j] not in ("hang", "hog")), None)
                        if later is not None:  # a window's start would switch the page away before the watchdog
                            faults[fault_at], faults[later] = faults[later], faults[fault_at]
                    kind = faults[fault_at]
                    try:
                        bench.fault(kind, daemon, tv, broker, pages, device, fault_at)
                        bench.event(kind)
                    except (AssertionError, httpx.HTTPError, KeyError, ValueError) as exc:
                        bench._error(f"{kind}: {type(exc).__name__}: {str(exc)[:80]}")
                        bench.event(kind, f"{type(exc).__name__}: {str(exc)[:80]}")
                    bench.counts[kind] = bench.counts.get(kind, 0) + 1
                    fault_at += 1
                elif switches < counts["switch"] * elapsed / length:
                    page = "/dashboard" if switches % 4 == 0 else f"/color/{PALETTE[switches % len(PALETTE)]}"
                    posted = time.monotonic()
                    bench.start(daemon, pages.url(page), device)
                    bench.switch_seconds.append(time.monotonic() - posted)
                    switches += 1
                    bench.counts["switch"] = switches
                else:
                    time.sleep(0.05)
            stop_watch.set()
            bench.request(daemon, "POST", "/stop")
            try:
                wait_for(lambda: daemon.status()["state"] == "idle", 60, interval=0.5, message="idle at the end")
            except AssertionError:
                bench._error("not idle 60 s after the last /stop")
            time.sleep(10)
            bench.sample(daemon, "after")
            log_text = daemon.log()  # a window that took over says so (a switch a second later beats it again)
            result["sessions_shown"] = len(bench.shown)
            result["loads"] = len(tv.loads)
            result["windows_seen"] = sum("source=schedule" in line and "session " in line
                                         for line in log_text.splitlines())
            result["status_after"] = {k: v for k, v in daemon.status().items()
                                      if k in ("restarts", "page_hangs", "memory_reloads", "memory_restarts",
                                               "state", "last_error")}
            shm = set(bench.shm_seen)
            tree = castd_processes(daemon.process.pid, bench.marker)
            code = daemon.stop(timeout=30)
            wait_for(lambda: not castd_processes(None, bench.marker), 10, message="castd's processes gone")
    except AssertionError as exc:
        result["error"] = str(exc)[:300]
        shm, tree, code = set(bench.shm_seen), set(), None
    finally:
        stop_watch.set()
        left = castd_processes(None, bench.marker)
        if daemon is not None:
            left |= {pid for pid, _ in daemon.kill_leftovers(grace=0.5)}
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        broker.stop()
        pages.close()
    result.update({
        "exit_code": code, "processes_at_stop": len(tree), "processes_left": len(left),
        "profiles_left": profiles(bench.tmpdir) + profiles(root / "run"),
        "tmp_files_left": _files(bench.tmpdir), "run_files_left": _files(root / "run"),
        "shm_files_left": sorted(p for p in shm if os.path.exists(p)),
        "done": bench.counts, "errors": bench.errors, "5xx": bench.five_xx[:20], "5xx_count": len(bench.five_xx),
        "frozen": {k: v for k, v in bench.frozen.items() if k != "in_spell"},
        "hangs": bench.hangs, "hogs": bench.hogs, "broker_reconnect_s": bench.broker_reconnects,
        "switch_answer_s": {"median": round(statistics.median(bench.switch_seconds), 2) if bench.switch_seconds
                            else None, "max": round(max(bench.switch_seconds), 2) if bench.switch_seconds else None},
        "events": bench.events, "samples": bench.samples,
    })
    run_rows = [r for r in bench.samples if r["label"] == "run"]
    result["flatness"] = flatness(run_rows, warmup_s=max(60.0, minutes * 6), total_s=minutes * 60)
    # castd's own processes at rest (front end, supervisor, cast worker: no browser), the first idle sample
    # after warm-up against the idle one after the last /stop: the cleanest reading of a leak in castd's code
    idle = [r for r in run_rows if r.get("state") == "idle" and r["t"] >= max(60.0, minutes * 6)][:1]
    result["idle_flatness"] = _flat(idle, [r for r in bench.samples if r["label"] == "after"],
                                    ("procs", "pss_mb", "fds", "threads", "tmp_files", "run_files", "shm_files"))
    if daemon is not None and daemon.log_path.exists() and log_copy is not None:
        shutil.copy(daemon.log_path, log_copy)
        result["castd_log"] = str(log_copy)
    if not result.get("error"):
        shutil.rmtree(root, ignore_errors=True)
    else:
        result["kept"] = str(root)
    return result


def report(result: dict, every: float = 60.0) -> None:
    keys = ("procs", "pss_mb", "fds", "threads", "tmp_files", "run_files", "shm_files", "log_per_h", "5xx")
    print(f"\nmonth in an hour: {result['minutes']:g} min; planned {result['plan']}")
    print(f"{'':>10}{'state':>11}" + "".join(f"{k:>11}" for k in keys))
    last_t = -every
    for row in result["samples"]:
        if row["label"] == "run" and row["t"] - last_t < every - 1:
            continue
        last_t = row["t"] if row["label"] == "run" else last_t
        name = row["label"] if row["label"] != "run" else f"{row['t'] / 60:.0f} min"
        print(f"{name:>10}{str(row.get('state'))[:10]:>11}" + "".join(f"{row.get(k, '-')!s:>11}" for k in keys))
    print("\nflatness (median, last 10 % vs first 10 % after warm-up; target within 5 %):")
    for key, f in result["flatness"].items():
        verdict = "flat" if f["flat"] else "NOT flat"
        print(f"  {key:<10} {f['first']:>10} -> {f['last']:<10} {f['change']:+.1%}  {verdict}")
    print("idle (no session), the first idle sample after warm-up -> after the last /stop:")
    for key, f in result.get("idle_flatness", {}).items():
        verdict = "flat" if f["flat"] else "NOT flat"
        print(f"  {key:<10} {f['first']:>10} -> {f['last']:<10} {f['change']:+.1%}  {verdict}")
    hangs = result["hangs"]
    detected = [h for h in hangs if h["detected_s"] is not None]
    watchdog = any(h["watchdog"] for h in hangs)
    hogs = result["hogs"]
    print(f"\ndone: {result['done']}")
    print(f"hung pages: {len(hangs)}, detected {len(detected) if watchdog else 'n/a (no page watchdog on this tree)'}"
          f"{', in ' + str(sorted(h['detected_s'] for h in detected)) + ' s' if detected else ''}; "
          f"streaming again after {sorted(h['streaming_again_s'] for h in hangs if h['streaming_again_s'])} s")
    print(f"memory hogs: {len(hogs)}, caught {sum(h['detected_s'] is not None for h in hogs)} "
          f"({[h['how'] for h in hogs]}, after {[h['detected_s'] for h in hogs]} s)")
    print(f"broker restarts: castd back in {sorted(result['broker_reconnect_s'])} s; schedule windows that took "
          f"over: {result.get('windows_seen')} of {result['plan']['window']}")
    print(f"sessions the player showed: {result.get('sessions_shown')} (LOADs at the TV: {result.get('loads')}); "
          f"encoder SIGKILLs while it played: {result['done'].get('sigkill_on_screen', 0)}")
    print(f"player: longest without a new frame {result['frozen']['longest']} s (at {result['frozen']['at']} s), "
          f"spells over {FROZEN_LIMIT:g} s: {result['frozen']['over_limit']}")
    print(f"5xx: {result['5xx_count']} {result['5xx'][:3]}; a switch's POST /start answered in "
          f"{result['switch_answer_s']['median']} s (median), {result['switch_answer_s']['max']} s (max)")
    print(f"after SIGTERM: exit {result['exit_code']}, processes left {result['processes_left']} "
          f"(of {result['processes_at_stop']}), profiles left {len(result['profiles_left'])}, files left: "
          f"$TMPDIR {result['tmp_files_left']}, runtime dir {result['run_files_left']}, "
          f"/dev/shm {len(result['shm_files_left'])}")
    print(f"castd status at the end: {result.get('status_after')}")
    if result["errors"]:
        print("4xx and failed requests (counted, not 5xx):")
        for what, n in sorted(result["errors"].items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {n:>5} x {what}")
    if result.get("error"):
        print(f"BENCH ERROR: {result['error']} (files kept in {result.get('kept')})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="run length; the counts scale with it")
    parser.add_argument("--sample-seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--json", type=Path, help="write the result and every sample here (castd's log beside it)")
    parser.add_argument("--tree", type=Path, help="run the castd package under this folder (another worktree)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # end castd, the broker and the player on the way out
    log_copy = args.json.with_suffix(".castd.log") if args.json else None
    if log_copy is not None:
        log_copy.parent.mkdir(parents=True, exist_ok=True)
    result = run(args.minutes, args.sample_seconds, args.seed, args.tree, log_copy)
    report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
