"""How long can the supervisor's one loop be blocked? (issue 12)

The supervisor pushes a status snapshot at least every 0.5 s while nothing changes, and answers each
command with an Ack right after applying it. So, from the front end's side of the pipe, two numbers
show the longest step the loop spent not listening:
  - ack: the time from sending a command to its Ack (the old loop acked only after ending children);
  - gap: the longest silence between two messages of any kind, minus the 0.5 s push interval.
This script is the front end: it spawns `castd.supervisor.loop.main` exactly as the HTTP front end does
(so an old tree and a new one are measured alike), and runs a workload of starts, switches, quality
changes (a new child: the old one must end), stops, a SIGKILL of the encoder and a stop of a frozen
(SIGSTOP) encoder, with standby off (every stop ends a child) and after-use (children park). Real
Chromium, real PyAV; loopback only.

    .venv/bin/python -m bench.loopblock [--rounds 2]

It prints the maximum and median of both numbers and the worst command, and the loop's own count of its
longest pass where the tree logs one (`supervisor exiting ... longest_pass_ms=`; the supervisor's log
goes to a temporary file for that). The gap can never be below ~0.75 s (a push at most every 0.5 s,
checked every 0.25 s), so the ack times and the loop's own count are the sharper numbers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import sys
import statistics
import tempfile
import time
import uuid

import msgspec

from bench.pages import serve
from castd.config import Config
from castd.protocol import Ack, Shutdown, Snapshot, Start, Stop, encode, event_decoder
from castd.supervisor import loop

PUSH_INTERVAL = 0.5


class Driver:
    def __init__(self, config: Config) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=loop.main, args=(child, msgspec.msgpack.encode(config)), daemon=False)
        self.process.start()
        child.close()
        self.status = None
        self.last_message = time.monotonic()
        self.gaps: list[float] = []
        self.acks: list[tuple[float, str]] = []

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._read(min(0.05, max(0.0, deadline - time.monotonic())))

    def _read(self, timeout: float) -> list:
        out = []
        if self.conn.poll(timeout):
            while self.conn.poll():
                message = event_decoder.decode(self.conn.recv_bytes())
                now = time.monotonic()
                self.gaps.append(now - self.last_message)
                self.last_message = now
                if isinstance(message, Snapshot):
                    self.status = message.status
                out.append(message)
        return out

    def command(self, command, label: str) -> Ack:
        sent = time.monotonic()
        self.conn.send_bytes(encode(command))
        while time.monotonic() - sent < 30:
            for message in self._read(0.05):
                if isinstance(message, Ack) and message.command_id == command.id:
                    self.acks.append((time.monotonic() - sent, label))
                    return message
        raise TimeoutError(f"no Ack for {label}")

    def wait_state(self, state: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status is not None and self.status.state == state:
                return
            self._read(0.05)
        raise TimeoutError(f"state {state} not reached (is {self.status.state if self.status else None})")

    def close(self) -> None:
        try:
            self.command(Shutdown(id=_id()), "shutdown")
        except (TimeoutError, OSError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2)


def _id() -> str:
    return uuid.uuid4().hex


def workload(d: Driver, url) -> None:
    d.wait_state("idle", timeout=60)  # the supervisor is up (its start-up is not the loop's doing)
    d.pump(1.0)
    d.command(Start(id=_id(), url=url("/color/336699"), quality="720p"), "start")
    d.wait_state("streaming")
    d.pump(1.0)
    d.command(Start(id=_id(), url=url("/color/993366"), quality="720p"), "switch")
    d.pump(1.5)
    d.command(Start(id=_id(), url=url("/color/669933"), quality="low-latency"), "new quality")
    d.wait_state("streaming")
    d.pump(1.0)
    d.command(Stop(id=_id()), "stop")
    d.wait_state("idle")
    d.pump(1.0)
    d.command(Start(id=_id(), url=url("/color/333399"), quality="720p"), "start again")
    d.wait_state("streaming")
    d.pump(1.0)
    pid = d.status.encoder_pid if d.status else None
    if pid:
        os.kill(pid, signal.SIGKILL)
        d.pump(0.2)
        d.wait_state("streaming", timeout=40)
        d.pump(1.0)
    d.command(Start(id=_id(), url=url("/color/339933"), quality="low-latency"), "new quality after kill")
    d.pump(0.3)
    d.command(Stop(id=_id()), "stop while starting")
    d.wait_state("idle")
    d.pump(1.5)
    d.command(Start(id=_id(), url=url("/color/993333"), quality="720p"), "start, to freeze")
    d.wait_state("streaming")
    pid = d.status.encoder_pid if d.status else None
    if pid:  # a hung encoder (SIGSTOP): it cannot read Quit, so only its deadline ends it
        os.kill(pid, signal.SIGSTOP)
        d.pump(0.3)
        d.command(Stop(id=_id()), "stop a frozen encoder")
        d.wait_state("idle")
        d.pump(2.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    pages = serve()
    try:
        for standby in ("off", "after-use"):
            acks: list[tuple[float, str]] = []
            gaps: list[float] = []
            logs = ""
            for _ in range(args.rounds):
                with tempfile.TemporaryDirectory() as runtime, tempfile.TemporaryFile("w+") as log_file:
                    saved = os.dup(2)
                    sys.stderr.flush()
                    os.dup2(log_file.fileno(), 2)  # the spawned supervisor inherits it
                    try:
                        d = Driver(Config(runtime_dir=runtime, standby=standby, log_level="DEBUG"))
                        try:
                            workload(d, pages.url)
                        finally:
                            d.close()
                    finally:
                        sys.stderr.flush()
                        os.dup2(saved, 2)
                        os.close(saved)
                    log_file.seek(0)
                    logs += log_file.read()
                    acks += d.acks
                    gaps += d.gaps[1:]
            longest = [float(x) for x in re.findall(r"longest_pass_ms=([\d.]+)", logs)]
            cpu = [float(x) for x in re.findall(r"its_cpu_ms=([\d.]+)", logs)]
            slow = re.findall(r"slow loop pass ms=([\d.]+) cpu_ms=([\d.]+) parts=\"?([^\n\"]*)", logs)
            worst = max(acks)
            print(f"standby={standby}: " + ", ".join(f"{label} {ack * 1000:.0f}" for ack, label in acks) + " (ms)")
            blocked = [max(0.0, g - PUSH_INTERVAL) for g in gaps]
            print(f"standby={standby}: ack max {worst[0] * 1000:.0f} ms ({worst[1]}), median "
                  f"{statistics.median(a for a, _ in acks) * 1000:.1f} ms over {len(acks)} commands; "
                  f"longest silence beyond the {PUSH_INTERVAL:g} s push interval {max(blocked) * 1000:.0f} ms "
                  f"(message gaps: {len(gaps)}, longest {max(gaps) * 1000:.0f} ms); the loop's own longest pass: "
                  f"{f'{max(longest):.1f} ms' if longest else 'not logged by this tree'}"
                  f"{f' (its CPU {max(cpu):.1f} ms)' if cpu else ''}")
            for ms, cpu_ms, parts in sorted(slow, key=lambda s: -float(s[0]))[:3]:
                print(f"  slow pass {ms} ms, CPU {cpu_ms} ms: {parts}")
    finally:
        pages.close()


if __name__ == "__main__":
    main()
