"""Issue 7's targets, and how each is read from the results (value, or None when not measured)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def _get(results: dict, *path):
    node = results.get("sections", {})
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


@dataclass
class Target:
    what: str
    target: str
    limit: float
    unit: str
    read: Callable[[dict], float | None]
    why_missing: Callable[[dict], str | None] = lambda results: None

    def evaluate(self, results: dict) -> dict:
        value = self.read(results)
        if value is None:
            return {"what": self.what, "target": self.target, "measured": None, "met": None,
                    "note": self.why_missing(results) or _missing_note(results)}
        return {"what": self.what, "target": self.target, "measured": round(value, 3), "unit": self.unit,
                "met": value <= self.limit}


def _missing_note(results: dict) -> str:
    return "not measured"


def _section_error(*names):
    def note(results):
        for name in names:
            section = results.get("sections", {}).get(name)
            if isinstance(section, dict) and section.get("error"):
                return f"error: {section['error']}"
            if isinstance(section, dict) and section.get("skipped"):
                return section["skipped"]
        return None
    return note


def _frames_off(results):
    value = _get(results, "api_load", "frames_off_target")
    return None if value is None else abs(value) * 100


TARGETS = [
    Target("Switch: POST /start during a stream -> first segment showing the new page (median)",
           "<= 0.6 s", 0.6, "s", lambda r: _get(r, "switch", "summary", "median"), _section_error("switch")),
    Target("Switch (p95)", "<= 1.2 s", 1.2, "s", lambda r: _get(r, "switch", "summary", "p95"),
           _section_error("switch")),
    Target("Start from idle with a warm standby (median)", "<= 1.2 s", 1.2, "s",
           lambda r: _get(r, "warm", "summary", "median"), _section_error("warm")),
    Target("Fully cold start (median)", "<= 2.0 s", 2.0, "s", lambda r: _get(r, "cold", "summary", "median"),
           _section_error("cold")),
    Target("castd's encoder CPU at 720p10 / ffmpeg command line, same work", "<= 1.0x", 1.0, "x",
           lambda r: _get(r, "baseline", "ratio"), _section_error("baseline")),
    Target("Whole pipeline (Chromium + Xvfb + castd), static dashboard 720p10", "<= 0.25 CPU-s/s", 0.25,
           "CPU-s/s", lambda r: _get(r, "pipeline_720p", "cpu_per_video_s"), _section_error("pipeline_720p")),
    Target("Idle, no session, standby off", "<= 0.01 CPU-s/s", 0.01, "CPU-s/s",
           lambda r: _get(r, "idle", "cpu_per_s"), _section_error("idle")),
    Target("castd's own processes (front end + supervisor + encoder) at 1080p, PSS", "<= 200 MB", 200, "MB",
           lambda r: _get(r, "castd_1080p", "pss_castd_mb"), _section_error("castd_1080p")),
    Target("Everything, Chromium and Xvfb included, at 720p, PSS", "<= 600 MB", 600, "MB",
           lambda r: _get(r, "pipeline_720p", "pss_all_mb"), _section_error("pipeline_720p")),
    Target("GET /status at 200 req/s for 30 s while streaming 1080p: p99", "<= 10 ms", 10, "ms",
           lambda r: _get(r, "api_load", "load", "p99_ms"), _section_error("api_load", "castd_1080p")),
    Target("... encoder frames vs target (fps x duration) during that load", "within 2 %", 2, "% off",
           _frames_off, _section_error("api_load", "castd_1080p")),
    Target("Page-to-segment latency, 1 s segments (median age of a picture when its segment is listed)",
           "<= 1.3 s", 1.3, "s", lambda r: _get(r, "latency", "summary", "median"), _section_error("latency")),
]


def evaluate(results: dict) -> list[dict]:
    return [target.evaluate(results) for target in TARGETS]
