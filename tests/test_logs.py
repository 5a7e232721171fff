"""Logs as journald reads them: a <N> priority on every line, a session told as a story, no secrets."""

import os
import re
import signal
import subprocess
import sys

import pytest

from helpers import Daemon, wait_for

TOKEN = "tok-9f3Kq-very-secret"
QUERY_SECRET = "qs-7Hx2-secret"
ACCESS_TOKEN = "at-55Zr-secret"
SECRETS = (TOKEN, QUERY_SECRET, ACCESS_TOKEN)
PREFIXED = re.compile(r"^<([0-7])>(?:(TRACE|DEBUG|INFO|SUCCESS|WARNING|ERROR|CRITICAL) )?")
LEVEL_PRIORITY = {"TRACE": "7", "DEBUG": "7", "INFO": "6", "SUCCESS": "5", "WARNING": "4", "ERROR": "3",
                  "CRITICAL": "2"}


@pytest.fixture(scope="module")
def journal_log(tmp_path_factory, pages):
    """Run one daemon under a fake journald stream through a session, a page failure and a
    supervisor crash, then stop it; return its whole output."""
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("journal") / "run", journal=True, token=TOKEN,
               env_extra={"CASTD_PAGE_LOAD_TIMEOUT": "4"})
    d.start()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        url = pages.url(f"/color/204060?token={QUERY_SECRET}&access_token={ACCESS_TOKEN}")
        assert d.post("/start", json={"url": url, "token": TOKEN}, headers=auth).status_code == 200
        d.wait_state("streaming", timeout=30)
        # a page that takes longer than page_load_timeout: a warning
        assert d.post("/start", json={"url": pages.url("/slow/9")}, headers=auth).status_code == 200
        wait_for(lambda: re.search(r"page failed to load .*/slow/9", d.log()), 20, message="page failure logged")
        assert d.post("/stop", json={"token": TOKEN}, headers=auth).status_code == 200
        d.wait_state("idle")
        # a crashed supervisor: an error (the front end starts a new one)
        supervisor = d.status()["supervisor_pid"]
        d.record_descendants()
        os.kill(supervisor, signal.SIGKILL)
        wait_for(lambda: d.status()["supervisor_pid"] not in (None, supervisor), 20, message="new supervisor")
    finally:
        code = d.stop()
        left = d.kill_leftovers()
    assert code == 0 and not left
    return d.log()


def test_every_line_carries_the_priority_of_its_level(journal_log):
    lines = [line for line in journal_log.splitlines() if line.strip()]
    assert len(lines) > 15
    for line in lines:
        match = PREFIXED.match(line)
        assert match, f"line without a journald priority prefix: {line!r}"
        if match.group(2):
            assert match.group(1) == LEVEL_PRIORITY[match.group(2)], line
    priorities = {PREFIXED.match(line).group(1) for line in lines}
    assert {"3", "4", "6"} <= priorities  # the fixture made an error, a warning and ordinary lines
    warning = [line for line in lines if "page failed to load" in line]
    assert warning and all(line.startswith("<4>WARNING") for line in warning)
    assert any(line.startswith("<3>ERROR") and "supervisor died" in line for line in lines)


def test_a_session_reads_as_a_story_at_info(journal_log):
    story = ["webhook start", "session start", "encoder started", "page loaded", "first segment",
             "webhook start", "session switch", "page failed to load", "webhook stop", "session stop"]
    lines = journal_log.splitlines()
    at = 0
    for event in story:
        found = next((i for i in range(at, len(lines)) if f": {event}" in lines[i]), None)
        assert found is not None, f"{event!r} missing after line {at}:\n" + "\n".join(lines[at:at + 30])
        if event != "page failed to load":
            assert lines[found].startswith("<6>INFO"), lines[found]  # `journalctl -p warning` hides it
        at = found + 1
    stop = next(line for line in lines if ": session stop" in line)
    assert "reason=" in stop


def test_no_secret_in_any_line(journal_log):
    for secret in SECRETS:
        assert secret not in journal_log, f"{secret} leaked into the log"
    assert "token=***" in journal_log  # the URL was logged, masked


def test_tracebacks_get_the_prefix_on_every_line_and_are_scrubbed(tmp_path):
    script = (
        "from castd.logs import log, setup_logging, register_secret\n"
        "setup_logging('INFO')\n"
        f"register_secret({TOKEN!r})\n"
        "try:\n"
        f"    raise RuntimeError('failed at http://h/?token={QUERY_SECRET} with ' + {TOKEN!r})\n"
        "except RuntimeError:\n"
        "    log.exception('encoder failed', session='s1')\n"
    )
    out = tmp_path / "stderr"
    with out.open("wb") as fh:
        st = os.fstat(fh.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        subprocess.run([sys.executable, "-c", script], stderr=fh, env=env, timeout=30, check=True)
    lines = out.read_text().splitlines()
    assert len(lines) >= 4 and lines[0].startswith("<3>ERROR") and "encoder failed" in lines[0]
    assert all(line.startswith("<3>") for line in lines), lines
    assert any("RuntimeError: failed at" in line for line in lines)
    text = out.read_text()
    assert QUERY_SECRET not in text and TOKEN not in text
