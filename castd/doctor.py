"""`castd doctor`: check everything castd needs on this machine, and say how to fix what is missing.

Each check is a small function that returns a Check: OK, FAIL (with the fix), or SKIP (does not
apply here). The checks run the real things where that is cheap (the binaries' --version, a
real Xvfb, PyAV's codec registry, a file written in the runtime dir, a TCP connection to the
device), because "the file exists" is not the same as "it works".
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from castd import exitcodes
from castd.config import DEFAULT_CONFIG_FILE, Config, ConfigError, load_config
from castd.specs import parse_spec

APT = "sudo apt-get install -y"


@dataclass
class Check:
    name: str
    result: str  # OK | FAIL | SKIP
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    return Check(name, "OK", detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "FAIL", detail, fix)


def skip(name: str, detail: str) -> Check:
    return Check(name, "SKIP", detail)


# ---- the checks ------------------------------------------------------------------------------
def check_config(path: str | None) -> tuple[Check, Config]:
    shown = path or os.environ.get("CASTD_CONFIG") or (str(DEFAULT_CONFIG_FILE) if DEFAULT_CONFIG_FILE.exists()
                                                       else None)
    try:
        config = load_config(path)
    except ConfigError as exc:
        return fail("config", str(exc), f"edit {shown or 'the CASTD_* variables'}; "
                    "`castd config-example` shows every key"), Config()
    where = shown or "defaults (no config file)"
    return ok("config", f"valid: {where}"), config


def _version(binary: str) -> tuple[str | None, str]:
    """(major version, first line of --version) or (None, why not)."""
    if not os.access(binary, os.X_OK):
        return None, f"{binary} not found"
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{binary} --version failed: {exc}"
    line = (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else ""
    match = re.search(r"(\d+)\.\d+\.\d+", line)
    if result.returncode != 0 or not match:
        return None, f"{binary} --version: {line or 'exit code ' + str(result.returncode)}"
    return match.group(1), line


def check_browser(config: Config) -> list[Check]:
    from castd.encoder.browser import BrowserError, chromium_binary

    try:
        chromium = chromium_binary(config.chromium)
    except BrowserError:
        chromium = config.chromium
    chromium_major, chromium_line = _version(chromium)
    driver_major, driver_line = _version(config.chromedriver)
    checks = [
        ok("chromium", f"{chromium_line} ({chromium})") if chromium_major else
        fail("chromium", chromium_line, f"{APT} chromium  (or set `chromium` in the config)"),
        ok("chromedriver", f"{driver_line.split(' (')[0]} ({config.chromedriver})") if driver_major else
        fail("chromedriver", driver_line, f"{APT} chromium-driver  (or set `chromedriver` in the config)"),
    ]
    if chromium_major and driver_major:
        if chromium_major == driver_major:
            checks.append(ok("versions", f"chromium and chromedriver are both version {chromium_major}"))
        else:
            checks.append(fail("versions", f"chromium {chromium_major} but chromedriver {driver_major}",
                               f"{APT} --only-upgrade chromium chromium-driver  (both from the same release)"))
    return checks


def check_xvfb(config: Config) -> Check:
    from castd.encoder.xvfb import Xvfb, XvfbError

    if not os.access(config.xvfb, os.X_OK):
        return fail("xvfb", f"{config.xvfb} not found", f"{APT} xvfb  (or set `xvfb` in the config)")
    try:
        server = Xvfb(config.xvfb, 64, 64, timeout=10)
    except XvfbError as exc:
        return fail("xvfb", f"{config.xvfb} does not start: {exc}", f"{APT} --reinstall xvfb")
    server.stop()
    return ok("xvfb", f"{config.xvfb} starts (display {server.display})")


def check_setpriv(binary: str | None = None) -> Check:
    """castd starts Xvfb and chromedriver as `setpriv --pdeathsig KILL -- ...` (procutil.with_pdeathsig), so they die
    with the encoder thread that started them; without it they outlive a SIGKILLed encoder until castd's sweep."""
    from castd.procutil import SETPRIV

    binary = SETPRIV if binary is None else binary
    fix = f"{APT} util-linux  (setpriv is part of it, Essential on Debian)"
    if not binary:
        return fail("setpriv", "setpriv not found: Xvfb and chromedriver would outlive a killed encoder", fix)
    try:
        subprocess.run([binary, "--pdeathsig", "KILL", "--", "true"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return fail("setpriv", f"{binary} --pdeathsig does not work: {exc}", fix)
    return ok("setpriv", f"{binary} --pdeathsig works (Xvfb and chromedriver end with their encoder)")


def check_codecs() -> Check:
    try:
        import av
    except ImportError as exc:
        return fail("codecs", f"PyAV does not import: {exc}",
                    "reinstall castd's venv (`make install`); on a Raspberry Pi use a 64-bit OS: "
                    "PyAV has no 32-bit ARM wheel")
    missing = []
    for name in ("libx264", "aac", "mjpeg"):
        try:
            av.codec.Codec(name, "w")
        except Exception:
            missing.append(f"{name} encoder")
    missing += [f"{fmt} format" for fmt in ("x11grab", "hls") if fmt not in av.formats_available]
    ffmpeg = getattr(av, "ffmpeg_version_info", "?")
    if missing:
        return fail("codecs", f"PyAV {av.__version__} (FFmpeg {ffmpeg}) lacks: {', '.join(missing)}",
                    "use the PyAV wheel from PyPI (it carries all of these): "
                    f"{sys.executable} -m pip install --force-reinstall av")
    return ok("codecs", f"PyAV {av.__version__} (FFmpeg {ffmpeg}): libx264, aac, mjpeg, x11grab, hls")


def check_runtime_dir(config: Config) -> Check:
    path = config.resolved_runtime_dir()
    if config.runtime_dir and Path(config.runtime_dir) != path:
        return fail("runtime dir", f"{config.runtime_dir} is not writable by this user (castd would use {path})",
                    f"sudo install -d -o castd -g castd {config.runtime_dir}  (or leave runtime_dir empty)")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return fail("runtime dir", f"{path}: {exc}", f"make {path} writable for the user castd runs as")
    fallback = not config.runtime_dir and path.parent == Path(tempfile.gettempdir())
    note = " (a fallback: /run/castd is not writable here; the service gets its own)" if fallback else ""
    return ok("runtime dir", f"{path} is writable{note}")


def configured_devices(config: Config) -> list[str]:
    """The device(s) the config names; the key comes with casting support (`device`, or a list)."""
    if isinstance(config, Config):
        return config.default_devices()  # a comma-separated string or a list
    value = getattr(config, "device", None) or getattr(config, "devices", None) or []
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in value if v]


def _host_port(device: str) -> tuple[str, int] | None:
    """host and port if `device` is an address (castd's own spec parsing, castd/specs.py), else None."""
    try:
        spec = parse_spec(device)
    except ValueError:
        return None
    return (spec.host, spec.port) if spec.kind == "host" and spec.host else None


def _discover(config: Config, timeout: float) -> set[str]:
    """Friendly names and uuids (casefolded) of the Cast devices castd's own mDNS browser
    (castd/cast/mdns.py, on the configured mdns_interfaces) finds within `timeout`."""
    from castd.cast.mdns import browse  # zeroconf only when a name must be looked up

    found = browse(config.mdns_interfaces, timeout)
    return {(f.name or "").casefold() for f in found} | {(f.uuid or "").casefold() for f in found}


def check_devices(config: Config) -> list[Check]:
    devices = configured_devices(config)
    if not devices:
        return [skip("device", "none configured: castd streams, and casts only to devices a request names")]
    checks, names = [], []
    for device in devices:
        address = _host_port(device)
        if address is None:
            names.append(device)
            continue
        try:
            with socket.create_connection(address, timeout=3):
                pass
        except OSError as exc:
            checks.append(fail("device", f"{device}: cannot connect to {address[0]}:{address[1]} ({exc})",
                               "is the TV on, and on the same network? try `ping` and the Google Home app"))
        else:
            checks.append(ok("device", f"{device}: Cast port {address[1]} answers"))
    if names:
        try:
            found = _discover(config, 5.0)
        except Exception as exc:
            found, error = set(), str(exc)
        else:
            error = ""
        for name in names:
            spec = parse_spec(name)
            if (str(spec.uuid) if spec.uuid else name).casefold() in found:
                checks.append(ok("device", f"{name!r} found by mDNS"))
            else:
                checks.append(fail("device", f"{name!r} not found by mDNS within 5 s{': ' + error if error else ''}",
                                   "check the name in the Google Home app, or configure the device by IP "
                                   "address (mDNS does not cross VLANs or some Wi-Fi isolation setups)"))
    return checks


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(config: Config) -> Check:
    if is_loopback(config.host):
        return ok("token", f"listening on {config.host} (this machine only)" +
                  ("; a token is set" if config.token else ""))
    if config.token:
        return ok("token", f"listening on {config.host}, and a token is set")
    risk = ("anyone on the network can cast (insecure = true)" if getattr(config, "insecure", False)
            else "castd refuses to start like this")
    return fail("token", f"host is {config.host} with no token: {risk}",
                "set `token` in the config (make one: python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'), or listen on host = \"127.0.0.1\"")


def check_mqtt(config: Config) -> Check:
    """Log in to the [mqtt] broker as castd would (TLS and all), and log out again."""
    settings = config.mqtt
    if not settings.host:
        return skip("mqtt", "no broker configured (mqtt.host)")
    if not settings.enabled:
        return skip("mqtt", f"turned off (mqtt.enabled = false); castd removes its device from {settings.host}")
    import asyncio

    import aiomqtt

    from castd.mqtt.client import describe, new_client

    import msgspec

    async def login() -> None:  # under its own client id: the broker would drop a running castd with the same
        async with new_client(msgspec.structs.replace(settings, client_id=f"{settings.resolved_client_id()}-doctor"),
                              will=None):
            pass

    where = f"{settings.host}:{settings.resolved_port()}"
    try:
        asyncio.run(asyncio.wait_for(login(), 15))
    except aiomqtt.MqttError as exc:
        return fail("mqtt", f"{where}: {describe(exc, settings)}",
                    "check mqtt.host, mqtt.port, mqtt.username/password, mqtt.tls/ca_file, and that the broker runs")
    except asyncio.TimeoutError:
        return fail("mqtt", f"{where}: no answer within 15 s", "check mqtt.host and mqtt.port, and the firewall")
    return ok("mqtt", f"logged in to {where}" + (" with TLS" if settings.tls else "")
              + f" as {settings.resolved_client_id()} (topics under {settings.resolved_base_topic()})")


# ---- running and reporting -------------------------------------------------------------------
def run_checks(config_path: str | None = None) -> list[Check]:
    config_check, config = check_config(config_path)
    checks = [config_check]
    checks += check_browser(config)
    checks.append(check_xvfb(config))
    checks.append(check_setpriv())
    checks.append(check_codecs())
    checks.append(check_runtime_dir(config))
    checks += check_devices(config)
    checks.append(check_token(config))
    checks.append(check_mqtt(config))
    return checks


def report(checks: list[Check], write: Callable[[str], None] = print) -> int:
    """Print one line per check (and its fix); return the exit code: 0 all fine, 2 a bad config (as
    `castd serve` exits with it: castd/exitcodes.py), 1 another problem."""
    width = max(len(c.name) for c in checks)
    for check in checks:
        write(f"{check.result:<4}  {check.name:<{width}}  {check.detail}")
        if check.fix:
            write(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    problems = sum(c.result == "FAIL" for c in checks)
    write(f"\n{problems} problem{'s' if problems != 1 else ''} found." if problems else "\nAll checks passed.")
    if any(c.name == "config" and c.result == "FAIL" for c in checks):
        return exitcodes.USAGE
    return exitcodes.FAILURE if problems else exitcodes.OK


def main(config_path: str | None = None) -> int:
    return report(run_checks(config_path))
