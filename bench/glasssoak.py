"""`python -m bench.glasssoak`: issue 19's stall count (0 visible stalls in 10 minutes from the LOAD, the start
included, on a static and a busy page) for every Shaka line at once, per link, optionally on a busy machine.

bench.glass plays one line at a time: 10 minutes x 2 pages x 4 lines x 2 links is 160 minutes of play. Here
one castd session per page and link is watched by one player per line, each in its own headless Chromium,
loaded at its own phase of the segment clock (line i of n at i/n of a segment after castd turned ready, as a
real receiver LOADs at a random phase), so the whole matrix plays in 2 x links x minutes. The players add
load: each decodes 720p10 H.264 in software and stamps every presented frame; the load average is sampled
every second and reported, so a run says how busy its machine was. A stall seen here on a loaded machine is
a stall; the absence of one is the stronger for it.

Per line, link and page it reports what bench.glass's stall section does (glass.stall_record): buffering
spells from the first frame, those of a frame (0.1 s) or more, still pictures (no new frame presented for
0.3 s or more), player errors, and the distance behind the live edge (median, and its first and last minute
apart: run O had hinted that it grows; run P found it fixed at the load, bench/README.md).

    .venv/bin/python -m bench.glasssoak --minutes 10 --link loopback,jitter
    .venv/bin/python -m bench.glasssoak --minutes 10 --link jitter --busy 1 --json soak.json
    .venv/bin/python -m bench.glasssoak --minutes 10 --link jitter --format hls-fast-big
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.compare import ROOT
from bench.glass import (CpuLoad, Link, Loader, Side, _idle, _make_standby, _playing, _ready, close_all,
                         stall_record)
from bench.pages import serve
from bench.report import _table
from bench.testhelpers import LINES, ShakaPlayer

PAGES = (("static", "/color/3060a0"), ("busy", "/clock"))


def soak(castd, players: dict[str, ShakaPlayer], pages, page: str, minutes: float, loader: Loader) -> dict:
    """One session of `page`, every player loaded at its phase, `minutes` of play from the first load."""
    for player in players.values():
        player.unload()
    _idle(castd, True)
    body = castd.start(pages.url(page), "720p")
    ready = _ready(castd)
    loaded = {line: loader.load(castd, player, body["stream_url"], ready, i)
              for i, (line, player) in enumerate(players.items())}
    for line, player in players.items():
        _playing(player, loaded[line])
    behind: dict[str, list[tuple[float, float]]] = {line: [] for line in players}
    ended: dict[str, str] = {}
    loads: list[float] = []
    first = min(loaded.values())
    while time.time() - first < minutes * 60:
        time.sleep(1.0)
        loads.append(os.getloadavg()[0])
        for line, player in players.items():
            if line in ended:
                continue
            state = player.state()
            if stopped := state.stopped_since(loaded[line]):
                ended[line] = stopped[:200]
            elif state.behind_live_edge is not None:
                behind[line].append((time.time() - loaded[line], state.behind_live_edge))
    status = castd.status()
    out = {}
    for i, (line, player) in enumerate(players.items()):
        record = stall_record(player, loaded[line], page, loader.phase(i), [b for _, b in behind[line]])
        early = [b for t, b in behind[line] if t < 60]
        late = [b for t, b in behind[line] if t >= minutes * 60 - 60]
        record["behind_first_minute"] = round(statistics.median(early), 3) if early else None
        record["behind_last_minute"] = round(statistics.median(late), 3) if late else None
        record["ended"] = ended.get(line)
        out[line] = record
    out["_machine"] = {"load_average": [round(min(loads), 2), round(statistics.median(loads), 2),
                                        round(max(loads), 2)] if loads else None,
                       "castd_state": status.get("state"), "stream_format": status.get("stream_format")}
    return out


def run(castd_tree: Path, lines: list[str], links: list[str], minutes: float, busy: int,
        stream_format: str | None = None) -> dict:
    pages = serve()
    loaders = [Loader(Link(name), len(lines)) for name in links]
    results: dict = {"lines": lines, "links": links, "minutes": minutes, "busy": busy, "tree": str(castd_tree),
                     "stream_format": stream_format, "runs": {}}
    players: dict[str, ShakaPlayer] = {}
    with tempfile.TemporaryDirectory(prefix="castd-glasssoak-") as tmp:
        side = None
        load = CpuLoad(busy)
        try:
            side = Side("soak", castd_tree, Path(tmp), stream_format)
            castd = side.castd["after-use"]
            _make_standby(castd, pages)
            for line in lines:
                players[line] = ShakaPlayer(line)
            for loader in loaders:
                for name, path in PAGES:
                    found = soak(castd, players, pages, path, minutes, loader)
                    key = f"{name} @{loader.link.name}"
                    results["runs"][key] = found
                    results["stream_format"] = found["_machine"]["stream_format"]  # (named by /status while streaming)
                    print(json.dumps({"run": key, **found}), flush=True)
            for player in players.values():
                player.unload()
            _idle(castd, True)
        finally:
            for player in players.values():
                player.close()
            load.close()
            close_all([side] if side else [], loaders, pages)
    return results


def report(results: dict) -> None:
    keys = list(results["runs"])
    print(f"\nEvery Shaka line at once on {results['stream_format']}, {results['minutes']:g} min per page and link"
          " from the LOAD"
          + (f", {results['busy']} CPU spinners beside it" if results["busy"] else ""))
    rows = []
    for line in results["lines"]:
        def cell(key, get, line=line):
            try:
                return get(results["runs"][key][line])
            except (KeyError, TypeError):
                return "-"
        rows.append([f"{line}: waiting >= 0.1 s", *[cell(k, lambda r: f"{r['visible']} {r['stall_seconds'][:3]}"
                                                         if r["visible"] else "0") for k in keys]])
        rows.append(["  still >= 0.3 s", *[cell(k, lambda r: f"{r['still']} {r['still_seconds'][:3]} "
                                                f"at {r['still_at'][:3]}" if r["still"] else "0") for k in keys]])
        rows.append(["  all buffering spells", *[cell(k, lambda r: str(r["stalls"])) for k in keys]])
        rows.append(["  behind edge: median, first / last minute",
                     *[cell(k, lambda r: f"{r['behind_live_edge']['median']:.2f}, {r['behind_first_minute']:.2f}"
                            f" / {r['behind_last_minute']:.2f}") for k in keys]])
        rows.append(["  errors, ended early", *[cell(k, lambda r: f"{r['errors'] or '-'}, {r['ended'] or '-'}")
                                                for k in keys]])
    rows.append(["load average: min / median / max", *["{} / {} / {}".format(*results["runs"][k]["_machine"]
                                                                              ["load_average"]) for k in keys]])
    print(_table(rows, ["", *keys]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", default=",".join(LINES), help="Shaka lines (default: all)")
    parser.add_argument("--link", default="loopback,jitter", help="links, comma-separated (bench.glass --link)")
    parser.add_argument("--minutes", type=float, default=10.0, help="play time per page and link")
    parser.add_argument("--busy", type=int, default=0, metavar="N", help="N processes spinning on the CPU")
    parser.add_argument("--castd", type=Path, default=ROOT, help="the castd tree to run (a folder holding castd/)")
    parser.add_argument("--format", help="the stream format (config stream_format; default: castd's default)")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # end the daemons and players on the way out
    results = run(args.castd, args.lines.split(","), args.link.split(","), args.minutes, args.busy, args.format)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
