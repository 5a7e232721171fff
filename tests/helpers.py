"""Test helpers: run the real daemon, serve test pages, walk /proc, decode what castd serves."""

from __future__ import annotations

import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import av
import httpx

from castd.procutil import stat_fields

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


# ---- processes ----------------------------------------------------------------------------


def process_identity(pid: int) -> tuple[int, str] | None:
    """(pid, start time): a PID can be reused; the pair cannot."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return pid, fields[19]


def descendants(root: int) -> set[tuple[int, str]]:
    """Every live process below `root` (by parent links in /proc; names never matter)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            ident = process_identity(child)
            if ident:
                found.add(ident)
                todo.append(child)
    return found


def children(pid: int) -> set[tuple[int, str]]:
    """Direct children of `pid` (by parent links)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields and int(fields[1]) == pid:
                ident = process_identity(int(entry))
                if ident:
                    found.add(ident)
    return found


def still_alive(identities) -> set[tuple[int, str]]:
    return {ident for ident in identities if process_identity(ident[0]) == ident}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


# ---- the daemon ---------------------------------------------------------------------------
@dataclass
class Daemon:
    """A real `castd serve` in a subprocess, on a free port, with its own runtime dir."""

    runtime_dir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    seen: set = field(default_factory=set)
    cwd: Path = ROOT  # the castd package imported is the one under cwd (bench/ compares two trees)
    leftover_cmdlines: dict = field(default_factory=dict)
    journal: bool = False  # set JOURNAL_STREAM to the log file, as systemd does: lines get <N> prefixes
    token: str = ""  # CASTD_TOKEN; get/post/status then send it as a Bearer header unless given headers
    own_group: bool = False  # a session and process group of its own, as a terminal's foreground job has

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.runtime_dir.parent / f"castd-{self.port}.log"

    def start(self, wait_healthy: bool = True) -> "Daemon":
        env = {**os.environ, "CASTD_RUNTIME_DIR": str(self.runtime_dir), "CASTD_LOG_LEVEL": "DEBUG",
               "CASTD_RATE_LIMIT_BURST": "100000",  # tests fire starts fast; test_security sets its own
               "CASTD_SWITCH_RATE_LIMIT_BURST": "100000",
               "CASTD_MDNS_INTERFACES": "127.0.0.1",  # device discovery never leaves loopback
               **({"CASTD_TOKEN": self.token} if self.token else {}), **self.env_extra}
        env.pop("JOURNAL_STREAM", None)
        self._log = self.log_path.open("ab")
        if self.journal:
            st = os.fstat(self._log.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        self.process = subprocess.Popen([sys.executable, "-m", "castd", "serve", "--port", str(self.port),
                                         *self.args], env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        cwd=self.cwd, start_new_session=self.own_group)
        if wait_healthy:
            try:
                wait_for(lambda: self._healthy(), 20, message="castd /health")
            except BaseException:
                self.stop()
                self.kill_leftovers()
                raise
        return self

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"castd exited early:\n{self.log()}")
        try:
            return httpx.get(self.base + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **kw) -> httpx.Response:
        kw.setdefault("headers", self.auth())
        return httpx.get(self.base + path, timeout=10, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        kw.setdefault("headers", self.auth())
        return httpx.post(self.base + path, timeout=10, **kw)

    def status(self) -> dict:
        return self.get("/status").json()

    def record_descendants(self) -> set:
        """Remember every process below castd now, so a later check can find orphans."""
        found = descendants(self.process.pid)
        self.seen |= found
        return found

    def wait_state(self, state: str, timeout: float = 20) -> dict:
        return wait_for(lambda: (s := self.status())["state"] == state and s, timeout,
                        message=f"state {state}")

    def stop(self, timeout: float = 10) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.record_descendants()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code

    def finish(self) -> None:
        """End of a fixture: stop castd, then fail if any process it started outlived it."""
        self.stop()
        left = self.kill_leftovers()
        assert not left, f"processes outlived castd: {self.leftover_cmdlines or left}"

    def kill_leftovers(self, grace: float = 3.0) -> set:
        """Teardown safety net: kill (by PID) anything we saw that still lives after `grace`; return it.

        The grace covers helpers that exit on their own once castd has gone (multiprocessing's
        resource tracker reads EOF a moment after its parent exits, later on a loaded machine).
        """
        deadline = time.monotonic() + grace
        while (left := still_alive(self.seen)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid, _ in left:
            self.leftover_cmdlines[pid] = cmdline(pid)
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left


def raw_request(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send exact bytes (no client-side URL or header clean-up) and read one HTTP/1.1 answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            head, sep, rest = b"".join(chunks).partition(b"\r\n\r\n")
            if sep:
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.decode("latin-1").partition(":") for line in head.split(b"\r\n")[1:])}
                if len(rest) >= int(headers.get("content-length", "0")):
                    break
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


# ---- test pages ---------------------------------------------------------------------------
def _page(body: str, head: str = "") -> bytes:
    return f"<!doctype html><html><head><meta charset=utf-8>{head}</head>{body}</html>".encode()


# /echo/<key>: reports what the page's own first script saw (localStorage, cookies, colour scheme) to
# /report/<key> before anything else runs; the injected CSS must hide the red #banner (green shows).
# A red .shadow-banner inside a web component's shadow root must be hidden by the same CSS.
ECHO_PAGE = _page(
    "<body style='margin:0;background:#00ff00'>"
    "<div id=banner style='position:fixed;inset:0;background:#ff0000'></div><castd-card></castd-card></body>",
    "<script>"
    "const seen = {storage: localStorage.getItem('castd-test'), cookie: document.cookie,"
    " dark: matchMedia('(prefers-color-scheme: dark)').matches};"
    "customElements.define('castd-card', class extends HTMLElement { constructor() { super();"
    " this.attachShadow({mode: 'open'}).innerHTML = \"<div class=shadow-banner style='position:fixed;"
    "left:0;top:0;width:50vw;height:50vh;background:#ff0000'></div>\"; } });"
    "addEventListener('DOMContentLoaded', () => {"
    " seen.banner = getComputedStyle(document.getElementById('banner')).display;"
    " const inner = document.querySelector('castd-card').shadowRoot.querySelector('.shadow-banner');"
    " seen.shadow = getComputedStyle(inner).display;"
    " fetch('/report/' + location.pathname.split('/')[2], {method: 'POST', body: JSON.stringify(seen)});"
    "});</script>")

# /later/<seconds>: red at first; after <seconds> an element #ready appears and the page turns green.
LATER_PAGE = (
    "<body style='margin:0;background:#ff0000'><script>setTimeout(() => {{"
    " document.body.style.background = '#00ff00';"
    " const d = document.createElement('div'); d.id = 'ready'; document.body.appendChild(d);"
    "}}, {ms});</script></body>")

# /tall/<seconds>: a red block 1000 px high; the green rest of the page is added only when a fetch of
# /slow/<seconds> has answered (network idle must wait for it, and scrolling needs it).
TALL_PAGE = (
    "<body style='margin:0;background:#ff0000'><div style='height:1000px;background:#ff0000'></div>"
    "<script>fetch('/slow/{seconds}').then(() => {{ const d = document.createElement('div');"
    " d.style.cssText = 'height:3000px;background:#00ff00'; document.body.appendChild(d); }});</script></body>")

# /border: a 1 px white frame drawn exactly at the viewport's edges, on black.
BORDER_PAGE = _page("<body style='margin:0;background:#000'>"
                    "<div style='position:fixed;inset:0;border:1px solid #fff;box-sizing:border-box'></div></body>")

# /vh: laid out in viewport units, as dashboards often are: the top 50vh green, the bottom 50vh blue, and a
# 100x100 CSS px white square at the top left.
VH_PAGE = _page("<body style='margin:0;overflow:hidden'><div style='height:50vh;background:#00ff00'>"
                "<div style='width:100px;height:100px;background:#fff'></div></div>"
                "<div style='height:50vh;background:#0000ff'></div></body>")

# /square: a 100x100 CSS px white square at the top left, on black.
SQUARE_PAGE = _page("<body style='margin:0;background:#000'>"
                    "<div style='width:100px;height:100px;background:#fff'></div></body>")


class PageHandler(http.server.BaseHTTPRequestHandler):
    """Test pages. /color/RRGGBB: one colour. /slow/N: answers after N seconds. /status/CODE: that
    HTTP status. /flaky/KEY/N: 500 for the first N hits, then green. /later/S, /tall/S, /echo/KEY,
    /border, /square, /vh: see above. /crash: a page whose script runs the renderer out of memory; /broken/KEY:
    the same until the test mends it (PageHandler.broken[KEY] = False), then green.
    /hang/KEY/N: the first N hits are a blue page whose script loops for ever 1 s after its load (a
    hung renderer); later hits are green.
    /nav/redirect?to=URL: a 302 to URL. /nav/script/ID?to=URL: a page that fetches /nav/ping/ID, then sets
    location.href = URL (a script navigation). Every request is counted in `hits` by path, 404s too;
    /echo records the request headers; POST /report/KEY keeps what a page reported."""

    hits: dict[str, int] = {}
    hit_times: dict[str, list[float]] = {}  # time.monotonic() of each hit, by path
    requests: dict[str, list[dict[str, str]]] = {}
    reports: dict[str, dict] = {}
    broken: dict[str, bool] = {}  # /broken/KEY crashes like /crash until the test sets broken[KEY] = False

    def do_GET(self):  # noqa: N802
        parts = urlsplit(self.path)
        path = parts.path
        PageHandler.hits[path] = PageHandler.hits.get(path, 0) + 1
        PageHandler.hit_times.setdefault(path, []).append(time.monotonic())
        status = 200
        segments = path.split("/")
        target = parse_qs(parts.query).get("to", [""])[0]
        if path.startswith("/nav/redirect"):
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path.startswith("/nav/script/"):
            ping = "/nav/ping/" + path.rsplit("/", 1)[1]
            body = (f"<!doctype html><html><body style='margin:0;background:#404040'><script>"
                    f"fetch({json.dumps(ping)}).finally(() => setTimeout(() => {{ location.href = "
                    f"{json.dumps(target)}; }}, 100));</script></body></html>").encode()
        elif path.startswith("/color/"):
            colour = segments[2]
            body = (f"<!doctype html><html><body style='margin:0;background:#{colour}'></body></html>").encode()
        elif path == "/crash" or path.startswith("/broken/") and PageHandler.broken.get(segments[2], True):
            # allocates until V8's heap cap kills the renderer ("tab crashed")
            body = (b"<!doctype html><html><body><script>let a=[];for(;;){a.push(new Array(4e6).fill(1.5))}"
                    b"</script></body></html>")
        elif path.startswith("/hang/"):
            hang = PageHandler.hits[path] <= int(segments[3])
            body = _page("<body style='margin:0;background:#%s'>%s</body>" % (
                ("2040c0", "<script>addEventListener('load', () => setTimeout(() => { for (;;) {} }, 1000))"
                           "</script>") if hang else ("00ff00", "")))
        elif path.startswith("/broken/"):  # mended: green
            body = b"<!doctype html><html><body style='margin:0;background:#00ff00'></body></html>"
        elif path.startswith("/slow/"):
            time.sleep(float(segments[2]))
            body = b"<!doctype html><html><body style='margin:0;background:#808080'></body></html>"
        elif path.startswith("/status/"):
            status = int(segments[2])
            body = _page(f"<body style='margin:0;background:#ffffff'><h1>status {status}</h1></body>")
        elif path.startswith("/flaky/"):
            failing = PageHandler.hits[path] <= int(segments[3])
            status = 500 if failing else 200
            body = _page(f"<body style='margin:0;background:#{'ffffff' if failing else '00ff00'}'></body>")
        elif path.startswith("/later/"):
            body = _page(LATER_PAGE.format(ms=int(float(segments[2]) * 1000)))
        elif path.startswith("/echo/"):
            PageHandler.requests.setdefault(path, []).append(dict(self.headers))
            body = ECHO_PAGE
        elif path.startswith("/tall/"):
            body = _page(TALL_PAGE.format(seconds=segments[2]))
        elif path == "/border":
            body = BORDER_PAGE
        elif path.startswith("/square"):
            body = SQUARE_PAGE
        elif path.startswith("/vh"):
            body = VH_PAGE
        else:
            self.send_error(404)
            return
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        if path.startswith("/report/"):
            PageHandler.reports[path.split("/")[2]] = json.loads(data or b"{}")
            PageHandler.requests.setdefault(path, []).append(dict(self.headers))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class PageServer:
    """Serves test pages on a free loopback port; `handler` may add pages (bench/ does)."""

    def __init__(self, handler: type[PageHandler] = PageHandler) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- decoding what castd serves ------------------------------------------------------------
def media_playlist_url(master_url: str) -> str:
    text = httpx.get(master_url, timeout=5).text
    variant = [line for line in text.splitlines() if line and not line.startswith("#")][0]
    return master_url.rsplit("/", 1)[0] + "/" + variant


def segment_urls(media_url: str) -> list[str]:
    response = httpx.get(media_url, timeout=5)
    if response.status_code != 200:
        return []
    base = media_url.rsplit("/", 1)[0]
    return [f"{base}/{line}" for line in response.text.splitlines() if line and not line.startswith("#")]


def fetch_segment(url: str) -> bytes:
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return response.content


def open_segment(data: bytes):
    return av.open(io.BytesIO(data), format="mpegts")


def rgb_at(frame, x: int, y: int) -> tuple[int, int, int]:
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    offset = y * plane.line_size + x * 3
    data = bytes(plane)
    return data[offset], data[offset + 1], data[offset + 2]


def last_frame_of(data: bytes):
    with open_segment(data) as container:
        frame = None
        for frame in container.decode(video=0):
            pass
        return frame


def close_to(actual, expected, tolerance: int = 24) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


def luma(frame):
    """A function (x, y) -> the decoded frame's luma (0-255): edges and shapes without chroma blur."""
    gray = frame.reformat(format="gray")
    plane = gray.planes[0]
    data, stride = bytes(plane), plane.line_size
    return lambda x, y: data[y * stride + x]


ARTIFACTS = ROOT / "artifacts"


def save_png(frame, name: str) -> Path:
    """Write a decoded frame as artifacts/<name>.png (PyAV's PNG encoder; no Pillow needed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    rgb = frame.reformat(format="rgb24")
    rgb.pts = 0
    with av.open(str(path), "w", format="image2", options={"update": "1"}) as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = rgb.width, rgb.height, "rgb24"
        for packet in stream.encode(rgb):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


# ---- a test camera ---------------------------------------------------------------------------
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has gi (GStreamer); the venv's has not


class RtspCamera:
    """tests/rtspserver.py (GStreamer's RTSP server) in a subprocess on a free loopback port, with a login.

    `kill()` and `start()` again (same port) play a camera that drops off the network and comes back."""

    def __init__(self, color: str = "00ff00", user: str = "viewer", password: str = "cam-PASS-5d1e",
                 size: str = "320x240", fps: int = 15) -> None:
        self.color, self.user, self.password, self.size, self.fps = color, user, password, size, fps
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:  # without credentials: the config gives them apart
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def url_at(self, mount: str) -> str:
        """Another mount of the same server: /aac and /alaw are the picture with a tone (tests/rtspserver.py)."""
        return f"rtsp://127.0.0.1:{self.port}{mount}"

    def start(self) -> "RtspCamera":
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(ROOT / "tests" / "rtspserver.py"), "--port", str(self.port), "--color", self.color,
             "--user", self.user, "--password", self.password, "--size", self.size, "--fps", str(self.fps)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "port N" once it serves
        if not line.startswith("port "):
            self.kill()
            raise AssertionError(f"the RTSP server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def __enter__(self) -> "RtspCamera":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.kill()


def centre_rgb(frame) -> tuple[int, int, int]:
    return rgb_at(frame, frame.width // 2, frame.height // 2)


def newest_frame(stream_url: str):
    """The last frame of the newest segment the stream lists (None before the first)."""
    urls = segment_urls(media_playlist_url(stream_url))
    return last_frame_of(fetch_segment(urls[-1])) if urls else None


def refused_login(handler: http.server.BaseHTTPRequestHandler, user: str, password: str) -> bool:
    """Answer 401 (as a camera does) unless the request carries this basic-auth login; True when refused."""
    import base64
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    if handler.headers.get("Authorization") == expected:
        return False
    handler.send_response(401)
    handler.send_header("WWW-Authenticate", 'Basic realm="camera"')
    handler.send_header("Content-Length", "0")
    handler.end_headers()
    return True


class MjpegCamera:
    """An HTTP MJPEG camera (multipart/x-mixed-replace, as cheap IP cameras and ESP32-CAMs serve it) on a
    free loopback port: one solid colour, JPEGs made by PyAV's mjpeg encoder, `fps` a second, basic auth."""

    def __init__(self, color: str = "ff00ff", user: str = "viewer", password: str = "mjpeg-PASS-8c2a",
                 size: tuple[int, int] = (320, 240), fps: int = 10) -> None:
        self.user, self.password, self.fps = user, password, fps
        self.jpeg = self._jpeg(bytes.fromhex(color), *size)
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if refused_login(self, camera.user, camera.password):
                    return
                if self.path.endswith("/snapshot.jpg"):  # one still picture, as cameras offer beside the stream
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(camera.jpeg)))
                    self.end_headers()
                    self.wfile.write(camera.jpeg)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=frame")
                self.end_headers()
                try:
                    while not camera.closed:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(camera.jpeg)).encode() + b"\r\n\r\n" + camera.jpeg + b"\r\n")
                        self.wfile.flush()
                        time.sleep(1 / camera.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.closed = False
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    @property
    def snapshot_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/snapshot.jpg"

    @staticmethod
    def _jpeg(rgb: bytes, width: int, height: int) -> bytes:
        frame = av.VideoFrame(width, height, "rgb24")
        plane = frame.planes[0]
        row = rgb * width
        data = bytearray(plane.buffer_size)
        for y in range(height):
            data[y * plane.line_size:y * plane.line_size + len(row)] = row
        plane.update(bytes(data))
        codec = av.CodecContext.create("mjpeg", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
        codec.time_base = Fraction(1, 25)
        packets = codec.encode(frame.reformat(format="yuvj420p")) + codec.encode(None)
        return b"".join(bytes(p) for p in packets)

    def close(self) -> None:
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


class HlsCamera:
    """A live HLS camera over HTTP (as go2rtc or Frigate serve one), with basic auth: PyAV's hls muxer writes
    1 s segments of a solid colour with the RTSP camera's time strip (H.264, `fps` a second, paced in real
    time) into a folder of its own, the last 4 listed, older ones deleted, and a ThreadingHTTPServer serves
    that folder on a free loopback port."""

    def __init__(self, folder: Path, color: str = "ffff00", user: str = "viewer", password: str = "hls-PASS-41f0",
                 size: tuple[int, int] = (320, 240), fps: int = 10) -> None:
        self.folder, self.user, self.password, self.fps = folder, user, password, fps
        folder.mkdir(parents=True, exist_ok=True)
        self.closed = False
        from rtspserver import TIME_RATE, TIME_STEPS  # the same time strip as the RTSP camera's
        self._rate, width, height = TIME_RATE, *size
        strip = height // 6
        self._pictures = []
        for step in range(TIME_STEPS):
            level = step * (255 // (TIME_STEPS - 1))
            picture = av.VideoFrame(width, height, "rgb24")  # (line size = width * 3 at these sizes)
            picture.planes[0].update(bytes.fromhex(color) * (width * (height - strip))
                                     + bytes((level, level, level)) * (width * strip))
            self._pictures.append(picture.reformat(format="yuv420p"))
        camera = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):  # noqa: N802
                if refused_login(self, camera.user, camera.password):
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()
        wait_for(lambda: (folder / "live.m3u8").exists(), 10, message="the HLS camera's first segment")

    def _write(self) -> None:
        with av.open(str(self.folder / "live.m3u8"), "w", format="hls", options={
                "hls_time": "1", "hls_list_size": "4", "hls_flags": "delete_segments"}) as out:
            stream = out.add_stream("libx264", rate=self.fps, options={"g": str(self.fps), "tune": "zerolatency",
                                                                       "preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = self._pictures[0].width, self._pictures[0].height, "yuv420p"
            began, n = time.monotonic(), 0
            while not self.closed:
                picture = self._pictures[int(n * self._rate / self.fps) % len(self._pictures)]
                picture.pts = n
                out.mux(stream.encode(picture))
                n += 1
                time.sleep(max(0.0, began + n / self.fps - time.monotonic()))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.m3u8"

    def close(self) -> None:
        self.closed = True
        self._writer.join(5)
        self.server.shutdown()
        self.server.server_close()
