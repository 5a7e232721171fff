"""`python -m bench.idrcost`: what a keyframe of a still page costs under other x264 settings, and the picture
it leaves, to see whether 0.5 s keyframes (issue 19's price: 1.33x bits on a banded still, 1.55x on castd's
demo dashboard, bench/README.md) could be bought back by the encoder instead of by quality.

The pictures are bench.price's (the banded still and the demo dashboard as headless Chromium draws it),
encoded at castd's 720p settings (encoder/hls.py x264_options) with one setting changed: 20 frames, an IDR
every 5 (0.5 s at 10 fps) and P frames between. Per setting: the mean IDR and P frame size, CPU time per
frame (this process), and the luma PSNR and SSIM (8x8 windows) of the decoded IDR and of the frame four P
frames later against the source, so a smaller IDR that is only a worse picture shows as one.

    .venv/bin/python -m bench.idrcost
"""

from __future__ import annotations

import fractions
import math
import time

import av
from av.video.frame import PictureType

from bench.price import _background, _dashboard
from castd.encoder.hls import x264_options
from castd.presets import Preset, get_preset

FRAMES, EVERY = 20, 5
SETTINGS: dict[str, dict[str, str]] = {  # label: the options changed (x264-params are appended)
    "castd (veryfast, stillimage)": {},
    "trellis=1": {"x264-params": "trellis=1"},
    "trellis=2": {"x264-params": "trellis=2"},
    "preset faster": {"preset": "faster"},
    "preset fast": {"preset": "fast"},
    "ipratio=1.0 (the IDR at the P frames' QP)": {"x264-params": "ipratio=1.0"},
}


def _luma(frame: av.VideoFrame) -> list[bytes]:
    plane = frame.reformat(format="yuv420p").planes[0]
    data = bytes(plane)
    return [data[y * plane.line_size:y * plane.line_size + frame.width] for y in range(frame.height)]


def quality(ref: list[bytes], got: list[bytes]) -> tuple[float, float]:
    """(PSNR in dB, mean SSIM over 8x8 windows) of luma `got` against `ref`."""
    err = sum((a - b) ** 2 for ra, rb in zip(ref, got) for a, b in zip(ra, rb))
    psnr = 10 * math.log10(255 * 255 * len(ref) * len(ref[0]) / err) if err else 99.0
    c1, c2, scores = (0.01 * 255) ** 2, (0.03 * 255) ** 2, []
    for y0 in range(0, len(ref) - 7, 8):
        for x0 in range(0, len(ref[0]) - 7, 8):
            a = [v for row in ref[y0:y0 + 8] for v in row[x0:x0 + 8]]
            b = [v for row in got[y0:y0 + 8] for v in row[x0:x0 + 8]]
            ma, mb = sum(a) / 64, sum(b) / 64
            va, vb = sum((v - ma) ** 2 for v in a) / 63, sum((v - mb) ** 2 for v in b) / 63
            cov = sum((p - ma) * (q - mb) for p, q in zip(a, b)) / 63
            scores.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2)))
    return psnr, sum(scores) / len(scores)


def measure(preset: Preset, picture: bytes, change: dict[str, str]) -> dict:
    options = x264_options(preset)
    for key, value in change.items():
        options[key] = options[key] + ":" + value if key == "x264-params" else value
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = preset.width, preset.height, "yuv420p"
    encoder.time_base = fractions.Fraction(1, preset.fps)
    encoder.options = options
    source = av.VideoFrame(preset.width, preset.height, "bgr0")
    source.planes[0].update(picture)
    packets, cpu = [], 0.0
    for i in range(FRAMES + 1):
        frame = None
        if i < FRAMES:
            frame = source.reformat(format="yuv420p")
            frame.pts = i
            frame.pict_type = PictureType.I if i % EVERY == 0 else PictureType.NONE
        began = time.process_time()
        packets += [(p.is_keyframe, bytes(p)) for p in encoder.encode(frame)]
        cpu += time.process_time() - began
    decoder = av.CodecContext.create("h264", "r")
    decoded = [f for _, data in packets for f in decoder.decode(av.Packet(data))]
    ref = _luma(source)
    idr = [len(data) for key, data in packets if key]
    other = [len(data) for key, data in packets if not key]
    return {"idr_kb": sum(idr) / len(idr) / 1000, "p_kb": sum(other) / len(other) / 1000,
            "cpu_ms": cpu / FRAMES * 1000, "idr": quality(ref, _luma(decoded[0])),
            "later": quality(ref, _luma(decoded[EVERY - 1]))}


def main() -> None:
    preset = get_preset("720p")
    pictures = {"static (bands)": bytes(_background(preset)), "dashboard": _dashboard(preset)}
    print(f"720p, an IDR every {EVERY} frames, {FRAMES} frames; quality = luma PSNR dB / SSIM")
    print("| page | setting | IDR kB | P kB | CPU ms/frame | IDR quality | 4 P frames later |")
    print("|---|---|---|---|---|---|---|")
    for page, picture in pictures.items():
        for label, change in SETTINGS.items():
            r = measure(preset, picture, change)
            print(f"| {page} | {label} | {r['idr_kb']:.1f} | {r['p_kb']:.2f} | {r['cpu_ms']:.1f} | "
                  f"{r['idr'][0]:.2f} / {r['idr'][1]:.4f} | {r['later'][0]:.2f} / {r['later'][1]:.4f} |", flush=True)


if __name__ == "__main__":
    main()
