"""CPU and memory of castd's process tree during a measured window.

A window reads /proc at its start and end, and castd's frame counter from /status at the moment it
moves (Castd.frame_mark), so CPU is divided by the video actually produced, not by wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench import proc
from bench.control import Castd


@dataclass
class Window:
    seconds: float
    cpu: float                        # CPU-seconds of the whole tree
    cpu_by_role: dict[str, float]     # CPU-seconds per role (castd front end, Xvfb, chromium, ...)
    frames: int = 0
    frame_rate: float = 0.0           # frames per second castd produced during the window
    fps: int = 0                      # the preset's target
    extra: dict = field(default_factory=dict)

    @property
    def cpu_per_second(self) -> float:
        return self.cpu / self.seconds

    @property
    def video_seconds_per_second(self) -> float:
        return self.frame_rate / self.fps if self.fps else 0.0

    def cpu_per_video_second(self, role: str | None = None) -> float | None:
        """CPU-seconds per second of video (the whole tree, or one role)."""
        if not self.fps or not self.frame_rate:
            return None
        cpu = self.cpu if role is None else self.cpu_by_role.get(role, 0.0)
        return cpu / self.seconds / self.video_seconds_per_second


def roles(castd: Castd, status: dict | None = None) -> dict[int, str]:
    """Name every process in castd's tree by what it is (for the per-process breakdown)."""
    status = status or castd.status()
    named = {castd.pid: "castd front end", status.get("supervisor_pid"): "castd supervisor",
             status.get("encoder_pid"): "castd encoder"}
    out = {}
    for pid in proc.tree(castd.pid):
        if pid in named:
            out[pid] = named[pid]
        elif proc.is_python(pid):
            out[pid] = "castd other"
        else:
            out[pid] = proc.comm(pid)
    return out


def _by_role(snapshot_before, snapshot_after, role_of: dict[int, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for ident, seconds in snapshot_after.items():
        role = role_of.get(ident[0], "other")
        out[role] = out.get(role, 0.0) + seconds - snapshot_before.get(ident, 0.0)
    return {k: round(v, 3) for k, v in sorted(out.items())}


def measure(castd: Castd, seconds: float, fps: int = 0) -> Window:
    """Measure the whole tree under castd for `seconds` (the bench itself sleeps meanwhile)."""
    if fps:
        frames0, at0 = castd.frame_mark()
    status0 = castd.status()
    role_of = roles(castd, status0)
    pids = list(role_of)
    before = proc.cpu_snapshot(pids)
    started = time.monotonic()
    time.sleep(seconds)
    pids = proc.tree(castd.pid)
    after = proc.cpu_snapshot(pids)
    elapsed = time.monotonic() - started
    if fps:
        frames1, at1 = castd.frame_mark()
    status1 = castd.status()
    role_of.update({pid: role for pid, role in roles(castd, status1).items() if pid not in role_of})
    window = Window(seconds=elapsed, cpu=proc.cpu_delta(before, after), cpu_by_role=_by_role(before, after, role_of),
                    fps=fps)
    if fps:
        window.frames = frames1 - frames0
        window.frame_rate = window.frames / (at1 - at0)
    return window


def memory(castd: Castd, only_castd: bool) -> dict:
    """PSS of castd's own processes (only_castd) or of the whole tree, in MB, with a breakdown."""
    role_of = roles(castd)
    pids = [pid for pid, role in role_of.items() if not only_castd or role.startswith("castd")]
    mem = proc.pss(pids)
    by_role: dict[str, float] = {}
    for pid in pids:
        by_role[role_of[pid]] = by_role.get(role_of[pid], 0) + proc.pss_kb(pid) / 1024
    uss = sum(proc.uss_kb(pid) for pid in pids) / 1024
    return {"total_mb": round(mem.total_mb, 1), "uss_mb": round(uss, 1), "processes": len(pids),
            "by_role_mb": {k: round(v, 1) for k, v in sorted(by_role.items())}}
