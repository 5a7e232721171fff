"""The encoder child process: Xvfb + Chromium + PyAV x11grab -> libx264/AAC -> HLS.

One process, one job: capture and encode. It decides nothing; it reports progress (frames, fps,
segments) at least twice a second and events (page loaded, first segment showing the page,
errors) to the supervisor, and obeys Navigate and Quit. It leads its own process group so the
supervisor can end it and every helper it started with one killpg.

Its whole tree (Xvfb, chromedriver, Chromium) writes temporary files under ChildParams.tmp_dir
($TMPDIR), a folder of its own in castd's runtime folder: removed here on a normal end, and by the
supervisor after any end (a SIGKILL included). A normal end takes at most page.STOP_WAIT (2 s) +
END_HELPERS_WAIT (1 s) + Xvfb's exit (ms): protocol.ENCODER_QUIT_GRACE gives it 4 s before the kill.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import av
import msgspec

from castd.children import exits
from castd.children.piped import worth_logging
from castd.encoder.bridge import Bridge
from castd.encoder.hls import HlsOutput
from castd.encoder.navguard import NavGuard
from castd.encoder.page import PageHungError, PageThread
from castd.encoder.pagecut import Action, PageCut
from castd.encoder.scene import Scene
from castd.encoder.sites import site_secrets
from castd.encoder.snapshot import Snapshotter
from castd.encoder.xvfb import Xvfb
from castd.logs import log, register_secret, setup_logging
from castd.presets import Preset
from castd.procutil import end_everything_below, set_child_subreaper, set_pdeathsig
from castd.protocol import (Begin, ChildParams, Failed, Navigate, Overlays, Park, Parked, Progress, Quit, Ready,
                            child_command_decoder,
                            encode)

REPORT_INTERVAL = 0.5
END_HELPERS_WAIT = 1.0  # SIGKILLed helpers are reaped in ms


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


def missing_programs(params: ChildParams) -> list[str]:
    """The programs this child needs that are not there (or not executable): it cannot boot without them."""
    return [path for path in (params.xvfb, params.chromium, params.chromedriver) if not os.access(path, os.X_OK)]


def main(conn, params_bytes: bytes) -> None:
    """Entry point of the spawned child; exits 0 on Quit, exits.CRASHED on a fatal error, exits.CANNOT_BOOT
    when a program it needs is missing (the supervisor then fails the session at once)."""
    os.setpgrp()
    set_pdeathsig(signal.SIGTERM)
    set_child_subreaper()  # Chromium's crashpad handler double-forks; keep it below us
    params = msgspec.msgpack.decode(params_bytes, type=ChildParams)
    use_tmp_dir(params.tmp_dir)
    setup_logging(params.log_level)
    for secret in params.log_secrets + site_secrets(params.sites):
        register_secret(secret)
    if params.session:
        log.configure(extra={"session": params.session})
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    report = Reporter(conn)
    missing = missing_programs(params)
    if missing:
        message = f"cannot boot: missing or not executable: {', '.join(missing)}"
        log.error("encoder cannot boot", missing=", ".join(missing))
        report(Failed(error=message))
        os._exit(exits.CANNOT_BOOT)
    code = exits.OK
    try:
        _run(conn, params, report, stopping)
    except PageHungError as exc:  # the page watchdog's last step: a new encoder
        report(Failed(error=str(exc)[:500], code=exc.code))
        code = exits.CRASHED
    except Exception as exc:  # reported, then the supervisor decides about a restart
        log.exception("encoder failed")
        report(Failed(error=f"{type(exc).__name__}: {exc}"[:500]))
        code = exits.CRASHED
    finally:
        _end_helpers()
        if params.tmp_dir:  # (after a SIGKILL the supervisor removes it)
            shutil.rmtree(params.tmp_dir, ignore_errors=True)
    os._exit(code)


def use_tmp_dir(folder: str) -> None:
    """Point $TMPDIR of this process and everything it starts at `folder` (Chromium writes its profile
    and `org.chromium.Chromium.*` folders there); before any helper starts."""
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = None  # tempfile caches the folder it found first


def _end_helpers() -> None:
    """Kill whatever is left below us or in our group (Chromium helpers that outlived chromedriver,
    crashpad handlers that left the group but were re-parented to us), and reap them before we exit:
    unreaped, they would pass to the front end (the next subreaper up) as leftovers."""
    left = end_everything_below(grace=END_HELPERS_WAIT)
    if left:
        log.debug("ended helpers", pids=",".join(map(str, sorted(left))))


def _run(conn, params: ChildParams, report: Reporter, stopping: threading.Event) -> None:
    """Set up the display and the browser once, then stream sessions; between them, park."""
    preset = params.preset
    logs_dir = Path(params.logs_dir)
    logs_dir.mkdir(parents=True, exist_ok=True)
    job = Begin(session=params.session, folder=params.folder, url=params.url, nav=params.nav,
                page=params.page, timeline=params.timeline) if params.session else None
    # a child that continues a session after a break holds the last picture until its page is back
    bridge = Bridge.begin(Path(job.folder), preset, job.timeline) \
        if job is not None and job.timeline.discontinuity else None
    xvfb = page = None
    try:
        guard = NavGuard(params.allowlist)
        xvfb = Xvfb(params.xvfb, preset.width, preset.height, log_path=logs_dir / "xvfb.log")
        page = PageThread(chromium=params.chromium, chromedriver=params.chromedriver, display=xvfb.display,
                          width=preset.width, height=preset.height, page_load_timeout=params.page_load_timeout,
                          heap_mb=params.renderer_heap_mb, log_path=logs_dir / "chromedriver.log", report=report,
                          navguard=guard, extra_flags=guard.chromium_flags(logs_dir / "navguard"),
                          sites=params.sites, hang_seconds=params.page_hang_seconds)
        page.start()
        while not stopping.is_set():
            if job is None:
                job = _park(conn, page, report, stopping)
            else:
                log.configure(extra={"session": job.session})
                handed, bridge = bridge, None  # _stream takes the output over (and closes it)
                job = _stream(conn, xvfb.display, preset, job, page, report, stopping, handed,
                              scene=Scene(page, params.cameras, preset.width, preset.height, report,
                                          overlays=params.overlays if job.session == params.session else []))
    finally:
        if bridge is not None:  # the display or the browser failed before the page could take over
            try:
                bridge.end()
            finally:
                bridge.output.close()
        if page is not None:
            page.stop()
        if xvfb is not None:
            xvfb.stop()


_undecodable_commands = 0  # commands from the supervisor this child could not decode (each logged or counted)


def _next_command(conn):
    """The supervisor's next command; Quit once it is gone. One this child cannot decode (a torn message, a
    supervisor of another castd) is logged, bounded as children/piped.py logs the other way, and read past:
    None, which no caller acts on, so the stream goes on instead of the child crashing on it."""
    global _undecodable_commands
    try:
        data = conn.recv_bytes()
    except EOFError:  # the supervisor is gone
        return Quit()
    try:
        return child_command_decoder.decode(data)
    except msgspec.DecodeError as exc:
        _undecodable_commands += 1
        if worth_logging(_undecodable_commands):
            log.error("command from the supervisor could not be decoded; skipped", error=str(exc), size=len(data),
                      count=_undecodable_commands, start=repr(data[:60]))
        return None


def _park(conn, page: PageThread, report: Reporter, stopping: threading.Event) -> Begin | None:
    """Warm standby: Chromium at about:blank, no capture, no encoding; wait for a Begin."""
    page.navigate("about:blank", -1)
    log.configure(extra={})
    report(Parked())
    log.info("encoder parked")
    while not stopping.is_set():
        if page.failed:
            raise RuntimeError(page.failed)
        page.check_hang(time.monotonic())
        if conn.poll(REPORT_INTERVAL):
            command = _next_command(conn)
            if isinstance(command, Begin):
                return command
            if isinstance(command, Quit):
                stopping.set()
        report(Progress(frames=0, fps=0.0, segments=0, last_frame_at=time.time(), last_segment_at=None))
    return None


def _stream(conn, display: str, preset: Preset, job: Begin, page: PageThread, report: Reporter,
            stopping: threading.Event, bridge: Bridge | None = None, scene: Scene | None = None) -> Begin | None:
    """Capture and encode one session into job.folder until Park (returns None), Quit, or a fault.
    With a `bridge` (a restart), its held picture fills the stream until the page is on screen."""
    folder = Path(job.folder)
    folder.mkdir(parents=True, exist_ok=True)
    nav, url = job.nav, job.url
    scene = scene or Scene(page, {}, preset.width, preset.height, report)  # the page, or cameras (scene.py)
    token = scene.navigate(url, nav, job.page)
    capture = None
    output: HlsOutput | None = bridge.output if bridge is not None else None
    bridged: av.VideoFrame | None = None
    try:
        capture = av.open(f"{display}.0", format="x11grab", options={
            "video_size": f"{preset.width}x{preset.height}", "framerate": str(preset.fps),
            "draw_mouse": "0"})
        if bridge is not None:
            bridged = bridge.end()
            log.info("capture takes over from the held picture", frames=bridge.frames)
        out = output = output or HlsOutput(folder, preset, held=preset.stream.held_segments, timeline=job.timeline)
        snapshot = Snapshotter(folder)
        log.info("encoder running", display=display, quality=preset.name, pid=os.getpid())
        started = time.monotonic()
        last_report = 0.0
        last_segments = 0
        last_segment_at: float | None = None
        cut = PageCut(preset.fps, preset.gop)
        frames_at_report, time_at_report = 0, started
        held = None  # the last picture shown; repeated while the page thread holds (a page loading)
        captured = 0
        for frame in capture.decode(video=0):
            now = time.monotonic()
            captured += 1
            if scene.holding and held is not None:
                frame = held
            else:
                held = frame
            action = cut.decide(now, token, scene.loaded_token, scene.loaded_at)
            frame = scene.compose(frame, now)  # a camera in the page's place, cameras over it
            out.sound.feed = scene.audio_feed()  # a camera's sound, or silence
            if action is Action.SKIP and bridged is not None:
                out.write_video(bridged, now)  # the page is not back yet: the TV keeps its picture
            elif bridged is not None:
                bridged = None
            if action is not Action.SKIP:
                if out.write_video(frame, now, keyframe=action is Action.CUT) and action is Action.WRITE:
                    cut.segment_started()
                snapshot.maybe_write(frame, now)
            if action is Action.CUT:  # the segment ending with this page is listed now
                report(Ready(nav=nav, url=url))
            if now - last_report >= REPORT_INTERVAL:
                # 0 until this encoder has written a frame: after a restart the playlist it appends
                # to already lists segments, and the supervisor allows for a page load only at 0
                segments = out.segments() if out.frames else 0
                if segments != last_segments:
                    last_segments, last_segment_at = segments, time.time()
                frames = captured  # the loop's pulse: captured, even before the page
                fps = (frames - frames_at_report) / max(1e-6, now - time_at_report)
                frames_at_report, time_at_report = frames, now
                report(Progress(frames=frames, fps=round(fps, 2), segments=segments,
                                last_frame_at=time.time(), last_segment_at=last_segment_at,
                                media_end=out.media_end, cameras=scene.statuses()))
                last_report = now
            while not stopping.is_set() and conn.poll():
                command = _next_command(conn)
                if isinstance(command, Quit):
                    stopping.set()
                elif isinstance(command, Park):
                    return None
                elif isinstance(command, Navigate):
                    nav, url = command.nav, command.url
                    token = scene.navigate(url, nav, command.page)
                elif isinstance(command, Overlays):
                    scene.set_overlays(command.items)
            if page.failed:
                raise RuntimeError(page.failed)
            page.check_hang(now)  # the page watchdog (encoder/pagewatch.py): a hung page gets a new browser
            if stopping.is_set():
                break
    finally:
        if bridge is not None:  # x11grab failed to open: the bridge thread still writes (end() is idempotent)
            with contextlib.suppress(Exception):
                bridge.end()
        scene.close()
        if output is not None:
            output.close()
        if capture is not None:
            capture.close()
    return None
