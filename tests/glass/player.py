"""Shaka Player in headless Debian Chromium: what a Cast receiver's player makes of a stream.

The Cast Web Receiver plays HLS in Shaka Player over MSE (DESIGN.md). Decoding castd's segments one by
one cannot see what that player sees: holes in the timeline, a live start point too close to the edge,
a player frozen at a discontinuity. `ShakaPlayer` loads a URL in the real Shaka Player (npm, pinned in
tests/glass/package-lock.json, one alias per line: `shaka49` is 4.9.2, the Cast framework's Shaka today
(v4.9.2-caf2, shaka-player issue 10297), `shaka415` 4.15.24, npm's nearest to its coming v4.15.35-caf1,
`shaka4` the 4.16 line Google recommends, `shaka5` the newest 5.x),
and reads back the player's own state: currentTime, buffered ranges, buffering, stalls, Shaka error
codes, distance to the live edge, and the colour of each frame the video element presents, with the
wall time it was first presented (requestVideoFrameCallback's expectedDisplayTime on the epoch clock
that `time.time()` reads, so a test or a bench can time a webhook against the glass).

    with ShakaPlayer("shaka4") as player:
        player.load(castd_base + "/hls/master.m3u8")
        seen = player.wait_colour((255, 0, 0), timeout=30)

Every process it starts (chromedriver, Chromium and Chromium's helpers, crashpad included) it ends:
`close()` quits through WebDriver, then kills by PID whatever it saw below chromedriver that still lives.
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from headless import headless_chromium
from helpers import descendants, still_alive, wait_for

HERE = Path(__file__).resolve().parent
Line = Literal["shaka49", "shaka415", "shaka4", "shaka5"]
LINES: tuple[Line, ...] = ("shaka49", "shaka415", "shaka4", "shaka5")
# The version prefix each alias must report (shaka.Player.version): the lockfile pins the exact builds.
VERSIONS: dict[Line, str] = {"shaka49": "v4.9.", "shaka415": "v4.15.", "shaka4": "v4.16.", "shaka5": "v5."}
# A picture that stands still this long is a stall a viewer sees, whether or not Shaka says `waiting`:
# 4.9.2 holds playbackRate at 0 while it gathers its 2 s rebuffering goal, with no event (issue 19).
STILL = 0.3
# Autoplay as on a TV (no user gesture); a muted video plays anyway, this covers the silent AAC track too.
FLAGS = ["--autoplay-policy=no-user-gesture-required"]
RGB = tuple[int, int, int]


def installed(line: Line = "shaka4") -> Path:
    """The compiled Shaka Player of `line`, or a clear error naming the command that installs it."""
    path = HERE / "node_modules" / line / "dist" / "shaka-player.compiled.js"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `make test` (npm ci in tests/glass) to install Shaka Player")
    return path


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The page and the two Shaka builds, nothing else (the rest of tests/glass stays unserved)."""

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        if path in ("/", "/player.html"):
            return str(HERE / "player.html")
        for line in LINES:
            if path == f"/{line}/dist/shaka-player.compiled.js":
                return str(installed(line))
        return str(HERE / "missing")

    def log_message(self, *args) -> None:
        pass


class PageServer:
    """The harness page on a loopback port, served from a thread; `close()` ends it."""

    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(_Handler, directory=str(HERE)))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="glass-http", daemon=True)
        self.thread.start()

    def url(self, line: Line, config: str | None = None) -> str:
        query = f"line={line}" + (f"&config={urllib.parse.quote(config)}" if config else "")
        return f"http://127.0.0.1:{self.server.server_address[1]}/player.html?{query}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@dataclass(frozen=True)
class Stall:
    start: float  # wall time (time.time() clock)
    end: float | None  # None while it lasts
    at: float  # currentTime when it began

    def seconds(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start


@dataclass(frozen=True)
class Colour:
    rgb: RGB
    t: float  # wall time the frame with this colour was first presented
    media_time: float


@dataclass(frozen=True)
class ShakaError:
    code: int | None  # shaka.util.Error code, e.g. 3016 (MSE), 1001 (HTTP), 4032 (no playable variant)
    category: int | None
    severity: int | None  # 2 = CRITICAL: the player stopped
    t: float
    message: str = ""
    data: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlayerState:
    """One reading of the player, taken in one script call."""

    now: float
    version: str
    url: str | None
    loaded: bool
    load_error: dict | None
    current_time: float
    paused: bool
    buffering: bool
    started: bool  # a frame played since the last load
    playback_rate: float
    buffered: list[tuple[float, float]]
    seek_range: tuple[float, float] | None
    live_edge: float | None  # the newest media time the playlist makes available
    stalls: list[Stall]
    errors: list[ShakaError]
    colour: RGB | None
    colours: list[Colour]
    frames: int
    last_frame_at: float | None  # wall time the newest frame was presented
    first_frame_at: float | None  # wall time the first frame since the last load was presented
    stats: dict | None
    stills: tuple[Stall, ...] = ()  # spells of STILL s or more with no new frame presented

    @property
    def playing(self) -> bool:
        return self.started and not self.paused and not self.buffering and not self.critical

    @property
    def critical(self) -> bool:
        return self.load_error is not None or any(e.severity == 2 for e in self.errors)

    def stopped_since(self, since: float) -> str | None:
        """Why Shaka stopped the stream loaded at `since` (its load error, or a critical error after it), or
        None while it goes on: the harness keeps the errors of earlier loads, which do not count."""
        critical = [e for e in self.errors if e.severity == 2 and e.t >= since]
        if self.load_error or critical:
            return str(self.load_error or critical[-1])
        return None

    @property
    def behind_live_edge(self) -> float | None:
        return None if self.live_edge is None else self.live_edge - self.current_time

    @property
    def buffered_ahead(self) -> float:
        return next((end - self.current_time for start, end in self.buffered
                     if start - 0.1 <= self.current_time <= end), 0.0)

    def stall_seconds(self) -> list[float]:
        return [s.seconds(self.now) for s in self.stalls]

    def stalls_of_a_frame_or_more(self, frame: float) -> list[Stall]:
        """The stalls a viewer can see: buffering that lasted (or lasts) at least one frame period. Shaka
        also reports spells of ~0.01 s (the buffer ran dry and the next segment arrived within
        milliseconds: seen 0-2 times in 3 minutes on a loaded 2-core machine), which hold the picture on
        screen no longer than a frame does anyway; bench.glass counts those apart."""
        return [s for s in self.stalls if s.seconds(self.now) >= frame]

    @classmethod
    def parse(cls, raw: dict) -> PlayerState:
        ms = 1000.0
        return cls(
            now=raw["now"] / ms, version=raw["version"] or "", url=raw["url"], loaded=raw["loaded"],
            load_error=raw["loadError"], current_time=raw["currentTime"], paused=raw["paused"],
            buffering=raw["buffering"], started=raw["started"], playback_rate=raw["playbackRate"],
            buffered=[tuple(r) for r in raw["buffered"]],
            seek_range=tuple(raw["seekRange"]) if raw["seekRange"] else None, live_edge=raw["liveEdge"],
            stalls=[Stall(s["start"] / ms, s["end"] / ms if s["end"] is not None else None, s["at"])
                    for s in raw["stalls"]],
            errors=[ShakaError(e["code"], e["category"], e["severity"], e["t"] / ms, e.get("message", ""),
                              tuple(e.get("data") or ())) for e in raw["errors"]],
            colour=tuple(raw["colour"]) if raw["colour"] else None,
            colours=[Colour(tuple(c["rgb"]), c["t"] / ms, c["mediaTime"]) for c in raw["colours"]],
            frames=raw["frames"], last_frame_at=raw["lastFrameAt"] / ms if raw["lastFrameAt"] else None,
            first_frame_at=raw["firstFrameAt"] / ms if raw["firstFrameAt"] else None,
            stats=raw["stats"],
            stills=tuple(Stall(s["start"] / ms, s["end"] / ms, s["at"]) for s in raw.get("stills", [])))

    def still_pictures(self, since: float = 0.0, longest: float = STILL) -> list[Stall]:
        """Times the picture stood still for `longest` s or more after `since` (a frame period is 0.1 s),
        the current one included while it lasts (the player playing, not paused)."""
        out = [s for s in self.stills if s.start >= since]
        if (self.started and not self.paused and self.last_frame_at is not None
                and self.last_frame_at >= since and self.now - self.last_frame_at >= longest):
            out.append(Stall(self.last_frame_at, None, self.current_time))
        return out


def close_to(actual, expected, tolerance: int = 36) -> bool:
    """Colours after H.264 and scaling: the sum of channel differences within `tolerance`."""
    return actual is not None and sum(abs(a - b) for a, b in zip(actual, expected)) <= tolerance


class ShakaPlayer:
    """One headless Chromium with the harness page and one Shaka Player, ready to load streams.

    `config` is Shaka's player configuration as a JSON string (e.g. '{"streaming":{"bufferingGoal":10}}').
    Share one per test module: Chromium costs ~1 s and ~200 MB to start.
    """

    def __init__(self, line: Line = "shaka4", config: str | None = None, server: PageServer | None = None) -> None:
        installed(line)
        self.line = line
        self._own_server = server is None
        self.server = server or PageServer()
        self._browser_cm = None
        self.browser = None
        self._seen: set = set()
        try:
            self._browser_cm = headless_chromium(extra_flags=FLAGS)
            self.browser = self._browser_cm.__enter__()
            self._seen = descendants(self.browser.service.process.pid)
            self.browser.get(self.server.url(line, config))
            wait_for(lambda: self._script("return window.glass && (window.glass.ready || window.glass.bootError)"),
                     30, message="Shaka Player ready")
            error = self._script("return window.glass.bootError || null")
            if error:
                raise RuntimeError(f"the Shaka harness page failed: {error}")
            self.version = self._script("return window.glass.version")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ShakaPlayer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _script(self, code: str, *args):
        return self.browser.execute_script(code, *args)

    # ---- control ----------------------------------------------------------------------------
    def load(self, url: str, start_time: float | None = None) -> None:
        """Start loading `url` (returns at once; a second load replaces the stream, as a new LOAD does)."""
        self._script("window.glass.load(arguments[0], arguments[1] === null ? undefined : arguments[1])",
                     url, start_time)

    def unload(self) -> None:
        self._script("window.glass.unload()")

    def pause(self) -> None:
        """The viewer pauses."""
        self._script("window.glass.pause()")

    def play(self) -> None:
        self._script("window.glass.play()")

    def block_segments(self, on: bool = True) -> None:
        """Freeze on purpose: every segment request hangs until unblocked, so the buffer runs dry."""
        self._script("window.glass.block(arguments[0])", on)

    # ---- reading ----------------------------------------------------------------------------
    def state(self) -> PlayerState:
        return PlayerState.parse(self._script("return window.glass.state()"))

    def events(self) -> list[dict]:
        return self._script("return window.glass.events")

    def wait_playing(self, timeout: float = 30) -> PlayerState:
        def check():
            s = self.state()
            if s.critical:
                raise AssertionError(f"Shaka stopped with an error: {s.load_error or s.errors}")
            return s.playing and s.current_time > 0 and s
        return wait_for(check, timeout, message=f"{self.line} playing")

    def wait_colour(self, rgb: RGB, timeout: float = 30, after: float = 0.0, tolerance: int = 36) -> Colour:
        """The first presented frame of colour `rgb` at wall time >= `after` (time.time() clock)."""
        def check():
            s = self.state()
            return next((c for c in s.colours if c.t >= after and close_to(c.rgb, rgb, tolerance)), None)
        return wait_for(check, timeout, interval=0.05, message=f"{self.line} presents {rgb}")

    def record(self) -> set:
        """Every process below chromedriver now (close() ends them all); the pairs (pid, start time)."""
        self._seen |= descendants(self.browser.service.process.pid)
        return set(self._seen)

    # ---- end ----------------------------------------------------------------------------------
    def close(self) -> None:
        if self.browser is not None:
            try:
                self._seen |= descendants(self.browser.service.process.pid)
            except Exception:  # noqa: BLE001  (chromedriver already gone: what we saw before still counts)
                pass
        if self._browser_cm is not None:
            try:
                self._browser_cm.__exit__(None, None, None)
            finally:
                self._browser_cm = None
                self.browser = None
        deadline = time.monotonic() + 3
        while (left := still_alive(self._seen)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._seen = set()
        if self._own_server and self.server is not None:
            self.server.close()
            self.server = None
