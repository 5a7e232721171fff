"""Time from POST /start to the LOAD reaching a (fake) Cast device, and what a page switch sends.

    .venv/bin/python bench/cast_latency.py [--rounds 7] [--standby off|after-use|both]

The real daemon (tests/helpers.py Daemon) casts to tests/fakecast's FakeCastDevice on 127.0.0.1 (the real
pychromecast in castd's cast worker; the fake fetches and decodes the stream before it answers). Each round:
an idle start (POST /start until the LOAD arrives), then a page switch during the cast (POST /start with
another page: the time until the first segment showing the new page, and how many LOADs, LAUNCHes or STOPs
reached the device meanwhile: castd sends none), then a stop on the TV's remote (the time until castd's
session is idle). Medians are printed per standby mode.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakecast import NS_MEDIA, NS_RECEIVER, FakeCastDevice  # noqa: E402
from helpers import Daemon, PageServer, wait_for  # noqa: E402

COLOURS = ["ff0000", "00ff00", "0000ff", "ffff00", "00ffff", "ff00ff"]


def idle(d: Daemon) -> None:
    d.post("/stop")
    wait_for(lambda: (s := d.status())["state"] == "idle" and s["cast"]["stopping"] == 0, 30, message="idle")


def one_round(d: Daemon, tv: FakeCastDevice, pages: PageServer, i: int) -> dict:
    device = f"127.0.0.1:{tv.port}"
    loads_before = len(tv.loads)
    t0 = time.monotonic()
    response = d.post("/start", json={"url": pages.url(f"/color/{COLOURS[i % 6]}"), "device": device})
    assert response.status_code == 200, response.text
    tv.wait_for(lambda: len(tv.loads) > loads_before, timeout=60, what="the LOAD")
    to_load = time.monotonic() - t0
    tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=30, what="PLAYING")
    to_playing = time.monotonic() - t0
    wait_for(lambda: d.status()["state"] == "streaming", 30, message="streaming")

    seen = len(tv.messages)
    loads = len(tv.loads)
    switch_url = pages.url(f"/color/{COLOURS[(i + 3) % 6]}")
    switches = d.log().count("page switched")  # logged at the first segment that shows the new page
    t1 = time.monotonic()
    response = d.post("/start", json={"url": switch_url, "device": device})
    assert response.status_code == 200 and response.json()["switched"], response.text
    wait_for(lambda: d.log().count("page switched") > switches, 30, interval=0.02, message="page switched")
    to_switch = time.monotonic() - t1
    time.sleep(1.0)  # anything castd would send about the switch has arrived by now
    sent = [p.get("type") for ns, p in tv.messages[seen:] if ns in (NS_MEDIA, NS_RECEIVER)]

    t2 = time.monotonic()  # the viewer presses stop on the remote: the session (and encoder) must end
    assert tv.stop_from_remote("CANCELLED")
    wait_for(lambda: d.status()["state"] == "idle", 30, interval=0.01, message="idle after the remote stop")
    to_end = time.monotonic() - t2
    idle(d)
    return {"to_load": to_load, "to_playing": to_playing, "to_switch": to_switch, "to_end": to_end,
            "switch_loads": len(tv.loads) - loads, "switch_commands": sent}


def run(standby: str, rounds: int) -> list[dict]:
    pages = PageServer()
    runtime = Path(tempfile.mkdtemp(prefix="castd-bench-"))
    d = Daemon(runtime_dir=runtime / "run", env_extra={"CASTD_STANDBY": standby, "CASTD_LOG_LEVEL": "INFO",
                                                       "CASTD_MDNS_INTERFACES": "127.0.0.1"}).start()
    results = []
    try:
        with FakeCastDevice(name="bench TV") as tv:
            for i in range(rounds + 1):
                result = one_round(d, tv, pages, i)
                if i > 0:  # round 0 warms the cast worker and, with standby, the browser
                    results.append(result)
                print(f"  {standby:9} round {i}: LOAD {result['to_load']:.2f}s  PLAYING {result['to_playing']:.2f}s"
                      f"  switch {result['to_switch']:.2f}s with {result['switch_loads']} LOADs "
                      f"{result['switch_commands'] or ''} remote stop -> idle {result['to_end']:.2f}s"
                      f"{'  (warm-up, not counted)' if i == 0 else ''}",
                      flush=True)
    finally:
        d.stop()
        d.kill_leftovers()
        pages.close()
        shutil.rmtree(runtime, ignore_errors=True)  # castd's runtime dir and log (left in /tmp before)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--standby", choices=["off", "after-use", "both"], default="both")
    args = parser.parse_args()
    modes = ["off", "after-use"] if args.standby == "both" else [args.standby]
    summary = {}
    for mode in modes:
        summary[mode] = run(mode, args.rounds)
    print("\nmedians (seconds)")
    for mode, results in summary.items():
        med = {k: statistics.median(r[k] for r in results) for k in ("to_load", "to_playing", "to_switch", "to_end")}
        loads = sum(r["switch_loads"] for r in results)
        print(f"  standby={mode:9} POST /start -> LOAD {med['to_load']:.2f}  -> PLAYING {med['to_playing']:.2f}   "
              f"switch -> new page streaming {med['to_switch']:.2f}, LOADs sent on switches: {loads} "
              f"in {len(results)} switches; remote stop -> session idle {med['to_end']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
