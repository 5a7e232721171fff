"""Driving castd through its public HTTP API, and waiting for it to settle between runs."""

from __future__ import annotations

import time

import httpx

from bench import proc
from bench.hlswatch import BenchError
from bench.testhelpers import Daemon


class Castd:
    """A running daemon (tests' Daemon) plus a keep-alive HTTP client to it."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.client = httpx.Client(base_url=daemon.base, timeout=10, headers=daemon.auth())

    @property
    def pid(self) -> int:
        return self.daemon.process.pid

    def status(self) -> dict:
        return self.client.get("/status").json()

    def start(self, url: str, quality: str) -> dict:
        response = self.client.post("/start", json={"url": url, "quality": quality})
        if response.status_code != 200:
            raise BenchError(f"/start answered {response.status_code}: {response.text[:200]}")
        return response.json()

    def wait_page_loaded(self, timeout: float = 30) -> dict:
        """Wait until castd streams and reports the wanted page as loaded."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status["state"] == "streaming" and status.get("page") == "loaded":
                return status
            if time.monotonic() > deadline:
                raise BenchError(f"page not streaming after {timeout:.0f}s: {status}")
            time.sleep(0.1)

    def frame_mark(self, timeout: float = 3.0) -> tuple[int, float]:
        """(frames, wall time) taken the moment the frame counter in /status moves. The encoder
        reports every 0.5 s, so reading /status at an arbitrary time is up to 0.5 s stale; the
        edge is exact to a poll (~20 ms), which keeps a 10 s frame-rate window within 0.5 %."""
        first = self.status()["frames"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.02)
            status = self.status()
            if status["frames"] != first:
                return status["frames"], time.time()
        raise BenchError(f"the frame counter did not move in {timeout:.0f}s (encoder stalled?)")

    def stop(self) -> None:
        self.client.post("/stop")

    def wait_state(self, state: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        status = self.status()
        while status["state"] != state:
            if time.monotonic() > deadline:
                raise BenchError(f"castd did not reach state {state} in {timeout:.0f}s "
                                 f"(state {status['state']}, error {status.get('last_error')})")
            time.sleep(0.05)
            status = self.status()
        return status

    def helpers_running(self) -> list[int]:
        """Processes below castd that are not castd's own (Xvfb, chromedriver, Chromium)."""
        return [pid for pid in proc.tree(self.pid) if not proc.is_python(pid)]

    def settle_idle(self, nothing_running: bool, standby: bool = False, timeout: float = 20) -> None:
        """Stop any session, wait for idle (and, for a cold start, for every browser part to be
        gone; with `standby`, for castd to report its warm standby ready), then until the tree is
        quiet, so the next run does not share the CPU with the last."""
        self.stop()
        status = self.wait_state("idle", timeout)
        if standby and "standby" in status:  # castd says when its standby is ready
            deadline = time.monotonic() + 30
            while status["standby"] != "warm":
                if time.monotonic() > deadline:
                    raise BenchError("no warm standby 30 s after the session ended")
                time.sleep(0.05)
                status = self.status()
        if nothing_running:
            deadline = time.monotonic() + timeout
            while self.helpers_running():
                if time.monotonic() > deadline:
                    raise BenchError("browser processes still running after the session ended")
                time.sleep(0.05)
        wait_quiet(self.pid)

    def close(self) -> None:
        self.client.close()


def wait_quiet(root: int, threshold: float = 0.1, window: float = 0.5, timeout: float = 10.0) -> float:
    """Wait until the tree under `root` uses less than `threshold` CPU-s/s over `window`; returns
    the last rate (gives up quietly after `timeout`: a busy machine is reported, not fatal)."""
    deadline = time.monotonic() + timeout
    rate = float("inf")
    while time.monotonic() < deadline:
        before = proc.cpu_snapshot(proc.tree(root))
        time.sleep(window)
        rate = proc.cpu_delta(before, proc.cpu_snapshot(proc.tree(root))) / window
        if rate < threshold:
            break
    return rate
