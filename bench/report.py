"""The printed report: issue 7's targets against what was measured, then the details behind them."""

from __future__ import annotations


def _fmt(value, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return f"{value} {unit}".strip()


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = lambda row: "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def target_rows(results: dict) -> list[list[str]]:
    rows = []
    for t in results.get("targets", []):
        if t["measured"] is None:
            rows.append([t["what"], t["target"], t.get("note") or "not measured", "-"])
        else:
            rows.append([t["what"], t["target"], _fmt(t["measured"], t["unit"]), "met" if t["met"] else "NOT met"])
    return rows


def detail_rows(results: dict) -> list[list[str]]:
    s = results.get("sections", {})
    rows: list[list[str]] = []

    def timing(name: str, label: str) -> None:
        sec = s.get(name, {})
        summ = sec.get("summary")
        if summ:
            rows.append([label, f"median {_fmt(summ['median'], 's')}, p95 {_fmt(summ['p95'], 's')}, "
                                f"min {_fmt(summ['min'], 's')}, max {_fmt(summ['max'], 's')} (n={summ['n']})"])
        else:
            rows.append([label, sec.get("error") or sec.get("skipped") or "-"])

    timing("cold", "cold start (idle, nothing running)")
    timing("warm", "warm start (standby)")
    timing("switch", "switch (same stream)")
    warm = s.get("warm", {})
    if "idle_cpu_per_s_with_standby" in warm:
        rows.append(["idle with a warm standby (no target)",
                     f"{_fmt(warm['idle_cpu_per_s_with_standby'], 'CPU-s/s', 4)}, "
                     f"PSS {warm['pss_idle_with_standby']['total_mb']} MB in "
                     f"{warm['browser_processes_while_idle']} browser processes"])
    lat = s.get("latency", {})
    if "summary" in lat:
        rows.append(["page-to-segment age, every picture", f"median {_fmt(lat['summary']['median'], 's')}, "
                     f"p95 {_fmt(lat['summary']['p95'], 's')} ({lat['frames']} frames, {lat['unreadable']} "
                     f"unreadable, {lat['segments']} segments)"])
        rows.append(["... oldest / newest picture per segment", f"median {_fmt(lat['oldest_summary']['median'], 's')}"
                     f" / {_fmt(lat['newest_summary']['median'], 's')}"])
    base = s.get("baseline", {})
    if "ratio" in base:
        rows.append(["encoder CPU-s per s of video, 720p10 dashboard",
                     f"castd {_fmt(base['castd_cpu_per_video_s'], digits=4)} vs ffmpeg "
                     f"{_fmt(base['ffmpeg_cpu_per_video_s'], digits=4)}: ratio {_fmt(base['ratio'], 'x')} "
                     f"(fps {base['castd_frame_rate']} / {base['ffmpeg_frame_rate']})"])
    pipe = s.get("pipeline_720p", {})
    if pipe.get("cpu_by_role_per_video_s"):
        parts = ", ".join(f"{k} {v:.3f}" for k, v in pipe["cpu_by_role_per_video_s"].items())
        rows.append(["pipeline CPU-s/s by process, 720p10", parts])
        rows.append(["PSS at 720p by process (MB)", ", ".join(f"{k} {v}" for k, v in pipe["pss"]["by_role_mb"].items())
                     + f"; USS of all {pipe['pss'].get('uss_mb')}"])
    idle = s.get("idle", {})
    if "cpu_by_role" in idle:
        rows.append(["idle CPU-s by process", ", ".join(f"{k} {v}" for k, v in idle["cpu_by_role"].items())
                     + f" over {idle['seconds']} s"])
    big = s.get("castd_1080p", {})
    if "pss_castd" in big:
        rows.append(["PSS at 1080p, castd's own (MB)", ", ".join(f"{k} {v}" for k, v in
                                                                 big["pss_castd"]["by_role_mb"].items())
                     + (f"; after the load: {big['pss_castd_after_load_mb']}" if "pss_castd_after_load_mb" in big
                        else "")])
        rows.append(["PSS at 1080p, everything (MB)", f"{_fmt(big['pss_all_1080p']['total_mb'])}; USS of castd's own "
                     f"{big['pss_castd'].get('uss_mb')}, of all {big['pss_all_1080p'].get('uss_mb')}"])
    load = s.get("api_load", {})
    if "load" in load:
        ld = load["load"]
        rows.append(["GET /status load", f"{ld['ok']}/{ld['requests']} ok at {ld['rate']} req/s, p50 "
                     f"{_fmt(ld['p50_ms'], 'ms')}, p99 {_fmt(ld['p99_ms'], 'ms')}, max {_fmt(ld['max_ms'], 'ms')}, "
                     f"p99 from due time {_fmt(ld['due_p99_ms'], 'ms')}, {ld['late']} late"])
        rows.append(["encoder frames during the load", f"{load['frames']} of {load['expected_frames']} expected "
                     f"({_fmt(load['frames_off_target'] * 100, '%', 2)})"])
    return rows


def print_report(results: dict) -> None:
    m = results["machine"]
    print(f"\ncastd bench ({results['mode']}), {results['date']}, {m['nproc']} x {m['cpu_model']}, "
          f"{m['memory_mb']} MB, git {results.get('git')}, took {results.get('elapsed_s')} s\n")
    print(_table(target_rows(results), ["What", "Target", "Measured", "Met?"]))
    print()
    print(_table(detail_rows(results), ["Detail", "Medians and ratios"]))
    for error in results.get("errors", []):
        print(f"\nerror: {error}")
