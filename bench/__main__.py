"""`python -m bench [--quick]`: run every benchmark against a real castd, print a table of medians
and ratios against issue 7's targets, and write the raw samples as JSON to bench/results/.

Two daemons run one after the other: the first with warm standby off (idle CPU, cold starts,
switches, latency, CPU and memory, the ffmpeg baseline, the API load), the second with standby on
(warm starts), when castd has a `standby` config key. Only loopback traffic; every wait is bounded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import baseline, compare, latency, proc, resources, standby, starts, targets
from bench.control import Castd, wait_quiet
from bench.pages import serve
from bench.report import print_report
from bench.stats import summary
from bench.testhelpers import Daemon
from castd.config import Config
from castd.presets import get_preset

RESULTS = Path(__file__).resolve().parent / "results"

PLANS = {
    "full": dict(cold=15, warm=15, switch=30, latency_segments=40, cpu_seconds=30, idle_seconds=30,
                 load_seconds=30, settle=4.0),
    "quick": dict(cold=3, warm=3, switch=6, latency_segments=8, cpu_seconds=10, idle_seconds=8,
                  load_seconds=10, settle=2.0),
}


SECTIONS = ("idle", "cold", "warm", "switch", "latency", "pipeline_720p", "baseline", "castd_1080p", "api_load")


def _section(results: dict, name: str, func) -> None:
    """Run one benchmark; a failure is recorded in the results and the others still run."""
    started = time.monotonic()
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    try:
        value = func()
    except Exception as exc:  # a section that fails is reported, not fatal
        value = {"error": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc(file=sys.stderr)
    value["elapsed_s"] = round(time.monotonic() - started, 1)
    results["sections"][name] = value
    print(f"bench: {name} done in {value['elapsed_s']} s", file=sys.stderr, flush=True)


def _daemon(tmp: Path, name: str, env: dict[str, str]) -> Daemon:
    """castd as deployed: INFO logs and a webhook token (so /status pays for the token check)."""
    (tmp / name).mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24) if "token" in Config.__struct_fields__ else ""
    return Daemon(runtime_dir=tmp / name / "run", env_extra={"CASTD_LOG_LEVEL": "INFO", **env}, token=token)


def run_standby_off(results: dict, plan: dict, pages, castd: Castd) -> None:
    p720, p1080 = get_preset("720p"), get_preset("1080p")

    def warmup():
        times = starts.start_from_idle(castd, pages, 1, "720p", nothing_running=True, first_colour=5)
        return {"seconds": times}

    def idle():
        castd.settle_idle(nothing_running=True)
        wait_quiet(castd.pid, timeout=5)
        window = resources.measure(castd, plan["idle_seconds"])
        return {"cpu_per_s": window.cpu_per_second, "seconds": round(window.seconds, 2),
                "cpu_by_role": window.cpu_by_role}

    def cold():
        times = starts.start_from_idle(castd, pages, plan["cold"], "720p", nothing_running=True)
        return {"seconds": times, "summary": summary(times)}

    def switch():
        times, _ = starts.switches(castd, pages, plan["switch"], "720p")
        return {"seconds": times, "summary": summary(times)}

    def page_latency():
        found = latency.page_to_segment(castd, pages, "720p", plan["latency_segments"])
        found["summary"] = summary(found["ages"])
        found["oldest_summary"] = summary(found["oldest_per_segment"])
        found["newest_summary"] = summary(found["newest_per_segment"])
        return found

    def pipeline():
        castd.start(pages.url("/dashboard"), "720p")
        castd.wait_page_loaded()
        time.sleep(plan["settle"])
        window = resources.measure(castd, plan["cpu_seconds"], fps=p720.fps)
        mem = resources.memory(castd, only_castd=False)
        return {"cpu_per_video_s": window.cpu_per_video_second(), "cpu_by_role_per_video_s": {
                    role: round(cpu / window.seconds / window.video_seconds_per_second, 4)
                    for role, cpu in window.cpu_by_role.items()} if window.frame_rate else None,
                "frame_rate": round(window.frame_rate, 2), "seconds": round(window.seconds, 2),
                "pss_all_mb": mem["total_mb"], "pss": mem}

    def side_by_side():
        if not (castd.status().get("url") or "").endswith("/dashboard"):
            castd.start(pages.url("/dashboard"), "720p")
            castd.wait_page_loaded()
            time.sleep(plan["settle"])
        return baseline.side_by_side(castd, p720, plan["cpu_seconds"])

    def castd_1080p():
        castd.settle_idle(nothing_running=True)
        castd.start(pages.url("/dashboard"), "1080p")
        castd.wait_page_loaded()
        time.sleep(plan["settle"])
        mem_castd = resources.memory(castd, only_castd=True)
        mem_all = resources.memory(castd, only_castd=False)
        return {"pss_castd_mb": mem_castd["total_mb"], "pss_castd": mem_castd, "pss_all_1080p": mem_all}

    def api_load():
        status = castd.status()
        if status["state"] != "streaming" or status["quality"] != "1080p":
            raise starts.BenchError("no 1080p stream to load (castd_1080p failed)")
        status0 = castd.status()
        frames0, at0 = castd.frame_mark()
        out = subprocess.run([sys.executable, "-m", "bench.loadgen", "--port", str(castd.daemon.port),
                              "--rate", "200", "--seconds", str(plan["load_seconds"])],
                             capture_output=True, text=True, timeout=plan["load_seconds"] + 60,
                             cwd=Path(__file__).resolve().parent.parent,
                             env={**os.environ, "CASTD_BENCH_TOKEN": castd.daemon.token})
        frames1, at1 = castd.frame_mark()
        status1 = castd.status()
        if out.returncode != 0:
            raise starts.BenchError(f"load generator failed: {out.stderr[-300:]}")
        load = json.loads(out.stdout)
        frames = frames1 - frames0
        expected = p1080.fps * (at1 - at0)
        mem_after = resources.memory(castd, only_castd=True)
        results["sections"]["castd_1080p"]["pss_castd_after_load_mb"] = mem_after["total_mb"]
        return {"load": load, "frames": frames, "expected_frames": round(expected, 1),
                "frames_off_target": (frames - expected) / expected if expected else None,
                "restarts": status1["restarts"] - status0["restarts"]}

    _section(results, "warmup", warmup)
    for name, func in (("idle", idle), ("cold", cold), ("switch", switch), ("latency", page_latency),
                       ("pipeline_720p", pipeline), ("baseline", side_by_side), ("castd_1080p", castd_1080p),
                       ("api_load", api_load)):
        if name in plan["only"]:
            _section(results, name, func)
    castd.settle_idle(nothing_running=True)


def run_standby_on(results: dict, plan: dict, pages, castd: Castd) -> None:
    def warm():
        # first use: after it, the standby should be kept ready
        starts.start_from_idle(castd, pages, 1, "720p", nothing_running=False, first_colour=5)
        castd.settle_idle(nothing_running=False, standby=True)
        helpers = castd.helpers_running()
        parked = resources.measure(castd, plan["idle_seconds"] / 2)
        times = starts.start_from_idle(castd, pages, plan["warm"], "720p", nothing_running=False, first_colour=1,
                                       standby=True)
        return {"seconds": times, "summary": summary(times), "browser_processes_while_idle": len(helpers),
                "idle_cpu_per_s_with_standby": parked.cpu_per_second, "idle_cpu_by_role": parked.cpu_by_role,
                "pss_idle_with_standby": resources.memory(castd, only_castd=False)}

    _section(results, "warm", warm)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter windows (CI; < 3 min)")
    parser.add_argument("--standby-on", help="CASTD_STANDBY value that turns warm standby on")
    parser.add_argument("--standby-off", help="CASTD_STANDBY value that turns warm standby off")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    parser.add_argument("--only", help=f"comma-separated sections to run (of {', '.join(SECTIONS)})")
    parser.add_argument("--compare", metavar="REV", help="run the --only sections (of "
                        f"{', '.join(compare.COMPARABLE)}) against castd at git REV and this tree, interleaved")
    args = parser.parse_args(argv)
    if args.compare:
        return _compare(args)
    mode = "quick" if args.quick else "full"
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    if only - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(only - set(SECTIONS)))}")
    if "api_load" in only:
        only.add("castd_1080p")
    plan = {**PLANS[mode], "only": sorted(only)}
    began = time.monotonic()
    results: dict = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "mode": mode,
                     "plan": plan, "machine": proc.machine(), "git": _git_commit(), "sections": {}}
    try:
        standby_values = standby.values(args.standby_on, args.standby_off)
    except ValueError as exc:
        standby_values = None
        results["standby_problem"] = str(exc)
    results["standby"] = {"implemented": standby.field() is not None,
                          "on": standby_values[0] if standby_values else None,
                          "off": standby_values[1] if standby_values else None}
    tmp = Path(tempfile.mkdtemp(prefix="castd-bench-"))
    pages = serve()
    try:
        off_env = {"CASTD_STANDBY": standby_values[1]} if standby_values else {}
        if only - {"warm"}:
            _with_daemon(results, tmp, "standby-off", off_env,
                         lambda castd: run_standby_off(results, plan, pages, castd))
        if "warm" in only and standby_values:
            _with_daemon(results, tmp, "standby-on", {"CASTD_STANDBY": standby_values[0]},
                         lambda castd: run_standby_on(results, plan, pages, castd))
        elif "warm" in only:
            results["sections"]["warm"] = {"skipped": results.get("standby_problem") or
                                           "not implemented (castd.config.Config has no `standby` key)"}
    finally:
        pages.close()
        shutil.rmtree(tmp, ignore_errors=True)
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    results["targets"] = targets.evaluate(results)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{mode}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    print_report(results)
    print(f"\nresults: {path}")
    return 0


def _compare(args) -> int:
    plan = PLANS["quick" if args.quick else "full"]
    sections = args.only.split(",") if args.only else list(compare.COMPARABLE)
    unknown = set(sections) - set(compare.COMPARABLE)
    if unknown:
        print(f"bench: cannot compare {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="castd-bench-"))
    pages = serve()
    try:
        result = compare.compare(args.compare, sections, plan, pages, tmp)
    finally:
        pages.close()
        shutil.rmtree(tmp, ignore_errors=True)
    result.update(date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), machine=proc.machine(),
                  git=_git_commit())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    compare.print_comparison(result)
    print(f"\nresults: {path}")
    return 0


def _with_daemon(results: dict, tmp: Path, name: str, env: dict[str, str], body) -> None:
    daemon = _daemon(tmp, name, env)
    castd = None
    try:
        daemon.start()
        castd = Castd(daemon)
        body(castd)
    except Exception as exc:
        results.setdefault("errors", []).append(f"{name}: {type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)
        if daemon.log_path.exists():
            print(daemon.log()[-2000:], file=sys.stderr)
    finally:
        if castd:
            castd.close()
        code = daemon.stop()
        left = daemon.kill_leftovers()
        results.setdefault("daemons", {})[name] = {"exit_code": code, "leftover_processes": len(left)}


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    sys.exit(main())
