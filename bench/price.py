"""`python -m bench.price`: what a stream format costs the encoder: CPU-seconds per second of video and bits
per second, for a static and a busy page, each format beside `hls-1s` in one run (ratios).

Keyframes twice as often (0.5 s segments) cost both: an IDR frame of a dashboard is ~5-20x a P frame.
The encoder alone is measured (castd's HlsOutput: x264 + silent AAC + the TS segment muxer + the
playlist), fed pictures made here at the preset's frame rate on a synthetic clock, so the numbers do not
move with Chromium or with the machine's other load (CPU time of this process, not wall time):
- static: one picture (a dashboard that does not change), repeated;
- busy: a picture whose top band changes every frame (a moving bar and changing blocks, like a clock or
  a chart being redrawn) over a static background;
- dashboard: castd's demo dashboard (castd/web/demo.html: a clock in large digits, a date, a chart, a line of
  small text) as headless Chromium draws it, repeated: text and thin lines, what a real dashboard's keyframe
  costs (the bands of `static` compress far better, so their ratio understates a keyframe's price).
Rounds alternate the formats (format A, B, C, A, B, C, ...) so a burst of load hits all of them alike;
medians are quoted.

    .venv/bin/python -m bench.price                       # 720p, 30 s of video per round, 3 rounds
    .venv/bin/python -m bench.price --seconds 60 --rounds 5 --quality 1080p
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import av

from bench.stats import summary
from bench.testhelpers import headless_chromium, wait_for
from castd.encoder.hls import HlsOutput
from castd.presets import STREAM_FORMATS, Preset, get_preset

DEMO = Path(__file__).resolve().parent.parent / "castd" / "web" / "demo.html"
PAGES = ("static", "dashboard", "busy")


def _background(preset: Preset) -> bytearray:
    """A dashboard-like still: horizontal bands of grey levels with a few darker tiles (bgr0)."""
    w, h = preset.width, preset.height
    rows = bytearray()
    for y in range(h):
        level = 40 + (y * 160 // h)
        row = bytearray([level, level, level, 0]) * w
        if (y // 60) % 2:
            for x0 in range(0, w, 160):
                row[x0 * 4:(x0 + 60) * 4] = bytes([level // 2, level // 3, level, 0]) * 60
        rows += row
    return rows


def _dashboard(preset: Preset) -> bytes:
    """castd's demo dashboard drawn by Chromium, scaled to the preset's size (bgr0), once its chart has filled."""
    with headless_chromium() as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {  # the page sized as castd's screen
            "width": preset.width, "height": preset.height, "deviceScaleFactor": 1, "mobile": False})
        driver.get(DEMO.as_uri())
        wait_for(lambda: driver.execute_script("return points.length") >= 110, 60, message="the demo's chart")
        png = driver.get_screenshot_as_png()
    with av.open(io.BytesIO(png), format="png_pipe") as container:
        frame = next(container.decode(video=0)).reformat(preset.width, preset.height, "bgr0")
    plane = frame.planes[0]
    row = preset.width * 4
    return b"".join(bytes(plane)[y * plane.line_size:y * plane.line_size + row] for y in range(preset.height))


def _busy(base: bytearray, preset: Preset, i: int) -> bytes:
    """The background with its top 120 rows redrawn: a bar moving 8 px a frame and blocks that change."""
    w = preset.width
    out = bytearray(base)
    bar = (i * 8) % (w - 100)
    for y in range(20, 140):
        row = y * w * 4
        out[row + bar * 4:row + (bar + 100) * 4] = bytes([250, 200, 30, 0]) * 100
        for block in range(0, 12):
            x0 = 40 + block * 100
            shade = (i * 37 + block * 53 + y // 10) % 255
            out[row + x0 * 4:row + (x0 + 60) * 4] = bytes([shade, 255 - shade, (shade * 3) % 255, 0]) * 60
    return bytes(out)


def encode(fmt: str, quality: str, seconds: float, page: str, base: bytearray, dashboard: bytes) -> dict:
    preset = get_preset(quality, fmt)
    frames = int(seconds * preset.fps)
    still = av.VideoFrame(preset.width, preset.height, "bgr0")
    still.planes[0].update(dashboard if page == "dashboard" else bytes(base))
    with tempfile.TemporaryDirectory(prefix="castd-price-") as tmp:
        folder = Path(tmp)
        output = HlsOutput(folder, preset)  # no first hold: the steady state's price, alike for every format
        sizes: dict[str, int] = {}
        cpu = 0.0
        for i in range(frames):
            if page == "busy":
                frame = av.VideoFrame(preset.width, preset.height, "bgr0")
                frame.planes[0].update(_busy(base, preset, i))
            else:
                frame = still
            began = time.process_time()
            output.write_video(frame, 1000.0 + i / preset.fps)
            cpu += time.process_time() - began
            for path in folder.glob("seg*.ts"):  # (old ones are deleted as the playlist moves on)
                sizes[path.name] = path.stat().st_size
        began = time.process_time()
        output.close()
        cpu += time.process_time() - began
        for path in folder.glob("seg*.ts"):
            sizes[path.name] = path.stat().st_size
        media = frames / preset.fps
    return {"format": fmt, "page": page, "cpu_per_second": cpu / (frames / preset.fps),
            "bits_per_second": sum(sizes.values()) * 8 / media, "media_seconds": media,
            "segments": output.segments()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", default=",".join(STREAM_FORMATS))
    parser.add_argument("--quality", default="720p")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of video per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    formats = args.formats.split(",")
    base = _background(get_preset(args.quality))
    dashboard = _dashboard(get_preset(args.quality))
    samples: list[dict] = []
    for _ in range(args.rounds):
        for page in PAGES:
            for fmt in formats:
                samples.append(encode(fmt, args.quality, args.seconds, page, base, dashboard))
                print(json.dumps(samples[-1]), flush=True)
    print(f"\nEncoder price per stream format ({args.quality}, {args.seconds:g} s x {args.rounds} rounds; medians;"
          f" ratio to {formats[0]})")
    print("| page | format | encoder CPU-s per s | ratio | kbit/s | ratio |\n|---|---|---|---|---|---|")
    for page in PAGES:
        ref_cpu = ref_bits = None
        for fmt in formats:
            mine = [s for s in samples if s["format"] == fmt and s["page"] == page]
            cpu = summary([s["cpu_per_second"] for s in mine])["median"]
            bits = summary([s["bits_per_second"] for s in mine])["median"]
            ref_cpu, ref_bits = ref_cpu or cpu, ref_bits or bits
            print(f"| {page} | {fmt} | {cpu:.4f} | {cpu / ref_cpu:.2f} | {bits / 1000:.0f} | {bits / ref_bits:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(samples, indent=1))


if __name__ == "__main__":
    main()
