"""`python -m bench.glass`: castd's stream at the glass, in Shaka Player (the Cast Web Receiver's HLS
engine: 4.9.2, 4.15.24, 4.16 and 5.x, tests/glass), beside the server-side numbers.

The player is loaded the moment castd would LOAD a Chromecast: when /status turns `streaming` (the
supervisor does that and casting.stream_ready() on the same `ready` event). Times are wall-clock:
the harness page stamps every presented frame whose colour changed with requestVideoFrameCallback's
expectedDisplayTime, on the clock time.time() reads.

- cold / warm: POST /start of a solid colour page (standby off / a warm standby) -> castd ready
  (server) -> the first frame of that colour presented by the player (glass).
- switch: POST /start of another colour during the stream -> the first listed segment ending on it
  (server, bench/hlswatch.py) -> its first frame presented (glass). One switch at a time: the next
  one is posted after the colour showed, 1-2 s later.
- stalls: a new session, the player loaded at ready, then N minutes of play: every buffering after
  the first frame is a stall (static page, and /clock, which changes every frame), per 10 minutes;
  and apart, those of a frame (0.1 s) or more, the ones a viewer can see (Shaka also reports ~0.01 s
  spells: the buffer ran dry and the segment arrived within milliseconds); and still pictures, no new
  frame presented for 0.3 s or more (4.9.2 gathers its 2 s rebuffering goal with playbackRate 0 and no
  `waiting` event; castd sends 10 fps even for a still page), counted from the first frame on.
- kill: SIGKILL of the encoder child while the player plays (4 s apart), read from the frames the
  player presents: the longest time without a new frame in the 20 s after, kill -> the end of that
  spell (0 when under 0.3 s: the player played through), frozen = under 2 s of frames in 20 s.

`--link loopback,jitter`: the player reaches castd straight on loopback, or through bench/jitterlink.py
(a proxy adding 40 +- 30 ms per chunk each way and a 200-400 ms hold to 1 chunk in 100: this kernel has
no netem); each link is measured with every tree and format, interleaved, so ratios hold in one run.
`--busy N`: N processes spin on the CPU for the whole run (the busy machine of issue 19: with a busy page
beside them, a Pi whose other jobs take a core); they are ended by PID when the run ends.
`--phases K`: a real receiver LOADs at a random phase of the segment clock, and Shaka refreshes at a
phase its load fixes (issue 19); each player load is delayed by i/K of a segment after castd is ready
(i = 0..K-1): the stall runs play once per phase and page, the starts and the blocks of switches take
the phases in turn.

    .venv/bin/python -m bench.glass                       # this tree, both Shaka lines
    .venv/bin/python -m bench.glass --compare 36f7555      # that commit and this tree, interleaved
    .venv/bin/python -m bench.glass --minutes 10 --only stalls
    .venv/bin/python -m bench.glass --formats hls-1s,hls-fast   # the stream formats side by side, one tree
    .venv/bin/python -m bench.glass --formats hls-1s,hls-fast --link loopback,jitter --phases 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import cyclecode
from bench.compare import ROOT, export
from bench.control import Castd
from bench.hlswatch import BenchError, SegmentWatcher, frames_of, media_url_of, rgb_points, shows_colour
from bench.jitterlink import JitterLink
from bench.pages import serve
from bench.stats import summary
from bench.testhelpers import LINES, Daemon, ShakaPlayer, wait_for
from castd.presets import DEFAULT_STREAM_FORMAT, STREAM_FORMATS

PALETTE = ["c02020", "2020c0", "20c020", "c0c020", "c020c0", "20c0c0", "e08040", "4080e0"]
SECTIONS = ("cold", "warm", "switch", "stalls", "kill")
FROZEN_AFTER = 20.0
# The sum of channel differences a presented colour may be off: after H.264 (limited range) and back to RGB
# in the player a green comes out ~45 off (20c020 never matched the harness's default 36: every start and
# switch to it "timed out", in both trees). The palette's colours are >= 128 apart, so 80 cannot confuse them.
TOLERANCE = 80
FRAME = 0.1  # castd's 10 fps: a buffering spell of a frame or more is a stall a viewer can see
LINKS = ("loopback", "jitter")


def rgb(hexa: str) -> tuple[int, int, int]:
    return int(hexa[0:2], 16), int(hexa[2:4], 16), int(hexa[4:6], 16)


class Side:
    """One castd tree with its two daemons (standby off for cold starts, after-use for the rest)."""

    def __init__(self, label: str, tree: Path, tmp: Path, stream_format: str | None = None) -> None:
        self.label, self.tree = label, tree
        self.daemons = {}
        env = {"CASTD_STREAM_FORMAT": stream_format} if stream_format else {}
        for standby in ("off", "after-use"):
            run = tmp / label / standby
            run.mkdir(parents=True, exist_ok=True)
            self.daemons[standby] = Daemon(runtime_dir=run / "run", cwd=tree, env_extra={
                "CASTD_LOG_LEVEL": "INFO", "CASTD_STANDBY": standby, **env}).start()
        self.castd = {k: Castd(d) for k, d in self.daemons.items()}

    def close(self) -> None:
        for standby, daemon in self.daemons.items():
            self.castd[standby].close()
            daemon.stop()
            daemon.kill_leftovers()


class Link:
    """How the player reaches castd: `via(url)` is the URL it loads. "jitter" starts one JitterLink per
    daemon on first use; `close()` ends them."""

    def __init__(self, name: str) -> None:
        if name not in LINKS:
            raise SystemExit(f"unknown link {name!r}; valid: {', '.join(LINKS)}")
        self.name = name
        self.proxies: dict[str, JitterLink] = {}

    def via(self, url: str) -> str:
        if self.name == "loopback":
            return url
        netloc = urlsplit(url).netloc
        if netloc not in self.proxies:
            host, _, port = netloc.rpartition(":")
            self.proxies[netloc] = JitterLink(host, int(port), seed=len(self.proxies) + 19)
        return self.proxies[netloc].url(url)

    def mark(self) -> dict[str, tuple[int, int, int]]:
        return {k: (p.chunks, p.held, len(p.reloads)) for k, p in self.proxies.items()}

    def counts(self, since: dict[str, tuple[int, int, int]] | None = None) -> dict:
        """What the link did (since `mark()`), and how long castd took to answer each blocking reload."""
        since = since or {}
        zero = (0, 0, 0)
        reloads = [r for k, p in self.proxies.items() for r in p.reloads[since.get(k, zero)[2]:]]
        return {"chunks": sum(p.chunks - since.get(k, zero)[0] for k, p in self.proxies.items()),
                "held": sum(p.held - since.get(k, zero)[1] for k, p in self.proxies.items()),
                "reloads": len(reloads), "reloads_held_0.05s": sum(1 for s, _ in reloads if s >= 0.05),
                "reload_seconds": summary([s for s, _ in reloads]),
                "reload_statuses": sorted({code for _, code in reloads})}

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()
        self.proxies.clear()


class Loader:
    """Loads the player over one link at one phase of the segment clock: `load(..., i)` waits until i/K
    of a segment after castd turned ready (K = --phases), then loads."""

    def __init__(self, link: Link, phases: int) -> None:
        self.link, self.phases = link, max(1, phases)

    def phase(self, i: int) -> float:
        return (i % self.phases) / self.phases

    def load(self, castd: Castd, player: ShakaPlayer, url: str, ready: float, i: int = 0) -> float:
        """Returns the wall time of the load."""
        if self.phases > 1:
            fmt = castd.status().get("stream_format") or DEFAULT_STREAM_FORMAT
            time.sleep(max(0.0, ready + self.phase(i) * STREAM_FORMATS[fmt].segment_seconds - time.time()))
        loaded = time.time()
        player.load(self.link.via(url))
        return loaded


def _ready(castd: Castd, timeout: float = 90) -> float:
    wait_for(lambda: castd.status()["state"] == "streaming", timeout, interval=0.02, message="castd ready")
    return time.time()


def _make_standby(castd: Castd, pages) -> None:
    """A daemon with standby after-use gets its warm standby from one session, stopped."""
    if castd.status().get("standby") != "warm":
        castd.start(pages.url("/color/101010"), "720p")
        _ready(castd)
        _idle(castd, True)


def _idle(castd: Castd, standby: bool) -> None:
    castd.stop()
    wait_for(lambda: (s := castd.status())["state"] == "idle" and (not standby or s.get("standby") == "warm"),
             60, interval=0.1, message="castd idle" + (" with a warm standby" if standby else ""))
    time.sleep(1.0)


def _playing(player: ShakaPlayer, since: float, timeout: float = 90) -> None:
    """The player plays the stream loaded at `since` (errors of an earlier, ended stream do not count)."""
    def check():
        state = player.state()
        if stopped := state.stopped_since(since):
            raise BenchError(f"Shaka stopped with an error: {stopped}")
        return state.started and not state.paused and not state.buffering and state.current_time > 0
    wait_for(check, timeout, message=f"{player.line} playing")


def start(castd: Castd, player: ShakaPlayer, pages, hexa: str, standby: bool, loader: Loader, i: int = 0) -> dict:
    """One start from idle: server ready and glass first frame, seconds from the POST."""
    player.unload()  # as a TV whose castd session ended: nothing loaded, no requests to a gone stream
    _idle(castd, standby)
    posted = time.time()
    body = castd.start(pages.url(f"/color/{hexa}"), "720p")
    ready = _ready(castd)
    loader.load(castd, player, body["stream_url"], ready, i)
    seen = player.wait_colour(rgb(hexa), 90, after=posted, tolerance=TOLERANCE)
    return {"server": ready - posted, "glass": seen.t - posted, "body": body}


def switches(castd: Castd, player: ShakaPlayer, pages, runs: int, first: int) -> dict:
    body = castd.status()
    watcher = SegmentWatcher(castd.client, media_url_of(f"{castd.daemon.base}{body['stream_path']}"))
    server: list[float] = []
    glass: list[float] = []
    missed = 0
    for run in range(runs):
        time.sleep(1.0 + (run * 0.37) % 1.0)  # lands at every phase of the segment clock
        hexa = PALETTE[(first + run) % len(PALETTE)]
        watcher.prime()
        posted = time.time()
        castd.start(pages.url(f"/color/{hexa}"), "720p")
        try:
            listed, _ = watcher.first_matching(lambda data, c=rgb(hexa): shows_colour(data, c), posted, 60)
            server.append(listed)
            glass.append(player.wait_colour(rgb(hexa), 60, after=posted, tolerance=TOLERANCE).t - posted)
        except (BenchError, AssertionError):  # the player (or castd) never showed it: counted, go on
            missed += 1
    return {"server": server, "glass": glass, "missed": missed}


def stalls(castd: Castd, player: ShakaPlayer, pages, page: str, minutes: float, loader: Loader,
           i: int = 0) -> dict:
    player.unload()
    _idle(castd, True)
    body = castd.start(pages.url(page), "720p")
    loaded = loader.load(castd, player, body["stream_url"], _ready(castd), i)
    _playing(player, loaded)
    behind = []
    while time.time() - loaded < minutes * 60:
        time.sleep(1.0)
        state = player.state()
        if state.stopped_since(loaded):
            break
        if state.behind_live_edge is not None:
            behind.append(state.behind_live_edge)
    return stall_record(player, loaded, page, loader.phase(i), behind)


def stall_record(player: ShakaPlayer, loaded: float, page: str, phase: float, behind: list[float]) -> dict:
    """What a viewer saw of one load played until now: buffering spells, those of a frame or more, still
    pictures, player errors, and the distance behind the live edge sampled while it played (`behind`)."""
    state = player.state()
    played = (time.time() - loaded) / 60
    mine = [s for s in state.stalls if s.start >= loaded]  # (the harness keeps stalls across loads)
    visible = [s for s in mine if s.seconds(state.now) >= FRAME]
    still = state.still_pictures(since=state.first_frame_at or loaded)
    return {"still": len(still), "still_seconds": [round(s.seconds(state.now), 2) for s in still],
            "still_at": [round(s.start - loaded, 2) for s in still],  # seconds after the load
            "page": page, "phase": phase, "minutes": round(played, 2), "stalls": len(mine),
            "per_10_min": round(len(mine) * 10 / played, 2), "stall_seconds": [s.seconds(state.now) for s in mine],
            "stall_at": [round(s.start - loaded, 2) for s in mine],
            "visible": len(visible), "visible_per_10_min": round(len(visible) * 10 / played, 2),
            "errors": [e.code for e in state.errors if e.t >= loaded], "behind_live_edge": summary(behind)}


def kills(castd: Castd, player: ShakaPlayer, count: int) -> dict:
    """SIGKILL the encoder `count` times while the player plays the colour clock (bench/cyclecode.py), 4 s
    apart. Read at the glass, from the frames the player presents (a starved Shaka moves currentTime on in
    jumps without presenting anything, so currentTime alone is no proof): the longest time without a new
    frame in the 20 s after the kill (castd's 10 fps: 0.1 s is playing), kill -> the end of that still
    spell when it lasted 0.3 s or more (0 otherwise), frozen = fewer than 2 s of frames presented in those
    20 s, and kill -> the first presented frame drawn after the kill (its colour's 0.2 s step began after
    it: the crash bridge's held picture does not count; issue 19's "SIGKILL -> a frame drawn after it")."""
    resumed, stills, frozen, fresh, listed = [], [], 0, [], []
    body = castd.status()
    watcher = SegmentWatcher(castd.client, media_url_of(f"{castd.daemon.base}{body['stream_path']}"))
    for _ in range(count):
        time.sleep(4.0)
        pid = castd.status()["encoder_pid"]
        first = player.state()
        watcher.prime()
        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        server = threading.Thread(target=_listed_after, args=(watcher, killed, listed), daemon=True)
        server.start()
        frames, changed, longest, longest_end = first.frames, killed, 0.0, killed
        while time.time() - killed < FROZEN_AFTER:
            time.sleep(0.1)
            state = player.state()
            if state.frames != frames:
                if state.now - changed > longest:
                    longest, longest_end = state.now - changed, state.now
                frames, changed = state.frames, state.now
            if frames >= first.frames + 60 and state.now - killed > 8.0:
                break  # 6 s of frames since the kill and past any restart: playing
        if time.time() - changed > longest:
            longest = time.time() - changed
        if frames < first.frames + 20:
            frozen += 1
            wait_for(lambda: castd.status()["state"] == "streaming", 30, message="castd streaming again")
        else:
            resumed.append(longest_end - killed if longest >= 0.3 else 0.0)
            stills.append(longest)
        try:
            fresh.append(wait_for(lambda: next((c.t - killed for c in player.state().colours if c.t > killed
                                                and cyclecode.drawn_since(c.rgb, c.t) >= killed), None),
                                  FROZEN_AFTER, message="a frame drawn after the kill"))
        except AssertionError:  # none within 20 s: counted in `frozen` when no frame came at all
            pass
        server.join(FROZEN_AFTER)
    return {"kill_to_playing": resumed, "longest_still": stills, "frozen": frozen, "kills": count,
            "kill_to_new_frame": fresh, "kill_to_new_frame_listed": listed}


def _listed_after(watcher: SegmentWatcher, killed: float, out: list[float]) -> None:
    """The server's side of a kill: seconds until castd listed a segment with a frame drawn after it."""
    def drawn_after(data: bytes) -> bool:
        now = time.time()  # (after the segment was listed: its frames were drawn before)
        return any(cyclecode.drawn_since(rgb_points(f, [(f.width // 2, f.height // 2)])[0], now) >= killed
                   for f in frames_of(data))
    try:
        out.append(watcher.first_matching(drawn_after, killed, FROZEN_AFTER)[0])
    except BenchError:
        pass


def measure(side: Side, line: str, pages, plan: dict, sections: list[str], colour: int, loader: Loader) -> dict:
    """Every section on one tree and line; a section that fails is recorded, the others still run."""
    out: dict = {}
    for section in sections:
        try:
            out.update(_measure(side, line, pages, plan, [section], colour, loader))
        except (BenchError, AssertionError, RuntimeError) as exc:
            out[section] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return out


def _measure(side: Side, line: str, pages, plan: dict, sections: list[str], colour: int, loader: Loader) -> dict:
    out: dict = {}
    with ShakaPlayer(line) as player:
        for kind, standby in (("cold", False), ("warm", True)):
            if kind not in sections:
                continue
            castd = side.castd["after-use" if standby else "off"]
            if standby:
                _make_standby(castd, pages)
            runs = [start(castd, player, pages, PALETTE[(colour + i) % len(PALETTE)], standby, loader, i)
                    for i in range(plan["starts"])]
            out[kind] = {"server": [r["server"] for r in runs], "glass": [r["glass"] for r in runs]}
            _idle(castd, standby)
        castd = side.castd["after-use"]
        _make_standby(castd, pages)
        if "switch" in sections:  # in blocks, one per phase (one block without --phases)
            found: dict = {"server": [], "glass": [], "missed": 0}
            blocks = min(loader.phases, plan["switches"])
            first = colour  # every start and switch a colour other than the one on screen (the harness
            for j in range(blocks):  # stamps a frame only when its colour changes)
                began = time.time()
                start(castd, player, pages, PALETTE[first % len(PALETTE)], True, loader, j)
                _playing(player, began)
                runs = plan["switches"] * (j + 1) // blocks - plan["switches"] * j // blocks
                block = switches(castd, player, pages, runs, first + 1)
                found = {k: found[k] + block[k] for k in found}
                first += runs + 1
            out["switch"] = found
        if "kill" in sections:
            began = time.time()
            start(castd, player, pages, PALETTE[colour % len(PALETTE)], True, loader)
            _playing(player, began)
            castd.start(pages.url("/cycle"), "720p")  # the colour clock: which frame was drawn after a kill
            wait_for(lambda: sum(c.t > began for c in player.state().colours) >= 10, 30, message="the colour clock")
            out["kill"] = kills(castd, player, plan["kills"])
        if "stalls" in sections:
            out["stalls"] = [stalls(castd, player, pages, page, plan["minutes"], loader, i)
                             for i in range(loader.phases) for page in ("/color/3060a0", "/clock")]
        player.unload()
        _idle(castd, True)
    return out


class CpuLoad:
    """`n` processes that spin on the CPU until `close()` (which ends them by PID)."""

    def __init__(self, n: int) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def close_all(sides: list[Side], loaders: list[Loader], pages) -> None:
    """End a run's daemons, link proxies and page server (bench.glass and bench.glassstart)."""
    for side in sides:
        side.close()
    for loader in loaders:
        loader.link.close()
    pages.close()


def run(trees: dict[str, Path], lines: list[str], plan: dict, sections: list[str],
        formats: list[str] | None = None, links: list[str] | None = None) -> dict:
    pages = serve()
    results: dict = {"plan": plan, "lines": lines, "trees": {k: str(v) for k, v in trees.items()}, "runs": {},
                     "load_average": [os.getloadavg()]}
    loaders = [Loader(Link(name), plan.get("phases", 1)) for name in links or ["loopback"]]
    with tempfile.TemporaryDirectory(prefix="castd-glass-") as tmp:
        sides = []
        busy = CpuLoad(plan.get("busy", 0))
        try:
            for label, tree in trees.items():
                for fmt in formats or [None]:
                    sides.append(Side(f"{label}:{fmt}" if fmt and len(trees) > 1 else fmt or label, tree,
                                      Path(tmp), fmt))
            def label(side: Side, loader: Loader) -> str:
                return f"{side.label} @{loader.link.name}" if len(loaders) > 1 else side.label

            results["trees"] = {label(side, loader): str(side.tree) for loader in loaders for side in sides}
            for n, line in enumerate(lines):
                for loader in loaders:  # interleaved: every tree, format and link under the same machine load
                    for side in sides:
                        mark = loader.link.mark()
                        try:
                            found = measure(side, line, pages, plan, sections, n * 3, loader)
                        except (BenchError, AssertionError) as exc:
                            found = {"error": f"{type(exc).__name__}: {exc}"}
                        found["link"] = loader.link.counts(mark)
                        results["runs"].setdefault(line, {})[label(side, loader)] = found
                        results["load_average"].append(os.getloadavg())
                        print(json.dumps({"line": line, "tree": label(side, loader), **found,
                                          "load_average": os.getloadavg()}), flush=True)
            results["links"] = {loader.link.name: loader.link.counts() for loader in loaders}
        finally:
            busy.close()
            close_all(sides, loaders, pages)
    return results


def _fmt(values: list[float]) -> str:
    s = summary(values)
    if s["median"] is None:
        return "-"
    return f"{s['median']:.2f} (p95 {s['p95']:.2f}, n={s['n']})"


def report(results: dict) -> None:
    labels = list(results["trees"])
    print("\nAt the glass (Shaka Player in headless Chromium), seconds from the webhook; medians")
    for line, by_tree in results["runs"].items():
        print(f"\n{line}:")
        rows = []
        def row(name, get):
            cells = []
            for label in labels:
                try:
                    cells.append(get(by_tree[label]))
                except (KeyError, TypeError):
                    cells.append("-")
            rows.append([name, *cells])
        row("cold start, server (ready)", lambda r: _fmt(r["cold"]["server"]))
        row("cold start, glass (first frame)", lambda r: _fmt(r["cold"]["glass"]))
        row("warm standby, server (ready)", lambda r: _fmt(r["warm"]["server"]))
        row("warm standby, glass", lambda r: _fmt(r["warm"]["glass"]))
        row("switch, server (segment listed)", lambda r: _fmt(r["switch"]["server"]))
        row("switch, glass", lambda r: _fmt(r["switch"]["glass"]) + (f", {r['switch']['missed']} never shown"
                                                                  if r["switch"].get("missed") else ""))
        for page, path in (("static", "/color/3060a0"), ("busy", "/clock")):
            def runs_of(r, path=path):  # one per phase (--phases)
                return [x for x in r["stalls"] if x["page"] == path]

            def total(r, key, runs_of=runs_of):
                return sum(x[key] for x in runs_of(r))

            def minutes(r, runs_of=runs_of):
                return round(sum(x["minutes"] for x in runs_of(r)), 2)

            row(f"stalls per 10 min, {page} page", lambda r, t=total, m=minutes: f"{t(r, 'stalls') * 10 / m(r):.2f} "
                f"({t(r, 'stalls')} in {m(r)} min)")
            row(f"  of a frame or more (>= {FRAME:g} s)", lambda r, t=total, m=minutes:
                f"{t(r, 'visible') * 10 / m(r):.2f} ({t(r, 'visible')})")
            row("  still pictures (>= 0.3 s without a new frame)", lambda r, t=total, f=runs_of: f"{t(r, 'still')} "
                f"{[v for x in f(r) for v in x['still_seconds']][:3]} "
                f"at {[v for x in f(r) for v in x['still_at']][:3]}")
            row(f"behind live edge, {page} page", lambda r, f=runs_of: " / ".join(
                f"{x['behind_live_edge']['median']:.2f}" for x in f(r)))
        row("blocking reloads: asked / held >= 0.05 s", lambda r: f"{r['link']['reloads']} / "
            f"{r['link']['reloads_held_0.05s']}" if r["link"]["reloads"] else "-")
        row("encoder SIGKILL -> a frame drawn after it, server (listed)",
            lambda r: _fmt(r["kill"].get("kill_to_new_frame_listed", [])))
        row("encoder SIGKILL -> a frame drawn after it, glass", lambda r: _fmt(r["kill"].get("kill_to_new_frame", [])))
        row("encoder SIGKILL -> playing again", lambda r: _fmt(r["kill"]["kill_to_playing"]))
        row("  longest time without a new frame", lambda r: _fmt(r["kill"]["longest_still"]))
        row("  frozen (no resume within 20 s)", lambda r: f"{r['kill']['frozen']} of {r['kill']['kills']}")
        for label in labels:
            for section, found in by_tree.get(label, {}).items():
                if isinstance(found, dict) and "error" in found:
                    rows.append([f"{section} error ({label})", *[found["error"][:90] if x == label else ""
                                                                 for x in labels]])
        from bench.report import _table

        print(_table(rows, ["", *labels]))
    loads = [round(x[0], 1) for x in results.get("load_average", [])]
    if loads:
        print(f"\nload average (1 min) at the start and after each tree/format/link: {loads}")
    for name, counts in results.get("links", {}).items():
        if counts["chunks"]:
            print(f"link {name}: {counts['chunks']} chunks delayed, {counts['held']} held as a loss; "
                  f"{counts['reloads']} blocking reloads (_HLS_msn), {counts['reloads_held_0.05s']} held by castd "
                  f">= 0.05 s (median {counts['reload_seconds']['median']}, p95 {counts['reload_seconds']['p95']}), "
                  f"statuses {counts['reload_statuses']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", metavar="REV", help="also measure castd at git REV, interleaved")
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                        help="also measure the castd package under PATH (a folder holding castd/)")
    parser.add_argument("--lines", default=",".join(LINES), help="Shaka lines (default: all)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections: {', '.join(SECTIONS)}")
    parser.add_argument("--starts", type=int, default=3, help="cold and warm starts per tree and line")
    parser.add_argument("--switches", type=int, default=6)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=2.0, help="play time per page for the stall count")
    parser.add_argument("--formats", help="stream formats (config stream_format) to measure side by side, "
                        "each tree with a daemon pair per format, e.g. hls-1s,hls-fast (default: the tree's own)")
    parser.add_argument("--link", default="loopback", help=f"how the player reaches castd: {', '.join(LINKS)} "
                        "(several, comma-separated, are interleaved); jitter: bench/jitterlink.py")
    parser.add_argument("--phases", type=int, default=1, metavar="K",
                        help="load the player at i/K of a segment after ready, i = 0..K-1 (default 1: at ready)")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="N processes spinning on the CPU for the whole run (a busy machine)")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # end the daemons and players on the way out
    plan = {"starts": args.starts, "switches": args.switches, "kills": args.kills, "minutes": args.minutes,
            "phases": args.phases, "busy": args.busy}
    with tempfile.TemporaryDirectory(prefix="castd-glass-rev-") as tmp:
        trees: dict[str, Path] = {}
        if args.compare:
            trees[args.compare] = export(args.compare, Path(tmp) / "rev")
        for item in args.tree:
            label, _, path = item.partition("=")
            trees[label] = Path(path)
        trees["worktree"] = ROOT
        results = run(trees, args.lines.split(","), plan, args.only.split(","),
                      args.formats.split(",") if args.formats else None, args.link.split(","))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
