"""Stuck receiver to re-LOAD: how long a TV whose player froze waits before castd LOADs the stream again.

    .venv/bin/python -m bench.cast_reload [--rounds 5] [--line shaka4|shaka5] [--stall 5.0]

The real daemon casts to tests/fakecast's FakeCastDevice with the receiver-grade engine: the stream plays in
the real Shaka Player in headless Chromium, and MEDIA_STATUS is that player's state. Each round freezes the
player on purpose (every segment fetch hangs: the buffer runs dry and Shaka sits in BUFFERING with nothing
buffered, as Shaka 4.16 did after an encoder restart) and measures, on the wall clock:
- stuck -> LOAD: from the last frame the player presented to castd's new LOAD reaching the device
  (castd's verdict needs `cast_stall_seconds` without movement in PLAYING; it asks for MEDIA_STATUS every
  second, so expect stall + 0..1 s + the time the frozen player still had buffered is not counted);
- stuck -> picture: from that last frame to the first frame presented after the new LOAD (the viewer's outage).
Medians are printed; the raw samples go to stdout as JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.testhelpers import Daemon, FakeCastDevice, PageServer, wait_for


def one_round(d: Daemon, tv: FakeCastDevice) -> dict:
    # playing, with frames coming
    wait_for(lambda: tv.player_state == "PLAYING" and tv.player and tv.player.playing, 60, message="playing")
    first = tv.player.frames
    wait_for(lambda: tv.player.frames >= first + 20, 30, message="20 new frames")
    loads = len(tv.loads)
    frozen_at = time.time()
    tv.freeze_player("segments")
    wait_for(lambda: len(tv.loads) > loads, 60, interval=0.01, message="castd's new LOAD")
    load_at = time.time()
    # the last frame presented before the LOAD: the moment the viewer's picture stopped
    stuck_at = tv.player.last_frame_at
    picture_at = wait_for(lambda: (s := tv.player).first_frame_at is not None and s.first_frame_at > load_at
                          and s.first_frame_at, 60, interval=0.02, message="the first frame after the new LOAD")
    return {"freeze_to_load_s": round(load_at - frozen_at, 3), "stuck_to_load_s": round(load_at - stuck_at, 3),
            "stuck_to_picture_s": round(picture_at - stuck_at, 3),
            "reload_reason": next(dev for dev in d.status()["cast"]["devices"])["reload_reason"]}


def run(rounds: int, line: str, stall: float) -> dict:
    pages = PageServer()
    tmp = Path(tempfile.mkdtemp(prefix="castd-bench-reload-"))
    d = Daemon(runtime_dir=tmp / "run", env_extra={"CASTD_MDNS_INTERFACES": "127.0.0.1",
                                                   "CASTD_CAST_STALL_SECONDS": str(stall)}).start()
    samples = []
    try:
        with FakeCastDevice(name=f"bench reload {line}", engine=line) as tv:
            r = d.post("/start", json={"url": pages.url("/color/3060c0"), "device": f"127.0.0.1:{tv.port}"})
            assert r.status_code == 200, r.text
            for i in range(rounds):
                sample = one_round(d, tv)
                print(f"round {i + 1}: {sample}", file=sys.stderr, flush=True)
                samples.append(sample)
    finally:
        d.finish()
        pages.close()
        shutil.rmtree(tmp, ignore_errors=True)  # castd's runtime dir and log (left in /tmp before)
    keys = ("freeze_to_load_s", "stuck_to_load_s", "stuck_to_picture_s")
    return {"line": line, "cast_stall_seconds": stall, "rounds": rounds, "samples": samples,
            "median": {k: round(statistics.median(s[k] for s in samples), 2) for k in keys}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--line", choices=("shaka4", "shaka5"), default="shaka4")
    parser.add_argument("--stall", type=float, default=5.0, help="castd's cast_stall_seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.rounds, args.line, args.stall)
    if args.json:
        print(json.dumps(result, indent=1))
    m = result["median"]
    print(f"stuck receiver -> re-LOAD ({args.line}, cast_stall_seconds {args.stall:g}, {args.rounds} rounds, medians): "
          f"last frame -> LOAD {m['stuck_to_load_s']} s; freeze -> LOAD {m['freeze_to_load_s']} s; "
          f"last frame -> picture again {m['stuck_to_picture_s']} s")


if __name__ == "__main__":
    main()
