"""CPU time and memory of process trees, straight from /proc (no psutil; names never matter).

CPU is utime+stime of every live process in a tree plus what it collected from children it reaped
(cutime+cstime), so short-lived helpers are not lost. Memory is PSS from smaps_rollup: shared pages
are split between the processes that share them, so PSS adds up across a tree without double
counting Chromium's shared libraries.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from castd.procutil import descendants, pid_alive, stat_fields

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PYTHON = os.path.realpath(sys.executable)

Identity = tuple[int, int]  # (pid, start time in ticks): a PID can be reused, the pair cannot




def tree(root: int) -> list[int]:
    """`root` and every live process below it, by parent links (castd's own /proc walker)."""
    return [pid for pid in [root, *descendants(root)] if pid_alive(pid)]


def cpu_snapshot(pids: list[int], reaped: bool = True) -> dict[Identity, float]:
    """CPU seconds used so far by each process (with its reaped children when `reaped`)."""
    out: dict[Identity, float] = {}
    for pid in pids:
        fields = stat_fields(pid)
        if not fields or fields[0] in ("Z", "X"):
            continue
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if reaped:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
        out[(pid, int(fields[19]))] = ticks / CLOCK_TICKS
    return out


def cpu_delta(before: dict[Identity, float], after: dict[Identity, float]) -> float:
    """CPU seconds spent between two snapshots by the processes alive at the second one."""
    return sum(seconds - before.get(ident, 0.0) for ident, seconds in after.items())


def _rollup(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def pss_kb(pid: int) -> int:
    """Proportional set size of one process in KiB (0 if it is gone)."""
    return _rollup(pid).get("Pss", 0)


def uss_kb(pid: int) -> int:
    """Pages only this process maps (KiB). Unlike PSS it does not shrink when unrelated processes
    (another Chromium on a shared machine) map the same libraries, so it shows how much of a
    PSS change is the machine rather than castd."""
    rollup = _rollup(pid)
    return rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def is_python(pid: int) -> bool:
    """True for castd's own processes (front end, supervisor, encoder, resource tracker): they
    all run this interpreter, while Xvfb, chromedriver and Chromium are other programs."""
    try:
        return os.path.realpath(f"/proc/{pid}/exe") == PYTHON
    except OSError:
        return False


@dataclass
class Memory:
    total_kb: int
    by_process: dict[str, int]  # "comm[pid]" -> KiB

    @property
    def total_mb(self) -> float:
        return self.total_kb / 1024


def pss(pids: list[int]) -> Memory:
    by = {f"{comm(pid)}[{pid}]": pss_kb(pid) for pid in pids}
    return Memory(sum(by.values()), by)


def machine() -> dict:
    """What the numbers were measured on."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "Model")):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "cpu_model": model, "memory_mb": mem_kb // 1024,
            "kernel": os.uname().release, "machine": os.uname().machine, "loadavg": os.getloadavg()}
