"""castd/children/ with real processes and files: the version check at spawn and undecodable messages (half
a second each: a Python start; the daemon-wide upgrade test is in tests/test_faults.py), and child output
files kept to their last lines (castd/children/logcap.py)."""

from __future__ import annotations

import time
from pathlib import Path

from castd.children import exits, logcap
from castd.children.piped import PipedChild
from castd.logs import log
from castd.protocol import PROTOCOL_VERSION, Quit, Ready, child_message_decoder
from fakechild import Rig, garbage_then_ready
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


def test_a_childs_output_file_is_cut_to_its_last_lines_and_its_writer_goes_on(tmp_path):
    path = tmp_path / "chromedriver.log"
    writer = open(path, "ab", buffering=0)  # as Xvfb's (and selenium's "a+") are opened: O_APPEND
    try:
        for i in range(20_000):
            writer.write(b"[1205/134200.000:ERROR:console] page error number %06d\n" % i)
        assert path.stat().st_size > logcap.MAX_BYTES
        assert logcap.trim_folder(tmp_path) == ["chromedriver.log"]
        writer.write(b"after the cut\n")
        lines = path.read_bytes().splitlines()
        assert lines[0].startswith(b"[castd: earlier output dropped") and lines[-1] == b"after the cut"
        assert lines[1].endswith(b"number 019900") and lines[-2].endswith(b"number 019999")
        assert len(lines) == logcap.KEEP_LINES + 2 and path.stat().st_size < 10_000
        assert not logcap.trim(path), "under the cap: left alone"
        assert logcap.tail(path, 14) == "after the cut" and logcap.tail(tmp_path / "missing", 20) == ""
    finally:
        writer.close()


def test_the_supervisor_trims_its_encoders_output_files(tmp_path):
    rig = Rig(tmp_path)
    rig.streaming()
    folder = Path(rig.encoder.params.logs_dir)
    folder.mkdir(parents=True)
    (folder / "xvfb.log").write_bytes(b"x" * 100 + b"\n" + b"line\n" * 100_000)
    rig.run(31)
    assert (folder / "xvfb.log").stat().st_size < 2_000
