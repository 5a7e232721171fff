"""`castd doctor` on this machine (everything present) and on broken set-ups (each FAIL names its fix)."""

import os
import socket
import subprocess
import sys
from types import SimpleNamespace

from helpers import ROOT, free_port

from castd.config import Config
from castd.doctor import check_devices, check_setpriv, check_token

CHECKS = ["config", "chromium", "chromedriver", "versions", "xvfb", "setpriv", "codecs", "runtime dir", "device",
          "token"]


def doctor(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CASTD_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "castd", "doctor", *args], capture_output=True, text=True,
                          timeout=90, env=environ, cwd=ROOT)


def results(output: str) -> dict[str, str]:
    """{check name: OK|FAIL|SKIP} from the report."""
    found = {}
    for line in output.splitlines():
        for name in CHECKS:
            if line[:4].strip() in ("OK", "FAIL", "SKIP") and line[6:].startswith(name + " "):
                found[name] = line[:4].strip()
    return found


def test_doctor_passes_on_this_machine(tmp_path):
    result = doctor(env={"CASTD_RUNTIME_DIR": str(tmp_path / "run")})
    assert result.returncode == 0, result.stdout
    found = results(result.stdout)
    assert set(found) == set(CHECKS), result.stdout
    assert all(v in ("OK", "SKIP") for v in found.values()) and found["device"] == "SKIP", result.stdout
    assert "All checks passed." in result.stdout
    print(result.stdout)


def test_doctor_names_each_problem_and_its_fix(tmp_path):
    fake_driver = tmp_path / "chromedriver"
    fake_driver.write_text("#!/bin/sh\necho 'ChromeDriver 99.0.1234.5 (fake)'\n")
    fake_driver.chmod(0o755)
    blocked = tmp_path / "file"
    blocked.write_text("")
    config = tmp_path / "castd.toml"
    config.write_text(f'host = "0.0.0.0"\nchromedriver = "{fake_driver}"\nxvfb = "/nonexistent/Xvfb"\n'
                      f'runtime_dir = "{blocked}/run"\n')
    result = doctor("--config", str(config))
    assert result.returncode == 1
    found = results(result.stdout)
    assert found["config"] == "OK" and found["chromium"] == "OK" and found["chromedriver"] == "OK"
    for name in ("versions", "xvfb", "runtime dir", "token"):
        assert found[name] == "FAIL", (name, result.stdout)
    text = result.stdout
    assert "--only-upgrade chromium chromium-driver" in text
    assert "apt-get install -y xvfb" in text
    assert "secrets.token_urlsafe" in text
    assert "4 problems found." in text

    config.write_text("port = 0\n")
    broken = doctor("--config", str(config))
    assert broken.returncode == 2 and results(broken.stdout)["config"] == "FAIL"  # a bad config: 2, as serve
    assert "port" in broken.stdout and "fix:" in broken.stdout


def test_token_check():
    assert check_token(Config(host="127.0.0.1")).result == "OK"
    assert check_token(Config(host="::1")).result == "OK"
    assert check_token(Config(host="0.0.0.0")).result == "FAIL"
    assert check_token(Config(host="192.168.1.2", token="abcdefgh-12345678")).result == "OK"
    assert "abcdefgh-12345678" not in check_token(Config(host="192.168.1.2", token="abcdefgh-12345678")).detail


def test_device_check_connects_to_addresses():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        up = check_devices(SimpleNamespace(device=f"127.0.0.1:{port}"))
        assert [c.result for c in up] == ["OK"], up
        down = check_devices(SimpleNamespace(device=f"127.0.0.1:{free_port()}"))
        assert [c.result for c in down] == ["FAIL"] and down[0].fix
    finally:
        listener.close()
    assert [c.result for c in check_devices(Config())] == ["SKIP"]


def test_setpriv_check_names_util_linux_when_it_is_missing_or_broken(tmp_path):
    assert check_setpriv().result == "OK"
    missing = check_setpriv("")
    assert missing.result == "FAIL" and "util-linux" in missing.fix and "outlive" in missing.detail
    broken = tmp_path / "setpriv"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    failing = check_setpriv(str(broken))
    assert failing.result == "FAIL" and "does not work" in failing.detail
