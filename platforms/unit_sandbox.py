"""Run castd the way systemd/castd.service confines it, without systemd as PID 1 (a container), and check
that a session still streams with Chromium's own sandbox on.

What is emulated, from the unit file itself: the unprivileged user (nobody here, castd there),
NoNewPrivileges, and the unit's seccomp rules as libseccomp filters: SystemCallFilter (the groups expanded
by `systemd-analyze syscall-filter`, the rest EPERM as SystemCallErrorNumber says), RestrictAddressFamilies
(socket() of another family: EAFNOSUPPORT) and RestrictNamespaces (unshare/clone/setns with another kind of
namespace: EPERM). What is not: the mount namespace settings (ProtectSystem, PrivateDevices, PrivateTmp,
ProtectProc...), the cgroup (MemoryMax, OOMPolicy) and the capability bounding set (nobody has none anyway),
which need systemd to run the unit (`systemd-run` is no use without systemd as PID 1).

Usage, as root, with Debian's python3-seccomp installed (`apt-get install python3-seccomp`):
    /usr/bin/python3 platforms/unit_sandbox.py [--unit systemd/castd.service]
It prints what it checked and exits 0 when the session streamed (a segment served). --chromium-only runs
headless Chromium alone under the same rules (a screenshot or not): seconds instead of a session.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = {"AF_UNIX": socket.AF_UNIX, "AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6, "AF_NETLINK": 16,
            "AF_PACKET": 17}
NAMESPACES = {"cgroup": 0x02000000, "ipc": 0x08000000, "net": 0x40000000, "mnt": 0x00020000,
              "pid": 0x20000000, "user": 0x10000000, "uts": 0x04000000}


def unit_settings(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def syscall_groups() -> dict[str, list[str]]:
    text = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip())
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        if name.startswith("@"):
            out |= expand(groups[name], groups)
        else:
            out.add(name)
    return out


def build_filter(settings: dict[str, str]):
    """The unit's seccomp rules; loaded (with no_new_privs, as NoNewPrivileges=yes) in the child."""
    import seccomp  # Debian's python3-seccomp

    groups = syscall_groups()
    allowed = expand(settings["SystemCallFilter"].split(), groups)
    errno_name = settings.get("SystemCallErrorNumber", "EPERM")
    flt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(getattr(__import__("errno"), errno_name)))
    special = {"socket", "unshare", "clone", "clone3", "setns"}  # allowed only with the arguments the unit allows
    for name in sorted(allowed - special):
        try:
            flt.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # a name this architecture does not have
    for family in {FAMILIES[f] for f in settings["RestrictAddressFamilies"].split()}:  # others: the default error
        flt.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
    allowed_ns = 0
    for kind in settings["RestrictNamespaces"].split():
        allowed_ns |= NAMESPACES[kind]
    denied_ns = sum(NAMESPACES.values()) & ~allowed_ns
    for call, arg in (("unshare", 0), ("clone", 0), ("setns", 1)):
        flt.add_rule(seccomp.ALLOW, call, seccomp.Arg(arg, seccomp.MASKED_EQ, denied_ns, 0))
    flt.add_rule(seccomp.ERRNO(38), "clone3")  # as systemd does: ENOSYS, so glibc falls back to clone()
    return flt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", default=str(ROOT / "systemd" / "castd.service"))
    parser.add_argument("--python", default="/usr/bin/python3",
                        help="a Python the unprivileged user may run (the venv's packages are put on its path)")
    parser.add_argument("--max-restarts", default="5", help="castd's max_restarts (1: fail at the first failure)")
    parser.add_argument("--chromium-only", action="store_true",
                        help="only Chromium (headless, its sandbox on) takes a screenshot under the rules: seconds, "
                             "not a whole castd session")
    args = parser.parse_args()
    settings = unit_settings(Path(args.unit))
    for key in ("SystemCallFilter", "RestrictAddressFamilies", "RestrictNamespaces", "NoNewPrivileges"):
        print(f"unit: {key}={settings.get(key)}")
    user = pwd.getpwnam("nobody")
    home = Path(tempfile.mkdtemp(prefix="castd-unit-"))
    os.chown(home, user.pw_uid, user.pw_gid)
    port = 18000 + os.getpid() % 1000
    # TMPDIR: Chromium's own temp files (org.chromium.Chromium.*) go where the run removes them, not /tmp
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home), "CASTD_RUNTIME_DIR": str(home / "run"),
           "CASTD_PORT": str(port), "CASTD_LOG_LEVEL": "INFO", "LANG": "C.UTF-8",
           "CASTD_MAX_RESTARTS": args.max_restarts,
           "PYTHONPATH": os.pathsep.join(str(p) for p in (ROOT, *(ROOT / ".venv/lib").glob("python3*/site-packages")))}

    flt = build_filter(settings)
    if args.chromium_only:
        return chromium_only(flt, user, home, env)

    def child() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        flt.load()

    log = home / "castd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([args.python, "-m", "castd", "serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=child, start_new_session=True)
    ok = False
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.3)
        request = urllib.request.Request(base + "/start", data=json.dumps({"url": base + "/demo"}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        print("start:", urllib.request.urlopen(request, timeout=10).read().decode()[:120])
        deadline = time.monotonic() + 60
        status: dict = {}
        while time.monotonic() < deadline:
            status = json.load(urllib.request.urlopen(base + "/status", timeout=5))
            if status["state"] in ("streaming", "failed"):
                break
            time.sleep(0.5)
        print("state:", status.get("state"), "page:", status.get("page"), "error:", status.get("last_error"))
        if status.get("state") == "streaming":
            time.sleep(3)
            media = urllib.request.urlopen(status["stream_url"].replace("index.m3u8", "stream.m3u8")).read().decode()
            segment = [line for line in media.splitlines() if line and not line.startswith("#")][-1]
            data = urllib.request.urlopen(status["stream_url"].rsplit("/", 1)[0] + "/" + segment).read()
            print(f"segment {segment}: {len(data)} bytes")
            ok = len(data) > 1000
            chromium = subprocess.run(["ps", "-o", "pid,user,args", "--ppid", "1", "-e"], capture_output=True,
                                      text=True).stdout
            renderers = [line for line in chromium.splitlines() if "--type=renderer" in line and "nobody" in line]
            sandboxed = [line for line in renderers if "--no-sandbox" not in line]
            print(f"renderers as nobody: {len(renderers)}, of them without --no-sandbox: {len(sandboxed)}")
            ok = ok and bool(sandboxed)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        text = log.read_text(errors="replace")
        denied = [line for line in text.splitlines() if "Operation not permitted" in line or "seccomp" in line.lower()]
        print(f"castd exited {proc.returncode}; log lines naming EPERM or seccomp: {len(denied)}")
        for line in denied[:10]:
            print("   ", line[:200])
        if not ok:
            print(text[-4000:])
        shutil.rmtree(home, ignore_errors=True)
    print("OK: a session streamed under the unit's seccomp rules, Chromium sandboxed" if ok else "FAILED")
    return 0 if ok else 1


def chromium_only(flt, user, home: Path, env: dict[str, str]) -> int:
    """Headless Chromium as the unprivileged user under the filter, its sandbox on: a screenshot or not."""
    shot = home / "shot.png"

    def child() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        flt.load()

    try:
        done = subprocess.run(["/usr/lib/chromium/chromium", "--headless=new", "--disable-gpu", "--no-first-run",
                               f"--user-data-dir={home / 'profile'}", f"--screenshot={shot}", "--window-size=320,240",
                               "data:text/html,<body style='background:%230f0'>"],
                              env=env, capture_output=True, text=True, timeout=120, preexec_fn=child)
        ok = shot.exists() and shot.stat().st_size > 100
        print(f"chromium exited {done.returncode}; screenshot: {shot.stat().st_size if shot.exists() else 0} bytes")
        if not ok:
            print(done.stderr[-2000:])
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print("OK: Chromium rendered under the unit's seccomp rules, sandbox on" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
