"""The systemd unit: what it promises an operator (issue 23), its exposure score, and castd streaming under
its seccomp rules with Chromium's sandbox on (emulated: no systemd as PID 1 here; see platforms/unit_sandbox.py)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from castd import exitcodes
from helpers import ROOT

UNIT = ROOT / "systemd" / "castd.service"
TARGET_SCORE = 4.5


def settings() -> dict[str, str]:
    found = {}
    for line in UNIT.read_text().splitlines():
        if re.match(r"^[A-Za-z]+=", line):
            key, _, value = line.partition("=")
            found[key] = value
    return found


def test_a_killed_renderer_or_a_bad_config_do_not_restart_the_unit_for_ever():
    unit = settings()
    assert unit["OOMPolicy"] == "continue"  # the kernel killing a renderer: castd recovers its child itself
    assert unit["RestartPreventExitStatus"] == str(exitcodes.USAGE)  # a bad config stays bad
    assert unit["Restart"] == "on-failure"  # and exitcodes.IN_USE (another castd) is retried
    assert unit["MemoryHigh"].endswith("%") and unit["MemoryMax"].endswith("%")
    assert int(unit["MemoryHigh"][:-1]) < int(unit["MemoryMax"][:-1]) < 100


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_units_exposure_score_is_at_most_4_5():
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(UNIT)], capture_output=True,
                            text=True, timeout=60)
    match = re.search(r"Overall exposure level for castd\.service: ([\d.]+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    score = float(match.group(1))
    print(f"systemd-analyze security --offline=true: {score}")
    assert score <= TARGET_SCORE, result.stdout


def _nobody_reads_the_checkout() -> bool:
    """platforms/unit_sandbox.py runs castd as `nobody` from this checkout and its venv: a checkout under
    /root (mode 0700, as in the Debian 13 chroot of platforms/debian.sh) is out of its reach."""
    import pwd
    user = pwd.getpwnam("nobody")

    def become_nobody() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    wanted = [ROOT / "castd" / "__init__.py", *(ROOT / ".venv" / "lib").glob("python3*/site-packages/msgspec")]
    return subprocess.run(["/bin/sh", "-c", " && ".join(f"test -r '{path}'" for path in wanted)],
                          preexec_fn=become_nobody, capture_output=True).returncode == 0


def _seccomp_available() -> bool:
    return os.geteuid() == 0 and Path("/usr/bin/python3").exists() and subprocess.run(
        ["/usr/bin/python3", "-c", "import seccomp"], capture_output=True).returncode == 0 \
        and shutil.which("systemd-analyze") is not None and _nobody_reads_the_checkout()


NEEDS = "needs root, systemd-analyze, Debian's python3-seccomp and a checkout `nobody` can read"


@pytest.mark.skipif(not _seccomp_available(), reason=NEEDS)
def test_castd_streams_under_the_units_seccomp_rules_with_chromiums_sandbox_on():
    result = subprocess.run(["/usr/bin/python3", str(ROOT / "platforms" / "unit_sandbox.py")], capture_output=True,
                            text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    print(result.stdout)


def test_the_sandbox_check_fails_without_the_two_calls_chromium_needs(tmp_path):
    """The check above can fail: with the plain @system-service (no chroot, no seccomp) Chromium does not
    start, so castd's session fails. (Run only where the check itself runs.)"""
    if not _seccomp_available():
        pytest.skip(NEEDS)
    plain = tmp_path / "castd.service"
    plain.write_text(UNIT.read_text().replace("SystemCallFilter=@system-service seccomp chroot",
                                              "SystemCallFilter=@system-service"))
    check = [str(ROOT / "platforms" / "unit_sandbox.py"), "--chromium-only"]  # Chromium alone: seconds
    result = subprocess.run(["/usr/bin/python3", *check, "--unit", str(plain)], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 1 and "FAILED" in result.stdout, result.stdout[-2000:]
    assert "screenshot: 0 bytes" in result.stdout  # nothing rendered: the sandbox could not chroot
    fine = subprocess.run(["/usr/bin/python3", *check], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert fine.returncode == 0, fine.stdout[-2000:]  # the same run under the unit's own rules renders


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_knows_every_directive_of_the_unit():
    """systemd ignores a directive it does not know with only a warning; `verify` prints those. The only
    complaint allowed is the one about ExecStart's binary, which is not installed here."""
    result = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    lines = [line for line in (result.stdout + result.stderr).splitlines()
             if line.strip() and "is not executable" not in line]
    assert not lines, lines
