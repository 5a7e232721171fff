"""The supervisor under concurrency, and process hygiene of the whole daemon."""

import asyncio
import threading
import time

import httpx

from helpers import Daemon, descendants, still_alive, wait_for


def encoder_children(daemon, supervisor_pid):
    """Encoder processes alive now: children of the supervisor that lead their own process group."""
    found = []
    for pid, _ in descendants(supervisor_pid):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == supervisor_pid and int(fields[2]) == pid:
            found.append(pid)
    return found


class EncoderCounter:
    """Samples, every 20 ms in a thread, how many encoder children are alive (use as `with`)."""

    def __init__(self, daemon, supervisor_pid):
        self.daemon, self.supervisor_pid = daemon, supervisor_pid
        self.samples: list[int] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        while not self._done.is_set():
            self.samples.append(len(encoder_children(self.daemon, self.supervisor_pid)))
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def test_twenty_concurrent_starts_leave_one_encoder_and_the_last_state(idle_daemon, pages):
    d = idle_daemon
    supervisor_pid = d.status()["supervisor_pid"]
    colours = [f"{i * 12:02x}{255 - i * 12:02x}80" for i in range(20)]
    qualities = ["720p", "low-latency"]

    async def fire():
        async with httpx.AsyncClient(base_url=d.base, timeout=15) as client:
            return await asyncio.gather(*[
                client.post("/start", json={"url": pages.url(f"/color/{c}"), "quality": qualities[i % 2]})
                for i, c in enumerate(colours)])

    with EncoderCounter(d, supervisor_pid) as counter:
        responses = asyncio.run(fire())
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        bodies = [r.json() for r in responses]
        last = max(bodies, key=lambda b: b["seq"])
        status = d.wait_state("streaming", timeout=30)
        time.sleep(1.0)
    samples = counter.samples
    assert len(samples) > 20 and max(samples) <= 1, f"encoders alive at once: max {max(samples)}"
    assert len(encoder_children(d, supervisor_pid)) == 1
    status = d.status()
    assert status["url"] == last["url"] and status["session"] == last["session"]
    assert status["quality"] == last["quality"]


def test_stop_during_starting(idle_daemon, pages):
    d = idle_daemon
    body = d.post("/start", json={"url": pages.url("/slow/3")}).json()
    assert d.status()["state"] == "starting"
    response = d.post("/stop")
    assert response.json()["stopped"] == body["session"]
    d.wait_state("idle", timeout=10)
    supervisor_pid = d.status()["supervisor_pid"]
    wait_for(lambda: not encoder_children(d, supervisor_pid), 5, message="no encoder")


def test_sigterm_during_stream_leaves_nothing(tmp_path, pages):
    d = Daemon(runtime_dir=tmp_path / "run").start()
    try:
        d.post("/start", json={"url": pages.url("/color/336699")})
        d.wait_state("streaming")
        tree = d.record_descendants()
        assert len(tree) >= 5
        started = time.monotonic()
        code = d.stop(timeout=10)
        elapsed = time.monotonic() - started
        assert code == 0, d.log()
        assert elapsed < 5, f"shutdown took {elapsed:.1f}s"
        wait_for(lambda: not still_alive(tree), 3, message="every child gone")
        assert not list((d.runtime_dir / "sessions").iterdir())
    finally:
        d.stop()
        d.kill_leftovers()
