"""`python -m bench --compare REV`: the same benchmarks against castd at git REV and against this
working tree, interleaved in one run, so a tuning step is judged under the same machine load.

Both daemons are up for the whole run; the runs alternate in rounds (REV, tree, REV, tree, ...),
and only one of them has a session at any time.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path

from bench import baseline, latency, resources, starts
from bench.control import Castd
from bench.stats import summary
from bench.testhelpers import Daemon
from castd.presets import get_preset

ROOT = Path(__file__).resolve().parent.parent
COMPARABLE = ("cold", "switch", "latency", "pipeline_720p", "baseline")


def export(rev: str, into: Path) -> Path:
    """The castd package as it is at `rev`, unpacked under `into` (git archive; no checkout)."""
    data = subprocess.run(["git", "archive", "--format=tar", rev, "castd"], cwd=ROOT, capture_output=True,
                          check=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def _round_samples(name: str, castd: Castd, pages, plan: dict, rounds: int) -> list[float]:
    """One round of section `name` on one daemon: a few samples, then the daemon left idle."""
    p720 = get_preset("720p")
    if name == "cold":
        return starts.start_from_idle(castd, pages, max(1, plan["cold"] // rounds), "720p", nothing_running=True)
    if name == "switch":
        times, _ = starts.switches(castd, pages, max(1, plan["switch"] // rounds), "720p")
        castd.settle_idle(nothing_running=True)
        return times
    if name == "latency":
        found = latency.page_to_segment(castd, pages, "720p", max(2, plan["latency_segments"] // rounds))
        castd.settle_idle(nothing_running=True)
        return found["ages"]
    castd.start(pages.url("/dashboard"), "720p")
    castd.wait_page_loaded()
    time.sleep(plan["settle"])
    if name == "pipeline_720p":
        window = resources.measure(castd, plan["cpu_seconds"] / rounds, fps=p720.fps)
        value = window.cpu_per_video_second()
    else:
        value = baseline.side_by_side(castd, p720, plan["cpu_seconds"] / rounds)["castd_cpu_per_video_s"]
    castd.settle_idle(nothing_running=True)
    return [value] if value is not None else []


def compare(rev: str, sections: list[str], plan: dict, pages, tmp: Path, rounds: int = 3) -> dict:
    trees = {rev: export(rev, tmp / "rev"), "worktree": ROOT}
    daemons: dict[str, Daemon] = {}
    castds: dict[str, Castd] = {}
    out: dict = {"rev": rev, "rounds": rounds, "sections": {}}
    try:
        for label, tree in trees.items():
            (tmp / label).mkdir(parents=True, exist_ok=True)
            daemons[label] = Daemon(runtime_dir=tmp / label / "run", env_extra={"CASTD_LOG_LEVEL": "INFO"},
                                    cwd=tree).start()
            castds[label] = Castd(daemons[label])
        for label in trees:  # warm the page cache for both before anything is timed
            starts.start_from_idle(castds[label], pages, 1, "720p", nothing_running=True, first_colour=5)
        for name in sections:
            samples: dict[str, list[float]] = {label: [] for label in trees}
            errors = []
            for _ in range(rounds):
                for label in trees:
                    try:
                        samples[label] += _round_samples(name, castds[label], pages, plan, rounds)
                    except Exception as exc:  # recorded; the other side still runs
                        errors.append(f"{label}: {type(exc).__name__}: {exc}")
                        castds[label].settle_idle(nothing_running=True)
            out["sections"][name] = {label: {"samples": values, **summary(values)} for label, values in samples.items()}
            if errors:
                out["sections"][name]["errors"] = errors
    finally:
        for label, daemon in daemons.items():
            if label in castds:
                castds[label].close()
            daemon.stop()
            daemon.kill_leftovers()
    return out


def print_comparison(result: dict) -> None:
    rev = result["rev"]
    print(f"\ncastd at {rev} vs this working tree, interleaved in {result['rounds']} rounds\n")
    header = ["section", f"{rev} median", "worktree median", "ratio", f"{rev} p95", "worktree p95"]
    rows = []
    for name, data in result["sections"].items():
        a, b = data[rev], data["worktree"]
        ratio = b["median"] / a["median"] if a["median"] and b["median"] is not None else None
        fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
        rows.append([name, fmt(a["median"]), fmt(b["median"]), fmt(ratio), fmt(a["p95"]), fmt(b["p95"])])
        for error in data.get("errors", []):
            rows.append([name, "error", error, "", "", ""])
    from bench.report import _table

    print(_table(rows, header))
