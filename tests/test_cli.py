"""The `castd` command line against the real daemon: help, exit codes, start --wait, status, stop."""

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time

import msgspec
import pytest

from castd.api.schemas import StatusResponse
from castd.protocol import CastDevice, CastSection
from helpers import ROOT, free_port, wait_for

from fakecast import APP_NETFLIX, FakeCastDevice

SUBCOMMANDS = ["serve", "start", "stop", "status", "devices", "config-example", "doctor"]


def castd(*args, env=None, timeout=60, port=None):
    """Run the real CLI; only the CASTD_* variables given here reach it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASTD_")}
    environ.update(env or {})
    if port is not None:
        environ["CASTD_PORT"] = str(port)
    return subprocess.run([sys.executable, "-m", "castd", *args], capture_output=True, text=True,
                          timeout=timeout, env=environ, cwd=ROOT)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command):
    result = castd(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: castd {command}")


@pytest.mark.parametrize("args", [[], ["bogus"], ["start"], ["start", "--quality", "4k", "http://x/"],
                                  ["status", "--port", "eighty"], ["start", "--volume", "101", "http://x/"],
                                  ["start", "--volume", "loud", "http://x/"],
                                  ["start", "--takeover", "never", "http://x/"]])
def test_usage_errors_exit_2(args):
    assert castd(*args).returncode == 2


def test_client_config_error_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("port = 'x'\n")
    result = castd("status", "--config", str(bad))
    assert result.returncode == 2 and "port" in result.stderr


def test_unreachable_daemon_exits_1():
    result = castd("status", port=free_port())
    assert result.returncode == 1
    assert "cannot reach castd" in result.stderr and "Traceback" not in result.stderr


def test_status_stop_and_rejected_start(idle_daemon):
    d = idle_daemon
    table = castd("status", port=d.port)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["state", "idle"]
    raw = castd("status", "--json", port=d.port)
    assert raw.returncode == 0 and json.loads(raw.stdout)["state"] == "idle"
    stop = castd("stop", port=d.port)
    assert stop.returncode == 0 and "nothing was being cast" in stop.stdout
    bad = castd("start", "file:///etc/passwd", port=d.port)
    assert bad.returncode == 2 and "only http and https" in bad.stderr
    assert d.status()["state"] == "idle"


def test_start_wait_shows_the_steps_then_stop(idle_daemon, pages):
    d = idle_daemon
    result = castd("start", pages.url("/color/00aa00"), "--wait", "--duration", "120", port=d.port)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    steps = re.findall(r"^\s+\[\s*[\d.]+s\] (browser|page loaded|first segment|casting|playing)\b", out, re.M)
    assert steps == ["browser", "page loaded", "first segment"], out
    assert "castd: streaming" in out
    status = d.status()
    assert status["state"] == "streaming" and status["url"].endswith("/color/00aa00")
    table = castd("status", port=d.port).stdout
    assert "streaming" in table and "/color/00aa00" in table and "none set" in table
    stop = castd("stop", port=d.port)
    assert stop.returncode == 0 and f"stopped session {status['session']}" in stop.stdout
    d.wait_state("idle")


def test_start_wait_fails_with_the_reason_when_the_session_ends(idle_daemon, pages):
    d = idle_daemon
    waiting = subprocess.Popen([sys.executable, "-m", "castd", "start", pages.url("/slow/4"), "--wait"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env={**os.environ, "CASTD_PORT": str(d.port)})
    try:
        wait_for(lambda: d.status()["state"] == "starting", 15, message="starting")
        d.post("/stop")
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 1, out + err
    assert "the session ended: stopped" in err


def test_devices_answers_cleanly(idle_daemon):
    d = idle_daemon
    result = castd("devices", port=d.port)
    if d.get("/devices", params={"timeout": 0.5}).status_code == 404:  # only: is there an endpoint?
        assert result.returncode == 1 and "cannot list devices yet" in result.stderr
    else:
        assert result.returncode == 0 and result.stdout.startswith(("name", "no devices found")), result.stdout
    assert "Traceback" not in result.stderr


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):  # noqa: N802
        _Recorder.seen.append(dict(self.headers))
        body = msgspec.json.encode(StatusResponse(stream_url=None, supervisor_restarts=0, snapshot_age=None))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_client_sends_the_configured_token_as_bearer(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = tmp_path / "castd.toml"
        config.write_text(f'port = {server.server_address[1]}\ntoken = "file-token-1234567"\n')
        config.chmod(0o600)  # castd refuses a world-readable file holding a secret
        assert castd("status", "--config", str(config)).returncode == 0
        assert _Recorder.seen[-1]["Authorization"] == "Bearer file-token-1234567"
        env = {"CASTD_TOKEN": "env-token-4567890", "CASTD_PORT": str(server.server_address[1])}
        assert castd("status", env=env).returncode == 0
        assert _Recorder.seen[-1]["Authorization"] == "Bearer env-token-4567890"
        assert castd("status", port=server.server_address[1]).returncode == 0
        assert "Authorization" not in _Recorder.seen[-1]
    finally:
        server.shutdown()
        server.server_close()


def test_config_example_is_the_packaged_file():
    result = castd("config-example")
    assert result.returncode == 0
    assert result.stdout == (ROOT / "castd" / "example.toml").read_text()


def _status(**fields):
    """A /status answer as the API encodes it (the client decodes it with the same type)."""
    return StatusResponse(stream_url=None, supervisor_restarts=0, snapshot_age=None, **fields)


def _cast(*devices):
    return CastSection(devices=[CastDevice(device=name, name=name, state=state) for name, state in devices])


def test_status_table_counts_uptime_on_the_daemons_clock():
    from castd.client.render import status_table

    now = time.time() + 3600  # our clock is an hour off; the table must not care
    table = status_table(_status(state="streaming", started_at=now - 75, updated_at=now, ends_at=now + 30,
                                 fps=9.96, frames=750, segments=75, restarts=2,
                                 cast=_cast(("Living Room", "playing"))))
    for row in ("uptime +1m 15s", "ends in +30s", "fps +10.0", "device +Living Room playing", "restarts +2"):
        assert re.search(f"^{row}$", table, re.M), (row, table)


def test_wait_steps_include_the_cast_when_status_reports_devices():
    from castd.client.progress import WaitFailed, _reached

    base = dict(state="streaming", page="loaded", page_shown=True, encoder_pid=5, session="s")
    assert _reached(_status(state="starting", page="loading", encoder_pid=5)) == 1
    assert _reached(_status(state="starting", page="loaded", encoder_pid=5)) == 2
    assert _reached(_status(**base)) == 3
    assert _reached(_status(**base, cast=_cast(("TV", "loading")))) == 4
    assert _reached(_status(**base, cast=_cast(("TV", "failed"), ("Hall", "playing")))) == 5
    with pytest.raises(WaitFailed, match="casting failed: TV failed"):
        _reached(_status(**base, cast=_cast(("TV", "failed"))))
    with pytest.raises(WaitFailed, match="session failed: boom"):
        _reached(_status(state="failed", last_error="boom\nmore"))
    with pytest.raises(WaitFailed, match="did not load: page: timed out"):
        _reached(_status(state="starting", page="error", last_error="page: timed out"))


def test_a_switch_counts_as_streaming_only_once_its_own_page_is_on_the_stream():
    from castd.client.progress import _reached

    # the snapshot that acknowledges a switch: the stream runs on, the new page loads
    assert _reached(_status(state="streaming", page="loading", page_shown=False, encoder_pid=5), switch=True) == 1
    assert _reached(_status(state="streaming", page="loaded", page_shown=False, encoder_pid=5), switch=True) == 2
    assert _reached(_status(state="streaming", page="loaded", page_shown=True, encoder_pid=5), switch=True) == 3


def test_start_wait_skips_snapshots_from_before_its_start():
    """A snapshot with a smaller seq was taken before the start took effect: the old session, the old
    encoder's pid, the old page "loaded". None of it may be printed or decide the outcome."""
    from castd.client.progress import WaitFailed, wait_for_session

    class Replay:
        def __init__(self, statuses):
            self.statuses = list(statuses)

        def status(self):
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    old = _status(state="streaming", session="s", page="loaded", page_shown=True, encoder_pid=111, seq=4)
    new_loading = _status(state="streaming", session="s", page="loading", encoder_pid=111, seq=5)
    new_error = _status(state="streaming", session="s", page="error", last_error="page: HTTP 404", seq=5,
                        encoder_pid=111)
    lines: list[str] = []
    with pytest.raises(WaitFailed, match="did not load: page: HTTP 404"):
        wait_for_session(Replay([old, new_loading, new_error]), "s", want_device=False, timeout=5, seq=5,
                         switch=True, out=lines.append)
    assert len(lines) == 1 and "switching the page" in lines[0], lines
    # a new session: the old session's snapshot is not "replaced by a newer start"
    before = _status(state="streaming", session="old", page="loaded", page_shown=True, encoder_pid=111, seq=7)
    after = _status(state="streaming", session="new", page="loaded", page_shown=True, encoder_pid=222, seq=8)
    lines = []
    assert wait_for_session(Replay([before, after]), "new", want_device=False, timeout=5, seq=8,
                            out=lines.append).startswith("streaming")
    assert "encoder pid 222" in lines[0] and "111" not in "".join(lines)


def test_status_table_says_what_ends_the_session():
    from castd.client.render import status_table

    now = time.time()
    rows = {"interrupt": "not by itself: the interrupt gives the screen back in 57s",
            "schedule": "4h 41m 0s (the schedule takes over then)", "duration": "57s"}
    for ends_by, text in rows.items():
        left = 57 if ends_by != "schedule" else 4 * 3600 + 41 * 60
        table = status_table(_status(state="streaming", started_at=now - 5, updated_at=now, ends_at=now + left,
                                     ends_by=ends_by, source="interrupt" if ends_by == "interrupt" else "manual"))
        assert re.search(f"^ends in +{re.escape(text)}$", table, re.M), table
    table = status_table(_status(state="streaming", started_at=now - 5, updated_at=now))
    assert re.search("^ends in +never \\(until stopped\\)$", table, re.M), table
    assert re.search("^memory watchdog +0 page reloads, 0 encoder restarts$", table, re.M), table


def test_start_wait_on_a_switch_to_a_failing_page_exits_1(idle_daemon, pages):
    d = idle_daemon
    first = castd("start", pages.url("/color/0000aa"), "--wait", port=d.port)
    assert first.returncode == 0, first.stdout + first.stderr
    switch = castd("start", pages.url("/status/404"), "--wait", port=d.port)
    assert switch.returncode == 1, switch.stdout + switch.stderr
    assert "the page did not load" in switch.stderr and "404" in switch.stderr
    assert "castd: streaming" not in switch.stdout and "first segment" not in switch.stdout
    assert "switching the page" in switch.stdout
    d.post("/stop")
    d.wait_state("idle")


def test_start_of_a_name_that_is_not_configured_exits_2(idle_daemon):
    result = castd("start", "--dashboard", "nosuch", port=idle_daemon.port)
    assert result.returncode == 2 and "no dashboard named 'nosuch'" in result.stderr, result.stderr


def test_start_flags_become_the_sharing_keys_of_the_request_and_unset_ones_are_left_out():
    from castd.cli import _parser
    from castd.client.commands import start_body

    args = _parser().parse_args(["start", "--dashboard", "kitchen", "--takeover", "when-idle", "--sticky",
                                 "--no-wake", "--volume", "30", "--mute", "--silent-start", "--restore-volume"])
    assert start_body(args) == {"dashboard": "kitchen", "takeover": "when-idle", "sticky": True, "wake": False,
                                "volume": 30, "mute": True, "silent_start": True, "restore_volume": True}
    args = _parser().parse_args(["start", "http://x/", "--no-sticky", "--no-mute", "--volume", "0"])
    assert start_body(args) == {"url": "http://x/", "sticky": False, "mute": False, "volume": 0}
    assert start_body(_parser().parse_args(["start", "http://x/"])) == {"url": "http://x/"}


def test_start_wait_on_a_tv_busy_with_netflix_ends_at_once_with_exit_5(idle_daemon, pages):
    """--takeover when-idle reaches castd (under the default `always` castd would take the TV), and --wait ends
    as soon as the TV waits, saying for what, with its own code instead of running to its timeout."""
    d = idle_daemon
    with FakeCastDevice(name=f"castd cli TV {os.getpid()}") as tv:
        tv.switch_app(APP_NETFLIX, "Netflix")
        spec = f"127.0.0.1:{tv.port}"
        started = time.monotonic()
        result = castd("start", pages.url("/color/00aa00"), "--device", spec, "--takeover", "when-idle", "--wait",
                       "--timeout", "60", port=d.port)
        took = time.monotonic() - started
        assert result.returncode == 5, result.stdout + result.stderr
        assert "castd waits for the TV" in result.stdout and "Netflix is on the device" in result.stdout
        assert took < 45, f"ended by the wait, not the timeout ({took:.1f}s)"
        assert tv.current_app == APP_NETFLIX and tv.loads == []
        again = castd("start", pages.url("/color/0000aa"), "--device", spec, "--takeover", "when-idle", port=d.port)
        assert again.returncode == 0 and "waiting: " in again.stdout and "Netflix" in again.stdout, again.stdout
        d.post("/stop")
        d.wait_state("idle")
        wait_for(lambda: d.status()["cast"]["stopping"] == 0, 15, message="the TV's stop settled")
