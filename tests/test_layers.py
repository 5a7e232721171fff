"""Imports run downward (castd/__init__.py has the map): the front end and the supervisor never load PyAV,
selenium or pychromecast, and no room imports the process that supervises it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("av", "selenium", "pychromecast", "zeroconf")


@pytest.mark.parametrize("module", ["castd.api.app", "castd.supervisor.loop", "castd.cli", "castd.doctor"])
def test_light_processes_do_not_load_the_heavy_libraries(module):
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} loads {out.stdout.strip()}"


def imports_of(path: Path) -> set[str]:
    """castd modules a file imports (at any depth of the file: a deferred import counts too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("castd"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("castd")}
    return found


# room -> rooms above it, which it must never import (a deferred import of a child's entry point is the
# one way down across a process boundary, and goes from parent to child only)
FORBIDDEN = {
    "encoder": ("castd.supervisor", "castd.api", "castd.client", "castd.cast", "castd.mqtt"),
    "cast": ("castd.supervisor", "castd.api", "castd.client", "castd.encoder", "castd.mqtt"),
    "children": ("castd.supervisor", "castd.api", "castd.client", "castd.encoder", "castd.cast", "castd.mqtt"),
    "supervisor": ("castd.api", "castd.client", "castd.mqtt"),
    "client": ("castd.supervisor", "castd.api", "castd.encoder", "castd.cast"),
    "programme": ("castd.supervisor", "castd.api", "castd.client", "castd.encoder", "castd.cast"),
}
CONTRACT = {"castd.api.schemas"}  # the HTTP API's types: the CLI client decodes with them
SHARED = ("protocol.py", "paths.py", "config.py", "sharing.py", "presets.py", "urls.py", "logs.py", "procutil.py")


def test_imports_run_downward():
    bad = []
    for room, above in FORBIDDEN.items():
        for path in sorted((ROOT / "castd" / room).glob("*.py")):
            bad += [f"{path.relative_to(ROOT)} imports {m}" for m in imports_of(path)
                    if m.startswith(above) and m not in CONTRACT]
    for name in SHARED:
        path = ROOT / "castd" / name
        bad += [f"castd/{name} imports {m}" for m in imports_of(path)
                if m.startswith(("castd.supervisor", "castd.api", "castd.encoder", "castd.cast", "castd.client"))]
    assert not bad, "\n".join(bad)


def test_the_map_names_every_room():
    text = (ROOT / "castd" / "__init__.py").read_text()
    rooms = [p.name for p in (ROOT / "castd").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    missing = [room for room in rooms if f"{room}/" not in text]
    assert not missing, f"castd/__init__.py does not name: {missing}"
