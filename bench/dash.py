"""`python -m bench.dash`: live DASH beside castd's HLS shapes at the glass (issue 19, shape c).

A synthetic live source, not castd: one PyAV encoder (720p10 H.264, a keyframe every 0.5 s, plus a silent
AAC track like castd's) whose packets are muxed at once into every shape, so all shapes carry the same
pictures at the same moments:

- `hls-1s`: FFmpeg's hls muxer, 1 s MPEG-TS segments, 6 listed, served with `HOLD-BACK=3.0` (the `latency`
  branch's default shape);
- `hls-fast`: 0.5 s TS segments, 12 listed, `HOLD-BACK=3.0` + `EXT-X-START:TIME-OFFSET=-1.5` (its fast shape);
- `dash-<seg>-<spd>`: FFmpeg's dash muxer (a maintained muxer: CMAF-style fMP4, a dynamic MPD, SegmentTemplate
  `$Number$`, no timeline, `availabilityStartTime` = the wall clock when the first packet was written,
  `UTCTiming` http-xsdate), 0.5 s or 1 s segments, 6 s window; the server sets `suggestedPresentationDelay`
  per URL (the muxer writes PT0S) and points `UTCTiming` at its own `/time`.

Every picture is one flat colour from a 64-colour palette (4 levels per channel, >= 80 apart after H.264),
changing every 0.2 s: colour k was drawn at t0 + k x 0.2 s (mod 12.8 s), so the wall time a player presents
a colour minus the time it was drawn is the latency behind the wall clock, read from the glass (the harness
page stamps each presented frame whose colour changed, requestVideoFrameCallback, tests/glass/player.py).

Per Shaka line (4.9.2, 4.15.24, 4.16.50, 5.2.12, one headless Chromium each, run side by side) the shapes are
played one after the other, each loaded into a stream that has run for a while (a full window listed, as
castd's held first picture gives at its LOAD): start = load -> first frame presented; latency = median over
the colours presented after `--settle` s; waiting >= 0.1 s and stills (no new frame for 0.3 s) after the first
frame, counted apart in the first 5 s (4.9.2's start freeze) and after.

    .venv/bin/python -m bench.dash                                   # all shapes, all lines, 60 s each
    .venv/bin/python -m bench.dash --seconds 90 --rounds 2 --shapes hls-fast,dash-0.5-1.5
"""

from __future__ import annotations

import argparse
import datetime
import functools
import http.server
import multiprocessing
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av

from bench.cyclecode import PALETTE, PERIOD, STEP, nearest

FPS = 10
WINDOW = 6.0  # seconds listed in every shape
SHAPES = ("hls-1s", "hls-fast", "dash-0.5-1.0", "dash-0.5-1.5", "dash-0.5-2.0", "dash-1-2.0", "dash-1-3.0")
# dash-<segment s>-<suggestedPresentationDelay s>[-m<minBufferTime s>] (FFmpeg writes 2 segments)
# The outputs the source writes (folder -> muxer, segment seconds) and the manifest each shape loads.
OUTPUTS = {"hls1": ("hls", 1.0), "hls05": ("hls", 0.5), "dash1": ("dash", 1.0), "dash05": ("dash", 0.5)}


def manifest_path(shape: str) -> str:
    if shape == "hls-1s":
        return "/hls1/hls-1s.m3u8"
    if shape == "hls-fast":
        return "/hls05/hls-fast.m3u8"
    _, seg, spd, *mbt = shape.split("-")
    return f"/dash{'05' if seg == '0.5' else '1'}/spd{spd}{mbt[0] if mbt else ''}.mpd"


# ---- the source ------------------------------------------------------------------------------------------
def _open(folder: Path, kind: str, seg: float, utc: str):
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "hls":
        n = int(WINDOW / seg)
        return av.open(str(folder / "live.m3u8"), "w", format="hls", options={
            "hls_time": str(seg), "hls_list_size": str(n), "hls_flags": "delete_segments+temp_file",
            "hls_delete_threshold": "4", "hls_segment_filename": str(folder / "s%05d.ts")})
    return av.open(str(folder / "live.mpd"), "w", format="dash", options={
        "seg_duration": str(seg), "use_template": "1", "use_timeline": "0", "streaming": "0",
        "window_size": str(int(WINDOW / seg)), "extra_window_size": "4", "remove_at_exit": "1",
        "utc_timing_url": utc, "adaptation_sets": "id=0,streams=v id=1,streams=a"})


def source(root: str, t0_value, stop) -> None:
    """Encode in real time until `stop` is set; t0_value gets the wall time frame 0 was drawn."""
    outs = [_open(Path(root) / name, kind, seg, "http://127.0.0.1:1/time") for name, (kind, seg) in OUTPUTS.items()]
    # The encoders are the first output's streams; the other outputs copy their parameters.
    video = outs[0].add_stream("libx264", rate=FPS, options={
        "preset": "ultrafast", "tune": "zerolatency", "g": str(FPS // 2), "keyint_min": str(FPS // 2),
        "sc_threshold": "0", "crf": "23"})
    video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
    audio = outs[0].add_stream("aac", rate=48000)
    audio.layout = "stereo"
    # Extradata (SPS/PPS, the AAC config) out of band: the MP4 init segments need it, and the TS muxer puts it
    # back in front of every keyframe (and wraps AAC in ADTS) by itself.
    for stream in (video, audio):
        stream.codec_context.flags |= av.codec.context.Flags.global_header
    video.codec_context.open()
    audio.codec_context.open()
    streams = [(outs[0], video, audio)]
    for c in outs[1:]:
        copies = (c.add_stream_from_template(video), c.add_stream_from_template(audio))
        for copy, enc in zip(copies, (video, audio)):
            copy.codec_context.extradata = enc.codec_context.extradata  # the template is copied without it
        streams.append((c, *copies))
    frames = []
    for rgb in PALETTE:
        f = av.VideoFrame(1280, 720, "rgb24")
        f.planes[0].update(bytes(rgb) * (f.planes[0].buffer_size // 3))
        frames.append(f.reformat(format="yuv420p"))

    def mux(packets, which: int) -> None:
        for p in packets:
            for c, *pair in streams:
                q = av.Packet(bytes(p))
                q.pts, q.dts, q.time_base, q.is_keyframe = p.pts, p.dts, p.time_base, p.is_keyframe
                q.duration = p.duration
                q.stream = pair[which]
                c.mux(q)

    t0 = time.time()
    t0_value.value = t0
    n = 0
    samples = 48000 // FPS
    try:
        while not stop.is_set():
            f = frames[int(n * (1 / FPS) / STEP + 1e-9) % len(PALETTE)]
            f.pts, f.time_base = n, Fraction(1, FPS)
            mux(video.encode(f), 0)
            a = av.AudioFrame(format="fltp", layout="stereo", samples=samples)
            for plane in a.planes:
                plane.update(bytes(plane.buffer_size))
            a.sample_rate, a.pts, a.time_base = 48000, n * samples, Fraction(1, 48000)
            mux(audio.encode(a), 1)
            n += 1
            time.sleep(max(0.0, t0 + n / FPS - time.time()))
    finally:
        for c in outs:
            try:
                c.close()
            except Exception:  # noqa: BLE001  (ending: the folder is removed anyway)
                pass


# ---- the server ------------------------------------------------------------------------------------------
class Handler(http.server.SimpleHTTPRequestHandler):
    """The source's folder over HTTP with CORS, no caching, `/time` (UTCTiming http-xsdate) and the
    manifests of each shape rewritten from the muxer's own."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def _text(self, text: str, ctype: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        root = Path(self.directory)
        try:
            if path == "/time":
                now = datetime.datetime.now(datetime.timezone.utc)
                return self._text(now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                                  "text/plain")
            if path.endswith(".m3u8") and path.split("/")[-1] in ("hls-1s.m3u8", "hls-fast.m3u8"):
                text = (root / path.strip("/").rsplit("/", 1)[0] / "live.m3u8").read_text()
                tags = "#EXT-X-SERVER-CONTROL:HOLD-BACK=3.0\n"
                if path.endswith("hls-fast.m3u8"):
                    tags += "#EXT-X-START:TIME-OFFSET=-1.5\n"
                # FFmpeg rounds 0.5 s down to TARGETDURATION:0; RFC 8216 wants the EXTINFs rounded up (castd: 1).
                text = re.sub(r"#EXT-X-TARGETDURATION:(\d+)\n",
                              lambda m: f"#EXT-X-TARGETDURATION:{max(1, int(m.group(1)))}\n{tags}", text)
                return self._text(text, "application/vnd.apple.mpegurl")
            if m := re.fullmatch(r"/(dash05|dash1)/spd([0-9.]+)(?:m([0-9.]+))?\.mpd", path):
                text = (root / m.group(1) / "live.mpd").read_text()
                text = re.sub(r'suggestedPresentationDelay="[^"]*"', f'suggestedPresentationDelay="PT{m.group(2)}S"',
                              text)
                if m.group(3):  # Shaka gates its start (and rebuffering) on max(minBufferTime, rebufferingGoal)
                    text = re.sub(r'minBufferTime="[^"]*"', f'minBufferTime="PT{m.group(3)}S"', text)
                host = f"http://127.0.0.1:{self.server.server_address[1]}/time"
                text = text.replace("http://127.0.0.1:1/time", host)
                return self._text(text, "application/dash+xml")
        except FileNotFoundError:
            self.send_error(404)
            return
        return super().do_GET()

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # a player aborted a request it no longer needed
            pass

    def log_message(self, *args) -> None:
        pass


# ---- the players -----------------------------------------------------------------------------------------
def play(player, url: str, seconds: float, settle: float, t0: float) -> dict:
    loaded = time.time()
    player.load(url)
    deadline = loaded + seconds
    while time.time() < deadline:
        time.sleep(1.0)
    s = player.state()
    first = s.first_frame_at
    lat = []
    for c in s.colours:
        if c.t < loaded + settle:
            continue
        k = nearest(c.rgb)
        lat.append((c.t - t0 - k * STEP) % PERIOD)
    out = {"start": (first - loaded) if first else None, "latency": statistics.median(lat) if lat else None,
           "errors": sorted({e.code for e in s.errors if e.code is not None and e.t >= loaded})}
    if first:
        waits = [x for x in s.stalls if x.start >= first and x.seconds(s.now) >= 0.1]
        stills = [x for x in s.still_pictures(since=first)]
        out["wait_start"] = sum(1 for x in waits if x.start < first + 5)
        out["wait_after"] = sum(1 for x in waits if x.start >= first + 5)
        out["still_start"] = sum(1 for x in stills if x.start < first + 5)
        out["still_after"] = sum(1 for x in stills if x.start >= first + 5)
        out["still_s"] = round(sum(x.seconds(s.now) for x in stills), 2)
    player.unload()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", default="shaka49,shaka415,shaka4,shaka5")
    ap.add_argument("--shapes", default=",".join(SHAPES),
                    help=f"of {', '.join(SHAPES)}; any dash-<seg 0.5|1>-<spd>[-m<minBufferTime>]")
    ap.add_argument("--seconds", type=float, default=60.0, help="play per shape and line")
    ap.add_argument("--settle", type=float, default=10.0, help="latency read from this many s after the load")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the shapes (order reversed every other round)")
    args = ap.parse_args()
    from bench.testhelpers import ShakaPlayer  # noqa: PLC0415  (tests/glass on sys.path)
    from glass import PageServer  # noqa: PLC0415

    shapes = args.shapes.split(",")
    lines = args.lines.split(",")
    root = Path(tempfile.mkdtemp(prefix="castd-dash-"))
    ctx = multiprocessing.get_context("spawn")
    t0_value, stop = ctx.Value("d", 0.0), ctx.Event()
    proc = ctx.Process(target=source, args=(str(root), t0_value, stop), name="dash-source")
    proc.start()
    http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                  functools.partial(Handler, directory=str(root)))
    http_server.daemon_threads = True
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{http_server.server_address[1]}"
    pages = PageServer()
    players = {}
    results: dict[tuple[str, str], list[dict]] = {}
    try:
        for line in lines:
            players[line] = ShakaPlayer(line, server=pages)
        wait = time.time() + 30
        while not t0_value.value and proc.is_alive() and time.time() < wait:
            time.sleep(0.1)
        if not t0_value.value:
            raise SystemExit("the source did not start (see its traceback above)")
        time.sleep(max(0.0, WINDOW + 2 - (time.time() - t0_value.value)))  # a full window listed
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} load {os.getloadavg()}", flush=True)
        for r in range(args.rounds):
            order = shapes if r % 2 == 0 else shapes[::-1]
            for shape in order:
                box: dict[str, dict] = {}

                def one(line: str, shape: str = shape, box: dict = box) -> None:
                    try:
                        box[line] = play(players[line], base + manifest_path(shape), args.seconds, args.settle,
                                         t0_value.value)
                    except Exception as e:  # noqa: BLE001  (one player's failure is a row, not the run)
                        box[line] = {"failed": repr(e)}

                threads = [threading.Thread(target=one, args=(line,)) for line in lines]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                for line in lines:
                    results.setdefault((line, shape), []).append(box[line])
                    print(f"round={r + 1} line={line} shape={shape} load={os.getloadavg()[0]:.1f} {box[line]}",
                          flush=True)
        print(f"# end load {os.getloadavg()}")
        print("\n| Shaka | shape | start (load -> frame) | behind wall clock | waiting >= 0.1 s (first 5 s / after) "
              "| stills >= 0.3 s (first 5 s / after) | still s |")
        print("|---|---|---|---|---|---|---|")

        def med(rows, key):
            vals = [x[key] for x in rows if x.get(key) is not None]
            return f"{statistics.median(vals):.2f}" if vals else "-"

        def tot(rows, key):
            return sum(x.get(key, 0) for x in rows)

        for line in lines:
            for shape in shapes:
                rows = results.get((line, shape), [])
                print(f"| {players[line].version} | {shape} | {med(rows, 'start')} | {med(rows, 'latency')} | "
                      f"{tot(rows, 'wait_start')} / {tot(rows, 'wait_after')} | "
                      f"{tot(rows, 'still_start')} / {tot(rows, 'still_after')} | {med(rows, 'still_s')} |")
    finally:
        for p in players.values():
            p.close()
        pages.close()
        http_server.shutdown()
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
