"""Soak: stream the demo dashboard for N minutes and watch for slow leaks and hiccups.

Samples RSS and PSS of every process in castd's tree every few seconds (grouped by role:
front end, supervisor, encoder, Xvfb, Chromium) and the arrival of every HLS segment, then
prints memory growth per hour (least-squares slope) and the longest gap between segments.

    python -m bench.soak --minutes 15 [--quality 720p] [--json bench/results/soak.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _get(url: str, timeout: float = 3.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
        return response.read()


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if fields[0] not in ("Z", "X"):
                out.setdefault(int(fields[1]), []).append(int(entry))
    return out


def _memory(pid: int) -> tuple[float, float] | None:
    """(RSS, PSS) in MB from smaps_rollup."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    values = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:] if line.split()}
    return values.get("Rss", 0) / 1024, values.get("Pss", 0) / 1024


def _roles(root: int, status: dict) -> dict[str, list[int]]:
    """castd's processes by role, found by parent links and the PIDs /status reports."""
    children = _children()
    supervisor, encoder = status.get("supervisor_pid"), status.get("encoder_pid")
    roles: dict[str, list[int]] = {"front end": [root], "supervisor": [], "encoder": [], "xvfb+chromium": [],
                                   "other": []}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        if pid == supervisor:
            roles["supervisor"].append(pid)
        elif pid == encoder:
            roles["encoder"].append(pid)
        elif encoder and _is_below(pid, encoder, children):
            roles["xvfb+chromium"].append(pid)
        else:
            roles["other"].append(pid)
    return roles


def _is_below(pid: int, ancestor: int, children: dict[int, list[int]]) -> bool:
    todo = list(children.get(ancestor, []))
    while todo:
        current = todo.pop()
        if current == pid:
            return True
        todo.extend(children.get(current, []))
    return False


def _slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600 if var else 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--quality", default="720p")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of start-up left out of the slopes")
    parser.add_argument("--json", default="bench/results/soak.json")
    args = parser.parse_args(argv)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    runtime = tempfile.mkdtemp(prefix="castd-soak-")
    env = {**os.environ, "CASTD_RUNTIME_DIR": runtime, "CASTD_LOG_LEVEL": "WARNING"}
    log_path = Path(runtime) / "castd.log"
    with log_path.open("wb") as log_file:
        daemon = subprocess.Popen([sys.executable, "-m", "castd", "serve", "--port", str(port)], env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                _get(base + "/health")
                break
            except OSError:
                time.sleep(0.2)
        start = _post(base + "/start", {"url": f"{base}/demo", "quality": args.quality})
        media = start["stream_url"].replace("localhost", "127.0.0.1").rsplit("/", 1)[0] + "/stream.m3u8"
        began = time.monotonic()
        end = began + args.minutes * 60
        memory: dict[str, list[tuple[float, float]]] = {}
        seen: set[str] = set()
        arrivals: list[float] = []
        next_sample = began
        status: dict = {}
        while time.monotonic() < end:
            now = time.monotonic()
            try:
                playlist = _get(media).decode()
                fresh = [line for line in playlist.splitlines() if line.endswith(".ts") and line not in seen]
                for name in fresh:
                    seen.add(name)
                    arrivals.append(now)
            except OSError:
                pass
            if now >= next_sample and now - began >= min(args.warmup, args.minutes * 30):
                status = json.loads(_get(base + "/status"))
                totals: dict[str, float] = {}
                for role, pids in _roles(daemon.pid, status).items():
                    for pid in pids:
                        mem = _memory(pid)
                        if mem:
                            totals[role] = totals.get(role, 0.0) + mem[1]
                totals["all"] = sum(totals.values())
                for role, value in totals.items():
                    memory.setdefault(role, []).append((now - began, value))
                next_sample = now + args.sample_seconds
            time.sleep(0.25)
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        result = {
            "minutes": args.minutes, "quality": args.quality, "segments": len(arrivals),
            "longest_gap_s": round(max(gaps), 2) if gaps else None,
            "median_gap_s": round(sorted(gaps)[len(gaps) // 2], 2) if gaps else None,
            "restarts": status.get("restarts"), "state": status.get("state"),
            "pss_mb": {role: {"first": round(points[0][1], 1), "last": round(points[-1][1], 1),
                              "growth_mb_per_hour": round(_slope_per_hour(points), 1)}
                       for role, points in memory.items() if points},
        }
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        shutil.rmtree(runtime, ignore_errors=True)  # castd's runtime dir and log (left in /tmp before)
    print(f"soak: {args.minutes:g} min of {args.quality}, {result['segments']} segments, "
          f"longest gap {result['longest_gap_s']} s (median {result['median_gap_s']} s), "
          f"restarts {result['restarts']}")
    print(f"{'role':<14}{'PSS first MB':>14}{'PSS last MB':>13}{'growth MB/h':>13}")
    for role, row in result["pss_mb"].items():
        print(f"{role:<14}{row['first']:>14}{row['last']:>13}{row['growth_mb_per_hour']:>13}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
