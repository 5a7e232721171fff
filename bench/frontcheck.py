"""What the front end's periodic supervisor check costs its event loop (issue 22, Found 7).

The front end runs `SupervisorHandle.check()` every 0.5 s on uvicorn's event loop. It used to walk all of
/proc there each time (`reap_adopted()`, looking for orphans of a dead supervisor) and slept 50 ms on the
loop after a death. Now it pings the supervisor (castd/children/liveness.py) and walks /proc only in the
few seconds after a supervisor died. This spawns a real supervisor (no session: no Chromium), then times,
side by side in one run, N calls of the check as it is now and N walks as it was, and prints medians and
the number of processes /proc held.

    .venv/bin/python -m bench.frontcheck [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

from castd.api.handle import SupervisorHandle
from castd.config import Config
from castd.procutil import reap_adopted


async def measure(calls: int) -> None:
    with tempfile.TemporaryDirectory() as runtime:
        handle = SupervisorHandle(Config(runtime_dir=runtime, resume=False))
        handle.start()
        await asyncio.sleep(1.5)  # its imports; then it answers pings
        now_ms, old_ms = [], []
        for _ in range(calls):
            started = time.perf_counter()
            handle.check()
            now_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            reap_adopted()  # what each check did before
            old_ms.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.01)
        answered = handle.liveness.count
        await handle.close()
    processes = sum(1 for entry in os.listdir("/proc") if entry.isdigit())
    print(f"processes in /proc: {processes}; calls: {calls}; pings sent: {answered}")
    print(f"check() now:               median {statistics.median(now_ms):.3f} ms, max {max(now_ms):.3f} ms")
    print(f"old per-check /proc walk:  median {statistics.median(old_ms):.3f} ms, max {max(old_ms):.3f} ms")
    print(f"ratio old/now (medians):   {statistics.median(old_ms) / max(statistics.median(now_ms), 1e-6):.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    asyncio.run(measure(parser.parse_args().calls))


if __name__ == "__main__":
    main()
