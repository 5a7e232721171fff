"""Test media for the fake receiver: a small real HLS stream made with PyAV, and a CORS-enabled static
HTTP server on 127.0.0.1 to serve it (or anything else in a directory)."""

from __future__ import annotations

import functools
import http.server
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av


@dataclass(frozen=True)
class HLSStream:
    directory: Path
    master: str | None  # file name of the master playlist (None if master=False)
    media: str  # file name of the media playlist
    segments: tuple[str, ...]
    codecs: str
    width: int
    height: int


def _fill_plane(plane, rows: int, value_of_row) -> None:
    stride = plane.line_size
    plane.update(b"".join(bytes([value_of_row(r)]) * stride for r in range(rows)))


def write_hls(
    directory: str | Path,
    *,
    seconds: int = 3,
    fps: int = 10,
    width: int = 320,
    height: int = 240,
    audio: bool = True,
    segment_type: str = "mpegts",
    live: bool = True,
    master: bool = True,
    codecs: str | None = None,
) -> HLSStream:
    """Encode `seconds` of H.264 (High, keyframe every second) [+ silent stereo AAC] into 1 s HLS
    segments in `directory`. live=True leaves out #EXT-X-ENDLIST. Writes master.m3u8 by hand (CODECS
    from the real tracks unless `codecs` overrides it) when master=True."""
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = "m4s" if segment_type == "fmp4" else "ts"
    options = {
        "hls_time": "1",
        "hls_list_size": "0",
        "hls_segment_type": segment_type,
        "hls_segment_filename": str(out_dir / f"seg%03d.{ext}"),
    }
    if segment_type == "fmp4":
        options["hls_fmp4_init_filename"] = "init.mp4"
    if live:
        options["hls_flags"] = "omit_endlist"
    media_name = "stream.m3u8"
    with av.open(str(out_dir / media_name), mode="w", format="hls", options=options) as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.codec_context.options = {
            "preset": "veryfast",
            "profile": "high",
            "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0",
        }
        vs.time_base = Fraction(1, fps)
        as_ = None
        if audio:
            as_ = out.add_stream("aac", rate=48000, layout="stereo")
        vframes = seconds * fps
        aframes = (seconds * 48000) // 1024 if audio else 0
        vi = ai = 0
        while vi < vframes or ai < aframes:
            # interleave by presentation time
            if ai < aframes and (vi >= vframes or ai * 1024 / 48000 < vi / fps):
                af = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
                for plane in af.planes:
                    plane.update(bytes(plane.buffer_size))
                af.sample_rate = 48000
                af.pts, af.time_base = ai * 1024, Fraction(1, 48000)
                for pkt in as_.encode(af):
                    out.mux(pkt)
                ai += 1
            else:
                frame = av.VideoFrame(width, height, "yuv420p")
                bar = (vi * 8) % height
                _fill_plane(frame.planes[0], height, lambda r: 235 if bar <= r < bar + 16 else 40)
                _fill_plane(frame.planes[1], height // 2, lambda r: 128)
                _fill_plane(frame.planes[2], height // 2, lambda r: 128)
                frame.pts, frame.time_base = vi, Fraction(1, fps)
                for pkt in vs.encode(frame):
                    out.mux(pkt)
                vi += 1
        for pkt in vs.encode(None):
            out.mux(pkt)
        if as_ is not None:
            for pkt in as_.encode(None):
                out.mux(pkt)
    if codecs is None:
        # libx264 "high" at this size picks a low level; 'avc1.64001e' = High@3.0 is accurate enough here
        codecs = "avc1.64001e" + (",mp4a.40.2" if audio else "")
    master_name = None
    if master:
        master_name = "master.m3u8"
        (out_dir / master_name).write_text(
            "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n"
            '#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=%dx%d,FRAME-RATE=%d,CODECS="%s"\n%s\n'
            % (7 if segment_type == "fmp4" else 3, width, height, fps, codecs, media_name)
        )
    segments = tuple(sorted(p.name for p in out_dir.glob(f"seg*.{ext}")))
    return HLSStream(out_dir, master_name, media_name, segments, codecs, width, height)


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".m3u8": "application/vnd.apple.mpegurl",
        ".ts": "video/mp2t",
        ".m4s": "video/iso.segment",
        ".mp4": "video/mp4",
    }

    def end_headers(self) -> None:
        if getattr(self.server, "cors", True):
            self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_request(self, code="-", size="-") -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib names it so)
        pass


class StaticHTTPServer:
    """Serve `directory` on http://127.0.0.1:<free port>/ from a background thread.

    `cors` (changeable at any time) controls the Access-Control-Allow-Origin: * header; `.requests`
    lists the paths requested."""

    def __init__(self, directory: str | Path, cors: bool = True) -> None:
        handler = functools.partial(_Handler, directory=str(directory))
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = False  # so server_close() joins request threads
        self._httpd.cors = cors  # type: ignore[attr-defined]
        self._httpd.requests = []  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakecast-http", daemon=True)
        self._thread.start()

    @property
    def cors(self) -> bool:
        return self._httpd.cors  # type: ignore[attr-defined]

    @cors.setter
    def cors(self, value: bool) -> None:
        self._httpd.cors = value  # type: ignore[attr-defined]

    @property
    def requests(self) -> list[str]:
        return list(self._httpd.requests)  # type: ignore[attr-defined]

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def __enter__(self) -> "StaticHTTPServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
