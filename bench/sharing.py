"""Sharing the TV (issue 20), measured at the glass: the receiver's own engine (Shaka Player 4.9 in headless
Chromium, tests/fakecast engine="shaka4") shows castd's picture, and the clock stops at the first frame of
castd's page the player presents.

    .venv/bin/python -m bench.sharing [--rounds 5]

Per round, on one fake TV and one castd (warm standby, as a household would run it):
- free_load_<policy>, free_start_<policy>: POST /start on a free TV with `takeover` always and with
  when-idle, alternately (side by side in one run): webhook -> LOAD at the TV (castd's part), and webhook
  -> first frame of the page at the glass (castd's part plus Shaka's start, which varies by ~1 s);
- app_quits: a when-idle + sticky session waits while YouTube plays; YouTube quits: -> castd's first frame;
- idle_screen: the Backdrop idle screen covers castd's picture: -> castd's first frame again.
Medians are printed with every sample. Issue 20's targets: app quits -> picture <= 3 s, idle screen ->
picture <= 6 s, when-idle on a free TV within noise of always.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.testhelpers import Daemon, FakeCastDevice, PageServer, close_to, wait_for

COLOURS = ["ff0000", "00ff00", "0000ff", "ffff00", "00ffff", "ff00ff"]
ENV = {"CASTD_STANDBY": "after-use", "CASTD_LOG_LEVEL": "INFO", "CASTD_MDNS_INTERFACES": "127.0.0.1"}


def rgb(hexa: str) -> tuple[int, int, int]:
    return int(hexa[0:2], 16), int(hexa[2:4], 16), int(hexa[4:6], 16)


def idle(d: Daemon) -> None:
    d.post("/stop")
    wait_for(lambda: (s := d.status())["state"] == "idle" and s["cast"]["stopping"] == 0, 30, message="idle")


def start(d: Daemon, tv: FakeCastDevice, pages: PageServer, colour: str, **keys) -> float:
    """POST /start; the wall time it was sent."""
    sent = time.time()
    response = d.post("/start", json={"url": pages.url(f"/color/{colour}"), "device": f"127.0.0.1:{tv.port}",
                                      **keys})
    assert response.status_code == 200, response.text
    return sent


def glass(tv: FakeCastDevice, colour: str, since: float) -> float:
    """Seconds from `since` (wall clock) to the first presented frame of `colour`."""
    return tv.wait_colour(rgb(colour), timeout=60, after=since, tolerance=80).t - since  # as bench.glass matches


def glass_again(tv: FakeCastDevice, colour: str, since: float) -> float:
    """Seconds from `since` to the first frame the player presents after a new LOAD, showing `colour` (the
    same picture as before the covering, so the first frame since that LOAD is the clock, not a colour change)."""
    def seen():
        state = tv.player
        if state is None or state.first_frame_at is None or state.first_frame_at < since:
            return None
        return close_to(state.colour, rgb(colour), 80) and state.first_frame_at - since
    return wait_for(seen, 60, interval=0.05, message=f"castd's picture back after {since}")


def one_round(d: Daemon, tv: FakeCastDevice, pages: PageServer, i: int) -> dict:
    out = {}
    for n, policy in enumerate(("always", "when-idle") if i % 2 == 0 else ("when-idle", "always")):
        colour = COLOURS[(i + n) % len(COLOURS)]
        loads = len(tv.loads)
        sent, sent_mono = start(d, tv, pages, colour, takeover=policy), time.monotonic()
        tv.wait_for(lambda n=loads: len(tv.loads) > n, timeout=60, what="the LOAD")
        out[f"free_load_{policy}"] = time.monotonic() - sent_mono  # castd's side: webhook -> LOAD at the TV
        out[f"free_start_{policy}"] = glass(tv, colour, sent)
        idle(d)

    colour = COLOURS[(i + 2) % len(COLOURS)]
    tv.switch_app()  # a person watches YouTube
    start(d, tv, pages, colour, takeover="when-idle", sticky=True)
    wait_for(lambda: any(dev["state"] == "waiting" for dev in d.status()["cast"]["devices"]), 30, message="waiting")
    wait_for(lambda: d.status()["state"] == "streaming", 60, message="streaming")
    time.sleep(1.0)  # the stream runs ahead of the TV being free, as it would
    quit_at = time.time()
    tv.quit_app(idle_screen=True)
    out["app_quits"] = glass(tv, colour, quit_at)

    time.sleep(1.0)
    covered_at = time.time()
    tv.show_idle_screen()  # ambient mode covers castd's picture
    out["idle_screen"] = glass_again(tv, colour, covered_at)
    idle(d)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # SIGTERM (a timeout, a Ctrl-C of a wrapper) ends the run through the finally below, like Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    pages = PageServer()
    runtime = Path(tempfile.mkdtemp(prefix="castd-bench-sharing-"))  # castd's runtime dir and its log
    d = Daemon(runtime_dir=runtime / "run", env_extra=ENV)
    samples: dict[str, list[float]] = {}
    try:
        d.start()
        with FakeCastDevice(name="bench sharing TV", engine="shaka4") as tv:
            for i in range(args.rounds + 1):
                result = one_round(d, tv, pages, i)
                print(f"  round {i}: " + "  ".join(f"{k} {v:.2f}s" for k, v in result.items())
                      + ("  (warm-up, not counted)" if i == 0 else ""), flush=True)
                if i > 0:
                    for key, value in result.items():
                        samples.setdefault(key, []).append(value)
    except BaseException:
        print(f"castd's log (its last 40 lines; {d.log_path} is removed):\n" +
              "\n".join(d.log().splitlines()[-40:]), file=sys.stderr)
        raise
    finally:
        d.stop()
        d.kill_leftovers()
        pages.close()
        shutil.rmtree(runtime, ignore_errors=True)  # it left one castd-bench-sharing-* in /tmp per run before
    print("\nmedians at the glass (seconds; Shaka 4.9 engine), all samples in brackets")
    for key, values in samples.items():
        print(f"  {key:24} {statistics.median(values):5.2f}   {[round(v, 2) for v in values]}")
    for what in ("load", "start"):
        always, when_idle = samples[f"free_{what}_always"], samples[f"free_{what}_when-idle"]
        print(f"  when-idle / always on a free TV ({what}): "
              f"{statistics.median(when_idle) / statistics.median(always):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
