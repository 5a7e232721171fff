"""pychromecast's socket race, with and without castd's one-thread sends (castd/cast/socketthread.py).

    .venv/bin/python bench/cast_race.py [--sessions 150] [--runs 1]   (about 4 minutes: failures wait out timeouts)

Each session drives castd's CastConnection against a fake device that answers at once (latency 0, no
media check), the worst case for the race between the caller's sends and pychromecast's own thread:
connect, GET_STATUS, LAUNCH, LOAD, media GET_STATUS, STOP, receiver STOP, close. Each run is a child
process, because the race has segfaulted the process (that is why castd's cast worker is a process).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def _sessions(count: int, one_thread: bool, out) -> None:
    import logging

    logging.disable(logging.CRITICAL)
    from castd.cast import connection
    from castd.cast.connection import CastConnection, CastError
    from castd.cast.devices import Resolved
    from castd.cast.media import NS_MEDIA, NS_RECEIVER, load_request
    from fakecast import FakeCastDevice

    if not one_thread:
        connection.OneThreadSends = lambda client, timeout=0: None  # pychromecast as it comes
    failures = 0
    with FakeCastDevice(name="race TV", latency=0, validate_media=False, ping_interval=0.01) as tv:
        for i in range(count):
            conn = CastConnection(Resolved("tv", tv.host, tv.port, name="tv"), connect_timeout=5)
            try:
                conn.start()
                if not conn.wait_connected(5, lambda: False):
                    raise CastError("no connection")
                conn.receiver_status(5)
                reply = conn.request(NS_RECEIVER, {"type": "LAUNCH", "appId": "CC1AD845"}, app=False, timeout=5)
                session = reply["status"]["applications"][0]["sessionId"]
                reply = conn.request(NS_MEDIA, load_request(f"http://127.0.0.1:9/{i}.m3u8", "race", session),
                                     app=True, timeout=5)
                msid = reply["status"][0]["mediaSessionId"]
                conn.request(NS_MEDIA, {"type": "GET_STATUS"}, app=True, timeout=5)
                conn.request(NS_MEDIA, {"type": "STOP", "mediaSessionId": msid}, app=True, timeout=5)
                conn.request(NS_RECEIVER, {"type": "STOP", "sessionId": session}, app=False, timeout=5)
            except (CastError, KeyError, IndexError, TypeError):
                failures += 1
            finally:
                conn.close()
    out.send((count, failures))


def run(sessions: int, one_thread: bool) -> str:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_sessions, args=(sessions, one_thread, child))
    process.start()
    child.close()
    process.join(sessions * 5 + 60)
    if process.is_alive():
        process.kill()
        process.join()
        return "hung"
    if parent.poll():
        count, failures = parent.recv()
        return f"{failures} of {count} sessions failed"
    return f"process died (exit code {process.exitcode})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=150)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for one_thread in (True, False):
        label = "one-thread sends (castd)" if one_thread else "pychromecast as it comes"
        for i in range(args.runs):
            print(f"{label:26} run {i + 1}: {run(args.sessions, one_thread)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
