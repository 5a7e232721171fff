"""`python -m bench.glassstart`: where a player loaded at castd's LOAD moment starts, and what it fetches
before its first frame moves, per Shaka line, link and load phase.

A page switch at the glass is the server's switch plus the player's distance behind the live edge, and that
distance is set once, at the load: the start point (the edge less the delay) plus the time from when the
player computed it to when its playhead moved (it does not catch up). This bench records, every 10 ms from
the load on, the player's currentTime, seek range and edge (PresentationTimeline.getSegmentAvailabilityEnd),
and the browser's resource timings of every playlist and segment request, then reports per load:

- early: how far the playhead's first position lay behind the seek range's end at that moment (the start
  point; Shaka 4.15 was seen starting at the start of the segment holding it instead, 0.6 s early);
- fetched: the segments requested from the load until currentTime first moved (Shaka 5.x and 4.9.2 fetch
  from 2 s before their start point on, presets.py), and
- moved: seconds from the load until then;
- behind: edge - currentTime 4 s after the load (the distance every later switch pays).

    .venv/bin/python -m bench.glassstart --lines shaka415,shaka5 --link loopback,jitter --phases 4
    .venv/bin/python -m bench.glassstart --tree before=/path/to/other/castd --lines shaka5
    .venv/bin/python -m bench.glassstart --lines shaka5 --variant tol0='{"streaming":{"inaccurateManifestTolerance":0}}'

`--variant NAME=JSON` plays every line a second time with that Shaka configuration (player.configure), as
cell `<line>+NAME`: what one setting of the player changes, beside the line's defaults, in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.compare import ROOT
from bench.glass import PALETTE, Link, Loader, Side, _idle, _make_standby, _playing, _ready, close_all
from bench.pages import serve
from bench.testhelpers import LINES, ShakaPlayer

RECORD = """
window.startProbe = {trace: []};
performance.clearResourceTimings(); performance.setResourceTimingBufferSize(2000);
if (window.startProbeTimer) clearInterval(window.startProbeTimer);
window.startProbeTimer = setInterval(() => {
  const s = window.glass.state();
  window.startProbe.trace.push([s.now / 1000, s.currentTime, s.liveEdge, s.seekRange ? s.seekRange[1] : null]);
}, 10);
"""
COLLECT = """
clearInterval(window.startProbeTimer);
return {trace: window.startProbe.trace,
        fetched: performance.getEntriesByType('resource').filter(e => e.name.endsWith('.ts'))
                 .map(e => [(performance.timeOrigin + e.startTime) / 1000, e.name.split('/').pop()])};
"""
WATCH = 4.0  # seconds of play after the load before "behind" is read


def one_load(player: ShakaPlayer, castd, pages, loader: Loader, i: int) -> dict:
    player.unload()
    _idle(castd, True)
    body = castd.start(pages.url(f"/color/{PALETTE[i % len(PALETTE)]}"), "720p")
    ready = _ready(castd)
    player._script(RECORD)
    loaded = loader.load(castd, player, body["stream_url"], ready, i)
    _playing(player, loaded)
    time.sleep(max(0.0, loaded + WATCH - time.time()))
    got = player._script(COLLECT)
    trace = [row for row in got["trace"] if row[0] >= loaded]
    first = next(row for row in trace if row[1] > 0)
    moved = next((b for a, b in zip(trace, trace[1:]) if a[1] > 0 and b[1] > a[1] + 1e-4), trace[-1])
    last = trace[-1]
    fetched = [name for at, name in sorted(got["fetched"]) if loaded <= at <= moved[0]]
    return {"phase": loader.phase(i), "start": round(first[1], 3),
            "early": round(first[3] - first[1], 3) if first[3] is not None else None,
            "moved": round(moved[0] - loaded, 3), "behind": round(last[2] - last[1], 3) if last[2] else None,
            "fetched": fetched}


def run(trees: dict[str, Path], lines: list[str], links: list[str], phases: int, rounds: int,
        variants: dict[str, str] | None = None) -> dict:
    pages = serve()
    loaders = [Loader(Link(name), phases) for name in links]
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="castd-glassstart-") as tmp:
        sides = [Side(label, tree, Path(tmp)) for label, tree in trees.items()]
        try:
            players = [(line, line, None) for line in lines]
            players += [(f"{line}+{name}", line, config) for line in lines for name, config in (variants or {}).items()]
            for label, line, config in players:
                with ShakaPlayer(line, config=config) as player:
                    for loader in loaders:
                        for side in sides:
                            castd = side.castd["after-use"]
                            _make_standby(castd, pages)
                            loads = [one_load(player, castd, pages, loader, i) for i in range(phases * rounds)]
                            key = f"{label} {side.label} @{loader.link.name}"
                            out[key] = loads
                            print(json.dumps({"cell": key, "loads": loads}), flush=True)
                    player.unload()
        finally:
            close_all(sides, loaders, pages)
    return out


def report(results: dict) -> None:
    print("\nA load at castd's LOAD moment: medians over the loads (phases) of each cell")
    print(f"{'cell':40} {'loads':>5} {'fetched':>7} {'moved s':>8} {'early s (max)':>14} {'behind s':>9} {'range':>11}")
    for key, loads in results.items():
        behind = [x["behind"] for x in loads if x["behind"] is not None]
        early = [x["early"] for x in loads if x["early"] is not None]
        print(f"{key:40} {len(loads):5} {statistics.median(len(x['fetched']) for x in loads):7} "
              f"{statistics.median(x['moved'] for x in loads):8.3f} {statistics.median(early):7.3f} ({max(early):.2f}) "
              f"{statistics.median(behind):9.3f} {min(behind):5.2f}-{max(behind):<5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                        help="also measure the castd package under PATH (a folder holding castd/)")
    parser.add_argument("--lines", default=",".join(LINES))
    parser.add_argument("--link", default="loopback", help="loopback, jitter, or both comma-separated")
    parser.add_argument("--phases", type=int, default=4, help="loads per round, at i/K of a segment after ready")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write every load here")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help="also play every line with this Shaka configuration, as <line>+NAME")
    args = parser.parse_args()
    variants = {}
    for variant in args.variant:
        name, _, config = variant.partition("=")
        json.loads(config)  # a typo fails here, not in the page
        variants[name] = config
    trees = {label: Path(path) for label, _, path in (t.partition("=") for t in args.tree)}
    trees["worktree"] = ROOT
    results = run(trees, args.lines.split(","), args.link.split(","), args.phases, args.rounds, variants)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
