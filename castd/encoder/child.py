"""The encoder child process: Xvfb + Chromium + PyAV x11grab -> libx264/AAC -> HLS.

One process, one job: capture and encode. It decides nothing; it reports progress (frames, fps,
segments) at least twice a second and events (page loaded, first segment showing the page,
errors) to the supervisor, and obeys Navigate and Quit. It leads its own process group so the
supervisor can end it and every helper it started with one killpg.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import av
import msgspec

from castd.encoder.hls import HlsOutput
from castd.encoder.page import PageThread
from castd.encoder.pagecut import FIRST_HOLD, Action, PageCut
from castd.encoder.xvfb import Xvfb
from castd.logs import log, setup_logging
from castd.presets import Preset
from castd.procutil import group_members, set_pdeathsig
from castd.protocol import ChildEvent, Navigate, Progress, Quit, child_command_decoder, encode

REPORT_INTERVAL = 0.5


class ChildParams(msgspec.Struct, kw_only=True):
    session: str
    url: str
    preset: Preset
    folder: str
    chromium: str
    chromedriver: str
    xvfb: str
    page_load_timeout: float
    log_level: str = "INFO"


class Reporter:
    """Thread-safe sender on the child's pipe (the frame loop and the page thread both report)."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, message: msgspec.Struct) -> None:
        with self._lock:
            try:
                self._conn.send_bytes(encode(message))
            except (BrokenPipeError, OSError):
                pass


def main(conn, params_bytes: bytes) -> None:
    """Entry point of the spawned child; exits 0 on Quit, 1 on a fatal error."""
    os.setpgrp()
    set_pdeathsig(signal.SIGTERM)
    params = msgspec.msgpack.decode(params_bytes, type=ChildParams)
    setup_logging(params.log_level)
    log.configure(extra={"session": params.session})
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    report = Reporter(conn)
    code = 0
    try:
        _run(conn, params, report, stopping)
    except Exception as exc:  # reported, then the supervisor decides about a restart
        log.exception("encoder failed")
        report(ChildEvent(kind="error", message=f"{type(exc).__name__}: {exc}"[:500]))
        code = 1
    finally:
        _end_helpers()
    os._exit(code)


def _end_helpers() -> None:
    """Kill whatever is left in our process group (Chromium helpers that outlived chromedriver)."""
    me = os.getpid()
    for pid in group_members(os.getpgrp()):
        if pid != me:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _run(conn, params: ChildParams, report: Reporter, stopping: threading.Event) -> None:
    preset = params.preset
    folder = Path(params.folder)
    folder.mkdir(parents=True, exist_ok=True)
    logs_dir = folder.parent / (folder.name + ".logs")
    logs_dir.mkdir(exist_ok=True)
    xvfb = Xvfb(params.xvfb, preset.width, preset.height, log_path=logs_dir / "xvfb.log")
    page = PageThread(chromium=params.chromium, chromedriver=params.chromedriver, display=xvfb.display,
                      width=preset.width, height=preset.height, page_load_timeout=params.page_load_timeout,
                      log_path=logs_dir / "chromedriver.log", report=report)
    nav = 0
    page.start()
    page.navigate(params.url, nav)
    capture = output = None
    try:
        capture = av.open(f"{xvfb.display}.0", format="x11grab", options={
            "video_size": f"{preset.width}x{preset.height}", "framerate": str(preset.fps),
            "draw_mouse": "0"})
        output = HlsOutput(folder, preset, first_hold=FIRST_HOLD)
        log.info("encoder running", display=xvfb.display, quality=preset.name, pid=os.getpid())
        started = time.monotonic()
        last_report = 0.0
        last_segments = 0
        last_segment_at: float | None = None
        cut = PageCut(preset.fps, preset.gop)
        frames_at_report, time_at_report = 0, started
        for frame in capture.decode(video=0):
            now = time.monotonic()
            action = cut.decide(now, nav, page.loaded_nav, page.loaded_at)
            if action is not Action.SKIP:
                output.write_video(frame, now, keyframe=action is Action.CUT)
            if action is Action.CUT:  # the segment ending with this page is listed now
                output.segments()  # writes the master playlist with the first segment
                report(ChildEvent(kind="ready", nav=nav, url=params.url))
            if now - last_report >= REPORT_INTERVAL:
                segments = output.segments()
                if segments != last_segments:
                    last_segments, last_segment_at = segments, time.time()
                fps = (output.frames - frames_at_report) / max(1e-6, now - time_at_report)
                frames_at_report, time_at_report = output.frames, now
                report(Progress(frames=output.frames, fps=round(fps, 2), segments=segments,
                                last_frame_at=time.time(), last_segment_at=last_segment_at))
                last_report = now
            while conn.poll():
                try:
                    command = child_command_decoder.decode(conn.recv_bytes())
                except EOFError:  # the supervisor is gone
                    command = Quit()
                if isinstance(command, Quit):
                    stopping.set()
                elif isinstance(command, Navigate):
                    nav, params.url = command.nav, command.url
                    page.navigate(command.url, nav)
            if page.failed:
                raise RuntimeError(page.failed)
            if stopping.is_set():
                break
    finally:
        if output is not None:
            output.close()
        if capture is not None:
            capture.close()
        page.stop()
        xvfb.stop()
