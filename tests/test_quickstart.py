"""The README's quick start in a fresh copy of the repository: `make run` installs, casts the demo and
ends cleanly on Ctrl-C; `make test` runs; `make install-service` stages a service that passes doctor."""

import fnmatch
import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from helpers import ROOT, descendants, free_port, still_alive, wait_for


def ignored_by_git(root: Path) -> Callable[[Path, bool], bool]:
    """What root/.gitignore names, read here so that the test needs no git (a fresh Debian has none, and a
    release tarball no .git). Enough of the format for castd's file: `name`, `*.glob`, `dir/`, `a/b/`."""
    patterns = [line.strip() for line in (root / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert not [p for p in patterns if p.startswith("!")], "negated .gitignore patterns are not read here"

    def ignored(relative: Path, is_dir: bool) -> bool:
        for pattern in patterns:
            if pattern.endswith("/") and not is_dir:
                continue
            bare = pattern.strip("/")
            if fnmatch.fnmatchcase(relative.as_posix() if "/" in bare else relative.name, bare):
                return True
        return False

    return ignored


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """The repository's files as a fresh clone has them (no .git, nothing .gitignore names, so no venv),
    copied to a temporary folder."""
    target = tmp_path_factory.mktemp("quickstart") / "castd"
    ignored = ignored_by_git(ROOT)
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT)
        dirs[:] = [d for d in dirs if d != ".git" and not ignored(here / d, True)]
        for name in files:  # (.git is a file in a git worktree)
            if name != ".git" and not ignored(here / name, False) and (ROOT / here / name).is_file():
                (target / here).mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / here / name, target / here / name)
    assert (target / "Makefile").is_file() and (target / "castd" / "__init__.py").is_file()
    assert not (target / ".venv").exists() and not (target / ".git").exists()
    return target


def make_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASTD_", "VIRTUAL_ENV", "MAKE"))}
    env.pop("JOURNAL_STREAM", None)
    env["CASTD_RUNTIME_DIR"] = str(tmp_path / "run")
    return env


def test_make_run_casts_the_demo_and_ctrl_c_ends_everything(prefix, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "make-run.out"
    with out.open("wb") as sink:
        # its own session, like a terminal's foreground job: Ctrl-C signals the whole group
        make = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=prefix, env=make_env(tmp_path),
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    seen = set()
    try:
        def streaming():
            assert make.poll() is None, f"make run exited early:\n{out.read_text()[-3000:]}"
            seen.update(descendants(make.pid))
            try:
                return httpx.get(base + "/status", timeout=2).json()["state"] == "streaming"
            except httpx.HTTPError:
                return False

        wait_for(streaming, 150, interval=0.5, message="the demo streaming (make run installs first)")
        assert (prefix / ".venv" / "bin" / "castd").exists()
        printed = wait_for(lambda: "castd is casting its demo dashboard" in (t := out.read_text()) and t, 10,
                           message="the banner")
        stream_url = next(line.split()[1] for line in printed.splitlines() if line.strip().startswith("stream:"))
        assert f"preview: {base}/" in printed  # the banner names the preview page
        assert httpx.get(stream_url, timeout=5).status_code == 200
        assert "/demo" in httpx.get(base + "/status", timeout=5).json()["url"]
        seen.update(descendants(make.pid))
        assert len(seen) >= 5  # castd, its supervisor, the encoder, Xvfb, Chromium...
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=30)
        wait_for(lambda: not still_alive(seen), 5, message="every process of make run gone")
        printed = out.read_text()
        assert "castd stopped" in printed
        # castd ended everything itself: its front end found nothing the supervisor had left behind
        assert "left by the supervisor" not in printed, printed[-3000:]
        # a new user's first command shows no warnings about castd's packaging (setuptools' and pip's deprecation
        # banners, the editable-install box, pip as root outside a venv); pip's warnings about the machine's own
        # pip.conf (an index folder that is not there, as on the CI machine) are not castd's to silence
        noise = [line for line in printed.splitlines()
                 if "deprecat" in line.lower() or "Editable installation" in line or "as the 'root' user" in line]
        assert not noise, noise
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
        for pid, _ in still_alive(seen):
            os.kill(pid, signal.SIGKILL)
    assert not list((tmp_path / "run" / "sessions").iterdir())


def test_make_test_runs_in_the_copy(prefix, tmp_path):
    """`make test` from a fresh copy: its system packages, Shaka from npm (glass-deps), ruff and mypy, then
    pytest. Which tests it runs does not matter here (every module runs in the suite itself, from this
    tree): one module of pure checks (test_config: no daemon, no browser, ~1 s), not test_docs too, whose
    two daemons and README examples (Chromium sessions, a fake TV) cost ~15 s more to prove the same."""
    result = subprocess.run(["make", "test", "PYTEST_ARGS=tests/test_config.py"], cwd=prefix,
                            env=make_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


def test_install_service_staged_keeps_an_existing_config_and_uninstalls(prefix, tmp_path):
    """Staged with DESTDIR, the install names only its final place (PREFIX): moved there, as a package
    manager does, it runs. PREFIX is a folder of the test's, so the move can be made for real."""
    stage, final = tmp_path / "stage", tmp_path / "opt-castd"
    env = make_env(tmp_path)
    install = ["make", "install-service", f"DESTDIR={stage}", f"PREFIX={final}"]
    result = subprocess.run(install, cwd=prefix, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    unit = stage / "etc/systemd/system/castd.service"
    config = stage / "etc/castd/castd.toml"
    staged = stage / final.relative_to("/")
    python = staged / ".venv/bin/python"
    assert unit.read_text() == (prefix / "systemd/castd.service").read_text().replace("/opt/castd", str(final))
    assert f"ExecStart={final}/.venv/bin/castd serve" in unit.read_text()
    assert os.readlink(stage / "usr/local/bin/castd") == f"{final}/.venv/bin/castd"
    # nothing in the staged venv names the staging folder: not a #! line, not pyvenv.cfg, not a .pyc
    named = subprocess.run(["grep", "-rl", "-F", str(stage), str(staged)], capture_output=True, text=True).stdout
    assert named == "", named[:2000]
    head = (staged / ".venv/bin/castd").read_text().splitlines()[:2]  # pip writes a long path as a /bin/sh exec
    assert f"{final}/.venv/bin/python3" in "\n".join(head), head
    example = subprocess.run([python, "-m", "castd", "config-example"], capture_output=True, text=True,
                             check=True).stdout
    assert config.read_text() == example
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # it may hold the token
    # moved to its final place, the scripts run (before: "required file not found", the #! named the stage)
    staged.rename(final)
    doctor = subprocess.run([final / ".venv/bin/castd", "doctor", "--config", str(config)], capture_output=True,
                            text=True, timeout=90, env=env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"OK    config        valid: {config}" in doctor.stdout
    final.rename(staged)

    config.write_text('port = 9999\ntoken = "mine"\n')
    # install-service again, without reinstalling the venv (the slow part; the test is about the config)
    again = subprocess.run(["make", "service-config", f"DESTDIR={stage}", f"PREFIX={final}"], cwd=prefix, env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "keeping the existing" in again.stdout
    assert config.read_text() == 'port = 9999\ntoken = "mine"\n'

    removed = subprocess.run(["make", "uninstall-service", f"DESTDIR={stage}", f"PREFIX={final}"], cwd=prefix,
                             env=env, capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists() and not staged.exists()
    assert not os.path.lexists(stage / "usr/local/bin/castd")
    assert config.read_text() == 'port = 9999\ntoken = "mine"\n'


def test_install_service_restarts_a_running_service(prefix, tmp_path):
    """An upgrade (`make install-service` again) must restart the running castd, or it keeps running the old
    code: the service step with a stand-in systemctl that records what it is told."""
    calls = tmp_path / "calls"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" != is-active ] || exit ${{ACTIVE:-0}}\n')
    systemctl.chmod(0o755)
    running = tmp_path / "systemd"  # stands for /run/systemd/system: systemd is PID 1
    running.mkdir()
    for active, expected in (("0", "restart castd"), ("3", "start castd")):
        calls.write_text("")
        done = subprocess.run(["make", "-s", "service-start", f"SYSTEMCTL={systemctl}", f"SYSTEMD_DIR={running}"],
                              cwd=prefix, env={**make_env(tmp_path), "ACTIVE": active}, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert calls.read_text().splitlines() == ["daemon-reload", "enable castd", "is-active --quiet castd",
                                                  expected], calls.read_text()
