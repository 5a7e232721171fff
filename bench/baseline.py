"""The ffmpeg command-line baseline: the same x11grab -> libx264 -> HLS work as castd's encoder,
with the same settings (taken from castd.encoder.hls, not copied), on the same X display while
castd streams the same page, so both encode identical pictures side by side."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import proc
from bench.control import Castd
from bench.hlswatch import BenchError
from castd.encoder.hls import SEGMENT_PATTERN, segment_options, x264_options
from castd.encoder.audio import AUDIO_BIT_RATE, AUDIO_RATE
from castd.presets import Preset

FFMPEG = "/usr/bin/ffmpeg"


def display_of(castd: Castd, encoder_pid: int) -> str:
    """The X display castd's encoder grabs, read from the environment of its browser processes."""
    for pid in proc.tree(encoder_pid):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"DISPLAY="):
                return item[8:].decode()
    raise BenchError("cannot find the encoder's X display")


def command(display: str, preset: Preset, folder: Path, progress: Path) -> list[str]:
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-progress", str(progress),
           "-f", "x11grab", "-draw_mouse", "0", "-framerate", str(preset.fps),
           "-video_size", f"{preset.width}x{preset.height}", "-i", f"{display}.0",
           "-f", "lavfi", "-i", f"anullsrc=r={AUDIO_RATE}:cl=stereo",
           "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    for key, value in x264_options(preset).items():
        cmd += [f"-{key}:v", value]
    cmd += ["-c:a", "aac", "-b:a", str(AUDIO_BIT_RATE), "-f", "segment"]
    for key, value in segment_options(0).items():
        cmd += [f"-{key}", value]
    return cmd + [str(folder / SEGMENT_PATTERN)]


def _frames(progress: Path) -> int:
    frames = 0
    try:
        for line in progress.read_text().splitlines():
            if line.startswith("frame="):
                frames = int(line.split("=", 1)[1])
    except (OSError, ValueError):
        pass
    return frames


def _progress_mark(progress: Path, timeout: float = 3.0) -> tuple[int, float]:
    """(frames, wall time) the moment ffmpeg's -progress output moves (it writes every 0.5 s)."""
    first = _frames(progress)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.02)
        frames = _frames(progress)
        if frames != first:
            return frames, time.time()
    raise BenchError("ffmpeg's frame counter did not move")


def side_by_side(castd: Castd, preset: Preset, seconds: float, warmup: float = 3.0) -> dict:
    """CPU-s per second of video of castd's encoder process and of ffmpeg, measured together."""
    if not os.access(FFMPEG, os.X_OK):
        raise BenchError(f"{FFMPEG} not found (make bench installs Debian's ffmpeg)")
    status = castd.status()
    encoder = status["encoder_pid"]
    display = display_of(castd, encoder)
    folder = Path(tempfile.mkdtemp(prefix="castd-bench-ffmpeg-"))
    progress = folder / "progress.txt"
    cmd = command(display, preset, folder, progress)
    ffmpeg = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(warmup)
        if ffmpeg.poll() is not None:
            raise BenchError(f"ffmpeg exited: {ffmpeg.stderr.read().decode(errors='replace')[-300:]}")
        castd0, ffmpeg0 = castd.frame_mark(), _progress_mark(progress)
        enc0 = proc.cpu_snapshot([encoder], reaped=False)
        ff0 = proc.cpu_snapshot([ffmpeg.pid])
        t0 = time.monotonic()
        time.sleep(seconds)
        enc1 = proc.cpu_snapshot([encoder], reaped=False)
        ff1 = proc.cpu_snapshot([ffmpeg.pid])
        t1 = time.monotonic()
        castd1, ffmpeg1 = castd.frame_mark(), _progress_mark(progress)
        status1 = castd.status()
        segments = len(list(folder.glob("*.ts")))
    finally:
        ffmpeg.terminate()
        try:
            ffmpeg.wait(5)
        except subprocess.TimeoutExpired:
            ffmpeg.kill()
            ffmpeg.wait()
        shutil.rmtree(folder, ignore_errors=True)
    if status1.get("encoder_pid") != encoder:
        raise BenchError("castd's encoder restarted during the measurement")
    elapsed = t1 - t0
    castd_rate = (castd1[0] - castd0[0]) / (castd1[1] - castd0[1])
    ffmpeg_rate = (ffmpeg1[0] - ffmpeg0[0]) / (ffmpeg1[1] - ffmpeg0[1])
    castd_cpu = proc.cpu_delta(enc0, enc1) / elapsed
    ffmpeg_cpu = proc.cpu_delta(ff0, ff1) / elapsed
    castd_per_video = castd_cpu / (castd_rate / preset.fps) if castd_rate else None
    ffmpeg_per_video = ffmpeg_cpu / (ffmpeg_rate / preset.fps) if ffmpeg_rate else None
    return {"seconds": round(elapsed, 2), "display": display, "ffmpeg_command": " ".join(cmd),
            "castd_cpu_per_video_s": castd_per_video, "ffmpeg_cpu_per_video_s": ffmpeg_per_video,
            "castd_frame_rate": round(castd_rate, 2), "ffmpeg_frame_rate": round(ffmpeg_rate, 2),
            "ffmpeg_segments_on_disk": segments,
            "ratio": castd_per_video / ffmpeg_per_video if castd_per_video and ffmpeg_per_video else None}
