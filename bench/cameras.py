"""Cameras (issue 21): what a camera costs castd, and how fast a doorbell puts it on the TV.

    .venv/bin/python -m bench.cameras                 # both sections
    .venv/bin/python -m bench.cameras --only cpu --seconds 20
    .venv/bin/python -m bench.cameras --soak 30 --restart-every 300   # the soak alone (shaka49, shaka415)
    .venv/bin/python -m bench.cameras --only audio                    # a camera's sound converted to AAC

cpu: a 1080p25 H.264 camera (a testsrc2 clip made by ffmpeg, High profile, a keyframe every 2 s, served in
real time by GStreamer's RTSP server: tests/rtspserver.py --file) turned into castd's 720p10 HLS, two ways in
turn from the same RTSP mount (interleaved rounds): castd's own path (castd/encoder/camera.py's reader: PyAV decode in
FFmpeg's threads, scaled to 1280x720 once per output frame, castd/encoder/hls.py's x264 + silent AAC +
segmenter), run alone in a process of its own, and the ffmpeg command line doing the same
decode-scale-encode with the same x264 settings. CPU-seconds per second of each process tree from /proc,
medians of --rounds windows; the ratio is castd / ffmpeg; frames per second encoded beside it (10: real time).

switch: a real castd (Chromium on Xvfb), a dashboard streaming, then `POST /start {"camera": ..., "duration":
.., "then": "resume"}`; the time from the webhook to the first listed segment whose last frame shows the
camera (bench/hlswatch.py's way of reading the stream: the moment a player could have it), the camera's own
connect time (its first frame, from the log), the way back to the dashboard when the interrupt ends, and
the same for an overlay in a corner. A 320x240 H.264 test camera (tests/rtspserver.py, a keyframe a second).

audio: the CPU of a camera's sound converted for the track (G.711 -> AAC), in this process.

soak (--soak MINUTES): that test camera with its sound (AAC, audio = true) as a session of its own, played by
Shaka in headless Chromium (--lines), its RTSP server killed and started again every --restart-every s:
stalls (>= 0.1 s) and still pictures (>= 0.3 s without a new frame) at the glass, castd's RSS every 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import proc
from bench.testhelpers import Daemon, PageServer, close_to, fetch_segment, segment_urls, wait_for

FFMPEG = "/usr/bin/ffmpeg"
TESTS = Path(__file__).resolve().parent.parent / "tests"


# ---- cpu ------------------------------------------------------------------------------------------------
def make_clip(path: Path, seconds: int = 60) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=1920x1080:rate=25", "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast",
                    "-profile:v", "high", "-level", "4.1", "-g", "50", "-bf", "0", "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=600)


def serve(clip: Path) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(["/usr/bin/python3", str(TESTS / "rtspserver.py"), "--file", str(clip)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("port "):
        server.kill()
        raise RuntimeError(f"the RTSP server did not start: {line!r}")
    return server, f"rtsp://127.0.0.1:{line.split()[1]}/cam"


def castd_path(url: str, folder: str, seconds: float) -> None:
    """castd's camera path, alone: the reader thread, one scaled picture per output frame, HlsOutput."""
    from castd.config import Camera
    from castd.encoder.camera import CameraReader
    from castd.encoder.hls import HlsOutput
    from castd.presets import get_preset
    preset = get_preset("720p")
    reader = CameraReader("bench", Camera(url=url)).start()
    out = HlsOutput(Path(folder), preset)
    tick = time.monotonic()
    end = tick + seconds
    written = 0
    while time.monotonic() < end:
        picture = reader.picture(preset.width, preset.height)
        if picture is not None:
            out.write_video(picture, time.monotonic())
            written += 1
            mark = Path(folder) / "written.tmp"  # frames of media listed (fills included), swapped in whole
            mark.write_text(str(round(out.media_end * preset.fps)))
            mark.replace(mark.with_name("written"))
        tick += 1 / preset.fps
        time.sleep(max(0.0, tick - time.monotonic()))
    out.close()
    reader.stop()
    print(json.dumps({"written": written, "decoded": reader.frames}), flush=True)


def ffmpeg_command(url: str, folder: Path) -> list[str]:
    from castd.encoder.hls import SEGMENT_PATTERN, segment_options, x264_options
    from castd.encoder.audio import AUDIO_BIT_RATE, AUDIO_RATE
    from castd.presets import get_preset
    preset = get_preset("720p")
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-progress", str(folder / "progress"),
           "-rtsp_transport", "tcp", "-i", url,
           "-f", "lavfi", "-i", f"anullsrc=r={AUDIO_RATE}:cl=stereo", "-map", "0:v", "-map", "1:a",
           "-vf", f"fps={preset.fps},scale={preset.width}:{preset.height}:flags=bilinear",
           "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    for key, value in x264_options(preset).items():
        cmd += [f"-{key}:v", value]
    cmd += ["-c:a", "aac", "-b:a", str(AUDIO_BIT_RATE), "-f", "segment"]
    for key, value in segment_options(0).items():
        cmd += [f"-{key}", value]
    return cmd + [str(folder / SEGMENT_PATTERN)]


def _count(path: Path) -> int:
    """Frames encoded so far: castd's counter file, or the last frame= of ffmpeg's -progress output."""
    try:
        text = path.read_text()
    except OSError:
        return 0
    if path.name == "written":
        return int(text or 0)
    lines = [line for line in text.splitlines() if line.startswith("frame=")]
    return int(lines[-1].split("=", 1)[1]) if lines else 0


def _measure(process: subprocess.Popen, mark: Path, seconds: float, warmup: float) -> dict:
    """CPU-s per wall second of `process`'s tree over `seconds` after `warmup`, and the frames it encoded."""
    time.sleep(warmup)
    if process.poll() is not None:
        raise RuntimeError(f"{process.args[0]} exited early")
    f0, c0 = _count(mark), proc.cpu_snapshot(proc.tree(process.pid))
    t0 = time.monotonic()
    time.sleep(seconds)
    c1, f1 = proc.cpu_snapshot(proc.tree(process.pid)), _count(mark)
    elapsed = time.monotonic() - t0
    used = sum(c1.values()) - sum(v for k, v in c0.items() if k in c1)
    return {"cpu_s_per_s": round(used / elapsed, 3), "frames_per_s": round((f1 - f0) / elapsed, 2)}


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_round(url: str, seconds: float, warmup: float = 4.0) -> dict:
    """castd's path, then ffmpeg, each alone on the same RTSP mount for the same window (interleaved
    rounds; one after the other because on a busy 2-core machine two decoders side by side starve each
    other: measured here at load 20, both fell to a third of real time and the CPU per frame meant nothing).
    frames_per_s (10 = real time) says whether a side kept up."""
    folder = Path(tempfile.mkdtemp(prefix="castd-bench-cam-"))
    try:
        (folder / "castd").mkdir()
        (folder / "ffmpeg").mkdir()
        ours = subprocess.Popen([sys.executable, "-m", "bench.cameras", "--castd-path", url, str(folder / "castd"),
                                 str(warmup + seconds + 2)], stdout=subprocess.DEVNULL)
        try:
            castd = _measure(ours, folder / "castd" / "written", seconds, warmup)
        finally:
            _end(ours)
        theirs = subprocess.Popen(ffmpeg_command(url, folder / "ffmpeg"), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ffmpeg = _measure(theirs, folder / "ffmpeg" / "progress", seconds, warmup)
        finally:
            _end(theirs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"castd_cpu_s_per_s": castd["cpu_s_per_s"], "ffmpeg_cpu_s_per_s": ffmpeg["cpu_s_per_s"],
            "ratio": round(castd["cpu_s_per_s"] / max(1e-6, ffmpeg["cpu_s_per_s"]), 3),
            "castd_fps": castd["frames_per_s"], "ffmpeg_fps": ffmpeg["frames_per_s"],
            "load": round(os.getloadavg()[0], 1)}


def run_cpu(rounds: int, seconds: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="castd-bench-clip-"))
    try:
        clip = work / "camera-1080p25.mp4"
        make_clip(clip, seconds=int(seconds + 30))
        server, url = serve(clip)
        try:
            samples = [cpu_round(url, seconds) for _ in range(rounds)]
        finally:
            server.kill()
            server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"samples": samples,
            "castd_median": statistics.median(s["castd_cpu_s_per_s"] for s in samples),
            "ffmpeg_median": statistics.median(s["ffmpeg_cpu_s_per_s"] for s in samples),
            "ratio_median": statistics.median(s["ratio"] for s in samples)}


# ---- switch --------------------------------------------------------------------------------------------
def newest_shows(media_url: str, rgb, where) -> bool:
    import helpers  # tests/helpers.py (bench.testhelpers put tests/ on the path)
    urls = segment_urls(media_url)
    if not urls:
        return False
    frame = helpers.last_frame_of(fetch_segment(urls[-1]))
    return frame is not None and close_to(where(frame), rgb, 40)


def first_listed(d: Daemon, media_url: str, rgb, where, since: float, timeout: float = 20) -> float:
    """Seconds from `since` (monotonic) to the first newly listed segment whose last frame has `rgb` at `where`."""
    seen = set(segment_urls(media_url))
    deadline = time.monotonic() + timeout
    import helpers
    while time.monotonic() < deadline:
        for url in segment_urls(media_url):
            if url in seen:
                continue
            seen.add(url)
            frame = helpers.last_frame_of(fetch_segment(url))
            if frame is not None and close_to(where(frame), rgb, 40):
                return time.monotonic() - since
        time.sleep(0.05)
    raise RuntimeError(f"no segment with {rgb} within {timeout} s")


def run_switch(rounds: int) -> dict:
    import helpers
    page_rgb, camera_rgb = (0, 0, 255), (0, 255, 0)
    pages = PageServer()
    camera = helpers.RtspCamera(color="00ff00").start()
    folder = Path(tempfile.mkdtemp(prefix="castd-bench-switch-"))
    config = folder / "castd.toml"
    config.write_text(f'[[dashboards]]\nname = "page"\nurl = "{pages.url("/color/0000ff")}"\n\n'
                      f'[cameras.door]\nurl = "{camera.url}"\nusername = "{camera.user}"\n'
                      f'password = "{camera.password}"\n')
    config.chmod(0o600)
    d = Daemon(runtime_dir=folder / "run", args=["--config", str(config)]).start()
    centre = helpers.centre_rgb

    def corner(frame):  # the middle of a 4:3 camera in the top-right quarter (compose.overlay_box)
        box_h = frame.height // 2
        margin = frame.width * 25 // 1000
        return helpers.rgb_at(frame, frame.width - margin - box_h * 4 // 3 // 2, margin + box_h // 3)

    out: dict = {"page": [], "full": [], "back": [], "overlay": [], "overlay_off": [], "connect": []}
    try:
        d.post("/start", json={"dashboard": "page"})
        d.wait_state("streaming", timeout=60)
        media = helpers.media_playlist_url(d.base + d.status()["stream_path"])
        wait_for(lambda: newest_shows(media, page_rgb, centre), 30, message="the dashboard")
        for _ in range(rounds):
            time.sleep(1.5)  # a page switch beside it: what a camera is measured against
            asked = time.monotonic()
            assert d.post("/start", json={"url": pages.url("/color/ff0000")}).status_code == 200
            out["page"].append(round(first_listed(d, media, (255, 0, 0), centre, asked), 3))
            d.post("/start", json={"dashboard": "page"})
            first_listed(d, media, page_rgb, centre, time.monotonic())
            time.sleep(1.5)
            asked, wall = time.monotonic(), time.time()
            assert d.post("/start", json={"camera": "door", "duration": 6, "then": "resume"}).status_code == 200
            out["full"].append(round(first_listed(d, media, camera_rgb, centre, asked), 3))
            state = next(c for c in d.status()["cameras"] if c["name"] == "door")
            out["connect"].append(round(state["connected_at"] - wall, 3) if state.get("connected_at") else None)
            ends = asked + 6
            out["back"].append(round(first_listed(d, media, page_rgb, centre, ends), 3))
            time.sleep(1.5)
            asked = time.monotonic()
            assert d.post("/start", json={"camera": "door", "overlay": "top-right", "duration": 4}).status_code == 200
            out["overlay"].append(round(first_listed(d, media, camera_rgb, corner, asked), 3))
            out["overlay_off"].append(round(first_listed(d, media, page_rgb, corner, asked + 4), 3))
    finally:
        d.finish()
        camera.kill()
        pages.close()
        shutil.rmtree(folder, ignore_errors=True)
    medians = {key: statistics.median([v for v in values if v is not None]) for key, values in out.items() if values}
    return {"samples": out, "medians": medians}


# ---- audio ---------------------------------------------------------------------------------------------
def run_audio(seconds: float = 60.0) -> dict:
    """CPU of a camera's sound that is not the track's format: `seconds` of G.711 A-law 8 kHz mono (a 1 kHz
    tone, most IP cameras' default) decoded, resampled to 48 kHz stereo and AAC-encoded with the track's
    settings, as camera.py's _Sound and audio.py's AacTrack do; beside it the passed-through case costs a copy."""
    import array
    import math
    from fractions import Fraction

    import av

    from castd.encoder.audio import AUDIO_BIT_RATE, AUDIO_FRAME, AUDIO_RATE
    alaw = av.CodecContext.create("pcm_alaw", "w")
    alaw.sample_rate, alaw.layout, alaw.format = 8000, "mono", "s16"
    alaw.time_base = Fraction(1, 8000)
    packets = []
    for first in range(0, int(8000 * seconds), 160):  # 20 ms packets, as RTP carries G.711
        frame = av.AudioFrame(format="s16", layout="mono", samples=160)
        frame.sample_rate, frame.pts, frame.time_base = 8000, first, Fraction(1, 8000)
        frame.planes[0].update(array.array("h", (int(8000 * math.sin(2 * math.pi * 1000 * (first + n) / 8000))
                                                 for n in range(160))).tobytes())
        packets += alaw.encode(frame)
    decoder = av.CodecContext.create("pcm_alaw", "r")
    decoder.sample_rate, decoder.layout = 8000, "mono"
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=AUDIO_FRAME)
    aac = av.CodecContext.create("aac", "w")
    aac.sample_rate, aac.layout, aac.format, aac.bit_rate = AUDIO_RATE, "stereo", "fltp", AUDIO_BIT_RATE
    aac.time_base = Fraction(1, AUDIO_RATE)
    began, n = time.process_time(), 0
    for packet in packets:
        for frame in decoder.decode(packet):
            for out in resampler.resample(frame):
                out.pts = n * AUDIO_FRAME
                n += 1
                aac.encode(out)
    cpu = time.process_time() - began
    return {"seconds": seconds, "cpu_s": round(cpu, 3), "share_of_a_core": round(cpu / seconds, 4)}


# ---- soak ----------------------------------------------------------------------------------------------
def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except OSError:
            pass
    return total / 1024


NEAR = 15.0  # seconds after an RTSP restart in which a still picture is counted as the restart's


def run_soak(minutes: float, restart_every: float, lines: list[str]) -> dict:
    """A camera on the TV for `minutes`, its RTSP server killed and started again (same port) every
    `restart_every` s, played by Shaka (one headless player per line) from the LOAD on. Counted at the glass:
    stalls of a frame (0.1 s) or more and still pictures (no new frame for 0.3 s or more) after the first
    frame (and apart, the stills within NEAR s after a restart: a busy machine makes stills of its own); beside
    it castd's memory (RSS of its own Python processes: front end, supervisor, encoder) every
    10 s, and the camera's reconnections from /status."""
    import helpers
    from glass import ShakaPlayer
    camera = helpers.RtspCamera(color="00ff00").start()
    folder = Path(tempfile.mkdtemp(prefix="castd-bench-soak-"))
    config = folder / "castd.toml"
    config.write_text(f'[cameras.door]\nurl = "{camera.url_at("/aac")}"\nusername = "{camera.user}"\n'
                      f'password = "{camera.password}"\naudio = true\n')
    config.chmod(0o600)
    d = Daemon(runtime_dir=folder / "run", args=["--config", str(config)],
               env_extra={"CASTD_LOG_LEVEL": "INFO"}).start()
    players = [ShakaPlayer(line) for line in lines]
    memory: list[tuple[float, float]] = []
    restarts, connections, offline = 0, set(), 0
    restarted_at: list[float] = []  # wall clock (the player's stills and stalls are stamped on it)
    try:
        body = d.post("/start", json={"camera": "door"}).json()
        d.wait_state("streaming", timeout=60)
        loaded = time.time()
        for player in players:
            player.load(body["stream_url"])
        for player in players:
            player.wait_playing(60)
        began = time.monotonic()
        next_restart = began + restart_every
        next_sample = began
        while time.monotonic() - began < minutes * 60:
            now = time.monotonic()
            if now >= next_restart:
                camera.kill()
                restarted_at.append(time.time())
                camera.start()  # the same port: a camera that rebooted
                restarts += 1
                next_restart += restart_every
            if now >= next_sample:
                assert d.process is not None
                pids = [pid for pid in proc.tree(d.process.pid) if proc.is_python(pid)]
                memory.append((round(now - began, 1), round(_rss_mb(pids), 1)))
                state = next((c for c in d.status().get("cameras", []) if c["name"] == "door"), {})
                if state.get("connected_at"):
                    connections.add(state["connected_at"])
                offline += state.get("state") == "offline"
                next_sample += 10
            time.sleep(0.5)
        glass = {}
        for player in players:
            state = player.state()
            since = state.first_frame_at or loaded
            stalls = [s for s in state.stalls_of_a_frame_or_more(0.1) if s.start >= since]
            stills = state.still_pictures(since=since)
            near = [x for x in stills if any(0 <= x.start - at <= NEAR for at in restarted_at)]
            played = max(1e-6, state.now - since) / 60
            near_minutes = min(played, len(restarted_at) * NEAR / 60)
            glass[player.line] = {
                "version": player.version, "stalls": len(stalls), "stills_near_restart": len(near),
                "stills_per_min_near_restart": round(len(near) / max(1e-6, near_minutes), 2),
                "stills_per_min_otherwise": round((len(stills) - len(near)) / max(1e-6, played - near_minutes), 2),
                "stall_seconds": [round(x.seconds(state.now), 2) for x in stalls][:10],
                "stills": len(stills), "still_seconds": [round(x.seconds(state.now), 2) for x in stills][:10],
                "errors": [e.code for e in state.errors], "frames": state.frames,
                "behind_live_edge": round(state.behind_live_edge or 0, 2)}
        status = d.status()
    finally:
        for player in players:
            player.close()
        d.finish()
        camera.kill()
        shutil.rmtree(folder, ignore_errors=True)
    values = [mb for _, mb in memory]
    return {"minutes": minutes, "restart_every": restart_every, "restarts": restarts,
            "camera_connections_seen": len(connections), "offline_samples": offline, "glass": glass,
            "rss_mb": {"first": values[0], "last": values[-1], "max": max(values), "min": min(values),
                       "samples": memory},
            "session_kept": status.get("session") == body.get("session"), "reloads": status.get("reloads")}


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--castd-path":
        castd_path(argv[1], argv[2], float(argv[3]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.cameras")
    parser.add_argument("--only", default="cpu,switch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0, help="cpu: the measured window of each round")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="soak: a camera this long (only the soak runs)")
    parser.add_argument("--restart-every", type=float, default=300.0, help="soak: seconds between RTSP restarts")
    parser.add_argument("--lines", default="shaka49,shaka415", help="soak: the Shaka lines that play it")
    args = parser.parse_args(argv)
    if args.soak:
        args.only = "soak"
    if not os.access(FFMPEG, os.X_OK) and ("cpu" in args.only or "switch" in args.only):
        print(f"{FFMPEG} not found (make bench installs Debian's ffmpeg)", file=sys.stderr)
        return 2
    results: dict = {"load": os.getloadavg()}
    sections = args.only.split(",")
    if "cpu" in sections:
        results["cpu"] = run_cpu(args.rounds, args.seconds)
        cpu = results["cpu"]
        print(f"cpu: 1080p25 H.264 camera -> 720p10 HLS, CPU-s per second of video: castd "
              f"{cpu['castd_median']:.3f}, ffmpeg {cpu['ffmpeg_median']:.3f}, ratio {cpu['ratio_median']:.2f} "
              f"(medians of {args.rounds} windows of {args.seconds:g} s each, interleaved)")
    if "switch" in sections:
        results["switch"] = run_switch(args.rounds)
        m = results["switch"]["medians"]
        print("switch (webhook -> first listed segment showing it; medians of %d): a page switch %.2f s; camera "
              "full screen %.2f s (camera connected after %.2f s), back to the dashboard %.2f s after the "
              "interrupt's end, overlay on %.2f s, off %.2f s" % (
                  args.rounds, m["page"], m["full"], m.get("connect", float("nan")), m["back"], m["overlay"],
                  m["overlay_off"]))
    if "audio" in sections:
        results["audio"] = audio = run_audio()
        print(f"audio: G.711 8 kHz mono -> AAC 48 kHz stereo, {audio['cpu_s']} CPU-s for {audio['seconds']:g} s of "
              f"sound: {audio['share_of_a_core'] * 100:.1f}% of a core")
    if "soak" in sections:
        results["soak"] = soak = run_soak(args.soak or 30.0, args.restart_every, args.lines.split(","))
        print(f"soak: {soak['minutes']:g} min of a camera (320x240 H.264 + AAC, audio = true), its RTSP server "
              f"restarted every {soak['restart_every']:g} s ({soak['restarts']} times; "
              f"{soak['camera_connections_seen']} connections seen): castd RSS {soak['rss_mb']['first']} MB first, "
              f"{soak['rss_mb']['last']} last, {soak['rss_mb']['max']} max; same session {soak['session_kept']}")
        for line, g in soak["glass"].items():
            print(f"  {line} ({g['version']}): {g['stalls']} stalls >= 0.1 s {g['stall_seconds']}, {g['stills']} "
                  f"stills >= 0.3 s {g['still_seconds']} ({g['stills_near_restart']} within {NEAR:g} s after a "
                  f"restart: {g['stills_per_min_near_restart']} a minute there, {g['stills_per_min_otherwise']} "
                  f"elsewhere), errors {g['errors']}, {g['frames']} frames")
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"cameras-{int(time.time())}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results["load"]))
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
