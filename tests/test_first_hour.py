"""What a new user and an operator meet in the first hour (issue 23): a second castd on the same runtime
dir or port, the log of refused requests, the warning about Chromium's sandbox when run as root."""

import os
import re
import subprocess
import sys

import httpx
import pytest

from helpers import ROOT, Daemon, free_port, wait_for


def serve(*args, env_extra=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTD_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "castd", "serve", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def segments_on_disk(daemon: Daemon, session: str) -> set[str]:
    folder = daemon.runtime_dir / "sessions" / session
    return {p.name for p in folder.glob("*.ts")} if folder.exists() else set()


def test_a_second_castd_on_the_same_runtime_dir_says_who_holds_it_and_changes_nothing(idle_daemon, pages):
    d = idle_daemon
    assert d.post("/start", json={"url": pages.url("/color/336699")}).status_code == 200
    status = d.wait_state("streaming", timeout=30)
    session, restarts = status["session"], status["restarts"]
    wait_for(lambda: status["segments"] < d.status()["segments"], 10, message="segments growing")
    # README, Logs: Chromium's and Xvfb's output for this session is in <runtime dir>/logs/<session>-<hex>/
    assert [p.name for p in (d.runtime_dir / "logs").glob(f"{session}-*") if p.is_dir()], \
        sorted(p.name for p in (d.runtime_dir / "logs").iterdir())
    lock = d.runtime_dir / "castd.pid"
    assert lock.read_text().strip() == str(d.process.pid)
    # `sudo castd serve` by hand while the service runs: same runtime dir, another port
    second = serve("--port", str(free_port()), env_extra={"CASTD_RUNTIME_DIR": str(d.runtime_dir)})
    assert second.returncode == 3, second.stdout + second.stderr
    assert "another castd is running" in second.stderr and f"pid={d.process.pid}" in second.stderr
    assert "removed stale session folder" not in second.stderr and "supervisor" not in second.stderr
    # the running session did not notice: its folder, its encoder, its segments go on
    before = d.status()["segments"]
    wait_for(lambda: d.status()["segments"] >= before + 2, 15, message="two more segments after the second castd")
    after = d.status()
    assert after["session"] == session and after["restarts"] == restarts and after["state"] == "streaming"
    assert segments_on_disk(d, session)
    assert "Invalid argument" not in d.log()
    # the port taken (another runtime dir): the same code, a sentence that says what holds it
    other = serve("--port", str(d.port), env_extra={"CASTD_RUNTIME_DIR": str(d.runtime_dir.parent / "other")})
    assert other.returncode == 3, other.stdout + other.stderr
    assert "cannot listen" in other.stderr and "ss -ltnp" in other.stderr
    assert not (d.runtime_dir.parent / "other" / "castd.pid").exists()  # it released and removed its lock
    assert d.status()["session"] == session
    d.post("/stop")
    d.wait_state("idle")


REFUSALS = [  # (body, content type, the reason in the line) - each one logged at info, once
    (b'{"url": ', "application/json", "body is not valid JSON"),
    (b'{"url": "http://127.0.0.1/", "duration": 999999999}', "application/json", "at most 86400 seconds"),
    (b'{"url": "http://127.0.0.1/", "duration": 5, "then": "resume", "quality": "8k"}', "application/json",
     "quality: unknown preset"),
    (b'{"url": "http://127.0.0.1/", "then": "resume"}', "application/json", "needs a duration"),
    (b'{"url": "file:///etc/passwd"}', "application/json", "only http and https"),
]


@pytest.mark.parametrize("body, kind, reason", REFUSALS, ids=["malformed", "too long", "quality", "then", "scheme"])
def test_every_refused_request_is_one_info_line_with_its_reason(daemon, body, kind, reason):
    mark = len(daemon.log())
    response = daemon.post("/start", content=body, headers={"content-type": kind})
    assert 400 <= response.status_code < 500
    lines = wait_for(lambda: [line for line in daemon.log()[mark:].splitlines() if "request refused" in line], 5,
                     message="the refusal logged")
    assert len(lines) == 1, lines
    assert re.search(r" INFO +castd\.api\.errors: request refused method=POST path=/start status=4\d\d ", lines[0])
    assert reason in lines[0], (reason, lines[0])


def test_a_browsers_own_401_is_info_and_a_control_try_without_the_token_a_warning(tmp_path):
    d = Daemon(runtime_dir=tmp_path / "run", token="first-hour-token-0123", journal=True).start()
    try:
        assert httpx.get(d.base + "/favicon.ico", timeout=5).status_code == 401
        line = wait_for(lambda: [x for x in d.log().splitlines() if "path=/favicon.ico" in x], 5, message="logged")
        assert line[0].startswith("<6>INFO") and "status=401" in line[0], line
    finally:
        d.finish()
    # the level is decided per path (one line per 10 s per castd, so the control path is asked directly)
    from loguru import logger

    from castd.api.auth import FailureLog

    seen: list[str] = []
    sink = logger.add(lambda message: seen.append(message.record["level"].name), format="{message}")
    try:
        FailureLog().note("192.0.2.1", "/start", "POST")
        FailureLog().note("192.0.2.1", "/status", "GET")
    finally:
        logger.remove(sink)
    assert seen == ["WARNING", "INFO"]


def test_running_as_root_warns_once_that_chromium_has_no_sandbox(daemon):
    text = daemon.log()
    warned = text.count("Chromium runs without its sandbox (--no-sandbox)")
    assert warned == (1 if os.geteuid() == 0 else 0), text[:2000]
