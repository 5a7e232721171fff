"""The encoder child's own clean-up paths, with real parts and no daemon (castd/encoder/child.py)."""

import multiprocessing
import threading
import time
from pathlib import Path

import av
import pytest

from castd.config import Config
from castd.encoder import child
from castd.encoder.bridge import Bridge
from castd.encoder.browser import DriverService
from castd.encoder.hls import HlsOutput
from castd.encoder.page import PageThread
from castd.encoder.xvfb import Xvfb
from castd.presets import get_preset
from castd.procutil import SETPRIV
from castd.protocol import Begin, Timeline
from helpers import wait_for

PRESET = get_preset("720p")


def test_a_capture_that_cannot_open_ends_the_crash_bridge_before_its_output_is_closed(tmp_path):
    """Issue 22, found 10: a restarted child bridges the outage with the last picture; when x11grab then
    fails to open, the bridge thread must stop before the output closes, not write into a closed container."""
    first = HlsOutput(tmp_path, PRESET, held=(0.6,))
    still = av.VideoFrame(PRESET.width, PRESET.height, "bgr0")
    still.planes[0].update(bytes([90, 90, 90, 0]) * (PRESET.width * PRESET.height))
    for i in range(25):
        first.write_video(still, time.monotonic(), keyframe=i == 1)
        time.sleep(0.01)
    listed = first.segments()
    first.close()
    bridge = Bridge.begin(tmp_path, PRESET, Timeline(start=first.media_end, discontinuity=True))
    assert bridge is not None
    wait_for(lambda: bridge.output.segments() > listed, 10, message="the bridge listing the held picture")
    # a real page thread, never started: _stream only asks it to navigate before it opens the capture
    page = PageThread(chromium="/nonexistent", chromedriver="/nonexistent", display=":0", width=PRESET.width,
                      height=PRESET.height, page_load_timeout=5, heap_mb=128, log_path=None, report=lambda _: None)
    ours, theirs = multiprocessing.Pipe()
    job = Begin(session="s", folder=str(tmp_path), url="about:blank", timeline=Timeline(discontinuity=True))
    with pytest.raises((av.FFmpegError, OSError)):
        child._stream(theirs, ":65000", PRESET, job, page, child.Reporter(theirs), threading.Event(), bridge)
    assert not bridge._thread.is_alive(), "the bridge thread outlived its output"
    assert bridge._error is None, f"the bridge wrote into a closed output: {bridge._error!r}"
    ours.close()
    theirs.close()


def test_xvfb_and_chromedriver_end_with_the_thread_that_started_them_and_run_no_python_before_exec():
    """The encoder's page thread starts chromedriver, its main thread Xvfb; each must die with the thread
    that started it (PR_SET_PDEATHSIG), set by setpriv before exec: a Popen preexec_fn ran Python in the
    forked copy of the encoder and hung there for good on Debian 13 (castd/procutil.py)."""
    assert SETPRIV, "setpriv (util-linux) is missing"
    config = Config()
    started = {}

    def start():
        started["xvfb"] = Xvfb(config.xvfb, 320, 240)
        service = DriverService(config.chromedriver, log_output=None)
        service.start()
        started["driver"] = service
        started["cmdlines"] = [Path(f"/proc/{p.pid}/cmdline").read_bytes().split(b"\0")[0]
                               for p in (started["xvfb"].process, service.process)]

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(20)
    processes = [started[name].process for name in ("xvfb", "driver") if name in started]
    try:
        # each is the program itself (setpriv exec'd it), not a Python fork still on its way to exec
        assert started["cmdlines"] == [config.xvfb.encode(), config.chromedriver.encode()], started["cmdlines"]
        wait_for(lambda: all(p.poll() is not None for p in processes), 5, message="both ended with their thread")
        assert [p.returncode for p in processes] == [-9, -9]
    finally:
        for process in processes:  # (when the check failed)
            if process.poll() is None:
                process.kill()
                process.wait()
