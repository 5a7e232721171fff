"""Process hygiene: every process castd starts must end with its parent.

Two tools: PR_SET_PDEATHSIG (the kernel signals a child when the thread that started it dies)
and process groups (the encoder leads a group holding Xvfb, chromedriver and Chromium, so one
killpg ends them all, even helpers that were re-parented).

A program the encoder starts gets its parent-death signal from util-linux's `setpriv` (`with_pdeathsig`),
never from a Popen `preexec_fn`: that runs Python in the forked copy of a process whose other threads
are gone, and on Debian 13 (Python 3.13) it hung there. Seen in the hung-page test: the page thread's
second chromedriver was a fork that never reached exec, stuck for good (futex wait) in
pthread_cond_destroy under PyAV's VideoReformatter.__dealloc__ (sws_freeContext ->
avpriv_slicethread_free), with no Python frame between it and Popen._execute_child (Python's after-fork
clean-up in the child, it seems): the condition variable's waiters were swscale's worker threads, which a
fork does not copy. Without a preexec_fn, Popen runs no Python in the child at all. setpriv is in
util-linux, which Debian marks Essential (2.38 on Debian 12, 2.41 on 13); it execs the program, so its
PID is the program's.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import time
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent thread exits (Linux)."""
    _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def set_child_subreaper() -> None:
    """Orphaned descendants get re-parented to us instead of init, so we can still end them."""
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


SETPRIV = shutil.which("setpriv") or ""  # util-linux; "" where it is missing


def with_pdeathsig(argv: Sequence[str], sig: signal.Signals = signal.SIGKILL) -> list[str]:
    """`argv` so that the program gets `sig` when the thread that started it ends (PR_SET_PDEATHSIG,
    kept across exec): `setpriv --pdeathsig KILL -- argv` (for SIGKILL). Without setpriv, `argv` as it is: the program
    then outlives a killed parent until the subreaper above sweeps it (end_everything_below, end_orphans)."""
    if not SETPRIV:
        return list(argv)
    return [SETPRIV, "--pdeathsig", sig.name.removeprefix("SIG"), "--", *argv]


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is the state), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def pss_kb(pid: int) -> int:
    """Proportional set size of a process (KiB; shared pages split among their users), 0 if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def tree_pss_mb(leader: int) -> float:
    """PSS (MiB) of a process group's leader, its group and everything below it (Chromium's helpers,
    re-parented crashpad handlers): what the encoder child costs the machine."""
    pids = {leader, *group_members(leader), *descendants(leader)}
    return sum(pss_kb(pid) for pid in pids) / 1024


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _proc_stats():
    """(pid, stat fields after the command name) of every process now in /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                yield int(entry), fh.read().rsplit(b")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue


def group_members(pgid: int) -> list[int]:
    """PIDs whose process group is `pgid` (walks /proc; no names involved)."""
    return [pid for pid, fields in _proc_stats() if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X")]


def kill_group(pgid: int, grace: float = 0.0) -> None:
    """End a whole process group: SIGTERM, wait up to `grace` seconds, then SIGKILL."""
    if pgid <= 1:
        return
    if grace > 0:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and group_members(pgid):
            time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _parents() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, fields in _proc_stats():
        children.setdefault(int(fields[1]), []).append(pid)
    return children


def descendants(root: int) -> list[int]:
    """Every process below `root`, by parent links in /proc (deepest last)."""
    children = _parents()
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(root: int, include_root: bool = False, keep: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """SIGKILL every descendant of `root` (and `root` itself if asked), except PIDs in `keep`."""
    targets = [pid for pid in descendants(root) if pid not in keep and pid_alive(pid)]
    if include_root:
        targets.insert(0, root)
    for pid in targets:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return targets


def end_everything_below(grace: float = 3.0) -> list[int]:
    """For a subreaper about to exit (the encoder): SIGKILL every process below it and in its group, then
    reap them, until none is left or `grace` seconds passed; returns the PIDs that were still alive.

    Why wait: a process that exits with SIGKILLed children still unreaped hands them on, dead or dying,
    to the next subreaper up (the front end), which then finds "processes left by the supervisor". Measured
    here: after a clean end of the encoder, Chromium's two zygotes and its two crashpad handlers (these in
    sessions of their own) were still there; SIGKILL and reaping take a few ms on a quiet machine.
    """
    me = os.getpid()
    ended: list[int] = []
    deadline = time.monotonic() + grace
    while True:
        alive = [pid for pid in {*descendants(me), *group_members(os.getpgrp())} if pid != me and pid_alive(pid)]
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if pid not in ended:
                ended.append(pid)
        while True:  # our own children (adopted ones too: we are a subreaper), dead ones only
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
        left = [pid for pid in {*descendants(me), *group_members(os.getpgrp())} if pid != me]
        if not left or time.monotonic() >= deadline:
            return ended
        time.sleep(0.02)


def adopted_children() -> list[int]:
    """Our children that lead another process group: orphans we adopted as a subreaper (castd's encoder
    and cast worker lead their own groups), never the helpers multiprocessing started for us (the
    supervisor, the resource tracker, a discovery run: they share our group), whose exit status
    multiprocessing itself must read."""
    ours = os.getpgrp()
    return [pid for pid, fields in _proc_stats() if int(fields[1]) == os.getpid() and int(fields[2]) != ours]


def end_orphans(keep: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """For a subreaper (the supervisor): SIGKILL the orphans it adopted (see adopted_children), each with
    everything below it, except the children in `keep` (its own, which lead groups too); reap the dead
    ones. Returns the orphans still there afterwards (a SIGKILLed one is usually reaped on the next call)."""
    left = []
    for pid in adopted_children():
        if pid in keep:
            continue
        if pid_alive(pid):
            kill_tree(pid, include_root=True)
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if not done:
            left.append(pid)
    return left


def reap_adopted() -> list[int]:
    """Collect exited orphans we adopted as a subreaper (see adopted_children)."""
    reaped = []
    for pid in adopted_children():
        if pid_alive(pid):
            continue
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if done:
            reaped.append(pid)
    return reaped
