"""The API load generator: GET /status at a fixed rate from its own process, on one keep-alive
connection, printing latency percentiles as JSON.

Open loop: request i is due at start + i/rate whatever happened before, so a slow answer makes
the next ones late instead of quietly lowering the rate. Latency is from sending a request to the
last byte of its answer; `due_p99_ms` counts from when it was due instead, so it also holds the
wait behind a slow earlier answer (or behind this process being descheduled).

    CASTD_BENCH_TOKEN=... python -m bench.loadgen --port 8765 --rate 200 --seconds 30
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time

from bench.stats import median, percentile


def run(host: str, port: int, rate: float, seconds: float, path: str = "/status", token: str = "") -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn = http.client.HTTPConnection(host, port, timeout=5)
    total = int(rate * seconds)
    latencies: list[float] = []
    from_due: list[float] = []
    errors = 0
    late = 0
    started = time.perf_counter()
    for i in range(total):
        due = started + i / rate
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        elif now - due > 1 / rate:
            late += 1
        sent = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=5)
        done = time.perf_counter()
        if ok:
            latencies.append((done - sent) * 1000)
            from_due.append((done - due) * 1000)
        else:
            errors += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return {"requests": total, "ok": len(latencies), "errors": errors, "late": late,
            "seconds": round(elapsed, 3), "rate": round(total / elapsed, 1),
            "p50_ms": median(latencies), "p90_ms": percentile(latencies, 90),
            "p99_ms": percentile(latencies, 99), "max_ms": max(latencies) if latencies else None,
            "due_p99_ms": percentile(from_due, 99)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the load generator only talks to loopback")
    token = os.environ.get("CASTD_BENCH_TOKEN", "")  # not on the command line, where ps shows it
    json.dump(run(args.host, args.port, args.rate, min(args.seconds, 300), token=token), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
