"""castd/children/piped.py with real spawned processes: the version check at spawn and undecodable messages.
Half a second each (a Python start); the daemon-wide upgrade test is in tests/test_faults.py."""

from __future__ import annotations

import time

from castd.children import exits
from castd.children.piped import PipedChild
from castd.logs import log
from castd.protocol import PROTOCOL_VERSION, Quit, Ready, child_message_decoder
from fakechild import garbage_then_ready
from helpers import wait_for


def test_a_child_of_another_castd_refuses_to_run_and_says_so_once(capfd):
    child = PipedChild(garbage_then_ready, b"", "castd-test", child_message_decoder, version="0.0.1+older")
    try:
        code = wait_for(lambda: child.exitcode(), 20, message="the child's exit")
        assert code == exits.VERSION_MISMATCH and exits.describe(code) == "exited with code 4 (version mismatch)"
        assert child.messages() == [], "it ran nothing: not a byte on its pipe"
        err = capfd.readouterr().err
        assert err.count("castd was upgraded while running") == 1
        assert "parent_version=0.0.1+older" in err and f"version={PROTOCOL_VERSION}" in err
    finally:
        child.kill()
        child.process.join(5)
        child.close()


def test_an_undecodable_message_is_logged_and_the_next_one_still_read():
    records: list = []
    sink = log.add(lambda message: records.append(message.record), level="ERROR")
    child = PipedChild(garbage_then_ready, b"", "castd-test", child_message_decoder)
    try:
        got: list = []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got += child.messages()
            time.sleep(0.02)
        assert got == [Ready(nav=7, url="http://ok.example/")] and child.undecodable == 1
        [record] = [r for r in records if "could not be decoded" in r["message"]]
        assert record["extra"]["child"] == "castd-test" and record["extra"]["count"] == 1
        child.send(Quit())
        assert wait_for(lambda: child.exitcode() is not None, 20, message="exit") and child.exitcode() == 0
    finally:
        child.kill()
        child.process.join(5)
        child.close()
        log.remove(sink)
